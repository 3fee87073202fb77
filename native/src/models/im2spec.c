/* Family 2: im2spec / spec2im encoder-decoders (see ferrolens/im2spec.h and docs/model-families.md A2).
 *
 * The networks are built on the layer graph (nn/graph.h) with the parameter names of the reference
 * PyTorch module (ziatdinovmax/im2spec models.py). The model object holds the state as named tensors;
 * every operation (train, apply, decode) builds the graph it needs and imports that state by name.
 *
 * Determinism: shuffling uses the counter-based RNG keyed by (seed, epoch); the graph's reductions
 * are thread-count independent; every loss/error reduction here runs serially in double.
 */
#include "models/im2spec_internal.h"

#include "ferrolens/im2spec.h"
#include "ferrolens/loops.h"
#include "fl_internal.h"
#include "io/json.h"
#include "io/model_meta.h"
#include "io/safetensors.h"
#include "nn/graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAMILY_IM2SPEC "im2spec"
#define FAMILY_SPEC2IM "spec2im"
#define MEAN_TARGET "ferrolens.mean_target"
#define INFER_BATCH 256
#define MAX_POINTS 100000
#define MAX_LATENT 4096
#define MAX_FILTERS 1024

struct fl_i2s {
    fl_i2s_config cfg;
    fl_tensor_list state;   /* graph tensors (PyTorch names) + MEAN_TARGET */
    double in_mean, in_std; /* standardisation of the network input (0/1 when off) */
    double tg_mean, tg_std; /* and of the target */
    double *axis;           /* points values or NULL */
    double *hist_train, *hist_test;
    int32_t nhist;
    int32_t cancelled;
};

/* ---------------------------------------------------------------------------------------------- */
/* configuration                                                                                   */

void fl_i2s_config_default(fl_i2s_config *c)
{
    memset(c, 0, sizeof *c);
    c->direction = FL_I2S_IM2SPEC;
    c->patch = 8;
    c->latent = 10;
    c->filters = 64;
    c->points = 0;
    c->epochs = 100;
    c->batch = 64;
    c->lr = 1e-3f;
    c->adam_beta1 = 0.9f;
    c->adam_beta2 = 0.999f;
    c->adam_eps = 1e-8f;
    c->seed = 1;
    c->train_fraction = 0.75f;
    c->standardise = 0;
}

