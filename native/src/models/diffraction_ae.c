/* Family 3: the 4D-STEM diffraction autoencoder of Ludacka et al. 2024 (see ferrolens/diffraction_ae.h).
 *
 * The network is two graphs (nn/graph.h): the encoder (pattern -> ReLU embedding) and the decoder
 * (embedding -> pattern). Training runs them as a pair: encoder forward, decoder forward, MSE, decoder
 * backward down to its input (d loss / d z), plus the gradient of the latent regularisers, then encoder
 * backward from z. The model itself is the list of named tensors (PyTorch state_dict names). */
#include "ferrolens/diffraction_ae.h"

#include "fl_internal.h"
#include "io/json.h"
#include "io/model_meta.h"
#include "io/safetensors.h"
#include "io/stem4d.h"
#include "models/diffraction_ae_internal.h"
#include "nn/graph.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAMILY_NAME "diffraction-ae"
#define SEED_ENC 0x3e4cull
#define SEED_DEC 0x3dec0ull
/* Initial bias of every embedding channel (fc_enc.bias; PyTorch would draw it from U(-1/8, 1/8) for an 8 x 8
 * bottleneck): positive, so that no ReLU channel starts dead. See fl_dae_create. */
#define FC_ENC_BIAS0 0.1f

struct fl_dae {
    fl_dae_config cfg;
    int32_t npools;
    int64_t bh, bw;           /* bottleneck */
    fl_tensor_list tensors;   /* the weights, PyTorch names */
    int64_t nparams;
    fl_dae_epoch *hist;
    int32_t nhist;
    char *training_json;
    int32_t fresh;            /* 1: initial weights, never trained nor loaded (training sets the output bias) */
};

/* ---------------------------------------------------------------------------------------------- */
/* configuration                                                                                   */

void fl_dae_config_default(fl_dae_config *c)
{
    memset(c, 0, sizeof *c);
    c->bin = 1;
    c->width = 128;
    c->embedding = 32;
    c->l1 = 1e-5f;
    c->l1_after = 1e-5f;
    c->lr = 3e-5f;
    c->max_lr = 1e-4f;
    c->step_size_up = 15;
    c->adam_beta1 = 0.9f;
    c->adam_beta2 = 0.999f;
    c->adam_eps = 1e-8f;
    c->epochs = 10;
    c->batch = 32;
    c->scan_stride = 1;
    c->fraction = 1.f;
    c->seed = 12;
}

static int32_t count_pools(const fl_dae_config *c)
{
    int32_t n = 0;
    while (n < FL_DAE_MAX_POOLS && c->pools[n] > 0) n++;
    return n;
}

fl_status fl_dae_derive_pools(fl_ctx *ctx, fl_dae_config *c)
{
    const int64_t H = c->pattern_h, W = c->pattern_w;
    if (H < 1 || W < 1) return fl_fail(ctx, FL_EINVAL, "the pattern size is not set");
    int32_t n = count_pools(c);
    for (int32_t i = n; i < FL_DAE_MAX_POOLS; i++)
        if (c->pools[i] != 0) return fl_fail(ctx, FL_EINVAL, "pooling factors must be listed without gaps");
    if (n == 0 && c->pools[0] == 0) {
        if (H % 8 || (H / 8 & (H / 8 - 1)))
            return fl_fail(ctx, FL_EINVAL,
                           "the (binned) pattern height %lld is not 8 times a power of two (8, 16, 32, ..., 1024): "
                           "choose another binning or give the pooling factors explicitly",
                           (long long)H);
        int64_t r = H / 8;
        while (r >= 4 && n < FL_DAE_MAX_POOLS) {
            c->pools[n++] = 4;
            r /= 4;
        }
        if (r == 2 && n < FL_DAE_MAX_POOLS) {
            c->pools[n++] = 2;
            r = 1;
        }
        if (r != 1) return fl_fail(ctx, FL_EINVAL, "pattern height %lld needs too many pooling steps", (long long)H);
    }
    int64_t prod = 1;
    for (int32_t i = 0; i < n; i++) {
        if (c->pools[i] < 2 || c->pools[i] > 8)
            return fl_fail(ctx, FL_EINVAL, "pooling factor %d is outside 2..8", c->pools[i]);
        prod *= c->pools[i];
    }
    if (H % prod || W % prod)
        return fl_fail(ctx, FL_EINVAL,
                       "the pattern size %lld x %lld is not divisible by the product %lld of the pooling factors",
                       (long long)W, (long long)H, (long long)prod);
    return FL_OK;
}

static fl_status check_config(fl_ctx *ctx, const fl_dae_config *c)
{
    if (c->pattern_w < 4 || c->pattern_h < 4 || c->pattern_w > 4096 || c->pattern_h > 4096)
        return fl_fail(ctx, FL_EINVAL, "pattern size %d x %d is outside 4..4096", c->pattern_w, c->pattern_h);
    if (c->bin != 1 && c->bin != 2 && c->bin != 4) return fl_fail(ctx, FL_EINVAL, "binning must be 1, 2 or 4 (got %d)", c->bin);
    if (c->width < 1 || c->width > 4096) return fl_fail(ctx, FL_EINVAL, "conv width must be 1..4096 (got %d)", c->width);
    if (c->embedding < 1 || c->embedding > 65536)
        return fl_fail(ctx, FL_EINVAL, "embedding size must be 1..65536 (got %d)", c->embedding);
    if (!isfinite(c->normalise) || c->normalise > 1e9f)
        return fl_fail(ctx, FL_EINVAL, "the normalisation target must be finite and <= 1e9 (0: off, < 0: automatic)");
    const float reg[6] = {c->l1, c->contrastive, c->divergence, c->l1_after, c->contrastive_after, c->divergence_after};
    for (int i = 0; i < 6; i++)
        if (!isfinite(reg[i]) || reg[i] < 0 || reg[i] > 1e6)
            return fl_fail(ctx, FL_EINVAL, "regulariser weights must be finite and >= 0");
    if (!(c->lr > 0 && c->lr < 10) || !(c->max_lr > 0 && c->max_lr < 10))
        return fl_fail(ctx, FL_EINVAL, "learning rates must be in (0, 10)");
    if (c->step_size_up < 1) return fl_fail(ctx, FL_EINVAL, "the learning-rate cycle needs step_size_up >= 1 epoch");
    if (!(c->adam_beta1 >= 0 && c->adam_beta1 < 1) || !(c->adam_beta2 >= 0 && c->adam_beta2 < 1) ||
        !(c->adam_eps > 0 && c->adam_eps < 1))
        return fl_fail(ctx, FL_EINVAL, "invalid Adam settings");
    if (c->epochs < 1 || c->epochs > 100000000) return fl_fail(ctx, FL_EINVAL, "epochs must be >= 1");
    if (c->batch < 1 || c->batch > 65536) return fl_fail(ctx, FL_EINVAL, "batch must be 1..65536 (got %d)", c->batch);
    if (c->scan_stride < 1 || c->scan_stride > 65536) return fl_fail(ctx, FL_EINVAL, "scan stride must be >= 1");
    if (!(c->fraction > 0 && c->fraction <= 1)) return fl_fail(ctx, FL_EINVAL, "training fraction must be in (0, 1]");
    if (c->schedule_epoch < 0) return fl_fail(ctx, FL_EINVAL, "the schedule epoch must be >= 0");
    fl_dae_config t = *c;
    return fl_dae_derive_pools(ctx, &t);
}

/* ---------------------------------------------------------------------------------------------- */
/* network                                                                                         */

static fl_node conv3(fl_graph *g, fl_node x, const char *name, int64_t cout)
{
    return fl_g_conv2d(g, x, name, cout, 3, 3, 1, 1, 1, 1, 1, 1);
}

