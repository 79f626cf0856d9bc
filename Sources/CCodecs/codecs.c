#include "CCodecs.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gif_lib.h>
#include <isa-l/igzip_lib.h>
#include <jpeglib.h>
#include <libdeflate.h>
#include <png.h>
#include <pthread.h>
#include <tiffio.h>
#include <zlib.h>

static int fail(char *err, size_t errlen, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void mc_free(void *p) { free(p); }

// ---------------------------------------------------------------- growable output buffer

typedef struct {
    uint8_t *data;
    size_t len, cap;
} mc_buf;

static int buf_put(mc_buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

// Collapse RGB to grey when every pixel has r == g == b (palette images of grey masks).
static void maybe_grey(mc_raster *r) {
    if (r->channels != 3 || r->bits != 8) return;
    uint8_t *p = r->data;
    size_t n = (size_t)r->width * r->height;
    for (size_t i = 0; i < n; i++)
        if (p[3 * i] != p[3 * i + 1] || p[3 * i] != p[3 * i + 2]) return;
    for (size_t i = 0; i < n; i++) p[i] = p[3 * i];
    r->channels = 1;
}

// ---------------------------------------------------------------- PNG

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
} mem_reader;

static void png_read_mem(png_structp png, png_bytep out, png_size_t n) {
    mem_reader *r = png_get_io_ptr(png);
    if (r->pos + n > r->len) png_error(png, "unexpected end of PNG data");
    memcpy(out, r->buf + r->pos, n);
    r->pos += n;
}

typedef struct {
    char *err;
    size_t errlen;
} png_err_ctx;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_err_ctx *c = png_get_error_ptr(png);
    fail(c->err, c->errlen, "PNG: %s", msg);
    png_longjmp(png, 1);
}
static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

int mc_png_decode(const uint8_t *buf, size_t len, mc_raster *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len < 8 || png_sig_cmp(buf, 0, 8)) return fail(err, errlen, "not a PNG file");
    png_err_ctx ctx = {err, errlen};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    if (!png) return fail(err, errlen, "PNG: out of memory");
    png_infop info = png_create_info_struct(png);
    mem_reader reader = {buf, len, 0};
    uint8_t *volatile data = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(data);
        free(rows);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &reader, png_read_mem);
    png_read_info(png, info);
    int color = png_get_color_type(png, info);
    int depth = png_get_bit_depth(png, info);
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (color & PNG_COLOR_MASK_ALPHA || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    if (depth == 16) png_set_swap(png);  // PNG is big-endian; hand out native (little) endian
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    int bits = png_get_bit_depth(png, info);
    png_uint_32 w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    data = malloc(rowbytes * h);
    rows = malloc(sizeof(png_bytep) * h);
    if (!data || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < h; y++) rows[y] = data + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    out->width = (int)w;
    out->height = (int)h;
    out->channels = channels;
    out->bits = bits;
    out->data = data;
    if (channels == 2) {  // grey + alpha that survived: keep grey
        size_t n = (size_t)w * h, bps = bits / 8;
        for (size_t i = 0; i < n; i++) memmove((uint8_t *)data + i * bps, (uint8_t *)data + 2 * i * bps, bps);
        out->channels = 1;
    }
    if (color == PNG_COLOR_TYPE_PALETTE) maybe_grey(out);
    return 0;
}

static void png_write_mem(png_structp png, png_bytep p, png_size_t n) {
    if (buf_put(png_get_io_ptr(png), p, n)) png_error(png, "out of memory");
}
static void png_flush_mem(png_structp png) { (void)png; }

