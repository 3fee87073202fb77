/* Hardening (issue 6): size bombs in TIFF files, model files of a newer format, two engine calls at
 * once on two threads. */
#include <criterion/criterion.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferrolens/diffraction_ae.h"
#include "ferrolens/ferrolens.h"
#include "ferrolens/im2spec.h"
#include "ferrolens/reshednet.h"
#include "fl_internal.h"
#include "io/safetensors.h"
#include "io/tiff.h"

/* ---- TIFF: claimed size vs file size -------------------------------------------------------------- */

static void expect_bomb_refused(const char *name, size_t budget)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/regressions/tiff/%s", FL_SOURCE_DIR, name);
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_memory_budget(ctx, budget);
    fl_image img;
    fl_status st = fl_tiff_read(ctx, path, &img);
    cr_expect_eq(st, FL_EFORMAT, "%s: status %d (%s)", name, st, fl_ctx_message(ctx));
    const char *msg = fl_ctx_message(ctx);
    cr_expect(strstr(msg, name) != NULL && strstr(msg, "truncated or damaged") != NULL &&
                  (strstr(msg, "cannot fit") != NULL || strstr(msg, "holds only") != NULL),
              "%s: message '%s'", name, msg);
    cr_expect(img.data == NULL && img.width == 0, "%s: output not left empty", name);
    fl_ctx_free(ctx);
}

Test(hardening, tiff_claiming_more_than_the_file_holds_is_refused_without_budget)
{
    /* 203 bytes, ImageJ "images=1000" of 60000 x 60000 float32 = 14.4 TB */
    expect_bomb_refused("contiguous-60000x60000x1000-f32-in-200-bytes.tif", 0);
    /* 142 bytes, one deflate page of 60000 x 60000 float32 (needs >= 13.7 kB at a ratio of 2^20) */
    expect_bomb_refused("deflate-60000x60000-f32-in-150-bytes.tif", 0);
    /* 394 bytes, three uncompressed pages of 14.4 GB each */
    expect_bomb_refused("three-pages-60000x60000-f32-uncompressed.tif", 0);
    /* and with a budget, the file-size sentence still comes first */
    expect_bomb_refused("deflate-60000x60000-f32-in-150-bytes.tif", 256u << 20);
}

Test(hardening, tiff_that_fits_still_reads_after_the_check)
{
    /* a 3-page stack written by us (3 IFDs, contiguous data) and a 1-page one: the size check walks the
     * directories and must go back to the first page */
    char dir[] = "/tmp/fl_hard_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[300];
    snprintf(path, sizeof path, "%s/s.tif", dir);
    fl_ctx *ctx = fl_ctx_new();
    for (int z = 1; z <= 3; z += 2) {
        fl_image a, b;
        fl_image_init(&a);
        cr_assert_eq(fl_image_alloc(ctx, &a, 5, 4, 1, z, 1), FL_OK);
        for (int i = 0; i < 20 * z; i++) a.data[i] = (float)(i * 0.5 - 3);
        cr_assert_eq(fl_image_set_label(ctx, &a, 0, "first"), FL_OK);
        cr_assert_eq(fl_tiff_write(ctx, path, &a), FL_OK, "%s", fl_ctx_message(ctx));
        cr_assert_eq(fl_tiff_read(ctx, path, &b), FL_OK, "%s", fl_ctx_message(ctx));
        cr_expect_eq(b.slices, z);
        cr_expect(memcmp(a.data, b.data, sizeof(float) * 20 * z) == 0, "pixels differ (z = %d)", z);
        cr_expect(b.labels && b.labels[0] && strcmp(b.labels[0], "first") == 0, "label of page 1 lost");
        fl_image_free(&a);
        fl_image_free(&b);
    }
    /* a truncated copy of a real file: cut inside the pixel data */
    FILE *f = fopen(path, "rb");
    cr_assert(f);
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char cut[320];
    snprintf(cut, sizeof cut, "%s/cut.tif", dir);
    f = fopen(cut, "wb");
    /* header + IFD 0 + part of the data: the later IFDs are gone, page 1's data is short */
    size_t keep = 0;
    for (size_t i = 0; i + 4 <= n; i++) if (!memcmp(buf + i, "loop", 4)) keep = i + 200;
    cr_assert(keep > 0 && keep < n);
    fwrite(buf, 1, keep, f);
    fclose(f);
    fl_image b;
    cr_expect_neq(fl_tiff_read(ctx, cut, &b), FL_OK);
    cr_expect(b.data == NULL);
    cr_expect(strlen(fl_ctx_message(ctx)) > 10, "no sentence: '%s'", fl_ctx_message(ctx));
    unlink(cut);
    unlink(path);
    rmdir(dir);
    fl_ctx_free(ctx);
}

