/* Family 1, the spectral autoencoder: whole-model gradients, learning, determinism, model files,
 * bad input, cancel, and the published Keras weights (when ../shared/data is present). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fl_internal.h"
#include "models/spectral_ae_internal.h"
#include "npy.h"
#include "../shared/fault_injection.h"
#include "../shared/test_util.h"

static fl_sae_config tiny_config(void)
{
    fl_sae_config c;
    fl_sae_config_default(&c);
    c.hidden = 6;
    c.enc_layers = 2;
    c.dec_layers = 2;
    c.latent = 3;
    c.dropout = 0.f;
    c.batch = 16;
    c.epochs = 3;
    c.seed = 3;
    return c;
}

/* Curves of two kinds with random amplitudes: a*sin + b*tanh-step (+ small noise). */
static float *make_curves(int64_t n, int32_t T, uint64_t seed, float *amp_a)
{
    float *x = malloc((size_t)n * T * sizeof(float));
    fl_rng r;
    fl_rng_init(&r, seed, 1);
    for (int64_t i = 0; i < n; i++) {
        float a = fl_rng_uniform(&r), b = fl_rng_uniform(&r);
        if (amp_a) amp_a[i] = a;
        for (int32_t t = 0; t < T; t++) {
            float v = -1.f + 2.f * t / (T - 1);
            x[i * T + t] = a * sinf(3.f * v) + b * tanhf(4.f * v) + 0.01f * fl_rng_normal(&r);
        }
    }
    return x;
}

static void gradcheck_model(int hard, int bn, int bidir)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_sae_config c = tiny_config();
    c.steps = 8;
    c.hidden = 3;
    c.enc_layers = 2;
    c.dec_layers = 2;
    c.latent = 2;
    c.hard_sigmoid = hard;
    c.batch_norm = bn;
    c.bidirectional = bidir;
    c.l1 = 1e-2f;
    fl_sae *m;
    cr_assert_eq(fl_sae_create(ctx, &c, &m), FL_OK, "%s", fl_ctx_message(ctx));
    const int64_t B = 5, np = fl_sae_param_count(m);
    float *x = make_curves(B, 8, 9, NULL);
    float *g = malloc((size_t)np * sizeof(float));
    double loss;
    cr_assert_eq(fl_sae_debug_loss_grad(ctx, m, x, B, 8, g, &loss), FL_OK, "%s", fl_ctx_message(ctx));
    float *p = fl_sae_debug_params(m);
    int checked = 0, bad = 0;
    for (int64_t i = 0; i < np; i += (np / 150) + 1) {
        float old = p[i];
        const float e = 1e-3f;
        double lp, lm;
        p[i] = old + e;
        fl_sae_debug_loss_grad(ctx, m, x, B, 8, NULL, &lp);
        p[i] = old - e;
        fl_sae_debug_loss_grad(ctx, m, x, B, 8, NULL, &lm);
        p[i] = old;
        double num = (lp - lm) / (2 * e);
        double den = fmax(fmax(fabs(num), fabs(g[i])), 1e-3);
        if (fabs(num - g[i]) / den > 5e-2 && fabs(num - g[i]) > 2e-4) {
            bad++;
            cr_log_warn("param %lld: analytic %g numeric %g", (long long)i, g[i], num);
        }
        checked++;
    }
    /* hard sigmoid / ReLU kinks may make a rare finite difference straddle a corner */
    cr_expect(bad <= (hard ? 2 : 0), "%d of %d parameter gradients disagree with finite differences", bad, checked);
    free(x);
    free(g);
    fl_sae_free(m);
    fl_ctx_free(ctx);
}

Test(sae, whole_model_gradient_logistic_bn_bidir) { gradcheck_model(0, 1, 1); }
Test(sae, whole_model_gradient_logistic_plain) { gradcheck_model(0, 0, 0); }
Test(sae, whole_model_gradient_hard_sigmoid) { gradcheck_model(1, 1, 1); }

