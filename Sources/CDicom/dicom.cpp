#include "CDicom.h"

#include <gdcmDataSet.h>
#include <gdcmFile.h>
#include <gdcmImage.h>
#include <gdcmImageReader.h>
#include <gdcmReader.h>
#include <gdcmSequenceOfItems.h>
#include <gdcmStringFilter.h>
#include <gdcmTrace.h>

#include <cctype>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct mc_dcm {
    std::unique_ptr<gdcm::Reader> reader;  // an ImageReader when the file has an image
    bool image = false;
    // GDCM parses a sequence it stored as bytes (implicit VR, UN) anew on every request: parsed
    // once per (data set, tag) and kept alive as long as the file, so item pointers stay valid.
    std::map<std::pair<const gdcm::DataSet *, uint32_t>, gdcm::SmartPointer<gdcm::SequenceOfItems>> sequences;
    std::vector<char> pixels;
};

static void fail(char *err, size_t errlen, const std::string &msg) {
    if (err && errlen) {
        size_t n = msg.size() < errlen - 1 ? msg.size() : errlen - 1;
        memcpy(err, msg.data(), n);
        err[n] = 0;
    }
}

#define PROTECT(failure, body)                                                   \
    try {                                                                        \
        body                                                                     \
    } catch (const std::exception &e) {                                          \
        fail(err, errlen, std::string("DICOM library error: ") + e.what());      \
        return failure;                                                          \
    } catch (...) {                                                              \
        fail(err, errlen, "DICOM library error");                                \
        return failure;                                                          \
    }

static const gdcm::DataSet &ds(const mc_dcm *f, const mc_dcm_item *item) {
    return item ? *reinterpret_cast<const gdcm::DataSet *>(item) : f->reader->GetFile().GetDataSet();
}

// Debian builds GDCM with assertions on, and a file cut inside an element header makes its parser
// abort the process. Before GDCM sees a file, walk its element structure (tags, VRs and lengths
// only, values skipped) and reject it unless every element lies inside the file.
namespace {
struct Walker {
    std::ifstream in;
    uint64_t size = 0;
    bool big = false, explicit_vr = true;
    bool unverified = false;  // met a structure this walk does not model (UN sequences, odd VRs)
    std::string why;

    bool bytes(uint64_t at, unsigned char *out, size_t n) {
        if (at + n > size) return false;
        in.seekg((std::streamoff)at);
        return (bool)in.read(reinterpret_cast<char *>(out), (std::streamsize)n);
    }
    uint32_t num(const unsigned char *b, int n) const {
        uint32_t v = 0;
        for (int i = 0; i < n; i++) v |= (uint32_t)b[i] << (8 * (big ? n - 1 - i : i));
        return v;
    }
    bool truncated(uint64_t at) { why = "file is truncated or malformed at byte " + std::to_string(at); return false; }

    // Elements from `pos` up to `end`, or up to an item delimiter when `in_item` (undefined length).
    bool elements(uint64_t &pos, uint64_t end, bool in_item, int depth) {
        if (depth > 32) { why = "sequences nested too deeply"; return false; }
        while (pos < end) {
            unsigned char h[12];
            if (!bytes(pos, h, 8)) return truncated(pos);
            uint32_t group = num(h, 2), element = num(h + 2, 2);
            if (group == 0xfffe && element == 0xe00d) { pos += 8; return in_item ? true : truncated(pos - 8); }
            uint64_t length;
            bool undefined;
            if (explicit_vr) {
                char vr[3] = {(char)h[4], (char)h[5], 0};
                static const char *long_vrs[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "UC", "UN", "UR", "UT", "SV", "UV"};
                bool long_form = false;
                for (const char *l : long_vrs) long_form |= strcmp(vr, l) == 0;
                if (long_form) {
                    if (!bytes(pos, h, 12)) return truncated(pos);
                    length = num(h + 8, 4);
                    pos += 12;
                } else {
                    // A VR this walk does not know: leave the file to GDCM unverified.
                    if (!(isupper(h[4]) && isupper(h[5]))) { unverified = true; return false; }
                    length = num(h + 6, 2);
                    pos += 8;
                }
            } else {
                length = num(h + 4, 4);
                pos += 8;
            }
            undefined = length == 0xffffffffu;
            if (!undefined) {
                if (pos + length > end) return truncated(pos);
                pos += length;
                continue;
            }
            // An undefined-length UN element holds a sequence encoded in implicit VR little endian.
            bool un = explicit_vr && h[4] == 'U' && h[5] == 'N';
            bool saved_explicit = explicit_vr, saved_big = big;
            if (un) { explicit_vr = false; big = false; }
            bool ok = items(pos, end, depth);
            explicit_vr = saved_explicit;
            big = saved_big;
            if (!ok) return false;
        }
        return !in_item || truncated(pos);
    }

