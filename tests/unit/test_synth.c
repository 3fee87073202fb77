/* Synthetic I(V) grid at charged domain walls (native/src/synth/iv_grid.c). */
#include <criterion/criterion.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "io/tiff.h"
#include "synth/iv_grid.h"
#include "io/spectral_grid.h"

static void make(const fl_synth_iv_params *p, fl_image *c, fl_image *t)
{
    fl_ctx *ctx = fl_ctx_new();
    cr_assert_not_null(ctx);
    fl_status st = fl_synth_iv_grid(ctx, p, c, t);
    cr_assert_eq(st, FL_OK, "synth failed: %s", fl_ctx_message(ctx));
    fl_ctx_free(ctx);
}

static void defaults(fl_synth_iv_params *p) { fl_synth_iv_params_default(p); }

Test(synth, shapes_labels_and_calibration)
{
    fl_synth_iv_params p;
    defaults(&p);
    fl_image c, t;
    make(&p, &c, &t);
    cr_assert_eq(c.width, 64);
    cr_assert_eq(c.height, 64);
    cr_assert_eq(c.slices, 64);
    cr_assert_eq(c.channels, 1);
    cr_assert_eq(c.frames, 1);
    cr_assert_eq(t.slices, 3);
    cr_assert_not_null(c.labels);
    cr_assert_str_eq(c.labels[0], "-5.000 V");
    cr_assert_str_eq(c.labels[63], "5.000 V");
    cr_assert_str_eq(t.labels[0], "domain P");
    cr_assert_str_eq(t.labels[1], "tail-to-tail wall");
    cr_assert_str_eq(t.labels[2], "head-to-head wall");
    cr_assert_str_eq(c.unit, "um");
    cr_assert_float_eq(c.pixel_width, 0.05, 1e-12);
    cr_assert_float_eq(c.pixel_depth, 10.0 / 63.0, 1e-12);
    fl_image_free(&c);
    fl_image_free(&t);
}

Test(synth, deterministic_for_a_seed_and_thread_count_independent)
{
    fl_synth_iv_params p;
    defaults(&p);
    fl_image c1, t1, c2, t2;
    make(&p, &c1, &t1);
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, 1);
    cr_assert_eq(fl_synth_iv_grid(ctx, &p, &c2, &t2), FL_OK);
    fl_ctx_free(ctx);
    size_t nc = (size_t)(64 * 64 * 64), nt = (size_t)(64 * 64 * 3);
    cr_assert(memcmp(c1.data, c2.data, nc * sizeof(float)) == 0, "curves differ between runs");
    cr_assert(memcmp(t1.data, t2.data, nt * sizeof(float)) == 0, "truth differs between runs");
    fl_image_free(&c2);
    fl_image_free(&t2);

    p.seed = 2;
    make(&p, &c2, &t2);
    cr_assert(memcmp(c1.data, c2.data, nc * sizeof(float)) != 0, "another seed gives the same curves");
    cr_assert(memcmp(t1.data, t2.data, nt * sizeof(float)) != 0, "another seed gives the same domains");
    fl_image_free(&c1);
    fl_image_free(&t1);
    fl_image_free(&c2);
    fl_image_free(&t2);
}

