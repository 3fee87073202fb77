/* 4D-STEM streaming sources: see native/include/ferrolens/stem.h for the contract.
 *
 * A source keeps at most one page of raw bytes (a TIFF strip/tile or a raw pattern) and one page of
 * floats (only for binning); patterns are read on demand, never the whole file. */
#define _GNU_SOURCE
#include "io/stem4d.h"
#include "io/tiff.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <tiffio.h>
#include <unistd.h>

#define STEM_MAX_DET 65536

enum { SRC_MEM, SRC_RAW, SRC_TIFF };

struct fl_stem4d {
    int kind;
    int64_t det_w, det_h, scan_x, scan_y, n;
    int32_t dtype;
    int big_endian;         /* raw: samples big-endian */
    uint64_t offset;        /* raw: first pattern */
    uint64_t file_bytes;
    size_t sample_bytes, page_bytes; /* raw bytes of one pattern */
    const float *mem;
    int fd;                 /* raw */
    fl_tiff_reader tiff;    /* TIFF: the page-level reader (its path is `path`) */
    char *path;
    unsigned char *raw;     /* raw: one pattern of raw bytes */
    float *page;            /* one unbinned pattern (binning only) */
};

static const char *const dtype_names[] = {"u8", "u16", "i16", "u32", "i32", "f32", "f64", "i8"};
static const size_t dtype_bytes[] = {1, 2, 2, 4, 4, 4, 8, 1};

int fl_stem_dtype_parse(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < 7; i++)
        if (strcmp(name, dtype_names[i]) == 0) return i;
    return -1;
}

const char *fl_stem_dtype_name(int dtype) { return dtype >= 0 && dtype <= 7 ? dtype_names[dtype] : "?"; }

int64_t fl_stem4d_binned(int64_t n, int32_t bin)
{
    if (bin != 1 && bin != 2 && bin != 4) return 0;
    return n / bin;
}

fl_status fl_stem4d_check_bin(fl_ctx *ctx, const fl_stem4d *src, int32_t bin, int64_t *bw, int64_t *bh)
{
    if (!src) return fl_fail(ctx, FL_EINVAL, "no 4D-STEM source");
    if (bin != 1 && bin != 2 && bin != 4) return fl_fail(ctx, FL_EINVAL, "binning must be 1, 2 or 4 (got %d)", (int)bin);
    int64_t w = src->det_w / bin, h = src->det_h / bin;
    if (w < 1 || h < 1)
        return fl_fail(ctx, FL_EINVAL, "binning by %d leaves nothing of the %lld x %lld detector", (int)bin,
                       (long long)src->det_w, (long long)src->det_h);
    *bw = w;
    *bh = h;
    return FL_OK;
}

/* n samples of a raw file, in the file's byte order (big_endian or not, whatever the host), to floats. */
static void convert(float *dst, const unsigned char *s, size_t n, int dtype, int big_endian)
{
    switch (dtype) {
    case FL_STEM_U8: for (size_t i = 0; i < n; i++) dst[i] = (float)s[i]; break;
    case FL_STEM_I8: for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)s[i]; break;
    case FL_STEM_U16:
    case FL_STEM_I16:
        for (size_t i = 0; i < n; i++) {
            uint16_t v = big_endian ? (uint16_t)(s[2 * i] << 8 | s[2 * i + 1]) : (uint16_t)(s[2 * i + 1] << 8 | s[2 * i]);
            dst[i] = dtype == FL_STEM_U16 ? (float)v : (float)(int16_t)v;
        }
        break;
    case FL_STEM_U32:
    case FL_STEM_I32:
    case FL_STEM_F32:
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = s + 4 * i;
            uint32_t v = big_endian ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
                              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
            if (dtype == FL_STEM_U32) dst[i] = (float)v;
            else if (dtype == FL_STEM_I32) dst[i] = (float)(int32_t)v;
            else memcpy(dst + i, &v, 4);
        }
        break;
    default:
        for (size_t i = 0; i < n; i++) {
            const unsigned char *p = s + 8 * i;
            uint64_t v = 0;
            for (int b = 0; b < 8; b++) v |= (uint64_t)p[big_endian ? b : 7 - b] << (8 * (7 - b));
            double d;
            memcpy(&d, &v, 8);
            dst[i] = (float)d;
        }
        break;
    }
}

