/* Family 3, the 4D-STEM diffraction autoencoder (native/src/models/diffraction_ae.c): pooling rule and
 * parameter counts against PyTorch's STEMAE, regulariser values (numpy references) and gradients (finite
 * differences), a whole-model gradient check, learning the +-P domains and walls of the synthetic data
 * set, streamed = in-memory inference under a tight budget, save/load, bad input. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl_internal.h"
#include "ferrolens/diffraction_ae.h"
#include "io/safetensors.h"
#include "io/tiff.h"
#include "models/diffraction_ae_internal.h"
#include "synth/stem4d.h"
#include "../shared/test_util.h"

static fl_ctx *new_ctx(int threads)
{
    fl_ctx *ctx = fl_ctx_new();
    cr_assert_not_null(ctx);
    fl_ctx_set_threads(ctx, threads);
    return ctx;
}

/* ---- architecture ---------------------------------------------------------------------------- */

Test(dae, pooling_rule_and_errors)
{
    fl_ctx *ctx = new_ctx(1);
    const int sizes[6] = {256, 128, 64, 32, 16, 8};
    const int want[6][3] = {{4, 4, 2}, {4, 4, 0}, {4, 2, 0}, {4, 0, 0}, {2, 0, 0}, {0, 0, 0}};
    for (int i = 0; i < 6; i++) {
        fl_dae_config c;
        fl_dae_config_default(&c);
        c.pattern_w = c.pattern_h = sizes[i];
        cr_assert_eq(fl_dae_derive_pools(ctx, &c), FL_OK, "%s", fl_ctx_message(ctx));
        for (int k = 0; k < 3; k++) cr_expect_eq(c.pools[k], want[i][k], "size %d pool %d", sizes[i], k);
        cr_expect_eq(c.pools[3], 0);
    }
    fl_dae_config c;
    fl_dae_config_default(&c);
    c.pattern_w = c.pattern_h = 96;
    cr_expect_eq(fl_dae_derive_pools(ctx, &c), FL_EINVAL);
    cr_expect(strstr(fl_ctx_message(ctx), "power of two") != NULL, "%s", fl_ctx_message(ctx));
    c.pools[0] = 4; /* explicit pools: 96 = 8 * 12 -> 4, 3 */
    c.pools[1] = 3;
    cr_expect_eq(fl_dae_derive_pools(ctx, &c), FL_OK, "%s", fl_ctx_message(ctx));
    c.pools[1] = 5;
    cr_expect_eq(fl_dae_derive_pools(ctx, &c), FL_EINVAL);
    fl_ctx_free(ctx);
}

/* Parameter counts of PyTorch's STEMAE (shared/bench/torch_ref.py, width 128, embedding 32): 64 -> 2,995,810;
 * 32 -> 1,788,514 (256 -> 4,700,770 as the paper). */
Test(dae, parameter_count_matches_pytorch)
{
    fl_ctx *ctx = new_ctx(2);
    const int sizes[2] = {32, 64};
    const int64_t want[2] = {1788514, 2995810};
    for (int i = 0; i < 2; i++) {
        fl_dae_config c;
        fl_dae_config_default(&c);
        c.pattern_w = c.pattern_h = sizes[i];
        fl_dae *m = NULL;
        cr_assert_eq(fl_dae_create(ctx, &c, &m), FL_OK, "%s", fl_ctx_message(ctx));
        cr_expect_eq(fl_dae_param_count(m), want[i], "size %d: %lld params", sizes[i], (long long)fl_dae_param_count(m));
        int64_t bh, bw;
        fl_dae_bottleneck(m, &bh, &bw);
        cr_expect(bh == 8 && bw == 8);
        fl_dae_free(m);
    }
    fl_ctx_free(ctx);
}

/* ---- regularisers ------------------------------------------------------------------------------ */

/* z (3 x 4) with a zero row and zero entries; references from numpy (m3_learning formulas):
 * l1 = 0.1: R1 = 0.1 * 4.3 / 3; contrastive 0.2, divergence 0.3. */
static const float Z0[12] = {0.5f, 0.f, 1.2f, 0.3f, 0.f, 0.f, 0.f, 0.f, 0.9f, 0.4f, 0.f, 1.0f};

Test(dae, regulariser_values_match_reference)
{
    double parts[3];
    double total = fl_dae_regularisers(Z0, 3, 4, 0.1, 0.2, 0.3, NULL, parts);
    /* numpy (float32 z, float64 arithmetic, the m3_learning loops): */
    const double r1 = 0.1433333347, rc = 0.0267009602, rd = 0.3000000060;
    cr_expect_float_eq(parts[0], r1, 1e-8, "R1 %.10g vs %.10g", parts[0], r1);
    cr_expect_float_eq(parts[1], rc, 1e-8, "Rc %.10g vs %.10g", parts[1], rc);
    cr_expect_float_eq(parts[2], rd, 1e-8, "Rd %.10g vs %.10g", parts[2], rd);
    cr_expect_float_eq(total, r1 + rc - rd, 1e-9);
}

