/* 4D-STEM sources, tools and the toy model (native/src/io/stem4d.c, analysis/stem_tools.c,
 * synth/stem4d.c). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>
#include <unistd.h>

#include "analysis/stem_tools.h"
#include "io/stem4d.h"
#include "io/tiff.h"
#include "synth/stem4d.h"

static void tmpname(char *buf, size_t cap, const char *tag)
{
    snprintf(buf, cap, "/tmp/fl_test_stem_%d_%s", (int)getpid(), tag);
}

/* value of pixel (x, y) of pattern p in the reference stack: integers that every dtype holds */
static double refval(int64_t p, int64_t x, int64_t y, int is_signed) { return (double)(p * 17 + x * 3 + y * 5 % 11) - (is_signed ? 20 : 0); }

#define DW 5
#define DH 4
#define SX 3
#define SY 2
#define NP (SX * SY)

static void check_ref(fl_stem4d *s, int is_signed)
{
    fl_ctx *ctx = fl_ctx_new();
    float out[NP * DW * DH];
    cr_assert_eq(fl_stem4d_read(ctx, s, 0, NP, 1, out), FL_OK, "%s", fl_ctx_message(ctx));
    for (int64_t p = 0; p < NP; p++)
        for (int64_t y = 0; y < DH; y++)
            for (int64_t x = 0; x < DW; x++)
                cr_assert_eq(out[(p * DH + y) * DW + x], (float)refval(p, x, y, is_signed), "p %lld x %lld y %lld", (long long)p,
                             (long long)x, (long long)y);
    /* a sub-range in the middle, out of order (TIFFSetDirectory path) */
    cr_assert_eq(fl_stem4d_read(ctx, s, 4, 2, 1, out), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(out[0], (float)refval(4, 0, 0, is_signed));
    cr_assert_eq(fl_stem4d_read(ctx, s, 1, 1, 1, out), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(out[DW * DH - 1], (float)refval(1, DW - 1, DH - 1, is_signed));
    /* out of range */
    cr_assert_eq(fl_stem4d_read(ctx, s, 5, 2, 1, out), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "data set has 6") != NULL, "%s", fl_ctx_message(ctx));
    fl_ctx_free(ctx);
}

static void put_sample(unsigned char *dst, double v, int dtype, int big)
{
    unsigned char b[8];
    size_t n = 0;
    switch (dtype) {
    case FL_STEM_U8: b[0] = (uint8_t)v; n = 1; break;
    case FL_STEM_U16: { uint16_t t = (uint16_t)v; memcpy(b, &t, 2); n = 2; break; }
    case FL_STEM_I16: { int16_t t = (int16_t)v; memcpy(b, &t, 2); n = 2; break; }
    case FL_STEM_U32: { uint32_t t = (uint32_t)v; memcpy(b, &t, 4); n = 4; break; }
    case FL_STEM_I32: { int32_t t = (int32_t)v; memcpy(b, &t, 4); n = 4; break; }
    case FL_STEM_F32: { float t = (float)v; memcpy(b, &t, 4); n = 4; break; }
    default: { double t = v; memcpy(b, &t, 8); n = 8; break; }
    }
    /* host is little-endian on every CI machine; reverse for big-endian files */
    for (size_t i = 0; i < n; i++) dst[i] = big ? b[n - 1 - i] : b[i];
}

static const size_t dsize[] = {1, 2, 2, 4, 4, 4, 8};

Test(stem, raw_reader_equals_the_array_for_every_dtype_and_byte_order)
{
    char path[256];
    tmpname(path, sizeof path, "raw.bin");
    for (int dt = 0; dt <= FL_STEM_F64; dt++)
        for (int big = 0; big <= 1; big++) {
            int sgn = dt == FL_STEM_I16 || dt == FL_STEM_I32 || dt >= FL_STEM_F32;
            size_t sb = dsize[dt], off = 7, total = off + (size_t)NP * DW * DH * sb;
            unsigned char *buf = calloc(1, total);
            memset(buf, 0xAB, off);
            for (int64_t p = 0; p < NP; p++)
                for (int64_t y = 0; y < DH; y++)
                    for (int64_t x = 0; x < DW; x++) put_sample(buf + off + ((p * DH + y) * DW + x) * sb, refval(p, x, y, sgn), dt, big);
            FILE *f = fopen(path, "wb");
            fwrite(buf, 1, total, f);
            fclose(f);
            fl_ctx *ctx = fl_ctx_new();
            fl_stem_raw_params rp = {DW, DH, SX, SY, dt, big, off};
            fl_stem4d *s = NULL;
            cr_assert_eq(fl_stem4d_open_raw(ctx, path, &rp, &s), FL_OK, "%s %d: %s", fl_stem_dtype_name(dt), big, fl_ctx_message(ctx));
            check_ref(s, sgn);
            fl_stem4d_close(s);
            /* one byte too many / too few: exact-size error naming both numbers */
            f = fopen(path, "ab");
            fputc(0, f);
            fclose(f);
            cr_assert_eq(fl_stem4d_open_raw(ctx, path, &rp, &s), FL_EFORMAT);
            char want[128];
            snprintf(want, sizeof want, "has %zu bytes but the raw 4D-STEM layout needs exactly %zu bytes", total + 1, total);
            cr_assert(strstr(fl_ctx_message(ctx), want) != NULL, "%s", fl_ctx_message(ctx));
            cr_assert_null(s);
            cr_assert_eq(truncate(path, (off_t)(total - 1)), 0);
            cr_assert_eq(fl_stem4d_open_raw(ctx, path, &rp, &s), FL_EFORMAT);
            cr_assert(strstr(fl_ctx_message(ctx), "truncated") != NULL, "%s", fl_ctx_message(ctx));
            fl_ctx_free(ctx);
            free(buf);
        }
    unlink(path);
}

Test(stem, raw_reader_rejects_bad_parameters)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_stem4d *s = NULL;
    fl_stem_raw_params rp = {DW, DH, SX, SY, 9, 0, 0};
    cr_assert_eq(fl_stem4d_open_raw(ctx, "/nonexistent", &rp, &s), FL_EUNSUPPORTED);
    cr_assert(strstr(fl_ctx_message(ctx), "sample type") != NULL);
    rp.dtype = FL_STEM_U8;
    rp.scan_x = 0;
    cr_assert_eq(fl_stem4d_open_raw(ctx, "/nonexistent", &rp, &s), FL_EINVAL);
    rp.scan_x = INT64_C(1) << 40;
    cr_assert_eq(fl_stem4d_open_raw(ctx, "/nonexistent", &rp, &s), FL_EINVAL);
    rp.scan_x = SX;
    cr_assert_eq(fl_stem4d_open_raw(ctx, "/nonexistent/x.raw", &rp, &s), FL_EIO);
    cr_assert_null(s);
    cr_assert_eq(fl_stem_dtype_parse("i16"), FL_STEM_I16);
    cr_assert_eq(fl_stem_dtype_parse("u64"), -1);
    fl_ctx_free(ctx);
}