/* The buffer for one raw pattern (page_bytes), within the budget. */
static fl_status alloc_raw(fl_ctx *ctx, fl_stem4d *s)
{
    fl_status st = fl_check_budget(ctx, s->page_bytes, "a 4D-STEM page buffer");
    if (st) return st;
    s->raw = fl_alloc(s->page_bytes);
    if (!s->raw) return fl_fail(ctx, FL_ENOMEM, "out of memory for a %.1f MiB page buffer", s->page_bytes / 1048576.0);
    return FL_OK;
}

static fl_status new_source(fl_ctx *ctx, fl_stem4d **out)
{
    fl_stem4d *s = calloc(1, sizeof *s);
    if (!s) return fl_fail(ctx, FL_ENOMEM, "out of memory");
    s->fd = -1;
    *out = s;
    return FL_OK;
}

void fl_stem4d_close(fl_stem4d *s)
{
    if (!s) return;
    fl_tiff_close(&s->tiff);
    if (s->fd >= 0) close(s->fd);
    free(s->path);
    fl_free(s->raw);
    fl_free(s->page);
    free(s);
}

/* Dimensions: all > 0, detector <= 65536 per side, products without overflow. */
static fl_status check_dims(fl_ctx *ctx, const char *what, int64_t dw, int64_t dh, int64_t sx, int64_t sy,
                            size_t sample_bytes, uint64_t *total_bytes)
{
    if (dw < 1 || dh < 1 || sx < 1 || sy < 1)
        return fl_fail(ctx, FL_EINVAL, "%s: detector %lld x %lld and scan %lld x %lld must all be at least 1", what,
                       (long long)dw, (long long)dh, (long long)sx, (long long)sy);
    if (dw > STEM_MAX_DET || dh > STEM_MAX_DET)
        return fl_fail(ctx, FL_EINVAL, "%s: a detector of %lld x %lld pixels is larger than %d x %d", what,
                       (long long)dw, (long long)dh, STEM_MAX_DET, STEM_MAX_DET);
    if (sx > INT32_MAX || sy > INT32_MAX || sx * sy > (int64_t)INT32_MAX * 64)
        return fl_fail(ctx, FL_EINVAL, "%s: a scan of %lld x %lld positions is too large", what, (long long)sx,
                       (long long)sy);
    uint64_t t = (uint64_t)dw * (uint64_t)dh * sample_bytes, n = (uint64_t)sx * (uint64_t)sy;
    if (t > UINT64_MAX / n) return fl_fail(ctx, FL_EINVAL, "%s: data size overflows", what);
    *total_bytes = t * n;
    return FL_OK;
}

/* Page buffers (float page for binning, raw page) within the budget. */
static fl_status alloc_page(fl_ctx *ctx, fl_stem4d *s)
{
    size_t px = (size_t)s->det_w * (size_t)s->det_h;
    fl_status st = fl_check_budget(ctx, px * 4 + (size_t)s->page_bytes, "the 4D-STEM page buffers");
    if (st) return st;
    s->page = fl_alloc(px * sizeof(float));
    if (!s->page) return fl_fail(ctx, FL_ENOMEM, "out of memory for a %lld x %lld pattern", (long long)s->det_w, (long long)s->det_h);
    return FL_OK;
}

fl_status fl_stem4d_open_memory(fl_ctx *ctx, const float *data, int64_t det_w, int64_t det_h, int64_t scan_x,
                                int64_t scan_y, fl_stem4d **out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_stem4d_open_memory: no output");
    *out = NULL;
    if (!data) return fl_fail(ctx, FL_EINVAL, "fl_stem4d_open_memory: no data");
    uint64_t total;
    fl_status st = check_dims(ctx, "4D-STEM stack", det_w, det_h, scan_x, scan_y, 4, &total);
    if (st) return st;
    fl_stem4d *s = NULL;
    if ((st = new_source(ctx, &s))) return st;
    s->kind = SRC_MEM;
    s->mem = data;
    s->det_w = det_w;
    s->det_h = det_h;
    s->scan_x = scan_x;
    s->scan_y = scan_y;
    s->n = scan_x * scan_y;
    s->dtype = FL_STEM_F32;
    s->sample_bytes = 4;
    s->page_bytes = 0;
    if ((st = alloc_page(ctx, s))) {
        fl_stem4d_close(s);
        return st;
    }
    *out = s;
    return FL_OK;
}