Test(sae, learns_two_factor_curves)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_sae_config c = tiny_config();
    c.hidden = 16;
    c.enc_layers = 1;
    c.dec_layers = 1;
    c.latent = 4;
    c.l1 = 1e-5f;
    c.batch = 32;
    c.epochs = 40;
    c.patience = 0;
    c.lr = 3e-3f;
    const int64_t n = 512;
    const int32_t T = 16;
    float *x = make_curves(n, T, 5, NULL);
    fl_sae *m;
    cr_assert_eq(fl_sae_create(ctx, &c, &m), FL_OK);
    fl_sae_report rep;
    cr_assert_eq(fl_sae_train(ctx, m, x, n, T, &rep), FL_OK, "%s", fl_ctx_message(ctx));
    float *rec = malloc((size_t)n * T * sizeof(float));
    cr_assert_eq(fl_sae_apply(ctx, m, x, n, T, NULL, rec), FL_OK);
    double sse = 0, mean = 0, var = 0;
    for (int64_t i = 0; i < n * T; i++) mean += x[i];
    mean /= (double)(n * T);
    for (int64_t i = 0; i < n * T; i++) {
        sse += (rec[i] - x[i]) * (rec[i] - x[i]);
        var += (x[i] - mean) * (x[i] - mean);
    }
    double r2 = 1 - sse / var;
    cr_log_info("R^2 = %.4f after %d epochs (%.3f s/epoch)", r2, rep.epochs_run, rep.seconds_per_epoch);
    cr_expect(r2 > 0.9, "reconstruction R^2 %.3f should exceed 0.9", r2);
    cr_expect(rep.epochs_run == 40 && rep.best_epoch >= 0);
    free(x);
    free(rec);
    fl_sae_free(m);
    fl_ctx_free(ctx);
}

static void train_to_file(int threads, const char *path)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, threads);
    fl_sae_config c = tiny_config();
    c.dropout = 0.2f; /* dropout masks must not depend on the thread count either */
    c.batch = 70;     /* 3 chunks, the last one partial */
    float *x = make_curves(160, 12, 2, NULL);
    fl_sae *m;
    cr_assert_eq(fl_sae_create(ctx, &c, &m), FL_OK);
    cr_assert_eq(fl_sae_train(ctx, m, x, 160, 12, NULL), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_sae_save(ctx, m, path), FL_OK, "%s", fl_ctx_message(ctx));
    free(x);
    fl_sae_free(m);
    fl_ctx_free(ctx);
}

static int files_equal(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int eq = fa && fb;
    while (eq) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) eq = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return eq;
}

static void expect_same_weights(const char *a, const char *b)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_sae *ma, *mb;
    cr_assert_eq(fl_sae_load(ctx, a, &ma), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_sae_load(ctx, b, &mb), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_sae_param_count(ma), fl_sae_param_count(mb));
    cr_expect(memcmp(fl_sae_debug_params(ma), fl_sae_debug_params(mb),
                     (size_t)fl_sae_param_count(ma) * sizeof(float)) == 0,
              "weights differ bitwise");
    fl_sae_free(ma);
    fl_sae_free(mb);
    fl_ctx_free(ctx);
}

Test(sae, same_seed_gives_bit_identical_model_for_any_thread_count)
{
    char dir[] = "/tmp/fl_sae_XXXXXX";
    cr_assert(mkdtemp(dir));
    char a[300], b[300], c[300];
    snprintf(a, sizeof a, "%s/a.safetensors", dir);
    snprintf(b, sizeof b, "%s/b.safetensors", dir);
    snprintf(c, sizeof c, "%s/c.safetensors", dir);
    train_to_file(2, a);
    train_to_file(2, b);
    train_to_file(1, c);
    cr_expect(files_equal(a, b), "same seed and threads: model files differ");
    cr_expect(files_equal(a, c), "1 and 2 threads: model files differ");
    expect_same_weights(a, c);
    unlink(a), unlink(b), unlink(c), rmdir(dir);
}

