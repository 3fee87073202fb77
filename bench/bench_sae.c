/* Spectral autoencoder throughput in the configuration of ../shared/bench/torch_ref.py --family 1
 * (T=128, H=64, 2+2 BiLSTM layers, latent 16, dropout 0.2, batch 64, N=1600), or the paper's
 * (Agar: T=96, 4+4 layers) with --paper. Prints training curves/s and inference curves/s.
 * usage: bench_sae [--threads N] [--paper] [--epochs E] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

int main(int argc, char **argv)
{
    int threads = 2, paper = 0, epochs = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--paper")) paper = 1;
        else if (!strcmp(argv[i], "--epochs") && i + 1 < argc) epochs = atoi(argv[++i]);
    }
    fl_sae_config c;
    fl_sae_config_default(&c);
    const int32_t T = paper ? 96 : 128;
    c.enc_layers = c.dec_layers = paper ? 4 : 2;
    c.hidden = 64;
    c.latent = 16;
    c.batch = 64;
    c.epochs = epochs;
    c.val_split = 0.f;
    c.patience = 0;
    const int64_t n = 1600;
    float *x = malloc((size_t)n * T * sizeof(float));
    fl_rng r;
    fl_rng_init(&r, 1, 1);
    for (int64_t i = 0; i < n * T; i++) x[i] = fl_rng_normal(&r);
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, threads);
    fl_sae *m;
    if (fl_sae_create(ctx, &c, &m)) return bench_fail(ctx);
    fl_sae_report rep;
    double t0 = fl_now_seconds();
    if (fl_sae_train(ctx, m, x, n, T, &rep)) return bench_fail(ctx);
    double train_s = (fl_now_seconds() - t0) / epochs;
    float *emb = malloc((size_t)n * c.latent * sizeof(float)), *rec = malloc((size_t)n * T * sizeof(float));
    double best;
    BENCH_BEST_OF(best, 3, fl_sae_apply(ctx, m, x, n, T, emb, rec));
    /* forward MACs per curve: each LSTM direction T * 4H * (In + H), the dense layers are negligible */
    double macs = 0;
    int F = 128;
    for (int l = 0; l < c.enc_layers; l++) macs += 2.0 * T * 4 * 64 * ((l ? F : 1) + 64);
    for (int l = 0; l < c.dec_layers; l++) macs += 2.0 * T * 4 * 64 * ((l ? F : 16) + 64);
    double fwd_flop = 2 * macs;
    printf("{\"config\":\"%s\",\"threads\":%d,\"params\":%lld,\"fwd_mflop_per_curve\":%.1f,"
           "\"train_curves_per_s\":%.1f,\"train_step_ms_b64\":%.2f,\"epoch_s\":%.3f,\"train_gflops\":%.1f,"
           "\"infer_curves_per_s\":%.1f,\"infer_gflops\":%.1f}\n",
           paper ? "agar-paper" : "torch-ref", threads, (long long)fl_sae_param_count(m), fwd_flop / 1e6, n / train_s,
           train_s / (n / 64.0) * 1e3, train_s, 3 * fwd_flop * n / train_s / 1e9, n / best, fwd_flop * n / best / 1e9);
    fl_sae_free(m);
    fl_ctx_free(ctx);
    free(x), free(emb), free(rec);
    return 0;
}
