/* Domain-wall masks: skeleton (== scikit-image), measurement points, label rasterisation, metrics,
 * and the PFM wall toy model (native/src/analysis/skeleton.c, native/src/synth/pfm_walls.c). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/skeleton.h"
#include "io/tiff.h"
#include "synth/pfm_walls.h"

typedef struct skel_case {
    const char *name;
    int w, h, n_in, n_out;
    const char *in_hex, *out_hex; /* row-major bits, 4 per hex digit, most significant first */
} skel_case;

/* Generated once with /usr/bin/python3, scikit-image 0.19.3 (skimage.morphology.skeletonize):
 * rectangle, disc, cross, ring, random blobs (coarse and fine), noisy thick line, a full image with a
 * hole touching every border, an L, speckle. */
#define N_SKEL_CASES 10
static const skel_case SKEL_CASES[] = {
    {"rectangle", 32, 24, 336, 13,
     "000000000000000000000000000000001fffffe01fffffe01fffffe01fffffe01fffffe01fffffe01fffffe01fffffe01fffffe01fffffe01fffffe01fffffe01fffffe01fffffe0000000000000000000000000000000000000000000000000",
     "00000000000000000000000000000000000000000000000000000000000000000000000000000000003ff80000c00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    {"disc", 30, 30, 379, 1,
     "0000000000000000000000000000000000000000ff800007ff80007fff0003fffe000ffffc007ffff801ffffe00fffff803fffff00fffffc03fffff00fffffc03fffff00fffff801ffffe007ffff800ffffc003fffe0007fff0000fff80000ffc00000700000000000000000000000000",
     "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000008000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"},
    {"cross", 29, 29, 225, 44,
     "000000000000000003e000001f000000f8000007c000003e000001f000000f8000007c000003e000001f0003fffffe1ffffff0ffffff87fffffc3fffffe0007c000003e000001f000000f8000007c000003e000001f000000f8000007c000003e000000000000000000",
     "0000000000000000000000000200000020000001000000080000004000000200000010000000800000040000002000000100603ffffc0000400000020000001000000080000004000000200000010000000800000040000004000000200000000000000000000000000"},
    {"ring", 30, 30, 292, 52,
     "00000000000000000000000003f000007ff80003fff0001fffe000ffffc007f03f803f807f00fc00fc03e001f01f0003e07c000f81f0003e07c000f81f0003e07c000f80f8007c03f003f00fe01fc01fc0fe003ffff0007fff8000fffc0001ffe00000fc0000000000000000000000000",
     "00000000000000000000000000000000000000007f8000020100001002000080040004000800200010010000400400010010000400400008010000200400010010000400400010008000400100020002001000040080000f3c00000300000000000000000000000000000000000000000"},
    {"random_blobs", 40, 36, 648, 89,
     "f01fe1f81ff01fe1f01ff01fc0f00cf01fc07000f03fc00000e03fc00000007fc0000000ffc0000001ffffc00001f9ffc00003f01f800003e00f000003e000000001c0000000f800000000fc001c0000fe003e0000ff007f0000ff00ff8000ff03ff8000ff0fffe000fe1ffff000fc3ffff800f83ffff800f07ffff800e07ffffc00c07ffffc00007ffffc00007ffffc00007ffffe00007ffffffc007ffffffc007fdffffc001f8ff9fc3e078ff9fc3e070ff9fc",
     "200040980f2000806000400100000040020000004002000000000600000000090000000010800000002070800000400f0000008000000000800000000000000000000000000000000000000000000000200000000020000000002000000000200000000020000000002000000000400000000040000800004000080000800008000000007c000000018300000006008000001a008000000200f8000002010780000200007000020000003e020000000000000000"},
    {"random_blobs_fine", 32, 32, 512, 131,
     "ffe1ffe3ffe0fff7ffc083ff1fc081ff0fc081ff07c000ff07e000fe00e0007c0070003800781c00007f9e00007f9fc0007f8fc00ffd87c01ff886001fe00c001fc00c001cfc0018387e007c7c7f00fc7c3e11f87e1e7fe07e083f803e183f003e3c7f003e3e7c003e7ffc013ffffe033fffff073fffff077fffc00ffffc005e",
     "00407e01fc808102030080820100804401008038008000000080000000400000004000000020000000200800003e0480002103000020840003c004000440040008400000084000000830000008080038100800401008218010081e00080810000808100008081000080810010808f001081f0e021fe000022000000440000048"},
    {"noisy_line", 40, 30, 213, 112,
     "0000a00a00c0000000410000000200040000000000000000000000020800c1200000f47800100080ff40000440ffd00080402ff8c0100007df40000001ffe00000003fbca0000007ef80100000fff02000411dff0000000ff7821010006f701000000ffe00000001ff000810005f040500010f00c000000100000002000000200000000028000a000008800000000000000400200000",
     "0000a00a00c00000004100000002000400000000000000000000000208000120000074400010008030000004400e0000804001e08010000051400000003fe000000000b020000000e8001000009e0020004105f8000000021782101000094010000000e0000000001c0008100002040500010100c000000000000002000000200000000028000a000008800000000000000400200000"},
    {"border_filled_with_hole", 26, 20, 504, 47,
     "ffffffffffffffffffffffffffffffffffffffffffffffffffffffc3fffff0fffffc3fffff0fffffffffffffffffffffffffffffffffffffffffffffffffffffff",
     "000000000000000000000fff000400200200040080010020004008001002000400800100200040080010020004008002001fff0000000000000000000000000000"},
    {"L_shape", 25, 25, 170, 31,
     "00000000000007c00003e00001f00000f800007c00003e00001f00000f800007c00003e00001f00000f800007c00003e00001f00000ffffe07ffff03ffff81ffffc0ffffe00000000000000000000",
     "0000000000000000000040000040000020000010000008000004000002000001000000800000400000200000100000080000040000020000010006007ffc000000000000000000000000000000000"},
    {"speckle", 24, 24, 280, 109,
     "1fe0671fe1e38ce3f080e7f380eff300fff3009ff301cffec18fdec18f9f8387ff80c27e80607e80407e0080fe8d80c68f80c1c381c3c1c1c3e1c0c38083f3000ffc006ff81efff8",
     "0f802700404080404080404080c04200bc820083420081340101088100888080488080288040388040440080448880828700818100818080826080820000820000fc000f001e7000"},
};

