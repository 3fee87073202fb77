/* Family 4: ensembled ResHedNet for domain-wall segmentation. See ferrolens/reshednet.h. */
#include "models/reshednet_internal.h"

#include "io/json.h"
#include "io/model_meta.h"
#include "io/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAMILY_NAME "reshednet"
#define STREAM_BATCH 0x52455348ull /* "RESH": patch sampling and augmentation */
#define ADAM_B1 0.9f
#define ADAM_B2 0.999f
#define ADAM_EPS 1e-8f

struct fl_reshed {
    fl_reshed_config cfg;
    int32_t members;
    int64_t state_count; /* floats per member (fl_graph_get_state) */
    int64_t nparams;     /* true trainable values per member */
    float *states;       /* members x state_count */
    float *loss;         /* loss_members x loss_iters */
    int32_t loss_members, loss_iters;
    int32_t retrains;
    char *training_json;
};

void fl_reshed_config_default(fl_reshed_config *c)
{
    memset(c, 0, sizeof *c);
    c->nb_filters = 16;
    c->members = 10;
    c->iterations = 800;
    c->batch = 10;
    c->patch = 64;
    c->lr = 1e-3f;
    c->swa = 1;
    c->swa_last = 30;
    c->aug_flip = 1;
    c->aug_blur = 1;
    c->aug_gamma = 1;
    c->focal_alpha = 0.5f;
    c->focal_gamma = 2.f;
    c->seed = 0;
}

static fl_status check_config(fl_ctx *ctx, const fl_reshed_config *c)
{
    if (c->nb_filters < 1 || c->nb_filters > 512) return fl_fail(ctx, FL_EINVAL, "nb_filters must be 1..512 (got %d)", c->nb_filters);
    if (c->members < 1 || c->members > 1000) return fl_fail(ctx, FL_EINVAL, "members must be 1..1000 (got %d)", c->members);
    if (c->iterations < 1 || c->iterations > 10000000)
        return fl_fail(ctx, FL_EINVAL, "iterations must be 1..10000000 (got %d)", c->iterations);
    if (c->batch < 1 || c->batch > 4096) return fl_fail(ctx, FL_EINVAL, "batch must be 1..4096 (got %d)", c->batch);
    if (c->patch < 16 || c->patch > 4096 || c->patch % 4)
        return fl_fail(ctx, FL_EINVAL, "patch size must be a multiple of 4 in 16..4096 (got %d)", c->patch);
    if (!(c->lr > 0.f && c->lr <= 1.f)) return fl_fail(ctx, FL_EINVAL, "learning rate must be in (0, 1]");
    if ((c->swa != 0 && c->swa != 1) || c->swa_last < 1 || c->swa_last > 1000000)
        return fl_fail(ctx, FL_EINVAL, "SWA settings invalid (swa 0/1, swa_last 1..1000000)");
    if ((unsigned)c->aug_flip > 1 || (unsigned)c->aug_blur > 1 || (unsigned)c->aug_gamma > 1)
        return fl_fail(ctx, FL_EINVAL, "augmentation flags must be 0 or 1");
    if (!(c->focal_alpha > 0.f && c->focal_alpha <= 1.f) || !(c->focal_gamma >= 0.f && c->focal_gamma <= 10.f))
        return fl_fail(ctx, FL_EINVAL, "focal loss needs alpha in (0, 1] and gamma in [0, 10]");
    return FL_OK;
}

/* ---- network ------------------------------------------------------------------------------------ */

static fl_node resblk(fl_graph *g, fl_node x, const char *pre, int64_t cout)
{
    char n[96];
    snprintf(n, sizeof n, "%s.c0", pre);
    fl_node r = fl_g_conv2d(g, x, n, cout, 1, 1, 1, 0, 0, 1, 1, 1);
    snprintf(n, sizeof n, "%s.c1", pre);
    fl_node t = fl_g_conv2d(g, r, n, cout, 3, 3, 1, 1, 1, 1, 1, 1);
    snprintf(n, sizeof n, "%s.b1", pre);
    t = fl_g_leaky_relu(g, fl_g_batchnorm(g, t, n), 0.01f);
    snprintf(n, sizeof n, "%s.c2", pre);
    t = fl_g_conv2d(g, t, n, cout, 3, 3, 1, 1, 1, 1, 1, 1);
    snprintf(n, sizeof n, "%s.b2", pre);
    t = fl_g_batchnorm(g, t, n);
    fl_node s[2] = {t, r};
    return fl_g_leaky_relu(g, fl_g_add(g, 2, s), 0.01f);
}

static fl_node res_module(fl_graph *g, fl_node x, const char *pre, int nblocks, int64_t cout)
{
    char n[64];
    for (int i = 0; i < nblocks; i++) {
        snprintf(n, sizeof n, "%s.%d", pre, i);
        x = resblk(g, x, n, cout);
    }
    return x;
}

static fl_node side(fl_graph *g, fl_node x, const char *pre)
{
    char n[32];
    snprintf(n, sizeof n, "%s.0", pre);
    x = fl_g_conv2d(g, x, n, 1, 1, 1, 1, 0, 0, 1, 1, 1);
    snprintf(n, sizeof n, "%s.1", pre);
    return fl_g_batchnorm(g, x, n);
}

fl_node fl_reshed_build(fl_graph *g, int64_t F, int64_t H, int64_t W, fl_node *input)
{
    fl_node x = fl_g_input(g, 1, H, W);
    *input = x;
    fl_node o1 = res_module(g, x, "net1", 3, F);
    fl_node o2 = res_module(g, fl_g_maxpool(g, o1, 2), "net2.1", 4, 2 * F);
    fl_node o3 = res_module(g, fl_g_maxpool(g, o2, 2), "net3.1", 5, 4 * F);
    fl_node s[3];
    s[0] = side(g, o1, "s1");
    s[1] = fl_g_upsample_bilinear(g, side(g, o2, "s2"), H, W, 0);
    s[2] = fl_g_upsample_bilinear(g, side(g, o3, "s3"), H, W, 0);
    return fl_g_conv2d(g, fl_g_concat(g, 3, s), "fuse", 1, 1, 1, 1, 0, 0, 1, 1, 1);
}

/* True trainable count of one member (without the graph's alignment padding). */
static int64_t true_param_count(int64_t F)
{
    int64_t n = 0, cin = 1;
    const int blocks[3] = {3, 4, 5};
    for (int m = 0; m < 3; m++) {
        const int64_t c = F << m;
        for (int b = 0; b < blocks[m]; b++) {
            n += c * cin + c;             /* c0 */
            n += 2 * (c * c * 9 + c);     /* c1, c2 */
            n += 4 * c;                   /* b1, b2 */
            cin = c;
        }
        n += c + 1 + 2; /* side conv + BN(1) */
    }
    return n + 3 + 1; /* fuse */
}

/* ---- focal loss --------------------------------------------------------------------------------- */