static fl_status open_raw_fd(fl_ctx *ctx, fl_stem4d *s, const char *path, const char *what, int exact)
{
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (s->fd < 0) return fl_fail(ctx, FL_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(s->fd, &sb) != 0) return fl_fail(ctx, FL_EIO, "cannot read the size of '%s': %s", path, strerror(errno));
    if (!S_ISREG(sb.st_mode)) return fl_fail(ctx, FL_EIO, "'%s' is not a regular file", path);
    uint64_t total = (uint64_t)s->page_bytes * (uint64_t)s->n;
    if (total > UINT64_MAX - s->offset) return fl_fail(ctx, FL_EINVAL, "%s: data size overflows", what);
    uint64_t want = s->offset + total, have = (uint64_t)sb.st_size;
    s->file_bytes = have;
    if (exact ? have != want : have < want)
        return fl_fail(ctx, FL_EFORMAT,
                       "'%s' has %llu bytes but %s needs %s%llu bytes (%llu header + %lld x %lld detector x %lld x %lld "
                       "scan x %zu bytes per %s sample)%s",
                       path, (unsigned long long)have, what, exact ? "exactly " : "at least ", (unsigned long long)want,
                       (unsigned long long)s->offset, (long long)s->det_w, (long long)s->det_h, (long long)s->scan_x,
                       (long long)s->scan_y, s->sample_bytes, fl_stem_dtype_name(s->dtype),
                       have < want ? ": the file is truncated or the dimensions are wrong"
                                   : ": check the dimensions, sample type and header offset");
    return FL_OK;
}

fl_status fl_stem4d_open_raw(fl_ctx *ctx, const char *path, const fl_stem_raw_params *p, fl_stem4d **out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_stem4d_open_raw: no output");
    *out = NULL;
    if (!path || !p) return fl_fail(ctx, FL_EINVAL, "fl_stem4d_open_raw: no file or parameters");
    if (p->dtype < 0 || p->dtype > FL_STEM_F64)
        return fl_fail(ctx, FL_EUNSUPPORTED, "raw 4D-STEM: unsupported sample type %d (u8, u16, i16, u32, i32, f32, f64 are)",
                       (int)p->dtype);
    uint64_t total;
    fl_status st = check_dims(ctx, "raw 4D-STEM file", p->det_w, p->det_h, p->scan_x, p->scan_y,
                              dtype_bytes[p->dtype], &total);
    if (st) return st;
    fl_stem4d *s = NULL;
    if ((st = new_source(ctx, &s))) return st;
    s->kind = SRC_RAW;
    s->det_w = p->det_w;
    s->det_h = p->det_h;
    s->scan_x = p->scan_x;
    s->scan_y = p->scan_y;
    s->n = p->scan_x * p->scan_y;
    s->dtype = p->dtype;
    s->big_endian = p->big_endian != 0;
    s->offset = p->offset;
    s->sample_bytes = dtype_bytes[p->dtype];
    s->page_bytes = (size_t)p->det_w * (size_t)p->det_h * s->sample_bytes;
    if (!(st = open_raw_fd(ctx, s, path, "the raw 4D-STEM layout", 1)) && !(st = alloc_page(ctx, s)))
        st = alloc_raw(ctx, s);
    if (st) {
        fl_stem4d_close(s);
        return st;
    }
    *out = s;
    return FL_OK;
}

/* ---- TIFF ----------------------------------------------------------------------------------------- */

static int parse_ij_count(const char *desc, const char *key, int64_t *out)
{
    size_t kl = strlen(key);
    for (const char *p = desc; p && *p;) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            char *end;
            errno = 0;
            long long v = strtoll(p + kl + 1, &end, 10);
            if (errno || end == p + kl + 1 || (*end && *end != '\n' && *end != '\r') || v < 1 || v > INT32_MAX)
                return 0;
            *out = v;
            return 1;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return 0;
}