static uint8_t *decode(const char *hex, int n)
{
    uint8_t *m = calloc((size_t)n, 1);
    for (int i = 0; i < n; i++) {
        char c = hex[i / 4];
        int v = c <= '9' ? c - '0' : c - 'a' + 10;
        m[i] = (uint8_t)((v >> (3 - i % 4)) & 1);
    }
    return m;
}

Test(walls, skeleton_matches_skimage)
{
    fl_ctx *ctx = fl_ctx_new();
    for (int c = 0; c < N_SKEL_CASES; c++) {
        const skel_case *k = &SKEL_CASES[c];
        int n = k->w * k->h;
        uint8_t *in = decode(k->in_hex, n), *want = decode(k->out_hex, n), *got = malloc((size_t)n);
        int nin = 0, nwant = 0;
        for (int i = 0; i < n; i++) nin += in[i], nwant += want[i];
        cr_assert_eq(nin, k->n_in, "%s: decoded input", k->name);
        cr_assert_eq(nwant, k->n_out, "%s: decoded output", k->name);
        cr_assert_eq(fl_walls_skeletonize(ctx, in, k->w, k->h, got), FL_OK, "%s", fl_ctx_message(ctx));
        for (int i = 0; i < n; i++)
            cr_assert_eq(got[i], want[i], "%s: pixel (%d, %d) is %d, skimage has %d", k->name, i % k->w, i / k->w, got[i], want[i]);
        /* in place (skel aliases mask) gives the same */
        uint8_t *in2 = decode(k->in_hex, n);
        cr_assert_eq(fl_walls_skeletonize(ctx, in2, k->w, k->h, in2), FL_OK);
        cr_assert(memcmp(in2, want, (size_t)n) == 0, "%s: in place", k->name);
        /* a skeleton is its own skeleton */
        cr_assert_eq(fl_walls_skeletonize(ctx, want, k->w, k->h, got), FL_OK);
        cr_assert(memcmp(got, want, (size_t)n) == 0, "%s: skeleton not idempotent", k->name);
        free(in);
        free(in2);
        free(want);
        free(got);
    }
    fl_ctx_free(ctx);
}