double fl_reshed_focal_loss(const float *z, const float *y, int64_t n, float alpha, float gamma, float *grad)
{
    double s = 0.0;
    for (int64_t j = 0; j < n; j++) {
        const double zj = z[j];
        s += (zj > 0 ? zj : 0.0) - zj * y[j] + log1p(exp(-fabs(zj)));
    }
    const double ce = s / (double)n, pt = exp(-ce), q = 1.0 - pt;
    const double fl = alpha * pow(q, gamma) * ce;
    if (grad) {
        double d = pow(q, gamma);
        if (q > 0) d += gamma * pow(q, gamma - 1.0) * pt * ce;
        d *= alpha / (double)n;
        for (int64_t j = 0; j < n; j++) {
            const double sg = 1.0 / (1.0 + exp(-(double)z[j]));
            grad[j] = (float)(d * (sg - y[j]));
        }
    }
    return fl;
}

/* ---- data --------------------------------------------------------------------------------------- */

typedef struct train_data {
    int32_t n;
    int64_t *w, *h;
    float **img;      /* min-max normalised copies */
    uint8_t **mask;   /* 0/1 */
    double *cum;      /* cumulative crop-position counts */
} train_data;

static void data_free(train_data *d)
{
    for (int32_t i = 0; i < d->n; i++) {
        if (d->img) fl_free(d->img[i]);
        if (d->mask) fl_free(d->mask[i]);
    }
    fl_free(d->img);
    fl_free(d->mask);
    fl_free(d->w);
    fl_free(d->h);
    fl_free(d->cum);
    memset(d, 0, sizeof *d);
}

static void minmax_norm(const float *x, int64_t n, float *out)
{
    float lo = x[0], hi = x[0];
    for (int64_t i = 1; i < n; i++) {
        if (x[i] < lo) lo = x[i];
        if (x[i] > hi) hi = x[i];
    }
    const double r = (double)hi - lo;
    for (int64_t i = 0; i < n; i++) out[i] = r > 0 ? (float)(((double)x[i] - lo) / r) : 0.f;
}

static fl_status check_pairs(fl_ctx *ctx, const fl_reshed_pair *p, int32_t np, int32_t patch)
{
    if (!p || np < 1) return fl_fail(ctx, FL_EINVAL, "no training pairs (image + wall mask) given");
    for (int32_t i = 0; i < np; i++) {
        if (!p[i].image || !p[i].mask) return fl_fail(ctx, FL_EINVAL, "pair %d has no image or no mask", i + 1);
        if (p[i].width != p[i].mask_width || p[i].height != p[i].mask_height)
            return fl_fail(ctx, FL_EINVAL, "pair %d: the mask is %lldx%lld but the image is %lldx%lld: labels must be drawn on the same image size",
                           i + 1, (long long)p[i].mask_width, (long long)p[i].mask_height, (long long)p[i].width,
                           (long long)p[i].height);
        if (p[i].width < patch || p[i].height < patch || p[i].width > (1 << 20) || p[i].height > (1 << 20))
            return fl_fail(ctx, FL_EINVAL, "pair %d: the image (%lldx%lld) is smaller than the %d-pixel patches: use a smaller patch size",
                           i + 1, (long long)p[i].width, (long long)p[i].height, patch);
        const int64_t n = p[i].width * p[i].height;
        float on = 0.f;
        int64_t walls = 0;
        for (int64_t j = 0; j < n; j++) {
            const float v = p[i].image[j], m = p[i].mask[j];
            if (!isfinite(v)) return fl_fail(ctx, FL_EINVAL, "pair %d: the image holds NaN or infinity at pixel (%lld, %lld)", i + 1, (long long)(j % p[i].width), (long long)(j / p[i].width));
            if (m == 0.f) continue;
            if (!(m > 0.f) || !isfinite(m) || (on != 0.f && m != on))
                return fl_fail(ctx, FL_EINVAL, "pair %d: the mask is not binary (values 0, %g and %g): give 0 for background and one value for walls",
                               i + 1, on != 0.f ? (double)on : 0.0, (double)m);
            on = m;
            walls++;
        }
        if (!walls) return fl_fail(ctx, FL_EINVAL, "pair %d: the mask has no wall pixels (empty labels)", i + 1);
    }
    return FL_OK;
}

static size_t data_bytes(const fl_reshed_pair *p, int32_t np)
{
    size_t b = 0;
    for (int32_t i = 0; i < np; i++) b += (size_t)(p[i].width * p[i].height) * 5;
    return b;
}

static fl_status data_load(fl_ctx *ctx, const fl_reshed_pair *p, int32_t np, int32_t patch, train_data *d)
{
    memset(d, 0, sizeof *d);
    d->img = fl_calloc((size_t)np, sizeof *d->img);
    d->mask = fl_calloc((size_t)np, sizeof *d->mask);
    d->w = fl_calloc((size_t)np, sizeof *d->w);
    d->h = fl_calloc((size_t)np, sizeof *d->h);
    d->cum = fl_calloc((size_t)np, sizeof *d->cum);
    if (!d->img || !d->mask || !d->w || !d->h || !d->cum) goto oom;
    d->n = np;
    double c = 0;
    for (int32_t i = 0; i < np; i++) {
        const int64_t n = p[i].width * p[i].height;
        d->w[i] = p[i].width;
        d->h[i] = p[i].height;
        d->img[i] = fl_alloc((size_t)n * sizeof(float));
        d->mask[i] = fl_alloc((size_t)n);
        if (!d->img[i] || !d->mask[i]) goto oom;
        minmax_norm(p[i].image, n, d->img[i]);
        for (int64_t j = 0; j < n; j++) d->mask[i][j] = p[i].mask[j] != 0.f;
        c += (double)(p[i].width - patch + 1) * (double)(p[i].height - patch + 1);
        d->cum[i] = c;
    }
    return FL_OK;
oom:
    data_free(d);
    return fl_fail(ctx, FL_ENOMEM, "out of memory for the training images");
}

static int64_t rand_below(fl_rng *r, int64_t n) /* uniform 0..n-1, n < 2^32 */
{
    return (int64_t)(((uint64_t)fl_rng_u32(r) * (uint64_t)n) >> 32);
}

/* One pass of the blur below, along x or along y, edge samples repeated. */
static void blur_pass(const float *src, float *dst, int64_t P, const double *k, int rad, int along_y)
{
    const int64_t step = along_y ? P : 1;
    for (int64_t y = 0; y < P; y++)
        for (int64_t xx = 0; xx < P; xx++) {
            const int64_t c = along_y ? y : xx; /* the coordinate along the pass */
            double a = 0;
            for (int i = -rad; i <= rad; i++) {
                const int64_t j = c + i < 0 ? 0 : c + i >= P ? P - 1 : c + i;
                a += k[i + rad] * src[y * P + xx + (j - c) * step];
            }
            dst[y * P + xx] = (float)a;
        }
}

/* Gaussian blur of one P x P plane (scipy/skimage: truncate 4 sigma, mode 'nearest'). */
static void blur_plane(float *x, float *tmp, int64_t P, double sigma)
{
    int rad = (int)(4.0 * sigma + 0.5);
    if (rad < 1) return;
    if (rad > 64) rad = 64;
    double k[129], s = 0;
    for (int i = -rad; i <= rad; i++) s += k[i + rad] = exp(-0.5 * i * i / (sigma * sigma));
    for (int i = 0; i <= 2 * rad; i++) k[i] /= s;
    blur_pass(x, tmp, P, k, rad, 0);
    blur_pass(tmp, x, P, k, rad, 1);
}

