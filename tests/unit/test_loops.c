/* Hysteresis-loop descriptors (native/src/analysis/loop_descriptors.c) and the loop toy model
 * (native/src/synth/loops_grid.c). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ferrolens/loops.h"
#include "io/spectral_grid.h"
#include "io/tiff.h"
#include "synth/loops_grid.h"

/* triangle waveform 0 -> +vmax -> -vmax -> 0 (n a multiple of 4) */
static void triangle(float *v, int n, double vmax)
{
    for (int j = 0; j < n; j++) {
        double f = (double)j / n;
        double u = f <= 0.25 ? 4 * f : (f <= 0.75 ? 2 - 4 * f : 4 * f - 4);
        v[j] = (float)(vmax * u);
    }
}

static int rising(const float *v, int n, int j) { return v[j] > v[j == 0 ? n - 1 : j - 1]; }

static double clampd(double x) { return x < -1 ? -1 : (x > 1 ? 1 : x); }

/* Piecewise-linear loop: branches clamp((V - c) / 2) + 0.1 with c = 1.0 (forward) and -0.5 (reverse),
 * sampled at 0.25 V steps (kinks on grid points), so linear interpolation and the shoelace are exact:
 *   V+ = 1 - 0.2 = 0.8, V- = -0.5 - 0.2 = -0.7, imprint 0.05, width 1.5,
 *   area = (horizontal shift 1.5) x (rise 2) = 3, R+ = -0.5 + 0.1 = -0.4, R- = 0.25 + 0.1 = 0.35,
 *   saturation 1, offset 0.1; the branches bend into switching at the kinks -1 (forward) and 1.5
 *   (reverse). */
static float pl_branch(double V, int fwd) { return (float)(clampd((V - (fwd ? 1.0 : -0.5)) / 2.0) + 0.1); }

static void check_pl_desc(const fl_loop_desc *d)
{
    cr_assert_float_eq(d->v_plus, 0.8, 1e-6, "V+ %g", d->v_plus);
    cr_assert_float_eq(d->v_minus, -0.7, 1e-6, "V- %g", d->v_minus);
    cr_assert_float_eq(d->imprint, 0.05, 1e-6);
    cr_assert_float_eq(d->width, 1.5, 1e-6);
    cr_assert_float_eq(d->area, 3.0, 1e-5, "area %g", d->area);
    cr_assert_float_eq(d->rem_plus, -0.4, 1e-6, "R+ %g", d->rem_plus);
    cr_assert_float_eq(d->rem_minus, 0.35, 1e-6, "R- %g", d->rem_minus);
    cr_assert_float_eq(d->saturation, 1.0, 1e-6, "sat %g", d->saturation);
    cr_assert_float_eq(d->offset, 0.1, 1e-6, "offset %g", d->offset);
    cr_assert_float_eq(d->nuc_plus, -1.0, 1e-6, "nucleation+ %g", d->nuc_plus);
    cr_assert_float_eq(d->nuc_minus, 1.5, 1e-6, "nucleation- %g", d->nuc_minus);
}

Test(loops, piecewise_linear_loop_exact_descriptors)
{
    enum { N = 64 };
    float v[N], r[N];
    triangle(v, N, 4.0); /* step 0.25 V */
    for (int j = 0; j < N; j++) r[j] = pl_branch(v[j], rising(v, N, j));
    fl_ctx *ctx = fl_ctx_new();
    fl_loop_desc d;
    cr_assert_eq(fl_loop_descriptors(ctx, v, r, N, &d), FL_OK, "%s", fl_ctx_message(ctx));
    check_pl_desc(&d);

    /* another rotation of the same period (start at -vmax) and an explicit closing point give the same */
    float v2[N + 1], r2[N + 1];
    for (int j = 0; j < N; j++) {
        v2[j] = v[(j + 48) % N];
        r2[j] = r[(j + 48) % N];
    }
    v2[N] = v2[0];
    r2[N] = r2[0];
    fl_loop_desc d2;
    cr_assert_eq(fl_loop_descriptors(ctx, v2, r2, N, &d2), FL_OK, "%s", fl_ctx_message(ctx));
    check_pl_desc(&d2);
    cr_assert_eq(fl_loop_descriptors(ctx, v2, r2, N + 1, &d2), FL_OK, "%s", fl_ctx_message(ctx));
    check_pl_desc(&d2);
    fl_ctx_free(ctx);
}

