/* im2spec / spec2im training and inference throughput in the configuration of
 * ../shared/bench/torch_ref.py --family 2 (16x16 patches, 64-point spectra, latent 10 or 2, 64 filters,
 * batch 64, 52 x 52 = 2704 samples per epoch), or a quality run on the synthetic loops grid (--synth).
 * usage: bench_im2spec [--threads N] [--direction im2spec|spec2im] [--latent Z] [--epochs E]
 *                      [--synth W] [--points P] [--patch p] [--filters F]
 * Prints one JSON line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "ferrolens/im2spec.h"
#include "io/spectral_grid.h"
#include "synth/loops_grid.h"

/* When each epoch ended (the trainer reports after every epoch): steady-state epochs are timed like
 * torch_ref.py times its epochs, after a warm-up (the first epoch also builds the patches and graphs and
 * touches the activation memory for the first time). */
enum { MAX_EPOCHS = 64 };
typedef struct epoch_clock {
    double end[MAX_EPOCHS + 1];
    int n;
} epoch_clock;

static int quiet_progress(void *u, const char *stage, int64_t d, int64_t t, double l, double v)
{
    epoch_clock *ec = u;
    if (!strcmp(stage, "epoch")) {
        fprintf(stderr, "epoch %lld/%lld train %.5g test %.5g\n", (long long)d, (long long)t, l, v);
        if (ec->n <= MAX_EPOCHS) ec->end[ec->n++] = fl_now_seconds();
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    int threads = 2, epochs = 2, synth = 0, points = 64, patch = 16, filters = 64, latent = 10;
    int dir = FL_I2S_IM2SPEC;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--latent") && i + 1 < argc) latent = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--synth") && i + 1 < argc) synth = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--points") && i + 1 < argc) points = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--patch") && i + 1 < argc) patch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filters") && i + 1 < argc) filters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--direction") && i + 1 < argc) dir = !strcmp(argv[++i], "spec2im");
        else return fprintf(stderr, "unknown argument %s\n", argv[i]), 2;
    }
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, threads);
    epoch_clock ec = {{0}, 0};
    fl_ctx_set_progress(ctx, quiet_progress, &ec);
    fl_i2s_config c;
    fl_i2s_config_default(&c);
    c.direction = dir;
    c.patch = patch;
    c.latent = latent;
    c.filters = filters;
    c.epochs = epochs;
    int64_t W, H;
    float *S, *G;
    double *axis = NULL;
    fl_image L, Sim, T;
    fl_image_init(&L), fl_image_init(&Sim), fl_image_init(&T);
    if (synth) {
        fl_synth_loops_params sp;
        fl_synth_loops_params_default(&sp);
        sp.width = sp.height = synth;
        sp.points = points;
        int64_t n;
        int32_t P;
        char unit[32], lab[64];
        if (fl_synth_loops(ctx, &sp, &L, &Sim, &T) || fl_grid_to_curves(ctx, &L, 0, &G, &n, &P, &axis, unit, lab))
            return bench_fail(ctx);
        W = H = synth;
        S = Sim.data;
    } else {
        /* torch_ref: 2704 = 52 x 52 random samples per epoch: 52 training columns + 1 test column */
        W = 52 + patch; /* usable: W - p + 1 = 53 columns, 52 rows */
        H = 51 + patch;
        S = malloc((size_t)(W * H) * sizeof(float));
        G = malloc((size_t)(W * H * points) * sizeof(float));
        fl_rng r;
        fl_rng_init(&r, 1, 1);
        for (int64_t i = 0; i < W * H; i++) S[i] = fl_rng_normal(&r);
        for (int64_t i = 0; i < W * H * points; i++) G[i] = fl_rng_normal(&r);
        c.train_fraction = 52.f / 53.f; /* 52 x 52 = 2704 training samples */
    }
    fl_i2s_data d = {S, W, H, G, W, H, points, axis};
    fl_i2s *m;
    double t0 = fl_now_seconds();
    if (fl_i2s_train(ctx, &c, &d, &m)) return bench_fail(ctx);
    const double train_s = fl_now_seconds() - t0;
    /* steady-state epoch: median of epochs 2.. (the mean with the first when there is only one) */
    double steady[MAX_EPOCHS], epoch_s = train_s / epochs;
    int ns = 0;
    for (int e = 1; e < ec.n; e++) steady[ns++] = ec.end[e] - ec.end[e - 1];
    if (ns > 0) {
        qsort(steady, (size_t)ns, sizeof *steady, cmp_double);
        epoch_s = ns % 2 ? steady[ns / 2] : 0.5 * (steady[ns / 2 - 1] + steady[ns / 2]);
    }
    fl_i2s_scores sc;
    double best;
    BENCH_BEST_OF(best, 3, if (fl_i2s_apply(ctx, m, &d, NULL, NULL, NULL, &sc)) return bench_fail(ctx));
    const int64_t nsamp = sc.n_train + sc.n_test;
    printf("{\"config\":\"%s\",\"direction\":\"%s\",\"threads\":%d,\"params\":%lld,\"patch\":%d,\"points\":%d,"
           "\"latent\":%d,\"epochs\":%d,\"train_samples\":%lld,\"test_samples\":%lld,\"train_patches_per_s\":%.1f,"
           "\"epoch_s\":%.3f,\"first_epoch_s\":%.3f,\"apply_samples_per_s\":%.1f,\"test_mse\":%.6g,\"baseline_mse\":%.6g,\"mse_ratio\":%.4f,"
           "\"test_third\":%.6g,\"baseline_third\":%.6g}\n",
           synth ? "synth-loops" : "torch-ref", dir ? "spec2im" : "im2spec", threads,
           (long long)fl_i2s_param_count(m), patch, points, latent, epochs, (long long)sc.n_train,
           (long long)sc.n_test, (double)sc.n_train / epoch_s, epoch_s, ec.n ? ec.end[0] - t0 : train_s, nsamp / best, sc.test[0],
           sc.baseline_test[0], sc.mse_ratio, sc.test[2], sc.baseline_test[2]);
    fl_i2s_free(m);
    fl_ctx_free(ctx);
    return 0;
}