    // Items of an undefined-length sequence or encapsulated pixel data, through the sequence delimiter.
    bool items(uint64_t &pos, uint64_t end, int depth) {
        while (true) {
            unsigned char h[8];
            if (!bytes(pos, h, 8)) return truncated(pos);
            uint32_t group = num(h, 2), element = num(h + 2, 2), length = num(h + 4, 4);
            pos += 8;
            if (group != 0xfffe || (element != 0xe0dd && element != 0xe000)) { unverified = true; return false; }  // as above
            if (element == 0xe0dd) return true;
            if (length == 0xffffffffu) {
                if (!elements(pos, end, true, depth + 1)) return false;
            } else {
                if (pos + length > end) return truncated(pos);
                pos += length;
            }
        }
    }
};
}  // namespace

static bool well_formed(const char *path, std::string &why) {
    Walker w;
    w.in.open(path, std::ios::binary);
    if (!w.in) { why = "cannot open the file"; return false; }
    w.in.seekg(0, std::ios::end);
    w.size = (uint64_t)w.in.tellg();
    if (w.size == 0) { why = "file is empty"; return false; }
    unsigned char h[8];
    uint64_t pos = 0;
    if (w.size >= 132) {
        unsigned char magic[4];
        if (w.bytes(128, magic, 4) && memcmp(magic, "DICM", 4) == 0) pos = 132;
    }
    if (!w.bytes(pos, h, 8)) { why = "file is too short to be DICOM"; return false; }
    std::string ts = "1.2.840.10008.1.2.1";
    if (h[0] == 0x02 && h[1] == 0x00) {
        // File meta information: explicit VR little endian, group 0002 only.
        while (w.bytes(pos, h, 8) && h[0] == 0x02 && h[1] == 0x00) {
            char vr[3] = {(char)h[4], (char)h[5], 0};
            bool long_form = strcmp(vr, "OB") == 0 || strcmp(vr, "UN") == 0 || strcmp(vr, "UT") == 0 || strcmp(vr, "SQ") == 0;
            unsigned char l[4];
            if (long_form && !w.bytes(pos + 8, l, 4)) { why = "file is truncated in its meta header"; return false; }
            uint64_t length = long_form ? (uint32_t)(l[0] | l[1] << 8 | l[2] << 16 | (uint32_t)l[3] << 24) : (uint32_t)(h[6] | h[7] << 8);
            uint64_t value = pos + (long_form ? 12 : 8);
            if (value + length > w.size) { why = "file is truncated in its meta header"; return false; }
            if (h[2] == 0x10 && h[3] == 0x00 && length < 128) {
                std::string v(length, '\0');
                w.bytes(value, reinterpret_cast<unsigned char *>(&v[0]), length);
                while (!v.empty() && (v.back() == '\0' || v.back() == ' ')) v.pop_back();
                ts = v;
            }
            pos = value + length;
        }
    } else if (h[0] == 0x00 && h[1] == 0x08 && isupper(h[4]) && isupper(h[5])) {
        ts = "1.2.840.10008.1.2.2";  // no meta header, group 0008 written big endian
    } else if (!(isupper(h[4]) && isupper(h[5]))) {
        ts = "1.2.840.10008.1.2";    // no meta header and no VRs: implicit VR little endian
    }
    if (ts == "1.2.840.10008.1.2.1.99") return true;  // deflated: GDCM inflates and checks it
    w.explicit_vr = ts != "1.2.840.10008.1.2";
    w.big = ts == "1.2.840.10008.1.2.2";
    if (!w.elements(pos, w.size, false, 0)) {
        if (w.unverified) return true;
        why = w.why;
        return false;
    }
    return true;
}

