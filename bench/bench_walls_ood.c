/* Family 4 uncertainty out of distribution (issue 5): trains a ResHedNet wall ensemble on synthetic PFM
 * images (ferrolens synth pfm-walls, condition "in", set 0), then measures on held-out images (set 1) the
 * F1 of the mean mask (threshold 0.5, 2-px tolerance) and on the out-of-distribution images (condition
 * "ood", set 2: blobs without walls, checkerboard, inverted contrast, large noise; image i is variant
 * i mod 4) the mean uncertainty (population variance across members of the per-member sigmoid
 * probability, as fl_reshed_apply) relative to the in-distribution one, overall and per variant, for
 * the first k members (k = 2, 3, 5, 10, ..., members: member i's training does not depend on the
 * member count). Same data as tests/unit/test_reshednet.c (learning test) with the defaults.
 * Prints one JSON line.
 * usage: bench_walls_ood [--members E] [--filters F] [--iters N] [--patch P] [--batch B] [--swa-last K]
 *        [--swa 0|1] [--lr LR] [--seed S] [--data-seed D] [--size S] [--train N] [--test N] [--ood N]
 *        [--threads T] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"
#include "ferrolens/reshednet.h"
#include "ferrolens/walls.h"

static int synth(fl_ctx *ctx, int cond, uint64_t set, uint64_t seed, int count, int64_t size, float **img, float **mask)
{
    fl_synth_pfm_params p;
    fl_synth_pfm_params_default(&p);
    p.size = size;
    p.count = count;
    p.condition = cond;
    p.set = set;
    p.seed = seed;
    *img = malloc((size_t)(count * size * size) * sizeof(float));
    *mask = malloc((size_t)(count * size * size) * sizeof(float));
    if (!*img || !*mask) return 1;
    return fl_synth_pfm_walls(ctx, &p, *img, *mask) != FL_OK;
}

/* population variance and mean over members [0, k) of probs (members x n) at pixel j */
static void stats(const float *probs, int64_t n, int k, int64_t j, double *mean, double *var)
{
    double s = 0, s2 = 0;
    for (int a = 0; a < k; a++) s += probs[(int64_t)a * n + j];
    const double mu = s / k;
    for (int a = 0; a < k; a++) {
        const double d = probs[(int64_t)a * n + j] - mu;
        s2 += d * d;
    }
    *mean = mu;
    *var = s2 / k;
}

