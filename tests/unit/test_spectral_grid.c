/* Grids of curves <-> hyperstacks (native/src/io/spectral_grid.c). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/spectral_grid.h"
#include "io/tiff.h"

/* W x H image with Z slices and F frames, pixel value = 1000 * plane + n */
static void grid(fl_image *img, int64_t W, int64_t H, int64_t Z, int64_t F)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_image_init(img);
    cr_assert_eq(fl_image_alloc(ctx, img, W, H, 1, Z, F), FL_OK, "%s", fl_ctx_message(ctx));
    int64_t np = Z * F, N = W * H;
    for (int64_t p = 0; p < np; p++)
        for (int64_t n = 0; n < N; n++) img->data[p * N + n] = (float)(1000 * p + n);
    fl_ctx_free(ctx);
}

typedef struct conv {
    fl_status st;
    float *curves;
    double *axis;
    int64_t n;
    int32_t T;
    char unit[32], label[64], msg[1024];
} conv;

static conv run(const fl_image *img, int axis)
{
    conv r;
    memset(&r, 0, sizeof r);
    fl_ctx *ctx = fl_ctx_new();
    r.st = fl_grid_to_curves(ctx, img, axis, &r.curves, &r.n, &r.T, &r.axis, r.unit, r.label);
    snprintf(r.msg, sizeof r.msg, "%s", fl_ctx_message(ctx));
    fl_ctx_free(ctx);
    return r;
}

static void conv_free(conv *r)
{
    fl_free(r->curves);
    fl_free(r->axis);
}

Test(spectral_grid, parses_axis_labels)
{
    double v;
    char u[32];
    cr_assert(fl_parse_axis_label("-2.5 V", &v, u, sizeof u));
    cr_assert_float_eq(v, -2.5, 1e-15);
    cr_assert_str_eq(u, "V");
    cr_assert(fl_parse_axis_label("0.3", &v, u, sizeof u));
    cr_assert_float_eq(v, 0.3, 1e-15);
    cr_assert_str_eq(u, "");
    cr_assert(fl_parse_axis_label("1e-3 mV", &v, u, sizeof u));
    cr_assert_float_eq(v, 1e-3, 1e-18);
    cr_assert_str_eq(u, "mV");
    cr_assert(fl_parse_axis_label("  +4.75V ", &v, u, sizeof u));
    cr_assert_float_eq(v, 4.75, 1e-15);
    cr_assert_str_eq(u, "V");
    cr_assert(fl_parse_axis_label("-5.000 V\nextra ImageJ info", &v, u, sizeof u));
    cr_assert_float_eq(v, -5.0, 1e-15);
    cr_assert(fl_parse_axis_label("\xE2\x88\x92" "1.5 V", &v, u, sizeof u)); /* U+2212 minus */
    cr_assert_float_eq(v, -1.5, 1e-15);
    cr_assert(fl_parse_axis_label("2E+2 s", &v, u, sizeof u));
    cr_assert_float_eq(v, 200.0, 1e-12);
    cr_assert_not(fl_parse_axis_label("slice 3", &v, u, sizeof u));
    cr_assert_not(fl_parse_axis_label("", &v, u, sizeof u));
    cr_assert_not(fl_parse_axis_label(NULL, &v, u, sizeof u));
    cr_assert_not(fl_parse_axis_label("nan", &v, u, sizeof u));
    cr_assert_not(fl_parse_axis_label("3 V tip A", &v, u, sizeof u));
    cr_assert_not(fl_parse_axis_label("1.5 2.5", &v, u, sizeof u));
    cr_assert_not(fl_parse_axis_label("-", &v, u, sizeof u));
}

