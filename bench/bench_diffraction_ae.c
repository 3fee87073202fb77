/* Diffraction autoencoder (family 3) throughput in the configuration of ../shared/bench/torch_ref.py
 * --family 3 (width 128, embedding 32, batch 32, MSE + L1 1e-5, Adam): training patterns/s and
 * inference (encoder) patterns/s at a given detector size, plus the conv layers' GFLOP/s (2 * MAC of the
 * convs and linears; a training step counted as 3x the forward, as torch_ref.py does).
 * usage: bench_diffraction_ae [--threads N] [--size 64|128|256] [--width C] [--batch B] [--steps S] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "ferrolens/diffraction_ae.h"
#include "models/diffraction_ae_internal.h"

/* forward FLOPs per pattern of the convs and linears (as torch_ref.count_flops) */
static double fwd_flops(const fl_dae_config *c, int64_t bh, int64_t bw)
{
    const double C = c->width;
    double f = 0, H = c->pattern_h, W = c->pattern_w;
    f += 2 * H * W * C * 9; /* encoder.0 */
    int np = 0;
    while (np < FL_DAE_MAX_POOLS && c->pools[np]) np++;
    for (int i = 0; i < np; i++) {
        f += 4 * 2 * H * W * C * C * 9;
        H /= c->pools[i];
        W /= c->pools[i];
    }
    f += 2 * H * W * C * 9;                 /* conv C -> 1 */
    f += 2 * (double)bh * bw * c->embedding * 2; /* fc_enc + fc_dec */
    f += 2 * H * W * C * 9;                 /* decoder.0 */
    f += 4 * 2 * H * W * C * C * 9;         /* bottleneck block */
    for (int i = np - 1; i >= 0; i--) {
        H *= c->pools[i];
        W *= c->pools[i];
        f += 4 * 2 * H * W * C * C * 9;
    }
    f += 2 * H * W * C * 9; /* output conv */
    return f;
}

int main(int argc, char **argv)
{
    int threads = 2, size = 64, width = 128, batch = 32, steps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--width") && i + 1 < argc) width = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--steps") && i + 1 < argc) steps = atoi(argv[++i]);
    }
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, threads);
    fl_dae_config c;
    fl_dae_config_default(&c);
    c.pattern_w = c.pattern_h = size;
    c.width = width;
    c.batch = batch;
    fl_dae *m;
    if (fl_dae_create(ctx, &c, &m)) return bench_fail(ctx);
    c = *fl_dae_get_config(m);
    int64_t bh, bw;
    fl_dae_bottleneck(m, &bh, &bw);
    const double ff = fwd_flops(&c, bh, bw);
    const int64_t HW = (int64_t)size * size;
    float *x = malloc((size_t)(batch * HW) * sizeof(float));
    fl_rng r;
    fl_rng_init(&r, 1, 1);
    for (int64_t i = 0; i < batch * HW; i++) x[i] = 3.f * fl_rng_uniform(&r);
    /* training steps (forward, loss, backward; Adam is <1 % here and left out) */
    fl_dae_net *n;
    if (fl_dae_debug_net_new(ctx, m, batch, &n)) return bench_fail(ctx);
    fl_dae_debug_loss_grad(n, x, batch); /* warm-up */
    double best, best_i;
    BENCH_BEST_OF(best, steps, fl_dae_debug_loss_grad(n, x, batch));
    fl_dae_debug_net_free(n);
    /* inference: encoder over the batch */
    float *raw = malloc((size_t)(batch * HW) * sizeof(float)), *emb = malloc((size_t)batch * c.embedding * sizeof(float));
    for (int64_t i = 0; i < batch * HW; i++) raw[i] = expm1f(x[i]);
    fl_dae_encode(ctx, m, raw, batch, emb);
    BENCH_BEST_OF(best_i, steps, fl_dae_encode(ctx, m, raw, batch, emb));
    /* encoder share of the forward FLOPs: about half */
    printf("{\"size\":%d,\"width\":%d,\"batch\":%d,\"threads\":%d,\"params\":%lld,\"fwd_gflop_per_pattern\":%.4f,"
           "\"train_step_s\":%.4f,\"train_patterns_per_s\":%.2f,\"train_gflops_per_s_3x\":%.2f,"
           "\"encode_batch_s\":%.4f,\"encode_patterns_per_s\":%.2f}\n",
           size, width, batch, threads, (long long)fl_dae_param_count(m), ff / 1e9, best, batch / best,
           3 * ff * batch / best / 1e9, best_i, batch / best_i);
    fl_dae_free(m);
    free(x);
    free(raw);
    free(emb);
    fl_ctx_free(ctx);
    return 0;
}