/* One mini-batch: B random crops, batch min-max, flips / rotation, blur, gamma. xb and yb hold B x P x P;
 * tmp 2 x P x P. */
static void make_batch(const train_data *d, const fl_reshed_config *c, int64_t B, fl_rng *r, float *xb, float *yb,
                       float *tmp)
{
    const int64_t P = c->patch, PP = P * P;
    for (int64_t b = 0; b < B; b++) {
        const double u = (double)fl_rng_uniform(r) * d->cum[d->n - 1];
        int32_t k = 0;
        while (k < d->n - 1 && u >= d->cum[k]) k++;
        const int64_t y0 = rand_below(r, d->h[k] - P + 1), x0 = rand_below(r, d->w[k] - P + 1);
        for (int64_t y = 0; y < P; y++)
            for (int64_t x = 0; x < P; x++) {
                const int64_t s = (y0 + y) * d->w[k] + x0 + x;
                xb[b * PP + y * P + x] = d->img[k][s];
                yb[b * PP + y * P + x] = (float)d->mask[k][s];
            }
    }
    minmax_norm(xb, B * PP, xb);
    for (int64_t b = 0; b < B; b++) {
        float *x = xb + b * PP, *y = yb + b * PP;
        if (c->aug_flip) {
            const int t = (int)rand_below(r, 4) - 1; /* -1 both, 0 rows, 1 columns, 2 rot90 CCW */
            float *src[2] = {x, y};
            for (int q = 0; q < 2; q++) {
                memcpy(tmp, src[q], (size_t)PP * sizeof(float));
                for (int64_t i = 0; i < P; i++)
                    for (int64_t j = 0; j < P; j++) {
                        int64_t si, sj;
                        if (t == -1) si = P - 1 - i, sj = P - 1 - j;
                        else if (t == 0) si = P - 1 - i, sj = j;
                        else if (t == 1) si = i, sj = P - 1 - j;
                        else si = j, sj = P - 1 - i; /* np.rot90: out[i][j] = in[j][P-1-i] */
                        src[q][i * P + j] = tmp[si * P + sj];
                    }
            }
        }
        if (c->aug_blur) blur_plane(x, tmp, P, 0.05 * (double)(1 + rand_below(r, 49)));
        if (c->aug_gamma) {
            const float gm = (float)(5 + rand_below(r, 15)) / 10.f;
            for (int64_t j = 0; j < PP; j++) x[j] = x[j] > 0.f ? powf(x[j], gm) : 0.f;
        }
    }
}

/* ---- training ----------------------------------------------------------------------------------- */

typedef struct trainer {
    fl_graph *g;
    fl_node in, out;
    float *xb, *yb, *tmp;
    double *swa_sum;
    float *swa_bufs;
    int64_t state_count, np;
} trainer;

static void trainer_free(trainer *t)
{
    fl_graph_free(t->g);
    fl_free(t->xb);
    fl_free(t->yb);
    fl_free(t->tmp);
    fl_free(t->swa_sum);
    fl_free(t->swa_bufs);
    memset(t, 0, sizeof *t);
}

static fl_status trainer_new(fl_ctx *ctx, const fl_reshed_config *c, size_t extra_bytes, trainer *t)
{
    memset(t, 0, sizeof *t);
    const int64_t P = c->patch, B = c->batch;
    t->g = fl_graph_new(ctx, B, 1);
    if (!t->g) return FL_ENOMEM;
    t->out = fl_reshed_build(t->g, c->nb_filters, P, P, &t->in);
    if (t->out < 0) {
        fl_status st = fl_graph_finalize(t->g); /* reports the build error */
        trainer_free(t);
        return st ? st : FL_EINTERNAL;
    }
    fl_graph_keep(t->g, t->out);
    size_t bytes = fl_graph_memory_bytes(t->g) + extra_bytes + (size_t)(2 * B + 2) * (size_t)(P * P) * sizeof(float);
    fl_status st = fl_check_budget(ctx, bytes, "training the wall ensemble");
    if (!st) st = fl_graph_finalize(t->g);
    if (st) {
        trainer_free(t);
        return st;
    }
    t->state_count = fl_graph_state_count(t->g);
    t->np = fl_graph_param_count(t->g);
    t->xb = fl_alloc((size_t)(B * P * P) * sizeof(float));
    t->yb = fl_alloc((size_t)(B * P * P) * sizeof(float));
    t->tmp = fl_alloc((size_t)(2 * P * P) * sizeof(float));
    t->swa_sum = fl_alloc((size_t)t->np * sizeof(double));
    t->swa_bufs = fl_alloc((size_t)(t->state_count - t->np + 1) * sizeof(float));
    if (!t->xb || !t->yb || !t->tmp || !t->swa_sum || !t->swa_bufs) {
        trainer_free(t);
        return fl_fail(ctx, FL_ENOMEM, "out of memory for training");
    }
    return FL_OK;
}

/* Trains the graph's current state for `iters` iterations; on success writes the (SWA) state to
 * state_out and the loss per iteration to loss_out. Returns FL_ECANCELLED when asked to stop. */
static fl_status train_member(fl_ctx *ctx, const fl_reshed_config *c, trainer *t, const train_data *d, fl_rng *r,
                              int32_t iters, int64_t done0, int64_t total, int32_t member, float *loss_out,
                              float *state_out)
{
    const int64_t B = c->batch, n = B * c->patch * c->patch, np = t->np;
    const int32_t swa_n = c->swa ? (c->swa_last < iters ? c->swa_last : iters) : 0;
    fl_graph_reset_optimizer(t->g);
    fl_graph_set_batch(t->g, B);
    for (int32_t it = 0; it < iters; it++) {
        make_batch(d, c, B, r, t->xb, t->yb, t->tmp);
        memcpy(fl_graph_data(t->g, t->in), t->xb, (size_t)n * sizeof(float));
        fl_graph_forward(t->g, 1);
        const double L = fl_reshed_focal_loss(fl_graph_data(t->g, t->out), t->yb, n, c->focal_alpha, c->focal_gamma,
                                              fl_graph_grad(t->g, t->out));
        if (!isfinite(L)) return fl_fail(ctx, FL_EINVAL, "training diverged (loss is not finite at iteration %d of member %d): lower the learning rate", it + 1, member + 1);
        fl_graph_zero_grads(t->g);
        fl_graph_backward(t->g, t->out);
        fl_graph_adam_step(t->g, c->lr, ADAM_B1, ADAM_B2, ADAM_EPS, it + 1);
        loss_out[it] = (float)L;
        const int32_t k = it - (iters - swa_n); /* SWA snapshot index */
        if (swa_n && k >= 0) {
            const float *p = fl_graph_params(t->g);
            if (k == 0) {
                for (int64_t j = 0; j < np; j++) t->swa_sum[j] = p[j];
                fl_graph_get_state(t->g, state_out);
                memcpy(t->swa_bufs, state_out + np, (size_t)(t->state_count - np) * sizeof(float));
            } else {
                for (int64_t j = 0; j < np; j++) t->swa_sum[j] += p[j];
            }
        }
        fl_status st = fl_progress(ctx, "iteration", done0 + it + 1, total, L, (double)member);
        if (st) return st;
    }
    if (swa_n) {
        for (int64_t j = 0; j < np; j++) state_out[j] = (float)(t->swa_sum[j] / swa_n);
        memcpy(state_out + np, t->swa_bufs, (size_t)(t->state_count - np) * sizeof(float));
    } else {
        fl_graph_get_state(t->g, state_out);
    }
    return FL_OK;
}

