// A small C interface over GDCM (Debian's libgdcm): parsing, attribute and sequence access, and
// pixel decoding for every transfer syntax GDCM supports. Handles are opaque; no C++ exception
// leaves this library: failures return NULL or -1 with a message in `err`.
#ifndef CDICOM_H
#define CDICOM_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct mc_dcm mc_dcm;             // one parsed file
typedef struct mc_dcm_item mc_dcm_item;   // a data set inside it (the root or a sequence item); owned by the file

// Parses `path`. With header_only, parsing stops before Pixel Data (fast scanning); such a handle
// cannot decode pixels. Files without the DICM preamble are accepted when they parse as DICOM.
mc_dcm *mc_dcm_open(const char *path, int header_only, char *err, size_t errlen);
void mc_dcm_close(mc_dcm *file);
const mc_dcm_item *mc_dcm_root(const mc_dcm *file);
// The transfer syntax UID of the file (empty when unknown).
int mc_dcm_transfer_syntax(const mc_dcm *file, char *buf, size_t buflen);

// The value of element (group,element) as text: strings as stored (trailing padding removed),
// binary numbers converted, multiple values separated by '\'. Returns the full length (the copy is
// truncated to buflen-1 and NUL-terminated), or -1 when the element is absent or empty.
int mc_dcm_text(const mc_dcm *file, const mc_dcm_item *item, uint16_t group, uint16_t element, char *buf, size_t buflen);
// Number of items of a sequence element, -1 when absent or not a sequence.
int mc_dcm_count(const mc_dcm *file, const mc_dcm_item *item, uint16_t group, uint16_t element);
// Item `index` (0-based) of a sequence element, NULL when out of range.
const mc_dcm_item *mc_dcm_item_at(mc_dcm *file, const mc_dcm_item *item, uint16_t group, uint16_t element, int index);
// True when the root data set has Pixel Data (or Float/Double Float Pixel Data).
int mc_dcm_has_pixels(const mc_dcm *file);

typedef struct {
    int columns, rows, frames;
    int samples;          // 1 grey, 3 colour (always interleaved RGB after decoding)
    int bits_allocated;   // 1, 8, 16 or 32
    int is_signed;
    int monochrome1;      // stored with 0 = white: the caller inverts
    size_t length;        // bytes mc_dcm_pixels writes
} mc_dcm_pixel_info;

// Decodes Pixel Data (any compression GDCM reads) into little-endian samples, colour converted to
// interleaved RGB (palette colour is refused). 1-bit data stays packed as stored (bit i of the whole
// frame sequence is bit i%8 of byte i/8). Returns 0 or -1.
int mc_dcm_decode(mc_dcm *file, mc_dcm_pixel_info *info, char *err, size_t errlen);
// Copies the pixels decoded by mc_dcm_decode into `out` (info.length bytes) and releases them.
int mc_dcm_take_pixels(mc_dcm *file, void *out, size_t length, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