/* Finite differences of each regulariser alone, at a random z with exact zeros (entries that stay
 * zero are not perturbed: they are outside the sets S / nz by definition). */
static void reg_fd(double l1, double con, double div)
{
    enum { B = 5, K = 6 };
    float z[B * K];
    fill(z, B * K, 0.05f, 1.f, 3);
    z[2] = z[9] = z[20] = 0.f; /* zeros inside rows */
    for (int k = 0; k < K; k++) z[3 * K + k] = 0.f; /* a dead row */
    double dz[B * K];
    fl_dae_regularisers(z, B, K, l1, con, div, dz, NULL);
    int checked = 0;
    for (int i = 0; i < B * K; i++) {
        if (z[i] == 0.f) { /* the dead row takes part in nothing */
            if (i / K == 3) cr_expect_float_eq(dz[i], 0.0, 1e-12, "dead-row entry %d has gradient %g", i, dz[i]);
            continue;
        }
        const float keep = z[i];
        const float h = 1e-3f;
        z[i] = keep + h;
        double lp = fl_dae_regularisers(z, B, K, l1, con, div, NULL, NULL);
        z[i] = keep - h;
        double lm = fl_dae_regularisers(z, B, K, l1, con, div, NULL, NULL);
        z[i] = keep;
        const double num = (lp - lm) / (double)((keep + h) - (keep - h));
        cr_expect(fabs(num - dz[i]) <= 1e-3 * fmax(1.0, fabs(dz[i])), "l1 %g con %g div %g: dz[%d] %.8g vs numeric %.8g",
                  l1, con, div, i, dz[i], num);
        checked++;
    }
    cr_expect(checked > 20);
}

Test(dae, regulariser_gradients_l1) { reg_fd(0.3, 0, 0); }
Test(dae, regulariser_gradients_contrastive) { reg_fd(0, 0.7, 0); }
Test(dae, regulariser_gradients_divergence) { reg_fd(0, 0, 0.4); }
Test(dae, regulariser_gradients_all) { reg_fd(0.1, 0.5, 0.2); }

/* ---- whole model ------------------------------------------------------------------------------- */

static fl_dae *tiny_model(fl_ctx *ctx, int size, int width, int emb, float l1, float con, float div)
{
    fl_dae_config c;
    fl_dae_config_default(&c);
    c.pattern_w = c.pattern_h = size;
    c.width = width;
    c.embedding = emb;
    c.l1 = l1;
    c.contrastive = con;
    c.divergence = div;
    c.seed = 4;
    fl_dae *m = NULL;
    cr_assert_eq(fl_dae_create(ctx, &c, &m), FL_OK, "%s", fl_ctx_message(ctx));
    return m;
}

/* Loss gradient of every part of the network (encoder, decoder) against central differences, with the
 * L1 and contrastive terms on: 16 x 16 patterns, pools [2], width 3, embedding 5, batch 4. The divergence
 * term is left out here: by its definition (only the non-zero entries count) it jumps when a ReLU output
 * crosses zero, which spoils central differences through the network; its own gradient is checked above. */
Test(dae, whole_model_gradient_check)
{
    fl_ctx *ctx = new_ctx(2);
    fl_dae *m = tiny_model(ctx, 16, 3, 5, 0.05f, 0.3f, 0.f);
    fl_dae_net *n = NULL;
    const int64_t B = 4, HW = 256;
    cr_assert_eq(fl_dae_debug_net_new(ctx, m, B, &n), FL_OK, "%s", fl_ctx_message(ctx));
    float x[4 * 256];
    fill(x, B * HW, 0.f, 2.f, 8);
    double *an[2];
    int64_t np[2];
    for (int part = 0; part < 2; part++) {
        float *p = fl_dae_debug_params(n, part, &np[part]);
        float noise[1];
        (void)noise;
        fl_rng r;
        fl_rng_init(&r, 21, (uint64_t)part);
        for (int64_t i = 0; i < np[part]; i++) p[i] += 0.2f * (fl_rng_uniform(&r) - 0.5f); /* LN gamma/beta off 1/0 */
    }
    fl_dae_debug_loss_grad(n, x, B);
    for (int part = 0; part < 2; part++) {
        an[part] = malloc((size_t)np[part] * sizeof(double));
        const float *g = fl_dae_debug_grads(n, part);
        for (int64_t i = 0; i < np[part]; i++) an[part][i] = g[i];
    }
    int bad = 0, total = 0;
    for (int part = 0; part < 2; part++) {
        float *p = fl_dae_debug_params(n, part, &np[part]);
        double gmax = 0;
        for (int64_t i = 0; i < np[part]; i++) gmax = fmax(gmax, fabs(an[part][i]));
        const int64_t stride = np[part] / 40 > 0 ? np[part] / 40 : 1;
        for (int64_t i = 0; i < np[part]; i += stride) {
            const float keep = p[i], h = 5e-4f;
            p[i] = keep + h;
            const double lp = fl_dae_debug_loss_grad(n, x, B);
            p[i] = keep - h;
            const double lm = fl_dae_debug_loss_grad(n, x, B);
            p[i] = keep;
            const double num = (lp - lm) / (double)((keep + h) - (keep - h));
            const double err = fabs(num - an[part][i]) / fmax(fmax(fabs(num), fabs(an[part][i])), 0.02 * gmax);
            total++;
            if (err > 0.05) {
                bad++;
                cr_log_warn("part %d param %lld: analytic %.6g numeric %.6g", part, (long long)i, an[part][i], num);
            }
        }
    }
    /* ReLU / max-pool / |.| kinks can spoil a rare central difference */
    cr_expect(bad <= total / 20, "%d of %d parameter gradients disagree", bad, total);
    cr_expect(total > 60);
    free(an[0]);
    free(an[1]);
    fl_dae_debug_net_free(n);
    fl_dae_free(m);
    fl_ctx_free(ctx);
}