/* (no timings: the same seed must give the same file) */
static fl_status record_training(fl_ctx *ctx, fl_reshed *m, const char *kind, int32_t iters)
{
    fl_strbuf b;
    fl_strbuf_init(&b);
    fl_strbuf_printf_c(&b, "{\"last\":\"%s\",\"iterations\":%d,\"members\":%d,\"retrains\":%d,\"final_loss\":[",
                       kind, iters, m->members, m->retrains);
    for (int32_t k = 0; k < m->loss_members; k++) {
        double s = 0;
        int cnt = 0;
        for (int32_t i = iters - 10 < 0 ? 0 : iters - 10; i < iters; i++) {
            const float v = m->loss[(int64_t)k * m->loss_iters + i];
            if (isfinite(v)) s += v, cnt++;
        }
        fl_strbuf_printf_c(&b, "%s%.6g", k ? "," : "", cnt ? s / cnt : 0.0);
    }
    fl_strbuf_printf(&b, "]}");
    if (b.failed) {
        fl_strbuf_free(&b);
        return fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    free(m->training_json);
    m->training_json = strdup(b.data);
    fl_strbuf_free(&b);
    return FL_OK;
}

static fl_reshed *reshed_alloc(fl_ctx *ctx, const fl_reshed_config *c, int32_t members, int64_t state_count)
{
    fl_reshed *m = calloc(1, sizeof *m);
    size_t n;
    if (m && fl_mul_size((size_t)members, (size_t)state_count, &n)) m->states = fl_calloc(n, sizeof(float));
    if (!m || !m->states) {
        if (m) free(m);
        fl_fail(ctx, FL_ENOMEM, "out of memory for the ensemble");
        return NULL;
    }
    m->cfg = *c;
    m->members = members;
    m->state_count = state_count;
    m->nparams = true_param_count(c->nb_filters);
    return m;
}

fl_status fl_reshed_train(fl_ctx *ctx, const fl_reshed_config *cfg, const fl_reshed_pair *pairs, int32_t npairs,
                          fl_reshed **out)
{
    if (!cfg || !out) return fl_fail(ctx, FL_EINVAL, "train: no configuration or output");
    *out = NULL;
    fl_status st = check_config(ctx, cfg);
    if (!st) st = check_pairs(ctx, pairs, npairs, cfg->patch);
    if (st) return st;
    const fl_reshed_config c = *cfg;
    trainer t;
    st = trainer_new(ctx, &c, data_bytes(pairs, npairs), &t);
    if (st) return st;
    train_data d;
    st = data_load(ctx, pairs, npairs, c.patch, &d);
    fl_reshed *m = st ? NULL : reshed_alloc(ctx, &c, c.members, t.state_count);
    float *loss = m ? fl_alloc((size_t)c.members * (size_t)c.iterations * sizeof(float)) : NULL;
    if (!st && !loss) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    int32_t done = 0;
    if (!st) {
        for (int64_t j = 0; j < (int64_t)c.members * c.iterations; j++) loss[j] = NAN;
        m->loss = loss;
        m->loss_members = c.members;
        m->loss_iters = c.iterations;
        const int64_t total = (int64_t)c.members * c.iterations;
        for (int32_t i = 0; i < c.members && !st; i++) {
            fl_graph_init_params(t.g, c.seed + (uint64_t)i, FL_INIT_XAVIER);
            fl_rng r;
            fl_rng_init(&r, c.seed + (uint64_t)i, STREAM_BATCH);
            st = train_member(ctx, &c, &t, &d, &r, c.iterations, (int64_t)i * c.iterations, total, i,
                              loss + (int64_t)i * c.iterations, m->states + (int64_t)i * t.state_count);
            if (!st) {
                done = i + 1;
                st = fl_progress(ctx, "member", i + 1, c.members, loss[(int64_t)i * c.iterations + c.iterations - 1], (double)i);
            }
        }
    }
    trainer_free(&t);
    data_free(&d);
    if (st == FL_ECANCELLED && done > 0) {
        m->members = done;
        m->loss_members = done;
        fl_status s2 = record_training(ctx, m, "train (cancelled)", c.iterations);
        if (s2) {
            fl_reshed_free(m);
            return s2;
        }
        *out = m;
        return fl_fail(ctx, FL_ECANCELLED, "training cancelled: the ensemble keeps the %d finished member%s", done, done > 1 ? "s" : "");
    }
    if (!st) st = record_training(ctx, m, "train", c.iterations);
    if (st) {
        fl_reshed_free(m);
        return st;
    }
    *out = m;
    return FL_OK;
}

fl_status fl_reshed_retrain(fl_ctx *ctx, fl_reshed *m, const fl_reshed_pair *pairs, int32_t npairs, int32_t iterations)
{
    if (!m) return fl_fail(ctx, FL_EINVAL, "retrain: no ensemble");
    if (iterations < 1 || iterations > 10000000) return fl_fail(ctx, FL_EINVAL, "iterations must be 1..10000000 (got %d)", iterations);
    fl_status st = check_pairs(ctx, pairs, npairs, m->cfg.patch);
    if (st) return st;
    const fl_reshed_config c = m->cfg;
    trainer t;
    st = trainer_new(ctx, &c, data_bytes(pairs, npairs) + (size_t)m->members * (size_t)m->state_count * sizeof(float), &t);
    if (st) return st;
    if (t.state_count != m->state_count) {
        trainer_free(&t);
        return fl_fail(ctx, FL_EINTERNAL, "ensemble state size does not match its network");
    }
    train_data d;
    st = data_load(ctx, pairs, npairs, c.patch, &d);
    size_t n = (size_t)m->members * (size_t)m->state_count;
    float *ns = st ? NULL : fl_alloc(n * sizeof(float));
    float *loss = st ? NULL : fl_alloc((size_t)m->members * (size_t)iterations * sizeof(float));
    if (!st && (!ns || !loss)) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    const int64_t total = (int64_t)m->members * iterations;
    for (int32_t i = 0; !st && i < m->members; i++) {
        fl_graph_set_state(t.g, m->states + (int64_t)i * m->state_count);
        fl_rng r;
        fl_rng_init(&r, c.seed + (uint64_t)i + 1000u * (uint64_t)(m->retrains + 1), STREAM_BATCH);
        st = train_member(ctx, &c, &t, &d, &r, iterations, (int64_t)i * iterations, total, i,
                          loss + (int64_t)i * iterations, ns + (int64_t)i * m->state_count);
        if (!st) st = fl_progress(ctx, "member", i + 1, m->members, loss[(int64_t)i * iterations + iterations - 1], (double)i);
    }
    trainer_free(&t);
    data_free(&d);
    if (st) {
        fl_free(ns);
        fl_free(loss);
        return st;
    }
    fl_free(m->states);
    m->states = ns;
    fl_free(m->loss);
    m->loss = loss;
    m->loss_members = m->members;
    m->loss_iters = iterations;
    m->retrains++;
    return record_training(ctx, m, "retrain", iterations);
}

void fl_reshed_free(fl_reshed *m)
{
    if (!m) return;
    fl_free(m->states);
    fl_free(m->loss);
    free(m->training_json);
    free(m);
}

const fl_reshed_config *fl_reshed_get_config(const fl_reshed *m) { return &m->cfg; }
int32_t fl_reshed_members(const fl_reshed *m) { return m->members; }
int64_t fl_reshed_param_count(const fl_reshed *m) { return m->nparams; }
const float *fl_reshed_member_state(const fl_reshed *m, int32_t k) { return m->states + (int64_t)k * m->state_count; }

const float *fl_reshed_loss_history(const fl_reshed *m, int32_t *members, int32_t *iterations)
{
    if (members) *members = m->loss ? m->loss_members : 0;
    if (iterations) *iterations = m->loss ? m->loss_iters : 0;
    return m->loss;
}

/* ---- inference ---------------------------------------------------------------------------------- */

typedef struct infer {
    fl_graph *g;
    fl_node in, out;
    int64_t H, W;
} infer;

static void infer_free(infer *f)
{
    fl_graph_free(f->g);
    memset(f, 0, sizeof *f);
}

static fl_status infer_new(fl_ctx *ctx, const fl_reshed *m, int64_t H, int64_t W, size_t extra, infer *f)
{
    memset(f, 0, sizeof *f);
    f->H = H;
    f->W = W;
    f->g = fl_graph_new(ctx, 1, 0);
    if (!f->g) return FL_ENOMEM;
    f->out = fl_reshed_build(f->g, m->cfg.nb_filters, H, W, &f->in);
    fl_status st = FL_OK;
    if (f->out >= 0) {
        fl_graph_keep(f->g, f->out);
        st = fl_check_budget(ctx, fl_graph_memory_bytes(f->g) + extra, "the wall ensemble prediction");
    }
    if (!st) st = fl_graph_finalize(f->g);
    if (!st && fl_graph_state_count(f->g) != m->state_count) st = fl_fail(ctx, FL_EINTERNAL, "ensemble state size does not match its network");
    if (st) infer_free(f);
    return st;
}

/* Member k's logits z[0:n] into the running mean and M2 of the probabilities (Welford, member order, so
 * every way of computing the maps gives the same bits). */
static void welford_add(int32_t k, const float *z, int64_t n, double *mean, double *m2)
{
    for (int64_t j = 0; j < n; j++) {
        const double p = 1.0 / (1.0 + exp(-(double)z[j]));
        if (k == 0) {
            mean[j] = p;
            m2[j] = 0;
        } else {
            const double dlt = p - mean[j];
            mean[j] += dlt / (k + 1);
            m2[j] += dlt * (p - mean[j]);
        }
    }
}

/* Runs every member on the normalised input x (H x W): running mean and M2 (Welford, member order) in
 * acc (2 x H x W doubles), or member probabilities in probs (members x H x W) when probs != NULL. */
static void infer_run(const fl_reshed *m, infer *f, const float *x, double *acc, float *probs)
{
    const int64_t n = f->H * f->W;
    memcpy(fl_graph_data(f->g, f->in), x, (size_t)n * sizeof(float));
    for (int32_t k = 0; k < m->members; k++) {
        fl_graph_set_state(f->g, m->states + (int64_t)k * m->state_count);
        fl_graph_forward(f->g, 0);
        const float *z = fl_graph_data(f->g, f->out);
        if (probs)
            for (int64_t j = 0; j < n; j++) probs[(int64_t)k * n + j] = (float)(1.0 / (1.0 + exp(-(double)z[j])));
        if (acc) welford_add(k, z, n, acc, acc + n);
    }
}

static fl_status check_image(fl_ctx *ctx, const float *img, int64_t w, int64_t h)
{
    if (!img) return fl_fail(ctx, FL_EINVAL, "no image");
    if (w < 4 || h < 4 || w > (1 << 20) || h > (1 << 20))
        return fl_fail(ctx, FL_EINVAL, "image of %lldx%lld pixels: the network needs at least 4x4", (long long)w, (long long)h);
    for (int64_t j = 0; j < w * h; j++)
        if (!isfinite(img[j])) return fl_fail(ctx, FL_EINVAL, "the image holds NaN or infinity at pixel (%lld, %lld)", (long long)(j % w), (long long)(j / w));
    return FL_OK;
}

/* Full prediction with the range [lo, hi] (lo >= hi: the image's own min/max). */
static fl_status apply_range(fl_ctx *ctx, const fl_reshed *m, const float *image, int64_t w, int64_t h, double lo,
                             double hi, float *mean, float *var, float *probs)
{
    fl_status st = check_image(ctx, image, w, h);
    if (st) return st;
    const int64_t n = w * h;
    infer f;
    st = infer_new(ctx, m, h, w, (size_t)n * (sizeof(float) + 2 * sizeof(double)), &f);
    if (st) return st;
    float *x = fl_alloc((size_t)n * sizeof(float));
    double *acc = probs ? NULL : fl_alloc((size_t)n * 2 * sizeof(double));
    if (!x || (!probs && !acc)) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for the prediction");
    } else {
        if (lo < hi) {
            for (int64_t j = 0; j < n; j++) x[j] = (float)(((double)image[j] - lo) / (hi - lo));
        } else {
            minmax_norm(image, n, x);
        }
        infer_run(m, &f, x, acc, probs);
        if (acc)
            for (int64_t j = 0; j < n; j++) {
                if (mean) mean[j] = (float)acc[j];
                if (var) var[j] = (float)(acc[n + j] / m->members);
            }
    }
    fl_free(x);
    fl_free(acc);
    infer_free(&f);
    return st;
}