/* ConvBlock then IdentityBlock, named prefix.idx and prefix.idx+1. */
static fl_node res_block(fl_graph *g, fl_node x, const char *prefix, int idx, int64_t C)
{
    char n[96];
    snprintf(n, sizeof n, "%s.%d.c1", prefix, idx);
    fl_node h = conv3(g, x, n, C);
    snprintf(n, sizeof n, "%s.%d.c2", prefix, idx);
    h = conv3(g, h, n, C);
    snprintf(n, sizeof n, "%s.%d.c3", prefix, idx);
    h = conv3(g, h, n, C);
    snprintf(n, sizeof n, "%s.%d.norm", prefix, idx);
    h = fl_g_leaky_relu(g, fl_g_layernorm_plane(g, h, n), 0.f);
    fl_node add[2] = {h, x};
    h = fl_g_add(g, 2, add);
    snprintf(n, sizeof n, "%s.%d.c", prefix, idx + 1);
    h = conv3(g, h, n, C);
    snprintf(n, sizeof n, "%s.%d.norm", prefix, idx + 1);
    return fl_g_leaky_relu(g, fl_g_layernorm_plane(g, h, n), 0.f);
}

static fl_node build_encoder(fl_graph *g, const fl_dae *m, fl_node *input)
{
    const fl_dae_config *c = &m->cfg;
    fl_node x = fl_g_input(g, 1, c->pattern_h, c->pattern_w);
    *input = x;
    fl_node h = conv3(g, x, "encoder.0", c->width);
    int idx = 1;
    char n[64];
    for (int32_t i = 0; i < m->npools; i++) {
        h = res_block(g, h, "encoder", idx, c->width);
        h = fl_g_maxpool(g, h, c->pools[i]);
        idx += 3;
    }
    snprintf(n, sizeof n, "encoder.%d", idx);
    h = conv3(g, h, n, 1);
    h = fl_g_linear(g, h, "fc_enc", c->embedding);
    return fl_g_leaky_relu(g, h, 0.f);
}

static fl_node build_decoder(fl_graph *g, const fl_dae *m, fl_node *input)
{
    const fl_dae_config *c = &m->cfg;
    fl_node z = fl_g_input(g, c->embedding, 1, 1);
    fl_graph_want_input_grad(g, z); /* the encoder trains through the decoder input */
    *input = z;
    fl_node h = fl_g_linear(g, z, "fc_dec", m->bh * m->bw);
    h = fl_g_reshape(g, h, 1, m->bh, m->bw);
    h = conv3(g, h, "decoder.0", c->width);
    h = res_block(g, h, "decoder", 1, c->width);
    int idx = 3;
    int64_t H = m->bh, W = m->bw;
    char n[64];
    for (int32_t i = m->npools - 1; i >= 0; i--) {
        H *= c->pools[i];
        W *= c->pools[i];
        h = fl_g_upsample_bilinear(g, h, H, W, 1);
        h = res_block(g, h, "decoder", idx + 1, c->width);
        idx += 3;
    }
    snprintf(n, sizeof n, "decoder.%d", idx);
    return conv3(g, h, n, 1);
}

typedef struct net_half {
    fl_graph *g;
    fl_node in, out;
} net_half;

static void half_free(net_half *h)
{
    fl_graph_free(h->g);
    h->g = NULL;
}

/* Builds (not finalised) the encoder (part 0) or decoder (part 1) graph. */
static fl_status half_build(fl_ctx *ctx, const fl_dae *m, int part, int64_t B, int training, net_half *h)
{
    h->g = fl_graph_new(ctx, B, training);
    if (!h->g) return fl_fail(ctx, FL_ENOMEM, "out of memory for the network");
    h->out = part ? build_decoder(h->g, m, &h->in) : build_encoder(h->g, m, &h->in);
    if (h->out < 0) {
        fl_status st = fl_graph_finalize(h->g); /* reports the build error */
        half_free(h);
        return st ? st : fl_fail(ctx, FL_EINTERNAL, "network build failed");
    }
    fl_graph_keep(h->g, h->out);
    return FL_OK;
}