/* tanh loop with a dense analytic reference: r = A tanh((V - Vc)/s) (+ offset), Vc = +-1.3 + 0.2.
 * Zero crossings are exact up to the interpolation error of a smooth curve; remanence exact. */
Test(loops, tanh_loop_against_analytic_values)
{
    enum { N = 256 };
    float v[N], r[N];
    const double vmax = 5.0, A = 0.8, s = 0.5, off = 0.05, vp = 1.5, vm = -1.1;
    triangle(v, N, vmax);
    for (int j = 0; j < N; j++) r[j] = (float)(off + A * tanh((v[j] - (rising(v, N, j) ? vp : vm)) / s));
    fl_ctx *ctx = fl_ctx_new();
    fl_loop_desc d;
    cr_assert_eq(fl_loop_descriptors(ctx, v, r, N, &d), FL_OK);
    /* true crossings: tanh((V - c)/s) = -off/A  =>  V = c - s atanh(off/A) */
    double shift = s * atanh(off / A);
    cr_assert_float_eq(d.v_plus, vp - shift, 2e-3, "V+ %g vs %g", d.v_plus, vp - shift);
    cr_assert_float_eq(d.v_minus, vm - shift, 2e-3, "V- %g vs %g", d.v_minus, vm - shift);
    cr_assert_float_eq(d.rem_plus, off + A * tanh(-vp / s), 1e-6);
    cr_assert_float_eq(d.rem_minus, off + A * tanh(-vm / s), 1e-6);
    /* area = A s [logcosh((V-vm)/s) - logcosh((V-vp)/s)] from -vmax to vmax = 2 A (vp - vm) for saturated ends */
    double lc1 = log(cosh((vmax - vm) / s)) - log(cosh((vmax - vp) / s));
    double lc0 = log(cosh((-vmax - vm) / s)) - log(cosh((-vmax - vp) / s));
    double area = A * s * (lc1 - lc0);
    cr_assert_float_eq(d.area, area, 1e-3 * area, "area %g vs %g", d.area, area);
    /* nucleation: r'' of tanh((V - c)/s) peaks at V = c - s atanh(1/sqrt 3) (forward, onset below V+) */
    double xn = s * atanh(1.0 / sqrt(3.0));
    double step = 4 * vmax / N;
    cr_assert_float_eq(d.nuc_plus, vp - xn, 1.01 * step, "nucleation+ %g vs %g", d.nuc_plus, vp - xn);
    cr_assert_float_eq(d.nuc_minus, vm + xn, 1.01 * step, "nucleation- %g vs %g", d.nuc_minus, vm + xn);
    cr_assert_float_eq(d.saturation, A, 2e-3, "sat %g", d.saturation);
    cr_assert_float_eq(d.offset, off, 2e-3);
    fl_ctx_free(ctx);
}