fl_status fl_reshed_apply_fixed_range(fl_ctx *ctx, const fl_reshed *m, const float *image, int64_t w, int64_t h,
                                      double lo, double hi, float *mean)
{
    return apply_range(ctx, m, image, w, h, lo, hi, mean, NULL, NULL);
}

fl_status fl_reshed_apply(fl_ctx *ctx, const fl_reshed *m, const float *image, int64_t width, int64_t height,
                          float *mean, float *variance)
{
    if (!m) return fl_fail(ctx, FL_EINVAL, "apply: no ensemble");
    return apply_range(ctx, m, image, width, height, 0, 0, mean, variance, NULL);
}

fl_status fl_reshed_apply_members(fl_ctx *ctx, const fl_reshed *m, const float *image, int64_t width, int64_t height,
                                  float *probs)
{
    if (!m || !probs) return fl_fail(ctx, FL_EINVAL, "apply: no ensemble or no output");
    return apply_range(ctx, m, image, width, height, 0, 0, NULL, NULL, probs);
}

/* ---- live mode ----------------------------------------------------------------------------------
 * Preferred: row updates. Every member keeps all its activations for the whole image (rows not acquired
 * yet are 0), and a new line recomputes in every layer only the rows it reaches that are needed for the
 * rows acquired so far (fl_graph_forward_rows). The maps then always equal a full prediction on the
 * acquired rows with zeros below (to float rounding: the Winograd layers' tiles). When those activations
 * do not fit (the memory budget, or without one half the memory available now, at least
 * LIVE_CACHE_MIN), a band of B input rows is run through every member instead (see reshednet.h). A
 * 64-filter ensemble of 10 members keeps about 9.5 GB for a 256 x 256 image. */