extern "C" mc_dcm *mc_dcm_open(const char *path, int header_only, char *err, size_t errlen) {
    // GDCM writes its warnings to stderr; medcat reports problems itself, per file.
    static const bool quiet = [] { gdcm::Trace::WarningOff(); gdcm::Trace::ErrorOff(); gdcm::Trace::DebugOff(); return true; }();
    (void)quiet;
    PROTECT(nullptr, {
        std::string why;
        if (!well_formed(path, why)) {
            fail(err, errlen, why);
            return nullptr;
        }
        auto f = std::make_unique<mc_dcm>();
        if (header_only) {
            f->reader = std::make_unique<gdcm::Reader>();
            f->reader->SetFileName(path);
            std::set<gdcm::Tag> skip;
            if (!f->reader->ReadUpToTag(gdcm::Tag(0x7fe0, 0x0010), skip)) {
                fail(err, errlen, "not a readable DICOM file");
                return nullptr;
            }
            return f.release();
        }
        auto image = std::make_unique<gdcm::ImageReader>();
        image->SetFileName(path);
        if (image->Read()) {
            f->reader = std::move(image);
            f->image = true;
            return f.release();
        }
        // Not an image (RTSTRUCT, SR, ...) or an image GDCM cannot interpret: parse the data set only.
        f->reader = std::make_unique<gdcm::Reader>();
        f->reader->SetFileName(path);
        if (!f->reader->Read()) {
            fail(err, errlen, "not a readable DICOM file");
            return nullptr;
        }
        return f.release();
    })
}

extern "C" void mc_dcm_close(mc_dcm *f) { delete f; }

extern "C" const mc_dcm_item *mc_dcm_root(const mc_dcm *f) {
    return reinterpret_cast<const mc_dcm_item *>(&f->reader->GetFile().GetDataSet());
}

static int copy_out(const std::string &s, char *buf, size_t buflen) {
    if (buf && buflen) {
        size_t n = s.size() < buflen - 1 ? s.size() : buflen - 1;
        memcpy(buf, s.data(), n);
        buf[n] = 0;
    }
    return (int)s.size();
}

extern "C" int mc_dcm_transfer_syntax(const mc_dcm *f, char *buf, size_t buflen) {
    try {
        const char *uid = gdcm::TransferSyntax::GetTSString(f->reader->GetFile().GetHeader().GetDataSetTransferSyntax());
        return copy_out(uid ? uid : "", buf, buflen);
    } catch (...) {
        return copy_out("", buf, buflen);
    }
}

extern "C" int mc_dcm_text(const mc_dcm *f, const mc_dcm_item *item, uint16_t group, uint16_t element, char *buf, size_t buflen) {
    try {
        const gdcm::DataSet &d = ds(f, item);
        gdcm::Tag tag(group, element);
        if (!d.FindDataElement(tag)) return -1;
        const gdcm::DataElement &de = d.GetDataElement(tag);
        if (de.IsEmpty()) return -1;
        gdcm::StringFilter sf;
        sf.SetFile(f->reader->GetFile());
        std::string s = sf.ToString(de);
        // Strings are padded to even length with spaces or NULs.
        while (!s.empty() && (s.back() == ' ' || s.back() == '\0')) s.pop_back();
        size_t start = s.find_first_not_of(' ');
        s = start == std::string::npos ? std::string() : s.substr(start);
        if (s.empty()) return -1;
        return copy_out(s, buf, buflen);
    } catch (...) {
        return -1;
    }
}

static gdcm::SmartPointer<gdcm::SequenceOfItems> sequence(mc_dcm *f, const mc_dcm_item *item, uint16_t group, uint16_t element) {
    const gdcm::DataSet &d = ds(f, item);
    gdcm::Tag tag(group, element);
    auto key = std::make_pair(&d, (uint32_t)group << 16 | element);
    auto known = f->sequences.find(key);
    if (known != f->sequences.end()) return known->second;
    if (!d.FindDataElement(tag)) return nullptr;
    gdcm::SmartPointer<gdcm::SequenceOfItems> sq = d.GetDataElement(tag).GetValueAsSQ();
    f->sequences[key] = sq;
    return sq;
}

extern "C" int mc_dcm_count(const mc_dcm *f, const mc_dcm_item *item, uint16_t group, uint16_t element) {
    try {
        auto sq = sequence(const_cast<mc_dcm *>(f), item, group, element);
        return sq ? (int)sq->GetNumberOfItems() : -1;
    } catch (...) {
        return -1;
    }
}

extern "C" const mc_dcm_item *mc_dcm_item_at(mc_dcm *f, const mc_dcm_item *item, uint16_t group, uint16_t element, int index) {
    try {
        auto sq = sequence(f, item, group, element);
        if (!sq || index < 0 || (size_t)index >= sq->GetNumberOfItems()) return nullptr;
        // GDCM numbers items from 1.
        return reinterpret_cast<const mc_dcm_item *>(&sq->GetItem(index + 1).GetNestedDataSet());
    } catch (...) {
        return nullptr;
    }
}

