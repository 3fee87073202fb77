/* Tests of ops/winograd: F(4x4, 3x3) and F(4, 3) against a double-precision direct convolution (every
 * padding, dilations 1-4, 1-D, image sizes that are not multiples of the tile, several tile blocks,
 * one-pixel images), accumulation, the flipped kernel of the input gradient, and bit-identity for 1, 2
 * and 3 threads; the weight gradient (F(3x3, 4x4) by the adjoint transforms) on the same geometries. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "ops/winograd.h"

static void fill(float *x, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) & 0xFFFF) / 32768.0f - 1.0f;
    }
}

static int64_t out_h(const fl_wino_geom *g) { return g->one_d ? g->H : g->H + 2 * g->ph - 2 * g->dh; }
static int64_t out_w(const fl_wino_geom *g) { return g->W + 2 * g->pw - 2 * g->dw; }

/* y[co][n][oy][ox] = sum w[co][ci][ki][kj] x[ci][n][oy+dh*ki-ph][ox+dw*kj-pw], and the sum of |terms| (the
 * scale of the rounding error) in mag. */
static void direct(const float *w, const float *x, const fl_wino_geom *g, double *y, double *mag)
{
    const int64_t Cout = g->Cout, Cin = g->Cin, N = g->N, H = g->H, W = g->W, Ho = out_h(g), Wo = out_w(g);
    const int kk = g->one_d ? 3 : 9;
    for (int64_t co = 0; co < Cout; co++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    double s = 0, a = 0;
                    for (int64_t ci = 0; ci < Cin; ci++)
                        for (int q = 0; q < kk; q++) {
                            const int64_t iy = g->one_d ? oy : oy + g->dh * (q / 3) - g->ph,
                                          ix = ox + g->dw * (q % 3) - g->pw;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            const double t = (double)w[(co * Cin + ci) * kk + q] * x[((ci * N + n) * H + iy) * W + ix];
                            s += t;
                            a += fabs(t);
                        }
                    const int64_t j = ((co * N + n) * Ho + oy) * Wo + ox;
                    y[j] = s;
                    mag[j] = a;
                }
}

static float *run(int threads, const float *w, const fl_wino_geom *g, int flip, const float *x, float beta,
                  const float *y0)
{
    const int64_t ny = g->Cout * g->N * out_h(g) * out_w(g);
    float *U = malloc(fl_wino_weight_floats(g) * sizeof(float));
    float *work = malloc(fl_wino_work_floats(threads, g) * sizeof(float));
    float *y = malloc((size_t)ny * sizeof(float));
    cr_assert(U && work && y);
    for (int64_t j = 0; j < ny; j++) y[j] = y0 ? y0[j] : NAN; /* beta 0 must overwrite NaN */
    fl_wino_weights(threads, w, g, flip, U);
    fl_wino_conv(threads, U, g, x, beta, y, work);
    free(U);
    free(work);
    return y;
}

/* The weight gradient dw[co][ci][q] = sum dy[co][n][oy][ox] x[ci][n][oy+dh*ki-ph][ox+dw*kj-pw], against
 * double precision (relative to the sum of |terms|), accumulated onto what dw holds, bit-identical for 1,
 * 2 and 3 threads. */