/* ---- model files of a newer format ---------------------------------------------------------------- */

/* Rewrite `src` to `dst` with metadata key set to value (everything else as it was). */
static void rewrite_meta(const char *src, const char *dst, const char *key, const char *value)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    cr_assert_eq(fl_safetensors_read(ctx, src, &l), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_tensor_list_set_meta(ctx, &l, key, value), FL_OK);
    cr_assert_eq(fl_safetensors_write(ctx, dst, &l), FL_OK, "%s", fl_ctx_message(ctx));
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
}

typedef fl_status (*load_fn)(fl_ctx *ctx, const char *path, void **out);
static fl_status load_sae(fl_ctx *c, const char *p, void **o) { return fl_sae_load(c, p, (fl_sae **)o); }
static fl_status load_dae(fl_ctx *c, const char *p, void **o) { return fl_dae_load(c, p, (fl_dae **)o); }
static fl_status load_i2s(fl_ctx *c, const char *p, void **o) { return fl_i2s_load(c, p, (fl_i2s **)o); }
static fl_status load_reshed(fl_ctx *c, const char *p, void **o) { return fl_reshed_load(c, p, (fl_reshed **)o); }

/* The saved model loads; the same file with format_version 2 is refused with a sentence naming 2 and 1,
 * and with engine_version 99.0.0 (same format) it still loads. */
static void check_version_refusal(const char *saved, load_fn load, void (*freefn)(void *), const char *what)
{
    char newer[400], neweng[400];
    snprintf(newer, sizeof newer, "%s.v2", saved);
    snprintf(neweng, sizeof neweng, "%s.eng", saved);
    fl_ctx *ctx = fl_ctx_new();
    void *m = NULL;
    cr_assert_eq(load(ctx, saved, &m), FL_OK, "%s: the saved model does not load: %s", what, fl_ctx_message(ctx));
    freefn(m);
    rewrite_meta(saved, newer, "format_version", "2");
    m = NULL;
    fl_status st = load(ctx, newer, &m);
    cr_expect_eq(st, FL_EFORMAT, "%s: format 2 gave status %d (%s)", what, st, fl_ctx_message(ctx));
    cr_expect(m == NULL, "%s: a model came back", what);
    const char *msg = fl_ctx_message(ctx);
    cr_expect(strstr(msg, "version '2'") != NULL && strstr(msg, "version 1") != NULL,
              "%s: message does not name both versions: '%s'", what, msg);
    if (m) freefn(m);
    rewrite_meta(saved, neweng, "engine_version", "99.0.0");
    m = NULL;
    cr_expect_eq(load(ctx, neweng, &m), FL_OK, "%s: engine_version alone must not refuse: %s", what,
                 fl_ctx_message(ctx));
    if (m) freefn(m);
    unlink(newer);
    unlink(neweng);
    fl_ctx_free(ctx);
}

static void free_sae(void *m) { fl_sae_free(m); }
static void free_dae(void *m) { fl_dae_free(m); }
static void free_i2s(void *m) { fl_i2s_free(m); }
static void free_reshed(void *m) { fl_reshed_free(m); }

static float urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((*s >> 40) / 16777216.0);
}

static fl_sae_config sae_tiny(void)
{
    fl_sae_config c;
    fl_sae_config_default(&c);
    c.hidden = 4;
    c.enc_layers = 1;
    c.dec_layers = 1;
    c.latent = 2;
    c.dropout = 0.f;
    c.batch = 16;
    c.epochs = 2;
    c.seed = 5;
    return c;
}

static float *sae_curves(int64_t n, int T, uint64_t seed)
{
    float *x = malloc(sizeof(float) * (size_t)(n * T));
    for (int64_t i = 0; i < n; i++) {
        float a = urand(&seed) * 2 - 1, b = urand(&seed);
        for (int t = 0; t < T; t++) x[i * T + t] = a * sinf(0.6f * t) + b * tanhf(t - T / 2.f) + 0.01f * urand(&seed);
    }
    return x;
}