/* TIFF dtype of each fl_tiff_page kind (FL_TIFF_U8 ... FL_TIFF_F64). */
static const int32_t tiff_kind_dtype[] = {FL_STEM_U8, FL_STEM_I8, FL_STEM_U16, FL_STEM_I16,
                                          FL_STEM_U32, FL_STEM_I32, FL_STEM_F32, FL_STEM_F64};

/* One TIFF page into dst (det_w x det_h floats). */
static fl_status read_tiff_page(fl_ctx *ctx, fl_stem4d *s, int64_t page, float *dst)
{
    fl_tiff_page pf;
    fl_status st = fl_tiff_goto_page(ctx, &s->tiff, page, s->n);
    if (!st) st = fl_tiff_page_format(ctx, &s->tiff, page, &pf);
    if (st) return st;
    if (pf.w != s->det_w || pf.h != s->det_h)
        return fl_fail(ctx, FL_EFORMAT, "'%s': page %lld is %u x %u pixels but page 1 is %lld x %lld", s->path,
                       (long long)page + 1, pf.w, pf.h, (long long)s->det_w, (long long)s->det_h);
    return fl_tiff_read_page(ctx, &s->tiff, page, &pf, dst);
}

fl_status fl_stem4d_open_tiff(fl_ctx *ctx, const char *path, int64_t scan_x, int64_t scan_y, fl_stem4d **out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_stem4d_open_tiff: no output");
    *out = NULL;
    if (!path) return fl_fail(ctx, FL_EINVAL, "fl_stem4d_open_tiff: no file name");
    if (scan_x < 0 || scan_y < 0 || (scan_x > 0) != (scan_y > 0))
        return fl_fail(ctx, FL_EINVAL, "give both scan dimensions (x and y) or neither");
    fl_stem4d *s = NULL;
    fl_status st = new_source(ctx, &s);
    if (st) return st;
    s->kind = SRC_TIFF;
    s->path = strdup(path);
    if (!s->path) {
        fl_stem4d_close(s);
        return fl_fail(ctx, FL_ENOMEM, "out of memory opening '%s'", path);
    }
    fl_tiff_page pf;
    int64_t ndirs = 0;
    if ((st = fl_tiff_open(ctx, s->path, &s->tiff)) || (st = fl_tiff_page_format(ctx, &s->tiff, 0, &pf)) ||
        (st = fl_tiff_page_count(ctx, &s->tiff, &ndirs)))
        goto fail;
    TIFF *tif = s->tiff.tif;
    s->det_w = pf.w;
    s->det_h = pf.h;
    s->dtype = tiff_kind_dtype[pf.kind];
    s->sample_bytes = pf.sample_bytes;
    int64_t npages = ndirs, images = 0, slices = 0, frames = 0, channels = 0;
    const char *desc = NULL;
    int ij = TIFFGetField(tif, TIFFTAG_IMAGEDESCRIPTION, &desc) && desc && strncmp(desc, "ImageJ=", 7) == 0;
    int contiguous = 0;
    if (ij) {
        parse_ij_count(desc, "images", &images);
        parse_ij_count(desc, "slices", &slices);
        parse_ij_count(desc, "frames", &frames);
        parse_ij_count(desc, "channels", &channels);
        if (channels > 1) {
            st = fl_fail(ctx, FL_EUNSUPPORTED,
                         "'%s' has %lld channels; a 4D-STEM stack has one channel (patterns on Z x T)", path,
                         (long long)channels);
            goto fail;
        }
        if (images > 1 && images > npages) {
            /* ImageJ's single-IFD layout: N uncompressed planes back to back from the first strip */
            uint16_t comp = COMPRESSION_NONE;
            TIFFGetFieldDefaulted(tif, TIFFTAG_COMPRESSION, &comp);
            if (comp != COMPRESSION_NONE || pf.tiled) {
                st = fl_fail(ctx, FL_EFORMAT, "'%s' is truncated or damaged: its ImageJ description announces %lld images but it holds %u pages",
                             path, (long long)images, (unsigned)ndirs);
                goto fail;
            }
            contiguous = 1;
            npages = images;
        }
    }
    if (scan_x > 0) {
        if (scan_x > npages || scan_x * scan_y != npages) {
            st = fl_fail(ctx, FL_EINVAL, "'%s' holds %lld patterns, but the scan %lld x %lld needs %lld", path,
                         (long long)npages, (long long)scan_x, (long long)scan_y,
                         scan_x <= INT32_MAX && scan_y <= INT32_MAX ? (long long)(scan_x * scan_y) : -1LL);
            goto fail;
        }
        s->scan_x = scan_x;
        s->scan_y = scan_y;
    } else if (ij && slices > 0 && slices * (frames > 0 ? frames : 1) == npages) {
        s->scan_x = slices;
        s->scan_y = frames > 0 ? frames : 1;
    } else if (ij && slices == 0 && frames > 0 && frames == npages) {
        s->scan_x = frames; /* only frames: one scan row */
        s->scan_y = 1;
    } else {
        s->scan_x = npages;
        s->scan_y = 1;
    }
    s->n = s->scan_x * s->scan_y;
    uint64_t total;
    if ((st = check_dims(ctx, path, s->det_w, s->det_h, s->scan_x, s->scan_y, s->sample_bytes, &total))) goto fail;
    s->page_bytes = (size_t)s->det_w * (size_t)s->det_h * s->sample_bytes;
    if (contiguous) {
        s->offset = (uint64_t)TIFFGetStrileOffset(tif, 0);
        s->big_endian = TIFFIsBigEndian(tif) != 0;
        fl_tiff_close(&s->tiff);
        s->kind = SRC_RAW;
        if ((st = open_raw_fd(ctx, s, path, "its ImageJ description", 0))) goto fail;
        if ((st = alloc_raw(ctx, s))) goto fail;
    } else {
        struct stat sb;
        if (stat(path, &sb) == 0) s->file_bytes = (uint64_t)sb.st_size;
    }
    if ((st = alloc_page(ctx, s))) goto fail;
    *out = s;
    return FL_OK;
fail:
    fl_stem4d_close(s);
    return st;
}