/* ---- learning the synthetic data set --------------------------------------------------------------- */

static double balanced_accuracy_best(const float *v, const float *truth, int64_t n)
{
    /* optimal threshold on the channel, either direction */
    double best = 0;
    for (int64_t t = 0; t < n; t++) {
        const float th = v[t];
        int64_t tp = 0, tn = 0, pos = 0, neg = 0;
        for (int64_t i = 0; i < n; i++) {
            const int p = truth[i] > 0, pred = v[i] >= th;
            pos += p;
            neg += !p;
            tp += p && pred;
            tn += !p && !pred;
        }
        double ba = 0.5 * ((double)tp / pos + (double)tn / neg);
        best = fmax(best, fmax(ba, 1 - ba));
    }
    return best;
}

static int cmp_float(const void *a, const void *b)
{
    const float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double auc(const float *v, const float *mask, int64_t n)
{
    double s = 0;
    int64_t pos = 0, neg = 0;
    for (int64_t i = 0; i < n; i++) {
        if (mask[i] <= 0.5f) continue;
        pos++;
        for (int64_t j = 0; j < n; j++) {
            if (mask[j] > 0.5f) continue;
            s += v[i] > v[j] ? 1 : v[i] == v[j] ? 0.5 : 0;
        }
    }
    for (int64_t j = 0; j < n; j++) neg += mask[j] <= 0.5f;
    return s / ((double)pos * neg);
}

/* Learning the physics of the default synthetic set (32 x 32 scan, 32 x 32 detector binned 2 -> 16 x 16,
 * +-P stripes, h-h/t-t walls, thickness 0.6..1.4, Poisson noise): one embedding channel separates +P from
 * -P (balanced accuracy >= 0.95 at its best threshold) and that channel's virtual-aperture difference, used
 * as a virtual detector, localises the walls (AUC >= 0.8: the asymmetry fades to 0 at a wall).
 * Why the old settings (batch 32, 12 epochs, lr 2e-3, no normalisation) failed with balanced accuracy ~0.67:
 * in log space the +-P signal is ~4 % of the reconstruction error (numpy PCA of the log patterns: residual
 * MSE 0.2753 -> 0.1036 after the thickness component, -> 0.0993 after the +-P component; Poisson floor ~0.097),
 * so 384 Adam steps never reach it. Settings here: batch 8 (2560 steps), intensity normalisation (automatic
 * target) so thickness no longer dominates.
 * Why some seeds still failed (issue 4; 20 epochs, embedding 8, lr 5e-4, L1 1e-5: seeds 1..5 gave
 * 0.954 / 0.674 / 0.955 / 0.853 / 0.959): (a) dead channels: PyTorch's init leaves 0-3 of the 8 ReLU
 * channels dead from the start, and the first epoch kills about half of the rest (3-7 of 8 dead after one
 * epoch): the decoder output starts ~2 log units below the data, and that coherent gradient runs through
 * fc_dec into every channel at once. Fixed in the engine (fl_dae_create / fl_dae_train): fc_enc.bias starts at
 * +0.1 and the output bias of a fresh model at the mean log value of the training set. (b) with the few live
 * channels all active on every pattern the ReLU code is linear, so +-P sits in a ROTATED pair of channels
 * (each = -thickness +- P; the failing seeds' best channel correlates with thickness at |r| 0.6-0.9); no
 * channel crosses the ReLU kink to separate +P from -P. A stronger L1 activity penalty (the paper's own
 * later-phase values are 5e-4..5e-3) pushes the channels into the kink, where the sparse, aligned code is the
 * cheaper one; without (a) that L1 kills all but one channel on some seeds (balanced accuracy ~0.52). Settings
 * now: L1 3e-3, lr 1e-3: seeds 1..8 0.969 / 0.922 / 0.969 / 0.965 / 0.973 / 0.956 / 0.968 / 0.967 (the loss
 * still does not FORCE one channel to align: about 1 seed in 8 keeps a rotated pair). Skipped under FL_QUICK
 * (~15-30 s on one core).
 * Env for experiments: DAE_EPOCHS, DAE_EMB, DAE_LR, DAE_BATCH, DAE_THREADS, DAE_SEED, DAE_WIDTH, DAE_L1,
 * DAE_CON, DAE_DIV, DAE_MAXLR (cyclic on), DAE_STEP, DAE_NORM, DAE_SCHED + DAE_L1A (L1 schedule),
 * DAE_VERBOSE (per-channel balanced accuracy and correlation with the thickness map). */
Test(dae, learns_polarisation_and_walls_of_synthetic_stem4d, .timeout = 600)
{
    if (getenv("FL_QUICK")) cr_skip_test("FL_QUICK: training run skipped");
    fl_ctx *ctx = new_ctx(getenv("DAE_THREADS") ? atoi(getenv("DAE_THREADS")) : 1);
    fl_synth_stem4d_params sp;
    fl_synth_stem4d_params_default(&sp);
    fl_image data, truth;
    cr_assert_eq(fl_synth_stem4d(ctx, &sp, &data, &truth), FL_OK, "%s", fl_ctx_message(ctx));
    const int64_t n = sp.scan_x * sp.scan_y;
    fl_stem4d *src = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data.data, sp.det, sp.det, sp.scan_x, sp.scan_y, &src), FL_OK);
    fl_dae_config c;
    fl_dae_config_default(&c);
    c.bin = 2;
    c.pattern_w = c.pattern_h = (int32_t)(sp.det / 2);
    c.width = 8;
    c.embedding = getenv("DAE_EMB") ? atoi(getenv("DAE_EMB")) : 8;
    c.lr = getenv("DAE_LR") ? (float)atof(getenv("DAE_LR")) : 1e-3f;
    c.l1 = 3e-3f;
    c.epochs = getenv("DAE_EPOCHS") ? atoi(getenv("DAE_EPOCHS")) : 20;
    c.batch = getenv("DAE_BATCH") ? atoi(getenv("DAE_BATCH")) : 8;
    c.normalise = -1.f; /* automatic: mean counts per pixel of the training set */
    c.seed = getenv("DAE_SEED") ? (uint64_t)atoll(getenv("DAE_SEED")) : 7;
    if (getenv("DAE_WIDTH")) c.width = atoi(getenv("DAE_WIDTH"));
    if (getenv("DAE_L1")) c.l1 = (float)atof(getenv("DAE_L1"));
    if (getenv("DAE_CON")) c.contrastive = (float)atof(getenv("DAE_CON"));
    if (getenv("DAE_DIV")) c.divergence = (float)atof(getenv("DAE_DIV"));
    if (getenv("DAE_MAXLR")) c.cyclic = 1, c.max_lr = (float)atof(getenv("DAE_MAXLR"));
    if (getenv("DAE_NORM")) c.normalise = (float)atof(getenv("DAE_NORM"));
    if (getenv("DAE_STEP")) c.step_size_up = atoi(getenv("DAE_STEP"));
    if (getenv("DAE_SCHED")) c.schedule_epoch = atoi(getenv("DAE_SCHED"));
    c.l1_after = getenv("DAE_L1A") ? (float)atof(getenv("DAE_L1A")) : c.l1;
    c.contrastive_after = c.contrastive;
    c.divergence_after = c.divergence;
    fl_dae *m = NULL;
    cr_assert_eq(fl_dae_create(ctx, &c, &m), FL_OK, "%s", fl_ctx_message(ctx));
    fl_dae_report rep;
    cr_assert_eq(fl_dae_train(ctx, m, src, &rep), FL_OK, "%s", fl_ctx_message(ctx));
    if (!getenv("DAE_NORM")) /* the automatic target is the data's mean counts per pixel (binned) */
        cr_expect(fl_dae_get_config(m)->normalise > 1.f && fl_dae_get_config(m)->normalise < 1000.f, "target %g",
                  fl_dae_get_config(m)->normalise);
    int32_t ne;
    const fl_dae_epoch *h = fl_dae_history(m, &ne);
    cr_assert_eq(ne, c.epochs);
    cr_expect(h[ne - 1].mse < 0.5 * h[0].mse, "mse %g -> %g", h[0].mse, h[ne - 1].mse);
    float *emb = malloc((size_t)n * c.embedding * sizeof(float));
    cr_assert_eq(fl_dae_embed(ctx, m, src, emb), FL_OK, "%s", fl_ctx_message(ctx));
    float *ch = malloc((size_t)n * sizeof(float));
    double best_ba = 0, best_auc = 0;
    int best_k = -1, best_wk = -1;
    for (int k = 0; k < c.embedding; k++) {
        for (int64_t i = 0; i < n; i++) ch[i] = emb[i * c.embedding + k];
        double ba = balanced_accuracy_best(ch, truth.data, n); /* slice 0: polarisation */
        double a = auc(ch, truth.data + n, n);                  /* slice 1: wall mask */
        a = fmax(a, 1 - a);
        if (getenv("DAE_VERBOSE")) {
            double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0, mx = 0;
            const float *T = truth.data + 3 * n;
            for (int64_t i = 0; i < n; i++) {
                const double u = ch[i], v = T[i];
                sx += u, sy += v, sxx += u * u, syy += v * v, sxy += u * v, mx = fmax(mx, u);
            }
            const double cov = sxy / n - sx / n * sy / n;
            fprintf(stderr, "  channel %d: max %.3g ba %.3f corr(t) %.3f\n", k, mx, ba,
                    cov / sqrt((sxx / n - sx / n * sx / n) * (syy / n - sy / n * sy / n) + 1e-30));
        }
        if (ba > best_ba) best_ba = ba, best_k = k;
        if (a > best_auc) best_auc = a, best_wk = k;
    }
    cr_log_info("train %.1f patterns/s; +-P: channel %d balanced accuracy %.3f; walls: channel %d AUC %.3f; mse %g -> %g",
                rep.patterns_per_second, best_k, best_ba, best_wk, best_auc, h[0].mse, h[ne - 1].mse);
    fprintf(stderr, "dae sample: +-P channel %d balanced accuracy %.3f; walls channel %d AUC %.3f; mse %g -> %g; %.0f patterns/s\n",
            best_k, best_ba, best_wk, best_auc, h[0].mse, h[ne - 1].mse, rep.patterns_per_second);
    cr_expect(best_ba >= 0.95, "best balanced accuracy %.3f", best_ba);
    /* virtual apertures: the +-P channel's aperture difference, with its part along the mean pattern removed
     * (the top and bottom 5 % of a channel also differ in mean thickness, which scales the whole pattern), is
     * antisymmetric along ky (004 vs 00-4) */
    const int64_t bw = c.pattern_w, HW = bw * bw;
    float *ap = malloc((size_t)c.embedding * HW * sizeof(float));
    cr_assert_eq(fl_dae_apertures(ctx, src, c.bin, emb, n, c.embedding, 0.05, ap), FL_OK, "%s", fl_ctx_message(ctx));
    float *raw = malloc((size_t)n * HW * sizeof(float));
    float *score = malloc((size_t)n * sizeof(float));
    double *mean = calloc((size_t)HW, sizeof(double)), *a = malloc((size_t)HW * sizeof(double));
    cr_assert_eq(fl_stem4d_read(ctx, src, 0, n, c.bin, raw), FL_OK, "%s", fl_ctx_message(ctx));
    for (int64_t i = 0; i < n * HW; i++) mean[i % HW] += raw[i] / (double)n;
    double am = 0, mm = 0;
    for (int64_t j = 0; j < HW; j++) am += ap[best_k * HW + j] * mean[j], mm += mean[j] * mean[j];
    for (int64_t j = 0; j < HW; j++) a[j] = ap[best_k * HW + j] - am / mm * mean[j];
    double up = 0, down = 0; /* rows above / below the centre, central column band */
    for (int64_t y = 0; y < bw; y++)
        for (int64_t x = bw / 2 - 2; x < bw / 2 + 2; x++) {
            if (y < bw / 2 - 1) up += a[y * bw + x];
            if (y > bw / 2) down += a[y * bw + x];
        }
    cr_log_info("aperture of channel %d: upper half %.1f, lower half %.1f", best_k, up, down);
    cr_expect(up * down < 0, "the +-P aperture difference should change sign across the disc row: %g %g", up, down);
    /* walls: that aperture difference as a virtual detector. Each binned raw pattern, normalised by its total
     * counts, is projected on it; the asymmetry fades to 0 at a wall, so wall score = -|projection - median|. */
    for (int64_t i = 0; i < n; i++) {
        double dot = 0, tot = 0;
        for (int64_t j = 0; j < HW; j++) {
            dot += (double)raw[i * HW + j] * a[j];
            tot += raw[i * HW + j];
        }
        score[i] = (float)(dot / fmax(tot, 1.0));
        ch[i] = score[i];
    }
    qsort(ch, (size_t)n, sizeof(float), cmp_float);
    const float med = 0.5f * (ch[n / 2 - 1] + ch[n / 2]);
    for (int64_t i = 0; i < n; i++) score[i] = -fabsf(score[i] - med);
    const double ap_auc = auc(score, truth.data + n, n);
    int dead = 0;
    for (int k = 0; k < c.embedding; k++) {
        float mx = 0;
        for (int64_t i = 0; i < n; i++) mx = fmaxf(mx, emb[i * c.embedding + k]);
        dead += mx == 0.f;
    }
    {
        double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
        const float *T = truth.data + 3 * n;
        for (int64_t i = 0; i < n; i++) {
            const double u = emb[i * c.embedding + best_k], v = T[i];
            sx += u, sy += v, sxx += u * u, syy += v * v, sxy += u * v;
        }
        const double cov = sxy / n - sx / n * sy / n;
        fprintf(stderr, "dae sample: corr(P channel, thickness) %.3f\n", cov / sqrt((sxx / n - sx / n * sx / n) * (syy / n - sy / n * sy / n) + 1e-30));
    }
    fprintf(stderr, "dae sample: aperture-difference wall AUC %.3f; %d of %d channels dead; %.1f s training\n", ap_auc, dead,
            c.embedding, rep.seconds);
    cr_expect(ap_auc >= 0.8, "wall AUC of the aperture difference %.3f", ap_auc);
    free(raw);
    free(score);
    free(mean);
    free(a);
    free(ap);
    free(ch);
    free(emb);
    fl_dae_free(m);
    fl_stem4d_close(src);
    fl_image_free(&data);
    fl_image_free(&truth);
    fl_ctx_free(ctx);
}