extern "C" int mc_dcm_has_pixels(const mc_dcm *f) {
    const gdcm::DataSet &d = f->reader->GetFile().GetDataSet();
    return d.FindDataElement(gdcm::Tag(0x7fe0, 0x0010)) || d.FindDataElement(gdcm::Tag(0x7fe0, 0x0008)) ||
           d.FindDataElement(gdcm::Tag(0x7fe0, 0x0009));
}

// Full-range YCbCr (JPEG's and DICOM's YBR_FULL) to RGB, in place.
static void ybr_to_rgb(unsigned char *p, size_t pixels) {
    for (size_t i = 0; i < pixels; i++, p += 3) {
        double y = p[0], cb = p[1] - 128.0, cr = p[2] - 128.0;
        double rgb[3] = {y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb};
        for (int k = 0; k < 3; k++) p[k] = (unsigned char)(rgb[k] < 0 ? 0 : rgb[k] > 255 ? 255 : rgb[k] + 0.5);
    }
}

extern "C" int mc_dcm_decode(mc_dcm *f, mc_dcm_pixel_info *info, char *err, size_t errlen) {
    PROTECT(-1, {
        if (!f->image) {
            fail(err, errlen, mc_dcm_has_pixels(f) ? "pixel data GDCM cannot interpret" : "no pixel data");
            return -1;
        }
        auto &reader = static_cast<gdcm::ImageReader &>(*f->reader);
        gdcm::Image image = reader.GetImage();
        // GDCM 3.0.21's lookup-table filter corrupts the heap on some files: refuse rather than crash.
        if (image.GetPhotometricInterpretation() == gdcm::PhotometricInterpretation::PALETTE_COLOR) {
            fail(err, errlen, "PALETTE COLOR images are not supported");
            return -1;
        }
        const unsigned int *dims = image.GetDimensions();
        const gdcm::PixelFormat &pf = image.GetPixelFormat();
        f->pixels.resize(image.GetBufferLength());
        if (!image.GetBuffer(f->pixels.data())) { fail(err, errlen, "pixel data could not be decoded"); return -1; }
        info->columns = (int)dims[0];
        info->rows = (int)dims[1];
        info->frames = image.GetNumberOfDimensions() > 2 ? (int)dims[2] : 1;
        info->samples = pf.GetSamplesPerPixel();
        info->bits_allocated = pf.GetBitsAllocated();
        info->is_signed = pf.GetPixelRepresentation() == 1;
        info->length = f->pixels.size();
        gdcm::PhotometricInterpretation pi = image.GetPhotometricInterpretation();
        info->monochrome1 = pi == gdcm::PhotometricInterpretation::MONOCHROME1;
        if (info->samples == 3) {
            if (info->bits_allocated != 8) { fail(err, errlen, "colour images with more than 8 bits per sample are not supported"); return -1; }
            size_t n = (size_t)info->columns * info->rows * info->frames;
            if (f->pixels.size() < 3 * n) { fail(err, errlen, "colour pixel data is shorter than its size says"); return -1; }
            unsigned char *p = reinterpret_cast<unsigned char *>(f->pixels.data());
            if (image.GetPlanarConfiguration() == 1) {
                // R plane, G plane, B plane per frame → interleaved.
                std::vector<unsigned char> planar(p, p + 3 * n);
                size_t frame = (size_t)info->columns * info->rows;
                for (int fr = 0; fr < info->frames; fr++)
                    for (size_t i = 0; i < frame; i++)
                        for (int k = 0; k < 3; k++) p[3 * (fr * frame + i) + k] = planar[3 * fr * frame + k * frame + i];
            }
            // GDCM hands back YBR_FULL and YBR_FULL_422 samples as stored (422 already upsampled);
            // JPEG 2000's YBR_RCT/ICT come back as RGB from the decoder.
            if (pi == gdcm::PhotometricInterpretation::YBR_FULL || pi == gdcm::PhotometricInterpretation::YBR_FULL_422) ybr_to_rgb(p, n);
            else if (pi != gdcm::PhotometricInterpretation::RGB && pi != gdcm::PhotometricInterpretation::YBR_RCT &&
                     pi != gdcm::PhotometricInterpretation::YBR_ICT) {
                fail(err, errlen, std::string("unsupported colour interpretation ") + gdcm::PhotometricInterpretation::GetPIString(pi));
                return -1;
            }
        }
        return 0;
    })
}

extern "C" int mc_dcm_take_pixels(mc_dcm *f, void *out, size_t length, char *err, size_t errlen) {
    if (length != f->pixels.size()) {
        fail(err, errlen, "pixel buffer size mismatch");
        return -1;
    }
    memcpy(out, f->pixels.data(), length);
    std::vector<char>().swap(f->pixels);
    return 0;
}