/* A stack written with libtiff: 8/16/32-bit integers, 32/64-bit floats, both byte orders, strips of 3
 * rows (several per page), ImageJ description slices=SX frames=SY. */
static void write_tiff(const char *path, int dt, int big, int with_desc)
{
    TIFF *t = TIFFOpen(path, big ? "wb" : "wl");
    cr_assert_not_null(t);
    int bits[] = {8, 16, 16, 32, 32, 32, 64};
    int fmt[] = {SAMPLEFORMAT_UINT, SAMPLEFORMAT_UINT, SAMPLEFORMAT_INT, SAMPLEFORMAT_UINT, SAMPLEFORMAT_INT, SAMPLEFORMAT_IEEEFP, SAMPLEFORMAT_IEEEFP};
    int sgn = dt == FL_STEM_I16 || dt == FL_STEM_I32 || dt >= FL_STEM_F32;
    char desc[128];
    snprintf(desc, sizeof desc, "ImageJ=1.54f\nimages=%d\nslices=%d\nframes=%d\nhyperstack=true\n", NP, SX, SY);
    for (int p = 0; p < NP; p++) {
        TIFFSetField(t, TIFFTAG_IMAGEWIDTH, DW);
        TIFFSetField(t, TIFFTAG_IMAGELENGTH, DH);
        TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
        TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bits[dt]);
        TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, fmt[dt]);
        TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 3);
        TIFFSetField(t, TIFFTAG_COMPRESSION, p % 2 ? COMPRESSION_LZW : COMPRESSION_NONE);
        if (p == 0 && with_desc) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, desc);
        for (int y = 0; y < DH; y++) {
            unsigned char row[DW * 8];
            for (int x = 0; x < DW; x++) {
                double v = refval(p, x, y, sgn);
                switch (dt) {
                case FL_STEM_U8: row[x] = (uint8_t)v; break;
                case FL_STEM_U16: { uint16_t q = (uint16_t)v; memcpy(row + 2 * x, &q, 2); break; }
                case FL_STEM_I16: { int16_t q = (int16_t)v; memcpy(row + 2 * x, &q, 2); break; }
                case FL_STEM_U32: { uint32_t q = (uint32_t)v; memcpy(row + 4 * x, &q, 4); break; }
                case FL_STEM_I32: { int32_t q = (int32_t)v; memcpy(row + 4 * x, &q, 4); break; }
                case FL_STEM_F32: { float q = (float)v; memcpy(row + 4 * x, &q, 4); break; }
                default: memcpy(row + 8 * x, &v, 8); break;
                }
            }
            cr_assert(TIFFWriteScanline(t, row, (uint32_t)y, 0) == 1);
        }
        TIFFWriteDirectory(t);
    }
    TIFFClose(t);
}

