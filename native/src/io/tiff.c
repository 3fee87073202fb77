/* TIFF hyperstacks as ImageJ 1 writes and reads them.
 *
 * Reading uses libtiff (classic TIFF and BigTIFF, strips or tiles, any codec libtiff has) with
 * per-handle error/warning handlers (libtiff >= 4.5), so nothing reaches stderr and libtiff's message
 * ends up in the ctx. Grey samples u8/s8/u16/s16/u32/s32/f32/f64 become float32. ImageJ's
 * ImageDescription gives C/Z/T, unit, spacing and frame interval; X/YResolution the pixel size; the
 * private tags 50838/50839 (IJMetadataByteCounts/IJMetadata) the slice labels.
 *
 * Writing does not go through libtiff: ImageJ reads an uncompressed file whose description says
 * "images=N" by taking the first IFD only and reading N planes *contiguously* from its first strip
 * offset (TiffDecoder.saveImageDescription / FileOpener). libtiff interleaves IFDs with the pixel
 * data, which ImageJ would then read as pixels. So the writer lays the file out the way ImageJ
 * does: header, IFD 0 with its description/metadata, all planes back to back, then IFDs 1..N-1
 * (classic TIFF, or BigTIFF when the file would pass 4 GiB). Reading it back with libtiff is part
 * of the tests.
 */
#define _GNU_SOURCE
#include "tiff.h"

#include "json.h"
#include "safetensors.h" /* fl_io_tmp_create / fl_io_tmp_commit */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <sys/stat.h>
#include <unistd.h>

#define TAG_IJ_COUNTS 50838
#define TAG_IJ_META 50839
#define IJ_MAGIC 0x494a494au  /* "IJIJ" */
#define IJ_LABELS 0x6c61626cu /* "labl" */
#define FL_TIFF_MAX_PAGES (1u << 24)

/* ---- fl_image ----------------------------------------------------------------------------------- */

void fl_image_init(fl_image *img)
{
    if (!img) return;
    memset(img, 0, sizeof *img);
    img->pixel_width = img->pixel_height = img->pixel_depth = 1.0;
    strcpy(img->unit, "pixel");
}

static void free_labels(fl_image *img)
{
    if (img->labels) {
        int64_t n = fl_image_planes(img);
        for (int64_t i = 0; i < n; i++) fl_free(img->labels[i]);
        fl_free(img->labels);
        img->labels = NULL;
    }
}

void fl_image_free(fl_image *img)
{
    if (!img) return;
    free_labels(img);
    fl_free(img->data);
    fl_image_init(img);
}

int64_t fl_image_planes(const fl_image *img)
{
    if (!img || img->channels <= 0 || img->slices <= 0 || img->frames <= 0) return 0;
    return img->channels * img->slices * img->frames;
}

static fl_status image_size(fl_ctx *ctx, int64_t w, int64_t h, int64_t c, int64_t z, int64_t t, size_t *bytes)
{
    if (w < 1 || h < 1 || c < 1 || z < 1 || t < 1 || w > UINT32_MAX || h > UINT32_MAX)
        return fl_fail(ctx, FL_EINVAL, "bad image dimensions %lld x %lld, %lld channels, %lld slices, %lld frames",
                       (long long)w, (long long)h, (long long)c, (long long)z, (long long)t);
    size_t n = 1;
    if (!fl_mul_size(n, (size_t)w, &n) || !fl_mul_size(n, (size_t)h, &n) || !fl_mul_size(n, (size_t)c, &n) ||
        !fl_mul_size(n, (size_t)z, &n) || !fl_mul_size(n, (size_t)t, &n) || !fl_mul_size(n, sizeof(float), &n) ||
        (uint64_t)c * (uint64_t)z * (uint64_t)t > INT32_MAX)
        return fl_fail(ctx, FL_EINVAL, "image dimensions %lld x %lld x %lld x %lld x %lld are too large", (long long)w,
                       (long long)h, (long long)c, (long long)z, (long long)t);
    *bytes = n;
    return FL_OK;
}

fl_status fl_image_alloc(fl_ctx *ctx, fl_image *img, int64_t w, int64_t h, int64_t c, int64_t z, int64_t t)
{
    if (!img) return fl_fail(ctx, FL_EINVAL, "fl_image_alloc: no image");
    size_t bytes = 0;
    fl_status st = image_size(ctx, w, h, c, z, t, &bytes);
    if (st != FL_OK) return st;
    if ((st = fl_check_budget(ctx, bytes, "the image")) != FL_OK) return st;
    float *d = fl_calloc(bytes / sizeof(float), sizeof(float));
    if (!d) return fl_fail(ctx, FL_ENOMEM, "out of memory for a %.1f MiB image", bytes / 1048576.0);
    free_labels(img);
    fl_free(img->data);
    img->data = d;
    img->width = w;
    img->height = h;
    img->channels = c;
    img->slices = z;
    img->frames = t;
    return FL_OK;
}

void fl_image_copy_calibration(fl_image *dst, const fl_image *src)
{
    dst->pixel_width = src->pixel_width;
    dst->pixel_height = src->pixel_height;
    dst->pixel_depth = src->pixel_depth;
    memcpy(dst->unit, src->unit, sizeof dst->unit);
}

fl_status fl_image_set_label(fl_ctx *ctx, fl_image *img, int64_t plane, const char *label)
{
    if (!img) return fl_fail(ctx, FL_EINVAL, "fl_image_set_label: no image");
    int64_t n = fl_image_planes(img);
    if (plane < 0 || plane >= n)
        return fl_fail(ctx, FL_EINVAL, "slice label for plane %lld, but the image has %lld planes", (long long)plane,
                       (long long)n);
    if (!img->labels) {
        if (!label) return FL_OK;
        img->labels = fl_calloc((size_t)n, sizeof *img->labels);
        if (!img->labels) return fl_fail(ctx, FL_ENOMEM, "out of memory for slice labels");
    }
    char *copy = NULL;
    if (label) {
        size_t len = strlen(label);
        copy = fl_alloc(len + 1);
        if (!copy) return fl_fail(ctx, FL_ENOMEM, "out of memory for a slice label");
        memcpy(copy, label, len + 1);
    }
    fl_free(img->labels[plane]);
    img->labels[plane] = copy;
    return FL_OK;
}

/* ---- UTF-8 / UTF-16 ----------------------------------------------------------------------------- */