/* ---- streaming, determinism, files ---------------------------------------------------------------- */

Test(dae, streamed_embedding_equals_in_memory_and_threads)
{
    fl_ctx *ctx = new_ctx(2);
    const int64_t det = 16, sx = 9, sy = 7, n = sx * sy;
    float *data = malloc((size_t)(n * det * det) * sizeof(float));
    fill(data, n * det * det, 0.f, 50.f, 5);
    fl_dae *m = tiny_model(ctx, 16, 4, 6, 1e-5f, 0, 0);
    float *e_mem = malloc((size_t)n * 6 * sizeof(float)), *e_str = malloc((size_t)n * 6 * sizeof(float));
    cr_assert_eq(fl_dae_encode(ctx, m, data, n, e_mem), FL_OK, "%s", fl_ctx_message(ctx));
    fl_stem4d *src = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, det, det, sx, sy, &src), FL_OK);
    fl_ctx *small = new_ctx(1);
    fl_ctx_set_memory_budget(small, (size_t)400 << 10); /* forces small batches (several reads ahead) */
    cr_assert_eq(fl_dae_embed(small, m, src, e_str), FL_OK, "%s", fl_ctx_message(small));
    double maxd = 0, maxv = 0;
    for (int64_t i = 0; i < n * 6; i++) {
        maxd = fmax(maxd, fabs(e_mem[i] - e_str[i]));
        maxv = fmax(maxv, fabs(e_mem[i]));
    }
    cr_expect(maxv > 0);
    cr_expect(maxd <= 1e-5 * fmax(1, maxv), "streamed vs in-memory differ by %g", maxd);
    fl_ctx_set_memory_budget(small, 4096);
    cr_expect_neq(fl_dae_embed(small, m, src, e_str), FL_OK);
    cr_expect(strstr(fl_ctx_message(small), "MiB") != NULL, "%s", fl_ctx_message(small));
    /* negative intensities below -1 are refused with the pattern named */
    data[5 * det * det + 3] = -2.f;
    cr_expect_eq(fl_dae_encode(ctx, m, data, n, e_mem), FL_EINVAL);
    cr_expect(strstr(fl_ctx_message(ctx), "pattern 5") != NULL, "%s", fl_ctx_message(ctx));
    fl_stem4d_close(src);
    fl_ctx_free(small);
    free(e_mem);
    free(e_str);
    free(data);
    fl_dae_free(m);
    fl_ctx_free(ctx);
}