int mc_png_encode(const void *pixels, int width, int height, int channels, int bits, int level,
                  uint8_t **out, size_t *outlen, char *err, size_t errlen) {
    if (channels != 1 && channels != 3) return fail(err, errlen, "PNG: %d channels not supported", channels);
    if (bits != 8 && bits != 16) return fail(err, errlen, "PNG: %d bits not supported", bits);
    png_err_ctx ctx = {err, errlen};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &ctx, png_on_error, png_on_warning);
    png_infop info = png_create_info_struct(png);
    mc_buf b = {0};
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        free(b.data);
        free(rows);
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, &b, png_write_mem, png_flush_mem);
    png_set_compression_level(png, level);
    png_set_IHDR(png, info, width, height, bits, channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (bits == 16) png_set_swap(png);
    size_t rowbytes = (size_t)width * channels * (bits / 8);
    rows = malloc(sizeof(png_bytep) * height);
    for (int y = 0; y < height; y++) rows[y] = (png_bytep)pixels + y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    free(rows);
    png_destroy_write_struct(&png, &info);
    *out = b.data;
    *outlen = b.len;
    return 0;
}

// ---------------------------------------------------------------- JPEG

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *err;
    size_t errlen;
} jpeg_err;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_err *e = (jpeg_err *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    cinfo->err->format_message(cinfo, msg);
    fail(e->err, e->errlen, "JPEG: %s", msg);
    longjmp(e->jump, 1);
}
static void jpeg_quiet(j_common_ptr cinfo, int level) { (void)cinfo; (void)level; }

int mc_jpeg_decode(const uint8_t *buf, size_t len, mc_raster *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len < 3 || buf[0] != 0xFF || buf[1] != 0xD8) return fail(err, errlen, "not a JPEG file");
    struct jpeg_decompress_struct cinfo;
    jpeg_err je;
    uint8_t *volatile data = NULL;
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.emit_message = jpeg_quiet;
    je.err = err;
    je.errlen = errlen;
    if (setjmp(je.jump)) {
        free(data);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, buf, len);
    jpeg_read_header(&cinfo, TRUE);
    cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    int ch = cinfo.output_components;
    size_t stride = (size_t)cinfo.output_width * ch;
    data = malloc(stride * cinfo.output_height);
    if (!data) fail(err, errlen, "JPEG: out of memory"), longjmp(je.jump, 1);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = data + stride * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    out->width = (int)cinfo.output_width;
    out->height = (int)cinfo.output_height;
    out->channels = ch;
    out->bits = 8;
    out->data = data;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

int mc_jpeg_encode(const uint8_t *pixels, int width, int height, int channels, int quality,
                   uint8_t **out, size_t *outlen, char *err, size_t errlen) {
    struct jpeg_compress_struct cinfo;
    jpeg_err je;
    unsigned char *volatile mem = NULL;
    unsigned long memlen = 0;
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.err = err;
    je.errlen = errlen;
    if (setjmp(je.jump)) {
        jpeg_destroy_compress(&cinfo);
        free(mem);
        return -1;
    }
    jpeg_create_compress(&cinfo);
    jpeg_mem_dest(&cinfo, (unsigned char **)&mem, &memlen);
    cinfo.image_width = width;
    cinfo.image_height = height;
    cinfo.input_components = channels;
    cinfo.in_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_set_defaults(&cinfo);
    jpeg_set_quality(&cinfo, quality, TRUE);
    jpeg_start_compress(&cinfo, TRUE);
    while (cinfo.next_scanline < cinfo.image_height) {
        JSAMPROW row = (JSAMPROW)pixels + (size_t)cinfo.next_scanline * width * channels;
        jpeg_write_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_compress(&cinfo);
    jpeg_destroy_compress(&cinfo);
    *out = mem;
    *outlen = memlen;
    return 0;
}

// ---------------------------------------------------------------- TIFF

typedef struct {
    uint8_t *data;
    size_t len, cap, pos;
    int writable;
} tiff_mem;

static tmsize_t tiff_read(thandle_t h, void *p, tmsize_t n) {
    tiff_mem *m = h;
    if (m->pos >= m->len) return 0;
    size_t k = m->len - m->pos < (size_t)n ? m->len - m->pos : (size_t)n;
    memcpy(p, m->data + m->pos, k);
    m->pos += k;
    return (tmsize_t)k;
}
static tmsize_t tiff_write(thandle_t h, void *p, tmsize_t n) {
    tiff_mem *m = h;
    if (!m->writable) return 0;
    size_t end = m->pos + (size_t)n;
    if (end > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < end) cap *= 2;
        uint8_t *d = realloc(m->data, cap);
        if (!d) return 0;
        m->data = d;
        m->cap = cap;
    }
    if (m->pos > m->len) memset(m->data + m->len, 0, m->pos - m->len);
    memcpy(m->data + m->pos, p, (size_t)n);
    m->pos = end;
    if (end > m->len) m->len = end;
    return n;
}
static toff_t tiff_seek(thandle_t h, toff_t off, int whence) {
    tiff_mem *m = h;
    size_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? m->pos : m->len;
    m->pos = base + (size_t)off;
    return m->pos;
}
static int tiff_close(thandle_t h) { (void)h; return 0; }
static toff_t tiff_size(thandle_t h) { return ((tiff_mem *)h)->len; }
static int tiff_map(thandle_t h, void **base, toff_t *size) { (void)h; (void)base; (void)size; return 0; }
static void tiff_unmap(thandle_t h, void *base, toff_t size) { (void)h; (void)base; (void)size; }

