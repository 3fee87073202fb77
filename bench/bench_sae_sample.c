/* Quality of a spectral-autoencoder configuration on a grid with ground truth (default: the sample
 * stack): best |Pearson r| of one embedding channel per truth map and held-out reconstruction R^2
 * (see tests/shared/sae_quality.h). Options override fl_sae_config_default.
 * usage: bench_sae_sample [--input F] [--truth F] [--threads N] [--epochs N] [--layers N] [--hidden N]
 *                         [--latent N] [--l1 X] [--lr X] [--batch N] [--dropout X] [--patience N] [--seed N]
 *                         [--norm global|per-curve|none] [--batch-norm 0|1] */
#include <stdio.h>

#include "../tests/shared/sae_quality.h"
#include "bench_common.h"

int main(int argc, char **argv)
{
    const char *in = FL_SAMPLE_DIR "/iv_grid.tif", *truth = FL_SAMPLE_DIR "/iv_grid_truth.tif";
    int threads = 2;
    fl_sae_config c;
    fl_sae_config_default(&c);
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--input")) in = v;
        else if (!strcmp(k, "--truth")) truth = v;
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
        else if (!strcmp(k, "--batch-norm")) c.batch_norm = atoi(v);
        else if (!strcmp(k, "--norm")) c.norm_mode = !strcmp(v, "per-curve") ? FL_NORM_PER_CURVE : !strcmp(v, "none") ? FL_NORM_NONE : FL_NORM_GLOBAL;
        else return fprintf(stderr, "unknown option %s\n", k), 2;
    }
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, threads);
    sae_quality q;
    if (sae_quality_run(ctx, in, truth, &c, &q)) return bench_fail(ctx);
    printf("{\"train_seconds\":%.1f,\"epochs_run\":%d,\"best_epoch\":%d,\"seconds_per_epoch\":%.2f,"
           "\"heldout_r2\":%.4f,\"active_channels\":%d,\"worst_abs_r\":%.4f,\"maps\":[",
           q.train_seconds, q.report.epochs_run, q.report.best_epoch, q.report.seconds_per_epoch, q.heldout_r2,
           q.active_channels, q.worst_abs_r);
    for (int p = 0; p < q.maps; p++)
        printf("%s{\"map\":\"%s\",\"channel\":%d,\"abs_r\":%.4f}", p ? "," : "", q.map[p], q.channel[p], q.abs_r[p]);
    printf("]}\n");
    fl_ctx_free(ctx);
    return 0;
}
