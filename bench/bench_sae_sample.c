/* Quality of the spectral autoencoder on a synthetic grid with ground truth (sample-stacks/iv_grid*.tif):
 * trains on 80 % of the pixels (a seeded random choice), then reports for every ground-truth map the
 * best |Pearson r| of an embedding channel (over all pixels) and the reconstruction R^2 on the 20 %
 * held-out pixels. Options override the defaults of fl_sae_config_default.
 * usage: bench_sae_sample [--input F] [--truth F] [--threads N] [--epochs N] [--layers N] [--hidden N]
 *                         [--latent N] [--l1 X] [--lr X] [--batch N] [--dropout X] [--patience N] [--seed N] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "analysis/stats.h"
#include "fl_internal.h"
#include "io/spectral_grid.h"
#include "io/tiff.h"

int main(int argc, char **argv)
{
    const char *in = FL_SAMPLE_DIR "/iv_grid.tif", *truth_path = FL_SAMPLE_DIR "/iv_grid_truth.tif";
    int threads = 2;
    fl_sae_config c;
    fl_sae_config_default(&c);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--input")) in = v;
        else if (!strcmp(k, "--truth")) truth_path = v;
        else if (!strcmp(k, "--threads")) threads = atoi(v);
        else if (!strcmp(k, "--epochs")) c.epochs = atoi(v);
        else if (!strcmp(k, "--layers")) c.enc_layers = c.dec_layers = atoi(v);
        else if (!strcmp(k, "--hidden")) c.hidden = atoi(v);
        else if (!strcmp(k, "--latent")) c.latent = atoi(v);
        else if (!strcmp(k, "--l1")) c.l1 = (float)atof(v);
        else if (!strcmp(k, "--lr")) c.lr = (float)atof(v);
        else if (!strcmp(k, "--batch")) c.batch = atoi(v);
        else if (!strcmp(k, "--dropout")) c.dropout = (float)atof(v);
        else if (!strcmp(k, "--patience")) c.patience = atoi(v);
        else if (!strcmp(k, "--seed")) c.seed = (uint64_t)atoll(v);
        else if (!strcmp(k, "--norm")) c.norm_mode = atoi(v);
        else return fprintf(stderr, "unknown option %s\n", k), 2;
    }
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, threads);
    fl_image img, truth;
    fl_image_init(&img);
    fl_image_init(&truth);
    float *curves;
    double *axis;
    int64_t n;
    int32_t T;
    char unit[32], label[64];
    if (fl_tiff_read(ctx, in, &img) || fl_tiff_read(ctx, truth_path, &truth) ||
        fl_grid_to_curves(ctx, &img, 0, &curves, &n, &T, &axis, unit, label))
        return fprintf(stderr, "%s\n", fl_ctx_message(ctx)), 1;
    /* 80/20 split of the pixels */
    int64_t *perm = malloc((size_t)n * sizeof(int64_t));
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    fl_rng r;
    fl_rng_init(&r, 12345, 0);
    fl_rng_shuffle(&r, perm, n);
    const int64_t ntest = n / 5, ntrain = n - ntest;
    float *xtr = malloc((size_t)ntrain * T * sizeof(float)), *xte = malloc((size_t)ntest * T * sizeof(float));
    for (int64_t i = 0; i < ntest; i++) memcpy(xte + i * T, curves + perm[i] * T, (size_t)T * sizeof(float));
    for (int64_t i = 0; i < ntrain; i++) memcpy(xtr + i * T, curves + perm[ntest + i] * T, (size_t)T * sizeof(float));
    fl_sae *m;
    fl_sae_report rep;
    double t0 = fl_now_seconds();
    if (fl_sae_create(ctx, &c, &m) || fl_sae_train(ctx, m, xtr, ntrain, T, &rep))
        return fprintf(stderr, "%s\n", fl_ctx_message(ctx)), 1;
    double train_s = fl_now_seconds() - t0;
    float *rec = malloc((size_t)ntest * T * sizeof(float)), *emb = malloc((size_t)n * c.latent * sizeof(float));
    fl_sae_apply(ctx, m, xte, ntest, T, NULL, rec);
    fl_sae_apply(ctx, m, curves, n, T, emb, NULL);
    double r2 = fl_r_squared(rec, xte, ntest * T);
    printf("{\"train_seconds\":%.1f,\"epochs_run\":%d,\"best_epoch\":%d,\"seconds_per_epoch\":%.2f,\"heldout_r2\":%.4f,"
           "\"maps\":[",
           train_s, rep.epochs_run, rep.best_epoch, rep.seconds_per_epoch, r2);
    const int64_t planes = fl_image_planes(&truth), plane = truth.width * truth.height;
    double worst = 1;
    for (int64_t p = 0; p < planes; p++) {
        double best = 0;
        int bestk = -1;
        for (int k = 0; k < c.latent; k++) {
            double pr = fabs(fl_pearson(truth.data + p * plane, 1, emb + k, c.latent, n));
            if (pr > best) best = pr, bestk = k;
        }
        worst = fmin(worst, best);
        printf("%s{\"map\":\"%s\",\"channel\":%d,\"abs_r\":%.4f}", p ? "," : "",
               truth.labels && truth.labels[p] ? truth.labels[p] : "?", bestk, best);
    }
    int active = 0;
    for (int k = 0; k < c.latent; k++) {
        int a = 0;
        for (int64_t i = 0; i < n && !a; i++) a = emb[i * c.latent + k] > 0;
        active += a;
    }
    printf("],\"worst_abs_r\":%.4f,\"active_channels\":%d}\n", worst, active);
    return 0;
}