static _Thread_local char tiff_last_error[256];
static void tiff_on_error(const char *module, const char *fmt, va_list ap) {
    (void)module;
    vsnprintf(tiff_last_error, sizeof tiff_last_error, fmt, ap);
}
static void tiff_on_warning(const char *module, const char *fmt, va_list ap) { (void)module; (void)fmt; (void)ap; }

int mc_tiff_decode(const uint8_t *buf, size_t len, mc_raster *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len < 8 || !((buf[0] == 'I' && buf[1] == 'I') || (buf[0] == 'M' && buf[1] == 'M')))
        return fail(err, errlen, "not a TIFF file");
    TIFFSetErrorHandler(tiff_on_error);
    TIFFSetWarningHandler(tiff_on_warning);
    tiff_last_error[0] = 0;
    tiff_mem m = {(uint8_t *)buf, len, len, 0, 0};
    TIFF *t = TIFFClientOpen("memory", "rm", &m, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size,
                             tiff_map, tiff_unmap);
    if (!t) return fail(err, errlen, "TIFF: %s", tiff_last_error[0] ? tiff_last_error : "cannot open");
    uint32_t w = 0, h = 0;
    uint16_t spp = 1, bps = 8, planar = PLANARCONFIG_CONTIG, photometric = PHOTOMETRIC_MINISBLACK, sfmt = SAMPLEFORMAT_UINT;
    TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &w);
    TIFFGetField(t, TIFFTAG_IMAGELENGTH, &h);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(t, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(t, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLEFORMAT, &sfmt);
    TIFFGetField(t, TIFFTAG_PHOTOMETRIC, &photometric);
    if (w == 0 || h == 0) {
        TIFFClose(t);
        return fail(err, errlen, "TIFF: empty image");
    }
    int direct = !TIFFIsTiled(t) && planar == PLANARCONFIG_CONTIG && sfmt == SAMPLEFORMAT_UINT &&
                 (bps == 8 || bps == 16) && (spp == 1 || spp == 3 || spp == 4) &&
                 (photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE ||
                  photometric == PHOTOMETRIC_RGB);
    if (direct) {
        int ch = spp == 1 ? 1 : 3, bytes = bps / 8;
        uint8_t *data = malloc((size_t)w * h * ch * bytes);
        uint8_t *line = malloc(TIFFScanlineSize(t));
        for (uint32_t y = 0; y < h; y++) {
            if (TIFFReadScanline(t, line, y, 0) < 0) {
                free(data);
                free(line);
                TIFFClose(t);
                return fail(err, errlen, "TIFF: %s", tiff_last_error[0] ? tiff_last_error : "cannot read scanline");
            }
            for (uint32_t x = 0; x < w; x++)
                memcpy(data + ((size_t)y * w + x) * ch * bytes, line + (size_t)x * spp * bytes, (size_t)ch * bytes);
        }
        free(line);
        if (photometric == PHOTOMETRIC_MINISWHITE) {
            size_t n = (size_t)w * h;
            if (bytes == 1) for (size_t i = 0; i < n; i++) data[i] = 255 - data[i];
            else for (size_t i = 0; i < n; i++) ((uint16_t *)data)[i] = 65535 - ((uint16_t *)data)[i];
        }
        TIFFClose(t);
        out->width = (int)w;
        out->height = (int)h;
        out->channels = ch;
        out->bits = bps;
        out->data = data;
        return 0;
    }
    // Everything else (palette, tiles, YCbCr, 1-bit...) through libtiff's RGBA path, 8-bit.
    uint32_t *rgba = malloc((size_t)w * h * 4);
    if (!TIFFReadRGBAImageOriented(t, w, h, rgba, ORIENTATION_TOPLEFT, 0)) {
        free(rgba);
        TIFFClose(t);
        return fail(err, errlen, "TIFF: %s", tiff_last_error[0] ? tiff_last_error : "unsupported layout");
    }
    TIFFClose(t);
    uint8_t *data = malloc((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        data[3 * i] = TIFFGetR(rgba[i]);
        data[3 * i + 1] = TIFFGetG(rgba[i]);
        data[3 * i + 2] = TIFFGetB(rgba[i]);
    }
    free(rgba);
    out->width = (int)w;
    out->height = (int)h;
    out->channels = 3;
    out->bits = 8;
    out->data = data;
    maybe_grey(out);
    return 0;
}

int mc_tiff_encode(const void *pixels, int width, int height, int channels, int bits,
                   uint8_t **out, size_t *outlen, char *err, size_t errlen) {
    TIFFSetErrorHandler(tiff_on_error);
    tiff_last_error[0] = 0;
    tiff_mem m = {0};
    m.writable = 1;
    TIFF *t = TIFFClientOpen("memory", "w", &m, tiff_read, tiff_write, tiff_seek, tiff_close, tiff_size,
                             tiff_map, tiff_unmap);
    if (!t) return fail(err, errlen, "TIFF: cannot create");
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, width);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, height);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, channels);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bits);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, channels == 1 ? PHOTOMETRIC_MINISBLACK : PHOTOMETRIC_RGB);
    TIFFSetField(t, TIFFTAG_COMPRESSION, COMPRESSION_LZW);
    TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 16);
    size_t stride = (size_t)width * channels * (bits / 8);
    for (int y = 0; y < height; y++) {
        if (TIFFWriteScanline(t, (uint8_t *)pixels + y * stride, y, 0) < 0) {
            TIFFClose(t);
            free(m.data);
            return fail(err, errlen, "TIFF: %s", tiff_last_error);
        }
    }
    TIFFClose(t);
    *out = m.data;
    *outlen = m.len;
    return 0;
}

