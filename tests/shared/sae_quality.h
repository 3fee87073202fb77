/* Scores a spectral-autoencoder configuration on a grid with ground truth (shared by the quality test
 * tests/unit/test_sae_sample.c and bench/bench_sae_sample.c): trains on a seeded random 80 % of the
 * pixels, then reports, for every ground-truth map, the best |Pearson r| of one embedding channel over
 * all pixels, and the reconstruction R^2 on the other 20 % (never seen in training). */
#ifndef FL_SAE_QUALITY_H
#define FL_SAE_QUALITY_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/stats.h"
#include "fl_internal.h"
#include "io/spectral_grid.h"
#include "io/tiff.h"

typedef struct sae_quality {
    double heldout_r2;
    double abs_r[8];      /* per truth map */
    int channel[8];
    char map[8][64];
    int maps;
    double worst_abs_r;
    int active_channels;
    double train_seconds;
    fl_sae_report report;
} sae_quality;

static fl_status sae_quality_run(fl_ctx *ctx, const char *grid_path, const char *truth_path, const fl_sae_config *cfg,
                                 sae_quality *q)
{
    memset(q, 0, sizeof *q);
    fl_image img, truth;
    fl_image_init(&img);
    fl_image_init(&truth);
    float *curves = NULL, *xtr = NULL, *xte = NULL, *rec = NULL, *emb = NULL;
    double *axis = NULL;
    int64_t *perm = NULL, n = 0;
    int32_t T = 0;
    char unit[32], label[64];
    fl_sae *m = NULL;
    fl_status st = fl_tiff_read(ctx, grid_path, &img);
    if (!st) st = fl_tiff_read(ctx, truth_path, &truth);
    if (!st) st = fl_grid_to_curves(ctx, &img, 0, &curves, &n, &T, &axis, unit, label);
    const int64_t ntest = n / 5, ntrain = n - ntest, L = cfg->latent;
    if (!st) {
        perm = malloc((size_t)n * sizeof(int64_t));
        xtr = malloc((size_t)ntrain * T * sizeof(float));
        xte = malloc((size_t)ntest * T * sizeof(float));
        rec = malloc((size_t)ntest * T * sizeof(float));
        emb = malloc((size_t)n * L * sizeof(float));
        if (!perm || !xtr || !xte || !rec || !emb) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    if (!st) {
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        fl_rng r;
        fl_rng_init(&r, 12345, 0);
        fl_rng_shuffle(&r, perm, n);
        for (int64_t i = 0; i < ntest; i++) memcpy(xte + i * T, curves + perm[i] * T, (size_t)T * sizeof(float));
        for (int64_t i = 0; i < ntrain; i++) memcpy(xtr + i * T, curves + perm[ntest + i] * T, (size_t)T * sizeof(float));
        double t0 = fl_now_seconds();
        st = fl_sae_create(ctx, cfg, &m);
        if (!st) st = fl_sae_train(ctx, m, xtr, ntrain, T, &q->report);
        q->train_seconds = fl_now_seconds() - t0;
    }
    if (!st) st = fl_sae_apply(ctx, m, xte, ntest, T, NULL, rec);
    if (!st) st = fl_sae_apply(ctx, m, curves, n, T, emb, NULL);
    if (!st) {
        q->heldout_r2 = fl_r_squared(rec, xte, ntest * T);
        const int64_t plane = truth.width * truth.height;
        q->maps = (int)(fl_image_planes(&truth) < 8 ? fl_image_planes(&truth) : 8);
        q->worst_abs_r = 1;
        for (int p = 0; p < q->maps; p++) {
            q->channel[p] = -1;
            for (int64_t k = 0; k < L; k++) {
                double pr = fabs(fl_pearson(truth.data + p * plane, 1, emb + k, L, n));
                if (pr > q->abs_r[p]) q->abs_r[p] = pr, q->channel[p] = (int)k;
            }
            snprintf(q->map[p], sizeof q->map[p], "%s", truth.labels && truth.labels[p] ? truth.labels[p] : "?");
            q->worst_abs_r = fmin(q->worst_abs_r, q->abs_r[p]);
        }
        for (int64_t k = 0; k < L; k++) {
            int a = 0;
            for (int64_t i = 0; i < n && !a; i++) a = emb[i * L + k] > 0;
            q->active_channels += a;
        }
    }
    fl_sae_free(m);
    fl_image_free(&img);
    fl_image_free(&truth);
    fl_free(curves);
    fl_free(axis);
    free(perm), free(xtr), free(xte), free(rec), free(emb);
    return st;
}

#endif