static void check_weight_grad(const fl_wino_geom *g, const float *x)
{
    const int64_t Cout = g->Cout, Cin = g->Cin, N = g->N, H = g->H, W = g->W, Ho = out_h(g), Wo = out_w(g);
    const int kk = g->one_d ? 3 : 9;
    const int64_t nw = Cout * Cin * kk, ny = Cout * N * Ho * Wo;
    float *dy = malloc((size_t)ny * sizeof(float)), *dw[3];
    double *ref = calloc((size_t)nw, sizeof(double)), *mag = calloc((size_t)nw, sizeof(double));
    cr_assert(dy && ref && mag);
    fill(dy, ny, 23);
    for (int64_t co = 0; co < Cout; co++)
        for (int64_t ci = 0; ci < Cin; ci++)
            for (int q = 0; q < kk; q++)
                for (int64_t n = 0; n < N; n++)
                    for (int64_t oy = 0; oy < Ho; oy++)
                        for (int64_t ox = 0; ox < Wo; ox++) {
                            const int64_t iy = g->one_d ? oy : oy + g->dh * (q / 3) - g->ph,
                                          ix = ox + g->dw * (q % 3) - g->pw;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            const double t =
                                (double)dy[((co * N + n) * Ho + oy) * Wo + ox] * x[((ci * N + n) * H + iy) * W + ix];
                            ref[(co * Cin + ci) * kk + q] += t;
                            mag[(co * Cin + ci) * kk + q] += fabs(t);
                        }
    float *work = malloc(fl_wino_weight_grad_work_floats(g) * sizeof(float));
    cr_assert(work);
    for (int threads = 1; threads <= 3; threads++) {
        dw[threads - 1] = malloc((size_t)nw * sizeof(float));
        cr_assert(dw[threads - 1]);
        for (int64_t j = 0; j < nw; j++) dw[threads - 1][j] = 0.5f; /* accumulates onto this */
        fl_wino_weight_grad(threads, g, x, dy, dw[threads - 1], work);
    }
    double worst = 0;
    for (int64_t j = 0; j < nw; j++) {
        const double e = fabs(dw[0][j] - 0.5 - ref[j]) / (mag[j] + 1e-30);
        if (e > worst) worst = e;
        cr_assert_eq(dw[1][j], dw[0][j], "2 threads: weight gradient %lld differs", (long long)j);
        cr_assert_eq(dw[2][j], dw[0][j], "3 threads: weight gradient %lld differs", (long long)j);
    }
    cr_expect_leq(worst, 2e-5, "weight gradient %lldx%lld%s %lldx%lldx%lld pad %d,%d dil %d,%d: relative error %g",
                  (long long)Cout, (long long)Cin, g->one_d ? " 1-D" : "", (long long)N, (long long)H, (long long)W,
                  g->ph, g->pw, g->dh, g->dw, worst);
    for (int i = 0; i < 3; i++) free(dw[i]);
    free(work);
    free(dy);
    free(ref);
    free(mag);
}

/* fl_wino_conv_rows (one plane): rows [oy0, oy1) rounded out to whole blocks of fl_wino_row_block rows,
 * each bit for bit as the full convolution y computed it; every other row left as it was. */
static void check_rows(const fl_wino_geom *g, const float *w, const float *x, const float *y)
{
    const int64_t Ho = out_h(g), Wo = out_w(g), Cout = g->Cout, A = fl_wino_row_block(g);
    cr_assert_eq(A, g->one_d ? 1 : 4 * g->dh);
    float *U = malloc(fl_wino_weight_floats(g) * sizeof(float)), *work = malloc(fl_wino_work_floats(2, g) * sizeof(float));
    float *yr = malloc((size_t)(Cout * Ho * Wo) * sizeof(float));
    cr_assert(U && work && yr);
    fl_wino_weights(2, w, g, 0, U);
    const int64_t starts[4] = {0, 1, Ho / 2, Ho - 1};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 2; k++) {
            const int64_t oy0 = starts[i], oy1 = k ? Ho : oy0 + 1;
            for (int64_t j = 0; j < Cout * Ho * Wo; j++) yr[j] = NAN;
            int64_t d0, d1;
            fl_wino_conv_rows(2, U, g, x, yr, work, oy0, oy1, &d0, &d1);
            const int64_t e1 = (oy1 + A - 1) / A * A;
            cr_assert_eq(d0, oy0 / A * A, "rows [%lld, %lld): first row computed %lld", (long long)oy0, (long long)oy1, (long long)d0);
            cr_assert_eq(d1, e1 < Ho ? e1 : Ho, "rows [%lld, %lld): end %lld", (long long)oy0, (long long)oy1, (long long)d1);
            for (int64_t c = 0; c < Cout; c++)
                for (int64_t r = 0; r < Ho; r++)
                    for (int64_t q = 0; q < Wo; q++) {
                        const int64_t j = (c * Ho + r) * Wo + q;
                        if (r >= d0 && r < d1)
                            cr_assert_eq(yr[j], y[j], "rows [%lld, %lld) dil %d: channel %lld row %lld col %lld differs",
                                         (long long)oy0, (long long)oy1, g->dh, (long long)c, (long long)r, (long long)q);
                        else
                            cr_assert(isnan(yr[j]), "row %lld outside [%lld, %lld) was written", (long long)r,
                                      (long long)d0, (long long)d1);
                    }
        }
    free(U);
    free(work);
    free(yr);
}