static size_t utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Next code point of a NUL-terminated UTF-8 string; invalid bytes give U+FFFD (one byte consumed). */
static uint32_t utf8_next(const unsigned char **ps)
{
    const unsigned char *s = *ps;
    uint32_t c = s[0];
    size_t k = 0;
    uint32_t cp = 0xFFFD;
    if (c < 0x80) { *ps = s + 1; return c; }
    if (c >= 0xC2 && c <= 0xDF) { k = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { k = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { k = 4; cp = c & 0x07; }
    if (!k) { *ps = s + 1; return 0xFFFD; }
    for (size_t i = 1; i < k; i++) {
        if ((s[i] & 0xC0) != 0x80) { *ps = s + 1; return 0xFFFD; }
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((k == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (k == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
        *ps = s + 1;
        return 0xFFFD;
    }
    *ps = s + k;
    return cp;
}

/* UTF-16 code units (byte order `be`) -> new UTF-8 string (fl_alloc). Bad surrogates -> U+FFFD. */
static char *utf16_to_utf8(const unsigned char *p, size_t units, int be)
{
    char *out = fl_alloc(units * 3 + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < units; i++) {
        uint32_t u = be ? (uint32_t)(p[2 * i] << 8 | p[2 * i + 1]) : (uint32_t)(p[2 * i] | p[2 * i + 1] << 8);
        if (u >= 0xD800 && u <= 0xDBFF && i + 1 < units) {
            uint32_t lo = be ? (uint32_t)(p[2 * i + 2] << 8 | p[2 * i + 3]) : (uint32_t)(p[2 * i + 2] | p[2 * i + 3] << 8);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                i++;
            } else {
                u = 0xFFFD;
            }
        } else if (u >= 0xD800 && u <= 0xDFFF) {
            u = 0xFFFD;
        } else if (u == 0) {
            u = 0xFFFD; /* keep C strings intact */
        }
        o += utf8_put(out + o, u);
    }
    out[o] = '\0';
    return out;
}

/* ---- reading ------------------------------------------------------------------------------------ */

static int on_tiff_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    fl_tiff_reader *r = user;
    if (r && !r->have_msg) {
        vsnprintf(r->msg, sizeof r->msg, fmt, ap);
        r->have_msg = 1;
    }
    return 1; /* handled: do not call libtiff's global handler (stderr) */
}

static int on_tiff_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap) { return 1; }

static const char *tiff_msg_or(const fl_tiff_reader *r, const char *fallback)
{
    return r->have_msg ? r->msg : fallback;
}

static fl_status sniff(fl_ctx *ctx, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fl_fail(ctx, FL_EIO, "cannot open '%s': %s", path, strerror(errno));
    unsigned char m[8] = {0};
    size_t n = fread(m, 1, sizeof m, f);
    fclose(f);
    if (n >= 4 && ((m[0] == 'I' && m[1] == 'I' && (m[2] == 42 || m[2] == 43) && m[3] == 0) ||
                   (m[0] == 'M' && m[1] == 'M' && m[2] == 0 && (m[3] == 42 || m[3] == 43))))
        return FL_OK;
    const char *what = "";
    if (n >= 4 && m[0] == 0x89 && m[1] == 'P' && m[2] == 'N' && m[3] == 'G') what = " (it is a PNG image)";
    else if (n >= 3 && m[0] == 0xFF && m[1] == 0xD8 && m[2] == 0xFF) what = " (it is a JPEG image)";
    else if (n >= 3 && m[0] == 'G' && m[1] == 'I' && m[2] == 'F') what = " (it is a GIF image)";
    else if (n == 0) what = " (it is empty)";
    return fl_fail(ctx, FL_EFORMAT, "'%s' is not a TIFF file%s", path, what);
}

fl_status fl_tiff_open(fl_ctx *ctx, const char *path, fl_tiff_reader *r)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->dir = -1;
    fl_status st = sniff(ctx, path);
    if (st != FL_OK) return st;
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return fl_fail(ctx, FL_ENOMEM, "out of memory opening '%s'", path);
    TIFFOpenOptionsSetErrorHandlerExtR(opts, on_tiff_error, r);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, on_tiff_warning, NULL);
    if (ctx && ctx->memory_budget) TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)ctx->memory_budget);
    r->tif = TIFFOpenExt(path, "rm", opts); /* "m": no memory mapping (a truncated file must not SIGBUS) */
    TIFFOpenOptionsFree(opts);
    if (!r->tif)
        return fl_fail(ctx, FL_EFORMAT, "cannot read the TIFF file '%s': %s", path,
                       tiff_msg_or(r, "not a valid TIFF file"));
    r->dir = 0;
    return FL_OK;
}

void fl_tiff_close(fl_tiff_reader *r)
{
    if (!r) return;
    if (r->tif) TIFFClose(r->tif);
    fl_free(r->buf);
    r->tif = NULL;
    r->buf = NULL;
    r->cap = 0;
    r->dir = -1;
}

fl_status fl_tiff_page_count(fl_ctx *ctx, fl_tiff_reader *r, int64_t *pages)
{
    r->have_msg = 0;
    tdir_t ndirs = TIFFNumberOfDirectories(r->tif);
    if (ndirs == 0 || ndirs > FL_TIFF_MAX_PAGES)
        return fl_fail(ctx, FL_EFORMAT, "'%s': bad number of pages (%u)", r->path, (unsigned)ndirs);
    *pages = (int64_t)ndirs;
    return FL_OK;
}

fl_status fl_tiff_goto_page(fl_ctx *ctx, fl_tiff_reader *r, int64_t page, int64_t pages)
{
    if (r->dir == page) return FL_OK;
    r->have_msg = 0;
    /* sequential reads follow the chain; anything else looks the directory up */
    int ok = r->dir >= 0 && r->dir == page - 1 ? TIFFReadDirectory(r->tif) : TIFFSetDirectory(r->tif, (tdir_t)page);
    if (!ok) {
        r->dir = -1;
        return fl_fail(ctx, FL_EFORMAT, "'%s': page %lld of %lld cannot be read: %s", r->path, (long long)page + 1,
                       (long long)pages, tiff_msg_or(r, "missing page"));
    }
    r->dir = page;
    return FL_OK;
}

fl_status fl_tiff_page_format(fl_ctx *ctx, fl_tiff_reader *r, int64_t page, fl_tiff_page *pf)
{
    TIFF *tif = r->tif;
    const char *path = r->path;
    uint32_t w = 0, h = 0;
    uint16_t spp = 1, bps = 1, fmt = SAMPLEFORMAT_UINT, photo = PHOTOMETRIC_MINISBLACK;
    memset(pf, 0, sizeof *pf);
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h) || w == 0 || h == 0)
        return fl_fail(ctx, FL_EFORMAT, "'%s': page %lld has no valid image size", path, (long long)page + 1);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLEFORMAT, &fmt);
    int have_photo = TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo);
    if (spp != 1 || (have_photo && (photo == PHOTOMETRIC_RGB || photo == PHOTOMETRIC_YCBCR ||
                                    photo == PHOTOMETRIC_SEPARATED || photo == PHOTOMETRIC_CIELAB ||
                                    photo == PHOTOMETRIC_ICCLAB || photo == PHOTOMETRIC_ITULAB))) {
        pf->is_colour = 1;
        return fl_fail(ctx, FL_EUNSUPPORTED,
                       "'%s' holds an RGB/colour image (%u samples per pixel); RGB images are not supported: "
                       "convert to 32-bit grayscale (Image > Type > 32-bit) or split the channels "
                       "(Image > Color > Split Channels) and save again",
                       path, (unsigned)spp);
    }
    if (have_photo && photo == PHOTOMETRIC_PALETTE) {
        pf->is_colour = 1;
        return fl_fail(ctx, FL_EUNSUPPORTED,
                       "'%s' holds a palette (indexed-colour) image, which is not supported: convert to 32-bit "
                       "grayscale (Image > Type > 32-bit) and save again",
                       path);
    }
    if (have_photo && photo != PHOTOMETRIC_MINISBLACK && photo != PHOTOMETRIC_MINISWHITE)
        return fl_fail(ctx, FL_EUNSUPPORTED, "'%s': photometric interpretation %u is not supported", path,
                       (unsigned)photo);
    int kind = -1;
    if (fmt == SAMPLEFORMAT_UINT || fmt == SAMPLEFORMAT_VOID) {
        kind = bps == 8 ? FL_TIFF_U8 : bps == 16 ? FL_TIFF_U16 : bps == 32 ? FL_TIFF_U32 : -1;
    } else if (fmt == SAMPLEFORMAT_INT) {
        kind = bps == 8 ? FL_TIFF_S8 : bps == 16 ? FL_TIFF_S16 : bps == 32 ? FL_TIFF_S32 : -1;
    } else if (fmt == SAMPLEFORMAT_IEEEFP) {
        kind = bps == 32 ? FL_TIFF_F32 : bps == 64 ? FL_TIFF_F64 : -1;
    }
    if (kind < 0)
        return fl_fail(ctx, FL_EUNSUPPORTED,
                       "'%s': %u-bit samples of format %u are not supported (8-, 16-, 32-bit integers and 32/64-bit "
                       "floats are)",
                       path, (unsigned)bps, (unsigned)fmt);
    pf->w = w;
    pf->h = h;
    pf->bps = bps;
    pf->fmt = fmt;
    pf->kind = kind;
    pf->sample_bytes = bps / 8u;
    pf->tiled = TIFFIsTiled(tif);
    return FL_OK;
}