Test(synth, truth_maps_have_the_expected_properties)
{
    for (uint64_t seed = 1; seed <= 4; seed++) {
        fl_synth_iv_params p;
        defaults(&p);
        p.seed = seed;
        fl_image c, t;
        make(&p, &c, &t);
        const int64_t W = 64, H = 64, N = W * H;
        const float *P = t.data, *tt = t.data + N, *hh = t.data + 2 * N;
        int64_t plus = 0, minus = 0;
        float max_tt = 0, max_hh = 0;
        for (int64_t i = 0; i < N; i++) {
            cr_assert(P[i] == 1.0f || P[i] == -1.0f, "domain map value %g", P[i]);
            plus += P[i] > 0;
            minus += P[i] < 0;
            cr_assert(tt[i] >= 0.0f && tt[i] <= 1.0f);
            cr_assert(hh[i] >= 0.0f && hh[i] <= 1.0f);
            if (tt[i] > max_tt) max_tt = tt[i];
            if (hh[i] > max_hh) max_hh = hh[i];
        }
        cr_assert(plus > N / 5 && minus > N / 5, "both domain signs: %lld + / %lld -", (long long)plus, (long long)minus);
        cr_assert_geq(max_tt, 0.94f);
        cr_assert_geq(max_hh, 0.94f);
        int64_t n_tt = 0, n_hh = 0;
        for (int64_t y = 0; y < H; y++) {
            int last = 0; /* +1: last wall was TT, -1: HH */
            for (int64_t x = 0; x + 1 < W; x++) {
                int64_t a = x + W * y, b = a + 1;
                if (P[a] == P[b]) continue;
                int is_tt = P[a] < 0; /* -P | +P: tail-to-tail */
                float mt = tt[a] > tt[b] ? tt[a] : tt[b];
                float mh = hh[a] > hh[b] ? hh[a] : hh[b];
                if (is_tt) {
                    cr_assert_geq(mt, 0.94f, "TT wall at x=%lld y=%lld: map %g", (long long)x, (long long)y, mt);
                    cr_assert_lt(mh, 0.2f, "HH map at a TT wall: %g", mh);
                    n_tt++;
                } else {
                    cr_assert_geq(mh, 0.94f, "HH wall at x=%lld y=%lld: map %g", (long long)x, (long long)y, mh);
                    cr_assert_lt(mt, 0.2f, "TT map at a HH wall: %g", mt);
                    n_hh++;
                }
                int kind = is_tt ? 1 : -1;
                cr_assert_neq(kind, last, "two walls of the same kind in a row at y=%lld", (long long)y);
                last = kind;
            }
            /* map peaks only at walls of their kind */
            for (int64_t x = 1; x + 1 < W; x++) {
                int64_t i = x + W * y;
                if (tt[i] > 0.9f)
                    cr_assert((P[i - 1] < 0 && P[i] > 0) || (P[i] < 0 && P[i + 1] > 0),
                              "TT peak at x=%lld y=%lld not at a -P|+P step", (long long)x, (long long)y);
                if (hh[i] > 0.9f)
                    cr_assert((P[i - 1] > 0 && P[i] < 0) || (P[i] > 0 && P[i + 1] < 0),
                              "HH peak at x=%lld y=%lld not at a +P|-P step", (long long)x, (long long)y);
            }
        }
        cr_assert_geq(n_tt, H, "too few TT walls");
        cr_assert_geq(n_hh, H, "too few HH walls");
        fl_image_free(&c);
        fl_image_free(&t);
    }
}

Test(synth, curves_finite_and_physical_contrasts)
{
    fl_synth_iv_params p;
    defaults(&p);
    fl_image c, t;
    make(&p, &c, &t);
    const int64_t N = 64 * 64;
    const int T = 64;
    const float *P = t.data, *tt = t.data + N, *hh = t.data + 2 * N;
    for (int64_t i = 0; i < N * T; i++) cr_assert(isfinite(c.data[i]));
    /* mean curves of +P and -P pixels away from walls, of TT and HH walls */
    double mp[64] = {0}, mm[64] = {0}, mt[64] = {0}, mh[64] = {0};
    int64_t np = 0, nm = 0, nt = 0, nh = 0;
    for (int64_t i = 0; i < N; i++) {
        int far = tt[i] < 0.05f && hh[i] < 0.05f;
        double *dst = NULL;
        if (far && P[i] > 0) dst = mp, np++;
        else if (far && P[i] < 0) dst = mm, nm++;
        else if (tt[i] > 0.8f) dst = mt, nt++;
        else if (hh[i] > 0.8f) dst = mh, nh++;
        if (dst)
            for (int j = 0; j < T; j++) dst[j] += c.data[(int64_t)j * N + i];
    }
    cr_assert(np > 100 && nm > 100 && nt > 50 && nh > 50);
    for (int j = 0; j < T; j++) {
        mp[j] /= np;
        mm[j] /= nm;
        mt[j] /= nt;
        mh[j] /= nh;
    }
    /* conductance contrast of the domains inverts with the bias: sign(V) * (I(+P) - I(-P)), i.e. the
     * difference of |I|, is positive at V > 0 and negative at V < 0 */
    const int jpos[] = {63, 56, 50}, jneg[] = {0, 7, 13}; /* +-5, +-3.9, +-2.9 V */
    for (int k = 0; k < 3; k++) {
        cr_assert_gt(fabs(mp[jpos[k]]) - fabs(mm[jpos[k]]), 0.0, "+P should conduct more at +V (j=%d)", jpos[k]);
        cr_assert_lt(fabs(mp[jneg[k]]) - fabs(mm[jneg[k]]), 0.0, "+P should conduct less at -V (j=%d)", jneg[k]);
    }
    /* at +-Vmax: the contrast is large compared with the noise (2 % of the range ~ 1.5) */
    cr_assert_gt(fabs(mp[63]) - fabs(mm[63]), 10.0);
    cr_assert_lt(fabs(mp[0]) - fabs(mm[0]), -5.0);
    /* TT walls conduct much more than any domain at both polarities, already at low bias */
    double dom_avg_pos = 0.5 * (mp[63] + mm[63]), dom_avg_neg = 0.5 * (mp[0] + mm[0]);
    cr_assert_gt(mt[63], dom_avg_pos + 20.0);
    cr_assert_lt(mt[0], dom_avg_neg - 20.0);
    cr_assert_gt(mt[44] - 0.5 * (mp[44] + mm[44]), 8.0, "TT conduction onset at low bias (V = %s)", c.labels[44]);
    /* HH walls conduct less than the domains at high bias */
    cr_assert_lt(fabs(mh[63]), 0.8 * fabs(dom_avg_pos));
    cr_assert_lt(fabs(mh[0]), 0.8 * fabs(dom_avg_neg));
    fl_image_free(&c);
    fl_image_free(&t);
}