static fl_status half_ready(fl_ctx *ctx, const fl_dae *m, net_half *h)
{
    fl_status st = fl_graph_finalize(h->g);
    if (!st) st = fl_graph_import(h->g, ctx, &m->tensors, "");
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* model object                                                                                    */

static fl_status set_shape(fl_ctx *ctx, fl_dae *m)
{
    fl_status st = check_config(ctx, &m->cfg);
    if (st) return st;
    st = fl_dae_derive_pools(ctx, &m->cfg);
    if (st) return st;
    m->npools = count_pools(&m->cfg);
    int64_t prod = 1;
    for (int32_t i = 0; i < m->npools; i++) prod *= m->cfg.pools[i];
    m->bh = m->cfg.pattern_h / prod;
    m->bw = m->cfg.pattern_w / prod;
    return FL_OK;
}

/* Number of values the model stores (parameters of both graphs), without allocating the networks. */
static fl_status model_values(fl_ctx *ctx, const fl_dae *m, int64_t *count)
{
    int64_t total = 0;
    for (int part = 0; part < 2; part++) {
        net_half h;
        fl_status st = half_build(ctx, m, part, 1, 0, &h);
        if (st) return st;
        total += fl_graph_param_count(h.g); /* includes alignment padding: an upper bound */
        half_free(&h);
    }
    *count = total;
    return FL_OK;
}

fl_status fl_dae_create(fl_ctx *ctx, const fl_dae_config *cfg, fl_dae **out)
{
    if (!cfg || !out) return fl_fail(ctx, FL_EINVAL, "create: bad arguments");
    fl_dae *m = calloc(1, sizeof *m);
    if (!m) return fl_fail(ctx, FL_ENOMEM, "out of memory for the model");
    m->cfg = *cfg;
    fl_tensor_list_init(&m->tensors);
    fl_status st = set_shape(ctx, m);
    for (int part = 0; part < 2 && !st; part++) {
        net_half h;
        st = half_build(ctx, m, part, 1, 0, &h);
        if (st) break;
        st = fl_graph_finalize(h.g);
        if (!st) {
            fl_graph_init_params(h.g, m->cfg.seed ^ (part ? SEED_DEC : SEED_ENC), FL_INIT_TORCH);
            st = fl_graph_export(h.g, ctx, &m->tensors, "");
        }
        half_free(&h);
    }
    if (st) {
        fl_dae_free(m);
        return st;
    }
    for (int32_t i = 0; i < m->tensors.count; i++) m->nparams += fl_tensor_numel(&m->tensors.items[i]);
    /* Embedding channels start alive: fc_enc.bias = FC_ENC_BIAS0 instead of PyTorch's U(-1/8, 1/8), which
     * leaves some channels below zero for every pattern from the start (ReLU: no gradient, dead for good). */
    fl_tensor *eb = (fl_tensor *)fl_tensor_list_find(&m->tensors, "fc_enc.bias");
    if (!eb) {
        fl_dae_free(m);
        return fl_fail(ctx, FL_EINTERNAL, "the network has no fc_enc.bias");
    }
    for (int64_t i = 0; i < fl_tensor_numel(eb); i++) eb->data[i] = FC_ENC_BIAS0;
    m->fresh = 1;
    *out = m;
    return FL_OK;
}

void fl_dae_free(fl_dae *m)
{
    if (!m) return;
    fl_tensor_list_free(&m->tensors);
    free(m->hist);
    free(m->training_json);
    free(m);
}

const fl_dae_config *fl_dae_get_config(const fl_dae *m) { return m ? &m->cfg : NULL; }
int64_t fl_dae_param_count(const fl_dae *m) { return m ? m->nparams : 0; }
void fl_dae_bottleneck(const fl_dae *m, int64_t *bh, int64_t *bw)
{
    *bh = m->bh;
    *bw = m->bw;
}
const fl_dae_epoch *fl_dae_history(const fl_dae *m, int32_t *epochs)
{
    *epochs = m ? m->nhist : 0;
    return m ? m->hist : NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* regularisers                                                                                    */

double fl_dae_regularisers(const float *z, int64_t B, int64_t K, double l1, double contrastive, double divergence,
                           double *dz, double parts[3])
{
    double r1 = 0, rc = 0, rd = 0;
    if (dz) memset(dz, 0, (size_t)(B * K) * sizeof(double));
    /* R1 = l1 * sum|z| / B */
    for (int64_t i = 0; i < B * K; i++) {
        r1 += fabs((double)z[i]);
        if (dz) dz[i] += l1 * (z[i] > 0 ? 1.0 : z[i] < 0 ? -1.0 : 0.0) / (double)B;
    }
    r1 *= l1 / (double)B;
    /* Rc = c / (2B) sum_{i in S} (sum_{j in S} cos(z_i, z_j) - 1) */
    if (contrastive > 0) {
        double *nrm = malloc((size_t)B * sizeof(double));
        char *in = malloc((size_t)B);
        if (nrm && in) {
            for (int64_t b = 0; b < B; b++) {
                double s = 0, q = 0;
                for (int64_t k = 0; k < K; k++) {
                    s += z[b * K + k];
                    q += (double)z[b * K + k] * z[b * K + k];
                }
                in[b] = s != 0.0;
                nrm[b] = fmax(sqrt(q), 1e-8);
            }
            const double f = contrastive / (2.0 * (double)B);
            for (int64_t i = 0; i < B; i++) {
                if (!in[i]) continue;
                double row = 0;
                for (int64_t j = 0; j < B; j++) {
                    if (!in[j]) continue;
                    double dot = 0;
                    for (int64_t k = 0; k < K; k++) dot += (double)z[i * K + k] * z[j * K + k];
                    const double cs = dot / (nrm[i] * nrm[j]);
                    row += cs;
                    if (dz && j != i) /* each unordered pair appears twice: 2 f d cos / d z_i */
                        for (int64_t k = 0; k < K; k++)
                            dz[i * K + k] += 2.0 * f * (z[j * K + k] / (nrm[i] * nrm[j]) - cs * z[i * K + k] / (nrm[i] * nrm[i]));
                }
                rc += row - 1.0;
            }
            rc *= f;
        }
        free(nrm);
        free(in);
    }
    /* Rd = d / B sum_b 1/2 sum_{j,k non-zero} |z_bj - z_bk|, subtracted */
    if (divergence > 0) {
        const double f = divergence / (double)B;
        for (int64_t b = 0; b < B; b++) {
            const float *a = z + b * K;
            double s = 0;
            for (int64_t j = 0; j < K; j++) {
                if (a[j] == 0.f) continue;
                double gsum = 0;
                for (int64_t k = 0; k < K; k++) {
                    if (a[k] == 0.f) continue;
                    const double d = (double)a[j] - a[k];
                    s += fabs(d);
                    gsum += d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0;
                }
                if (dz) dz[b * K + j] -= f * gsum; /* d(1/2 sum_{j,k}|.|)/da_j = sum_k sign(a_j - a_k) */
            }
            rd += 0.5 * s;
        }
        rd *= f;
    }
    if (parts) {
        parts[0] = r1;
        parts[1] = rc;
        parts[2] = rd;
    }
    return r1 + rc - rd;
}

/* ---------------------------------------------------------------------------------------------- */
/* training pair                                                                                   */

struct fl_dae_net {
    const fl_dae *m;
    net_half enc, dec;
    int64_t B;
    float *zt;     /* B x K */
    double *dz;    /* B x K */
    double reg_coef[3];
    double parts[4]; /* mse, r1, rc, rd of the last step */
};

static void net_free(fl_dae_net *n)
{
    if (!n) return;
    half_free(&n->enc);
    half_free(&n->dec);
    free(n->zt);
    free(n->dz);
    free(n);
}

static size_t net_bytes_built(const fl_dae_net *n)
{
    return fl_graph_memory_bytes(n->enc.g) + fl_graph_memory_bytes(n->dec.g);
}

/* extra_bytes: what the caller will allocate besides the graphs (checked with them against the budget). */
static fl_status net_new(fl_ctx *ctx, const fl_dae *m, int64_t B, size_t extra_bytes, fl_dae_net **out)
{
    fl_dae_net *n = calloc(1, sizeof *n);
    if (!n) return fl_fail(ctx, FL_ENOMEM, "out of memory for the network");
    n->m = m;
    n->B = B;
    fl_status st = half_build(ctx, m, 0, B, 1, &n->enc);
    if (!st) st = half_build(ctx, m, 1, B, 1, &n->dec);
    if (!st) {
        size_t need = net_bytes_built(n) + extra_bytes;
        char what[96];
        snprintf(what, sizeof what, "training (batch %lld)", (long long)B);
        st = fl_check_budget(ctx, need, what);
    }
    if (!st) st = half_ready(ctx, m, &n->enc);
    if (!st) st = half_ready(ctx, m, &n->dec);
    const int64_t K = m->cfg.embedding;
    if (!st) {
        n->zt = malloc((size_t)(B * K) * sizeof(float));
        n->dz = malloc((size_t)(B * K) * sizeof(double));
        if (!n->zt || !n->dz) st = fl_fail(ctx, FL_ENOMEM, "out of memory for the network");
    }
    if (st) {
        net_free(n);
        return st;
    }
    n->reg_coef[0] = m->cfg.l1;
    n->reg_coef[1] = m->cfg.contrastive;
    n->reg_coef[2] = m->cfg.divergence;
    *out = n;
    return FL_OK;
}

/* The encoder input (1, B, H, W) holds B log-space patterns. Forward, loss, backward; returns the
 * gradient-form loss (MSE + R1 + Rc - Rd); the parts are in n->parts. */
static double net_loss_grad(fl_dae_net *n, int64_t B)
{
    const fl_dae *m = n->m;
    const int64_t K = m->cfg.embedding, HW = (int64_t)m->cfg.pattern_h * m->cfg.pattern_w;
    fl_graph_set_batch(n->enc.g, B);
    fl_graph_set_batch(n->dec.g, B);
    fl_graph_forward(n->enc.g, 1);
    const float *z = fl_graph_data(n->enc.g, n->enc.out); /* (K, B) */
    memcpy(fl_graph_data(n->dec.g, n->dec.in), z, (size_t)(K * B) * sizeof(float));
    fl_graph_forward(n->dec.g, 1);
    const float *y = fl_graph_data(n->dec.g, n->dec.out), *x = fl_graph_data(n->enc.g, n->enc.in);
    float *dy = fl_graph_grad(n->dec.g, n->dec.out);
    const double scale = 2.0 / (double)(B * HW);
    double sse = 0;
    for (int64_t i = 0; i < B * HW; i++) {
        const double d = (double)y[i] - x[i];
        sse += d * d;
        dy[i] = (float)(scale * d);
    }
    fl_graph_zero_grads(n->enc.g);
    fl_graph_zero_grads(n->dec.g);
    fl_graph_backward(n->dec.g, n->dec.out);
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++) n->zt[b * K + k] = z[k * B + b];
    double parts[3];
    const double reg = fl_dae_regularisers(n->zt, B, K, n->reg_coef[0], n->reg_coef[1], n->reg_coef[2], n->dz, parts);
    const float *dzin = fl_graph_grad(n->dec.g, n->dec.in);
    float *dzout = fl_graph_grad(n->enc.g, n->enc.out);
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < K; k++) dzout[k * B + b] = dzin[k * B + b] + (float)n->dz[b * K + k];
    fl_graph_backward(n->enc.g, n->enc.out);
    n->parts[0] = sse / (double)(B * HW);
    n->parts[1] = parts[0];
    n->parts[2] = parts[1];
    n->parts[3] = parts[2];
    return n->parts[0] + reg;
}