Test(spectral_grid, automatic_axis_choice)
{
    fl_image img;
    grid(&img, 3, 2, 10, 1);
    conv r = run(&img, 0);
    cr_assert_eq(r.st, FL_OK, "%s", r.msg);
    cr_assert_eq(r.T, 10);
    cr_assert_eq(r.n, 6);
    /* pixel order n = x + W*y; point k = plane k */
    cr_assert_float_eq(r.curves[4 * 10 + 3], 3004.0f, 0);
    cr_assert_str_eq(r.unit, "");
    cr_assert_str_eq(r.label, "index");
    cr_assert_float_eq(r.axis[9], 9.0, 0);
    conv_free(&r);
    fl_image_free(&img);

    grid(&img, 3, 2, 1, 12);
    r = run(&img, 0);
    cr_assert_eq(r.st, FL_OK, "%s", r.msg);
    cr_assert_eq(r.T, 12);
    cr_assert_float_eq(r.curves[5 * 12 + 11], 11005.0f, 0);
    conv_free(&r);
    r = run(&img, 't');
    cr_assert_eq(r.st, FL_OK);
    conv_free(&r);
    r = run(&img, 'z');
    cr_assert_eq(r.st, FL_EINVAL);
    cr_assert(strstr(r.msg, "no slices") != NULL, "%s", r.msg);
    cr_assert_null(r.curves);
    fl_image_free(&img);

    grid(&img, 3, 2, 9, 9);
    r = run(&img, 0);
    cr_assert_eq(r.st, FL_EINVAL);
    cr_assert_str_eq(r.msg, "the image has both slices and frames; choose the spectral axis");
    r = run(&img, 'z');
    cr_assert_eq(r.st, FL_EINVAL);
    fl_image_free(&img);

    grid(&img, 3, 2, 1, 1);
    r = run(&img, 0);
    cr_assert_eq(r.st, FL_EINVAL);
    cr_assert(strstr(r.msg, "single plane") != NULL, "%s", r.msg);
    fl_image_free(&img);

    fl_ctx *ctx = fl_ctx_new();
    cr_assert_eq(fl_image_alloc(ctx, &img, 3, 2, 2, 10, 1), FL_OK);
    r = run(&img, 0);
    cr_assert_eq(r.st, FL_EINVAL);
    cr_assert(strstr(r.msg, "2 channels") != NULL, "%s", r.msg);
    fl_image_free(&img);
    fl_ctx_free(ctx);

    grid(&img, 3, 2, 10, 1);
    img.is_rgb = 1;
    r = run(&img, 0);
    cr_assert_neq(r.st, FL_OK);
    cr_assert(strstr(r.msg, "RGB") != NULL, "%s", r.msg);
    fl_image_free(&img);
}

Test(spectral_grid, rejects_short_curves)
{
    fl_image img;
    grid(&img, 4, 4, 7, 1);
    conv r = run(&img, 0);
    cr_assert_eq(r.st, FL_EINVAL);
    cr_assert(strstr(r.msg, "only 7 points") && strstr(r.msg, "at least 8"), "%s", r.msg);
    fl_image_free(&img);
    grid(&img, 4, 4, 8, 1);
    r = run(&img, 0);
    cr_assert_eq(r.st, FL_OK, "%s", r.msg);
    conv_free(&r);
    fl_image_free(&img);
}

Test(spectral_grid, rejects_nan_with_position)
{
    fl_image img;
    grid(&img, 10, 9, 8, 1);
    const int64_t N = 90;
    img.data[1 * N + 7 * 10 + 4] = NAN;      /* x=4, y=7, slice 2 (1-based) */
    img.data[3 * N + 0] = INFINITY;
    img.data[7 * N + 89] = -INFINITY;
    conv r = run(&img, 0);
    cr_assert_eq(r.st, FL_EINVAL);
    cr_assert_str_eq(r.msg, "image has 3 NaN/Inf pixels (first at x=4, y=7, slice 2)");
    cr_assert_null(r.curves);
    cr_assert_null(r.axis);
    fl_image_free(&img);
}

Test(spectral_grid, axis_values_from_labels_calibration_or_index)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_image img;
    grid(&img, 2, 2, 8, 1);
    for (int k = 0; k < 8; k++) {
        char lab[32];
        snprintf(lab, sizeof lab, "%g mV", -1.5 + 0.5 * k);
        cr_assert_eq(fl_image_set_label(ctx, &img, k, lab), FL_OK);
    }
    conv r = run(&img, 0);
    cr_assert_eq(r.st, FL_OK, "%s", r.msg);
    cr_assert_str_eq(r.unit, "mV");
    cr_assert_str_eq(r.label, "voltage");
    cr_assert_float_eq(r.axis[0], -1.5, 1e-12);
    cr_assert_float_eq(r.axis[7], 2.0, 1e-12);
    conv_free(&r);

    /* mixed units: fall back to the calibration */
    cr_assert_eq(fl_image_set_label(ctx, &img, 3, "0 V"), FL_OK);
    img.pixel_depth = 0.25;
    snprintf(img.unit, sizeof img.unit, "um");
    r = run(&img, 0);
    cr_assert_eq(r.st, FL_OK, "%s", r.msg);
    cr_assert_str_eq(r.unit, "um");
    cr_assert_float_eq(r.axis[4], 1.0, 1e-12);
    conv_free(&r);

    /* a non-numeric label and no calibration: the index */
    cr_assert_eq(fl_image_set_label(ctx, &img, 3, "forward sweep"), FL_OK);
    img.pixel_depth = 1.0;
    snprintf(img.unit, sizeof img.unit, "pixel");
    r = run(&img, 0);
    cr_assert_eq(r.st, FL_OK, "%s", r.msg);
    cr_assert_str_eq(r.unit, "");
    cr_assert_float_eq(r.axis[5], 5.0, 0);
    conv_free(&r);
    fl_image_free(&img);

    /* frames: frame interval in seconds */
    grid(&img, 2, 2, 1, 9);
    img.frame_interval = 0.1;
    r = run(&img, 0);
    cr_assert_eq(r.st, FL_OK, "%s", r.msg);
    cr_assert_str_eq(r.unit, "s");
    cr_assert_float_eq(r.axis[8], 0.8, 1e-12);
    conv_free(&r);
    fl_image_free(&img);
    fl_ctx_free(ctx);
}