Test(sae, save_load_round_trip_and_mismatch)
{
    char dir[] = "/tmp/fl_sae_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    fl_ctx *ctx = fl_ctx_new();
    fl_sae_config c = tiny_config();
    c.norm_mode = FL_NORM_PER_CURVE;
    float *x = make_curves(64, 10, 4, NULL);
    fl_sae *m, *m2;
    cr_assert_eq(fl_sae_create(ctx, &c, &m), FL_OK);
    cr_assert_eq(fl_sae_train(ctx, m, x, 64, 10, NULL), FL_OK, "%s", fl_ctx_message(ctx));
    double axis[10];
    for (int i = 0; i < 10; i++) axis[i] = -1 + 0.2 * i;
    cr_assert_eq(fl_sae_set_axis(ctx, m, axis, 10, "bias", "V"), FL_OK);
    cr_assert_eq(fl_sae_save(ctx, m, path), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_sae_load(ctx, path, &m2), FL_OK, "%s", fl_ctx_message(ctx));
    float e1[64 * 3], e2[64 * 3], r1[640], r2[640];
    cr_assert_eq(fl_sae_apply(ctx, m, x, 64, 10, e1, r1), FL_OK);
    cr_assert_eq(fl_sae_apply(ctx, m2, x, 64, 10, e2, r2), FL_OK);
    cr_expect(memcmp(e1, e2, sizeof e1) == 0 && memcmp(r1, r2, sizeof r1) == 0, "loaded model computes differently");
    cr_expect_str_eq(fl_sae_axis_unit(m2), "V");
    cr_expect(fl_sae_axis_values(m2) && fabs(fl_sae_axis_values(m2)[9] - 0.8) < 1e-12);
    /* a grid of another curve length is refused, the output untouched */
    float *x12 = make_curves(4, 12, 4, NULL);
    float emb[12] = {42.f};
    cr_expect_eq(fl_sae_apply(ctx, m2, x12, 4, 12, emb, NULL), FL_EMISMATCH);
    cr_expect(strstr(fl_ctx_message(ctx), "10 points") != NULL, "message: %s", fl_ctx_message(ctx));
    cr_expect(emb[0] == 42.f);
    /* info */
    char info[8192];
    cr_expect_eq(fl_model_info(ctx, path, 1, info, sizeof info), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect(strstr(info, "\"family\":\"spectral-ae\"") != NULL, "%s", info);
    /* corrupt files: truncated and garbage */
    FILE *f = fopen(path, "r+b");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    cr_assert(truncate(path, size / 2) == 0);
    fl_sae *bad = NULL;
    cr_expect_neq(fl_sae_load(ctx, path, &bad), FL_OK);
    cr_expect(bad == NULL);
    f = fopen(path, "wb");
    fputs("this is not a model", f);
    fclose(f);
    cr_expect_neq(fl_sae_load(ctx, path, &bad), FL_OK);
    cr_expect(strlen(fl_ctx_message(ctx)) > 10);
    free(x), free(x12);
    fl_sae_free(m), fl_sae_free(m2);
    fl_ctx_free(ctx);
    unlink(path), rmdir(dir);
}

Test(sae, bad_input_is_refused_and_changes_nothing)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_sae_config c = tiny_config();
    fl_sae *m;
    c.latent = 0;
    cr_expect_eq(fl_sae_create(ctx, &c, &m), FL_EINVAL);
    c = tiny_config();
    c.dropout = 1.f;
    cr_expect_eq(fl_sae_create(ctx, &c, &m), FL_EINVAL);
    /* the check the ImageJ dialog runs before reading its data: create's ranges, worded for the user */
    c = tiny_config();
    c.steps = 0;
    cr_expect_eq(fl_sae_check_config(ctx, &c), FL_OK, "%s", fl_ctx_message(ctx));
    c.hidden = 2049;
    cr_expect_eq(fl_sae_check_config(ctx, &c), FL_EINVAL);
    cr_expect_str_eq(fl_ctx_message(ctx), "hidden units must be 1..2048 (got 2049)");
    c = tiny_config();
    cr_assert_eq(fl_sae_create(ctx, &c, &m), FL_OK);
    float *before = malloc((size_t)fl_sae_param_count(m) * sizeof(float));
    memcpy(before, fl_sae_debug_params(m), (size_t)fl_sae_param_count(m) * sizeof(float));
    float *x = make_curves(40, 10, 1, NULL);
    x[3 * 10 + 4] = NAN;
    cr_expect_eq(fl_sae_train(ctx, m, x, 40, 10, NULL), FL_EINVAL);
    cr_expect(strstr(fl_ctx_message(ctx), "NaN") != NULL, "%s", fl_ctx_message(ctx));
    x[3 * 10 + 4] = INFINITY;
    cr_expect_eq(fl_sae_train(ctx, m, x, 40, 10, NULL), FL_EINVAL);
    cr_expect_eq(fl_sae_train(ctx, m, x, 40, 7, NULL), FL_EINVAL); /* fewer than 8 points */
    cr_expect_eq(fl_sae_train(ctx, m, x, 1, 10, NULL), FL_EINVAL);  /* one curve */
    cr_expect(memcmp(before, fl_sae_debug_params(m), (size_t)fl_sae_param_count(m) * sizeof(float)) == 0);
    cr_expect_eq(fl_sae_get_config(m)->steps, 0, "a refused run must not fix the curve length");
    /* NaN is repaired when outlier repair is on (Inf is not) */
    fl_sae_free(m);
    c.outlier_repair = 1;
    cr_assert_eq(fl_sae_create(ctx, &c, &m), FL_OK);
    x[3 * 10 + 4] = NAN;
    cr_expect_eq(fl_sae_train(ctx, m, x, 40, 10, NULL), FL_OK, "%s", fl_ctx_message(ctx));
    free(x), free(before);
    fl_sae_free(m);
    fl_ctx_free(ctx);
}