// ---------------------------------------------------------------- GIF

static int gif_read_mem(GifFileType *g, GifByteType *p, int n) {
    mem_reader *r = g->UserData;
    size_t k = r->len - r->pos < (size_t)n ? r->len - r->pos : (size_t)n;
    memcpy(p, r->buf + r->pos, k);
    r->pos += k;
    return (int)k;
}

int mc_gif_decode(const uint8_t *buf, size_t len, mc_raster *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    if (len < 6 || memcmp(buf, "GIF", 3)) return fail(err, errlen, "not a GIF file");
    mem_reader r = {buf, len, 0};
    int code = 0;
    GifFileType *g = DGifOpen(&r, gif_read_mem, &code);
    if (!g) return fail(err, errlen, "GIF: %s", GifErrorString(code));
    if (DGifSlurp(g) != GIF_OK || g->ImageCount < 1) {
        int e = g->Error;
        DGifCloseFile(g, &code);
        return fail(err, errlen, "GIF: %s", GifErrorString(e));
    }
    SavedImage *im = &g->SavedImages[0];
    ColorMapObject *cmap = im->ImageDesc.ColorMap ? im->ImageDesc.ColorMap : g->SColorMap;
    int w = g->SWidth, h = g->SHeight;
    if (!cmap || w <= 0 || h <= 0) {
        DGifCloseFile(g, &code);
        return fail(err, errlen, "GIF: no colour map");
    }
    uint8_t *data = calloc((size_t)w * h * 3, 1);
    int left = im->ImageDesc.Left, top = im->ImageDesc.Top;
    for (int y = 0; y < im->ImageDesc.Height; y++)
        for (int x = 0; x < im->ImageDesc.Width; x++) {
            int X = left + x, Y = top + y;
            if (X >= w || Y >= h) continue;
            int idx = im->RasterBits[(size_t)y * im->ImageDesc.Width + x];
            if (idx >= cmap->ColorCount) idx = 0;
            GifColorType c = cmap->Colors[idx];
            uint8_t *p = data + ((size_t)Y * w + X) * 3;
            p[0] = c.Red, p[1] = c.Green, p[2] = c.Blue;
        }
    DGifCloseFile(g, &code);
    out->width = w;
    out->height = h;
    out->channels = 3;
    out->bits = 8;
    out->data = data;
    maybe_grey(out);
    return 0;
}