static fl_status check_config(fl_ctx *ctx, const fl_i2s_config *c)
{
#define REQ(cond, ...)                                                \
    do {                                                              \
        if (!(cond)) return fl_fail(ctx, FL_EINVAL, __VA_ARGS__);     \
    } while (0)
    REQ(c->direction == FL_I2S_IM2SPEC || c->direction == FL_I2S_SPEC2IM,
        "direction must be im2spec (0) or spec2im (1), got %d", c->direction);
    REQ(c->patch == 8 || c->patch == 16, "patch size must be 8 or 16 pixels (got %d)", c->patch);
    REQ(c->latent >= 1 && c->latent <= MAX_LATENT, "latent size must be 1..%d (got %d)", MAX_LATENT, c->latent);
    REQ(c->filters >= 1 && c->filters <= MAX_FILTERS, "filters must be 1..%d (got %d)", MAX_FILTERS, c->filters);
    REQ(c->points == 0 || (c->points >= 8 && c->points <= MAX_POINTS),
        "spectra need 8..%d points (got %d)", MAX_POINTS, c->points);
    REQ(c->epochs >= 1 && c->epochs <= 10000000, "epochs must be 1..10000000 (got %d)", c->epochs);
    REQ(c->batch >= 1 && c->batch <= 100000, "batch size must be 1..100000 (got %d)", c->batch);
    REQ(isfinite(c->lr) && c->lr > 0.f && c->lr <= 1.f, "learning rate must be in (0,1] (got %g)", c->lr);
    REQ(isfinite(c->adam_beta1) && isfinite(c->adam_beta2) && c->adam_beta1 >= 0.f && c->adam_beta1 < 1.f &&
            c->adam_beta2 >= 0.f && c->adam_beta2 < 1.f && isfinite(c->adam_eps) && c->adam_eps > 0.f,
        "Adam parameters out of range");
    REQ(c->roi_w >= 0 && c->roi_h >= 0 && c->roi_x >= 0 && c->roi_y >= 0, "the training rectangle must not be negative");
    REQ((c->roi_w > 0) == (c->roi_h > 0), "the training rectangle needs both a width and a height");
    REQ(c->roi_w > 0 || (isfinite(c->train_fraction) && c->train_fraction > 0.f && c->train_fraction < 1.f),
        "train fraction must be in (0,1) (got %g)", c->train_fraction);
    REQ(c->standardise == 0 || c->standardise == 1, "standardise must be 0 or 1");
#undef REQ
    return FL_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* the networks (models.py)                                                                        */

typedef struct net {
    fl_graph *g;
    fl_node in, lat, out;
    int64_t max_batch;
} net;

/* conv_block layer: Conv(k3, dilation d, padding d) -> LeakyReLU(0.1) -> BatchNorm, named prefix.idx
 * and prefix.(idx+2). Writes the three tensors to parts when given (dilated block). */
static fl_node conv_layer(fl_graph *g, fl_node x, const char *prefix, int idx, int64_t cout, int two_d, int d,
                          fl_node *parts)
{
    char n1[96], n2[96];
    snprintf(n1, sizeof n1, "%s.%d", prefix, idx);
    snprintf(n2, sizeof n2, "%s.%d", prefix, idx + 2);
    fl_node c = two_d ? fl_g_conv2d(g, x, n1, cout, 3, 3, 1, d, d, d, d, 1) : fl_g_conv1d(g, x, n1, cout, 3, 1, d, d, 1);
    fl_node r = fl_g_leaky_relu(g, c, 0.1f);
    fl_node b = fl_g_batchnorm(g, r, n2);
    if (parts) parts[0] = c, parts[1] = r, parts[2] = b;
    return b;
}

/* dilated_block: cascade d = 1..4; output = sum of all 12 intermediate tensors. */
static fl_node dilated(fl_graph *g, fl_node x, int64_t nf, int two_d)
{
    fl_node parts[12];
    for (int k = 0; k < 4; k++) x = conv_layer(g, x, "dec_atrous.atrous_module", 3 * k, nf, two_d, k + 1, parts + 3 * k);
    return fl_g_add(g, 12, parts);
}

static fl_status build_net(fl_ctx *ctx, const fl_i2s_config *c, int64_t batch, int training, int decoder_only, net *n)
{
    memset(n, 0, sizeof *n);
    n->in = n->lat = n->out = -1;
    n->max_batch = batch;
    fl_graph *g = fl_graph_new(ctx, batch, training);
    if (!g) return fl_ctx_message(ctx)[0] ? FL_ENOMEM : fl_fail(ctx, FL_ENOMEM, "out of memory for the network");
    const int64_t nf = c->filters, p = c->patch, P = c->points, z = c->latent;
    fl_node x;
    if (c->direction == FL_I2S_IM2SPEC) {
        if (!decoder_only) {
            n->in = x = fl_g_input(g, 1, p, p);
            for (int k = 0; k < 3; k++) x = conv_layer(g, x, "enc_conv.block", 3 * k, nf, 1, 1, NULL);
            n->lat = fl_g_linear(g, x, "enc_fc", z);
        } else {
            n->in = n->lat = fl_g_input(g, z, 1, 1);
        }
        x = fl_g_reshape(g, fl_g_linear(g, n->lat, "dec_fc", nf * P), nf, 1, P);
        x = dilated(g, x, nf, 0);
        x = conv_layer(g, x, "dec_conv.block", 0, 1, 0, 1, NULL);
        n->out = fl_g_conv1d(g, x, "dec_out", 1, 1, 1, 0, 1, 1);
    } else {
        if (!decoder_only) {
            n->in = x = fl_g_input(g, 1, 1, P);
            for (int k = 0; k < 4; k++) x = conv_layer(g, x, "enc_conv.block", 3 * k, nf, 0, 1, NULL);
            n->lat = fl_g_linear(g, x, "enc_fc", z);
        } else {
            n->in = n->lat = fl_g_input(g, z, 1, 1);
        }
        x = fl_g_reshape(g, fl_g_linear(g, n->lat, "dec_fc", nf * (p / 4) * (p / 4)), nf, p / 4, p / 4);
        x = conv_layer(g, x, "dec_conv_1.block", 0, nf, 1, 1, NULL);
        x = fl_g_upsample_nearest(g, x, 2);
        x = conv_layer(g, x, "dec_conv_2.block", 0, nf, 1, 1, NULL);
        x = fl_g_upsample_nearest(g, x, 2);
        x = dilated(g, x, nf, 1);
        x = conv_layer(g, x, "dec_conv_3.block", 0, 1, 1, 1, NULL);
        n->out = fl_g_conv2d(g, x, "dec_out", 1, 1, 1, 1, 0, 0, 1, 1, 1);
    }
    if (n->lat >= 0) fl_graph_keep(g, n->lat);
    if (n->out >= 0) fl_graph_keep(g, n->out);
    n->g = g;
    return FL_OK;
}

static fl_status finalize_net(fl_ctx *ctx, net *n)
{
    fl_status st = fl_graph_finalize(n->g);
    if (st && !fl_ctx_message(ctx)[0]) st = fl_fail(ctx, st, "the network could not be built");
    return st;
}

static void free_net(net *n)
{
    fl_graph_free(n->g);
    n->g = NULL;
}

static int64_t out_size(const fl_i2s_config *c)
{
    return c->direction == FL_I2S_IM2SPEC ? c->points : (int64_t)c->patch * c->patch;
}
static int64_t in_size(const fl_i2s_config *c)
{
    return c->direction == FL_I2S_IM2SPEC ? (int64_t)c->patch * c->patch : c->points;
}

fl_graph *fl_i2s_debug_net(fl_ctx *ctx, const fl_i2s_config *cfg, int64_t batch, int training, uint64_t seed,
                           fl_node *in, fl_node *lat, fl_node *out)
{
    net n;
    if (check_config(ctx, cfg) || cfg->points < 8) return NULL;
    if (build_net(ctx, cfg, batch, training, 0, &n)) return NULL;
    if (finalize_net(ctx, &n)) {
        free_net(&n);
        return NULL;
    }
    fl_graph_init_params(n.g, seed, FL_INIT_TORCH);
    *in = n.in, *lat = n.lat, *out = n.out;
    return n.g;
}

double fl_i2s_debug_mse(fl_graph *g, fl_node out, const float *target, int grad)
{
    int64_t C, H, W;
    fl_graph_shape(g, out, &C, &H, &W);
    const int64_t m = C * H * W * fl_graph_batch(g);
    const float *y = fl_graph_data(g, out);
    float *dy = grad ? fl_graph_grad(g, out) : NULL;
    double s = 0;
    const float k = 2.f / (float)m;
    for (int64_t i = 0; i < m; i++) {
        const float d = y[i] - target[i];
        s += (double)d * d;
        if (dy) dy[i] = k * d;
    }
    return s / (double)m;
}

/* ---------------------------------------------------------------------------------------------- */
/* data                                                                                            */

static fl_status check_data(fl_ctx *ctx, const fl_i2s_config *c, const fl_i2s_data *d, int need_structure,
                            int need_spectra)
{
    if (!d) return fl_fail(ctx, FL_EINVAL, "no data given");
    if (need_structure && !d->structure) return fl_fail(ctx, FL_EINVAL, "a structure image is required");
    if (need_spectra && !d->spectra) return fl_fail(ctx, FL_EINVAL, "a grid of spectra is required");
    int64_t W = d->structure ? d->sw : d->gw, H = d->structure ? d->sh : d->gh;
    if (d->structure && d->spectra && (d->sw != d->gw || d->sh != d->gh))
        return fl_fail(ctx, FL_EINVAL,
                       "the structure image is %lld x %lld pixels but the spectra grid is %lld x %lld: they must show "
                       "the same field of view",
                       (long long)d->sw, (long long)d->sh, (long long)d->gw, (long long)d->gh);
    if (W < 1 || H < 1 || W > 1000000 || H > 1000000)
        return fl_fail(ctx, FL_EINVAL, "image size %lld x %lld is not usable", (long long)W, (long long)H);
    if (W < c->patch || H < c->patch)
        return fl_fail(ctx, FL_EINVAL, "the %d x %d patch is larger than the %lld x %lld image", c->patch, c->patch,
                       (long long)W, (long long)H);
    if (d->spectra) {
        if (d->points < 8 || d->points > MAX_POINTS)
            return fl_fail(ctx, FL_EINVAL, "spectra need 8..%d points (got %d)", MAX_POINTS, d->points);
        if (c->points && d->points != c->points)
            return fl_fail(ctx, FL_EMISMATCH, "the model expects spectra of %d points, the grid has %d", c->points,
                           d->points);
        size_t n;
        if (!fl_mul_size((size_t)(W * H), (size_t)d->points, &n))
            return fl_fail(ctx, FL_EINVAL, "the spectra grid is too large");
        for (size_t i = 0; i < n; i++)
            if (!isfinite(d->spectra[i]))
                return fl_fail(ctx, FL_EINVAL, "the spectra hold NaN or infinity (first at pixel x=%lld, y=%lld, point %lld)",
                               (long long)((int64_t)(i / (size_t)d->points) % W),
                               (long long)((int64_t)(i / (size_t)d->points) / W), (long long)(i % (size_t)d->points));
        if (d->axis)
            for (int32_t k = 0; k < d->points; k++)
                if (!isfinite(d->axis[k])) return fl_fail(ctx, FL_EINVAL, "spectral axis value %d is not finite", k);
    }
    if (d->structure)
        for (int64_t i = 0; i < W * H; i++)
            if (!isfinite(d->structure[i]))
                return fl_fail(ctx, FL_EINVAL, "the structure image holds NaN or infinity (first at x=%lld, y=%lld)",
                               (long long)(i % W), (long long)(i / W));
    return FL_OK;
}

static int usable(int64_t x, int64_t y, int64_t W, int64_t H, int p)
{
    return x >= p / 2 && y >= p / 2 && x + p / 2 <= W && y + p / 2 <= H;
}

fl_status fl_i2s_region(fl_ctx *ctx, const fl_i2s_config *c, int64_t W, int64_t H, uint8_t *mask)
{
    if (!c || !mask) return fl_fail(ctx, FL_EINVAL, "region: bad arguments");
    fl_status st = check_config(ctx, c);
    if (st) return st;
    const int p = c->patch;
    if (W < p || H < p)
        return fl_fail(ctx, FL_EINVAL, "the %d x %d patch is larger than the %lld x %lld image", p, p, (long long)W,
                       (long long)H);
    const int64_t x0 = p / 2, x1 = W - p / 2; /* usable columns x0..x1 */
    const int64_t ncols = x1 - x0 + 1;
    int64_t cut = c->roi_w > 0 ? 0 : (int64_t)llround((double)c->train_fraction * (double)ncols);
    int64_t ntr = 0, nte = 0;
    for (int64_t y = 0; y < H; y++)
        for (int64_t x = 0; x < W; x++) {
            uint8_t v = 0;
            if (usable(x, y, W, H, p)) {
                int tr = c->roi_w > 0 ? (x >= c->roi_x && x < (int64_t)c->roi_x + c->roi_w && y >= c->roi_y &&
                                         y < (int64_t)c->roi_y + c->roi_h)
                                      : x - x0 < cut;
                v = tr ? 1 : 2;
                ntr += tr;
                nte += !tr;
            }
            mask[y * W + x] = v;
        }
    if (ntr == 0)
        return fl_fail(ctx, FL_EINVAL,
                       c->roi_w > 0 ? "the training rectangle holds no pixel whose %d x %d patch fits in the image"
                                    : "the train fraction leaves no training column for %d x %d patches",
                       p, p);
    if (nte == 0)
        return fl_fail(ctx, FL_EINVAL, "the training region covers every usable pixel: no test pixels are left");
    return FL_OK;
}

/* Network inputs/targets in (standardised) working units. */
typedef struct source {
    const fl_i2s_config *c;
    int64_t W, H;
    const float *S; /* structure W*H */
    const float *G; /* spectra W*H x P */
} source;

static void gather_patch(const source *s, int64_t pix, float *dst)
{
    const int p = s->c->patch;
    const int64_t x = pix % s->W - p / 2, y = pix / s->W - p / 2;
    for (int r = 0; r < p; r++) memcpy(dst + r * p, s->S + (y + r) * s->W + x, (size_t)p * sizeof(float));
}

static void gather_input(const source *s, int64_t pix, float *dst)
{
    if (s->c->direction == FL_I2S_IM2SPEC) gather_patch(s, pix, dst);
    else memcpy(dst, s->G + pix * s->c->points, (size_t)s->c->points * sizeof(float));
}

static void gather_target(const source *s, int64_t pix, float *dst)
{
    if (s->c->direction == FL_I2S_IM2SPEC) memcpy(dst, s->G + pix * s->c->points, (size_t)s->c->points * sizeof(float));
    else gather_patch(s, pix, dst);
}

/* Forward passes (eval mode) over pixels pix[0..n): pred (n x D, working units) and lat (n x z), either
 * may be NULL. Returns the mean squared error against the targets when with_mse (needs both inputs). */
static double run_eval(fl_ctx *ctx, net *nt, const source *s, const int64_t *pix, int64_t n, float *pred, float *lat,
                       int with_mse, float *tbuf)
{
    const int64_t Din = in_size(s->c), D = out_size(s->c), z = s->c->latent;
    double sse = 0;
    const int64_t IB = nt->max_batch;
    (void)ctx;
    for (int64_t s0 = 0; s0 < n; s0 += IB) {
        const int64_t B = n - s0 < IB ? n - s0 : IB;
        fl_graph_set_batch(nt->g, B);
        float *xin = fl_graph_data(nt->g, nt->in);
        for (int64_t b = 0; b < B; b++) gather_input(s, pix[s0 + b], xin + b * Din);
        fl_graph_forward(nt->g, 0);
        const float *y = fl_graph_data(nt->g, nt->out);
        if (pred) memcpy(pred + s0 * D, y, (size_t)(B * D) * sizeof(float));
        if (lat) {
            const float *l = fl_graph_data(nt->g, nt->lat); /* (z, B) channel-major */
            for (int64_t b = 0; b < B; b++)
                for (int64_t k = 0; k < z; k++) lat[(s0 + b) * z + k] = l[k * B + b];
        }
        if (with_mse)
            for (int64_t b = 0; b < B; b++) {
                gather_target(s, pix[s0 + b], tbuf);
                for (int64_t j = 0; j < D; j++) {
                    const double d = (double)y[b * D + j] - tbuf[j];
                    sse += d * d;
                }
            }
    }
    return n ? sse / (double)(n * D) : 0;
}

/* Graph built for the (pre-set) config, batch B, importing the model's state. */
static fl_status model_net(fl_ctx *ctx, const fl_i2s *m, int64_t batch, int decoder_only, net *n)
{
    fl_status st = build_net(ctx, &m->cfg, batch, 0, decoder_only, n);
    if (!st) st = fl_check_budget(ctx, fl_graph_memory_bytes(n->g), "the network");
    if (!st) st = finalize_net(ctx, n);
    if (!st) st = fl_graph_import(n->g, ctx, &m->state, "");
    if (st) free_net(n);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* model object                                                                                    */

static fl_i2s *model_new(const fl_i2s_config *c)
{
    fl_i2s *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->cfg = *c;
    fl_tensor_list_init(&m->state);
    m->in_std = m->tg_std = 1;
    return m;
}

void fl_i2s_free(fl_i2s *m)
{
    if (!m) return;
    fl_tensor_list_free(&m->state);
    free(m->axis);
    free(m->hist_train);
    free(m->hist_test);
    free(m);
}

const fl_i2s_config *fl_i2s_get_config(const fl_i2s *m) { return m ? &m->cfg : NULL; }
int64_t fl_i2s_output_size(const fl_i2s *m) { return m ? out_size(&m->cfg) : 0; }
const double *fl_i2s_axis_values(const fl_i2s *m) { return m ? m->axis : NULL; }

int64_t fl_i2s_param_count(const fl_i2s *m)
{
    if (!m) return 0;
    int64_t n = 0;
    for (int32_t i = 0; i < m->state.count; i++) {
        const char *nm = m->state.items[i].name;
        size_t L = strlen(nm);
        if (strncmp(nm, "ferrolens.", 10) == 0) continue;
        if (L > 13 && !strcmp(nm + L - 13, ".running_mean")) continue;
        if (L > 12 && !strcmp(nm + L - 12, ".running_var")) continue;
        n += fl_tensor_numel(&m->state.items[i]);
    }
    return n;
}

int32_t fl_i2s_history(const fl_i2s *m, const double **train_loss, const double **test_loss)
{
    if (!m) return 0;
    if (train_loss) *train_loss = m->hist_train;
    if (test_loss) *test_loss = m->hist_test;
    return m->nhist;
}

const char *fl_i2s_error_label(const fl_i2s *m, int k)
{
    static const char *const lab[FL_I2S_NERR] = {"MSE", "normalised RMS", "loop area error"};
    if (k < 0 || k >= FL_I2S_NERR) return NULL;
    if (k == FL_I2S_ERR_THIRD && m && m->cfg.direction == FL_I2S_SPEC2IM) return "1-SSIM";
    return lab[k];
}

static void mean_std(const float *x, int64_t n, double *mean, double *sd)
{
    double s = 0, q = 0;
    for (int64_t i = 0; i < n; i++) s += x[i];
    s /= (double)n;
    for (int64_t i = 0; i < n; i++) q += ((double)x[i] - s) * ((double)x[i] - s);
    q = sqrt(q / (double)n);
    *mean = s;
    *sd = q > 0 && isfinite(q) ? q : 1.0;
}

/* Standardised copies of the structure and spectra (either may be absent). */
static fl_status working_copies(fl_ctx *ctx, const fl_i2s *m, const fl_i2s_data *d, float **S, float **G)
{
    const int im2spec = m->cfg.direction == FL_I2S_IM2SPEC;
    const double sm = im2spec ? m->in_mean : m->tg_mean, ss = im2spec ? m->in_std : m->tg_std;
    const double gm = im2spec ? m->tg_mean : m->in_mean, gs = im2spec ? m->tg_std : m->in_std;
    *S = *G = NULL;
    if (d->structure) {
        const int64_t n = d->sw * d->sh;
        *S = fl_alloc((size_t)n * sizeof(float));
        if (!*S) return fl_fail(ctx, FL_ENOMEM, "out of memory for the structure image");
        for (int64_t i = 0; i < n; i++) (*S)[i] = (float)(((double)d->structure[i] - sm) / ss);
    }
    if (d->spectra) {
        const int64_t n = d->gw * d->gh * d->points;
        *G = fl_alloc((size_t)n * sizeof(float));
        if (!*G) {
            fl_free(*S);
            *S = NULL;
            return fl_fail(ctx, FL_ENOMEM, "out of memory for the spectra");
        }
        for (int64_t i = 0; i < n; i++) (*G)[i] = (float)(((double)d->spectra[i] - gm) / gs);
    }
    return FL_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* training                                                                                        */

fl_status fl_i2s_train(fl_ctx *ctx, const fl_i2s_config *cfg, const fl_i2s_data *data, fl_i2s **out)
{
    if (!cfg || !out) return fl_fail(ctx, FL_EINVAL, "train: bad arguments");
    *out = NULL;
    fl_status st = check_config(ctx, cfg);
    if (st) return st;
    st = check_data(ctx, cfg, data, 1, 1);
    if (st) return st;
    fl_i2s_config c = *cfg;
    if (c.points && c.points != data->points)
        return fl_fail(ctx, FL_EINVAL, "the configuration says %d points per spectrum, the grid has %d", c.points,
                       data->points);
    c.points = data->points;
    const int64_t W = data->sw, H = data->sh, D = out_size(&c), Din = in_size(&c);
    uint8_t *mask = malloc((size_t)(W * H));
    if (!mask) return fl_fail(ctx, FL_ENOMEM, "out of memory");
    st = fl_i2s_region(ctx, &c, W, H, mask);
    if (st) {
        free(mask);
        return st;
    }
    int64_t ntr = 0, nte = 0;
    for (int64_t i = 0; i < W * H; i++) ntr += mask[i] == 1, nte += mask[i] == 2;
    const int64_t Bmax = c.batch < ntr ? c.batch : ntr;
    if (Bmax < 2) {
        free(mask);
        return fl_fail(ctx, FL_EINVAL, "the training region holds only one usable pixel; batch norm needs at least two");
    }

    fl_i2s *m = model_new(&c);
    int64_t *tr = malloc((size_t)ntr * sizeof(int64_t)), *te = malloc((size_t)nte * sizeof(int64_t));
    int64_t *order = malloc((size_t)ntr * sizeof(int64_t));
    float *tgt = fl_alloc((size_t)(Bmax * D + D) * sizeof(float));
    if (!m || !tr || !te || !order || !tgt) st = fl_fail(ctx, FL_ENOMEM, "out of memory for %lld training pixels", (long long)ntr);
    if (!st) {
        for (int64_t i = 0, a = 0, b = 0; i < W * H; i++) {
            if (mask[i] == 1) tr[a++] = i;
            else if (mask[i] == 2) te[b++] = i;
        }
        m->hist_train = calloc((size_t)c.epochs, sizeof(double));
        m->hist_test = calloc((size_t)c.epochs, sizeof(double));
        if (data->axis) m->axis = malloc((size_t)c.points * sizeof(double));
        if (!m->hist_train || !m->hist_test || (data->axis && !m->axis)) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
        else if (data->axis) memcpy(m->axis, data->axis, (size_t)c.points * sizeof(double));
    }
    /* standardisation fitted on the training pixels: the structure values and spectra at those pixels */
    float *tmp = NULL;
    if (!st && c.standardise) {
        tmp = fl_alloc((size_t)(ntr * c.points) * sizeof(float));
        if (!tmp) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
        double sm = 0, ss = 1, gm = 0, gs = 1;
        if (!st) {
            for (int64_t i = 0; i < ntr; i++) tmp[i] = data->structure[tr[i]];
            mean_std(tmp, ntr, &sm, &ss);
            for (int64_t i = 0; i < ntr; i++)
                memcpy(tmp + i * c.points, data->spectra + tr[i] * c.points, (size_t)c.points * sizeof(float));
            mean_std(tmp, ntr * c.points, &gm, &gs);
            const int im2spec = c.direction == FL_I2S_IM2SPEC;
            m->in_mean = im2spec ? sm : gm, m->in_std = im2spec ? ss : gs;
            m->tg_mean = im2spec ? gm : sm, m->tg_std = im2spec ? gs : ss;
        }
        fl_free(tmp);
    }
    float *S = NULL, *G = NULL;
    if (!st) st = working_copies(ctx, m, data, &S, &G);
    source src = {&m->cfg, W, H, S, G};
    net tn = {0}, en = {0};
    float *snap = NULL;
    if (!st) st = build_net(ctx, &c, Bmax, 1, 0, &tn);
    const int64_t IB = nte < INFER_BATCH ? nte : INFER_BATCH;
    if (!st) st = build_net(ctx, &c, IB, 0, 0, &en);
    if (!st) {
        size_t need = fl_graph_memory_bytes(tn.g) + fl_graph_memory_bytes(en.g) +
                      (size_t)(W * H) * (size_t)(1 + c.points) * 2 * sizeof(float) + (size_t)(ntr + nte) * 16;
        st = fl_check_budget(ctx, need, "training");
    }
    if (!st) st = finalize_net(ctx, &tn);
    if (!st) st = finalize_net(ctx, &en);
    if (!st) {
        snap = fl_alloc((size_t)fl_graph_state_count(tn.g) * sizeof(float));
        if (!snap) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    int32_t done = 0;
    if (!st) {
        fl_graph_init_params(tn.g, c.seed, FL_INIT_TORCH);
        fl_graph_get_state(tn.g, snap);
        int64_t t = 0;
        for (int32_t e = 0; e < c.epochs && !st; e++) {
            fl_rng r;
            fl_rng_init(&r, c.seed, 0xE0000000ull + (uint64_t)e);
            for (int64_t i = 0; i < ntr; i++) order[i] = tr[i];
            fl_rng_shuffle(&r, order, ntr);
            double sse = 0;
            for (int64_t s0 = 0; s0 < ntr && !st; s0 += Bmax) {
                int64_t B = ntr - s0 < Bmax ? ntr - s0 : Bmax;
                /* a last batch of one sample would make batch norm degenerate (PyTorch refuses it): skip it */
                if (B < 2) break;
                fl_graph_set_batch(tn.g, B);
                float *xin = fl_graph_data(tn.g, tn.in);
                for (int64_t b = 0; b < B; b++) {
                    gather_input(&src, order[s0 + b], xin + b * Din);
                    gather_target(&src, order[s0 + b], tgt + b * D);
                }
                fl_graph_forward(tn.g, 1);
                double l = fl_i2s_debug_mse(tn.g, tn.out, tgt, 1);
                if (!isfinite(l)) {
                    st = fl_fail(ctx, FL_EINVAL, "training diverged (loss %g in epoch %d); lower the learning rate", l,
                                 e + 1);
                    break;
                }
                fl_graph_zero_grads(tn.g);
                fl_graph_backward(tn.g, tn.out);
                fl_graph_adam_step(tn.g, c.lr, c.adam_beta1, c.adam_beta2, c.adam_eps, ++t);
                sse += l * (double)B;
                if (fl_ctx_cancel_requested(ctx)) st = fl_fail(ctx, FL_ECANCELLED, "cancelled");
            }
            if (st) break;
            fl_graph_copy_state(en.g, tn.g);
            double scale = c.standardise ? m->tg_std * m->tg_std : 1.0;
            m->hist_train[e] = sse / (double)(ntr - (ntr % Bmax == 1)) * scale;
            m->hist_test[e] = run_eval(ctx, &en, &src, te, nte, NULL, NULL, 1, tgt) * scale;
            m->nhist = e + 1;
            done = e + 1;
            fl_graph_get_state(tn.g, snap);
            st = fl_progress(ctx, "epoch", e + 1, c.epochs, m->hist_train[e], m->hist_test[e]);
        }
    }
    if (st == FL_ECANCELLED && done > 0) {
        fl_graph_set_state(tn.g, snap);
        m->cancelled = 1;
        m->cfg.epochs = c.epochs; /* the requested count stays in the configuration */
    }
    if (!st || (st == FL_ECANCELLED && done > 0)) {
        fl_status st2 = fl_graph_export(tn.g, ctx, &m->state, "");
        /* baseline predictor: the mean training target (raw units) */
        if (!st2) {
            fl_tensor *t = fl_tensor_list_add(ctx, &m->state, MEAN_TARGET, 1, (int64_t[]){D}, NULL);
            if (!t) st2 = FL_ENOMEM;
            double *acc = t ? calloc((size_t)D, sizeof(double)) : NULL;
            if (t && !acc) st2 = fl_fail(ctx, FL_ENOMEM, "out of memory");
            if (acc) {
                for (int64_t i = 0; i < ntr; i++) {
                    gather_target(&src, tr[i], tgt);
                    for (int64_t j = 0; j < D; j++) acc[j] += tgt[j];
                }
                for (int64_t j = 0; j < D; j++) t->data[j] = (float)(acc[j] / (double)ntr * m->tg_std + m->tg_mean);
                free(acc);
            }
        }
        if (st2) st = st2;
    }
    free_net(&tn);
    free_net(&en);
    fl_free(snap);
    fl_free(S);
    fl_free(G);
    free(mask);
    free(tr);
    free(te);
    free(order);
    fl_free(tgt);
    if (st && !(st == FL_ECANCELLED && done > 0)) {
        fl_i2s_free(m);
        return st;
    }
    *out = m;
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* errors                                                                                          */

/* skimage.metrics.structural_similarity(t, p, data_range=max(t)-min(t)) for p x p images, win 7. */
static double ssim(const float *t, const float *pr, int p)
{
    float lo = t[0], hi = t[0];
    for (int i = 1; i < p * p; i++) lo = t[i] < lo ? t[i] : lo, hi = t[i] > hi ? t[i] : hi;
    double R = (double)hi - lo;
    if (!(R > 0)) R = 1.0;
    const double C1 = (0.01 * R) * (0.01 * R), C2 = (0.03 * R) * (0.03 * R), NP = 49, cov = NP / (NP - 1);
    double sum = 0;
    int cnt = 0;
    for (int i = 3; i + 3 < p; i++)
        for (int j = 3; j + 3 < p; j++) {
            double ux = 0, uy = 0, uxx = 0, uyy = 0, uxy = 0;
            for (int a = -3; a <= 3; a++)
                for (int b = -3; b <= 3; b++) {
                    const double x = t[(i + a) * p + j + b], y = pr[(i + a) * p + j + b];
                    ux += x, uy += y, uxx += x * x, uyy += y * y, uxy += x * y;
                }
            ux /= NP, uy /= NP, uxx /= NP, uyy /= NP, uxy /= NP;
            const double vx = cov * (uxx - ux * ux), vy = cov * (uyy - uy * uy), vxy = cov * (uxy - ux * uy);
            sum += ((2 * ux * uy + C1) * (2 * vxy + C2)) / ((ux * ux + uy * uy + C1) * (vx + vy + C2));
            cnt++;
        }
    return sum / cnt;
}

double fl_i2s_debug_ssim(const float *truth, const float *pred, int p) { return ssim(truth, pred, p); }

/* The three errors of prediction pr against truth t (D values, raw units). */
static void errors_of(const fl_i2s *m, const float *pr, const float *t, const float *axisf, float *e)
{
    const int64_t D = out_size(&m->cfg);
    double se = 0, ss = 0;
    for (int64_t j = 0; j < D; j++) {
        const double d = (double)pr[j] - t[j], s = (double)pr[j] + t[j];
        se += d * d;
        ss += s * s;
    }
    e[FL_I2S_ERR_MSE] = (float)(se / (double)D);
    e[FL_I2S_ERR_NRMS] = ss > 0 ? (float)sqrt((se / (double)D) / (ss / (double)D)) : (se > 0 ? INFINITY : 0.f);
    if (m->cfg.direction == FL_I2S_IM2SPEC)
        e[FL_I2S_ERR_THIRD] = (float)fabs(fl_loop_area(axisf, pr, D) - fl_loop_area(axisf, t, D));
    else
        e[FL_I2S_ERR_THIRD] = (float)(1.0 - ssim(t, pr, m->cfg.patch));
}

/* ---------------------------------------------------------------------------------------------- */
/* apply / decode                                                                                  */

fl_status fl_i2s_apply(fl_ctx *ctx, const fl_i2s *m, const fl_i2s_data *data, float *pred, float *latent,
                       float *errors, fl_i2s_scores *scores)
{
    if (!m || !data) return fl_fail(ctx, FL_EINVAL, "apply: bad arguments");
    const fl_i2s_config *c = &m->cfg;
    const int im2spec = c->direction == FL_I2S_IM2SPEC;
    fl_status st = check_data(ctx, c, data, im2spec, !im2spec);
    if (st) return st;
    const int has_truth = im2spec ? data->spectra != NULL : data->structure != NULL;
    if (scores && !has_truth)
        return fl_fail(ctx, FL_EINVAL, "scores need the true %s", im2spec ? "spectra" : "structure image");
    const int64_t W = data->structure ? data->sw : data->gw, H = data->structure ? data->sh : data->gh;
    const int64_t D = out_size(c), z = c->latent, npix = W * H;
    uint8_t *mask = malloc((size_t)npix);
    int64_t *pix = malloc((size_t)npix * sizeof(int64_t));
    if (!mask || !pix) {
        free(mask);
        free(pix);
        return fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    /* the model's region when it fits this image, else every usable pixel is "test" */
    fl_ctx *probe = fl_ctx_new();
    int region_ok = probe && fl_i2s_region(probe, c, W, H, mask) == FL_OK;
    fl_ctx_free(probe);
    int64_t n = 0;
    for (int64_t i = 0; i < npix; i++) {
        const int u = usable(i % W, i / W, W, H, c->patch);
        if (!region_ok) mask[i] = u ? 2 : 0;
        if (u) pix[n++] = i;
    }
    float *S = NULL, *G = NULL, *pw = NULL, *lw = NULL, *tb = NULL, *axisf = NULL;
    net en = {0};
    st = working_copies(ctx, m, data, &S, &G);
    if (!st) {
        pw = fl_alloc((size_t)(n * D) * sizeof(float));
        lw = fl_alloc((size_t)(n * z) * sizeof(float));
        tb = fl_alloc((size_t)(2 * D + 8) * sizeof(float));
        axisf = fl_alloc((size_t)(c->points) * sizeof(float));
        if (!pw || !lw || !tb || !axisf) st = fl_fail(ctx, FL_ENOMEM, "out of memory for %lld predictions", (long long)n);
    }
    if (!st) st = model_net(ctx, m, n < INFER_BATCH ? n : INFER_BATCH, 0, &en);
    if (!st) {
        source src = {c, W, H, S, G};
        run_eval(ctx, &en, &src, pix, n, pw, lw, 0, NULL);
        st = fl_progress(ctx, "apply", n, n, NAN, NAN);
    }
    if (!st) {
        for (int32_t k = 0; k < c->points; k++) axisf[k] = m->axis ? (float)m->axis[k] : (float)k;
        for (int64_t i = 0; i < n * D; i++) pw[i] = (float)((double)pw[i] * m->tg_std + m->tg_mean);
        const fl_tensor *mt = fl_tensor_list_find(&m->state, MEAN_TARGET);
        fl_i2s_scores sc;
        memset(&sc, 0, sizeof sc);
        double acc[3][FL_I2S_NERR] = {{0}};
        if (pred)
            for (int64_t i = 0; i < npix * D; i++) pred[i] = NAN;
        if (latent)
            for (int64_t i = 0; i < npix * z; i++) latent[i] = NAN;
        if (errors)
            for (int64_t i = 0; i < npix * FL_I2S_NERR; i++) errors[i] = NAN;
        source raw = {c, W, H, data->structure, data->spectra};
        for (int64_t a = 0; a < n; a++) {
            const int64_t i = pix[a];
            if (pred) memcpy(pred + i * D, pw + a * D, (size_t)D * sizeof(float));
            if (latent) memcpy(latent + i * z, lw + a * z, (size_t)z * sizeof(float));
            if (!has_truth) continue;
            float e[FL_I2S_NERR], eb[FL_I2S_NERR];
            gather_target(&raw, i, tb);
            errors_of(m, pw + a * D, tb, axisf, e);
            if (errors) memcpy(errors + i * FL_I2S_NERR, e, sizeof e);
            if (mask[i] == 1) {
                sc.n_train++;
                for (int k = 0; k < FL_I2S_NERR; k++) acc[0][k] += e[k];
            } else if (mask[i] == 2) {
                sc.n_test++;
                if (mt) errors_of(m, mt->data, tb, axisf, eb);
                for (int k = 0; k < FL_I2S_NERR; k++) {
                    acc[1][k] += e[k];
                    acc[2][k] += mt ? eb[k] : NAN;
                }
            }
        }
        for (int k = 0; k < FL_I2S_NERR; k++) {
            sc.train[k] = sc.n_train ? acc[0][k] / (double)sc.n_train : NAN;
            sc.test[k] = sc.n_test ? acc[1][k] / (double)sc.n_test : NAN;
            sc.baseline_test[k] = sc.n_test ? acc[2][k] / (double)sc.n_test : NAN;
        }
        sc.mse_ratio = sc.test[0] / sc.baseline_test[0];
        if (scores) *scores = sc;
    }
    free_net(&en);
    fl_free(S);
    fl_free(G);
    fl_free(pw);
    fl_free(lw);
    fl_free(tb);
    fl_free(axisf);
    free(mask);
    free(pix);
    return st;
}

fl_status fl_i2s_decode(fl_ctx *ctx, const fl_i2s *m, const float *latent, int64_t n, float *out)
{
    if (!m || !latent || !out || n < 1) return fl_fail(ctx, FL_EINVAL, "decode: bad arguments");
    const int64_t z = m->cfg.latent, D = out_size(&m->cfg);
    for (int64_t i = 0; i < n * z; i++)
        if (!isfinite(latent[i])) return fl_fail(ctx, FL_EINVAL, "latent vector %lld is not finite", (long long)(i / z));
    net dn;
    const int64_t IB = n < INFER_BATCH ? n : INFER_BATCH;
    fl_status st = model_net(ctx, m, IB, 1, &dn);
    if (st) return st;
    for (int64_t s0 = 0; s0 < n; s0 += IB) {
        const int64_t B = n - s0 < IB ? n - s0 : IB;
        fl_graph_set_batch(dn.g, B);
        float *x = fl_graph_data(dn.g, dn.in);
        for (int64_t b = 0; b < B; b++)
            for (int64_t k = 0; k < z; k++) x[k * B + b] = latent[(s0 + b) * z + k];
        fl_graph_forward(dn.g, 0);
        const float *y = fl_graph_data(dn.g, dn.out);
        for (int64_t i = 0; i < B * D; i++) out[s0 * D + i] = (float)((double)y[i] * m->tg_std + m->tg_mean);
    }
    free_net(&dn);
    return FL_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* model files                                                                                     */

static void config_json(fl_strbuf *b, const fl_i2s_config *c)
{
    fl_strbuf_printf_c(b,
                       "{\"direction\":\"%s\",\"patch\":%d,\"latent\":%d,\"filters\":%d,\"points\":%d,\"epochs\":%d,"
                       "\"batch\":%d,\"lr\":%.9g,\"adam_beta1\":%.9g,\"adam_beta2\":%.9g,\"adam_eps\":%.9g,"
                       "\"seed\":%llu,\"roi_x\":%d,\"roi_y\":%d,\"roi_w\":%d,\"roi_h\":%d,\"train_fraction\":%.9g,"
                       "\"standardise\":%d}",
                       c->direction == FL_I2S_IM2SPEC ? FAMILY_IM2SPEC : FAMILY_SPEC2IM, c->patch, c->latent,
                       c->filters, c->points, c->epochs, c->batch, c->lr, c->adam_beta1, c->adam_beta2, c->adam_eps,
                       (unsigned long long)c->seed, c->roi_x, c->roi_y, c->roi_w, c->roi_h, c->train_fraction,
                       c->standardise);
}

static fl_status config_from_json(fl_ctx *ctx, const char *text, int direction, fl_i2s_config *c)
{
    fl_json *j = NULL;
    if (!text) return fl_fail(ctx, FL_EFORMAT, "model file has no configuration");
    if (fl_json_parse(ctx, text, strlen(text), &j))
        return fl_fail(ctx, FL_EFORMAT, "model configuration is not valid JSON: %s", fl_ctx_message(ctx));
    fl_i2s_config_default(c);
    c->direction = direction;
    const fl_model_field f[] = {
        {"patch", 1, &c->patch}, {"latent", 1, &c->latent}, {"filters", 1, &c->filters}, {"points", 1, &c->points},
        {"epochs", 1, &c->epochs}, {"batch", 1, &c->batch}, {"lr", 0, &c->lr}, {"adam_beta1", 0, &c->adam_beta1},
        {"adam_beta2", 0, &c->adam_beta2}, {"adam_eps", 0, &c->adam_eps}, {"roi_x", 1, &c->roi_x},
        {"roi_y", 1, &c->roi_y}, {"roi_w", 1, &c->roi_w}, {"roi_h", 1, &c->roi_h},
        {"train_fraction", 0, &c->train_fraction}, {"standardise", 1, &c->standardise}
    };
    fl_status st = fl_model_meta_read_fields(ctx, j, f, sizeof f / sizeof f[0]);
    const char *dir = fl_json_string(fl_json_get(j, "direction"));
    if (!st && (!dir || strcmp(dir, direction == FL_I2S_IM2SPEC ? FAMILY_IM2SPEC : FAMILY_SPEC2IM) != 0))
        st = fl_fail(ctx, FL_EFORMAT, "model configuration: direction does not match the family");
    if (!st) st = fl_model_meta_read_seed(ctx, j, &c->seed);
    fl_json_free(j);
    if (!st && check_config(ctx, c)) st = fl_fail(ctx, FL_EFORMAT, "model configuration is invalid: %s", fl_ctx_message(ctx));
    if (!st && c->points < 8) st = fl_fail(ctx, FL_EFORMAT, "model configuration has no spectrum length");
    return st;
}

fl_status fl_i2s_save(fl_ctx *ctx, const fl_i2s *m, const char *path)
{
    if (!m || !path || !*path) return fl_fail(ctx, FL_EINVAL, "save: no model or no path");
    /* a shallow copy of the tensor list whose metadata we fill here */
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    fl_status st = FL_OK;
    for (int32_t i = 0; i < m->state.count && !st; i++) {
        const fl_tensor *t = &m->state.items[i];
        if (!fl_tensor_list_add(ctx, &l, t->name, t->ndim, t->shape, t->data)) st = FL_ENOMEM;
    }
    const char *fam = m->cfg.direction == FL_I2S_IM2SPEC ? FAMILY_IM2SPEC : FAMILY_SPEC2IM;
    fl_strbuf b;
    fl_strbuf_init(&b);
    config_json(&b, &m->cfg);
    if (!st) st = fl_model_meta_set_common(ctx, &l, fam, &b);
    if (!st) {
        b.len = 0;
        fl_strbuf_printf_c(&b, "{\"input_mean\":%.17g,\"input_std\":%.17g,\"target_mean\":%.17g,\"target_std\":%.17g}",
                           m->in_mean, m->in_std, m->tg_mean, m->tg_std);
        st = fl_model_meta_set_buf(ctx, &l, "normalisation", &b);
    }
    if (!st) {
        b.len = 0;
        fl_strbuf_printf(&b, "{\"values\":");
        if (m->axis) {
            for (int32_t i = 0; i < m->cfg.points; i++) fl_strbuf_printf_c(&b, "%s%.17g", i ? "," : "[", m->axis[i]);
            fl_strbuf_printf(&b, "]}");
        } else {
            fl_strbuf_printf(&b, "null}");
        }
        st = fl_model_meta_set_buf(ctx, &l, "axis", &b);
    }
    if (!st) {
        b.len = 0;
        fl_strbuf_printf(&b, "{\"epochs_run\":%d,\"cancelled\":%d,\"train_loss\":[", m->nhist, m->cancelled);
        for (int32_t e = 0; e < m->nhist; e++) fl_strbuf_printf_c(&b, "%s%.9g", e ? "," : "", m->hist_train[e]);
        fl_strbuf_printf(&b, "],\"test_loss\":[");
        for (int32_t e = 0; e < m->nhist; e++) fl_strbuf_printf_c(&b, "%s%.9g", e ? "," : "", m->hist_test[e]);
        fl_strbuf_printf(&b, "]}");
        st = fl_model_meta_set_buf(ctx, &l, "training", &b);
    }
    if (!st) st = fl_safetensors_write(ctx, path, &l);
    fl_strbuf_free(&b);
    fl_tensor_list_free(&l);
    return st;
}

static fl_status parse_doubles(fl_ctx *ctx, const fl_json *arr, int32_t n, double *out, const char *what)
{
    if (!arr || fl_json_type_of(arr) != FL_JSON_ARRAY || (int64_t)fl_json_len(arr) != n)
        return fl_fail(ctx, FL_EFORMAT, "model file: %s has the wrong length", what);
    for (int32_t i = 0; i < n; i++) {
        out[i] = fl_json_number(fl_json_at(arr, (size_t)i));
        if (!isfinite(out[i])) return fl_fail(ctx, FL_EFORMAT, "model file: %s holds a non-number", what);
    }
    return FL_OK;
}

static fl_status parse_meta(fl_ctx *ctx, fl_i2s *m, const fl_tensor_list *l)
{
    fl_json *j = NULL;
    const char *norm = fl_tensor_list_get_meta(l, "normalisation");
    if (!norm || fl_json_parse(ctx, norm, strlen(norm), &j))
        return fl_fail(ctx, FL_EFORMAT, "model file has no valid normalisation record");
    m->in_mean = fl_json_number(fl_json_get(j, "input_mean"));
    m->in_std = fl_json_number(fl_json_get(j, "input_std"));
    m->tg_mean = fl_json_number(fl_json_get(j, "target_mean"));
    m->tg_std = fl_json_number(fl_json_get(j, "target_std"));
    fl_json_free(j);
    if (!isfinite(m->in_mean) || !isfinite(m->tg_mean) || !(m->in_std > 0) || !(m->tg_std > 0) || !isfinite(m->in_std) ||
        !isfinite(m->tg_std))
        return fl_fail(ctx, FL_EFORMAT, "model file: bad normalisation values");
    const char *axis = fl_tensor_list_get_meta(l, "axis");
    fl_status st = FL_OK;
    if (axis) {
        if (fl_json_parse(ctx, axis, strlen(axis), &j)) return fl_fail(ctx, FL_EFORMAT, "model file: axis record is not JSON");
        const fl_json *v = fl_json_get(j, "values");
        if (v && fl_json_type_of(v) == FL_JSON_ARRAY) {
            m->axis = malloc((size_t)m->cfg.points * sizeof(double));
            st = m->axis ? parse_doubles(ctx, v, m->cfg.points, m->axis, "the axis") : fl_fail(ctx, FL_ENOMEM, "out of memory");
        }
        fl_json_free(j);
    }
    const char *tr = fl_tensor_list_get_meta(l, "training");
    if (!st && tr && !fl_json_parse(ctx, tr, strlen(tr), &j)) {
        int64_t ne = 0;
        if (fl_json_int64(fl_json_get(j, "epochs_run"), 0, 10000000, &ne) && ne > 0) {
            m->hist_train = calloc((size_t)ne, sizeof(double));
            m->hist_test = calloc((size_t)ne, sizeof(double));
            if (!m->hist_train || !m->hist_test) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
            if (!st) st = parse_doubles(ctx, fl_json_get(j, "train_loss"), (int32_t)ne, m->hist_train, "the training loss");
            if (!st) st = parse_doubles(ctx, fl_json_get(j, "test_loss"), (int32_t)ne, m->hist_test, "the test loss");
            if (!st) m->nhist = (int32_t)ne;
        }
        m->cancelled = fl_json_bool(fl_json_get(j, "cancelled"));
        fl_json_free(j);
    }
    return st;
}

fl_status fl_i2s_load(fl_ctx *ctx, const char *path, fl_i2s **out)
{
    if (!path || !out) return fl_fail(ctx, FL_EINVAL, "load: no path");
    fl_tensor_list l;
    fl_status st = fl_safetensors_read(ctx, path, &l);
    if (st) return st;
    static const char *const fam[] = {FAMILY_IM2SPEC, FAMILY_SPEC2IM};
    int which = 0;
    st = fl_model_meta_check(ctx, &l, path, fam, 2, "an im2spec or spec2im model", &which);
    const int direction = which == 0 ? FL_I2S_IM2SPEC : FL_I2S_SPEC2IM;
    fl_i2s_config c;
    if (!st) st = config_from_json(ctx, fl_tensor_list_get_meta(&l, "config"), direction, &c);
    fl_i2s *m = NULL;
    if (!st) {
        m = model_new(&c);
        if (!m) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    /* the file must hold exactly the tensors of this architecture (checked by a graph import) plus the
     * baseline's mean target; the file size bounds what we allocate before that check */
    net probe = {0};
    if (!st) {
        const int64_t have = fl_model_meta_values(&l);
        st = build_net(ctx, &c, 1, 0, 0, &probe);
        if (!st) {
            size_t need = fl_graph_memory_bytes(probe.g);
            if ((double)need > 64.0 * (double)(have + 1) * sizeof(float) + 64e6)
                st = fl_fail(ctx, FL_EFORMAT, "model file holds %lld values, too few for its configuration: damaged file",
                             (long long)have);
        }
        if (!st) st = finalize_net(ctx, &probe);
        if (!st) st = fl_graph_import(probe.g, ctx, &l, "");
        if (!st) {
            fl_tensor_list tmp;
            fl_tensor_list_init(&tmp);
            st = fl_graph_export(probe.g, ctx, &tmp, "");
            const fl_tensor *mt = fl_tensor_list_find(&l, MEAN_TARGET);
            if (!st && (!mt || mt->ndim != 1 || mt->shape[0] != out_size(&c)))
                st = fl_fail(ctx, FL_EFORMAT, "model file lacks a valid %s tensor", MEAN_TARGET);
            for (int64_t i = 0; !st && i < out_size(&c); i++)
                if (!isfinite(mt->data[i])) st = fl_fail(ctx, FL_EFORMAT, "%s holds NaN or infinity", MEAN_TARGET);
            if (!st && tmp.count + 1 != l.count)
                st = fl_fail(ctx, FL_EFORMAT, "model file has %d tensors this architecture does not use",
                             l.count - tmp.count - 1);
            fl_tensor_list_free(&tmp);
        }
    }
    free_net(&probe);
    if (!st) st = parse_meta(ctx, m, &l);
    if (!st) {
        /* take the tensors over (the metadata strings stay with l) */
        for (int32_t i = 0; i < l.count && !st; i++) {
            const fl_tensor *t = &l.items[i];
            if (!fl_tensor_list_add(ctx, &m->state, t->name, t->ndim, t->shape, t->data)) st = FL_ENOMEM;
        }
    }
    fl_tensor_list_free(&l);
    if (st) {
        fl_i2s_free(m);
        return st;
    }
    *out = m;
    return FL_OK;
}