static void points(const uint8_t *m, int w, int h, int every, double frac, fl_wall_point **p, int64_t *n,
                   fl_wall_paths_info *info)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_status st = fl_walls_points(ctx, m, w, h, every, frac, p, n, info);
    cr_assert_eq(st, FL_OK, "points: %s", fl_ctx_message(ctx));
    fl_ctx_free(ctx);
}

Test(walls, points_along_a_straight_line)
{
    enum { W = 120, H = 20 };
    uint8_t m[W * H] = {0};
    for (int x = 5; x <= 104; x++) m[x + W * 10] = 1; /* 100 pixels */
    fl_wall_point *p;
    int64_t n;
    fl_wall_paths_info info;
    points(m, W, H, 10, 0.0, &p, &n, &info);
    cr_assert_eq(info.paths, 1);
    cr_assert_eq(info.loops, 0);
    cr_assert_eq(info.path_pixels, 100);
    cr_assert_eq(info.junction_pixels, 0);
    cr_assert_eq(n, 10);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(p[i].x, 5 + 10 * i); /* traced from the left end (first in raster order) */
        cr_assert_eq(p[i].y, 10);
        cr_assert_eq(p[i].path, 0);
        cr_assert_float_eq(p[i].arc, 10.0 * i, 1e-12);
    }
    fl_walls_points_free(p);
    /* fraction 0.1 of 100 pixels: 10 points at indices 5, 15, ..., 95 */
    points(m, W, H, 0, 0.1, &p, &n, NULL);
    cr_assert_eq(n, 10);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(p[i].x, 10 + 10 * i);
        cr_assert_eq(p[i].index, 5 + 10 * i);
    }
    fl_walls_points_free(p);
    /* a diagonal: steps of sqrt 2 */
    memset(m, 0, sizeof m);
    for (int i = 0; i < 15; i++) m[(20 + i) + W * (2 + i)] = 1;
    points(m, W, H, 7, 0.0, &p, &n, NULL);
    cr_assert_eq(n, 3); /* indices 0, 7, 14 */
    cr_assert_eq(p[2].x, 34);
    cr_assert_eq(p[2].y, 16);
    cr_assert_float_eq(p[2].arc, 14.0 * sqrt(2.0), 1e-12);
    fl_walls_points_free(p);
}

Test(walls, points_along_a_circle)
{
    enum { W = 64, H = 64 };
    const double R = 20.0, cx = 31.3, cy = 32.2;
    double xy[2 * 201];
    for (int k = 0; k <= 200; k++) {
        double a = 2.0 * M_PI * k / 200.0;
        xy[2 * k] = cx + R * cos(a);
        xy[2 * k + 1] = cy + R * sin(a);
    }
    uint8_t m[W * H] = {0}, s[W * H];
    fl_ctx *ctx = fl_ctx_new();
    cr_assert_eq(fl_walls_draw_polyline(ctx, xy, 201, 1.0, W, H, m), FL_OK);
    cr_assert_eq(fl_walls_skeletonize(ctx, m, W, H, s), FL_OK);
    fl_ctx_free(ctx);
    int64_t ns = 0;
    for (int i = 0; i < W * H; i++) ns += s[i];
    fl_wall_point *p;
    int64_t n;
    fl_wall_paths_info info;
    points(s, W, H, 5, 0.0, &p, &n, &info);
    cr_assert_eq(info.paths, 1, "paths %d", info.paths);
    cr_assert_eq(info.loops, 1);
    cr_assert_eq(info.junction_pixels, 0);
    cr_assert_eq(info.path_pixels, ns);
    cr_assert_eq(n, (ns - 1) / 5 + 1);
    for (int64_t i = 0; i < n; i++) {
        double r = hypot(p[i].x - cx, p[i].y - cy);
        cr_assert(fabs(r - R) < 1.0, "point %lld at radius %g", (long long)i, r);
        if (i == 0) continue;
        double da = p[i].arc - p[i - 1].arc, de = hypot(p[i].x - p[i - 1].x, p[i].y - p[i - 1].y);
        cr_assert(da >= 5.0 - 1e-9 && da <= 5.0 * sqrt(2.0) + 1e-9, "arc step %g", da);
        cr_assert(de <= da + 1e-9 && de >= 0.75 * da, "chord %g for arc %g", de, da);
    }
    /* the whole loop: 8-connected circle length is between 2 pi R and 2 pi R * 1.09 */
    double total = p[n - 1].arc + 5.0 * sqrt(2.0);
    cr_assert(total > 2.0 * M_PI * R && total < 2.0 * M_PI * R * 1.12, "loop length %g", total);
    fl_walls_points_free(p);
}