Test(stem, tiff_reader_equals_the_array_for_every_type_and_byte_order)
{
    char path[256];
    tmpname(path, sizeof path, "types.tif");
    for (int dt = 0; dt <= FL_STEM_F64; dt++)
        for (int big = 0; big <= 1; big++) {
            write_tiff(path, dt, big, 1);
            fl_ctx *ctx = fl_ctx_new();
            fl_stem4d *s = NULL;
            cr_assert_eq(fl_stem4d_open_tiff(ctx, path, 0, 0, &s), FL_OK, "%d %d: %s", dt, big, fl_ctx_message(ctx));
            fl_stem4d_info in;
            fl_stem4d_get_info(s, &in);
            cr_assert(in.det_w == DW && in.det_h == DH && in.scan_x == SX && in.scan_y == SY && in.dtype == dt);
            int sgn = dt == FL_STEM_I16 || dt == FL_STEM_I32 || dt >= FL_STEM_F32;
            check_ref(s, sgn);
            fl_stem4d_close(s);
            fl_ctx_free(ctx);
        }
    /* no description: one scan row, or an explicit scan shape that must multiply up */
    write_tiff(path, FL_STEM_U16, 0, 0);
    fl_ctx *ctx = fl_ctx_new();
    fl_stem4d *s = NULL;
    cr_assert_eq(fl_stem4d_open_tiff(ctx, path, 0, 0, &s), FL_OK, "%s", fl_ctx_message(ctx));
    fl_stem4d_info in;
    fl_stem4d_get_info(s, &in);
    cr_assert(in.scan_x == NP && in.scan_y == 1);
    fl_stem4d_close(s);
    cr_assert_eq(fl_stem4d_open_tiff(ctx, path, 2, 3, &s), FL_OK);
    fl_stem4d_get_info(s, &in);
    cr_assert(in.scan_x == 2 && in.scan_y == 3);
    fl_stem4d_close(s);
    cr_assert_eq(fl_stem4d_open_tiff(ctx, path, 4, 2, &s), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "holds 6 patterns, but the scan 4 x 2 needs 8") != NULL, "%s", fl_ctx_message(ctx));
    cr_assert_null(s);
    fl_ctx_free(ctx);
    unlink(path);
}