static fl_status net_export(fl_ctx *ctx, fl_dae_net *n, fl_tensor_list *l)
{
    fl_tensor_list_init(l);
    fl_status st = fl_graph_export(n->enc.g, ctx, l, "");
    if (!st) st = fl_graph_export(n->dec.g, ctx, l, "");
    if (st) {
        fl_tensor_list_free(l);
        if (!fl_ctx_message(ctx)[0]) fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    return st;
}

fl_status fl_dae_debug_net_new(fl_ctx *ctx, const fl_dae *m, int64_t B, fl_dae_net **out)
{
    return net_new(ctx, m, B, 0, out);
}
void fl_dae_debug_net_free(fl_dae_net *n) { net_free(n); }
float *fl_dae_debug_params(fl_dae_net *n, int part, int64_t *count)
{
    fl_graph *g = part ? n->dec.g : n->enc.g;
    *count = fl_graph_param_count(g);
    return fl_graph_params(g);
}
float *fl_dae_debug_grads(fl_dae_net *n, int part) { return fl_graph_param_grads(part ? n->dec.g : n->enc.g); }
double fl_dae_debug_loss_grad(fl_dae_net *n, const float *x, int64_t B)
{
    const int64_t HW = (int64_t)n->m->cfg.pattern_h * n->m->cfg.pattern_w;
    memcpy(fl_graph_data(n->enc.g, n->enc.in), x, (size_t)(B * HW) * sizeof(float));
    return net_loss_grad(n, B);
}

/* ---------------------------------------------------------------------------------------------- */
/* data                                                                                            */

/* log(I + 1) in place; error naming the pattern when a value is not usable. */
static fl_status log_transform(fl_ctx *ctx, float *x, int64_t count, int64_t HW, int64_t first_index, const int64_t *idx,
                               double norm)
{
    for (int64_t p = 0; p < count; p++) {
        float *q = x + p * HW;
        double sum = 0;
        for (int64_t j = 0; j < HW; j++) {
            if (!(q[j] > -1.f) || !isfinite(q[j]))
                return fl_fail(ctx, FL_EINVAL,
                               "pattern %lld holds %g at detector pixel %lld: intensities must be finite and > -1 "
                               "(the network sees log(I + 1))",
                               (long long)(idx ? idx[p] : first_index + p), (double)q[j], (long long)j);
            sum += q[j];
        }
        /* optional intensity normalisation (an all-dark pattern stays as it is) */
        const float f = norm > 0 && sum > 0 ? (float)(norm * (double)HW / sum) : 1.f;
        for (int64_t j = 0; j < HW; j++) q[j] = log1pf(q[j] * f);
    }
    return FL_OK;
}

/* Mean counts per pixel of n raw patterns (the automatic normalisation target). */
static double mean_counts(const float *x, int64_t n, int64_t HW)
{
    double s = 0;
    for (int64_t i = 0; i < n * HW; i++) s += x[i];
    return n * HW > 0 ? s / (double)(n * HW) : 0;
}

static fl_status check_source(fl_ctx *ctx, const fl_dae *m, fl_stem4d *src, int64_t *n)
{
    if (!src) return fl_fail(ctx, FL_EINVAL, "no 4D-STEM source");
    int64_t bw = 0, bh = 0;
    fl_status st = fl_stem4d_check_bin(ctx, src, m->cfg.bin, &bw, &bh);
    if (st) return st;
    if (bw != m->cfg.pattern_w || bh != m->cfg.pattern_h)
        return fl_fail(ctx, FL_EMISMATCH,
                       "the model works on %d x %d patterns (binning %d) but the data give %lld x %lld patterns",
                       m->cfg.pattern_w, m->cfg.pattern_h, m->cfg.bin, (long long)bw, (long long)bh);
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    *n = info.patterns;
    return FL_OK;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Training selection: every stride-th scan position in x and y, then a seeded random fraction, sorted. */
static fl_status select_training(fl_ctx *ctx, const fl_dae_config *c, const fl_stem4d_info *info, int64_t **out,
                                 int64_t *count)
{
    const int64_t sxn = (info->scan_x + c->scan_stride - 1) / c->scan_stride;
    const int64_t syn = (info->scan_y + c->scan_stride - 1) / c->scan_stride;
    int64_t n = sxn * syn;
    int64_t *idx = malloc((size_t)(n ? n : 1) * sizeof(int64_t));
    if (!idx) return fl_fail(ctx, FL_ENOMEM, "out of memory for the training selection");
    int64_t k = 0;
    for (int64_t sy = 0; sy < info->scan_y; sy += c->scan_stride)
        for (int64_t sx = 0; sx < info->scan_x; sx += c->scan_stride) idx[k++] = sx + info->scan_x * sy;
    if (c->fraction < 1.f) {
        int64_t keep = (int64_t)llround((double)n * c->fraction);
        if (keep < 1) keep = 1;
        fl_rng r;
        fl_rng_init(&r, c->seed, 0x5e1ec7ull);
        fl_rng_shuffle(&r, idx, n);
        n = keep;
        qsort(idx, (size_t)n, sizeof(int64_t), cmp_i64);
    }
    *out = idx;
    *count = n;
    return FL_OK;
}

/* Reads the sorted patterns idx[0..n) (binned, raw) into out (n x HW), in sequential chunks of at most
 * `chunk` patterns through tmp (chunk x HW floats). */
static fl_status read_selected(fl_ctx *ctx, fl_stem4d *src, int32_t bin, const int64_t *idx, int64_t n, int64_t HW,
                               float *tmp, int64_t chunk, float *out)
{
    int64_t i = 0;
    while (i < n) {
        const int64_t first = idx[i];
        int64_t j = i;
        while (j < n && idx[j] - first < chunk) j++;
        const int64_t span = idx[j - 1] - first + 1;
        fl_status st;
        if (j - i == span) {
            st = fl_stem4d_read(ctx, src, first, span, bin, out + i * HW);
        } else {
            st = fl_stem4d_read(ctx, src, first, span, bin, tmp);
            for (int64_t k = i; k < j && !st; k++)
                memcpy(out + k * HW, tmp + (idx[k] - first) * HW, (size_t)HW * sizeof(float));
        }
        if (st) return st;
        i = j;
    }
    return FL_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* training                                                                                        */

static double cyclic_lr(const fl_dae_config *c, int32_t e)
{
    if (!c->cyclic) return c->lr;
    const double s = c->step_size_up;
    const double cycle = floor(1.0 + e / (2.0 * s));
    const double x = fabs(e / s - 2.0 * cycle + 1.0);
    return c->lr + (c->max_lr - c->lr) * fmax(0.0, 1.0 - x);
}

static void epoch_coefs(const fl_dae_config *c, int32_t e, double *coef)
{
    const int after = c->schedule_epoch > 0 && e >= c->schedule_epoch;
    coef[0] = after ? c->l1_after : c->l1;
    coef[1] = after ? c->contrastive_after : c->contrastive;
    coef[2] = after ? c->divergence_after : c->divergence;
}

static void record_json(fl_dae *m, const fl_dae_report *r)
{
    fl_strbuf b;
    fl_strbuf_init(&b);
    fl_strbuf_printf_c(&b,
                       "{\"epochs_run\":%d,\"best_epoch\":%d,\"best_loss\":%.9g,\"train_patterns\":%lld,"
                       "\"cached\":%d,\"cancelled\":%d,\"epochs\":[",
                       r->epochs_run, r->best_epoch, r->best_loss, (long long)r->train_patterns, r->cached, r->cancelled);
    for (int32_t e = 0; e < m->nhist; e++) {
        const fl_dae_epoch *h = &m->hist[e];
        fl_strbuf_printf_c(&b, "%s{\"lr\":%.7g,\"loss\":%.9g,\"mse\":%.9g,\"l1\":%.7g,\"contrastive\":%.7g,\"divergence\":%.7g}",
                           e ? "," : "", h->lr, h->loss, h->mse, h->l1, h->contrastive, h->divergence);
    }
    fl_strbuf_printf(&b, "]}");
    if (!b.failed) {
        free(m->training_json);
        m->training_json = b.data;
        b.data = NULL;
    }
    fl_strbuf_free(&b);
}

/* First training of a fresh model: the bias of the decoder's last conv (the output, log(I + 1) units) starts at
 * the mean log value of the training patterns instead of near 0. Otherwise the first hundred Adam steps are
 * spent shifting the whole output by ~1-3 log units; that coherent gradient runs back through fc_dec into
 * every embedding channel at once and pushes many of them below zero for good (dead ReLU channels: about half
 * of them in the first epoch on the synthetic stem4d set). The mean comes from the cached set or, when the
 * set is streamed, from up to 1024 evenly spaced selected patterns. The model itself is changed only when
 * training succeeds (the network holds a copy). */
static fl_status init_output_bias(fl_ctx *ctx, const fl_dae *m, fl_dae_net *net, fl_stem4d *src, const int64_t *sel,
                                  int64_t ntrain, const float *set)
{
    const fl_dae_config *c = &m->cfg;
    const int64_t HW = (int64_t)c->pattern_h * c->pattern_w;
    double sum = 0;
    int64_t used = 0;
    fl_status st = FL_OK;
    if (set) {
        for (int64_t i = 0; i < ntrain * HW; i++) sum += set[i];
        used = ntrain;
    } else {
        float *one = fl_alloc((size_t)HW * sizeof(float));
        if (!one) return fl_fail(ctx, FL_ENOMEM, "out of memory");
        const int64_t want = ntrain < 1024 ? ntrain : 1024;
        for (int64_t k = 0; k < want && !st; k++) {
            const int64_t t = sel[k * ntrain / want];
            st = fl_stem4d_read(ctx, src, t, 1, c->bin, one);
            if (!st) st = log_transform(ctx, one, 1, HW, t, NULL, c->normalise);
            for (int64_t j = 0; j < HW && !st; j++) sum += one[j];
        }
        fl_free(one);
        used = want;
    }
    if (st || used < 1) return st;
    char name[64];
    snprintf(name, sizeof name, "decoder.%d.bias", 3 + 3 * m->npools);
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    for (int32_t i = 0; i < m->tensors.count && !st; i++) {
        const fl_tensor *t = &m->tensors.items[i];
        fl_tensor *u = fl_tensor_list_add(ctx, &l, t->name, t->ndim, t->shape, t->data);
        if (!u) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
        else if (!strcmp(t->name, name) && fl_tensor_numel(u) == 1) u->data[0] = (float)(sum / (double)(used * HW));
    }
    if (!st) st = fl_graph_import(net->dec.g, ctx, &l, "");
    fl_tensor_list_free(&l);
    return st;
}

fl_status fl_dae_train(fl_ctx *ctx, fl_dae *m, fl_stem4d *src, fl_dae_report *report)
{
    if (!m) return fl_fail(ctx, FL_EINVAL, "train: no model");
    int64_t npat = 0;
    fl_status st = check_source(ctx, m, src, &npat);
    if (st) return st;
    const fl_dae_config *c = &m->cfg;
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    int64_t *sel = NULL, ntrain = 0;
    if ((st = select_training(ctx, c, &info, &sel, &ntrain))) return st;
    const int64_t HW = (int64_t)c->pattern_h * c->pattern_w;
    const int64_t B = c->batch < ntrain ? c->batch : ntrain;
    size_t set_bytes = 0;
    int cached = 0;
    if (!fl_mul_size((size_t)ntrain, (size_t)HW * sizeof(float), &set_bytes)) set_bytes = SIZE_MAX;
    const size_t budget = fl_ctx_memory_budget(ctx);
    const int64_t chunk = 64;
    const size_t tmp_bytes = (size_t)chunk * (size_t)HW * sizeof(float);
    if (set_bytes != SIZE_MAX && (budget == 0 || set_bytes + tmp_bytes <= budget / 2)) cached = 1;
    fl_dae_net *net = NULL;
    /* best state: both graphs' flat state */
    size_t extra = (cached ? set_bytes + tmp_bytes : 0) + (size_t)m->nparams * 2 * sizeof(float) +
                   (size_t)ntrain * 2 * sizeof(int64_t);
    st = net_new(ctx, m, B, extra, &net);
    float *set = NULL, *tmp = NULL, *best = NULL;
    int64_t *order = NULL;
    int64_t ns_enc = 0, ns_dec = 0;
    fl_dae_epoch *hist = NULL;
    if (!st) {
        ns_enc = fl_graph_state_count(net->enc.g);
        ns_dec = fl_graph_state_count(net->dec.g);
        best = fl_alloc((size_t)(ns_enc + ns_dec) * sizeof(float));
        order = malloc((size_t)ntrain * sizeof(int64_t));
        hist = calloc((size_t)c->epochs, sizeof *hist);
        if (cached) {
            set = fl_alloc(set_bytes);
            tmp = fl_alloc(tmp_bytes);
        }
        if (!best || !order || !hist || (cached && (!set || !tmp)))
            st = fl_fail(ctx, FL_ENOMEM, "out of memory for training on %lld patterns", (long long)ntrain);
    }
    if (!st && cached) {
        st = read_selected(ctx, src, c->bin, sel, ntrain, HW, tmp, chunk, set);
        if (!st && m->cfg.normalise < 0) m->cfg.normalise = (float)fmax(mean_counts(set, ntrain, HW), 1e-6);
        if (!st) st = log_transform(ctx, set, ntrain, HW, 0, sel, m->cfg.normalise);
    }
    if (!st && !cached && m->cfg.normalise < 0) { /* automatic normalisation target: one pass over the selection */
        double sum = 0;
        float *one = fl_alloc((size_t)HW * sizeof(float));
        if (!one) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
        for (int64_t i = 0; i < ntrain && !st; i++) {
            st = fl_stem4d_read(ctx, src, sel[i], 1, c->bin, one);
            if (!st) sum += mean_counts(one, 1, HW);
        }
        fl_free(one);
        if (!st) m->cfg.normalise = (float)fmax(sum / (double)ntrain, 1e-6);
    }
    if (!st && m->fresh) st = init_output_bias(ctx, m, net, src, sel, ntrain, cached ? set : NULL);
    fl_dae_report rep;
    memset(&rep, 0, sizeof rep);
    rep.best_epoch = -1;
    rep.best_loss = INFINITY;
    rep.train_patterns = ntrain;
    rep.cached = cached;
    if (!st) {
        fl_graph_get_state(net->enc.g, best);
        fl_graph_get_state(net->dec.g, best + ns_enc);
    }
    const int64_t nb = (ntrain + B - 1) / B;
    int64_t step = 0;
    const double t0 = fl_now_seconds();
    int64_t seen_total = 0;
    for (int32_t e = 0; e < c->epochs && !st; e++) {
        double coef[3];
        epoch_coefs(c, e, coef);
        if (e > 0 && c->schedule_epoch > 0 && e == c->schedule_epoch) rep.best_loss = INFINITY; /* new phase */
        memcpy(net->reg_coef, coef, sizeof coef);
        const double lr = cyclic_lr(c, e);
        fl_rng r;
        fl_rng_init(&r, c->seed, 0xE0000000ull + (uint64_t)e);
        for (int64_t i = 0; i < ntrain; i++) order[i] = i;
        fl_rng_shuffle(&r, order, ntrain);
        double sums[5] = {0, 0, 0, 0, 0};
        for (int64_t bi = 0; bi < nb && !st; bi++) {
            const int64_t s0 = bi * B, b = ntrain - s0 < B ? ntrain - s0 : B;
            float *x = fl_graph_data(net->enc.g, net->enc.in); /* (1, b, H, W) */
            for (int64_t k = 0; k < b && !st; k++) {
                const int64_t t = order[s0 + k];
                if (cached) {
                    memcpy(x + k * HW, set + t * HW, (size_t)HW * sizeof(float));
                } else {
                    st = fl_stem4d_read(ctx, src, sel[t], 1, c->bin, x + k * HW);
                    if (!st) st = log_transform(ctx, x + k * HW, 1, HW, sel[t], NULL, c->normalise);
                }
            }
            if (st) break;
            net_loss_grad(net, b);
            const double *p = net->parts;
            double rep_loss = p[0] + p[1] + p[2] - p[3] + (p[1] == 0.0 ? 0.5 : 0.0);
            if (!isfinite(rep_loss)) {
                st = fl_fail(ctx, FL_EINVAL, "training diverged (loss %g at epoch %d); lower the learning rate", rep_loss,
                             e + 1);
                break;
            }
            step++;
            fl_graph_adam_step(net->enc.g, (float)lr, c->adam_beta1, c->adam_beta2, c->adam_eps, step);
            fl_graph_adam_step(net->dec.g, (float)lr, c->adam_beta1, c->adam_beta2, c->adam_eps, step);
            sums[0] += rep_loss * (double)b;
            for (int q = 0; q < 4; q++) sums[q + 1] += p[q] * (double)b;
            seen_total += b;
            st = fl_progress(ctx, "train", (int64_t)e * nb + bi + 1, (int64_t)c->epochs * nb, rep_loss, NAN);
        }
        if (st) break;
        fl_dae_epoch *h = &hist[e];
        h->lr = lr;
        h->loss = sums[0] / (double)ntrain;
        h->mse = sums[1] / (double)ntrain;
        h->l1 = sums[2] / (double)ntrain;
        h->contrastive = sums[3] / (double)ntrain;
        h->divergence = sums[4] / (double)ntrain;
        rep.epochs_run = e + 1;
        if (h->loss < rep.best_loss) {
            rep.best_loss = h->loss;
            rep.best_epoch = e;
            fl_graph_get_state(net->enc.g, best);
            fl_graph_get_state(net->dec.g, best + ns_enc);
        }
        st = fl_progress(ctx, "epoch", e + 1, c->epochs, h->loss, NAN);
    }
    rep.seconds = fl_now_seconds() - t0;
    rep.patterns_per_second = rep.seconds > 0 ? (double)seen_total / rep.seconds : 0;
    if (st == FL_ECANCELLED) rep.cancelled = 1;
    if ((st == FL_OK || st == FL_ECANCELLED) && rep.epochs_run > 0) {
        fl_graph_set_state(net->enc.g, best);
        fl_graph_set_state(net->dec.g, best + ns_enc);
        fl_tensor_list l;
        fl_status st2 = net_export(ctx, net, &l);
        if (st2) {
            st = st2;
        } else {
            fl_tensor_list_free(&m->tensors);
            m->tensors = l;
            free(m->hist);
            m->hist = hist;
            m->nhist = rep.epochs_run;
            hist = NULL;
            m->fresh = 0;
            record_json(m, &rep);
        }
    }
    if (report) *report = rep;
    net_free(net);
    fl_free(set);
    fl_free(tmp);
    fl_free(best);
    free(order);
    free(sel);
    free(hist);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* inference                                                                                       */

/* An inference graph of one half for the largest batch <= want whose memory plus `per_pattern_extra`
 * bytes per pattern fits the budget. */
static fl_status infer_half(fl_ctx *ctx, const fl_dae *m, int part, int64_t want, size_t per_pattern_extra,
                            net_half *h, int64_t *batch)
{
    const size_t budget = fl_ctx_memory_budget(ctx);
    int64_t B = want < 1 ? 1 : want;
    for (;;) {
        fl_status st = half_build(ctx, m, part, B, 0, h);
        if (st) return st;
        size_t need = fl_graph_memory_bytes(h->g) + per_pattern_extra * (size_t)B;
        if (budget == 0 || need <= budget || B == 1) break;
        half_free(h);
        B /= 2;
    }
    fl_status st = half_ready(ctx, m, h); /* checks the budget for the graph itself */
    if (!st && budget) {
        size_t need = fl_graph_memory_bytes(h->g) + per_pattern_extra * (size_t)B;
        if (need > budget)
            st = fl_fail(ctx, FL_ENOMEM,
                         "the network needs %.1f MiB for one pattern, more than the memory budget of %.1f MiB",
                         need / 1048576.0, budget / 1048576.0);
    }
    if (st) {
        half_free(h);
        return st;
    }
    *batch = B;
    return FL_OK;
}

/* Runs the encoder on the log-space patterns already in the input (b of them); z -> emb (b x K). */
static void encode_batch(const fl_dae *m, net_half *h, int64_t b, float *emb)
{
    const int64_t K = m->cfg.embedding;
    fl_graph_set_batch(h->g, b);
    fl_graph_forward(h->g, 0);
    const float *z = fl_graph_data(h->g, h->out);
    for (int64_t i = 0; i < b; i++)
        for (int64_t k = 0; k < K; k++) emb[i * K + k] = z[k * b + i];
}

fl_status fl_dae_encode(fl_ctx *ctx, const fl_dae *m, const float *patterns, int64_t n, float *emb)
{
    if (!m || !patterns || !emb || n < 1) return fl_fail(ctx, FL_EINVAL, "encode: bad arguments");
    if (m->cfg.normalise < 0)
        return fl_fail(ctx, FL_EINVAL, "the model's intensity normalisation is automatic and set by training: train it first");
    const int64_t HW = (int64_t)m->cfg.pattern_h * m->cfg.pattern_w, K = m->cfg.embedding;
    net_half h;
    int64_t B;
    fl_status st = infer_half(ctx, m, 0, m->cfg.batch, 0, &h, &B);
    if (st) return st;
    float *out = fl_alloc((size_t)(n * K) * sizeof(float)); /* emb changes only on success */
    if (!out) st = fl_fail(ctx, FL_ENOMEM, "out of memory for %lld embeddings", (long long)n);
    for (int64_t s0 = 0; s0 < n && !st; s0 += B) {
        const int64_t b = n - s0 < B ? n - s0 : B;
        float *x = fl_graph_data(h.g, h.in);
        memcpy(x, patterns + s0 * HW, (size_t)(b * HW) * sizeof(float));
        st = log_transform(ctx, x, b, HW, s0, NULL, m->cfg.normalise);
        if (!st) encode_batch(m, &h, b, out + s0 * K);
        if (!st) st = fl_progress(ctx, "embed", s0 + b, n, NAN, NAN);
    }
    if (!st) memcpy(emb, out, (size_t)(n * K) * sizeof(float));
    fl_free(out);
    half_free(&h);
    return st;
}

fl_status fl_dae_decode(fl_ctx *ctx, const fl_dae *m, const float *emb, int64_t n, float *patterns)
{
    if (!m || !patterns || !emb || n < 1) return fl_fail(ctx, FL_EINVAL, "decode: bad arguments");
    const int64_t HW = (int64_t)m->cfg.pattern_h * m->cfg.pattern_w, K = m->cfg.embedding;
    for (int64_t i = 0; i < n * K; i++)
        if (!isfinite(emb[i])) return fl_fail(ctx, FL_EINVAL, "embedding value %lld is not finite", (long long)i);
    net_half h;
    int64_t B;
    fl_status st = infer_half(ctx, m, 1, m->cfg.batch, 0, &h, &B);
    if (st) return st;
    for (int64_t s0 = 0; s0 < n && !st; s0 += B) {
        const int64_t b = n - s0 < B ? n - s0 : B;
        fl_graph_set_batch(h.g, b);
        float *z = fl_graph_data(h.g, h.in);
        for (int64_t i = 0; i < b; i++)
            for (int64_t k = 0; k < K; k++) z[k * b + i] = emb[(s0 + i) * K + k];
        fl_graph_forward(h.g, 0);
        memcpy(patterns + s0 * HW, fl_graph_data(h.g, h.out), (size_t)(b * HW) * sizeof(float));
        st = fl_progress(ctx, "decode", s0 + b, n, NAN, NAN);
    }
    half_free(&h);
    return st;
}

typedef struct reader_job {
    fl_ctx *ctx; /* the reader's own context (messages, no progress) */
    fl_stem4d *src;
    int64_t first, count, HW;
    int32_t bin;
    float *out;
    fl_status st;
    double norm;
} reader_job;

static void *reader_main(void *u)
{
    reader_job *j = u;
    j->st = fl_stem4d_read(j->ctx, j->src, j->first, j->count, j->bin, j->out);
    if (!j->st) j->st = log_transform(j->ctx, j->out, j->count, j->HW, j->first, NULL, j->norm);
    return NULL;
}

fl_status fl_dae_embed(fl_ctx *ctx, const fl_dae *m, fl_stem4d *src, float *emb)
{
    if (!m || !emb) return fl_fail(ctx, FL_EINVAL, "embed: bad arguments");
    if (m->cfg.normalise < 0)
        return fl_fail(ctx, FL_EINVAL, "the model's intensity normalisation is automatic and set by training: train it first");
    int64_t n = 0;
    fl_status st = check_source(ctx, m, src, &n);
    if (st) return st;
    const int64_t HW = (int64_t)m->cfg.pattern_h * m->cfg.pattern_w, K = m->cfg.embedding;
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    /* per pattern: two read buffers (the batch in work and the one being read) */
    const size_t per = 2 * (size_t)HW * sizeof(float);
    net_half h;
    int64_t B;
    st = infer_half(ctx, m, 0, m->cfg.batch, per, &h, &B);
    if (st) return st;
    if (B > n) B = n;
    float *buf[2] = {fl_alloc((size_t)(B * HW) * sizeof(float)), fl_alloc((size_t)(B * HW) * sizeof(float))};
    fl_ctx *rctx = fl_ctx_new();
    if (!buf[0] || !buf[1] || !rctx) st = fl_fail(ctx, FL_ENOMEM, "out of memory for the input batches");
    if (rctx) fl_ctx_set_threads(rctx, 1);
    reader_job job = {rctx, src, 0, n < B ? n : B, HW, m->cfg.bin, buf[0], FL_OK, m->cfg.normalise};
    if (!st) {
        reader_main(&job); /* the first batch synchronously */
        if (job.st) st = fl_fail(ctx, job.st, "%s", fl_ctx_message(rctx));
    }
    const int64_t nbatch = (n + B - 1) / B;
    for (int64_t k = 0; k < nbatch && !st; k++) {
        const int64_t s0 = k * B, b = n - s0 < B ? n - s0 : B;
        pthread_t th;
        int threaded = 0;
        reader_job next = {rctx, src, s0 + B, 0, HW, m->cfg.bin, buf[(k + 1) & 1], FL_OK, m->cfg.normalise};
        if (k + 1 < nbatch) {
            next.count = n - next.first < B ? n - next.first : B;
            threaded = pthread_create(&th, NULL, reader_main, &next) == 0;
        }
        memcpy(fl_graph_data(h.g, h.in), buf[k & 1], (size_t)(b * HW) * sizeof(float));
        encode_batch(m, &h, b, emb + s0 * K);
        if (k + 1 < nbatch) {
            if (threaded) pthread_join(th, NULL);
            else reader_main(&next);
            if (next.st) st = fl_fail(ctx, next.st, "%s", fl_ctx_message(rctx));
        }
        if (!st) st = fl_progress(ctx, "embed", s0 + b, n, NAN, NAN);
    }
    fl_ctx_free(rctx);
    fl_free(buf[0]);
    fl_free(buf[1]);
    half_free(&h);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* virtual apertures                                                                               */

typedef struct rank_item {
    float v;
    int64_t i;
} rank_item;

static int cmp_rank(const void *a, const void *b)
{
    const rank_item *x = a, *y = b;
    if (x->v != y->v) return x->v < y->v ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

typedef struct aperture_acc {
    const uint8_t *flags; /* n x channels: bit 0 top, bit 1 bottom */
    int32_t channels;
    int64_t HW;
    double *top, *bot;    /* channels x HW */
} aperture_acc;

static fl_status aperture_batch(fl_ctx *ctx, void *user, int64_t first, int64_t count, const float *patterns,
                                int64_t bw, int64_t bh)
{
    (void)ctx;
    (void)bw;
    (void)bh;
    aperture_acc *a = user;
    const int64_t HW = a->HW;
#pragma omp parallel for num_threads(fl_ctx_threads(ctx)) schedule(static)
    for (int32_t k = 0; k < a->channels; k++) {
        for (int64_t p = 0; p < count; p++) {
            const uint8_t f = a->flags[(first + p) * a->channels + k];
            if (!f) continue;
            const float *x = patterns + p * HW;
            if (f & 1)
                for (int64_t j = 0; j < HW; j++) a->top[k * HW + j] += x[j];
            if (f & 2)
                for (int64_t j = 0; j < HW; j++) a->bot[k * HW + j] += x[j];
        }
    }
    return FL_OK;
}

fl_status fl_dae_apertures(fl_ctx *ctx, fl_stem4d *src, int32_t bin, const float *emb, int64_t n, int32_t channels,
                           double frac, float *out)
{
    if (!src || !emb || !out || channels < 1) return fl_fail(ctx, FL_EINVAL, "apertures: bad arguments");
    if (frac == 0) frac = 0.05;
    if (!(frac > 0 && frac <= 0.5)) return fl_fail(ctx, FL_EINVAL, "aperture fraction must be in (0, 0.5]");
    int64_t bw = 0, bh = 0;
    fl_status st = fl_stem4d_check_bin(ctx, src, bin, &bw, &bh);
    if (st) return st;
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    if (info.patterns != n)
        return fl_fail(ctx, FL_EMISMATCH, "%lld embeddings for a data set of %lld patterns", (long long)n,
                       (long long)info.patterns);
    const int64_t HW = bw * bh;
    size_t need = (size_t)n * (size_t)channels + (size_t)n * sizeof(rank_item) + 2 * (size_t)channels * HW * sizeof(double);
    if ((st = fl_check_budget(ctx, need, "the virtual apertures"))) return st;
    uint8_t *flags = calloc((size_t)n * (size_t)channels, 1);
    rank_item *r = malloc((size_t)n * sizeof *r);
    double *top = calloc((size_t)channels * HW, sizeof(double)), *bot = calloc((size_t)channels * HW, sizeof(double));
    if (!flags || !r || !top || !bot) st = fl_fail(ctx, FL_ENOMEM, "out of memory for the virtual apertures");
    int64_t msel = (int64_t)ceil(frac * (double)n);
    if (msel < 1) msel = 1;
    if (msel > n) msel = n;
    for (int32_t k = 0; k < channels && !st; k++) {
        for (int64_t i = 0; i < n; i++) {
            r[i].v = emb[i * channels + k];
            r[i].i = i;
            if (!isfinite(r[i].v)) st = fl_fail(ctx, FL_EINVAL, "embedding value of pattern %lld is not finite", (long long)i);
        }
        if (st) break;
        qsort(r, (size_t)n, sizeof *r, cmp_rank);
        for (int64_t i = 0; i < msel; i++) {
            flags[r[n - 1 - i].i * channels + k] |= 1;
            flags[r[i].i * channels + k] |= 2;
        }
    }
    aperture_acc acc = {flags, channels, HW, top, bot};
    int32_t threads_cap = channels; /* one thread per channel in aperture_batch */
    (void)threads_cap;
    if (!st) st = fl_stem4d_foreach(ctx, src, 0, bin, aperture_batch, &acc);
    if (!st)
        for (int64_t i = 0; i < (int64_t)channels * HW; i++) out[i] = (float)((top[i] - bot[i]) / (double)msel);
    free(flags);
    free(r);
    free(top);
    free(bot);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* model files                                                                                     */

static void config_json(fl_strbuf *b, const fl_dae_config *c)
{
    fl_strbuf_printf_c(b,
                       "{\"pattern_w\":%d,\"pattern_h\":%d,\"bin\":%d,\"width\":%d,\"embedding\":%d,\"pools\":[",
                       c->pattern_w, c->pattern_h, c->bin, c->width, c->embedding);
    for (int32_t i = 0; i < count_pools(c); i++) fl_strbuf_printf(b, "%s%d", i ? "," : "", c->pools[i]);
    fl_strbuf_printf_c(b,
                       "],\"l1\":%.9g,\"contrastive\":%.9g,\"divergence\":%.9g,\"schedule_epoch\":%d,"
                       "\"l1_after\":%.9g,\"contrastive_after\":%.9g,\"divergence_after\":%.9g,\"lr\":%.9g,"
                       "\"cyclic\":%d,\"max_lr\":%.9g,\"step_size_up\":%d,\"adam_beta1\":%.9g,\"adam_beta2\":%.9g,"
                       "\"adam_eps\":%.9g,\"epochs\":%d,\"batch\":%d,\"scan_stride\":%d,\"fraction\":%.9g,"
                       "\"normalise\":%.9g,\"seed\":%llu}",
                       c->l1, c->contrastive, c->divergence, c->schedule_epoch, c->l1_after, c->contrastive_after,
                       c->divergence_after, c->lr, c->cyclic, c->max_lr, c->step_size_up, c->adam_beta1,
                       c->adam_beta2, c->adam_eps, c->epochs, c->batch, c->scan_stride, c->fraction,
                       c->normalise, (unsigned long long)c->seed);
}

static fl_status config_from_json(fl_ctx *ctx, const char *text, fl_dae_config *c)
{
    if (!text) return fl_fail(ctx, FL_EFORMAT, "model file has no configuration");
    fl_json *j = NULL;
    if (fl_json_parse(ctx, text, strlen(text), &j))
        return fl_fail(ctx, FL_EFORMAT, "model configuration is not valid JSON: %s", fl_ctx_message(ctx));
    fl_dae_config_default(c);
    const fl_model_field f[] = {
        {"pattern_w", 1, &c->pattern_w}, {"pattern_h", 1, &c->pattern_h}, {"bin", 1, &c->bin}, {"width", 1, &c->width},
        {"embedding", 1, &c->embedding}, {"l1", 0, &c->l1}, {"contrastive", 0, &c->contrastive},
        {"divergence", 0, &c->divergence}, {"schedule_epoch", 1, &c->schedule_epoch}, {"l1_after", 0, &c->l1_after},
        {"contrastive_after", 0, &c->contrastive_after}, {"divergence_after", 0, &c->divergence_after},
        {"lr", 0, &c->lr}, {"cyclic", 1, &c->cyclic}, {"max_lr", 0, &c->max_lr}, {"step_size_up", 1, &c->step_size_up},
        {"adam_beta1", 0, &c->adam_beta1}, {"adam_beta2", 0, &c->adam_beta2}, {"adam_eps", 0, &c->adam_eps},
        {"epochs", 1, &c->epochs}, {"batch", 1, &c->batch}, {"scan_stride", 1, &c->scan_stride},
        {"fraction", 0, &c->fraction}
    };
    fl_status st = fl_model_meta_read_fields(ctx, j, f, sizeof f / sizeof f[0]);
    const fl_json *nv = fl_json_get(j, "normalise"); /* optional: files before it have no normalisation */
    if (!st && nv) {
        const double d = fl_json_number(nv);
        if (!isfinite(d)) st = fl_fail(ctx, FL_EFORMAT, "model configuration: 'normalise' is invalid");
        else c->normalise = (float)d;
    }
    const fl_json *pools = fl_json_get(j, "pools");
    if (!st && (!pools || fl_json_type_of(pools) != FL_JSON_ARRAY || fl_json_len(pools) > FL_DAE_MAX_POOLS))
        st = fl_fail(ctx, FL_EFORMAT, "model configuration: bad pooling list");
    for (size_t i = 0; !st && i < fl_json_len(pools); i++) {
        int64_t p;
        if (!fl_json_int64(fl_json_at(pools, i), 2, 8, &p)) st = fl_fail(ctx, FL_EFORMAT, "model configuration: bad pooling factor");
        else c->pools[i] = (int32_t)p;
    }
    const size_t npools = fl_json_len(pools);
    if (!st) st = fl_model_meta_read_seed(ctx, j, &c->seed);
    fl_json_free(j);
    if (!st && npools == 0 && c->pattern_h != 8) /* empty list means no pooling: only 8 x 8 */
        st = fl_fail(ctx, FL_EFORMAT, "model configuration: no pooling for %d x %d patterns", c->pattern_w, c->pattern_h);
    if (!st && check_config(ctx, c)) st = fl_fail(ctx, FL_EFORMAT, "model configuration is invalid: %s", fl_ctx_message(ctx));
    return st;
}

fl_status fl_dae_save(fl_ctx *ctx, const fl_dae *m, const char *path)
{
    if (!m || !path || !*path) return fl_fail(ctx, FL_EINVAL, "save: no model or no path");
    fl_tensor_list list;
    fl_tensor_list_init(&list);
    fl_status st = FL_OK;
    for (int32_t i = 0; i < m->tensors.count && !st; i++) {
        const fl_tensor *t = &m->tensors.items[i];
        if (!fl_tensor_list_add(ctx, &list, t->name, t->ndim, t->shape, t->data)) st = FL_ENOMEM;
    }
    fl_strbuf b;
    fl_strbuf_init(&b);
    config_json(&b, &m->cfg);
    if (!st) st = fl_model_meta_set_common(ctx, &list, FAMILY_NAME, &b);
    if (!st) st = fl_tensor_list_set_meta(ctx, &list, "input_transform", "log(I + 1)");
    if (!st && m->training_json) st = fl_tensor_list_set_meta(ctx, &list, "training", m->training_json);
    if (!st) st = fl_safetensors_write(ctx, path, &list);
    fl_strbuf_free(&b);
    fl_tensor_list_free(&list);
    return st;
}

fl_status fl_dae_load(fl_ctx *ctx, const char *path, fl_dae **out)
{
    if (!path || !out) return fl_fail(ctx, FL_EINVAL, "load: no path");
    fl_tensor_list list;
    fl_status st = fl_safetensors_read(ctx, path, &list);
    if (st) return st;
    static const char *const fam[] = {FAMILY_NAME};
    fl_dae_config cfg;
    fl_dae *m = NULL;
    st = fl_model_meta_check(ctx, &list, path, fam, 1, "a diffraction autoencoder", NULL);
    if (!st) st = config_from_json(ctx, fl_tensor_list_get_meta(&list, "config"), &cfg);
    if (!st) {
        /* a small file must not make us allocate a huge network: compare sizes first */
        fl_dae probe;
        memset(&probe, 0, sizeof probe);
        probe.cfg = cfg;
        int64_t need = 0;
        const int64_t have = fl_model_meta_values(&list);
        st = set_shape(ctx, &probe);
        if (!st) st = model_values(ctx, &probe, &need);
        if (!st && have < need / 2)
            st = fl_fail(ctx, FL_EFORMAT, "model file holds %lld values but its architecture needs about %lld: damaged file",
                         (long long)have, (long long)need);
    }
    if (!st) st = fl_dae_create(ctx, &cfg, &m);
    if (!st) {
        if (list.count != m->tensors.count)
            st = fl_fail(ctx, FL_EFORMAT, "model file has %d tensors; this architecture has %d", list.count, m->tensors.count);
        for (int32_t i = 0; i < m->tensors.count && !st; i++) {
            fl_tensor *t = &m->tensors.items[i];
            const fl_tensor *s = fl_tensor_list_find(&list, t->name);
            if (!s) {
                st = fl_fail(ctx, FL_EFORMAT, "model file lacks the tensor %s", t->name);
                break;
            }
            int same = s->ndim == t->ndim;
            for (int32_t d = 0; same && d < t->ndim; d++) same = s->shape[d] == t->shape[d];
            if (!same) st = fl_fail(ctx, FL_EFORMAT, "tensor %s has another shape than the configuration implies", t->name);
            const int64_t ne = fl_tensor_numel(t);
            for (int64_t k = 0; k < ne && !st; k++)
                if (!isfinite(s->data[k])) st = fl_fail(ctx, FL_EFORMAT, "tensor %s holds NaN or infinity", t->name);
            if (!st) memcpy(t->data, s->data, (size_t)ne * sizeof(float));
        }
    }
    if (!st) m->fresh = 0; /* trained weights: training continues from them as they are */
    if (!st) {
        const char *tr = fl_tensor_list_get_meta(&list, "training");
        if (tr && !(m->training_json = strdup(tr))) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    fl_tensor_list_free(&list);
    if (st) {
        fl_dae_free(m);
        return st;
    }
    *out = m;
    return FL_OK;
}