static int gif_write_mem(GifFileType *g, const GifByteType *p, int n) {
    return buf_put(g->UserData, p, (size_t)n) ? 0 : n;
}

int mc_gif_encode(const uint8_t *pixels, int width, int height, uint8_t **out, size_t *outlen, char *err,
                  size_t errlen) {
    mc_buf b = {0};
    int code = 0;
    GifFileType *g = EGifOpen(&b, gif_write_mem, &code);
    if (!g) return fail(err, errlen, "GIF: %s", GifErrorString(code));
    GifColorType ramp[256];
    for (int i = 0; i < 256; i++) ramp[i].Red = ramp[i].Green = ramp[i].Blue = (GifByteType)i;
    ColorMapObject *cmap = GifMakeMapObject(256, ramp);
    if (EGifPutScreenDesc(g, width, height, 8, 0, cmap) != GIF_OK ||
        EGifPutImageDesc(g, 0, 0, width, height, false, NULL) != GIF_OK)
        goto bad;
    for (int y = 0; y < height; y++)
        if (EGifPutLine(g, (GifPixelType *)pixels + (size_t)y * width, width) != GIF_OK) goto bad;
    GifFreeMapObject(cmap);
    if (EGifCloseFile(g, &code) != GIF_OK) {
        free(b.data);
        return fail(err, errlen, "GIF: %s", GifErrorString(code));
    }
    *out = b.data;
    *outlen = b.len;
    return 0;
bad:
    code = g->Error;
    GifFreeMapObject(cmap);
    EGifCloseFile(g, NULL);
    free(b.data);
    return fail(err, errlen, "GIF: %s", GifErrorString(code));
}

// ---------------------------------------------------------------- gzip / zlib