Test(stem, truncated_tiff_is_a_format_error)
{
    char path[256];
    tmpname(path, sizeof path, "trunc.tif");
    fl_ctx *ctx = fl_ctx_new();
    fl_image im;
    fl_image_init(&im);
    cr_assert_eq(fl_image_alloc(ctx, &im, 16, 16, 1, 4, 2), FL_OK);
    for (int64_t i = 0; i < 16 * 16 * 8; i++) im.data[i] = (float)i;
    cr_assert_eq(fl_tiff_write(ctx, path, &im), FL_OK);
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fclose(f);
    /* planes are contiguous after the first IFD: cut into the data of the last planes */
    cr_assert_eq(truncate(path, sz - 16 * 16 * 4 * 3), 0);
    fl_stem4d *s = NULL;
    fl_status st = fl_stem4d_open_tiff(ctx, path, 0, 0, &s);
    if (st == FL_OK) {
        float out[16 * 16 * 8];
        st = fl_stem4d_read(ctx, s, 0, 8, 1, out);
        fl_stem4d_close(s);
    }
    cr_assert_eq(st, FL_EFORMAT, "status %d: %s", st, fl_ctx_message(ctx));
    cr_assert(fl_ctx_message(ctx)[0] != '\0');
    /* not a TIFF at all */
    f = fopen(path, "wb");
    fputs("hello", f);
    fclose(f);
    cr_assert_eq(fl_stem4d_open_tiff(ctx, path, 0, 0, &s), FL_EFORMAT);
    cr_assert(strstr(fl_ctx_message(ctx), "not a TIFF") != NULL);
    fl_image_free(&im);
    fl_ctx_free(ctx);
    unlink(path);
}

Test(stem, binning_sums_blocks_and_drops_the_remainder)
{
    /* 5 x 6 detector, 2 patterns; v = p * 100 + y * 10 + x */
    float data[2 * 6 * 5];
    for (int p = 0; p < 2; p++)
        for (int y = 0; y < 6; y++)
            for (int x = 0; x < 5; x++) data[(p * 6 + y) * 5 + x] = (float)(p * 100 + y * 10 + x);
    fl_ctx *ctx = fl_ctx_new();
    fl_stem4d *s = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, 5, 6, 2, 1, &s), FL_OK);
    float out[2 * 3 * 2];
    cr_assert_eq(fl_stem4d_read(ctx, s, 0, 2, 2, out), FL_OK);
    /* binned 2 x 3: block (i, j) sums x = 2i, 2i+1, y = 2j, 2j+1: 4 (p*100) + 20 j*2... computed by hand */
    for (int p = 0; p < 2; p++)
        for (int j = 0; j < 3; j++)
            for (int i = 0; i < 2; i++) {
                float want = 0;
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) want += (float)(p * 100 + (2 * j + a) * 10 + 2 * i + b);
                cr_assert_eq(out[(p * 3 + j) * 2 + i], want);
            }
    cr_assert_eq(out[0], 0 + 1 + 10 + 11);
    cr_assert_eq(out[2 * 3 + 5], 142 + 143 + 152 + 153); /* p 1, block (1, 2) */
    float out4[2];
    cr_assert_eq(fl_stem4d_read(ctx, s, 0, 2, 4, out4), FL_OK);
    float w4 = 0;
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++) w4 += (float)(100 + y * 10 + x);
    cr_assert_eq(out4[1], w4);
    cr_assert_eq(fl_stem4d_read(ctx, s, 0, 1, 3, out4), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "1, 2 or 4") != NULL);
    fl_stem4d_close(s);
    fl_ctx_free(ctx);
}