static void convert_row(float *dst, const unsigned char *src, size_t n, int kind)
{
    switch (kind) {
    case FL_TIFF_U8: for (size_t i = 0; i < n; i++) dst[i] = (float)src[i]; break;
    case FL_TIFF_S8: for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)src[i]; break;
    case FL_TIFF_U16: for (size_t i = 0; i < n; i++) { uint16_t v; memcpy(&v, src + 2 * i, 2); dst[i] = (float)v; } break;
    case FL_TIFF_S16: for (size_t i = 0; i < n; i++) { int16_t v; memcpy(&v, src + 2 * i, 2); dst[i] = (float)v; } break;
    case FL_TIFF_U32: for (size_t i = 0; i < n; i++) { uint32_t v; memcpy(&v, src + 4 * i, 4); dst[i] = (float)v; } break;
    case FL_TIFF_S32: for (size_t i = 0; i < n; i++) { int32_t v; memcpy(&v, src + 4 * i, 4); dst[i] = (float)v; } break;
    case FL_TIFF_F32: memcpy(dst, src, n * 4); break;
    default: for (size_t i = 0; i < n; i++) { double v; memcpy(&v, src + 8 * i, 8); dst[i] = (float)v; } break;
    }
}

static fl_status ensure_buf(fl_ctx *ctx, fl_tiff_reader *r, uint64_t need)
{
    if (need <= r->cap) return FL_OK;
    if (need > SIZE_MAX / 2) return fl_fail(ctx, FL_EFORMAT, "TIFF strip or tile too large");
    fl_status st = fl_check_budget(ctx, (size_t)need, "a TIFF strip buffer");
    if (st != FL_OK) return st;
    unsigned char *p = fl_alloc((size_t)need);
    if (!p) return fl_fail(ctx, FL_ENOMEM, "out of memory for a %.1f MiB TIFF strip", need / 1048576.0);
    fl_free(r->buf);
    r->buf = p;
    r->cap = (size_t)need;
    return FL_OK;
}

fl_status fl_tiff_read_page(fl_ctx *ctx, fl_tiff_reader *r, int64_t page, const fl_tiff_page *pf, float *dst)
{
    fl_status st;
    TIFF *tif = r->tif;
    const char *path = r->path;
    const size_t w = pf->w, h = pf->h, sb = pf->sample_bytes;
    if (!pf->tiled) {
        uint32_t rps = 0;
        TIFFGetFieldDefaulted(tif, TIFFTAG_ROWSPERSTRIP, &rps);
        if (rps == 0 || rps > h) rps = (uint32_t)h;
        uint64_t row_bytes = TIFFScanlineSize64(tif);
        if (row_bytes != (uint64_t)w * sb)
            return fl_fail(ctx, FL_EFORMAT, "'%s': unexpected row size on page %lld", path, (long long)page + 1);
        uint32_t nstrips = TIFFNumberOfStrips(tif);
        for (uint64_t row = 0; row < h; row += rps) {
            uint32_t strip = TIFFComputeStrip(tif, (uint32_t)row, 0);
            uint64_t rows = h - row < rps ? h - row : rps;
            uint64_t need = rows * row_bytes;
            if (strip >= nstrips)
                return fl_fail(ctx, FL_EFORMAT, "'%s': page %lld lacks strip %u", path, (long long)page + 1, strip);
            unsigned char *target;
            int direct = pf->kind == FL_TIFF_F32;
            if (direct) {
                target = (unsigned char *)(dst + row * w);
            } else {
                if ((st = ensure_buf(ctx, r, need)) != FL_OK) return st;
                target = r->buf;
            }
            r->have_msg = 0;
            tmsize_t got = TIFFReadEncodedStrip(tif, strip, target, (tmsize_t)need);
            if (got < 0 || (uint64_t)got < need)
                return fl_fail(ctx, FL_EFORMAT, "'%s' is truncated or corrupt (page %lld, strip %u): %s", path,
                               (long long)page + 1, strip, tiff_msg_or(r, "short strip"));
            if (!direct)
                for (uint64_t q = 0; q < rows; q++) convert_row(dst + (row + q) * w, target + q * row_bytes, w, pf->kind);
        }
    } else {
        uint32_t tw = 0, th = 0;
        TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
        TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
        uint64_t tsize = TIFFTileSize64(tif), trow = TIFFTileRowSize64(tif);
        /* a tile no wider or taller than 65536 and not (much) larger than the page: a hostile file
         * cannot make one tile cost more memory than the image */
        if (tw == 0 || th == 0 || tw > 65536 || th > 65536 || tsize == 0 || trow != (uint64_t)tw * sb ||
            tsize < (uint64_t)th * trow || tsize > 4 * ((uint64_t)w + tw) * ((uint64_t)h + th) * sb)
            return fl_fail(ctx, FL_EFORMAT, "'%s': bad tile layout on page %lld", path, (long long)page + 1);
        if ((st = ensure_buf(ctx, r, tsize)) != FL_OK) return st;
        uint32_t ntiles = TIFFNumberOfTiles(tif);
        for (uint64_t y = 0; y < h; y += th) {
            for (uint64_t x = 0; x < w; x += tw) {
                uint32_t tile = TIFFComputeTile(tif, (uint32_t)x, (uint32_t)y, 0, 0);
                if (tile >= ntiles)
                    return fl_fail(ctx, FL_EFORMAT, "'%s': page %lld lacks tile %u", path, (long long)page + 1, tile);
                r->have_msg = 0;
                tmsize_t got = TIFFReadEncodedTile(tif, tile, r->buf, (tmsize_t)tsize);
                if (got < 0 || (uint64_t)got < tsize)
                    return fl_fail(ctx, FL_EFORMAT, "'%s' is truncated or corrupt (page %lld, tile %u): %s", path,
                                   (long long)page + 1, tile, tiff_msg_or(r, "short tile"));
                uint64_t rows = h - y < th ? h - y : th, cols = w - x < tw ? w - x : tw;
                for (uint64_t q = 0; q < rows; q++) convert_row(dst + (y + q) * w + x, r->buf + q * trow, cols, pf->kind);
            }
        }
    }
    return FL_OK;
}

