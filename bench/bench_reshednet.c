/* ResHedNet wall ensemble (family 4) inference, in the configuration of ../shared/bench/torch_ref.py
 * --family 4 (variants f64 / f16: nb_filters 64 or 16, 10 members, one 256 x 256 image): the full
 * ensemble prediction and the live refresh after one new scan line (fl_reshed_live_add_line, band of
 * fl_reshed_live_band_rows rows). Prints one JSON line.
 * usage: bench_reshednet [--threads N] [--filters F] [--members E] [--size S] [--lines L] [--start ROW] [--repeats R]
 *                       [--memory-gb G] (native memory budget; the live row mode needs its activations within it) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "ferrolens/reshednet.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int threads = 2, F = 16, E = 10, S = 256, lines = 8, repeats = 3, start = -1;
    double memory_gb = 0;
    for (int i = 1; i + 1 < argc; i++) {
        if (!strcmp(argv[i], "--threads")) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--filters")) F = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--members")) E = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--size")) S = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lines")) lines = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--start")) start = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--repeats")) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--memory-gb")) memory_gb = atof(argv[++i]);
    }
    if (repeats < 1 || repeats > 100 || lines < 1 || S < 16) return fprintf(stderr, "bad arguments\n"), 2;
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, threads);
    if (memory_gb > 0) fl_ctx_set_memory_budget(ctx, (size_t)(memory_gb * 1073741824.0));
    /* an ensemble of the right shape: one training step on a small random pair */
    const int64_t P = 16;
    float pimg[16 * 16], pmask[16 * 16] = {0};
    fl_rng r;
    fl_rng_init(&r, 1, 1);
    for (int i = 0; i < 256; i++) pimg[i] = fl_rng_uniform(&r);
    pmask[17] = 1;
    fl_reshed_pair pr = {pimg, P, P, pmask, P, P};
    fl_reshed_config c;
    fl_reshed_config_default(&c);
    c.nb_filters = F, c.members = E, c.iterations = 1, c.batch = 1, c.patch = 16, c.swa = 0;
    fl_reshed *m = NULL;
    if (fl_reshed_train(ctx, &c, &pr, 1, &m)) return bench_fail(ctx);
    const int64_t n = (int64_t)S * S;
    float *img = malloc((size_t)n * sizeof(float)), *mean = malloc((size_t)n * sizeof(float)),
          *var = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) img[i] = fl_rng_normal(&r);
    double full[100];
    for (int k = 0; k < repeats; k++) {
        double t0 = fl_now_seconds();
        if (fl_reshed_apply(ctx, m, img, S, S, mean, var)) return bench_fail(ctx);
        full[k] = fl_now_seconds() - t0;
    }
    qsort(full, (size_t)repeats, sizeof(double), cmp_d);
    /* live: time `lines` lines from row `start` on (default: the middle of the image, where a line reaches
     * the most rows; the band mode costs the same for every line) */
    fl_reshed_live *lv = NULL;
    if (fl_reshed_live_begin(ctx, m, S, S, -5.0, 5.0, &lv)) return bench_fail(ctx);
    if (start < 0 || start > S - 1) start = S / 2;
    if (lines > S - start) lines = S - start;
    double *lt = malloc((size_t)lines * sizeof(double));
    int64_t timed = 0;
    for (int64_t row = 0; row < start + lines; row++) {
        double t0 = fl_now_seconds();
        if (fl_reshed_live_add_line(ctx, lv, img + row * S)) return bench_fail(ctx);
        if (row >= start) lt[timed++] = fl_now_seconds() - t0;
    }
    qsort(lt, (size_t)timed, sizeof(double), cmp_d);
    const double line_s = lt[timed / 2];
    printf("{\"bench\":\"reshednet\",\"filters\":%d,\"members\":%d,\"size\":%d,\"threads\":%d,"
           "\"params_per_member\":%lld,\"ensemble_infer_%dx%d_s\":%.4f,\"live_mode\":\"%s\",\"live_first_timed_line\":%d,"
           "\"live_line_s\":%.4f,\"live_band_rows\":%lld,\"line_vs_full\":%.2f}\n",
           F, E, S, threads, (long long)fl_reshed_param_count(m), S, S, full[repeats / 2],
           fl_reshed_live_incremental(lv) ? "rows" : "band", start, line_s,
           (long long)fl_reshed_live_band_rows(lv), full[repeats / 2] / line_s);
    fl_reshed_live_free(lv);
    fl_reshed_free(m);
    free(img), free(mean), free(var), free(lt);
    fl_ctx_free(ctx);
    return 0;
}