Test(stem, com_of_single_spots_is_exact)
{
    /* 4 x 3 scan of 16 x 12 patterns with one bright pixel each at (x_p, y_p) */
    enum { W = 16, H = 12, X = 4, Y = 3, N = X * Y };
    float *data = calloc(N * W * H, sizeof(float));
    int xs[N], ys[N];
    double mx = 0, my = 0;
    for (int p = 0; p < N; p++) {
        xs[p] = (p * 5) % W;
        ys[p] = (p * 7 + 1) % H;
        data[p * W * H + ys[p] * W + xs[p]] = 3.0f;
        mx += xs[p];
        my += ys[p];
    }
    mx /= N;
    my /= N;
    fl_ctx *ctx = fl_ctx_new();
    fl_stem4d *s = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, W, H, X, Y, &s), FL_OK);
    fl_stem_com_params cp;
    fl_stem_com_params_default(&cp);
    cp.degrees = 1;
    fl_stem_com_result r;
    cr_assert_eq(fl_stem_com(ctx, s, &cp, &r), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_float_eq(r.ref_x, mx, 1e-9);
    cr_assert_float_eq(r.ref_y, my, 1e-9);
    int64_t hist_total = 0;
    for (int p = 0; p < N; p++) {
        cr_assert_float_eq(r.com_x[p], xs[p] - mx, 1e-5, "p %d", p);
        cr_assert_float_eq(r.com_y[p], ys[p] - my, 1e-5, "p %d", p);
        cr_assert_float_eq(r.magnitude[p], hypot(xs[p] - mx, ys[p] - my), 1e-5);
        cr_assert_float_eq(r.direction[p], atan2(ys[p] - my, xs[p] - mx) * 180 / M_PI, 1e-3);
    }
    for (int i = 0; i < r.hist_bins * r.hist_bins; i++) hist_total += (int64_t)r.hist[i];
    cr_assert_eq(hist_total, N);
    cr_assert_float_eq(r.mean_pattern[ys[1] * W + xs[1]], 3.0 / N, 1e-7);
    fl_stem_com_result_free(&r);

    /* a circular mask that contains only pattern 0's spot: other patterns give NaN */
    cp.mask_cx = xs[0];
    cp.mask_cy = ys[0];
    cp.mask_r = 0.5;
    cr_assert_eq(fl_stem_com(ctx, s, &cp, &r), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_float_eq(r.com_x[0], 0.0, 1e-9);
    int nan = 0;
    for (int p = 0; p < N; p++) nan += isnan(r.com_x[p]) && (xs[p] != xs[0] || ys[p] != ys[0]);
    cr_assert(nan >= N - 2, "%d", nan);
    fl_stem_com_result_free(&r);

    /* binned by 2: a spot at (x, y) is at the centre of its 2 x 2 block, 2 (x / 2) + 0.5 */
    cp.mask_r = 0;
    cp.bin = 2;
    cr_assert_eq(fl_stem_com(ctx, s, &cp, &r), FL_OK);
    double bmx = 0;
    for (int p = 0; p < N; p++) bmx += 2 * (xs[p] / 2) + 0.5;
    bmx /= N;
    cr_assert_float_eq(r.ref_x, bmx, 1e-9);
    cr_assert_float_eq(r.com_x[3], 2 * (xs[3] / 2) + 0.5 - bmx, 1e-5);
    fl_stem_com_result_free(&r);
    fl_stem4d_close(s);
    fl_ctx_free(ctx);
    free(data);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

Test(stem, vdf_equals_hand_sums)
{
    enum { W = 14, H = 10, X = 5, Y = 4, N = X * Y };
    float *data = malloc(N * W * H * sizeof(float));
    uint32_t seed = 7;
    for (int i = 0; i < N * W * H; i++) data[i] = (float)(lcg(&seed) % 1000) / 10.0f;
    fl_ctx *ctx = fl_ctx_new();
    fl_stem4d *s = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, W, H, X, Y, &s), FL_OK);
    float out[N];
    fl_stem_vdf_params vp;
    memset(&vp, 0, sizeof vp);
    vp.bin = 1;
    vp.shape = FL_VDF_RECT;
    vp.x = 2, vp.y = 3, vp.w = 4, vp.h = 2; /* x 2..5, y 3..4 */
    cr_assert_eq(fl_stem_vdf(ctx, s, &vp, out), FL_OK, "%s", fl_ctx_message(ctx));
    for (int p = 0; p < N; p++) {
        double sum = 0;
        for (int y = 3; y <= 4; y++)
            for (int x = 2; x <= 5; x++) sum += data[p * W * H + y * W + x];
        cr_assert_float_eq(out[p], sum, 1e-3);
    }
    vp.mean = 1;
    cr_assert_eq(fl_stem_vdf(ctx, s, &vp, out), FL_OK);
    double sum0 = 0;
    for (int y = 3; y <= 4; y++)
        for (int x = 2; x <= 5; x++) sum0 += data[y * W + x];
    cr_assert_float_eq(out[0], sum0 / 8, 1e-4);
    /* annulus 1.5 <= r <= 3 around (6, 5): pixel list by hand */
    vp.mean = 0;
    vp.shape = FL_VDF_ANNULUS;
    vp.cx = 6, vp.cy = 5, vp.r_in = 1.5, vp.r_out = 3;
    cr_assert_eq(fl_stem_vdf(ctx, s, &vp, out), FL_OK);
    for (int p = 0; p < N; p++) {
        double sum = 0;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int d2 = (x - 6) * (x - 6) + (y - 5) * (y - 5);
                if (4 * d2 >= 9 && d2 <= 9) sum += data[p * W * H + y * W + x];
            }
        cr_assert_float_eq(out[p], sum, 1e-3, "p %d", p);
    }
    /* arbitrary weight mask */
    float mask[W * H];
    for (int i = 0; i < W * H; i++) mask[i] = (i % 3) * 0.5f;
    vp.shape = FL_VDF_MASK;
    vp.mask = mask;
    cr_assert_eq(fl_stem_vdf(ctx, s, &vp, out), FL_OK);
    double ms = 0;
    for (int i = 0; i < W * H; i++) ms += mask[i] * data[(N - 1) * W * H + i];
    cr_assert_float_eq(out[N - 1], ms, 1e-2);
    /* empty aperture */
    vp.shape = FL_VDF_RECT;
    vp.x = 100;
    cr_assert_eq(fl_stem_vdf(ctx, s, &vp, out), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "no detector pixel") != NULL);
    fl_stem4d_close(s);
    fl_ctx_free(ctx);
    free(data);
}