Test(loops, noisy_crossings_take_the_median)
{
    /* a noisy forward branch: -0.1, +0.1, -0.1, +0.1 around V = 0..3 crosses up at 0.5 and 2.5 (and down
     * at 1.5, which is against the switching direction and ignored) */
    float v[12] = {0, 1, 2, 3, 4, 3, 2, 1, 0, -1, -2, -1};
    float r[12] = {-0.1f, 0.1f, -0.1f, 0.1f, 1, 1, 1, 1, 1, -1, -1, -1};
    fl_loop_desc d;
    fl_ctx *ctx = fl_ctx_new();
    /* forward: -2 (r -1) -> -1 (-1) -> 0 (-0.1) -> 1 (0.1) -> 2 (-0.1) -> 3 (0.1) -> 4: up crossings 0.5, 2.5 */
    cr_assert_eq(fl_loop_descriptors(ctx, v, r, 12, &d), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_float_eq(d.v_plus, 0.5, 1e-6, "V+ %g", d.v_plus); /* lower middle of {0.5, 2.5} */
    /* reverse: 4 (1) .. 0 (1) -> -1 (-1): one down crossing at -0.5 */
    cr_assert_float_eq(d.v_minus, -0.5, 1e-6, "V- %g", d.v_minus);
    r[0] = 0.1f;
    cr_assert_eq(fl_loop_descriptors(ctx, v, r, 12, &d), FL_OK);
    /* up crossings: (-1,-1)->(0,0.1): -1 + 1/1.1 = -0.0909; (2,-0.1)->(3,0.1): 2.5. median of 2 = lower = -0.0909 */
    cr_assert_float_eq(d.v_plus, -1.0 + 1.0 / 1.1, 1e-6, "V+ %g", d.v_plus);
    fl_ctx_free(ctx);
}

Test(loops, loop_without_zero_crossing_gives_nan_not_error)
{
    enum { N = 32 };
    float v[N], r[N];
    triangle(v, N, 2.0);
    for (int j = 0; j < N; j++) r[j] = 2.0f + (rising(v, N, j) ? 0.3f : 0.6f) * tanhf(v[j]);
    fl_ctx *ctx = fl_ctx_new();
    fl_loop_desc d;
    cr_assert_eq(fl_loop_descriptors(ctx, v, r, N, &d), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert(isnan(d.v_plus) && isnan(d.v_minus) && isnan(d.imprint) && isnan(d.width));
    cr_assert(isnan(d.nuc_plus) && isnan(d.nuc_minus));
    cr_assert(isfinite(d.area) && d.area > 0.0);
    cr_assert_float_eq(d.rem_plus, 2.0, 1e-6);
    cr_assert(d.offset > 1.9 && d.offset < 2.1);
    fl_ctx_free(ctx);
}

Test(loops, polygon_area_hand_values)
{
    float tv[3] = {0, 4, 0}, tr[3] = {0, 0, 3};
    cr_assert_float_eq(fl_loop_area(tv, tr, 3), 6.0, 1e-12);
    float sv[4] = {0, 2, 2, 0}, sr[4] = {0, 0, 1, 1};
    cr_assert_float_eq(fl_loop_area(sv, sr, 4), 2.0, 1e-12);
    float cv[4] = {0, 0, 2, 2}, cr_[4] = {0, 1, 1, 0}; /* clockwise: same |area| */
    cr_assert_float_eq(fl_loop_area(cv, cr_, 4), 2.0, 1e-12);
    /* L shape (0,0) (3,0) (3,1) (1,1) (1,2) (0,2): 3 + 1 = 4; with a repeated closing vertex too */
    float lv[7] = {0, 3, 3, 1, 1, 0, 0}, lr[7] = {0, 0, 1, 1, 2, 2, 0};
    cr_assert_float_eq(fl_loop_area(lv, lr, 6), 4.0, 1e-12);
    cr_assert_float_eq(fl_loop_area(lv, lr, 7), 4.0, 1e-12);
    /* bow-tie (self-intersecting): signed lobes cancel, |shoelace| = 0 like shapely */
    float bv[4] = {0, 1, 1, 0}, br[4] = {0, 1, 0, 1};
    cr_assert_float_eq(fl_loop_area(bv, br, 4), 0.0, 1e-12);
    /* far from the origin: no cancellation loss (relative to the first vertex) */
    float ov[4] = {1000, 1002, 1002, 1000}, orr[4] = {5000, 5000, 5001, 5001};
    cr_assert_float_eq(fl_loop_area(ov, orr, 4), 2.0, 1e-9);
    cr_assert_float_eq(fl_loop_area(tv, tr, 2), 0.0, 0.0);
    tr[1] = NAN;
    cr_assert(isnan(fl_loop_area(tv, tr, 3)));
    cr_assert(isnan(fl_loop_area(NULL, tr, 3)));
}

Test(loops, rejects_bad_sweeps_and_responses)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_loop_desc d;
    float v[16], r[16];
    triangle(v, 16, 1.0);
    for (int j = 0; j < 16; j++) r[j] = 0.0f;
    cr_assert_eq(fl_loop_check_sweep(ctx, v, 16), FL_OK);
    cr_assert_eq(fl_loop_descriptors(ctx, v, r, 4, &d), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "at least 8 points"), "%s", fl_ctx_message(ctx));
    float w[16];
    memcpy(w, v, sizeof w);
    w[6] = 2.0f; /* a second peak on the way down */
    cr_assert_eq(fl_loop_descriptors(ctx, w, r, 16, &d), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "not a triangle sweep"), "%s", fl_ctx_message(ctx));
    float ramp[16];
    for (int j = 0; j < 16; j++) ramp[j] = (float)j; /* a ramp is a (degenerate) triangle: wraps down */
    cr_assert_eq(fl_loop_check_sweep(ctx, ramp, 16), FL_OK);
    ramp[8] = 3.0f;
    cr_assert_eq(fl_loop_check_sweep(ctx, ramp, 16), FL_EINVAL);
    float flat[16] = {0};
    cr_assert_eq(fl_loop_check_sweep(ctx, flat, 16), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "constant"), "%s", fl_ctx_message(ctx));
    memcpy(w, v, sizeof w);
    w[3] = NAN;
    cr_assert_eq(fl_loop_check_sweep(ctx, w, 16), FL_EINVAL);
    r[5] = INFINITY;
    cr_assert_eq(fl_loop_descriptors(ctx, v, r, 16, &d), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "response 6"), "%s", fl_ctx_message(ctx));
    float out[FL_LOOP_NDESC * 2];
    float grid[32] = {0};
    grid[16 + 3] = NAN;
    cr_assert_eq(fl_loop_descriptors_grid(ctx, v, grid, 2, 16, out), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "loop 1"), "%s", fl_ctx_message(ctx));
    fl_ctx_free(ctx);
}