static void check_geom(fl_wino_geom g)
{
    const int64_t Cout = g.Cout, Cin = g.Cin, N = g.N, H = g.H, W = g.W, ny = Cout * N * out_h(&g) * out_w(&g);
    const int64_t nw = Cout * Cin * (g.one_d ? 3 : 9);
    cr_assert(fl_wino_supported(g.one_d ? 1 : 3, 3, 1, g.ph, g.pw, g.dh, g.dw));
    float *w = malloc((size_t)nw * sizeof(float)), *x = malloc((size_t)(Cin * N * H * W) * sizeof(float));
    double *ref = malloc((size_t)ny * sizeof(double)), *mag = malloc((size_t)ny * sizeof(double));
    fill(w, nw, 7);
    fill(x, Cin * N * H * W, 11);
    direct(w, x, &g, ref, mag);
    float *y1 = run(1, w, &g, 0, x, 0.f, NULL);
    double worst = 0;
    for (int64_t j = 0; j < ny; j++) {
        const double e = fabs(y1[j] - ref[j]) / (mag[j] + 1e-30);
        if (e > worst) worst = e;
        cr_assert(isfinite(y1[j]), "output %lld not finite", (long long)j);
    }
    /* float rounding: a few units of 2^-24 of the terms' magnitude, amplified by the transforms */
    cr_expect_leq(worst, 2e-5, "%lldx%lld conv%s %lldx%lldx%lld pad %d,%d dil %d,%d: relative error %g",
                  (long long)Cout, (long long)Cin, g.one_d ? " 1-D" : "", (long long)N, (long long)H, (long long)W, g.ph,
                  g.pw, g.dh, g.dw, worst);
    for (int threads = 2; threads <= 3; threads++) {
        float *yt = run(threads, w, &g, 0, x, 0.f, NULL);
        for (int64_t j = 0; j < ny; j++)
            cr_assert_eq(yt[j], y1[j], "%d threads: output %lld differs", threads, (long long)j);
        free(yt);
    }
    /* beta 1 adds to what y holds */
    float *base = malloc((size_t)ny * sizeof(float));
    fill(base, ny, 5);
    float *ya = run(2, w, &g, 0, x, 1.f, base);
    for (int64_t j = 0; j < ny; j++) cr_assert_eq(ya[j], base[j] + y1[j], "accumulate: output %lld", (long long)j);
    free(base);
    free(ya);
    if (N == 1) check_rows(&g, w, x, y1);
    free(y1);
    check_weight_grad(&g, x);
    free(w);
    free(x);
    free(ref);
    free(mag);
}

static void check_case(int64_t Cout, int64_t Cin, int64_t N, int64_t H, int64_t W, int ph, int pw)
{
    check_geom((fl_wino_geom){Cout, Cin, N, H, W, 0, ph, pw, 1, 1});
}

Test(winograd, equals_direct_convolution_pad1) { check_case(5, 3, 2, 9, 11, 1, 1); }
Test(winograd, equals_direct_convolution_tile_multiple) { check_case(16, 8, 1, 8, 16, 1, 1); }
Test(winograd, equals_direct_convolution_no_padding) { check_case(3, 2, 3, 7, 5, 0, 0); }
Test(winograd, equals_direct_convolution_pad2) { check_case(4, 6, 1, 13, 6, 2, 2); }
Test(winograd, equals_direct_convolution_mixed_padding) { check_case(4, 5, 2, 6, 9, 2, 0); }
Test(winograd, equals_direct_convolution_one_pixel) { check_case(8, 8, 2, 1, 1, 1, 1); }
Test(winograd, equals_direct_convolution_many_blocks) { check_case(24, 20, 2, 37, 41, 1, 1); }
Test(winograd, equals_direct_convolution_wide_channels) { check_case(70, 130, 1, 10, 10, 1, 1); }