Test(stem, ncc_finds_a_circular_shift)
{
    enum { W = 20, H = 16 };
    float a[W * H], b[W * H], ncc[W * H];
    uint32_t seed = 3;
    for (int i = 0; i < W * H; i++) a[i] = (float)(lcg(&seed) % 1000);
    const int sx = 3, sy = -2;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) b[y * W + x] = a[((y - sy + H) % H) * W + (x - sx + W) % W]; /* b(k) = a(k - d) */
    fl_ctx *ctx = fl_ctx_new();
    double peak;
    int64_t dx, dy;
    cr_assert_eq(fl_stem_ncc(ctx, a, b, W, H, ncc, &peak, &dx, &dy), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(dx, sx);
    cr_assert_eq(dy, sy);
    cr_assert_float_eq(peak, 1.0, 1e-5);
    /* zero shift = Pearson correlation of a and b, computed directly */
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < W * H; i++) ma += a[i], mb += b[i];
    ma /= W * H;
    mb /= W * H;
    for (int i = 0; i < W * H; i++) sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
    cr_assert_float_eq(ncc[(H / 2) * W + W / 2], sab / sqrt(saa * sbb), 1e-5);
    /* constant pattern */
    for (int i = 0; i < W * H; i++) b[i] = 1;
    cr_assert_eq(fl_stem_ncc(ctx, a, b, W, H, ncc, &peak, &dx, &dy), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "constant") != NULL);
    fl_ctx_free(ctx);
}

static double bacc(const float *score, const float *truth, int64_t n)
{
    int64_t tp = 0, np = 0, tn = 0, nn = 0;
    for (int64_t i = 0; i < n; i++) {
        if (truth[i] > 0) np++, tp += score[i] > 0;
        else nn++, tn += score[i] < 0;
    }
    return 0.5 * ((double)tp / np + (double)tn / nn);
}