/* ---- the toy model ------------------------------------------------------------------------------ */
static void make(const fl_synth_loops_params *p, int threads, fl_image *l, fl_image *s, fl_image *t)
{
    fl_ctx *ctx = fl_ctx_new();
    cr_assert_not_null(ctx);
    if (threads > 0) fl_ctx_set_threads(ctx, threads);
    fl_status st = fl_synth_loops(ctx, p, l, s, t);
    cr_assert_eq(st, FL_OK, "synth loops failed: %s", fl_ctx_message(ctx));
    fl_ctx_free(ctx);
}

static void free3(fl_image *a, fl_image *b, fl_image *c)
{
    fl_image_free(a);
    fl_image_free(b);
    fl_image_free(c);
}

Test(loops, generator_shapes_labels_and_determinism)
{
    fl_synth_loops_params p;
    fl_synth_loops_params_default(&p);
    p.width = 40;
    p.height = 32;
    fl_image l1, s1, t1, l2, s2, t2;
    make(&p, 0, &l1, &s1, &t1);
    cr_assert_eq(l1.width, 40);
    cr_assert_eq(l1.height, 32);
    cr_assert_eq(l1.slices, 64);
    cr_assert_eq(s1.slices, 1);
    cr_assert_eq(t1.slices, 3 + FL_LOOP_NDESC);
    cr_assert_str_eq(l1.labels[0], "0.000 V");
    cr_assert_str_eq(l1.labels[4], "1.250 V");
    cr_assert_str_eq(l1.labels[16], "5.000 V");
    cr_assert_str_eq(l1.labels[48], "-5.000 V");
    cr_assert_str_eq(l1.labels[63], "-0.3125 V"); /* exact: not rounded to 3 decimals */
    cr_assert_str_eq(t1.labels[3], "V+ (V)");
    cr_assert_str_eq(t1.labels[0], "distance to wall (px)");
    make(&p, 1, &l2, &s2, &t2);
    size_t nl = 40 * 32 * 64, nt = 40 * 32 * (3 + FL_LOOP_NDESC);
    cr_assert(memcmp(l1.data, l2.data, nl * sizeof(float)) == 0, "loops differ between runs / thread counts");
    cr_assert(memcmp(s1.data, s2.data, 40 * 32 * sizeof(float)) == 0);
    cr_assert(memcmp(t1.data, t2.data, nt * sizeof(float)) == 0);
    free3(&l2, &s2, &t2);
    p.seed = 2;
    make(&p, 0, &l2, &s2, &t2);
    cr_assert(memcmp(l1.data, l2.data, nl * sizeof(float)) != 0, "another seed gives the same loops");
    cr_assert(memcmp(t1.data, t2.data, 40 * 32 * sizeof(float)) != 0, "another seed gives the same geometry");
    free3(&l1, &s1, &t1);
    free3(&l2, &s2, &t2);

    fl_ctx *ctx = fl_ctx_new();
    fl_synth_loops_params_default(&p);
    p.points = 30;
    cr_assert_eq(fl_synth_loops(ctx, &p, &l1, &s1, &t1), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "multiple of 4"), "%s", fl_ctx_message(ctx));
    cr_assert_null(l1.data);
    fl_synth_loops_params_default(&p);
    p.meander_amplitude = 5.0;
    cr_assert_eq(fl_synth_loops(ctx, &p, &l1, &s1, &t1), FL_EINVAL);
    fl_synth_loops_params_default(&p);
    p.vmax = NAN;
    cr_assert_eq(fl_synth_loops(ctx, &p, &l1, &s1, &t1), FL_EINVAL);
    fl_ctx_free(ctx);
}