// gzip via libdeflate when the member sizes are known from the trailers (fast path), zlib otherwise.
int mc_gunzip(const uint8_t *buf, size_t len, uint8_t **out, size_t *outlen, char *err, size_t errlen) {
    if (len < 18 || buf[0] != 0x1f || buf[1] != 0x8b) return fail(err, errlen, "not gzip data");
    uint32_t isize = (uint32_t)buf[len - 4] | (uint32_t)buf[len - 3] << 8 | (uint32_t)buf[len - 2] << 16 |
                     (uint32_t)buf[len - 1] << 24;
    struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
    if (d && isize > 0) {
        uint8_t *dst = malloc(isize);
        size_t in_used = 0, actual = 0;
        enum libdeflate_result r =
            libdeflate_gzip_decompress_ex(d, buf, len, dst, isize, &in_used, &actual);
        if (r == LIBDEFLATE_SUCCESS && in_used == len && actual == isize) {
            libdeflate_free_decompressor(d);
            *out = dst;
            *outlen = actual;
            return 0;
        }
        free(dst);
    }
    if (d) libdeflate_free_decompressor(d);
    // Slow path: multi-member files, sizes over 4 GiB, or damaged data (for a precise message).
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, 15 + 32) != Z_OK) return fail(err, errlen, "gzip: cannot initialise zlib");
    mc_buf b = {0};
    uint8_t chunk[1 << 16];
    s.next_in = (Bytef *)buf;
    s.avail_in = (uInt)(len > UINT32_MAX ? UINT32_MAX : len);
    size_t fed = s.avail_in;
    int ret;
    for (;;) {
        s.next_out = chunk;
        s.avail_out = sizeof chunk;
        ret = inflate(&s, Z_NO_FLUSH);
        if (buf_put(&b, chunk, sizeof chunk - s.avail_out)) {
            ret = Z_MEM_ERROR;
            break;
        }
        if (ret == Z_STREAM_END) {
            // Another member may follow (concatenated gzip).
            size_t consumed = fed - s.avail_in;
            size_t left = len - consumed;
            if (left >= 2 && buf[consumed] == 0x1f && buf[consumed + 1] == 0x8b) {
                inflateReset(&s);
                continue;
            }
            break;
        }
        if (ret != Z_OK) break;
        if (s.avail_in == 0 && fed < len) {
            size_t rest = len - fed;
            s.avail_in = (uInt)(rest > UINT32_MAX ? UINT32_MAX : rest);
            s.next_in = (Bytef *)buf + fed;
            fed += s.avail_in;
        } else if (s.avail_in == 0 && s.avail_out != 0) {
            ret = Z_BUF_ERROR;
            break;
        }
    }
    inflateEnd(&s);
    if (ret != Z_STREAM_END) {
        free(b.data);
        if (ret == Z_BUF_ERROR) return fail(err, errlen, "gzip: data is truncated (unexpected end of stream)");
        return fail(err, errlen, "gzip: corrupt data (%s)", s.msg ? s.msg : "inflate failed");
    }
    *out = b.data;
    *outlen = b.len;
    return 0;
}

int mc_gzip(const uint8_t *buf, size_t len, int level, uint8_t **out, size_t *outlen) {
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
    if (!c) return -1;
    size_t bound = libdeflate_gzip_compress_bound(c, len);
    uint8_t *dst = malloc(bound);
    size_t n = libdeflate_gzip_compress(c, buf, len, dst, bound);
    libdeflate_free_compressor(c);
    if (!n) {
        free(dst);
        return -1;
    }
    *out = dst;
    *outlen = n;
    return 0;
}

int mc_zlib_decompress(const uint8_t *buf, size_t len, size_t expected, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen) {
    if (expected > 0) {
        struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
        uint8_t *dst = malloc(expected);
        size_t actual = 0;
        enum libdeflate_result r = libdeflate_zlib_decompress(d, buf, len, dst, expected, &actual);
        libdeflate_free_decompressor(d);
        if (r == LIBDEFLATE_SUCCESS && actual == expected) {
            *out = dst;
            *outlen = actual;
            return 0;
        }
        free(dst);
        return fail(err, errlen, "zlib: corrupt or truncated data (expected %zu bytes)", expected);
    }
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit(&s) != Z_OK) return fail(err, errlen, "zlib: cannot initialise");
    mc_buf b = {0};
    uint8_t chunk[1 << 16];
    s.next_in = (Bytef *)buf;
    s.avail_in = (uInt)len;
    int ret;
    do {
        s.next_out = chunk;
        s.avail_out = sizeof chunk;
        ret = inflate(&s, Z_NO_FLUSH);
        buf_put(&b, chunk, sizeof chunk - s.avail_out);
    } while (ret == Z_OK && !(s.avail_in == 0 && s.avail_out != 0));
    inflateEnd(&s);
    if (ret != Z_STREAM_END) {
        free(b.data);
        return fail(err, errlen, "zlib: corrupt or truncated data");
    }
    *out = b.data;
    *outlen = b.len;
    return 0;
}

struct mc_gz {
    struct inflate_state s;
    const uint8_t *next;  // input not yet handed to ISA-L
    size_t left;
    int failed;
};

mc_gz *mc_gz_open(const uint8_t *buf, size_t len) {
    mc_gz *g = malloc(sizeof *g);
    if (!g) return NULL;
    isal_inflate_init(&g->s);
    g->s.crc_flag = ISAL_GZIP;
    g->next = buf;
    g->left = len;
    g->failed = 0;
    return g;
}