Test(hardening, newer_model_format_is_refused_by_every_family, .timeout = 120)
{
    char dir[] = "/tmp/fl_hardv_XXXXXX";
    cr_assert(mkdtemp(dir));
    char path[300];
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, 1);
    /* spectral autoencoder */
    {
        fl_sae_config c = sae_tiny();
        float *x = sae_curves(48, 10, 1);
        fl_sae *m = NULL;
        cr_assert_eq(fl_sae_create(ctx, &c, &m), FL_OK, "%s", fl_ctx_message(ctx));
        cr_assert_eq(fl_sae_train(ctx, m, x, 48, 10, NULL), FL_OK, "%s", fl_ctx_message(ctx));
        snprintf(path, sizeof path, "%s/sae.safetensors", dir);
        cr_assert_eq(fl_sae_save(ctx, m, path), FL_OK, "%s", fl_ctx_message(ctx));
        fl_sae_free(m);
        free(x);
        check_version_refusal(path, load_sae, free_sae, "spectral-ae");
        unlink(path);
    }
    /* diffraction autoencoder (an untrained network is a valid model file) */
    {
        fl_dae_config c;
        fl_dae_config_default(&c);
        c.pattern_w = c.pattern_h = 16;
        c.width = 2;
        c.embedding = 2;
        fl_dae *m = NULL;
        cr_assert_eq(fl_dae_create(ctx, &c, &m), FL_OK, "%s", fl_ctx_message(ctx));
        snprintf(path, sizeof path, "%s/dae.safetensors", dir);
        cr_assert_eq(fl_dae_save(ctx, m, path), FL_OK, "%s", fl_ctx_message(ctx));
        fl_dae_free(m);
        check_version_refusal(path, load_dae, free_dae, "diffraction-ae");
        unlink(path);
    }
    /* im2spec */
    {
        const int W = 20, P = 8;
        uint64_t s = 7;
        float *st = malloc(sizeof(float) * W * W), *sp = malloc(sizeof(float) * W * W * P);
        for (int i = 0; i < W * W; i++) st[i] = urand(&s);
        for (int i = 0; i < W * W * P; i++) sp[i] = urand(&s);
        fl_i2s_config c;
        fl_i2s_config_default(&c);
        c.patch = 8;
        c.latent = 2;
        c.filters = 2;
        c.epochs = 1;
        c.batch = 32;
        fl_i2s_data d = {st, W, W, sp, W, W, P, NULL};
        fl_i2s *m = NULL;
        cr_assert_eq(fl_i2s_train(ctx, &c, &d, &m), FL_OK, "%s", fl_ctx_message(ctx));
        snprintf(path, sizeof path, "%s/i2s.safetensors", dir);
        cr_assert_eq(fl_i2s_save(ctx, m, path), FL_OK, "%s", fl_ctx_message(ctx));
        fl_i2s_free(m);
        free(st);
        free(sp);
        check_version_refusal(path, load_i2s, free_i2s, "im2spec");
        unlink(path);
    }
    /* ResHedNet */
    {
        const int S = 32;
        uint64_t s = 9;
        float *img = malloc(sizeof(float) * S * S), *mask = calloc(S * S, sizeof(float));
        for (int i = 0; i < S * S; i++) img[i] = urand(&s);
        for (int y = 0; y < S; y++) mask[y * S + 10] = 1.f, img[y * S + 10] = 0.f;
        fl_reshed_pair pr = {img, S, S, mask, S, S};
        fl_reshed_config c;
        fl_reshed_config_default(&c);
        c.nb_filters = 2, c.members = 1, c.iterations = 2, c.batch = 1, c.patch = 16, c.swa_last = 1;
        fl_reshed *m = NULL;
        cr_assert_eq(fl_reshed_train(ctx, &c, &pr, 1, &m), FL_OK, "%s", fl_ctx_message(ctx));
        snprintf(path, sizeof path, "%s/reshed.safetensors", dir);
        cr_assert_eq(fl_reshed_save(ctx, m, path), FL_OK, "%s", fl_ctx_message(ctx));
        fl_reshed_free(m);
        free(img);
        free(mask);
        check_version_refusal(path, load_reshed, free_reshed, "reshednet");
        unlink(path);
    }
    rmdir(dir);
    fl_ctx_free(ctx);
}

/* ---- two engine calls at once --------------------------------------------------------------------- */