Test(stem, toy_model_polarisation_from_com_and_004_dark_field)
{
    fl_synth_stem4d_params sp;
    fl_synth_stem4d_params_default(&sp);
    for (uint64_t seed = 1; seed <= 2; seed++) {
        sp.seed = seed;
        fl_ctx *ctx = fl_ctx_new();
        fl_image d, t;
        cr_assert_eq(fl_synth_stem4d(ctx, &sp, &d, &t), FL_OK, "%s", fl_ctx_message(ctx));
        cr_assert(d.width == 32 && d.height == 32 && d.slices == 32 && d.frames == 32);
        cr_assert(t.width == 32 && t.height == 32 && t.slices == 4);
        const int64_t n = 32 * 32;
        /* the truth: both signs, alternating wall types, walls about 2 rows of every 8 */
        int64_t plus = 0, wall = 0, hh = 0, tt = 0;
        for (int64_t i = 0; i < n; i++) {
            plus += t.data[i] > 0, wall += t.data[n + i] > 0, hh += t.data[2 * n + i] > 0, tt += t.data[2 * n + i] < 0;
            if (t.data[2 * n + i] != 0) cr_assert_eq(t.data[n + i], 1.0f);
        }
        cr_assert(plus > n / 3 && plus < 2 * n / 3, "%lld", (long long)plus);
        cr_assert(wall > n / 8 && wall < n / 2 && hh > n / 16 && tt > n / 16, "%lld %lld %lld", (long long)wall, (long long)hh, (long long)tt);
        cr_assert_float_eq(t.data[3 * n], 0.6, 1e-6);
        cr_assert_float_eq(t.data[3 * n + 31], 1.4, 1e-6);

        fl_stem4d *s = NULL;
        cr_assert_eq(fl_stem4d_open_memory(ctx, d.data, 32, 32, 32, 32, &s), FL_OK);
        fl_stem_com_params cp;
        fl_stem_com_params_default(&cp);
        fl_stem_com_result r;
        cr_assert_eq(fl_stem_com(ctx, s, &cp, &r), FL_OK, "%s", fl_ctx_message(ctx));
        double b_com = bacc(r.com_y, t.data, n);
        cr_assert(b_com >= 0.95, "seed %llu: balanced accuracy of sign(COM y) %.3f", (unsigned long long)seed, b_com);
        /* 004 minus 00-4 virtual dark field (discs at ky = c +- 0.19 K) */
        const double c = 15.5, g = 0.19 * 32;
        float v4[32 * 32], vm4[32 * 32], diff[32 * 32];
        fl_stem_vdf_params vp;
        memset(&vp, 0, sizeof vp);
        vp.bin = 1;
        vp.shape = FL_VDF_ANNULUS;
        vp.mean = 1;
        vp.cx = c, vp.cy = c + g, vp.r_out = 2.5;
        cr_assert_eq(fl_stem_vdf(ctx, s, &vp, v4), FL_OK);
        vp.cy = c - g;
        cr_assert_eq(fl_stem_vdf(ctx, s, &vp, vm4), FL_OK);
        for (int64_t i = 0; i < n; i++) diff[i] = v4[i] - vm4[i];
        double b_vdf = bacc(diff, t.data, n);
        cr_assert(b_vdf >= 0.95, "seed %llu: balanced accuracy of VDF(004) - VDF(00-4) %.3f", (unsigned long long)seed, b_vdf);
        /* compare +P with -P: the difference is positive on the 004 disc, negative on 00-4, no shift */
        float sa[32 * 32], sb[32 * 32];
        for (int64_t i = 0; i < n; i++) sa[i] = t.data[i] > 0 && t.data[n + i] == 0, sb[i] = t.data[i] < 0 && t.data[n + i] == 0;
        fl_stem_compare_result cr;
        cr_assert_eq(fl_stem_compare(ctx, s, 1, sa, sb, &cr), FL_OK, "%s", fl_ctx_message(ctx));
        int ky4 = (int)lround(c + g), kym4 = (int)lround(c - g);
        cr_assert(cr.difference[ky4 * 32 + 16] > 0 && cr.difference[kym4 * 32 + 16] < 0);
        cr_assert(cr.shift_x == 0 && cr.shift_y == 0 && cr.peak > 0.95, "%lld %lld %f", (long long)cr.shift_x, (long long)cr.shift_y, cr.peak);
        fl_stem_compare_result_free(&cr);
        fl_stem_com_result_free(&r);
        fl_stem4d_close(s);
        fl_image_free(&d);
        fl_image_free(&t);
        fl_ctx_free(ctx);
    }
}

Test(stem, toy_model_is_deterministic_and_thread_count_independent)
{
    fl_synth_stem4d_params sp;
    fl_synth_stem4d_params_default(&sp);
    sp.scan_x = 8, sp.scan_y = 6, sp.det = 16;
    fl_ctx *c1 = fl_ctx_new(), *c2 = fl_ctx_new();
    fl_ctx_set_threads(c1, 1);
    fl_ctx_set_threads(c2, 2);
    fl_image d1, t1, d2, t2;
    cr_assert_eq(fl_synth_stem4d(c1, &sp, &d1, &t1), FL_OK, "%s", fl_ctx_message(c1));
    cr_assert_eq(fl_synth_stem4d(c2, &sp, &d2, &t2), FL_OK);
    cr_assert(memcmp(d1.data, d2.data, 8 * 6 * 16 * 16 * sizeof(float)) == 0);
    cr_assert(memcmp(t1.data, t2.data, 8 * 6 * 4 * sizeof(float)) == 0);
    fl_image_free(&d2);
    fl_image_free(&t2);
    sp.seed = 2;
    cr_assert_eq(fl_synth_stem4d(c2, &sp, &d2, &t2), FL_OK);
    cr_assert(memcmp(d1.data, d2.data, 8 * 6 * 16 * 16 * sizeof(float)) != 0);
    sp.ratio = 0.5;
    fl_image d3, t3;
    cr_assert_eq(fl_synth_stem4d(c2, &sp, &d3, &t3), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(c2), "ratio") != NULL);
    cr_assert_null(d3.data);
    fl_image_free(&d1);
    fl_image_free(&t1);
    fl_image_free(&d2);
    fl_image_free(&t2);
    fl_ctx_free(c1);
    fl_ctx_free(c2);
}