/* geometry truth: domain/distance consistent, orientation encodes the side */
Test(loops, generator_geometry_truth)
{
    fl_synth_loops_params p;
    fl_synth_loops_params_default(&p);
    fl_image l, s, t;
    make(&p, 0, &l, &s, &t);
    const int64_t W = 64, N = 64 * 64;
    const float *dist = t.data, *om = t.data + N, *dom = t.data + 2 * N;
    int64_t nc = 0;
    for (int64_t i = 0; i < N; i++) {
        cr_assert(dom[i] == 0.0f || dom[i] == 1.0f);
        nc += dom[i] > 0.5f;
        cr_assert(dist[i] >= 0.0f && dist[i] < 7.5f, "distance %g", dist[i]); /* c width <= 9.6 + 2 * 2.6 */
        cr_assert(om[i] > -180.0f && om[i] <= 180.0f);
        /* wall tilt |tau| <= atan(2 * 1.3 * 2 pi / 40) = 22.2 deg: omega near 0 or near 180 */
        float a = fabsf(om[i]);
        cr_assert(a < 22.3f || a > 157.7f, "orientation %g", om[i]);
    }
    cr_assert(nc > N / 2 && nc < 3 * N / 4, "c fraction %g", (double)nc / N); /* 0.6 expected */
    /* where the domain changes between horizontal neighbours, both are within ~1 px of a wall */
    for (int64_t y = 0; y < 64; y++)
        for (int64_t x = 0; x + 1 < 64; x++) {
            int64_t i = x + W * y;
            if (dom[i] != dom[i + 1]) cr_assert(dist[i] <= 1.0f && dist[i + 1] <= 1.0f, "x=%lld y=%lld", (long long)x, (long long)y);
        }
    /* structure image: c brighter than a away from walls */
    double mc = 0, ma = 0;
    int64_t kc = 0, ka = 0;
    for (int64_t i = 0; i < N; i++) {
        if (dist[i] < 2.0f) continue;
        if (dom[i] > 0.5f) mc += s.data[i], kc++;
        else ma += s.data[i], ka++;
    }
    cr_assert(kc > 100 && ka > 100);
    cr_assert_gt(mc / kc - ma / ka, 0.4);
    free3(&l, &s, &t);
}

/* The true descriptor maps (continuous noise-free loops) agree with the descriptor function applied to
 * the sampled noise-free grid, within the sampling error. Measured (64 points, step 0.3125 V): max
 * |dV+-| 0.021 V, area 8e-5 relative, nucleation 0.38 V (mean 0.16; the nucleation bias is quantised
 * to the bias grid), R+- < 1e-4, saturation/offset < 3e-4. */