static void train_small(int threads, const char *path, float *emb_out)
{
    fl_ctx *ctx = new_ctx(threads);
    const int64_t det = 16, sx = 8, sy = 6, n = sx * sy;
    float *data = malloc((size_t)(n * det * det) * sizeof(float));
    fill(data, n * det * det, 0.f, 20.f, 6);
    fl_stem4d *src = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, det, det, sx, sy, &src), FL_OK);
    fl_dae_config c;
    fl_dae_config_default(&c);
    c.pattern_w = c.pattern_h = 16;
    c.width = 4;
    c.embedding = 4;
    c.epochs = 3;
    c.batch = 8;
    c.lr = 1e-3f;
    c.contrastive = 0.01f;
    c.divergence = 0.01f;
    c.cyclic = 1;
    c.step_size_up = 1;
    c.scan_stride = 1;
    c.fraction = 0.75f;
    fl_dae *m = NULL;
    cr_assert_eq(fl_dae_create(ctx, &c, &m), FL_OK);
    fl_dae_report rep;
    cr_assert_eq(fl_dae_train(ctx, m, src, &rep), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(rep.train_patterns, 36);
    int32_t ne;
    const fl_dae_epoch *h = fl_dae_history(m, &ne);
    cr_expect_float_eq(h[0].lr, 1e-3, 1e-9); /* triangular cycle: base, max, base */
    cr_expect_float_eq(h[1].lr, 1e-4, 1e-9);
    cr_expect_float_eq(h[2].lr, 1e-3, 1e-9);
    cr_assert_eq(fl_dae_save(ctx, m, path), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_dae_embed(ctx, m, src, emb_out), FL_OK);
    fl_dae_free(m);
    fl_stem4d_close(src);
    free(data);
    fl_ctx_free(ctx);
}