#define LIVE_CACHE_MIN ((size_t)4 << 30)

struct fl_reshed_live {
    const fl_reshed *m;
    int64_t W, H, B, rows;
    double lo, hi;      /* fixed range when lo < hi */
    int fixed;
    double rlo, rhi;    /* running range */
    int64_t version;    /* bumped when the running range changes */
    int64_t *row_version;
    float *raw, *mean, *var, *x;
    double *acc;
    infer f;            /* band mode */
    infer *mf;          /* row mode: one full-image graph per member (NULL in band mode) */
    int64_t seen_version;
    int32_t refreshes;
};

void fl_reshed_live_free(fl_reshed_live *lv)
{
    if (!lv) return;
    infer_free(&lv->f);
    if (lv->mf)
        for (int32_t k = 0; k < lv->m->members; k++) infer_free(&lv->mf[k]);
    free(lv->mf);
    fl_free(lv->row_version);
    fl_free(lv->raw);
    fl_free(lv->mean);
    fl_free(lv->var);
    fl_free(lv->x);
    fl_free(lv->acc);
    free(lv);
}

/* Row mode: one graph per member over the whole (zero) image, activations kept. Returns FL_OK with
 * lv->mf == NULL when they would not fit (band mode then). */
static fl_status live_rows_new(fl_ctx *ctx, fl_reshed_live *lv, size_t other_bytes)
{
    const fl_reshed *m = lv->m;
    fl_graph *probe = fl_graph_new(ctx, 1, 0);
    if (!probe) return fl_fail(ctx, FL_ENOMEM, "out of memory");
    fl_node in;
    fl_reshed_build(probe, m->cfg.nb_filters, lv->H, lv->W, &in);
    fl_graph_keep_all(probe);
    const size_t per = fl_graph_memory_bytes(probe);
    fl_graph_free(probe);
    size_t budget = ctx->memory_budget;
    if (!budget) {
        const size_t half = fl_memory_available() / 2;
        budget = half > LIVE_CACHE_MIN ? half : LIVE_CACHE_MIN;
    }
    if ((double)per * m->members + (double)other_bytes > (double)budget) return FL_OK;
    lv->mf = calloc((size_t)m->members, sizeof *lv->mf);
    if (!lv->mf) return fl_fail(ctx, FL_ENOMEM, "out of memory");
    for (int32_t k = 0; k < m->members; k++) {
        infer *f = &lv->mf[k];
        f->H = lv->H;
        f->W = lv->W;
        if (!(f->g = fl_graph_new(ctx, 1, 0))) return fl_fail(ctx, FL_ENOMEM, "out of memory");
        f->out = fl_reshed_build(f->g, m->cfg.nb_filters, lv->H, lv->W, &f->in);
        fl_graph_keep_all(f->g);
        fl_status st = fl_graph_finalize(f->g);
        if (st) return st;
        fl_graph_set_state(f->g, m->states + (int64_t)k * m->state_count);
        memset(fl_graph_data(f->g, f->in), 0, (size_t)(lv->H * lv->W) * sizeof(float));
        fl_graph_forward(f->g, 0);
    }
    return FL_OK;
}

fl_status fl_reshed_live_begin(fl_ctx *ctx, const fl_reshed *m, int64_t width, int64_t height, double lo, double hi,
                               fl_reshed_live **out)
{
    return fl_reshed_live_begin_mode(ctx, m, width, height, lo, hi, 1, out);
}

fl_status fl_reshed_live_begin_mode(fl_ctx *ctx, const fl_reshed *m, int64_t width, int64_t height, double lo,
                                    double hi, int rows, fl_reshed_live **out)
{
    if (!m || !out) return fl_fail(ctx, FL_EINVAL, "live: no ensemble or output");
    *out = NULL;
    if (width < 4 || height < 4 || width > (1 << 20) || height > (1 << 20))
        return fl_fail(ctx, FL_EINVAL, "live image of %lldx%lld pixels: the network needs at least 4x4", (long long)width, (long long)height);
    if (!isfinite(lo) || !isfinite(hi)) return fl_fail(ctx, FL_EINVAL, "live: the normalisation range must be finite");
    fl_reshed_live *lv = calloc(1, sizeof *lv);
    if (!lv) return fl_fail(ctx, FL_ENOMEM, "out of memory");
    lv->m = m;
    lv->W = width;
    lv->H = height;
    int64_t B = ((2 * FL_RESHED_RF_RADIUS + 5 + 3) / 4) * 4;
    lv->B = B < height ? B : height;
    lv->fixed = lo < hi;
    lv->lo = lo;
    lv->hi = hi;
    const int64_t n = width * height, nb = width * lv->B;
    size_t extra = (size_t)n * (3 * sizeof(float) + sizeof(int64_t)) + (size_t)nb * (sizeof(float) + 2 * sizeof(double));
    fl_status st = rows ? live_rows_new(ctx, lv, extra + (size_t)n * 2 * sizeof(double)) : FL_OK;
    if (!st && !lv->mf) st = infer_new(ctx, m, lv->B, width, extra, &lv->f);
    if (st) {
        fl_reshed_live_free(lv);
        return st;
    }
    const int64_t na = lv->mf ? n : nb;
    lv->row_version = fl_calloc((size_t)height, sizeof(int64_t));
    lv->raw = fl_calloc((size_t)n, sizeof(float));
    lv->mean = fl_alloc((size_t)n * sizeof(float));
    lv->var = fl_alloc((size_t)n * sizeof(float));
    lv->x = lv->mf ? NULL : fl_alloc((size_t)nb * sizeof(float)); /* band input (row mode: the graphs' own) */
    lv->acc = fl_alloc((size_t)na * 2 * sizeof(double));
    if (!lv->row_version || !lv->raw || !lv->mean || !lv->var || (!lv->mf && !lv->x) || !lv->acc) {
        fl_reshed_live_free(lv);
        return fl_fail(ctx, FL_ENOMEM, "out of memory for the live maps");
    }
    for (int64_t j = 0; j < n; j++) lv->mean[j] = lv->var[j] = NAN;
    *out = lv;
    return FL_OK;
}

/* Row i of the raw image normalised into dst (0 for rows not acquired yet). */
static void live_norm_row(const fl_reshed_live *lv, int64_t row, float *dst)
{
    const double lo = lv->fixed ? lv->lo : lv->rlo, hi = lv->fixed ? lv->hi : lv->rhi;
    if (row >= lv->rows) {
        memset(dst, 0, (size_t)lv->W * sizeof(float));
        return;
    }
    const float *src = lv->raw + row * lv->W;
    for (int64_t j = 0; j < lv->W; j++) dst[j] = hi > lo ? (float)(((double)src[j] - lo) / (hi - lo)) : 0.f;
}

