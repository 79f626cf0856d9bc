// A small C surface over Debian's codec libraries (libpng, libjpeg-turbo, libtiff, giflib, zlib,
// libdeflate, ISA-L). libpng and libjpeg report errors with longjmp, which must never cross
// Swift frames, so every entry point here returns 0 on success or -1 with a message in `err`.
#ifndef MEDCAT_CCODECS_H
#define MEDCAT_CCODECS_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// A decoded 2D picture. `channels` is 1 (grey) or 3 (RGB): alpha is dropped and palettes are
// expanded (to grey when every palette entry is grey). `bits` is 8 or 16; 16-bit samples are
// native-endian. `data` is malloc'd, row-major, interleaved; release it with mc_free.
typedef struct {
    int width;
    int height;
    int channels;
    int bits;
    void *data;
} mc_raster;

void mc_free(void *p);

int mc_png_decode(const uint8_t *buf, size_t len, mc_raster *out, char *err, size_t errlen);
int mc_jpeg_decode(const uint8_t *buf, size_t len, mc_raster *out, char *err, size_t errlen);
int mc_tiff_decode(const uint8_t *buf, size_t len, mc_raster *out, char *err, size_t errlen);
int mc_gif_decode(const uint8_t *buf, size_t len, mc_raster *out, char *err, size_t errlen);

// Encoders write a malloc'd buffer to *out (release with mc_free).
int mc_png_encode(const void *pixels, int width, int height, int channels, int bits, int level,
                  uint8_t **out, size_t *outlen, char *err, size_t errlen);
int mc_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                   uint8_t **out, size_t *outlen, char *err, size_t errlen);
int mc_tiff_encode(const void *pixels, int width, int height, int channels, int bits,
                   uint8_t **out, size_t *outlen, char *err, size_t errlen);
// 8-bit grey only; the palette is the identity grey ramp, so indices equal grey values.
int mc_gif_encode(const uint8_t *pixels, int width, int height,
                  uint8_t **out, size_t *outlen, char *err, size_t errlen);

// gzip (one or more members; a truncated stream is an error) and zlib streams.
int mc_gunzip(const uint8_t *buf, size_t len, uint8_t **out, size_t *outlen, char *err, size_t errlen);
int mc_gzip(const uint8_t *buf, size_t len, int level, uint8_t **out, size_t *outlen);
// zlib stream; `expected` is the decompressed size when known (0 if not).
int mc_zlib_decompress(const uint8_t *buf, size_t len, size_t expected, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen);
int mc_zlib_compress(const uint8_t *buf, size_t len, int level, uint8_t **out, size_t *outlen);

// One gzip member inflated piece by piece (ISA-L), so that a reader converts each piece while it is
// still in cache instead of writing and re-reading the whole file. mc_gz_read fills up to `cap`
// bytes and returns how many it wrote (fewer than `cap` only at the end), or -1 when the stream is
// damaged, truncated, fails its CRC or size check, or has bytes after its member: the caller then
// takes mc_gunzip's path, which handles multi-member files and names the problem precisely.
typedef struct mc_gz mc_gz;
mc_gz *mc_gz_open(const uint8_t *buf, size_t len);
long long mc_gz_read(mc_gz *g, uint8_t *out, size_t cap);
void mc_gz_close(mc_gz *g);

uint32_t mc_crc32(uint32_t crc, const void *buf, size_t len);

#ifdef __cplusplus
}
#endif
#endif