Test(dae, same_seed_same_model_any_threads_and_save_load)
{
    char p1[] = "/tmp/dae_t1_XXXXXX", p2[] = "/tmp/dae_t2_XXXXXX";
    int f1 = mkstemp(p1), f2 = mkstemp(p2);
    cr_assert(f1 >= 0 && f2 >= 0);
    close(f1);
    close(f2);
    float e1[48 * 4], e2[48 * 4];
    train_small(1, p1, e1);
    train_small(2, p2, e2);
    FILE *a = fopen(p1, "rb"), *b = fopen(p2, "rb");
    int same = 1, ca, cb;
    do {
        ca = fgetc(a);
        cb = fgetc(b);
        same &= ca == cb;
    } while (ca != EOF && cb != EOF);
    fclose(a);
    fclose(b);
    cr_expect(same, "model files differ between 1 and 2 threads");
    /* load: same embedding */
    fl_ctx *ctx = new_ctx(2);
    fl_dae *m = NULL;
    cr_assert_eq(fl_dae_load(ctx, p1, &m), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(fl_dae_get_config(m)->width, 4);
    float data_dummy[1];
    (void)data_dummy;
    const int64_t det = 16, n = 48;
    float *data = malloc((size_t)(n * det * det) * sizeof(float));
    fill(data, n * det * det, 0.f, 20.f, 6);
    float e3[48 * 4];
    cr_assert_eq(fl_dae_encode(ctx, m, data, n, e3), FL_OK);
    for (int i = 0; i < 48 * 4; i++) cr_expect_float_eq(e3[i], e1[i], 1e-5f * fmaxf(1.f, fabsf(e1[i])), "emb %d", i);
    float *rec = malloc((size_t)(n * det * det) * sizeof(float));
    cr_expect_eq(fl_dae_decode(ctx, m, e3, n, rec), FL_OK);
    cr_expect(isfinite(rec[0]) && isfinite(rec[n * det * det - 1]));
    free(rec);
    fl_dae_free(m);
    /* a model of another family */
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    int64_t shp[1] = {2};
    float v[2] = {1, 2};
    fl_tensor_list_add(ctx, &l, "x", 1, shp, v);
    fl_tensor_list_set_meta(ctx, &l, "family", "spectral-ae");
    fl_tensor_list_set_meta(ctx, &l, "format_version", "1");
    cr_assert_eq(fl_safetensors_write(ctx, p2, &l), FL_OK);
    fl_tensor_list_free(&l);
    m = NULL;
    cr_expect_eq(fl_dae_load(ctx, p2, &m), FL_EMISMATCH);
    cr_expect(strstr(fl_ctx_message(ctx), "not a diffraction autoencoder") != NULL, "%s", fl_ctx_message(ctx));
    cr_expect_null(m);
    /* a truncated model file */
    FILE *t = fopen(p1, "r+b");
    fseek(t, 0, SEEK_END);
    long len = ftell(t);
    fclose(t);
    cr_assert_eq(truncate(p1, len / 2), 0);
    cr_expect_neq(fl_dae_load(ctx, p1, &m), FL_OK);
    cr_expect_null(m);
    unlink(p1);
    unlink(p2);
    free(data);
    fl_ctx_free(ctx);
}

Test(dae, mismatched_source_is_refused)
{
    fl_ctx *ctx = new_ctx(1);
    fl_dae *m = tiny_model(ctx, 16, 2, 3, 0, 0, 0);
    float data[4 * 32 * 32] = {0};
    fl_stem4d *src = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, 32, 32, 2, 2, &src), FL_OK);
    float emb[12];
    cr_expect_eq(fl_dae_embed(ctx, m, src, emb), FL_EMISMATCH);
    cr_expect(strstr(fl_ctx_message(ctx), "16 x 16") != NULL, "%s", fl_ctx_message(ctx));
    fl_stem4d_close(src);
    fl_dae_free(m);
    fl_ctx_free(ctx);
}