int main(int argc, char **argv)
{
    int E = 5, F = 16, iters = 1000, P = 48, B = 4, swa_last = 30, swa = 1, threads = 1;
    int ntrain = 8, ntest = 4, nood = 8;
    int64_t S = 96;
    double lr = 1e-3;
    unsigned long long seed = 0, dseed = 7;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (!strcmp(o, "--members")) E = atoi(v);
        else if (!strcmp(o, "--filters")) F = atoi(v);
        else if (!strcmp(o, "--iters")) iters = atoi(v);
        else if (!strcmp(o, "--patch")) P = atoi(v);
        else if (!strcmp(o, "--batch")) B = atoi(v);
        else if (!strcmp(o, "--swa-last")) swa_last = atoi(v);
        else if (!strcmp(o, "--swa")) swa = atoi(v);
        else if (!strcmp(o, "--lr")) lr = atof(v);
        else if (!strcmp(o, "--seed")) seed = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--data-seed")) dseed = strtoull(v, NULL, 10);
        else if (!strcmp(o, "--size")) S = atoi(v);
        else if (!strcmp(o, "--train")) ntrain = atoi(v);
        else if (!strcmp(o, "--test")) ntest = atoi(v);
        else if (!strcmp(o, "--ood")) nood = atoi(v);
        else if (!strcmp(o, "--threads")) threads = atoi(v);
        else return fprintf(stderr, "unknown option %s\n", o), 2;
    }
    if (E < 2 || E > 64 || ntrain < 1 || ntrain > 256 || ntest < 1 || nood < 4 || nood % 4 || S < 32)
        return fprintf(stderr, "bad arguments (members 2..64, --ood a multiple of 4)\n"), 2;
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, threads);
    const int64_t n = S * S;
    float *ti, *tm, *xi, *xm, *oi, *om;
    if (synth(ctx, FL_PFM_IN, 0, dseed, ntrain, S, &ti, &tm) || synth(ctx, FL_PFM_IN, 1, dseed, ntest, S, &xi, &xm) ||
        synth(ctx, FL_PFM_OOD, 2, dseed, nood, S, &oi, &om))
        return bench_fail(ctx);
    fl_reshed_pair *pr = calloc((size_t)ntrain, sizeof *pr);
    int np = 0;
    for (int i = 0; i < ntrain; i++) {
        int walls = 0;
        for (int64_t j = 0; j < n; j++) walls |= tm[i * n + j] != 0.f;
        if (walls) pr[np++] = (fl_reshed_pair){ti + i * n, S, S, tm + i * n, S, S};
    }
    fl_reshed_config c;
    fl_reshed_config_default(&c);
    c.nb_filters = F, c.members = E, c.iterations = iters, c.batch = B, c.patch = P, c.swa = swa;
    c.swa_last = swa_last, c.lr = (float)lr, c.seed = seed;
    fl_reshed *m = NULL;
    const double t0 = fl_now_seconds();
    if (fl_reshed_train(ctx, &c, pr, np, &m)) return bench_fail(ctx);
    const double ttrain = fl_now_seconds() - t0;
    int32_t lm, li;
    const float *loss = fl_reshed_loss_history(m, &lm, &li);
    double final_loss = 0;
    for (int k = 0; k < lm; k++)
        for (int i = li - 20 < 0 ? 0 : li - 20; i < li; i++) final_loss += loss[(int64_t)k * li + i] / (lm * (li < 20 ? li : 20));

    /* per-member probabilities of every test and OOD image */
    float *pin = malloc((size_t)ntest * E * n * sizeof(float)), *pood = malloc((size_t)nood * E * n * sizeof(float));
    for (int i = 0; i < ntest; i++)
        if (fl_reshed_apply_members(ctx, m, xi + i * n, S, S, pin + (int64_t)i * E * n)) return bench_fail(ctx);
    for (int i = 0; i < nood; i++)
        if (fl_reshed_apply_members(ctx, m, oi + i * n, S, S, pood + (int64_t)i * E * n)) return bench_fail(ctx);
    /* consistency with fl_reshed_apply (the library's own uncertainty map) */
    float *mean = malloc((size_t)n * sizeof(float)), *var = malloc((size_t)n * sizeof(float));
    if (fl_reshed_apply(ctx, m, xi, S, S, mean, var)) return bench_fail(ctx);
    double maxdiff = 0;
    for (int64_t j = 0; j < n; j++) {
        double mu, v;
        stats(pin, n, E, j, &mu, &v);
        maxdiff = fmax(maxdiff, fabs(v - var[j]));
    }
    /* F1 of the full ensemble, mean single-member F1, variance near walls */
    uint8_t *pm = malloc((size_t)n), *tr = malloc((size_t)n);
    fl_walls_metrics acc, accm;
    memset(&acc, 0, sizeof acc);
    memset(&accm, 0, sizeof accm);
    double vin_all = 0, vin_near = 0;
    for (int i = 0; i < ntest; i++) {
        const float *pr_i = pin + (int64_t)i * E * n;
        for (int64_t j = 0; j < n; j++) tr[j] = xm[i * n + j] != 0.f;
        for (int64_t j = 0; j < n; j++) {
            double mu, v;
            stats(pr_i, n, E, j, &mu, &v);
            pm[j] = mu >= 0.5;
            vin_all += v;
            const int64_t x = j % S, y = j / S;
            int near = 0;
            for (int64_t dy = -2; dy <= 2 && !near; dy++)
                for (int64_t dx = -2; dx <= 2 && !near; dx++)
                    if (dx * dx + dy * dy <= 4 && x + dx >= 0 && x + dx < S && y + dy >= 0 && y + dy < S)
                        near = tr[(y + dy) * S + x + dx];
            if (near) vin_near += v;
        }
        fl_walls_metrics one;
        if (fl_walls_metrics_compute(ctx, pm, tr, S, S, 2.0, &one)) return bench_fail(ctx);
        fl_walls_metrics_add(&acc, &one);
        for (int a = 0; a < E; a++) {
            for (int64_t j = 0; j < n; j++) pm[j] = pr_i[(int64_t)a * n + j] >= 0.5f;
            if (fl_walls_metrics_compute(ctx, pm, tr, S, S, 2.0, &one)) return bench_fail(ctx);
            fl_walls_metrics_add(&accm, &one);
        }
    }
    fl_walls_metrics_finish(&acc);
    fl_walls_metrics_finish(&accm);
    /* how the full ensemble fares on each OOD variant: F1 where there are walls, the fraction of
     * pixels called wall on the blobs (no walls) */
    fl_walls_metrics vacc[4];
    memset(vacc, 0, sizeof vacc);
    double blob_fp = 0;
    for (int i = 0; i < nood; i++) {
        const float *pr_i = pood + (int64_t)i * E * n;
        for (int64_t j = 0; j < n; j++) {
            double mu, v;
            stats(pr_i, n, E, j, &mu, &v);
            pm[j] = mu >= 0.5;
            tr[j] = om[i * n + j] != 0.f;
            if (i % 4 == 0) blob_fp += pm[j];
        }
        if (i % 4 == 0) continue;
        fl_walls_metrics one;
        if (fl_walls_metrics_compute(ctx, pm, tr, S, S, 2.0, &one)) return bench_fail(ctx);
        fl_walls_metrics_add(&vacc[i % 4], &one);
    }
    for (int t = 1; t < 4; t++) fl_walls_metrics_finish(&vacc[t]);
    blob_fp /= (double)(nood / 4) * n;
    /* ratios for the first k members */
    int ks[16], nk = 0;
    for (int k = 2; k <= E && nk < 15; k = k == 2 ? 3 : k == 3 ? 5 : 2 * k) ks[nk++] = k;
    if (ks[nk - 1] != E) ks[nk++] = E;
    printf("{\"bench\":\"walls_ood\",\"members\":%d,\"filters\":%d,\"iterations\":%d,\"patch\":%d,\"batch\":%d,"
           "\"swa\":%d,\"swa_last\":%d,\"lr\":%g,\"seed\":%llu,\"data_seed\":%llu,\"size\":%lld,\"train_images\":%d,"
           "\"test_images\":%d,\"ood_images\":%d,\"threads\":%d,\"train_s\":%.1f,\"final_loss\":%.4g,"
           "\"precision\":%.4f,\"recall\":%.4f,\"f1\":%.4f,\"member_f1\":%.4f,\"var_in_near_wall_fraction\":%.3f,"
           "\"var_check_maxdiff\":%.3g,\"ood_blobs_wall_fraction\":%.4f,\"ood_f1\":{\"checker\":%.4f,\"inverted\":%.4f,\"noise\":%.4f},"
           "\"by_members\":[",
           E, F, iters, P, B, swa, swa_last, lr, seed, dseed, (long long)S, np, ntest, nood, threads, ttrain, final_loss,
           acc.precision, acc.recall, acc.f1, accm.f1, vin_near / vin_all, maxdiff, blob_fp, vacc[1].f1, vacc[2].f1, vacc[3].f1);
    for (int q = 0; q < nk; q++) {
        const int k = ks[q];
        double vin = 0, vood = 0, vv[4] = {0, 0, 0, 0}, pv[4] = {0, 0, 0, 0}, pin_mean = 0;
        for (int i = 0; i < ntest; i++)
            for (int64_t j = 0; j < n; j++) {
                double mu, v;
                stats(pin + (int64_t)i * E * n, n, k, j, &mu, &v);
                vin += v;
                pin_mean += mu;
            }
        for (int i = 0; i < nood; i++)
            for (int64_t j = 0; j < n; j++) {
                double mu, v;
                stats(pood + (int64_t)i * E * n, n, k, j, &mu, &v);
                vood += v;
                vv[i % 4] += v;
                pv[i % 4] += mu;
            }
        vin /= (double)ntest * n;
        pin_mean /= (double)ntest * n;
        vood /= (double)nood * n;
        for (int t = 0; t < 4; t++) vv[t] /= (double)(nood / 4) * n, pv[t] /= (double)(nood / 4) * n;
        printf("%s{\"k\":%d,\"var_in\":%.4g,\"var_ood\":%.4g,\"ratio\":%.3f,\"ratio_blobs\":%.3f,"
               "\"ratio_checker\":%.3f,\"ratio_inverted\":%.3f,\"ratio_noise\":%.3f,\"mean_prob_in\":%.3f,\"mean_prob_ood\":[%.3f,%.3f,%.3f,%.3f]}",
               q ? "," : "", k, vin, vood, vood / vin, vv[0] / vin, vv[1] / vin, vv[2] / vin, vv[3] / vin, pin_mean, pv[0], pv[1],
               pv[2], pv[3]);
    }
    printf("]}\n");
    fl_reshed_free(m);
    free(pin), free(pood), free(mean), free(var), free(pm), free(tr), free(pr);
    free(ti), free(tm), free(xi), free(xm), free(oi), free(om);
    fl_ctx_free(ctx);
    return 0;
}