Test(walls, junctions_split_paths)
{
    enum { W = 21, H = 21 };
    uint8_t m[W * H] = {0};
    for (int i = 2; i <= 18; i++) m[i + W * 10] = m[10 + W * i] = 1; /* a plus, arms of 8 pixels */
    fl_wall_point *p;
    int64_t n;
    fl_wall_paths_info info;
    points(m, W, H, 1, 0.0, &p, &n, &info);
    cr_assert_eq(info.junction_pixels, 1);
    cr_assert_eq(info.paths, 4);
    cr_assert_eq(info.path_pixels, 32);
    cr_assert_eq(n, 32);
    int len[4] = {0};
    for (int64_t i = 0; i < n; i++) {
        cr_assert(!(p[i].x == 10 && p[i].y == 10), "the junction pixel is on a path");
        len[p[i].path]++;
    }
    for (int k = 0; k < 4; k++) cr_assert_eq(len[k], 8);
    fl_walls_points_free(p);
    /* empty mask and bad arguments: clear errors, outputs untouched */
    fl_ctx *ctx = fl_ctx_new();
    memset(m, 0, sizeof m);
    p = NULL;
    n = -5;
    cr_assert_eq(fl_walls_points(ctx, m, W, H, 3, 0.0, &p, &n, NULL), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "empty") != NULL, "%s", fl_ctx_message(ctx));
    cr_assert_null(p);
    cr_assert_eq(n, -5);
    m[3] = 1;
    cr_assert_eq(fl_walls_points(ctx, m, W, H, 3, 0.5, &p, &n, NULL), FL_EINVAL);
    cr_assert_eq(fl_walls_points(ctx, m, W, H, 0, 1.5, &p, &n, NULL), FL_EINVAL);
    cr_assert_eq(fl_walls_points(ctx, m, W, H, 0, 0.0, &p, &n, NULL), FL_EINVAL);
    fl_ctx_free(ctx);
}

static int count_set(const uint8_t *m, int n)
{
    int c = 0;
    for (int i = 0; i < n; i++) c += m[i] != 0;
    return c;
}

Test(walls, polyline_rasterisation)
{
    enum { W = 12, H = 10 };
    uint8_t m[W * H] = {0};
    fl_ctx *ctx = fl_ctx_new();
    /* (0,0)-(5,2) Bresenham, then down to (5,6); the second vertex is given off-centre */
    const double v[] = {0.0, 0.0, 5.3, 1.6, 5.0, 6.0};
    cr_assert_eq(fl_walls_draw_polyline(ctx, v, 3, 1.0, W, H, m), FL_OK);
    const int want[][2] = {{0, 0}, {1, 0}, {2, 1}, {3, 1}, {4, 2}, {5, 2}, {5, 3}, {5, 4}, {5, 5}, {5, 6}};
    cr_assert_eq(count_set(m, W * H), 10);
    for (int i = 0; i < 10; i++) cr_assert_eq(m[want[i][0] + W * want[i][1]], 1, "pixel %d", i);
    /* width 3: a horizontal segment (2,5)-(8,5) covers centres within 1.5: x 1..9, y 4..6 */
    memset(m, 0, sizeof m);
    const double hseg[] = {2.0, 5.0, 8.0, 5.0};
    cr_assert_eq(fl_walls_draw_polyline(ctx, hseg, 2, 3.0, W, H, m), FL_OK);
    cr_assert_eq(count_set(m, W * H), 27);
    for (int y = 4; y <= 6; y++)
        for (int x = 1; x <= 9; x++) cr_assert_eq(m[x + W * y], 1);
    /* clipping: a line leaving the image draws only the inside pixels */
    memset(m, 0, sizeof m);
    const double out[] = {-5.0, 3.0, 20.0, 3.0};
    cr_assert_eq(fl_walls_draw_polyline(ctx, out, 2, 1.0, W, H, m), FL_OK);
    cr_assert_eq(count_set(m, W * H), W);
    /* bad input changes nothing */
    memset(m, 0, sizeof m);
    const double bad[] = {1.0, NAN};
    cr_assert_eq(fl_walls_draw_polyline(ctx, bad, 1, 1.0, W, H, m), FL_EINVAL);
    cr_assert_eq(fl_walls_draw_polyline(ctx, hseg, 2, 0.5, W, H, m), FL_EINVAL);
    cr_assert_eq(count_set(m, W * H), 0);
    fl_ctx_free(ctx);
}