Test(loops, generator_truth_matches_descriptors_of_noise_free_grid)
{
    fl_synth_loops_params p;
    fl_synth_loops_params_default(&p);
    p.noise = 0.0;
    fl_image l, s, t;
    make(&p, 0, &l, &s, &t);
    const int64_t N = 64 * 64;
    const int P = 64;
    float *curves = NULL;
    double *axis = NULL;
    int64_t n = 0;
    int32_t T = 0;
    char unit[32], label[64];
    fl_ctx *ctx = fl_ctx_new();
    cr_assert_eq(fl_grid_to_curves(ctx, &l, 0, &curves, &n, &T, &axis, unit, label), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(T, P);
    cr_assert_str_eq(unit, "V");
    float v[64];
    for (int j = 0; j < P; j++) v[j] = (float)axis[j];
    cr_assert_float_eq(v[16], 5.0f, 0.0f);
    cr_assert_float_eq(v[48], -5.0f, 0.0f);
    static float maps[64 * 64 * FL_LOOP_NDESC];
    cr_assert_eq(fl_loop_descriptors_grid(ctx, v, curves, n, T, maps), FL_OK, "%s", fl_ctx_message(ctx));
    const double tol[FL_LOOP_NDESC] = {0.03, 0.03, 0.02, 0.04, 0, 0.5, 0.5, 1e-4, 1e-4, 1e-3, 1e-3};
    double mean_nuc = 0.0;
    for (int k = 0; k < FL_LOOP_NDESC; k++) {
        const float *tr = t.data + (int64_t)(FL_SYNTH_LOOPS_TRUTH_DESC0 + k) * N;
        for (int64_t i = 0; i < N; i++) {
            double a = tr[i], b = maps[i * FL_LOOP_NDESC + k];
            cr_assert(isfinite(a) && isfinite(b), "%s at %lld: truth %g measured %g", fl_loop_desc_name(k), (long long)i, a, b);
            double tk = k == FL_LOOP_AREA ? 1e-3 * fabs(a) : tol[k];
            cr_assert(fabs(a - b) <= tk, "%s at pixel %lld: truth %g, measured %g", fl_loop_desc_name(k), (long long)i, a, b);
            if (k == FL_LOOP_NUC_PLUS || k == FL_LOOP_NUC_MINUS) mean_nuc += fabs(a - b) / (2.0 * N);
        }
    }
    cr_assert_lt(mean_nuc, 0.2, "mean nucleation error %g V", mean_nuc);
    /* single-loop API agrees with the grid */
    float r[64];
    for (int j = 0; j < P; j++) r[j] = curves[(int64_t)777 * P + j];
    fl_loop_desc d;
    cr_assert_eq(fl_loop_descriptors(ctx, v, r, P, &d), FL_OK);
    double dd[FL_LOOP_NDESC];
    fl_loop_desc_to_array(&d, dd);
    for (int k = 0; k < FL_LOOP_NDESC; k++) cr_assert_eq((float)dd[k], maps[777 * FL_LOOP_NDESC + k]);
    /* the grid result does not depend on the thread count */
    static float maps1[64 * 64 * FL_LOOP_NDESC];
    fl_ctx_set_threads(ctx, 1);
    cr_assert_eq(fl_loop_descriptors_grid(ctx, v, curves, n, T, maps1), FL_OK);
    cr_assert(memcmp(maps, maps1, sizeof maps) == 0);
    fl_free(curves);
    fl_free(axis);
    fl_ctx_free(ctx);
    free3(&l, &s, &t);
}

/* The toy model is learnable from local structure: the mean loop of pixels sharing (domain, distance
 * to the wall, wall orientation) explains most of the loop-to-loop variance, while a global mean loop
 * explains none of it and the domain type alone only a part. Measured on the default stack: domain
 * 0.28, + distance 0.71, + orientation 0.95. */
static double explained(const float *loops, const int *bin, int nbins, int64_t N, int P)
{
    static double mean[4096 * 64];
    static int64_t cnt[4096];
    memset(mean, 0, sizeof(double) * (size_t)nbins * P);
    memset(cnt, 0, sizeof(int64_t) * (size_t)nbins);
    double gm[64] = {0};
    for (int64_t i = 0; i < N; i++) {
        cnt[bin[i]]++;
        for (int j = 0; j < P; j++) {
            mean[bin[i] * P + j] += loops[(int64_t)j * N + i];
            gm[j] += loops[(int64_t)j * N + i] / (double)N;
        }
    }
    for (int b = 0; b < nbins; b++)
        for (int j = 0; j < P; j++)
            if (cnt[b]) mean[b * P + j] /= (double)cnt[b];
    double tot = 0.0, res = 0.0;
    for (int64_t i = 0; i < N; i++)
        for (int j = 0; j < P; j++) {
            double x = loops[(int64_t)j * N + i];
            tot += (x - gm[j]) * (x - gm[j]);
            res += (x - mean[bin[i] * P + j]) * (x - mean[bin[i] * P + j]);
        }
    return 1.0 - res / tot;
}

Test(loops, toy_model_is_learnable_from_structure)
{
    fl_synth_loops_params p;
    fl_synth_loops_params_default(&p);
    fl_image l, s, t;
    make(&p, 0, &l, &s, &t);
    const int64_t N = 64 * 64;
    static int b0[4096], b1[4096], b2[4096], b3[4096];
    for (int64_t i = 0; i < N; i++) {
        int c = t.data[2 * N + i] > 0.5f;
        int db = (int)t.data[i];
        if (db > 5) db = 5;
        int ob = ((int)floorf((t.data[N + i] + 180.0f) / 45.0f)) % 8;
        b0[i] = 0;
        b1[i] = c;
        b2[i] = c * 6 + db;
        b3[i] = (c * 6 + db) * 8 + ob;
    }
    double e0 = explained(l.data, b0, 1, N, 64), e1 = explained(l.data, b1, 2, N, 64);
    double e2 = explained(l.data, b2, 12, N, 64), e3 = explained(l.data, b3, 96, N, 64);
    cr_assert_float_eq(e0, 0.0, 1e-9, "a global mean explains %g", e0);
    cr_assert_lt(e1, 0.45, "domain type alone explains %g", e1);
    cr_assert_gt(e2, e1 + 0.25, "distance to the wall adds too little: %g -> %g", e1, e2);
    cr_assert_gt(e3, e2 + 0.1, "wall orientation adds too little: %g -> %g", e2, e3);
    cr_assert_gt(e3, 0.85, "structure bins explain only %g of the loop variance", e3);
    free3(&l, &s, &t);
}

/* The committed sample stacks are what the generator makes with the default parameters. */
Test(loops, sample_stacks_match_the_generator)
{
    const char *names[3] = {"loops_grid.tif", "loops_structure.tif", "loops_truth.tif"};
    char path[3][1024];
    for (int i = 0; i < 3; i++) {
        snprintf(path[i], sizeof path[i], "%s/sample-stacks/%s", FL_SOURCE_DIR, names[i]);
        FILE *f = fopen(path[i], "rb");
        if (!f) cr_skip_test("no %s", path[i]);
        fclose(f);
    }
    fl_synth_loops_params p;
    fl_synth_loops_params_default(&p);
    fl_image g[3], r[3];
    make(&p, 0, &g[0], &g[1], &g[2]);
    fl_ctx *ctx = fl_ctx_new();
    for (int i = 0; i < 3; i++) {
        fl_image_init(&r[i]);
        cr_assert_eq(fl_tiff_read(ctx, path[i], &r[i]), FL_OK, "%s", fl_ctx_message(ctx));
        cr_assert_eq(r[i].width, 64);
        cr_assert_eq(r[i].height, 64);
        int64_t planes = fl_image_planes(&g[i]);
        cr_assert_eq(fl_image_planes(&r[i]), planes);
        cr_assert(memcmp(r[i].data, g[i].data, sizeof(float) * 64 * 64 * (size_t)planes) == 0,
                  "sample %s is stale: regenerate it (sample-stacks/README.md)", names[i]);
        for (int64_t k = 0; k < planes; k++) cr_assert_str_eq(r[i].labels[k], g[i].labels[k]);
    }
    for (int i = 0; i < 3; i++) {
        fl_image_free(&g[i]);
        fl_image_free(&r[i]);
    }
    fl_ctx_free(ctx);
}