/* ImageJ's contiguous layout: `planes` uncompressed planes back to back from the first strip offset. */
static fl_status read_contiguous(fl_ctx *ctx, fl_tiff_reader *r, const fl_tiff_page *pf, int64_t planes, float *dst)
{
    TIFF *tif = r->tif;
    const char *path = r->path;
    const uint64_t sb = pf->sample_bytes, row_bytes = (uint64_t)pf->w * sb;
    const uint64_t plane_bytes = row_bytes * pf->h;
    uint64_t off = TIFFGetStrileOffset(tif, 0), total;
    if (plane_bytes > UINT64_MAX / (uint64_t)planes || (total = plane_bytes * (uint64_t)planes) > UINT64_MAX - off)
        return fl_fail(ctx, FL_EFORMAT, "'%s': image data too large", path);
    FILE *f = fopen(path, "rb");
    if (!f) return fl_fail(ctx, FL_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sbuf;
    fl_status st = FL_OK;
    if (fstat(fileno(f), &sbuf) != 0 || (uint64_t)sbuf.st_size < off + total) {
        st = fl_fail(ctx, FL_EFORMAT,
                     "'%s' is truncated: its ImageJ description announces %lld images of %u x %u pixels, but the file "
                     "ends before their data does",
                     path, (long long)planes, pf->w, pf->h);
        goto done;
    }
    uint64_t rows_per_chunk = row_bytes >= (4u << 20) ? 1 : (4u << 20) / row_bytes;
    if ((st = ensure_buf(ctx, r, rows_per_chunk * row_bytes)) != FL_OK) goto done;
    if (fseeko(f, (off_t)off, SEEK_SET) != 0) {
        st = fl_fail(ctx, FL_EIO, "cannot seek in '%s'", path);
        goto done;
    }
    int swap = TIFFIsByteSwapped(tif);
    uint64_t all_rows = (uint64_t)pf->h * (uint64_t)planes;
    for (uint64_t row = 0; row < all_rows; row += rows_per_chunk) {
        uint64_t rows = all_rows - row < rows_per_chunk ? all_rows - row : rows_per_chunk;
        size_t n = (size_t)(rows * row_bytes);
        unsigned char *raw = r->buf;
        if (fread(raw, 1, n, f) != n) {
            st = fl_fail(ctx, FL_EFORMAT, "'%s' ends early", path);
            goto done;
        }
        if (swap && sb > 1)
            for (size_t i = 0; i < n; i += sb)
                for (size_t a = 0, b = sb - 1; a < b; a++, b--) {
                    unsigned char tmp = raw[i + a];
                    raw[i + a] = raw[i + b];
                    raw[i + b] = tmp;
                }
        for (uint64_t q = 0; q < rows; q++) convert_row(dst + (row + q) * pf->w, raw + q * row_bytes, pf->w, pf->kind);
    }
done:
    fclose(f);
    return st;
}

/* Decode ImageJ's \uXXXX escapes (as ImageJ's own decoder does) into UTF-8; copy at most cap-1 bytes,
 * never cutting a UTF-8 sequence. */
static void copy_unit(char *dst, size_t cap, const char *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char tmp[8];
        size_t k;
        unsigned v = 0;
        int ok = 0;
        if (s[i] == '\\' && i + 6 <= n && s[i + 1] == 'u') {
            ok = 1;
            for (int j = 2; j < 6; j++) {
                char c = s[i + j];
                int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                                      : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0) ok = 0;
                v = v * 16 + (unsigned)(d < 0 ? 0 : d);
            }
            if (v == 0 || (v >= 0xD800 && v <= 0xDFFF)) ok = 0;
        }
        if (ok) {
            k = utf8_put(tmp, v);
            i += 6;
        } else {
            const unsigned char *p = (const unsigned char *)s + i, *q = p;
            /* copy one (possibly multi-byte) character as is */
            uint32_t cp = utf8_next(&q);
            (void)cp;
            k = (size_t)(q - p);
            if (k > n - i) k = n - i;
            memcpy(tmp, p, k);
            i += k;
        }
        if (o + k >= cap) break;
        memcpy(dst + o, tmp, k);
        o += k;
    }
    dst[o] = '\0';
}

typedef struct ij_desc {
    int is_ij;
    int64_t images, channels, slices, frames;
    double spacing, finterval;
    int have_unit, have_spacing, have_finterval;
    char unit[32];
} ij_desc;

static int parse_count(const char *v, size_t n, int64_t *out)
{
    double d;
    if (!fl_parse_double_c(v, n, &d) || d < 1 || d > INT32_MAX || d != floor(d)) return 0;
    *out = (int64_t)d;
    return 1;
}

static void parse_description(const char *desc, ij_desc *d)
{
    memset(d, 0, sizeof *d);
    if (!desc || strncmp(desc, "ImageJ=", 7) != 0) return;
    d->is_ij = 1;
    const char *p = desc;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq) {
            size_t kl = (size_t)(eq - p), vl = len - kl - 1;
            const char *v = eq + 1;
            if (vl && v[vl - 1] == '\r') vl--;
            double x;
            if (kl == 6 && !memcmp(p, "images", 6)) parse_count(v, vl, &d->images);
            else if (kl == 8 && !memcmp(p, "channels", 8)) parse_count(v, vl, &d->channels);
            else if (kl == 6 && !memcmp(p, "slices", 6)) parse_count(v, vl, &d->slices);
            else if (kl == 6 && !memcmp(p, "frames", 6)) parse_count(v, vl, &d->frames);
            else if (kl == 4 && !memcmp(p, "unit", 4) && vl > 0) {
                copy_unit(d->unit, sizeof d->unit, v, vl);
                d->have_unit = d->unit[0] != '\0';
            } else if (kl == 7 && !memcmp(p, "spacing", 7) && fl_parse_double_c(v, vl, &x) && x > 0) {
                d->spacing = x;
                d->have_spacing = 1;
            } else if (kl == 9 && !memcmp(p, "finterval", 9) && fl_parse_double_c(v, vl, &x) && x >= 0) {
                d->finterval = x;
                d->have_finterval = 1;
            }
        }
        if (!eol) break;
        p = eol + 1;
    }
}