static void round_trip(const double *axis, const char *unit, int32_t T)
{
    fl_ctx *ctx = fl_ctx_new();
    const int64_t W = 5, H = 3, N = W * H;
    float curves[15 * 40];
    cr_assert_leq(T, 40);
    for (int64_t n = 0; n < N; n++)
        for (int32_t k = 0; k < T; k++) curves[n * T + k] = (float)sin(0.3 * (double)n + 0.1 * k) * 7.5f;
    fl_image like, img;
    fl_image_init(&like);
    like.pixel_width = like.pixel_height = 0.05;
    snprintf(like.unit, sizeof like.unit, "um");
    cr_assert_eq(fl_curves_to_grid(ctx, curves, W, H, T, axis, unit, &like, &img), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(img.slices, T);
    cr_assert_float_eq(img.pixel_width, 0.05, 0);
    cr_assert_str_eq(img.unit, "um");
    conv r = run(&img, 0);
    cr_assert_eq(r.st, FL_OK, "%s", r.msg);
    cr_assert_eq(r.n, N);
    cr_assert_eq(r.T, T);
    cr_assert(memcmp(r.curves, curves, sizeof(float) * (size_t)(N * T)) == 0, "curves changed in the round trip");
    cr_assert_str_eq(r.unit, unit);
    for (int32_t k = 0; k < T; k++)
        cr_assert(fabs(r.axis[k] - axis[k]) <= 1e-6 * fabs(axis[k]) + 1e-12, "axis %d: %g vs %g (label '%s')", k,
                  r.axis[k], axis[k], img.labels[k]);
    conv_free(&r);
    fl_image_free(&img);
    fl_ctx_free(ctx);
}

Test(spectral_grid, round_trip_curves_grid_curves)
{
    double a[40];
    for (int k = 0; k < 33; k++) a[k] = -4.0 + 0.25 * k;
    round_trip(a, "V", 33);
    for (int k = 0; k < 40; k++) a[k] = 1.234567e-4 * (k + 1) * (k % 2 ? -1 : 1);
    round_trip(a, "mV", 40);
    for (int k = 0; k < 12; k++) a[k] = k;
    round_trip(a, "", 12);
}

Test(spectral_grid, curves_to_grid_labels_and_step)
{
    fl_ctx *ctx = fl_ctx_new();
    float c[4 * 9] = {0};
    double a[9];
    for (int k = 0; k < 9; k++) a[k] = -2.0 + 0.5 * k;
    fl_image img;
    cr_assert_eq(fl_curves_to_grid(ctx, c, 2, 2, 9, a, "V", NULL, &img), FL_OK);
    cr_assert_str_eq(img.labels[0], "-2.000 V");
    cr_assert_str_eq(img.labels[4], "0.000 V");
    cr_assert_float_eq(img.pixel_depth, 0.5, 1e-12);
    fl_image_free(&img);
    cr_assert_eq(fl_curves_to_grid(ctx, c, 2, 2, 9, NULL, NULL, NULL, &img), FL_OK);
    cr_assert_str_eq(img.labels[0], "1");
    fl_image_free(&img);
    cr_assert_eq(fl_curves_to_grid(ctx, NULL, 2, 2, 9, a, "V", NULL, &img), FL_EINVAL);
    cr_assert_eq(fl_curves_to_grid(ctx, c, 0, 2, 9, a, "V", NULL, &img), FL_EINVAL);
    fl_ctx_free(ctx);
}

Test(spectral_grid, maps_to_image)
{
    fl_ctx *ctx = fl_ctx_new();
    const int64_t W = 4, H = 3, N = W * H;
    float maps[12 * 3];
    for (int64_t n = 0; n < N; n++)
        for (int k = 0; k < 3; k++) maps[n * 3 + k] = (float)(100 * k + n);
    const char *labels[] = {"embedding 1", NULL, "embedding 3"};
    fl_image img;
    cr_assert_eq(fl_maps_to_image(ctx, maps, W, H, 3, labels, NULL, &img), FL_OK);
    cr_assert_eq(img.slices, 3);
    cr_assert_float_eq(img.data[2 * N + 7], 207.0f, 0);
    cr_assert_str_eq(img.labels[0], "embedding 1");
    cr_assert_str_eq(img.labels[1], "channel 2");
    fl_image_free(&img);
    fl_ctx_free(ctx);
}