static fl_walls_metrics metrics(const uint8_t *a, const uint8_t *b, int w, int h, double tol)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_walls_metrics m;
    cr_assert_eq(fl_walls_metrics_compute(ctx, a, b, w, h, tol, &m), FL_OK, "%s", fl_ctx_message(ctx));
    fl_ctx_free(ctx);
    return m;
}

Test(walls, metrics_with_tolerance)
{
    enum { W = 32, H = 32 };
    uint8_t truth[W * H] = {0}, pred[W * H] = {0};
    for (int y = 0; y < 20; y++) truth[10 + W * y] = 1, pred[12 + W * y] = 1; /* shifted by 2 px */
    for (int y = 25; y < 30; y++) pred[30 + W * y] = 1;                        /* 5 false pixels far away */
    fl_walls_metrics m = metrics(pred, truth, W, H, 1.0);
    cr_assert_eq(m.pred_pixels, 25);
    cr_assert_eq(m.truth_pixels, 20);
    cr_assert_eq(m.pred_correct, 0);
    cr_assert_float_eq(m.f1, 0.0, 1e-12);
    m = metrics(pred, truth, W, H, 1.99);
    cr_assert_eq(m.pred_correct, 0);
    m = metrics(pred, truth, W, H, 2.0);
    cr_assert_eq(m.pred_correct, 20);
    cr_assert_eq(m.truth_found, 20);
    cr_assert_float_eq(m.precision, 0.8, 1e-12);
    cr_assert_float_eq(m.recall, 1.0, 1e-12);
    cr_assert_float_eq(m.f1, 2.0 * 0.8 / 1.8, 1e-12);
    cr_assert_float_eq(m.iou, 0.0, 1e-12);
    /* a diagonal offset: truth pixel (5,5) vs pred (6,6): distance sqrt 2 */
    uint8_t a[W * H] = {0}, b[W * H] = {0};
    a[5 + W * 5] = 1;
    b[6 + W * 6] = 1;
    cr_assert_float_eq(metrics(b, a, W, H, 1.41).f1, 0.0, 1e-12);
    cr_assert_float_eq(metrics(b, a, W, H, 1.42).f1, 1.0, 1e-12);
    /* half overlap: truth rows 0..9 at x=3, pred rows 5..14 at x=3: IoU 5/15, F1 at tolerance 0 = 0.5 */
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    for (int y = 0; y < 10; y++) a[3 + W * y] = 1;
    for (int y = 5; y < 15; y++) b[3 + W * y] = 1;
    m = metrics(b, a, W, H, 0.0);
    cr_assert_float_eq(m.iou, 5.0 / 15.0, 1e-12);
    cr_assert_float_eq(m.f1, 0.5, 1e-12);
    /* tolerance 3 finds 3 more on each side: P = R = 8/10 */
    m = metrics(b, a, W, H, 3.0);
    cr_assert_float_eq(m.precision, 0.8, 1e-12);
    cr_assert_float_eq(m.recall, 0.8, 1e-12);
    /* pooling two images: counts add */
    fl_walls_metrics acc;
    memset(&acc, 0, sizeof acc);
    fl_walls_metrics one = metrics(pred, truth, W, H, 2.0);
    fl_walls_metrics_add(&acc, &one);
    fl_walls_metrics_add(&acc, &m);
    cr_assert_float_eq(acc.precision, 28.0 / 35.0, 1e-12);
    cr_assert_float_eq(acc.recall, 28.0 / 30.0, 1e-12);
    /* empty conventions */
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    m = metrics(b, a, W, H, 2.0);
    cr_assert_float_eq(m.f1, 1.0, 1e-12);
    a[0] = 1;
    m = metrics(b, a, W, H, 2.0);
    cr_assert_float_eq(m.f1, 0.0, 1e-12);
    cr_assert_float_eq(m.recall, 0.0, 1e-12);
}