static uint32_t rd32(const unsigned char *p, int be)
{
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Slice labels from ImageJ's metadata tags of the current directory. Malformed metadata is ignored
 * (as ImageJ does); only allocation failure is an error. */
static fl_status read_ij_labels(fl_ctx *ctx, TIFF *tif, fl_image *img)
{
    const TIFFField *fc = TIFFFindField(tif, TAG_IJ_COUNTS, TIFF_ANY);
    const TIFFField *fm = TIFFFindField(tif, TAG_IJ_META, TIFF_ANY);
    if (!fc || !fm || !TIFFFieldPassCount(fc) || !TIFFFieldPassCount(fm) ||
        TIFFFieldReadCount(fc) != TIFF_VARIABLE2 || TIFFFieldReadCount(fm) != TIFF_VARIABLE2)
        return FL_OK;
    TIFFDataType tc = TIFFFieldDataType(fc), tm = TIFFFieldDataType(fm);
    if ((tc != TIFF_LONG && tc != TIFF_SHORT) || (tm != TIFF_BYTE && tm != TIFF_UNDEFINED && tm != TIFF_SBYTE))
        return FL_OK;
    uint32_t nc = 0, nm = 0;
    const void *cv = NULL;
    const unsigned char *mv = NULL;
    if (!TIFFGetField(tif, TAG_IJ_COUNTS, &nc, &cv) || !TIFFGetField(tif, TAG_IJ_META, &nm, &mv) || !cv || !mv ||
        nc < 1)
        return FL_OK;
#define COUNT_AT(i) (tc == TIFF_LONG ? (uint64_t)((const uint32_t *)cv)[i] : (uint64_t)((const uint16_t *)cv)[i])
    int be = TIFFIsBigEndian(tif);
    uint64_t hdr = COUNT_AT(0);
    if (hdr < 4 || (hdr - 4) % 8 || hdr > nm || rd32(mv, be) != IJ_MAGIC) return FL_OK;
    uint64_t ntypes = (hdr - 4) / 8, idx = 1, pos = hdr;
    int64_t planes = fl_image_planes(img);
    for (uint64_t i = 0; i < ntypes; i++) {
        uint32_t type = rd32(mv + 4 + 8 * i, be), cnt = rd32(mv + 8 + 8 * i, be);
        if (cnt > nc - idx) return FL_OK;
        for (uint64_t k = 0; k < cnt; k++) {
            uint64_t len = COUNT_AT(idx + k);
            if (len > nm - pos) return FL_OK;
            if (type == IJ_LABELS && len >= 2 && (int64_t)k < planes) {
                char *s = utf16_to_utf8(mv + pos, (size_t)(len / 2), be);
                if (!s) return fl_fail(ctx, FL_ENOMEM, "out of memory for slice labels");
                fl_status st = fl_image_set_label(ctx, img, (int64_t)k, s);
                fl_free(s);
                if (st != FL_OK) return st;
            }
            pos += len;
        }
        idx += cnt;
    }
#undef COUNT_AT
    return FL_OK;
}

/* Largest compression ratio accepted when checking a compressed page against the file size: zstd's
 * RLE blocks and LERC reach a few 10^4 on constant data; 2^20 leaves a margin and still refuses a
 * 100-byte file that claims gigabytes. */
#define FL_TIFF_MAX_RATIO ((uint64_t)1 << 20)

/* Before anything is allocated: the pixel data the pages claim must be able to fit in the file.
 * An uncompressed page needs w*h*bytes per sample bytes in the file; a compressed one at least that
 * divided by FL_TIFF_MAX_RATIO. Walks every directory (cheap: the tags only) and goes back to the
 * first one. `contiguous` (ImageJ's single-IFD layout) needs all `npages` planes after the first
 * strip offset. */
static fl_status check_claim_fits(fl_ctx *ctx, fl_tiff_reader *r, const fl_tiff_page *pf0, int contiguous,
                                  int64_t npages)
{
    TIFF *tif = r->tif;
    const char *path = r->path;
    struct stat sb;
    if (stat(path, &sb) != 0) return fl_fail(ctx, FL_EIO, "cannot read the size of '%s': %s", path, strerror(errno));
    const uint64_t fsize = (uint64_t)sb.st_size;
    const uint64_t page0 = (uint64_t)pf0->w * pf0->h * pf0->sample_bytes; /* < 2^32 * 2^32 * 8: may wrap */
    int wraps = pf0->w && (uint64_t)pf0->h * pf0->sample_bytes > UINT64_MAX / pf0->w;
    if (contiguous) {
        uint64_t off = TIFFGetStrileOffset(tif, 0);
        if (wraps || page0 > UINT64_MAX / (uint64_t)npages || page0 * (uint64_t)npages > fsize ||
            off > fsize - page0 * (uint64_t)npages)
            return fl_fail(ctx, FL_EFORMAT,
                           "'%s' is truncated or damaged: its ImageJ description announces %lld images of %u x %u "
                           "pixels (%.4g MB), but the file holds only %llu bytes",
                           path, (long long)npages, pf0->w, pf0->h, (double)pf0->w * pf0->h * pf0->sample_bytes * npages / 1e6,
                           (unsigned long long)fsize);
        return FL_OK;
    }
    double claimed = 0; /* MB, for the message */
    uint64_t need = 0;  /* lower bound of the bytes the pages occupy */
    int failed = 0;
    for (int64_t p = 0; p < npages; p++) {
        fl_tiff_page pf = *pf0;
        if (p > 0) {
            r->have_msg = 0;
            if (!TIFFReadDirectory(tif)) break; /* reported by the reading loop */
            uint32_t w = 0, h = 0;
            uint16_t bps = 1;
            if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h)) break;
            TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
            pf.w = w;
            pf.h = h;
            pf.sample_bytes = bps >= 8 ? bps / 8u : 1u;
        }
        uint16_t comp = COMPRESSION_NONE;
        TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
        double bytes = (double)pf.w * (double)pf.h * (double)pf.sample_bytes;
        claimed += bytes / 1e6;
        double lower = comp == COMPRESSION_NONE ? bytes : bytes / (double)FL_TIFF_MAX_RATIO;
        if ((double)need + lower > (double)fsize) failed = 1;
        else need += (uint64_t)lower;
        if (failed) break;
    }
    if (npages > 1 && !TIFFSetDirectory(tif, 0))
        return fl_fail(ctx, FL_EFORMAT, "'%s': cannot go back to the first page: %s", path,
                       tiff_msg_or(r, "damaged directory chain"));
    if (failed)
        return fl_fail(ctx, FL_EFORMAT,
                       "'%s' is truncated or damaged: its pages claim %.4g MB of pixel data (%lld pages, the first "
                       "%u x %u pixels of %u bytes), which cannot fit in a file of %llu bytes",
                       path, claimed, (long long)npages, pf0->w, pf0->h, (unsigned)pf0->sample_bytes,
                       (unsigned long long)fsize);
    return FL_OK;
}

fl_status fl_tiff_read(fl_ctx *ctx, const char *path, fl_image *out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_tiff_read: no output image");
    fl_image_init(out);
    if (!path) return fl_fail(ctx, FL_EINVAL, "fl_tiff_read: no file name");
    fl_tiff_reader r;
    fl_tiff_page pf0 = {0}, pf = {0};
    int64_t ndirs = 0;
    fl_status st = fl_tiff_open(ctx, path, &r);
    if (st != FL_OK) {
        fl_tiff_close(&r);
        return st;
    }
    TIFF *tif = r.tif;
    if ((st = fl_tiff_page_format(ctx, &r, 0, &pf0)) != FL_OK) goto fail;
    if ((st = fl_tiff_page_count(ctx, &r, &ndirs)) != FL_OK) goto fail;

    /* metadata of the first page */
    const char *desc = NULL;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc)) desc = NULL;
    ij_desc d;
    parse_description(desc, &d);
    int64_t c = 1, z = ndirs, t = 1, npages = ndirs;
    /* ImageJ's single-IFD layout: "images=N" with fewer IFDs than N (ImageJ saves stacks > 4 GiB
     * that way; ImageJ itself reads every such file as N contiguous planes after the first strip). */
    int contiguous = 0;
    if (d.is_ij && d.images > 1 && d.images > ndirs) {
        uint16_t comp = COMPRESSION_NONE;
        TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
        if (comp != COMPRESSION_NONE || pf0.tiled) {
            st = fl_fail(ctx, FL_EFORMAT,
                         "'%s' is truncated or damaged: its ImageJ description announces %lld images but it holds %u "
                         "pages",
                         path, (long long)d.images, (unsigned)ndirs);
            goto fail;
        }
        contiguous = 1;
        npages = d.images;
        z = d.images;
    }
    if (d.is_ij) {
        int64_t dc = d.channels ? d.channels : 1, dz = d.slices ? d.slices : 1, dt = d.frames ? d.frames : 1;
        if (!d.channels && !d.slices && !d.frames && d.images > 1) dz = d.images;
        /* each count is <= INT32_MAX (parse_count), so dc * dz fits; testing it against npages first
         * keeps the triple product from overflowing */
        if (dc * dz <= npages && dc * dz * dt == npages) {
            c = dc;
            z = dz;
            t = dt;
        }
    }
    size_t bytes;
    if ((st = check_claim_fits(ctx, &r, &pf0, contiguous, npages)) != FL_OK) goto fail;
    if ((st = image_size(ctx, pf0.w, pf0.h, c, z, t, &bytes)) != FL_OK) goto fail;
    if ((st = fl_check_budget(ctx, bytes, "reading the TIFF file")) != FL_OK) goto fail;
    if ((st = fl_image_alloc(ctx, out, pf0.w, pf0.h, c, z, t)) != FL_OK) goto fail;
    out->source_bits = pf0.bps > 32 ? 32 : pf0.bps;

    float xres = 0, yres = 0;
    uint16_t resunit = RESUNIT_NONE;
    int have_x = TIFFGetField(tif, TIFFTAG_XRESOLUTION, &xres) && isfinite(xres) && xres > 0 && isfinite(1.0 / xres);
    int have_y = TIFFGetField(tif, TIFFTAG_YRESOLUTION, &yres) && isfinite(yres) && yres > 0 && isfinite(1.0 / yres);
    TIFFGetFieldDefaulted(tif, TIFFTAG_RESOLUTIONUNIT, &resunit);
    if (have_x) {
        out->pixel_width = 1.0 / xres;
        out->pixel_height = have_y ? 1.0 / yres : out->pixel_width;
        if (resunit == RESUNIT_INCH) strcpy(out->unit, "inch");
        else if (resunit == RESUNIT_CENTIMETER) strcpy(out->unit, "cm");
    }
    if (d.have_unit) snprintf(out->unit, sizeof out->unit, "%s", d.unit);
    if (d.have_spacing) out->pixel_depth = d.spacing;
    if (d.have_finterval) out->frame_interval = d.finterval;
    if ((st = read_ij_labels(ctx, tif, out)) != FL_OK) goto fail;

    int64_t planes = fl_image_planes(out);
    size_t plane_px = (size_t)pf0.w * pf0.h;
    if (contiguous) {
        st = read_contiguous(ctx, &r, &pf0, planes, out->data);
        if (st != FL_OK) goto fail;
        planes = 0; /* done */
    }
    for (int64_t p = 0; p < planes; p++) {
        if (p > 0) {
            if ((st = fl_tiff_goto_page(ctx, &r, p, planes)) != FL_OK) goto fail;
            if ((st = fl_tiff_page_format(ctx, &r, p, &pf)) != FL_OK) goto fail;
            if (pf.w != pf0.w || pf.h != pf0.h) {
                st = fl_fail(ctx, FL_EUNSUPPORTED,
                             "'%s': page %lld is %u x %u pixels but page 1 is %u x %u; only stacks of equally sized "
                             "pages can be read",
                             path, (long long)p + 1, pf.w, pf.h, pf0.w, pf0.h);
                goto fail;
            }
        } else {
            pf = pf0;
        }
        if ((st = fl_tiff_read_page(ctx, &r, p, &pf, out->data + (size_t)p * plane_px)) != FL_OK) goto fail;
        if ((st = fl_progress(ctx, "read", p + 1, planes, NAN, NAN)) != FL_OK) goto fail;
    }
    fl_tiff_close(&r);
    return FL_OK;