long long mc_gz_read(mc_gz *g, uint8_t *out, size_t cap) {
    if (!g || g->failed) return -1;
    size_t done = 0;
    while (done < cap && g->s.block_state != ISAL_BLOCK_FINISH) {
        if (g->s.avail_in == 0 && g->left > 0) {
            uint32_t n = g->left > UINT32_MAX ? UINT32_MAX : (uint32_t)g->left;
            g->s.next_in = (uint8_t *)g->next;
            g->s.avail_in = n;
            g->next += n;
            g->left -= n;
        }
        size_t want = cap - done;
        g->s.next_out = out + done;
        g->s.avail_out = want > UINT32_MAX ? UINT32_MAX : (uint32_t)want;
        uint32_t before = g->s.avail_out;
        int r = isal_inflate(&g->s);
        done += before - g->s.avail_out;
        // No progress with all input consumed: the stream ends early.
        if (r < 0 || (before == g->s.avail_out && g->s.avail_in == 0 && g->left == 0 &&
                      g->s.block_state != ISAL_BLOCK_FINISH)) {
            g->failed = 1;
            return -1;
        }
    }
    // Bytes after the member (a second member, or garbage) are for mc_gunzip to judge.
    if (g->s.block_state == ISAL_BLOCK_FINISH && (g->s.avail_in > 0 || g->left > 0)) {
        g->failed = 1;
        return -1;
    }
    return (long long)done;
}

void mc_gz_close(mc_gz *g) { free(g); }

static int zlib_compress_libdeflate(const uint8_t *buf, size_t len, int level, uint8_t **out, size_t *outlen) {
    struct libdeflate_compressor *c = libdeflate_alloc_compressor(level);
    if (!c) return -1;
    size_t bound = libdeflate_zlib_compress_bound(c, len);
    uint8_t *dst = malloc(bound);
    size_t n = dst ? libdeflate_zlib_compress(c, buf, len, dst, bound) : 0;
    libdeflate_free_compressor(c);
    if (!n) {
        free(dst);
        return -1;
    }
    *out = dst;
    *outlen = n;
    return 0;
}

// Level 1 (every shard record) goes through ISA-L, about three times faster than libdeflate's
// level 1 at the same ratio on ingest's records; the output is a plain zlib stream. Each thread
// keeps ISA-L's working buffer.
static pthread_key_t level_buf_key;
static pthread_once_t level_buf_once = PTHREAD_ONCE_INIT;
static void make_level_buf_key(void) { pthread_key_create(&level_buf_key, free); }

int mc_zlib_compress(const uint8_t *buf, size_t len, int level, uint8_t **out, size_t *outlen) {
    if (level != 1) return zlib_compress_libdeflate(buf, len, level, out, outlen);
    pthread_once(&level_buf_once, make_level_buf_key);
    uint8_t *level_buf = pthread_getspecific(level_buf_key);
    if (!level_buf) {
        if (!(level_buf = malloc(ISAL_DEF_LVL1_DEFAULT))) return -1;
        pthread_setspecific(level_buf_key, level_buf);
    }
    if (len > UINT32_MAX / 2) return -1;
    // Room for stored blocks when the data does not compress.
    size_t bound = len + len / 16 + 1024;
    uint8_t *dst = malloc(bound);
    if (!dst) return -1;
    struct isal_zstream s;
    isal_deflate_stateless_init(&s);
    s.level = 1;
    s.level_buf = level_buf;
    s.level_buf_size = ISAL_DEF_LVL1_DEFAULT;
    s.gzip_flag = IGZIP_ZLIB;
    s.end_of_stream = 1;
    s.next_in = (uint8_t *)buf;
    s.avail_in = (uint32_t)len;
    s.next_out = dst;
    s.avail_out = (uint32_t)bound;
    if (isal_deflate_stateless(&s) != COMP_OK) {
        free(dst);
        return -1;
    }
    *out = dst;
    *outlen = s.total_out;
    return 0;
}

uint32_t mc_crc32(uint32_t crc, const void *buf, size_t len) { return libdeflate_crc32(crc, buf, len); }