Test(walls, distance_transform_is_exact)
{
    enum { W = 37, H = 23 };
    uint8_t m[W * H];
    double d2[W * H], scratch[4 * W + 1];
    uint32_t s = 12345;
    for (int i = 0; i < W * H; i++) {
        s = s * 1103515245u + 12345u;
        m[i] = (s >> 16) % 29 == 0;
    }
    fl_edt_squared(m, W, H, d2, scratch);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double best = 1e20;
            for (int yy = 0; yy < H; yy++)
                for (int xx = 0; xx < W; xx++)
                    if (m[xx + W * yy]) {
                        double d = (double)(x - xx) * (x - xx) + (double)(y - yy) * (y - yy);
                        if (d < best) best = d;
                    }
            cr_assert_eq(d2[x + W * y], best, "(%d,%d): %g vs %g", x, y, d2[x + W * y], best);
        }
}

/* ---- toy model -------------------------------------------------------------------------------------- */

static void synth(const fl_synth_pfm_params *p, float **img, float **msk)
{
    size_t n = (size_t)p->count * (size_t)(p->size * p->size);
    *img = malloc(n * sizeof(float));
    *msk = malloc(n * sizeof(float));
    fl_ctx *ctx = fl_ctx_new();
    cr_assert_eq(fl_synth_pfm_walls(ctx, p, *img, *msk), FL_OK, "%s", fl_ctx_message(ctx));
    fl_ctx_free(ctx);
}

Test(walls, generator_is_deterministic)
{
    fl_synth_pfm_params p;
    fl_synth_pfm_params_default(&p);
    p.size = 64;
    p.count = 4;
    float *i1, *m1, *i2, *m2;
    synth(&p, &i1, &m1);
    synth(&p, &i2, &m2);
    size_t n = 4 * 64 * 64;
    cr_assert(memcmp(i1, i2, n * sizeof(float)) == 0);
    cr_assert(memcmp(m1, m2, n * sizeof(float)) == 0);
    free(i2);
    free(m2);
    /* image i does not depend on the count */
    p.count = 2;
    synth(&p, &i2, &m2);
    cr_assert(memcmp(i1, i2, n / 2 * sizeof(float)) == 0);
    free(i2);
    free(m2);
    /* another seed or set differs */
    p.count = 4;
    p.seed = 2;
    synth(&p, &i2, &m2);
    cr_assert(memcmp(i1, i2, n * sizeof(float)) != 0);
    cr_assert(memcmp(m1, m2, n * sizeof(float)) != 0);
    free(i2);
    free(m2);
    p.seed = 1;
    p.set = 1;
    synth(&p, &i2, &m2);
    cr_assert(memcmp(m1, m2, n * sizeof(float)) != 0);
    free(i1);
    free(m1);
    free(i2);
    free(m2);
}

/* one pixel wide: no 2x2 block, thinning leaves it unchanged; no isolated pixels inside the image */
static void check_thin(const float *mf, int S, const char *what, int i)
{
    uint8_t *m = malloc((size_t)S * S), *s = malloc((size_t)S * S);
    for (int k = 0; k < S * S; k++) m[k] = mf[k] != 0.0f;
    for (int y = 0; y + 1 < S; y++)
        for (int x = 0; x + 1 < S; x++)
            cr_assert(!(m[x + S * y] && m[x + 1 + S * y] && m[x + S * (y + 1)] && m[x + 1 + S * (y + 1)]),
                      "%s %d: 2x2 block at (%d,%d)", what, i, x, y);
    fl_ctx *ctx = fl_ctx_new();
    cr_assert_eq(fl_walls_skeletonize(ctx, m, S, S, s), FL_OK);
    fl_ctx_free(ctx);
    for (int k = 0; k < S * S; k++)
        cr_assert_eq(s[k], m[k], "%s %d: thinning changes the mask at (%d,%d)", what, i, k % S, k / S);
    for (int y = 1; y + 1 < S; y++)
        for (int x = 1; x + 1 < S; x++) {
            if (!m[x + S * y]) continue;
            int nb = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) nb += (dx || dy) && m[x + dx + S * (y + dy)];
            cr_assert(nb >= 1 && nb <= 2, "%s %d: pixel (%d,%d) has %d neighbours", what, i, x, y, nb);
        }
    free(m);
    free(s);
}