fail:
    fl_tiff_close(&r);
    fl_image_free(out);
    out->is_rgb = pf0.is_colour || pf.is_colour;
    return st;
}

/* ---- writing ------------------------------------------------------------------------------------ */

enum { T_BYTE = 1, T_ASCII = 2, T_SHORT = 3, T_LONG = 4, T_RATIONAL = 5, T_LONG8 = 16 };

typedef struct tent {
    uint16_t tag, type;
    uint64_t count;
    const void *vals; /* host-order values: uint8/char, uint16, uint32 (rational: 2 per value), uint64 */
} tent;

static size_t tsize(uint16_t type)
{
    switch (type) {
    case T_SHORT: return 2;
    case T_LONG: return 4;
    case T_RATIONAL:
    case T_LONG8: return 8;
    default: return 1;
    }
}

static uint64_t align8(uint64_t x) { return (x + 7) & ~(uint64_t)7; }

static uint64_t ifd_bytes(int big, const tent *e, int n)
{
    uint64_t s = align8(big ? 8 + 20 * (uint64_t)n + 8 : 2 + 12 * (uint64_t)n + 4);
    for (int i = 0; i < n; i++) {
        uint64_t b = e[i].count * tsize(e[i].type);
        if (b > (big ? 8u : 4u)) s += align8(b);
    }
    return s;
}

/* The writer produces big-endian ("MM") files, as ImageJ 1 traditionally does: ImageJ's decoder of
 * little-endian slice labels mangles characters above U+00FF (operator precedence in
 * TiffDecoder.getSliceLabels), its big-endian path is right. */
static void put_be(unsigned char *p, uint64_t v, int nb)
{
    for (int i = 0; i < nb; i++) p[i] = (unsigned char)(v >> (8 * (nb - 1 - i)));
}

static void emit_vals(unsigned char *dst, const tent *e)
{
    switch (e->type) {
    case T_SHORT: for (uint64_t i = 0; i < e->count; i++) put_be(dst + 2 * i, ((const uint16_t *)e->vals)[i], 2); break;
    case T_LONG: for (uint64_t i = 0; i < e->count; i++) put_be(dst + 4 * i, ((const uint32_t *)e->vals)[i], 4); break;
    case T_RATIONAL:
        for (uint64_t i = 0; i < 2 * e->count; i++) put_be(dst + 4 * i, ((const uint32_t *)e->vals)[i], 4);
        break;
    case T_LONG8: for (uint64_t i = 0; i < e->count; i++) put_be(dst + 8 * i, ((const uint64_t *)e->vals)[i], 8); break;
    default: memcpy(dst, e->vals, (size_t)e->count);
    }
}

/* Serialises an IFD located at file offset `base` into buf (ifd_bytes() long, zeroed here). */
static void ifd_emit(unsigned char *buf, uint64_t base, int big, const tent *e, int n, uint64_t next)
{
    uint64_t total = ifd_bytes(big, e, n);
    memset(buf, 0, (size_t)total);
    size_t p = 0;
    put_be(buf, (uint64_t)n, big ? 8 : 2);
    p = big ? 8 : 2;
    uint64_t extra = align8(big ? 8 + 20 * (uint64_t)n + 8 : 2 + 12 * (uint64_t)n + 4);
    for (int i = 0; i < n; i++) {
        put_be(buf + p, e[i].tag, 2);
        put_be(buf + p + 2, e[i].type, 2);
        put_be(buf + p + 4, e[i].count, big ? 8 : 4);
        size_t vo = p + (big ? 12 : 8);
        uint64_t b = e[i].count * tsize(e[i].type);
        if (b <= (big ? 8u : 4u)) {
            emit_vals(buf + vo, &e[i]);
        } else {
            put_be(buf + vo, base + extra, big ? 8 : 4);
            emit_vals(buf + extra, &e[i]);
            extra += align8(b);
        }
        p += big ? 20 : 12;
    }
    put_be(buf + p, next, big ? 8 : 4);
}

/* Best rational approximation num/den of x > 0 with 32-bit terms (continued fractions). */
static void to_rational(double x, uint32_t *num, uint32_t *den)
{
    uint64_t h0 = 0, h1 = 1, k0 = 1, k1 = 0;
    double v = x;
    for (int i = 0; i < 64; i++) {
        double a = floor(v);
        if (!(a <= 4294967295.0)) break;
        uint64_t ai = (uint64_t)a;
        uint64_t h2 = ai * h1 + h0, k2 = ai * k1 + k0;
        if (h2 > UINT32_MAX || k2 > UINT32_MAX) break;
        h0 = h1; h1 = h2; k0 = k1; k1 = k2;
        double frac = v - a;
        if (frac < 1e-12 || fabs((double)h1 / (double)k1 - x) <= 1e-16 * x) break;
        v = 1.0 / frac;
    }
    if (k1 == 0) {
        *num = x >= 4294967295.0 ? UINT32_MAX : (uint32_t)x;
        *den = 1;
    } else {
        *num = (uint32_t)h1;
        *den = (uint32_t)k1;
    }
}