static int cancel_after(void *user, const char *stage, int64_t done, int64_t total, double loss, double val)
{
    int *calls = user;
    return strcmp(stage, "epoch") == 0 && ++*calls >= 2;
}

Test(sae, cancel_keeps_best_model)
{
    fl_ctx *ctx = fl_ctx_new();
    int calls = 0;
    fl_ctx_set_progress(ctx, cancel_after, &calls);
    fl_sae_config c = tiny_config();
    c.epochs = 50;
    float *x = make_curves(64, 10, 1, NULL);
    fl_sae *m;
    cr_assert_eq(fl_sae_create(ctx, &c, &m), FL_OK);
    fl_sae_report rep;
    cr_assert_eq(fl_sae_train(ctx, m, x, 64, 10, &rep), FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect(rep.cancelled == 1 && rep.epochs_run == 2, "cancelled=%d epochs=%d", rep.cancelled, rep.epochs_run);
    float e[64 * 3];
    fl_ctx_set_progress(ctx, NULL, NULL);
    fl_ctx *ctx2 = fl_ctx_new();
    cr_expect_eq(fl_sae_encode(ctx2, m, x, 64, 10, e), FL_OK, "%s", fl_ctx_message(ctx2));
    free(x);
    fl_sae_free(m);
    fl_ctx_free(ctx);
    fl_ctx_free(ctx2);
}

/* ---- the published Keras weights of Agar et al. --------------------------------------------- */
#define AGAR FL_SHARED_DIR "/data/agar-lstm-keras-weights/"
#define PZT FL_SHARED_DIR "/data/pzt-beps-loops/"

Test(sae, keras_import_reproduces_published_outputs, .timeout = 300)
{
    if (access(AGAR "piezoresponse/weights.15179-0.00.hdf5", R_OK) != 0 || access(PZT "piezo_norm.npy", R_OK) != 0)
        cr_skip_test("../shared/data absent: Keras golden test skipped");
    fl_ctx *ctx = fl_ctx_new();
    fl_sae *m;
    cr_assert_eq(fl_sae_import_keras(ctx, AGAR "piezoresponse/weights.15179-0.00.hdf5", 96, &m), FL_OK, "%s",
                 fl_ctx_message(ctx));
    npy_array x, eref, rref, dref;
    cr_assert(npy_read(PZT "piezo_norm.npy", &x, NULL, 0) == 0);
    cr_assert(npy_read(AGAR "reference_outputs/piezo_embedding_ref.npy", &eref, NULL, 0) == 0);
    cr_assert(npy_read(AGAR "reference_outputs/piezo_ae_recon_ref.npy", &rref, NULL, 0) == 0);
    cr_assert(npy_read(AGAR "reference_outputs/piezo_decoder_recon_ref.npy", &dref, NULL, 0) == 0);
    /* sanitizer runs (FL_QUICK) compare the first 360 curves; the normal build all 3600 */
    const int64_t n = getenv("FL_QUICK") ? 360 : 3600;
    float *emb = malloc(n * 16 * sizeof(float)), *rec = malloc(n * 96 * sizeof(float));
    cr_assert_eq(fl_sae_apply(ctx, m, x.data, n, 96, emb, rec), FL_OK, "%s", fl_ctx_message(ctx));
    double de = max_abs_diff(emb, eref.data, n * 16), dr = max_abs_diff(rec, rref.data, n * 96);
    cr_log_info("Keras piezo AE: max |emb - ref| = %.3g, max |recon - ref| = %.3g", de, dr);
    cr_expect(de < 1e-4, "embedding differs from the reference by %g", de);
    cr_expect(dr < 1e-3, "reconstruction differs from the reference by %g", dr);
    int active[16] = {0};
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < 16; k++) active[k] |= emb[i * 16 + k] > 0.f;
    for (int k = 0; k < 16 && n == 3600; k++)
        cr_expect_eq(active[k], k == 1 || k == 7 || k == 11 || k == 12 || k == 15, "channel %d activity", k);
    /* Agar's update_decoder: the retrained decoder swapped in */
    cr_assert_eq(fl_sae_import_keras_decoder(ctx, m, AGAR "piezoresponse/decoder_weights.00033723-0.0022.hdf5"),
                 FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_sae_apply(ctx, m, x.data, n, 96, NULL, rec), FL_OK);
    double dd = max_abs_diff(rec, dref.data, n * 96);
    cr_log_info("retrained decoder: max |recon - ref| = %.3g", dd);
    cr_expect(dd < 1e-3, "retrained-decoder reconstruction differs by %g", dd);
    npy_free(&x), npy_free(&eref), npy_free(&rref), npy_free(&dref);
    free(emb), free(rec);
    fl_sae_free(m);
    fl_ctx_free(ctx);
}