typedef struct sae_job {
    uint64_t data_seed, model_seed;
    int threads;
    fl_status st;
    char msg[512];
    float emb[64 * 2], recon[64 * 10];
} sae_job;

static void *run_sae_job(void *arg)
{
    sae_job *j = arg;
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, j->threads);
    fl_sae_config c = sae_tiny();
    c.epochs = 3;
    c.seed = j->model_seed;
    float *x = sae_curves(64, 10, j->data_seed);
    fl_sae *m = NULL;
    j->st = fl_sae_create(ctx, &c, &m);
    if (!j->st) j->st = fl_sae_train(ctx, m, x, 64, 10, NULL);
    if (!j->st) j->st = fl_sae_apply(ctx, m, x, 64, 10, j->emb, j->recon);
    snprintf(j->msg, sizeof j->msg, "%s", fl_ctx_message(ctx));
    fl_sae_free(m);
    free(x);
    fl_ctx_free(ctx);
    return NULL;
}

typedef struct reshed_job {
    int threads;
    fl_status st;
    char msg[512];
    float mean[32 * 32], var[32 * 32];
} reshed_job;

static void *run_reshed_job(void *arg)
{
    reshed_job *j = arg;
    const int S = 32;
    uint64_t s = 11;
    float img[32 * 32], mask[32 * 32] = {0};
    for (int i = 0; i < S * S; i++) img[i] = urand(&s);
    for (int y = 0; y < S; y++) mask[y * S + 12] = 1.f, img[y * S + 12] = 0.f;
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, j->threads);
    fl_reshed_pair pr = {img, S, S, mask, S, S};
    fl_reshed_config c;
    fl_reshed_config_default(&c);
    c.nb_filters = 2, c.members = 2, c.iterations = 3, c.batch = 1, c.patch = 16, c.swa_last = 1, c.seed = 4;
    fl_reshed *m = NULL;
    j->st = fl_reshed_train(ctx, &c, &pr, 1, &m);
    if (!j->st) j->st = fl_reshed_apply(ctx, m, img, S, S, j->mean, j->var);
    snprintf(j->msg, sizeof j->msg, "%s", fl_ctx_message(ctx));
    fl_reshed_free(m);
    fl_ctx_free(ctx);
    return NULL;
}

Test(hardening, two_trainings_at_once_equal_the_sequential_runs, .timeout = 120)
{
    /* sequential references: two spectral-AE trainings (other data and seeds) and a ResHedNet one */
    static sae_job ref[2] = {{1, 3, 1}, {2, 8, 2}}, par[2] = {{1, 3, 1}, {2, 8, 2}};
    static reshed_job rref = {1}, rpar = {1};
    for (int k = 0; k < 2; k++) {
        run_sae_job(&ref[k]);
        cr_assert_eq(ref[k].st, FL_OK, "%s", ref[k].msg);
    }
    run_reshed_job(&rref);
    cr_assert_eq(rref.st, FL_OK, "%s", rref.msg);
    /* the three at once, on three threads, each with its own context */
    pthread_t th[3];
    cr_assert_eq(pthread_create(&th[0], NULL, run_sae_job, &par[0]), 0);
    cr_assert_eq(pthread_create(&th[1], NULL, run_sae_job, &par[1]), 0);
    cr_assert_eq(pthread_create(&th[2], NULL, run_reshed_job, &rpar), 0);
    for (int k = 0; k < 3; k++) pthread_join(th[k], NULL);
    for (int k = 0; k < 2; k++) {
        cr_assert_eq(par[k].st, FL_OK, "%s", par[k].msg);
        cr_expect(memcmp(ref[k].emb, par[k].emb, sizeof ref[k].emb) == 0, "training %d: embeddings differ", k);
        cr_expect(memcmp(ref[k].recon, par[k].recon, sizeof ref[k].recon) == 0, "training %d: reconstructions differ",
                  k);
    }
    cr_assert_eq(rpar.st, FL_OK, "%s", rpar.msg);
    cr_expect(memcmp(rref.mean, rpar.mean, sizeof rref.mean) == 0, "ResHedNet: probabilities differ");
    cr_expect(memcmp(rref.var, rpar.var, sizeof rref.var) == 0, "ResHedNet: variances differ");
    /* and the two spectral runs really are different computations */
    cr_expect(memcmp(ref[0].emb, ref[1].emb, sizeof ref[0].emb) != 0);
}