Test(walls, truth_masks_are_thin_and_on_the_dark_lines)
{
    fl_synth_pfm_params p;
    fl_synth_pfm_params_default(&p);
    p.count = 8;
    p.condition = FL_PFM_CLEAN;
    float *img, *msk;
    synth(&p, &img, &msk);
    const int S = 128, N = S * S;
    for (int i = 0; i < p.count; i++) {
        const float *a = img + (size_t)i * N, *m = msk + (size_t)i * N;
        check_thin(m, S, "clean", i);
        int nm = 0;
        for (int k = 0; k < N; k++) nm += m[k] != 0.0f;
        cr_assert_gt(nm, 2 * S / 2, "image %d has only %d wall pixels", i, nm);
        if (i % 2) continue; /* even images: 180 walls, A0 = 1 */
        double sum = 0.0;
        int minima = 0;
        for (int y = 1; y < S - 1; y++)
            for (int x = 1; x < S - 1; x++) {
                int k = x + S * y;
                if (m[k] == 0.0f) {
                    /* every dark pixel is next to the truth */
                    if (a[k] < 0.2f) {
                        int near = 0;
                        for (int dy = -1; dy <= 1; dy++)
                            for (int dx = -1; dx <= 1; dx++) near |= m[k + dx + S * dy] != 0.0f;
                        cr_assert(near, "image %d: dark pixel (%d,%d) = %g away from the wall mask", i, x, y, a[k]);
                    }
                    continue;
                }
                cr_assert_lt(a[k], 0.8f, "image %d: wall pixel (%d,%d) is not dark (%g)", i, x, y, a[k]);
                sum += a[k];
                int mx = a[k] <= a[k - 1] && a[k] <= a[k + 1], my = a[k] <= a[k - S] && a[k] <= a[k + S];
                minima += mx || my;
            }
        int inner = 0;
        for (int y = 1; y < S - 1; y++)
            for (int x = 1; x < S - 1; x++) inner += m[x + S * y] != 0.0f;
        cr_log_info("image %d: mean wall amplitude %.3f, minima %d/%d\n", i, sum / inner, minima, inner);
        cr_assert_lt(sum / inner, 0.4, "image %d: mean amplitude on the walls %g", i, sum / inner);
        cr_assert_geq(minima, (int)(0.98 * inner), "image %d: %d of %d wall pixels are local minima", i, minima, inner);
    }
    free(img);
    free(msk);
    /* in-distribution and out-of-distribution sets: masks thin as well */
    p.condition = FL_PFM_IN;
    synth(&p, &img, &msk);
    for (int i = 0; i < p.count; i++) check_thin(msk + (size_t)i * N, S, "in", i);
    free(img);
    free(msk);
}