/* Shortest of %.15g / %.17g that reads back exactly. */
static void append_num(fl_strbuf *b, const char *key, double v)
{
    fl_strbuf tmp;
    fl_strbuf_init(&tmp);
    fl_strbuf_printf_c(&tmp, "%.15g", v);
    double back;
    if (tmp.failed || !fl_parse_double_c(tmp.data, tmp.len, &back) || back != v) {
        fl_strbuf_free(&tmp);
        fl_strbuf_init(&tmp);
        fl_strbuf_printf_c(&tmp, "%.17g", v);
    }
    if (tmp.failed) {
        b->failed = 1;
    } else {
        fl_strbuf_printf(b, "%s=", key);
        fl_strbuf_append(b, tmp.data, tmp.len);
        fl_strbuf_append(b, "\n", 1);
    }
    fl_strbuf_free(&tmp);
}

/* ImageJ writes non-ASCII unit characters as \uXXXX; control characters would break the description. */
static void append_unit(fl_strbuf *b, const char *unit)
{
    fl_strbuf_append(b, "unit=", 5);
    const unsigned char *s = (const unsigned char *)unit;
    while (*s) {
        uint32_t cp = utf8_next(&s);
        if (cp < 0x20 || cp == 0x7F) {
            fl_strbuf_append(b, "_", 1);
        } else if (cp < 0x80) {
            char ch = (char)cp;
            fl_strbuf_append(b, &ch, 1);
        } else if (cp < 0x10000) {
            fl_strbuf_printf(b, "\\u%04X", (unsigned)cp);
        } else {
            cp -= 0x10000;
            fl_strbuf_printf(b, "\\u%04X\\u%04X", (unsigned)(0xD800 + (cp >> 10)), (unsigned)(0xDC00 + (cp & 0x3FF)));
        }
    }
    fl_strbuf_append(b, "\n", 1);
}

fl_status fl_tiff_write(fl_ctx *ctx, const char *path, const fl_image *img)
{
    return fl_tiff_write_ex(ctx, path, img, 0);
}

fl_status fl_tiff_write_ex(fl_ctx *ctx, const char *path, const fl_image *img, int force_bigtiff)
{
    if (!path || !img) return fl_fail(ctx, FL_EINVAL, "fl_tiff_write: missing argument");
    size_t total_bytes;
    fl_status st = image_size(ctx, img->width, img->height, img->channels, img->slices, img->frames, &total_bytes);
    if (st != FL_OK) return st;
    if (!img->data) return fl_fail(ctx, FL_EINVAL, "fl_tiff_write: the image has no pixel data");
    const int64_t C = img->channels, Z = img->slices, T = img->frames, N = C * Z * T;
    const uint64_t plane_bytes = (uint64_t)img->width * (uint64_t)img->height * 4u;
    const size_t plane_px = (size_t)img->width * (size_t)img->height;

    /* min / max of the finite values (ImageJ's display range) */
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0, n = total_bytes / 4; i < n; i++) {
        float v = img->data[i];
        if (isfinite(v)) {
            if (v < mn) mn = v;
            if (v > mx) mx = v;
        }
    }
    if (!(mn <= mx)) mn = mx = 0;

    /* description */
    fl_strbuf desc;
    fl_strbuf_init(&desc);
    fl_strbuf_append(&desc, "ImageJ=1.53t\n", 13);
    if (N > 1) fl_strbuf_printf(&desc, "images=%lld\n", (long long)N);
    if (C > 1) fl_strbuf_printf(&desc, "channels=%lld\n", (long long)C);
    if (Z > 1) fl_strbuf_printf(&desc, "slices=%lld\n", (long long)Z);
    if (T > 1) fl_strbuf_printf(&desc, "frames=%lld\n", (long long)T);
    if ((C > 1) + (Z > 1) + (T > 1) > 1) fl_strbuf_append(&desc, "hyperstack=true\n", 16);
    if (C > 1) fl_strbuf_append(&desc, "mode=grayscale\n", 15);
    char unit[sizeof img->unit + 1];
    memcpy(unit, img->unit, sizeof img->unit);
    unit[sizeof img->unit] = '\0';
    int has_unit = unit[0] && strcmp(unit, "pixel") && strcmp(unit, "pixels");
    if (has_unit) append_unit(&desc, unit);
    if (isfinite(img->frame_interval) && img->frame_interval > 0) append_num(&desc, "finterval", img->frame_interval);
    if (N > 1 && isfinite(img->pixel_depth) && img->pixel_depth > 0 && img->pixel_depth != 1.0)
        append_num(&desc, "spacing", img->pixel_depth);
    fl_strbuf_append(&desc, "loop=false\n", 11);
    append_num(&desc, "min", mn);
    append_num(&desc, "max", mx);
    fl_strbuf_append(&desc, "", 1); /* the NUL is part of an ASCII tag (and of desc.len) */

    /* ImageJ metadata: slice labels */
    int64_t nlab = 0;
    if (img->labels)
        for (int64_t i = 0; i < N; i++)
            if (img->labels[i] && img->labels[i][0]) nlab = i + 1;
    uint32_t *counts = NULL;
    unsigned char *meta = NULL;
    uint64_t meta_len = 0;
    if (nlab > 0) {
        counts = fl_calloc((size_t)nlab + 1, sizeof *counts);
        meta_len = 12;
        for (int64_t i = 0; counts && i < nlab; i++) {
            uint64_t units = 0;
            const unsigned char *s = (const unsigned char *)(img->labels[i] ? img->labels[i] : "");
            while (*s) units += utf8_next(&s) >= 0x10000 ? 2 : 1;
            if (units * 2 > (64u << 20) || meta_len + units * 2 > (256u << 20)) {
                fl_free(counts);
                fl_strbuf_free(&desc);
                return fl_fail(ctx, FL_EINVAL, "slice labels are too long to be saved");
            }
            counts[i + 1] = (uint32_t)(units * 2);
            meta_len += units * 2;
        }
        meta = counts ? fl_alloc((size_t)meta_len) : NULL;
        if (!meta) {
            fl_free(counts);
            fl_strbuf_free(&desc);
            return fl_fail(ctx, FL_ENOMEM, "out of memory for slice labels");
        }
        counts[0] = 12;
        put_be(meta, IJ_MAGIC, 4);
        put_be(meta + 4, IJ_LABELS, 4);
        put_be(meta + 8, (uint64_t)nlab, 4);
        size_t o = 12;
        for (int64_t i = 0; i < nlab; i++) {
            const unsigned char *s = (const unsigned char *)(img->labels[i] ? img->labels[i] : "");
            while (*s) {
                uint32_t cp = utf8_next(&s);
                if (cp >= 0x10000) {
                    cp -= 0x10000;
                    put_be(meta + o, 0xD800 + (cp >> 10), 2);
                    put_be(meta + o + 2, 0xDC00 + (cp & 0x3FF), 2);
                    o += 4;
                } else {
                    put_be(meta + o, cp, 2);
                    o += 2;
                }
            }
        }
    }
    if (desc.failed) {
        fl_free(counts);
        fl_free(meta);
        fl_strbuf_free(&desc);
        return fl_fail(ctx, FL_ENOMEM, "out of memory for the image description");
    }

    /* calibration */
    int calibrated = isfinite(img->pixel_width) && img->pixel_width > 0 && isfinite(img->pixel_height) &&
                     img->pixel_height > 0 && (has_unit || img->pixel_width != 1.0 || img->pixel_height != 1.0);
    uint32_t xr[2] = {1, 1}, yr[2] = {1, 1};
    if (calibrated) {
        to_rational(1.0 / img->pixel_width, &xr[0], &xr[1]);
        to_rational(1.0 / img->pixel_height, &yr[0], &yr[1]);
    }

    /* IFD entries; values that vary per page are patched in the loop */
    uint32_t v_zero = 0, v_w = (uint32_t)img->width, v_h = (uint32_t)img->height;
    uint16_t v_32 = 32, v_1 = 1, v_3 = 3;
    uint64_t off64 = 0, cnt64 = plane_bytes;
    uint32_t off32 = 0, cnt32 = 0;
    int big;
    tent e[17];
    int n0 = 0, n1 = 0;
    tent *stripoff = NULL, *stripcnt = NULL;
    uint64_t header, size0 = 0, size1 = 0, data_start = 0, file_size = 0;
    for (big = force_bigtiff ? 1 : 0; big < 2; big++) {
        uint16_t ot = big ? T_LONG8 : T_LONG;
        const void *ov = big ? (const void *)&off64 : (const void *)&off32;
        const void *cv = big ? (const void *)&cnt64 : (const void *)&cnt32;
        int k = 0;
        e[k++] = (tent){254, T_LONG, 1, &v_zero};
        e[k++] = (tent){256, T_LONG, 1, &v_w};
        e[k++] = (tent){257, T_LONG, 1, &v_h};
        e[k++] = (tent){258, T_SHORT, 1, &v_32};
        e[k++] = (tent){259, T_SHORT, 1, &v_1};
        e[k++] = (tent){262, T_SHORT, 1, &v_1};
        int desc_at = k;
        e[k++] = (tent){270, T_ASCII, desc.len, desc.data};
        stripoff = &e[k];
        e[k++] = (tent){273, ot, 1, ov};
        e[k++] = (tent){277, T_SHORT, 1, &v_1};
        e[k++] = (tent){278, T_LONG, 1, &v_h};
        stripcnt = &e[k];
        e[k++] = (tent){279, ot, 1, cv};
        if (calibrated) {
            e[k++] = (tent){282, T_RATIONAL, 1, xr};
            e[k++] = (tent){283, T_RATIONAL, 1, yr};
            e[k++] = (tent){296, T_SHORT, 1, &v_1};
        }
        e[k++] = (tent){339, T_SHORT, 1, &v_3};
        if (nlab > 0) {
            e[k++] = (tent){TAG_IJ_COUNTS, T_LONG, (uint64_t)nlab + 1, counts};
            e[k++] = (tent){TAG_IJ_META, T_BYTE, meta_len, meta};
        }
        n0 = k;
        header = big ? 16 : 8;
        size0 = ifd_bytes(big, e, n0);
        /* pages 1..N-1: same entries without description and metadata */
        tent e1[17];
        n1 = 0;
        for (int i = 0; i < n0; i++)
            if (i != desc_at && e[i].tag != TAG_IJ_COUNTS && e[i].tag != TAG_IJ_META) e1[n1++] = e[i];
        size1 = ifd_bytes(big, e1, n1);
        data_start = align8(header + size0);
        file_size = data_start + (uint64_t)total_bytes + (uint64_t)(N - 1) * size1;
        if (big || file_size <= UINT32_MAX) break;
    }
    if (!big) cnt32 = (uint32_t)plane_bytes;

    unsigned char *ifdbuf = fl_alloc((size_t)(size0 > size1 ? size0 : size1));
    char tmp[4200];
    int fd = -1;
    FILE *f = NULL;
    if (!ifdbuf) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory while writing '%s'", path);
        goto out;
    }
    if ((st = fl_io_tmp_create(ctx, path, tmp, sizeof tmp, &fd)) != FL_OK) goto out;
    f = fdopen(fd, "wb");
    if (!f) {
        close(fd);
        unlink(tmp);
        st = fl_fail(ctx, FL_ENOMEM, "cannot open a stream for '%s'", path);
        goto out;
    }
    /* header */
    unsigned char h[16] = {'M', 'M', 0, 0};
    if (big) {
        put_be(h + 2, 43, 2);
        put_be(h + 4, 8, 2);
        put_be(h + 6, 0, 2);
        put_be(h + 8, 16, 8);
    } else {
        put_be(h + 2, 42, 2);
        put_be(h + 4, 8, 4);
    }
    uint64_t pos = 0;