/* train, save, load and apply with the N-th allocation failing: always a clean FL_ENOMEM */
static int train_job(void *user)
{
    const char *path = user;
    fl_ctx *ctx = fl_ctx_new();
    fl_sae_config c = tiny_config();
    c.epochs = 1;
    float *x = make_curves(40, 10, 1, NULL);
    float emb[40 * 3];
    fl_sae *m = NULL, *m2 = NULL;
    fl_status st = fl_sae_create(ctx, &c, &m);
    if (!st) st = fl_sae_train(ctx, m, x, 40, 10, NULL);
    if (!st) st = fl_sae_save(ctx, m, path);
    if (!st) st = fl_sae_load(ctx, path, &m2);
    if (!st) st = fl_sae_apply(ctx, m2, x, 40, 10, emb, NULL);
    int code = st == FL_OK ? 0 : (st == FL_ENOMEM && strlen(fl_ctx_message(ctx)) > 0) ? 1 : 2;
    fl_sae_free(m);
    fl_sae_free(m2);
    return code;
}

Test(sae, allocation_failures_are_reported_not_crashed, .timeout = 300)
{
    char dir[] = "/tmp/fl_sae_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    int n_fail = sweep_allocation_failures(train_job, path, 2000);
    cr_expect_gt(n_fail, 20, "only %d allocation points exercised", n_fail);
    unlink(path);
    rmdir(dir);
}