/* The maps of rows [w0, w1] from the accumulator whose row 0 is image row s. */
static void live_store(fl_reshed_live *lv, const double *acc, int64_t na, int64_t s, int64_t w0, int64_t w1)
{
    const int64_t W = lv->W;
    for (int64_t row = w0; row <= w1; row++) {
        const int64_t i = row - s;
        for (int64_t j = 0; j < W; j++) {
            lv->mean[row * W + j] = (float)acc[i * W + j];
            lv->var[row * W + j] = (float)(acc[na + i * W + j] / lv->m->members);
        }
        lv->row_version[row] = lv->version;
    }
}

static void live_band(fl_reshed_live *lv, int64_t s, int64_t w0, int64_t w1)
{
    for (int64_t i = 0; i < lv->B; i++) live_norm_row(lv, s + i, lv->x + i * lv->W);
    infer_run(lv->m, &lv->f, lv->x, lv->acc, NULL);
    live_store(lv, lv->acc, lv->W * lv->B, s, w0, w1);
}

/* Row mode after line r: input rows [c0, r] changed (all acquired rows when the running range moved). */
static fl_status live_rows_update(fl_reshed_live *lv, int64_t c0, int64_t r)
{
    const fl_reshed *m = lv->m;
    const int64_t W = lv->W, n = W * lv->H;
    int64_t o0 = INT64_MAX, o1 = 0;
    for (int32_t k = 0; k < m->members; k++) {
        infer *f = &lv->mf[k];
        float *x = fl_graph_data(f->g, f->in);
        for (int64_t row = c0; row <= r; row++) live_norm_row(lv, row, x + row * W);
        int64_t a, b;
        fl_status st = fl_graph_forward_rows(f->g, f->in, c0, r + 1, f->out, r + 1, &a, &b);
        if (st) return st;
        if (a < b) o0 = a < o0 ? a : o0, o1 = b > o1 ? b : o1;
    }
    if (o0 >= o1) return FL_OK;
    /* the changed rows of every member into the maps, in member order */
    for (int32_t k = 0; k < m->members; k++)
        welford_add(k, fl_graph_data(lv->mf[k].g, lv->mf[k].out) + o0 * W, (o1 - o0) * W, lv->acc, lv->acc + n);
    live_store(lv, lv->acc, n, o0, o0, o1 - 1);
    return FL_OK;
}

fl_status fl_reshed_live_add_line(fl_ctx *ctx, fl_reshed_live *lv, const float *line)
{
    if (!lv || !line) return fl_fail(ctx, FL_EINVAL, "live: no state or no line");
    if (lv->rows >= lv->H) return fl_fail(ctx, FL_EINVAL, "live: all %lld lines were already given", (long long)lv->H);
    const int64_t W = lv->W, r = lv->rows;
    for (int64_t j = 0; j < W; j++)
        if (!isfinite(line[j])) return fl_fail(ctx, FL_EINVAL, "live: line %lld holds NaN or infinity", (long long)r + 1);
    memcpy(lv->raw + r * W, line, (size_t)W * sizeof(float));
    lv->rows++;
    double lo = line[0], hi = line[0];
    for (int64_t j = 1; j < W; j++) {
        if (line[j] < lo) lo = line[j];
        if (line[j] > hi) hi = line[j];
    }
    if (r == 0 || lo < lv->rlo || hi > lv->rhi) {
        lv->rlo = r == 0 || lo < lv->rlo ? lo : lv->rlo;
        lv->rhi = r == 0 || hi > lv->rhi ? hi : lv->rhi;
        if (!lv->fixed) lv->version++;
    }
    if (lv->mf) {
        /* a new running range renormalises every acquired row */
        const int64_t c0 = lv->version != lv->seen_version ? 0 : r;
        lv->seen_version = lv->version;
        fl_status st = live_rows_update(lv, c0, r);
        if (st) return st;
        return fl_progress(ctx, "line", lv->rows, lv->H, NAN, NAN);
    }
    const int64_t R = FL_RESHED_RF_RADIUS;
    int64_t s = r - 2 * R;
    s = s < 0 ? 0 : (s / 4) * 4;
    if (s > lv->H - lv->B) s = lv->H - lv->B; /* H - B is a multiple of 4 when H is */
    if (s < 0) s = 0;
    int64_t w0 = r - R < 0 ? 0 : r - R, w1 = r == lv->H - 1 ? lv->H - 1 : r;
    if (w1 > s + lv->B - 1) w1 = s + lv->B - 1;
    if (w0 < s) w0 = s;
    live_band(lv, s, w0, w1);
    return fl_progress(ctx, "line", lv->rows, lv->H, NAN, NAN);
}

fl_status fl_reshed_live_finish(fl_ctx *ctx, fl_reshed_live *lv)
{
    if (!lv) return fl_fail(ctx, FL_EINVAL, "live: no state");
    if (lv->rows < lv->H)
        return fl_fail(ctx, FL_EINVAL, "live: only %lld of %lld lines were given", (long long)lv->rows, (long long)lv->H);
    if (lv->mf) return FL_OK; /* row mode: every row is final after the last line */
    int stale = lv->H % 4 != 0;
    for (int64_t i = 0; i < lv->H && !stale; i++) stale = lv->row_version[i] != lv->version;
    if (!stale) return FL_OK;
    const double lo = lv->fixed ? lv->lo : lv->rlo, hi = lv->fixed ? lv->hi : lv->rhi;
    fl_status st = apply_range(ctx, lv->m, lv->raw, lv->W, lv->H, lo, hi > lo ? hi : lo + 1.0, lv->mean, lv->var, NULL);
    if (!st) {
        lv->refreshes++;
        for (int64_t i = 0; i < lv->H; i++) lv->row_version[i] = lv->version;
    }
    return st;
}

int fl_reshed_live_incremental(const fl_reshed_live *lv) { return lv && lv->mf != NULL; }

const float *fl_reshed_live_mean(const fl_reshed_live *lv) { return lv->mean; }
const float *fl_reshed_live_variance(const fl_reshed_live *lv) { return lv->var; }
int64_t fl_reshed_live_rows(const fl_reshed_live *lv) { return lv->rows; }
int64_t fl_reshed_live_band_rows(const fl_reshed_live *lv) { return lv->B; }
int32_t fl_reshed_live_full_refreshes(const fl_reshed_live *lv) { return lv->refreshes; }

/* ---- files -------------------------------------------------------------------------------------- */

static void config_json(fl_strbuf *b, const fl_reshed_config *c)
{
    fl_strbuf_printf_c(b,
                       "{\"nb_filters\":%d,\"layers\":[3,4,5],\"members\":%d,\"iterations\":%d,\"batch\":%d,\"patch\":%d,"
                       "\"lr\":%.9g,\"swa\":%d,\"swa_last\":%d,\"aug_flip\":%d,\"aug_blur\":%d,\"aug_gamma\":%d,"
                       "\"focal_alpha\":%.9g,\"focal_gamma\":%.9g,\"seed\":%llu}",
                       c->nb_filters, c->members, c->iterations, c->batch, c->patch, (double)c->lr, c->swa, c->swa_last,
                       c->aug_flip, c->aug_blur, c->aug_gamma, (double)c->focal_alpha, (double)c->focal_gamma,
                       (unsigned long long)c->seed);
}