Test(synth, rejects_bad_parameters)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_synth_iv_params p;
    defaults(&p);
    p.points = 4;
    fl_image c, t;
    cr_assert_eq(fl_synth_iv_grid(ctx, &p, &c, &t), FL_EINVAL);
    cr_assert(strstr(fl_ctx_message(ctx), "points") != NULL, "message: %s", fl_ctx_message(ctx));
    cr_assert_null(c.data);
    cr_assert_null(t.data);
    defaults(&p);
    p.vmax = NAN;
    cr_assert_eq(fl_synth_iv_grid(ctx, &p, &c, &t), FL_EINVAL);
    defaults(&p);
    p.width = 0;
    cr_assert_eq(fl_synth_iv_grid(ctx, &p, &c, &t), FL_EINVAL);
    cr_assert_eq(fl_synth_iv_grid(ctx, NULL, &c, &t), FL_EINVAL);
    /* memory budget is honoured */
    defaults(&p);
    fl_ctx_set_memory_budget(ctx, 1024);
    cr_assert_eq(fl_synth_iv_grid(ctx, &p, &c, &t), FL_ENOMEM);
    cr_assert_null(c.data);
    fl_ctx_free(ctx);
}

/* The committed sample stacks are exactly what the generator makes with the default parameters, and
 * they read back as a grid of curves with a voltage axis. */
Test(synth, sample_stacks_match_the_generator)
{
    char path[1024], tpath[1024];
    snprintf(path, sizeof path, "%s/sample-stacks/iv_grid.tif", FL_SOURCE_DIR);
    snprintf(tpath, sizeof tpath, "%s/sample-stacks/iv_grid_truth.tif", FL_SOURCE_DIR);
    FILE *f = fopen(path, "rb");
    if (!f) cr_skip_test("no %s", path);
    fclose(f);
    fl_synth_iv_params p;
    defaults(&p);
    fl_image c, t, rc, rt;
    make(&p, &c, &t);
    fl_ctx *ctx = fl_ctx_new();
    fl_image_init(&rc);
    fl_image_init(&rt);
    cr_assert_eq(fl_tiff_read(ctx, path, &rc), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_tiff_read(ctx, tpath, &rt), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(rc.width, 64);
    cr_assert_eq(rc.slices * rc.frames, 64);
    cr_assert_eq(rt.slices, 3);
    cr_assert(memcmp(rc.data, c.data, sizeof(float) * 64 * 64 * 64) == 0, "sample iv_grid.tif is stale: regenerate it");
    cr_assert(memcmp(rt.data, t.data, sizeof(float) * 64 * 64 * 3) == 0, "sample iv_grid_truth.tif is stale");
    cr_assert_str_eq(rt.labels[1], "tail-to-tail wall");
    float *curves = NULL;
    double *axis = NULL;
    int64_t n = 0;
    int32_t T = 0;
    char unit[32], label[64];
    cr_assert_eq(fl_grid_to_curves(ctx, &rc, 0, &curves, &n, &T, &axis, unit, label), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(n, 64 * 64);
    cr_assert_eq(T, 64);
    cr_assert_str_eq(unit, "V");
    cr_assert_str_eq(label, "voltage");
    cr_assert_float_eq(axis[0], -5.0, 1e-12);
    cr_assert_float_eq(axis[63], 5.0, 1e-12);
    fl_free(curves);
    fl_free(axis);
    fl_image_free(&c);
    fl_image_free(&t);
    fl_image_free(&rc);
    fl_image_free(&rt);
    fl_ctx_free(ctx);
}