Test(stem, streaming_com_under_a_small_budget_equals_the_in_memory_result)
{
    fl_synth_stem4d_params sp;
    fl_synth_stem4d_params_default(&sp); /* 32 x 32 scan, 32 x 32 detector: 4 MiB of floats */
    fl_ctx *ctx = fl_ctx_new();
    fl_image d, t;
    cr_assert_eq(fl_synth_stem4d(ctx, &sp, &d, &t), FL_OK);
    char path[256];
    tmpname(path, sizeof path, "stream.tif");
    cr_assert_eq(fl_tiff_write(ctx, path, &d), FL_OK);
    fl_stem4d *mem = NULL, *file = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, d.data, 32, 32, 32, 32, &mem), FL_OK);
    fl_stem_com_params cp;
    fl_stem_com_params_default(&cp);
    cp.threshold = 2;
    fl_stem_com_result a, b;
    cr_assert_eq(fl_stem_com(ctx, mem, &cp, &a), FL_OK);

    /* 1 MiB budget: far less than the 4 MiB file; the batch buffer gets a quarter (64 patterns) */
    fl_ctx *small = fl_ctx_new();
    fl_ctx_set_memory_budget(small, (size_t)1 << 20);
    fl_ctx_set_threads(small, 1);
    cr_assert_eq(fl_stem4d_open_tiff(small, path, 0, 0, &file), FL_OK, "%s", fl_ctx_message(small));
    fl_stem4d_info in;
    fl_stem4d_get_info(file, &in);
    cr_assert(in.file_bytes > ((size_t)1 << 20) * 4 && in.scan_x == 32 && in.scan_y == 32);
    cr_assert_eq(fl_stem_com(small, file, &cp, &b), FL_OK, "%s", fl_ctx_message(small));
    cr_assert(memcmp(a.com_x, b.com_x, 1024 * sizeof(float)) == 0);
    cr_assert(memcmp(a.com_y, b.com_y, 1024 * sizeof(float)) == 0);
    cr_assert(memcmp(a.mean_pattern, b.mean_pattern, 1024 * sizeof(float)) == 0);
    cr_assert(memcmp(a.hist, b.hist, (size_t)a.hist_bins * a.hist_bins * sizeof(float)) == 0);
    /* reading everything at once would exceed that budget */
    fl_image whole;
    cr_assert_eq(fl_tiff_read(small, path, &whole), FL_ENOMEM);
    fl_stem_com_result_free(&a);
    fl_stem_com_result_free(&b);
    fl_stem4d_close(mem);
    fl_stem4d_close(file);
    fl_image_free(&d);
    fl_image_free(&t);
    fl_ctx_free(ctx);
    fl_ctx_free(small);
    unlink(path);
}

static int progress_calls;
static int count_progress(void *user, const char *stage, int64_t done, int64_t total, double loss, double vl)
{
    progress_calls++;
    return done >= total / 2; /* cancel half way */
}

Test(stem, foreach_reports_progress_and_cancels)
{
    float *data = calloc(100 * 8 * 8, sizeof(float));
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_progress(ctx, count_progress, NULL);
    fl_stem4d *s = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, 8, 8, 10, 10, &s), FL_OK);
    float out[100];
    fl_stem_vdf_params vp;
    memset(&vp, 0, sizeof vp);
    vp.bin = 1, vp.shape = FL_VDF_RECT, vp.w = 8, vp.h = 8;
    /* 1 pattern = 256 bytes; budget 4 KiB -> batches of 4 patterns -> cancelled after 50 */
    fl_ctx_set_memory_budget(ctx, 4096);
    cr_assert_eq(fl_stem_vdf(ctx, s, &vp, out), FL_ECANCELLED);
    cr_assert_eq(progress_calls, 13, "%d", progress_calls);
    fl_stem4d_close(s);
    fl_ctx_free(ctx);
    free(data);
}