void fl_stem4d_get_info(const fl_stem4d *s, fl_stem4d_info *info)
{
    memset(info, 0, sizeof *info);
    if (!s) return;
    info->det_w = s->det_w;
    info->det_h = s->det_h;
    info->scan_x = s->scan_x;
    info->scan_y = s->scan_y;
    info->patterns = s->n;
    info->dtype = s->dtype;
    info->file_bytes = s->file_bytes;
}

/* ---- reading -------------------------------------------------------------------------------------- */

/* Every analysis of a pattern (COM, virtual detectors, means, the autoencoder) would turn one NaN or
 * infinite pixel into NaN results without a word: a pattern with one is refused, naming it. */
static fl_status check_finite(fl_ctx *ctx, const fl_stem4d *s, int64_t p, const float *dst)
{
    const size_t px = (size_t)s->det_w * (size_t)s->det_h;
    for (size_t i = 0; i < px; i++)
        if (!isfinite(dst[i]))
            return fl_fail(ctx, FL_EINVAL,
                           "the 4D-STEM data hold %s in the pattern at scan position (%lld, %lld), detector pixel "
                           "(%lld, %lld): every intensity must be a finite number",
                           isnan(dst[i]) ? "NaN" : "an infinite value", (long long)(p % s->scan_x),
                           (long long)(p / s->scan_x), (long long)(i % (size_t)s->det_w), (long long)(i / (size_t)s->det_w));
    return FL_OK;
}

/* One unbinned pattern into dst, as stored. */
static fl_status read_one_raw(fl_ctx *ctx, fl_stem4d *s, int64_t p, float *dst)
{
    size_t px = (size_t)s->det_w * (size_t)s->det_h;
    switch (s->kind) {
    case SRC_MEM: memcpy(dst, s->mem + (size_t)p * px, px * sizeof(float)); return FL_OK;
    case SRC_RAW: {
        uint64_t off = s->offset + (uint64_t)p * s->page_bytes;
        size_t done = 0;
        while (done < s->page_bytes) {
            ssize_t r = pread(s->fd, s->raw + done, s->page_bytes - done, (off_t)(off + done));
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return fl_fail(ctx, FL_EIO, "cannot read pattern %lld: %s", (long long)p, strerror(errno));
            if (r == 0)
                return fl_fail(ctx, FL_EFORMAT, "the file ends inside pattern %lld (it was truncated while open?)", (long long)p);
            done += (size_t)r;
        }
        convert(dst, s->raw, px, s->dtype, s->big_endian);
        return FL_OK;
    }
    default: return read_tiff_page(ctx, s, p, dst);
    }
}