/* ---- initialisation against dead channels (issue 4) ---------------------------------------------- */

static float tensor_value(fl_ctx *ctx, const char *path, const char *name, int64_t i, int64_t *count)
{
    fl_tensor_list l;
    cr_assert_eq(fl_safetensors_read(ctx, path, &l), FL_OK, "%s", fl_ctx_message(ctx));
    const fl_tensor *t = fl_tensor_list_find(&l, name);
    cr_assert_not_null(t, "no tensor %s", name);
    if (count) *count = fl_tensor_numel(t);
    const float v = t->data[i];
    fl_tensor_list_free(&l);
    return v;
}

/* A fresh model: every fc_enc.bias is +0.1 (no ReLU channel starts dead), and its first training starts the
 * output bias (decoder.6.bias for 16 x 16 patterns, pools [2]) at the mean log(I + 1) of the training
 * patterns (computed here independently; lr 1e-9 so that Adam does not move it measurably). A second training
 * of the same model, and training a loaded model, keep the trained bias (no re-initialisation on other data). */
Test(dae, fresh_model_initialisation)
{
    char p[] = "/tmp/dae_init_XXXXXX";
    int fd = mkstemp(p);
    cr_assert(fd >= 0);
    close(fd);
    fl_ctx *ctx = new_ctx(1);
    const int64_t det = 16, n = 20, HW = det * det;
    float *data = malloc((size_t)(n * HW) * sizeof(float)), *data3 = malloc((size_t)(n * HW) * sizeof(float));
    fill(data, n * HW, 0.f, 20.f, 9);
    double mu = 0;
    for (int64_t i = 0; i < n * HW; i++) {
        mu += log1p((double)data[i]);
        data3[i] = 3.f * data[i] + 5.f;
    }
    mu /= (double)(n * HW); /* ~2.4 */
    fl_dae_config c;
    fl_dae_config_default(&c);
    c.pattern_w = c.pattern_h = (int32_t)det;
    c.width = 2;
    c.embedding = 3;
    c.batch = 4;
    c.epochs = 1;
    c.lr = 1e-9f;
    c.seed = 11;
    fl_dae *m = NULL;
    cr_assert_eq(fl_dae_create(ctx, &c, &m), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_dae_save(ctx, m, p), FL_OK, "%s", fl_ctx_message(ctx));
    int64_t ne = 0;
    tensor_value(ctx, p, "fc_enc.bias", 0, &ne);
    cr_assert_eq(ne, 3);
    for (int64_t k = 0; k < ne; k++) cr_expect_float_eq(tensor_value(ctx, p, "fc_enc.bias", k, NULL), 0.1f, 1e-7f);
    const float b0 = tensor_value(ctx, p, "decoder.6.bias", 0, NULL);
    cr_expect(fabs(b0 - mu) > 1.0, "initial output bias %g should be PyTorch's small draw, not the data mean %g", b0, mu);

    fl_stem4d *src = NULL, *src3 = NULL;
    cr_assert_eq(fl_stem4d_open_memory(ctx, data, det, det, 5, 4, &src), FL_OK);
    cr_assert_eq(fl_stem4d_open_memory(ctx, data3, det, det, 5, 4, &src3), FL_OK);
    fl_dae_report rep;
    cr_assert_eq(fl_dae_train(ctx, m, src, &rep), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_dae_save(ctx, m, p), FL_OK, "%s", fl_ctx_message(ctx));
    const float b1 = tensor_value(ctx, p, "decoder.6.bias", 0, NULL);
    cr_expect_float_eq(b1, (float)mu, 1e-5f, "output bias %g after the first training, mean log value %g", b1, mu);
    /* trained: another training (on data with a larger mean) continues from the weights as they are */
    cr_assert_eq(fl_dae_train(ctx, m, src3, &rep), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_dae_save(ctx, m, p), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_float_eq(tensor_value(ctx, p, "decoder.6.bias", 0, NULL), b1, 1e-5f, "retraining reset the output bias");
    fl_dae_free(m);
    m = NULL;
    cr_assert_eq(fl_dae_load(ctx, p, &m), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_dae_train(ctx, m, src3, &rep), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_dae_save(ctx, m, p), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_float_eq(tensor_value(ctx, p, "decoder.6.bias", 0, NULL), b1, 1e-5f, "training a loaded model reset the output bias");
    fl_dae_free(m);
    /* streamed training set (600 patterns: more than half the 1 MiB budget, so not cached): the mean comes
     * from reading the patterns, with the same result */
    {
        const int64_t nb = 600;
        float *big = malloc((size_t)(nb * HW) * sizeof(float));
        fill(big, nb * HW, 0.f, 50.f, 10);
        double mb = 0;
        for (int64_t i = 0; i < nb * HW; i++) mb += log1p((double)big[i]);
        mb /= (double)(nb * HW);
        fl_ctx *small = new_ctx(1);
        fl_ctx_set_memory_budget(small, (size_t)1 << 20);
        fl_stem4d *sb = NULL;
        cr_assert_eq(fl_stem4d_open_memory(small, big, det, det, 30, 20, &sb), FL_OK);
        m = NULL;
        cr_assert_eq(fl_dae_create(small, &c, &m), FL_OK, "%s", fl_ctx_message(small));
        cr_assert_eq(fl_dae_train(small, m, sb, &rep), FL_OK, "%s", fl_ctx_message(small));
        cr_expect_eq(rep.cached, 0, "the set should be streamed under a 1 MiB budget");
        cr_assert_eq(fl_dae_save(ctx, m, p), FL_OK, "%s", fl_ctx_message(ctx));
        const float bs = tensor_value(ctx, p, "decoder.6.bias", 0, NULL);
        cr_expect_float_eq(bs, (float)mb, 1e-5f, "streamed: output bias %g, mean log value %g", bs, mb);
        fl_dae_free(m);
        fl_stem4d_close(sb);
        free(big);
        fl_ctx_free(small);
    }
    fl_stem4d_close(src);
    fl_stem4d_close(src3);
    free(data);
    free(data3);
    unlink(p);
    fl_ctx_free(ctx);
}