Test(walls, ood_set_and_bad_parameters)
{
    fl_synth_pfm_params p;
    fl_synth_pfm_params_default(&p);
    p.condition = FL_PFM_OOD;
    p.count = 4;
    p.size = 64;
    float *img, *msk;
    synth(&p, &img, &msk);
    const int N = 64 * 64;
    int nm[4] = {0};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < N; k++) nm[i] += msk[(size_t)i * N + k] != 0.0f;
    cr_assert_eq(nm[0], 0, "blobs have no walls");
    cr_assert_gt(nm[1], 10 * 64, "checkerboard of ~7 px cells has many wall pixels (%d)", nm[1]);
    cr_assert_gt(nm[2], 0);
    cr_assert_gt(nm[3], 0);
    /* inverted: walls brighter than the background */
    double on = 0.0, off = 0.0;
    int non = 0, noff = 0;
    for (int k = 0; k < N; k++) {
        if (msk[2 * N + k] != 0.0f) on += img[2 * N + k], non++;
        else off += img[2 * N + k], noff++;
    }
    cr_assert_gt(on / non, off / noff + 0.2);
    cr_assert_str_eq(fl_synth_pfm_label(&p, 0), "ood: blobs (no walls)");
    cr_assert_str_eq(fl_synth_pfm_label(&p, 1), "ood: checkerboard");
    free(img);
    free(msk);

    fl_ctx *ctx = fl_ctx_new();
    float buf[32 * 32];
    fl_synth_pfm_params_default(&p);
    p.size = 16;
    cr_assert_eq(fl_synth_pfm_walls(ctx, &p, buf, NULL), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "size") != NULL, "%s", fl_ctx_message(ctx));
    fl_synth_pfm_params_default(&p);
    p.noise = NAN;
    cr_assert_eq(fl_synth_pfm_walls(ctx, &p, buf, NULL), FL_EINVAL);
    fl_synth_pfm_params_default(&p);
    p.blur = 50.0;
    cr_assert_eq(fl_synth_pfm_walls(ctx, &p, buf, NULL), FL_EINVAL);
    fl_synth_pfm_params_default(&p);
    fl_ctx_set_memory_budget(ctx, 1000);
    fl_image a, b;
    cr_assert_eq(fl_synth_pfm_walls_stack(ctx, &p, &a, &b), FL_ENOMEM);
    cr_assert_null(a.data);
    fl_ctx_free(ctx);
}

/* The committed sample stacks are exactly what `ferrolens synth pfm-walls --out sample-stacks` makes. */
Test(walls, sample_stacks_match_the_generator)
{
    const char *names[3][2] = {{"pfm_walls_train.tif", "pfm_walls_train_mask.tif"},
                               {"pfm_walls_test.tif", "pfm_walls_test_mask.tif"},
                               {"pfm_walls_ood.tif", "pfm_walls_ood_mask.tif"}};
    const int counts[3] = {8, 4, 4};
    char path[1024];
    snprintf(path, sizeof path, "%s/sample-stacks/%s", FL_SOURCE_DIR, names[0][0]);
    FILE *f = fopen(path, "rb");
    if (!f) cr_skip_test("no %s", path);
    fclose(f);
    fl_ctx *ctx = fl_ctx_new();
    for (int k = 0; k < 3; k++) {
        fl_synth_pfm_params p;
        fl_synth_pfm_params_default(&p);
        p.count = counts[k];
        p.set = (uint64_t)k;
        p.condition = k == 2 ? FL_PFM_OOD : FL_PFM_IN;
        fl_image gi, gm, ri, rm;
        cr_assert_eq(fl_synth_pfm_walls_stack(ctx, &p, &gi, &gm), FL_OK, "%s", fl_ctx_message(ctx));
        fl_image_init(&ri);
        fl_image_init(&rm);
        snprintf(path, sizeof path, "%s/sample-stacks/%s", FL_SOURCE_DIR, names[k][0]);
        cr_assert_eq(fl_tiff_read(ctx, path, &ri), FL_OK, "%s", fl_ctx_message(ctx));
        snprintf(path, sizeof path, "%s/sample-stacks/%s", FL_SOURCE_DIR, names[k][1]);
        cr_assert_eq(fl_tiff_read(ctx, path, &rm), FL_OK, "%s", fl_ctx_message(ctx));
        cr_assert_eq(ri.width, 128);
        cr_assert_eq(ri.height, 128);
        cr_assert_eq(fl_image_planes(&ri), counts[k]);
        cr_assert_eq(fl_image_planes(&rm), counts[k]);
        size_t n = (size_t)counts[k] * 128 * 128 * sizeof(float);
        cr_assert(memcmp(ri.data, gi.data, n) == 0, "sample %s is stale: regenerate it", names[k][0]);
        cr_assert(memcmp(rm.data, gm.data, n) == 0, "sample %s is stale: regenerate it", names[k][1]);
        cr_assert_str_eq(ri.labels[0], fl_synth_pfm_label(&p, 0));
        fl_image_free(&gi);
        fl_image_free(&gm);
        fl_image_free(&ri);
        fl_image_free(&rm);
    }
    fl_ctx_free(ctx);
}