/* One unbinned pattern into dst, refused when it holds NaN or infinity. */
static fl_status read_one(fl_ctx *ctx, fl_stem4d *s, int64_t p, float *dst)
{
    fl_status st = read_one_raw(ctx, s, p, dst);
    return st ? st : check_finite(ctx, s, p, dst);
}

static void bin_pattern(const float *src, int64_t w, int64_t bw, int64_t bh, int32_t bin, float *dst)
{
    for (int64_t j = 0; j < bh; j++)
        for (int64_t i = 0; i < bw; i++) {
            float acc = 0.f;
            for (int32_t a = 0; a < bin; a++) {
                const float *row = src + (j * bin + a) * w + i * bin;
                for (int32_t b = 0; b < bin; b++) acc += row[b];
            }
            dst[j * bw + i] = acc;
        }
}

fl_status fl_stem4d_read(fl_ctx *ctx, fl_stem4d *s, int64_t first, int64_t count, int32_t bin, float *out)
{
    int64_t bw = 0, bh = 0;
    fl_status st = fl_stem4d_check_bin(ctx, s, bin, &bw, &bh);
    if (st) return st;
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_stem4d_read: no output");
    if (first < 0 || count < 0 || first > s->n || count > s->n - first)
        return fl_fail(ctx, FL_EINVAL, "patterns %lld..%lld requested, but the data set has %lld", (long long)first,
                       (long long)(first + count - 1), (long long)s->n);
    size_t bpx = (size_t)bw * (size_t)bh;
    for (int64_t k = 0; k < count; k++) {
        float *dst = out + (size_t)k * bpx;
        if (bin == 1) {
            if ((st = read_one(ctx, s, first + k, dst))) return st;
        } else {
            if ((st = read_one(ctx, s, first + k, s->page))) return st;
            bin_pattern(s->page, s->det_w, bw, bh, bin, dst);
        }
    }
    return FL_OK;
}

fl_status fl_stem4d_foreach(fl_ctx *ctx, fl_stem4d *s, int64_t batch, int32_t bin, fl_stem4d_batch_fn fn, void *user)
{
    int64_t bw = 0, bh = 0;
    fl_status st = fl_stem4d_check_bin(ctx, s, bin, &bw, &bh);
    if (st) return st;
    if (!fn) return fl_fail(ctx, FL_EINVAL, "fl_stem4d_foreach: no callback");
    if (batch < 0) return fl_fail(ctx, FL_EINVAL, "batch size must not be negative");
    size_t per = (size_t)bw * (size_t)bh * sizeof(float);
    size_t limit = ctx && ctx->memory_budget ? ctx->memory_budget / 4 : ((size_t)64 << 20);
    if ((st = fl_check_budget(ctx, per, "one 4D-STEM pattern"))) return st;
    int64_t maxb = (int64_t)(limit / per);
    if (maxb < 1) maxb = 1;
    if (batch == 0 || batch > maxb) batch = maxb;
    if (batch > s->n) batch = s->n;
    float *buf = fl_alloc((size_t)batch * per);
    if (!buf) return fl_fail(ctx, FL_ENOMEM, "out of memory for a batch of %lld patterns", (long long)batch);
    for (int64_t first = 0; first < s->n && !st; first += batch) {
        int64_t cnt = s->n - first < batch ? s->n - first : batch;
        st = fl_stem4d_read(ctx, s, first, cnt, bin, buf);
        if (!st) st = fn(ctx, user, first, cnt, buf, bw, bh);
        if (!st) st = fl_progress(ctx, "patterns", first + cnt, s->n, NAN, NAN);
    }
    fl_free(buf);
    return st;
}