#define WRITE(ptr, n)                                                                                      \
    do {                                                                                                   \
        if ((n) != 0 && fwrite((ptr), 1, (size_t)(n), f) != (size_t)(n)) {                                  \
            st = fl_fail(ctx, FL_EIO, "cannot write '%s': %s", path, strerror(errno));                     \
            goto out_file;                                                                                 \
        }                                                                                                  \
        pos += (n);                                                                                        \
    } while (0)
    WRITE(h, header);
    off64 = data_start;
    off32 = (uint32_t)data_start;
    uint64_t ifd1_at = data_start + (uint64_t)total_bytes;
    ifd_emit(ifdbuf, header, big, e, n0, N > 1 ? ifd1_at : 0);
    WRITE(ifdbuf, size0);
    {
        static const unsigned char zeros[8] = {0};
        WRITE(zeros, data_start - pos);
    }
    /* pixel data, big-endian, all planes back to back */
    {
        const uint16_t one = 1;
        unsigned char host_le;
        memcpy(&host_le, &one, 1);
        unsigned char chunk[16384];
        for (int64_t p = 0; p < N; p++) {
            const float *src = img->data + (size_t)p * plane_px;
            if (!host_le) {
                WRITE(src, plane_bytes);
            } else {
                for (size_t i = 0; i < plane_px;) {
                    size_t m = plane_px - i < sizeof chunk / 4 ? plane_px - i : sizeof chunk / 4;
                    for (size_t q = 0; q < m; q++) {
                        uint32_t u;
                        memcpy(&u, &src[i + q], 4);
                        u = __builtin_bswap32(u);
                        memcpy(chunk + 4 * q, &u, 4);
                    }
                    WRITE(chunk, m * 4);
                    i += m;
                }
            }
            if ((st = fl_progress(ctx, "write", p + 1, N, NAN, NAN)) != FL_OK) goto out_file;
        }
    }
    /* IFDs of pages 2..N */
    {
        tent e1[17];
        int k = 0;
        for (int i = 0; i < n0; i++)
            if (e[i].tag != 270 && e[i].tag != TAG_IJ_COUNTS && e[i].tag != TAG_IJ_META) e1[k++] = e[i];
        for (int64_t p = 1; p < N; p++) {
            uint64_t at = ifd1_at + (uint64_t)(p - 1) * size1;
            off64 = data_start + (uint64_t)p * plane_bytes;
            off32 = (uint32_t)off64;
            ifd_emit(ifdbuf, at, big, e1, k, p + 1 < N ? at + size1 : 0);
            WRITE(ifdbuf, size1);
        }
    }
#undef WRITE
    (void)stripoff;
    (void)stripcnt;
    if (fflush(f) != 0) st = fl_fail(ctx, FL_EIO, "cannot write '%s': %s", path, strerror(errno));
    else if (fsync(fileno(f)) != 0) st = fl_fail(ctx, FL_EIO, "cannot flush '%s' to disk: %s", path, strerror(errno));
out_file:
    if (fclose(f) != 0 && st == FL_OK) st = fl_fail(ctx, FL_EIO, "cannot write '%s': %s", path, strerror(errno));
    if (st != FL_OK) unlink(tmp);
    else st = fl_io_tmp_commit(ctx, tmp, path);
out:
    fl_free(ifdbuf);
    fl_free(counts);
    fl_free(meta);
    fl_strbuf_free(&desc);
    return st;
}