Test(winograd, equals_direct_convolution_dilated)
{
    check_geom((fl_wino_geom){6, 5, 2, 16, 16, 0, 2, 2, 2, 2});  /* 'same', dilation 2 */
    check_geom((fl_wino_geom){4, 3, 1, 17, 19, 0, 3, 3, 3, 3});  /* dilation 3, sizes not multiples of 3 */
    check_geom((fl_wino_geom){5, 4, 2, 16, 13, 0, 4, 8, 4, 4});  /* dilation 4, padding 1 and 2 dilations */
    check_geom((fl_wino_geom){3, 4, 1, 21, 18, 0, 0, 2, 2, 1});  /* dilation 2 x 1, no row padding */
    check_geom((fl_wino_geom){9, 10, 1, 30, 7, 0, 4, 2, 2, 2});  /* one plane: row blocks of 8 with dilation 2 */
}

Test(winograd, equals_direct_convolution_one_d)
{
    check_geom((fl_wino_geom){7, 5, 3, 1, 64, 1, 0, 1, 1, 1});   /* conv1d k3 'same' */
    check_geom((fl_wino_geom){6, 9, 2, 1, 64, 1, 0, 4, 1, 4});   /* dilation 4 */
    check_geom((fl_wino_geom){4, 3, 2, 3, 29, 1, 0, 3, 1, 3});   /* rows are independent; 29 not a tile multiple */
    check_geom((fl_wino_geom){130, 70, 1, 1, 40, 1, 0, 0, 1, 2}); /* no padding, wide channels */
}

Test(winograd, supported_shapes)
{
    cr_expect(fl_wino_supported(3, 3, 1, 1, 1, 1, 1));
    cr_expect(fl_wino_supported(3, 3, 1, 4, 4, 2, 2));
    cr_expect(fl_wino_supported(1, 3, 1, 0, 3, 1, 3));
    cr_expect(!fl_wino_supported(3, 3, 2, 1, 1, 1, 1));  /* stride */
    cr_expect(!fl_wino_supported(3, 3, 1, 3, 3, 2, 2));  /* padding not a multiple of the dilation */
    cr_expect(!fl_wino_supported(3, 3, 1, 3, 3, 1, 1));  /* padding over 2 */
    cr_expect(!fl_wino_supported(5, 5, 1, 2, 2, 1, 1));  /* kernel size */
    cr_expect(!fl_wino_supported(1, 3, 1, 1, 1, 1, 1));  /* 1-D with row padding */
}

/* flip: the gradient kernel, i.e. w read as [Cin][Cout] and rotated: equals the direct convolution with
 * that kernel built explicitly. */
Test(winograd, flipped_kernel_is_the_input_gradient_kernel)
{
    const int64_t Cf = 6, Cb = 4, N = 2, H = 10, W = 7; /* forward layer Cf -> Cb; gradient pass Cb -> Cf */
    float *w = malloc((size_t)(Cb * Cf * 9) * sizeof(float)), *wf = malloc((size_t)(Cb * Cf * 9) * sizeof(float));
    float *x = malloc((size_t)(Cb * N * H * W) * sizeof(float));
    fill(w, Cb * Cf * 9, 3);
    fill(x, Cb * N * H * W, 4);
    for (int64_t co = 0; co < Cb; co++)
        for (int64_t ci = 0; ci < Cf; ci++)
            for (int q = 0; q < 9; q++) wf[(ci * Cb + co) * 9 + 8 - q] = w[(co * Cf + ci) * 9 + q];
    const fl_wino_geom g = {Cf, Cb, N, H, W, 0, 1, 1, 1, 1};
    float *a = run(2, w, &g, 1, x, 0.f, NULL);
    float *b = run(2, wf, &g, 0, x, 0.f, NULL);
    for (int64_t j = 0; j < Cf * N * H * W; j++) cr_assert_eq(a[j], b[j], "output %lld", (long long)j);
    free(a);
    free(b);
    free(w);
    free(wf);
    free(x);
}