static fl_status config_from_json(fl_ctx *ctx, const char *text, fl_reshed_config *c)
{
    if (!text) return fl_fail(ctx, FL_EFORMAT, "model file has no configuration");
    fl_json *j = NULL;
    if (fl_json_parse(ctx, text, strlen(text), &j)) return fl_fail(ctx, FL_EFORMAT, "model configuration is not valid JSON");
    fl_reshed_config_default(c);
    const fl_model_field f[] = {
        {"nb_filters", 1, &c->nb_filters}, {"members", 1, &c->members}, {"iterations", 1, &c->iterations},
        {"batch", 1, &c->batch}, {"patch", 1, &c->patch}, {"swa", 1, &c->swa}, {"swa_last", 1, &c->swa_last},
        {"aug_flip", 1, &c->aug_flip}, {"aug_blur", 1, &c->aug_blur}, {"aug_gamma", 1, &c->aug_gamma},
        {"lr", 0, &c->lr}, {"focal_alpha", 0, &c->focal_alpha}, {"focal_gamma", 0, &c->focal_gamma}
    };
    fl_status st = fl_model_meta_read_fields(ctx, j, f, sizeof f / sizeof f[0]);
    if (!st) st = fl_model_meta_read_seed(ctx, j, &c->seed);
    if (!st) {
        const fl_json *L = fl_json_get(j, "layers");
        int64_t a, b2, c3;
        if (!L || fl_json_len(L) != 3 || !fl_json_int64(fl_json_at(L, 0), 0, 100, &a) ||
            !fl_json_int64(fl_json_at(L, 1), 0, 100, &b2) || !fl_json_int64(fl_json_at(L, 2), 0, 100, &c3) || a != 3 ||
            b2 != 4 || c3 != 5)
            st = fl_fail(ctx, FL_EUNSUPPORTED, "model has other ResHedNet layers than [3, 4, 5]");
    }
    fl_json_free(j);
    if (!st && check_config(ctx, c)) st = fl_fail(ctx, FL_EFORMAT, "model configuration is invalid: %s", fl_ctx_message(ctx));
    return st;
}

/* An inference graph of 8 x 8 (the state does not depend on the size) for export / import. */
static fl_status small_graph(fl_ctx *ctx, int32_t F, fl_graph **out)
{
    fl_graph *g = fl_graph_new(ctx, 1, 0);
    if (!g) return FL_ENOMEM;
    fl_node in;
    fl_reshed_build(g, F, 8, 8, &in);
    fl_status st = fl_graph_finalize(g);
    if (st) {
        fl_graph_free(g);
        return st;
    }
    *out = g;
    return FL_OK;
}

fl_status fl_reshed_save(fl_ctx *ctx, const fl_reshed *m, const char *path)
{
    if (!m || !path || !*path) return fl_fail(ctx, FL_EINVAL, "save: no ensemble or no path");
    fl_graph *g;
    fl_status st = small_graph(ctx, m->cfg.nb_filters, &g);
    if (st) return st;
    fl_tensor_list list;
    fl_tensor_list_init(&list);
    char pre[32];
    for (int32_t k = 0; !st && k < m->members; k++) {
        fl_graph_set_state(g, m->states + (int64_t)k * m->state_count);
        snprintf(pre, sizeof pre, "member%d.", k);
        st = fl_graph_export(g, ctx, &list, pre);
    }
    fl_graph_free(g);
    fl_strbuf b;
    fl_strbuf_init(&b);
    fl_reshed_config c = m->cfg;
    c.members = m->members;
    char num[32];
    snprintf(num, sizeof num, "%d", m->members);
    config_json(&b, &c);
    if (!st) st = fl_model_meta_set_common(ctx, &list, FAMILY_NAME, &b);
    if (!st) st = fl_tensor_list_set_meta(ctx, &list, "members", num);
    if (!st && m->training_json) st = fl_tensor_list_set_meta(ctx, &list, "training", m->training_json);
    if (!st) st = fl_safetensors_write(ctx, path, &list);
    fl_strbuf_free(&b);
    fl_tensor_list_free(&list);
    return st;
}

fl_status fl_reshed_load(fl_ctx *ctx, const char *path, fl_reshed **out)
{
    if (!path || !out) return fl_fail(ctx, FL_EINVAL, "load: no path");
    *out = NULL;
    fl_tensor_list list;
    fl_status st = fl_safetensors_read(ctx, path, &list);
    if (st) return st;
    static const char *const fam[] = {FAMILY_NAME};
    const char *mem = fl_tensor_list_get_meta(&list, "members");
    fl_reshed_config c;
    fl_reshed *m = NULL;
    fl_graph *g = NULL;
    st = fl_model_meta_check(ctx, &list, path, fam, 1, "a ResHedNet wall ensemble", NULL);
    if (!st) st = config_from_json(ctx, fl_tensor_list_get_meta(&list, "config"), &c);
    char *end = NULL;
    long members = mem ? strtol(mem, &end, 10) : -1;
    if (!st && (!mem || *end || members != c.members))
        st = fl_fail(ctx, FL_EFORMAT, "'%s': the member count in the metadata is missing or disagrees with the configuration", path);
    if (!st) {
        /* a small file must not make us allocate a huge ensemble: count its values first */
        const int64_t have = fl_model_meta_values(&list);
        if ((double)have < (double)members * (double)true_param_count(c.nb_filters))
            st = fl_fail(ctx, FL_EFORMAT, "'%s' holds fewer values than %ld members of width %d need: damaged file", path, members, c.nb_filters);
    }
    if (!st) st = small_graph(ctx, c.nb_filters, &g);
    if (!st && !(m = reshed_alloc(ctx, &c, (int32_t)members, fl_graph_state_count(g)))) st = FL_ENOMEM;
    char pre[32];
    int32_t per = 0;
    for (int32_t k = 0; !st && k < members; k++) {
        snprintf(pre, sizeof pre, "member%d.", k);
        st = fl_graph_import(g, ctx, &list, pre);
        if (!st) fl_graph_get_state(g, m->states + (int64_t)k * m->state_count);
    }
    if (!st) {
        fl_tensor_list tmp;
        fl_tensor_list_init(&tmp);
        st = fl_graph_export(g, ctx, &tmp, "");
        per = tmp.count;
        fl_tensor_list_free(&tmp);
        if (!st && (int64_t)per * members != list.count)
            st = fl_fail(ctx, FL_EFORMAT, "'%s' has %lld tensors this ensemble does not use", path,
                         (long long)(list.count - (int64_t)per * members));
    }
    if (!st) {
        const char *tr = fl_tensor_list_get_meta(&list, "training");
        if (tr) m->training_json = strdup(tr);
    }
    fl_graph_free(g);
    fl_tensor_list_free(&list);
    if (st) {
        fl_reshed_free(m);
        return st;
    }
    *out = m;
    return FL_OK;
}
