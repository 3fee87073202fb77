/* Family 1: the sparse (Bi)LSTM spectral autoencoder of Agar et al. 2019 / Holstad et al. 2020.
 *
 * Wiring (Keras model of the authors, see docs/model-families.md A1):
 *   curve (T,1) -> E x [(Bi)LSTM(H) seq -> Dropout] (the last one returns only its last step:
 *   forward h(T-1), backward h after reading t = 0) -> [BN] -> Linear(L) -> ReLU = embedding
 *   (+ l1 * sum over the batch of |z|) -> [BN] -> RepeatVector(T) -> D x [(Bi)LSTM(H) seq -> Dropout]
 *   -> time-distributed Linear(1).
 *
 * Parallelism: a mini-batch is cut into fixed chunks of CHUNK curves; every chunk runs its LSTMs on
 * one thread with single-threaded GEMMs and has its own gradient buffer, reduced in chunk order. The
 * two batch-norm layers need the whole batch, so a step is: encoders (parallel over chunks) ->
 * BN/Linear/BN (serial, small) -> decoders forward + backward (parallel) -> middle backward (serial)
 * -> encoders backward (parallel) -> reduce -> Adam. Results do not depend on the thread count.
 */
#include "analysis/curve_filters.h"
#include "fl_internal.h"
#include "io/json.h"
#include "io/keras_hdf5.h"
#include "io/model_meta.h"
#include "io/safetensors.h"
#include "nn/nn.h"
#include "models/spectral_ae_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define CHUNK 32   /* curves per training work unit (fixed: results must not depend on threads) */
#define ICHUNK 64  /* curves per inference work unit */
#define MAX_LAYERS 16
#define FAMILY_NAME "spectral-ae"

typedef struct dir_off {
    int64_t w_ih, w_hh, b;
} dir_off;

typedef struct lstm_off {
    int32_t in;
    dir_off dir[2];
} lstm_off;

struct fl_sae {
    fl_sae_config cfg;
    int32_t ndir, F; /* directions, features of a recurrent layer's output (ndir * H) */
    lstm_off enc[MAX_LAYERS], dec[MAX_LAYERS];
    int64_t enc_bn_g, enc_bn_b, emb_w, emb_b, lat_bn_g, lat_bn_b, out_w, out_b;
    int64_t nparams;
    float *params;
    float *stats; /* running mean/var: encoder BN (2F), latent BN (2L) */
    int64_t nstats;
    /* normalisation of raw curves: x_norm = (x - mean) / std */
    double norm_mean, norm_std;
    double *axis;
    char axis_unit[32], axis_label[64];
    char *training_json; /* record of the last training run, NULL if none */
};

/* ---------------------------------------------------------------------------------------------- */
/* configuration                                                                                   */

void fl_sae_config_default(fl_sae_config *c)
{
    memset(c, 0, sizeof *c);
    /* architecture: Agar et al. rnn() */
    c->steps = 0;
    c->hidden = 64;
    c->enc_layers = 4;
    c->dec_layers = 4;
    c->latent = 16;
    c->bidirectional = 1;
    /* Agar used batch_norm=[True,True]. Off by default: a BN right after the L1-penalised embedding
     * makes the penalty scale-degenerate (shrinking the embedding costs nothing after BN), and on the
     * sample grid the planted maps are recovered with |r| 0.93/0.98/0.98 without BN against
     * 0.81/0.91/0.99 with it. --batch-norm 1 (CLI) / batch_norm (Fiji) restores Agar's layers. */
    c->batch_norm = 0;
    c->hard_sigmoid = 1;
    c->bn_eps = 1e-3f;
    c->bn_momentum = 0.99f;
    /* The L1 term is summed over the mini-batch, so its weight per curve is l1 * batch: Agar's piezo
     * and resonance models used 1e-5 and 1e-4 with full batches of 3600 curves (0.036 and 0.36 per
     * curve); 1e-3 at batch 64 (0.064 per curve) lies between them. */
    c->l1 = 1e-3f;
    c->dropout = 0.2f;
    /* training: Agar trained 15k-22k full-batch epochs at lr 3e-5 on a GPU for 1-2 days; the defaults
     * here converge on a 64x64 grid in minutes on a CPU (Adam 1e-3, batch 64, early stopping). */
    c->lr = 1e-3f;
    c->adam_beta1 = 0.9f;
    c->adam_beta2 = 0.999f;
    c->adam_eps = 1e-7f;
    c->batch = 64;
    c->epochs = 30;
    c->val_split = 0.1f;
    c->patience = 10;
    c->seed = 42;
    c->norm_mode = FL_NORM_GLOBAL;
    c->outlier_repair = 0;
}

static fl_status check_config(fl_ctx *ctx, const fl_sae_config *c)
{
#define REQ(cond, ...)                                   \
    do {                                                 \
        if (!(cond)) return fl_fail(ctx, FL_EINVAL, __VA_ARGS__); \
    } while (0)
    REQ(c->steps == 0 || (c->steps >= 8 && c->steps <= 100000),
        "curves need between 8 and 100000 points (got %d)", c->steps);
    REQ(c->hidden >= 1 && c->hidden <= 2048, "hidden units must be 1..2048 (got %d)", c->hidden);
    REQ(c->enc_layers >= 1 && c->enc_layers <= MAX_LAYERS, "encoder layers must be 1..%d (got %d)", MAX_LAYERS,
        c->enc_layers);
    REQ(c->dec_layers >= 1 && c->dec_layers <= MAX_LAYERS, "decoder layers must be 1..%d (got %d)", MAX_LAYERS,
        c->dec_layers);
    REQ(c->latent >= 1 && c->latent <= 4096, "latent size must be 1..4096 (got %d)", c->latent);
    REQ(c->bidirectional == 0 || c->bidirectional == 1, "bidirectional must be 0 or 1");
    REQ(c->batch_norm == 0 || c->batch_norm == 1, "batch_norm must be 0 or 1");
    REQ(c->hard_sigmoid == 0 || c->hard_sigmoid == 1, "hard_sigmoid must be 0 or 1");
    REQ(isfinite(c->bn_eps) && c->bn_eps > 0.f && c->bn_eps < 1.f, "batch-norm epsilon must be in (0,1)");
    REQ(isfinite(c->bn_momentum) && c->bn_momentum >= 0.f && c->bn_momentum < 1.f,
        "batch-norm momentum must be in [0,1)");
    REQ(isfinite(c->l1) && c->l1 >= 0.f && c->l1 <= 10.f, "L1 weight must be in [0,10] (got %g)", c->l1);
    REQ(isfinite(c->dropout) && c->dropout >= 0.f && c->dropout < 1.f, "dropout must be in [0,1) (got %g)",
        c->dropout);
    REQ(isfinite(c->lr) && c->lr > 0.f && c->lr <= 1.f, "learning rate must be in (0,1] (got %g)", c->lr);
    REQ(c->adam_beta1 >= 0.f && c->adam_beta1 < 1.f && c->adam_beta2 >= 0.f && c->adam_beta2 < 1.f &&
            c->adam_eps > 0.f && isfinite(c->adam_eps),
        "Adam parameters out of range");
    REQ(c->batch >= 1 && c->batch <= 1000000, "batch size must be 1..1000000 (got %d)", c->batch);
    REQ(c->epochs >= 0 && c->epochs <= 10000000, "epochs must be 0..10000000 (got %d)", c->epochs);
    REQ(isfinite(c->val_split) && c->val_split >= 0.f && c->val_split <= 0.9f,
        "validation fraction must be in [0,0.9] (got %g)", c->val_split);
    REQ(c->patience >= 0, "patience must be >= 0");
    REQ(c->norm_mode >= FL_NORM_GLOBAL && c->norm_mode <= FL_NORM_NONE, "unknown normalisation mode %d",
        c->norm_mode);
    REQ(c->outlier_repair == 0 || c->outlier_repair == 1, "outlier_repair must be 0 or 1");
#undef REQ
    return FL_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* model object                                                                                    */

static void layout(fl_sae *m)
{
    const fl_sae_config *c = &m->cfg;
    const int64_t H = c->hidden, G4 = 4 * H;
    m->ndir = c->bidirectional ? 2 : 1;
    m->F = m->ndir * (int32_t)H;
    int64_t o = 0;
    for (int32_t l = 0; l < c->enc_layers; l++) {
        m->enc[l].in = l == 0 ? 1 : m->F;
        for (int32_t d = 0; d < m->ndir; d++) {
            m->enc[l].dir[d].w_ih = o, o += G4 * m->enc[l].in;
            m->enc[l].dir[d].w_hh = o, o += G4 * H;
            m->enc[l].dir[d].b = o, o += G4;
        }
    }
    m->enc_bn_g = o, o += m->F;
    m->enc_bn_b = o, o += m->F;
    m->emb_w = o, o += (int64_t)c->latent * m->F;
    m->emb_b = o, o += c->latent;
    m->lat_bn_g = o, o += c->latent;
    m->lat_bn_b = o, o += c->latent;
    for (int32_t l = 0; l < c->dec_layers; l++) {
        m->dec[l].in = l == 0 ? c->latent : m->F;
        for (int32_t d = 0; d < m->ndir; d++) {
            m->dec[l].dir[d].w_ih = o, o += G4 * m->dec[l].in;
            m->dec[l].dir[d].w_hh = o, o += G4 * H;
            m->dec[l].dir[d].b = o, o += G4;
        }
    }
    m->out_w = o, o += m->F;
    m->out_b = o, o += 1;
    m->nparams = o;
    m->nstats = 2 * (int64_t)m->F + 2 * (int64_t)c->latent;
}

/* Keras initialisers: Glorot-uniform kernels, orthogonal recurrent kernels, zero biases with forget
 * gate 1, BN gamma 1 / beta 0 / running var 1. */
static void glorot(fl_rng *r, float *w, int64_t fan_out, int64_t fan_in)
{
    float lim = sqrtf(6.f / (float)(fan_in + fan_out));
    for (int64_t i = 0; i < fan_out * fan_in; i++) w[i] = (2.f * fl_rng_uniform(r) - 1.f) * lim;
}

/* W (4H, H) with orthonormal columns (= Keras' recurrent kernel (H, 4H) with orthonormal rows). */
static void orthogonal(fl_rng *r, float *w, int64_t H)
{
    const int64_t G4 = 4 * H;
    double *q = malloc((size_t)(H * G4) * sizeof(double)); /* H rows of length 4H */
    if (!q) { /* fall back to a scaled Glorot init rather than failing the whole model */
        glorot(r, w, G4, H);
        return;
    }
    for (int64_t i = 0; i < H * G4; i++) q[i] = fl_rng_normal(r);
    for (int64_t i = 0; i < H; i++) { /* modified Gram-Schmidt on rows */
        double *qi = q + i * G4;
        for (int64_t k = 0; k < i; k++) {
            const double *qk = q + k * G4;
            double d = 0;
            for (int64_t j = 0; j < G4; j++) d += qi[j] * qk[j];
            for (int64_t j = 0; j < G4; j++) qi[j] -= d * qk[j];
        }
        double nrm = 0;
        for (int64_t j = 0; j < G4; j++) nrm += qi[j] * qi[j];
        nrm = sqrt(nrm) + 1e-300;
        for (int64_t j = 0; j < G4; j++) qi[j] /= nrm;
    }
    for (int64_t i = 0; i < H; i++)
        for (int64_t j = 0; j < G4; j++) w[j * H + i] = (float)q[i * G4 + j];
    free(q);
}

static void init_lstm(fl_sae *m, fl_rng *r, const lstm_off *L)
{
    const int64_t H = m->cfg.hidden, G4 = 4 * H;
    for (int32_t d = 0; d < m->ndir; d++) {
        glorot(r, m->params + L->dir[d].w_ih, G4, L->in);
        orthogonal(r, m->params + L->dir[d].w_hh, H);
        float *b = m->params + L->dir[d].b;
        for (int64_t j = 0; j < G4; j++) b[j] = (j >= H && j < 2 * H) ? 1.f : 0.f;
    }
}

static void init_params(fl_sae *m)
{
    fl_rng r;
    fl_rng_init(&r, m->cfg.seed, 0x1417);
    const fl_sae_config *c = &m->cfg;
    for (int32_t l = 0; l < c->enc_layers; l++) init_lstm(m, &r, &m->enc[l]);
    for (int64_t j = 0; j < m->F; j++) m->params[m->enc_bn_g + j] = 1.f, m->params[m->enc_bn_b + j] = 0.f;
    glorot(&r, m->params + m->emb_w, c->latent, m->F);
    for (int64_t j = 0; j < c->latent; j++) {
        m->params[m->emb_b + j] = 0.f;
        m->params[m->lat_bn_g + j] = 1.f;
        m->params[m->lat_bn_b + j] = 0.f;
    }
    for (int32_t l = 0; l < c->dec_layers; l++) init_lstm(m, &r, &m->dec[l]);
    glorot(&r, m->params + m->out_w, 1, m->F);
    m->params[m->out_b] = 0.f;
    /* running stats: mean 0, var 1 */
    for (int64_t j = 0; j < m->F; j++) m->stats[j] = 0.f, m->stats[m->F + j] = 1.f;
    for (int64_t j = 0; j < c->latent; j++) m->stats[2 * m->F + j] = 0.f, m->stats[2 * m->F + c->latent + j] = 1.f;
}

static float *enc_rm(const fl_sae *m) { return m->stats; }
static float *enc_rv(const fl_sae *m) { return m->stats + m->F; }
static float *lat_rm(const fl_sae *m) { return m->stats + 2 * m->F; }
static float *lat_rv(const fl_sae *m) { return m->stats + 2 * m->F + m->cfg.latent; }

static fl_status sae_alloc(fl_ctx *ctx, const fl_sae_config *cfg, fl_sae **out)
{
    fl_status st = check_config(ctx, cfg);
    if (st) return st;
    fl_sae *m = calloc(1, sizeof *m);
    if (!m) return fl_fail(ctx, FL_ENOMEM, "out of memory for the model");
    m->cfg = *cfg;
    layout(m);
    st = fl_check_budget(ctx, (size_t)(m->nparams + m->nstats) * sizeof(float), "the model's parameters");
    if (st) {
        free(m);
        return st;
    }
    m->params = fl_calloc((size_t)m->nparams, sizeof(float));
    m->stats = fl_calloc((size_t)m->nstats, sizeof(float));
    if (!m->params || !m->stats) {
        const long long np = (long long)m->nparams;
        fl_sae_free(m);
        return fl_fail(ctx, FL_ENOMEM, "out of memory for %lld model parameters", np);
    }
    m->norm_mean = 0.0;
    m->norm_std = 1.0;
    *out = m;
    return FL_OK;
}

fl_status fl_sae_check_config(fl_ctx *ctx, const fl_sae_config *cfg)
{
    if (!cfg) return fl_fail(ctx, FL_EINVAL, "fl_sae_check_config: NULL argument");
    return check_config(ctx, cfg);
}

fl_status fl_sae_create(fl_ctx *ctx, const fl_sae_config *cfg, fl_sae **out)
{
    if (!cfg || !out) return fl_fail(ctx, FL_EINVAL, "fl_sae_create: NULL argument");
    fl_sae *m;
    fl_status st = sae_alloc(ctx, cfg, &m);
    if (st) return st;
    init_params(m);
    *out = m;
    return FL_OK;
}

void fl_sae_free(fl_sae *m)
{
    if (!m) return;
    fl_free(m->params);
    fl_free(m->stats);
    free(m->axis);
    free(m->training_json);
    free(m);
}

const fl_sae_config *fl_sae_get_config(const fl_sae *m) { return m ? &m->cfg : NULL; }
int64_t fl_sae_param_count(const fl_sae *m) { return m ? m->nparams : 0; }

fl_status fl_sae_set_axis(fl_ctx *ctx, fl_sae *m, const double *values, int32_t T, const char *label,
                          const char *unit)
{
    if (!m) return fl_fail(ctx, FL_EINVAL, "no model");
    if (m->cfg.steps && T != m->cfg.steps)
        return fl_fail(ctx, FL_EMISMATCH, "axis has %d values but the model's curves have %d points", T,
                       m->cfg.steps);
    double *a = NULL;
    if (values) {
        a = malloc((size_t)T * sizeof(double));
        if (!a) return fl_fail(ctx, FL_ENOMEM, "out of memory");
        for (int32_t i = 0; i < T; i++) {
            if (!isfinite(values[i])) {
                free(a);
                return fl_fail(ctx, FL_EINVAL, "spectral-axis value %d is not finite", i);
            }
            a[i] = values[i];
        }
    }
    free(m->axis);
    m->axis = a;
    snprintf(m->axis_label, sizeof m->axis_label, "%s", label ? label : "");
    snprintf(m->axis_unit, sizeof m->axis_unit, "%s", unit ? unit : "");
    return FL_OK;
}

const double *fl_sae_axis_values(const fl_sae *m) { return m ? m->axis : NULL; }
const char *fl_sae_axis_unit(const fl_sae *m) { return m ? m->axis_unit : ""; }
const char *fl_sae_axis_label(const fl_sae *m) { return m ? m->axis_label : ""; }

/* ---------------------------------------------------------------------------------------------- */
/* workspaces                                                                                      */

/* Activations of a stack of recurrent layers for one chunk of B curves. */
typedef struct stack_ws {
    int32_t layers;
    float *Y[MAX_LAYERS];        /* (T, B, F) hidden outputs */
    float *D[MAX_LAYERS];        /* (T, B, F) after dropout: the next layer's input */
    float *G[MAX_LAYERS][2];     /* (T, B, 4H) gates, then gate gradients */
    float *C[MAX_LAYERS][2];     /* (T, B, H) cell states */
} stack_ws;

typedef struct chunk_ws {
    float *x0;       /* (T, B) input curves, time-major */
    stack_ws s;
    float *out;      /* (T, B) reconstruction */
    float *dA, *dB;  /* (T, B, F) gradient ping-pong */
    float *work;     /* LSTM backward scratch */
    float *dlat;     /* (B, L) or (B, F): gradient at the stack input (decoder) */
    float *buf;      /* the single allocation behind all of the above */
} chunk_ws;

/* Lays out a chunk workspace from `base` (NULL: only count) and returns its size in floats. Training
 * keeps every layer's activations for backpropagation; `lean` (inference) lets all layers share two
 * output buffers and one gate/cell buffer, so memory does not grow with depth. */
static size_t chunk_layout(const fl_sae *m, int32_t layers, int64_t T, int64_t B, int lean, chunk_ws *w, float *base)
{
    const int64_t H = m->cfg.hidden, F = m->F;
    size_t off = 0;
#define TAKE(ptr, n)                                                  \
    do {                                                              \
        ptr = base ? base + off : NULL;                               \
        off += ((size_t)(n) + 15) & ~(size_t)15; /* 64-byte aligned */ \
    } while (0)
    TAKE(w->x0, T * B);
    w->s.layers = layers;
    for (int32_t l = 0; l < layers; l++) {
        if (lean && l >= 2) { /* reuse: layer l reads buffer (l-1)%2 and writes l%2 */
            w->s.Y[l] = w->s.D[l] = w->s.Y[l % 2];
        } else {
            TAKE(w->s.Y[l], T * B * F);
            if (lean) w->s.D[l] = w->s.Y[l]; /* no dropout in inference: D aliases Y */
            else TAKE(w->s.D[l], T * B * F);
        }
        for (int32_t d = 0; d < m->ndir; d++) {
            if (lean && l >= 1) {
                w->s.G[l][d] = w->s.G[0][d];
                w->s.C[l][d] = w->s.C[0][d];
            } else {
                TAKE(w->s.G[l][d], T * B * 4 * H);
                TAKE(w->s.C[l][d], T * B * H);
            }
        }
    }
    TAKE(w->out, T * B);
    if (!lean) {
        fl_lstm_shape s = {(int32_t)T, (int32_t)B, 1, (int32_t)H, 0, 1, 0};
        TAKE(w->dA, T * B * F);
        TAKE(w->dB, T * B * F);
        TAKE(w->work, fl_lstm_backward_work_size(&s));
        TAKE(w->dlat, B * (F > m->cfg.latent ? F : m->cfg.latent));
    }
#undef TAKE
    return off;
}

static size_t chunk_floats(const fl_sae *m, int32_t layers, int64_t T, int64_t B, int lean)
{
    chunk_ws w;
    return chunk_layout(m, layers, T, B, lean, &w, NULL);
}

static fl_status chunk_ws_alloc(fl_ctx *ctx, const fl_sae *m, int32_t layers, int64_t T, int64_t B, int lean,
                                chunk_ws *w)
{
    memset(w, 0, sizeof *w);
    w->buf = fl_alloc(chunk_floats(m, layers, T, B, lean) * sizeof(float));
    if (!w->buf) return fl_fail(ctx, FL_ENOMEM, "out of memory for training/inference buffers");
    chunk_layout(m, layers, T, B, lean, w, w->buf);
    return FL_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* forward / backward of a recurrent stack over one chunk                                          */

typedef struct drop_ctx {
    float p;          /* 0 in inference */
    uint64_t seed;
    uint64_t step;    /* global step: distinct masks each step */
    int64_t Bfull;    /* rows of the whole mini-batch */
    int64_t s0;       /* first row of this chunk in the mini-batch */
} drop_ctx;

static uint64_t drop_stream(const drop_ctx *dc, uint32_t site) { return (dc->step << 8) | site; }

/* Dropout of a (T, B, F) chunk tensor, masks indexed by (t, global row, f). */
static void drop_seq(const drop_ctx *dc, uint32_t site, int64_t T, int64_t B, int64_t F, const float *x, float *y)
{
    for (int64_t t = 0; t < T; t++)
        fl_dropout_apply(B * F, dc->p, dc->seed, drop_stream(dc, site), (uint64_t)((t * dc->Bfull + dc->s0) * F),
                         x + t * B * F, y + t * B * F);
}

static fl_lstm_shape lstm_shape(const fl_sae *m, int64_t T, int64_t B, int32_t in, int32_t d, int repeat)
{
    fl_lstm_shape s = {(int32_t)T, (int32_t)B, in, m->cfg.hidden, d == 1, m->cfg.hard_sigmoid, repeat};
    return s;
}

/* Runs `layers` recurrent layers over a chunk. Layer 0 reads X0 ((T,B,in) or, with repeat0, (B,in)
 * fed at every step); layer l > 0 reads D[l-1] = dropout(Y[l-1]) (dropout site site_base + l - 1).
 * With drop_top, D[top] = dropout(Y[top]) is computed too. */
static void stack_forward(const fl_sae *m, const lstm_off *L, stack_ws *w, int64_t T, int64_t B, const float *X0,
                          int repeat0, const drop_ctx *dc, uint32_t site_base, int drop_top)
{
    const float *P = m->params;
    const int64_t H = m->cfg.hidden;
    for (int32_t l = 0; l < w->layers; l++) {
        const float *X = l ? w->D[l - 1] : X0;
        for (int32_t d = 0; d < m->ndir; d++) {
            fl_lstm_shape s = lstm_shape(m, T, B, L[l].in, d, l == 0 && repeat0);
            fl_lstm_forward(&s, X, L[l].in, P + L[l].dir[d].w_ih, P + L[l].dir[d].w_hh, P + L[l].dir[d].b,
                            w->G[l][d], w->C[l][d], w->Y[l] + d * H, m->F);
        }
        if (l < w->layers - 1 || drop_top) drop_seq(dc, site_base + (uint32_t)l, T, B, m->F, w->Y[l], w->D[l]);
    }
}

/* Backward of stack_forward. dY: gradient w.r.t. Y[top] (T,B,F), used as scratch; tmp: (T,B,F)
 * scratch; dX0 receives the gradient w.r.t. X0 when not NULL. Parameter gradients accumulate in grad. */
static void stack_backward(const fl_sae *m, const lstm_off *L, stack_ws *w, int64_t T, int64_t B, const float *X0,
                           int repeat0, const drop_ctx *dc, uint32_t site_base, float *dY, float *tmp, float *dX0,
                           float *work, float *grad)
{
    const float *P = m->params;
    const int64_t H = m->cfg.hidden;
    float *cur = dY, *other = tmp;
    for (int32_t l = w->layers - 1; l >= 0; l--) {
        const float *X = l ? w->D[l - 1] : X0;
        float *dX = l ? other : dX0;
        for (int32_t d = 0; d < m->ndir; d++) {
            fl_lstm_shape s = lstm_shape(m, T, B, L[l].in, d, l == 0 && repeat0);
            const dir_off *o = &L[l].dir[d];
            fl_lstm_backward(&s, X, L[l].in, P + o->w_ih, P + o->w_hh, w->G[l][d], w->C[l][d], w->Y[l] + d * H,
                             m->F, cur + d * H, m->F, dX, L[l].in, d > 0, grad + o->w_ih, grad + o->w_hh,
                             grad + o->b, work);
        }
        if (l > 0) {
            drop_seq(dc, site_base + (uint32_t)(l - 1), T, B, m->F, other, other); /* mask is its own backward */
            float *t = cur;
            cur = other;
            other = t;
        }
    }
}

#define SITE_ENC 0u
#define SITE_LAST 32u
#define SITE_DEC 64u

/* Encoder over one chunk: time-major curves in w->x0 -> last vector (B,F) (dropout applied). */
static void encoder_forward(const fl_sae *m, chunk_ws *w, int64_t T, int64_t B, const drop_ctx *dc, float *last)
{
    const int64_t H = m->cfg.hidden, F = m->F;
    stack_forward(m, m->enc, &w->s, T, B, w->x0, 0, dc, SITE_ENC, 0);
    const float *Y = w->s.Y[w->s.layers - 1];
    for (int64_t r = 0; r < B; r++) {
        memcpy(last + r * F, Y + ((T - 1) * B + r) * F, (size_t)H * sizeof(float));
        if (m->ndir == 2) memcpy(last + r * F + H, Y + r * F + H, (size_t)H * sizeof(float));
    }
    fl_dropout_apply(B * F, dc->p, dc->seed, drop_stream(dc, SITE_LAST), (uint64_t)(dc->s0 * F), last, last);
}

static void encoder_backward(const fl_sae *m, chunk_ws *w, int64_t T, int64_t B, const drop_ctx *dc,
                             const float *dlast_in, float *grad)
{
    const int64_t H = m->cfg.hidden, F = m->F;
    float *dlast = w->dlat;
    fl_dropout_apply(B * F, dc->p, dc->seed, drop_stream(dc, SITE_LAST), (uint64_t)(dc->s0 * F), dlast_in, dlast);
    memset(w->dA, 0, (size_t)(T * B * F) * sizeof(float));
    for (int64_t r = 0; r < B; r++) {
        memcpy(w->dA + ((T - 1) * B + r) * F, dlast + r * F, (size_t)H * sizeof(float));
        if (m->ndir == 2) memcpy(w->dA + r * F + H, dlast + r * F + H, (size_t)H * sizeof(float));
    }
    stack_backward(m, m->enc, &w->s, T, B, w->x0, 0, dc, SITE_ENC, w->dA, w->dB, NULL, w->work, grad);
}

/* Decoder over one chunk: zz (B, L) -> w->out (T, B) normalised curves. */
static void decoder_forward(const fl_sae *m, chunk_ws *w, int64_t T, int64_t B, const drop_ctx *dc, const float *zz)
{
    stack_forward(m, m->dec, &w->s, T, B, zz, 1, dc, SITE_DEC, 1);
    fl_linear_forward(T * B, m->F, 1, w->s.D[w->s.layers - 1], m->F, m->params + m->out_w, m->params + m->out_b,
                      w->out, 1);
}

/* Squared error of w->out against w->x0 and its backward down to dzz (B, L). Returns the SSE. */
static double decoder_backward(const fl_sae *m, chunk_ws *w, int64_t T, int64_t B, const drop_ctx *dc,
                               const float *zz, double inv_count, float *dzz, float *grad)
{
    double sse = 0;
    float *dout = w->dB; /* (T, B) scratch, reused below only after use */
    for (int64_t i = 0; i < T * B; i++) {
        double e = (double)w->out[i] - w->x0[i];
        sse += e * e;
        dout[i] = (float)(2.0 * e * inv_count);
    }
    const float *Dtop = w->s.D[w->s.layers - 1];
    fl_linear_backward(T * B, m->F, 1, Dtop, m->F, m->params + m->out_w, dout, 1, w->dA, m->F, grad + m->out_w,
                       grad + m->out_b);
    drop_seq(dc, SITE_DEC + (uint32_t)(w->s.layers - 1), T, B, m->F, w->dA, w->dA);
    stack_backward(m, m->dec, &w->s, T, B, zz, 1, dc, SITE_DEC, w->dA, w->dB, dzz, w->work, grad);
    return sse;
}

/* Copy curves rows idx[s0..s0+B) of xn (n x T) into the time-major chunk input. */
static void gather_chunk(const float *xn, int64_t T, const int64_t *idx, int64_t B, float *x0)
{
    for (int64_t r = 0; r < B; r++) {
        const float *c = xn + idx[r] * T;
        for (int64_t t = 0; t < T; t++) x0[t * B + r] = c[t];
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* normalisation and input checks                                                                  */

/* Copies raw curves into xn (normalised). Per-curve statistics go to cm/cs when not NULL. */
static fl_status normalise(fl_ctx *ctx, const fl_sae *m, int fit, double *mean_io, double *std_io, const float *curves,
                           int64_t n, int64_t T, float *xn, double *cm, double *cs)
{
    const fl_sae_config *c = &m->cfg;
    int64_t bad = 0, first_bad = -1;
    for (int64_t i = 0; i < n * T; i++) {
        float v = curves[i];
        if (isinf(v) || (isnan(v) && !c->outlier_repair)) {
            if (bad++ == 0) first_bad = i;
        }
        xn[i] = v;
    }
    if (bad)
        return fl_fail(ctx, FL_EINVAL,
                       "the data contain %lld NaN/Inf values (first in curve %lld at point %lld); "
                       "remove them or enable outlier repair (NaN only)",
                       (long long)bad, (long long)(first_bad / T), (long long)(first_bad % T));
    if (c->outlier_repair) {
        int64_t failed = -1;
        for (int64_t i = 0; i < n; i++) {
            int32_t win = T >= 7 ? 7 : (int32_t)T;
            if (fl_curve_savgol_repair(xn + i * T, (int32_t)T, win, 3, 3) < 0 && failed < 0) failed = i;
        }
        if (failed >= 0)
            return fl_fail(ctx, FL_EINVAL, "curve %lld has no finite value, it cannot be repaired", (long long)failed);
    }
    if (c->norm_mode == FL_NORM_GLOBAL) {
        if (fit) {
            double s = 0, s2 = 0;
            for (int64_t i = 0; i < n * T; i++) s += xn[i];
            double mean = s / (double)(n * T);
            for (int64_t i = 0; i < n * T; i++) s2 += (xn[i] - mean) * (xn[i] - mean);
            double sd = sqrt(s2 / (double)(n * T));
            *mean_io = mean;
            *std_io = sd > 1e-30 ? sd : 1.0;
        }
        const double mu = *mean_io, is = 1.0 / *std_io;
        for (int64_t i = 0; i < n * T; i++) xn[i] = (float)((xn[i] - mu) * is);
    } else if (c->norm_mode == FL_NORM_PER_CURVE) {
        double am = 0, as = 0;
        for (int64_t i = 0; i < n; i++) {
            float *x = xn + i * T;
            double s = 0, s2 = 0;
            for (int64_t t = 0; t < T; t++) s += x[t];
            double mu = s / (double)T;
            for (int64_t t = 0; t < T; t++) s2 += (x[t] - mu) * (x[t] - mu);
            double sd = sqrt(s2 / (double)T);
            if (!(sd > 1e-30)) sd = 1.0;
            for (int64_t t = 0; t < T; t++) x[t] = (float)((x[t] - mu) / sd);
            if (cm) cm[i] = mu, cs[i] = sd;
            am += mu, as += sd;
        }
        if (fit) *mean_io = am / (double)n, *std_io = as / (double)n;
    }
    return FL_OK;
}

static fl_status check_curves(fl_ctx *ctx, const fl_sae *m, const float *curves, int64_t n, int32_t T)
{
    if (!m) return fl_fail(ctx, FL_EINVAL, "no model");
    if (!curves) return fl_fail(ctx, FL_EINVAL, "no curves");
    if (n < 1) return fl_fail(ctx, FL_EINVAL, "no curves to process");
    if (T < 8) return fl_fail(ctx, FL_EINVAL, "curves need at least 8 points (got %d)", T);
    if (m->cfg.steps && T != m->cfg.steps)
        return fl_fail(ctx, FL_EMISMATCH, "the model was trained on curves of %d points, these have %d points",
                       m->cfg.steps, T);
    size_t bytes;
    if (!fl_mul_size((size_t)n, (size_t)T, &bytes) || !fl_mul_size(bytes, sizeof(float), &bytes) ||
        bytes > ((size_t)1 << 40))
        return fl_fail(ctx, FL_EINVAL, "too many curves");
    return FL_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* inference                                                                                       */

static int thread_count(const fl_ctx *ctx)
{
    int t = fl_ctx_threads(ctx);
    return t < 1 ? 1 : t;
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Normalised curves xn (n x T) -> embeddings emb (n x L) and/or normalised reconstructions rec
 * (n x T); with xn == NULL, emb is the input and only the decoder runs. */
static fl_status run_inference(fl_ctx *ctx, const fl_sae *m, const float *xn, int64_t n, int64_t T, float *emb,
                               float *rec, const char *stage)
{
    const int nt = thread_count(ctx);
    const int64_t L = m->cfg.latent, F = m->F;
    const int need_enc = xn != NULL, need_dec = rec != NULL;
    size_t per = (need_enc ? chunk_floats(m, m->cfg.enc_layers, T, ICHUNK, 1) : 0) +
                 (need_dec ? chunk_floats(m, m->cfg.dec_layers, T, ICHUNK, 1) : 0) + 4 * ICHUNK * (size_t)(F + L);
    fl_status st = fl_check_budget(ctx, per * sizeof(float) * (size_t)nt, "inference");
    if (st) return st;
    chunk_ws *enc = calloc((size_t)nt, sizeof *enc), *dec = calloc((size_t)nt, sizeof *dec);
    float *mid = fl_alloc((size_t)nt * 4 * ICHUNK * (size_t)(F + L) * sizeof(float));
    if (!enc || !dec || !mid) st = fl_fail(ctx, FL_ENOMEM, "out of memory for inference buffers");
    for (int i = 0; i < nt && !st; i++) {
        if (need_enc) st = chunk_ws_alloc(ctx, m, m->cfg.enc_layers, T, ICHUNK, 1, &enc[i]);
        if (!st && need_dec) st = chunk_ws_alloc(ctx, m, m->cfg.dec_layers, T, ICHUNK, 1, &dec[i]);
    }
    const float *P = m->params;
    const int64_t nchunks = (n + ICHUNK - 1) / ICHUNK;
    const int64_t wave = (int64_t)nt * 8;
    const drop_ctx dc = {0.f, 0, 0, ICHUNK, 0};
    for (int64_t c0 = 0; c0 < nchunks && !st; c0 += wave) {
        const int64_t c1 = c0 + wave < nchunks ? c0 + wave : nchunks;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int64_t c = c0; c < c1; c++) {
            const int tid = thread_id();
            const int64_t s0 = c * ICHUNK, B = n - s0 < ICHUNK ? n - s0 : ICHUNK;
            float *last = mid + (size_t)tid * 4 * ICHUNK * (F + L);
            float *hb = last + ICHUNK * F, *z = hb + ICHUNK * F, *zz = z + ICHUNK * L;
            if (need_enc) {
                chunk_ws *w = &enc[tid];
                for (int64_t r = 0; r < B; r++)
                    for (int64_t t = 0; t < T; t++) w->x0[t * B + r] = xn[(s0 + r) * T + t];
                encoder_forward(m, w, T, B, &dc, last);
                if (m->cfg.batch_norm)
                    fl_batchnorm_forward_infer(B, F, last, P + m->enc_bn_g, P + m->enc_bn_b, m->cfg.bn_eps,
                                               enc_rm(m), enc_rv(m), hb);
                else
                    memcpy(hb, last, (size_t)(B * F) * sizeof(float));
                fl_linear_forward(B, F, L, hb, F, P + m->emb_w, P + m->emb_b, z, L);
                for (int64_t i = 0; i < B * L; i++) z[i] = z[i] > 0.f ? z[i] : 0.f;
                if (emb) memcpy(emb + s0 * L, z, (size_t)(B * L) * sizeof(float));
            } else {
                memcpy(z, emb + s0 * L, (size_t)(B * L) * sizeof(float));
            }
            if (need_dec) {
                chunk_ws *w = &dec[tid];
                if (m->cfg.batch_norm)
                    fl_batchnorm_forward_infer(B, L, z, P + m->lat_bn_g, P + m->lat_bn_b, m->cfg.bn_eps, lat_rm(m),
                                               lat_rv(m), zz);
                else
                    memcpy(zz, z, (size_t)(B * L) * sizeof(float));
                decoder_forward(m, w, T, B, &dc, zz);
                for (int64_t r = 0; r < B; r++)
                    for (int64_t t = 0; t < T; t++) rec[(s0 + r) * T + t] = w->out[t * B + r];
            }
        }
        st = fl_progress(ctx, stage, c1 * ICHUNK < n ? c1 * ICHUNK : n, n, NAN, NAN);
    }
    for (int i = 0; enc && i < nt; i++) fl_free(enc[i].buf);
    for (int i = 0; dec && i < nt; i++) fl_free(dec[i].buf);
    free(enc);
    free(dec);
    fl_free(mid);
    return st;
}

static void denormalise(const fl_sae *m, float *x, int64_t n, int64_t T, const double *cm, const double *cs)
{
    if (m->cfg.norm_mode == FL_NORM_NONE) return;
    for (int64_t i = 0; i < n; i++) {
        double mu = m->norm_mean, sd = m->norm_std;
        if (m->cfg.norm_mode == FL_NORM_PER_CURVE && cm) mu = cm[i], sd = cs[i];
        for (int64_t t = 0; t < T; t++) x[i * T + t] = (float)(x[i * T + t] * sd + mu);
    }
}

fl_status fl_sae_apply(fl_ctx *ctx, const fl_sae *m, const float *curves, int64_t n, int32_t T, float *emb,
                       float *recon)
{
    fl_status st = check_curves(ctx, m, curves, n, T);
    if (st) return st;
    if (!emb && !recon) return FL_OK;
    float *xn = fl_alloc((size_t)n * T * sizeof(float));
    double *cm = malloc((size_t)n * sizeof(double)), *cs = malloc((size_t)n * sizeof(double));
    float *e = fl_alloc((size_t)n * m->cfg.latent * sizeof(float)); /* outputs are written only on success */
    if (!xn || !cm || !cs || !e) st = fl_fail(ctx, FL_ENOMEM, "out of memory for %lld curves", (long long)n);
    double mu = m->norm_mean, sd = m->norm_std;
    if (!st) st = normalise(ctx, m, 0, &mu, &sd, curves, n, T, xn, cm, cs);
    float *rec_tmp = NULL;
    if (!st && recon) {
        rec_tmp = fl_alloc((size_t)n * T * sizeof(float));
        if (!rec_tmp) st = fl_fail(ctx, FL_ENOMEM, "out of memory for the reconstruction");
    }
    if (!st) st = run_inference(ctx, m, xn, n, T, e, rec_tmp, "apply");
    if (!st && recon) {
        denormalise(m, rec_tmp, n, T, cm, cs);
        memcpy(recon, rec_tmp, (size_t)n * T * sizeof(float));
    }
    if (!st && emb) memcpy(emb, e, (size_t)n * m->cfg.latent * sizeof(float));
    fl_free(rec_tmp);
    fl_free(e);
    fl_free(xn);
    free(cm);
    free(cs);
    return st;
}

fl_status fl_sae_encode(fl_ctx *ctx, const fl_sae *m, const float *curves, int64_t n, int32_t T, float *emb)
{
    if (!emb) return fl_fail(ctx, FL_EINVAL, "no output buffer");
    return fl_sae_apply(ctx, m, curves, n, T, emb, NULL);
}

fl_status fl_sae_decode(fl_ctx *ctx, const fl_sae *m, const float *emb, int64_t n, float *curves)
{
    if (!m || !emb || !curves || n < 1) return fl_fail(ctx, FL_EINVAL, "fl_sae_decode: bad arguments");
    if (m->cfg.steps < 8) return fl_fail(ctx, FL_EINVAL, "the model has no curve length yet");
    const int64_t T = m->cfg.steps, L = m->cfg.latent;
    for (int64_t i = 0; i < n * L; i++)
        if (!isfinite(emb[i])) return fl_fail(ctx, FL_EINVAL, "embedding value %lld is not finite", (long long)i);
    float *rec = fl_alloc((size_t)n * T * sizeof(float));
    if (!rec) return fl_fail(ctx, FL_ENOMEM, "out of memory for %lld curves", (long long)n);
    fl_status st = run_inference(ctx, m, NULL, n, T, (float *)emb, rec, "decode");
    if (!st) {
        denormalise(m, rec, n, T, NULL, NULL);
        memcpy(curves, rec, (size_t)n * T * sizeof(float));
    }
    fl_free(rec);
    return st;
}

fl_status fl_sae_traverse(fl_ctx *ctx, const fl_sae *m, const float *emb, int64_t n, int32_t channel,
                          int32_t levels, int32_t others_at_mean, float *values_out, float *curves_out)
{
    if (!m || !emb || !values_out || !curves_out || n < 1) return fl_fail(ctx, FL_EINVAL, "traverse: bad arguments");
    const int64_t L = m->cfg.latent;
    if (channel < 0 || channel >= L)
        return fl_fail(ctx, FL_EINVAL, "latent channel %d does not exist (the model has %lld)", channel, (long long)L);
    if (levels < 1 || levels > 100000) return fl_fail(ctx, FL_EINVAL, "levels must be 1..100000 (got %d)", levels);
    double *mean = calloc((size_t)L, sizeof(double));
    float *E = fl_alloc((size_t)levels * L * sizeof(float));
    if (!mean || !E) {
        free(mean);
        fl_free(E);
        return fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    float mx = 0.f;
    for (int64_t i = 0; i < n; i++) {
        for (int64_t k = 0; k < L; k++) mean[k] += emb[i * L + k];
        if (emb[i * L + channel] > mx) mx = emb[i * L + channel];
    }
    for (int32_t j = 0; j < levels; j++) {
        float v = levels == 1 ? mx : mx * (float)j / (float)(levels - 1);
        values_out[j] = v;
        for (int64_t k = 0; k < L; k++) E[j * L + k] = others_at_mean ? (float)(mean[k] / (double)n) : 0.f;
        E[j * L + channel] = v;
    }
    fl_status st = fl_sae_decode(ctx, m, E, levels, curves_out);
    free(mean);
    fl_free(E);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* training                                                                                        */

typedef struct train_state {
    int64_t T, Bmax, nchunk_max;
    chunk_ws *enc;      /* one per chunk of the largest batch */
    chunk_ws *dec;      /* one per thread */
    float *grads;       /* (nchunk_max + 1) x nparams: one per chunk + the serial middle part */
    float *adam_m, *adam_v;
    /* whole-batch tensors of the middle part */
    float *lastd, *hb, *xhat_e, *inv_e, *zpre, *z, *zz, *xhat_l, *inv_l, *dzz, *dz, *dhb, *dlast;
    double *chunk_sse;
    float *mid_buf;
} train_state;

static void train_state_free(train_state *s, int nt)
{
    for (int64_t c = 0; s->enc && c < s->nchunk_max; c++) fl_free(s->enc[c].buf);
    for (int i = 0; s->dec && i < nt; i++) fl_free(s->dec[i].buf);
    free(s->enc);
    free(s->dec);
    fl_free(s->grads);
    fl_free(s->adam_m);
    fl_free(s->adam_v);
    fl_free(s->mid_buf);
    free(s->chunk_sse);
}

static size_t train_bytes(const fl_sae *m, int64_t T, int64_t Bmax, int nt)
{
    const int64_t nch = (Bmax + CHUNK - 1) / CHUNK;
    size_t f = (size_t)nch * chunk_floats(m, m->cfg.enc_layers, T, CHUNK, 0) +
               (size_t)nt * chunk_floats(m, m->cfg.dec_layers, T, CHUNK, 0) + (size_t)(nch + 3) * m->nparams +
               (size_t)Bmax * (6 * m->F + 7 * m->cfg.latent) + 2 * (size_t)(m->F + m->cfg.latent);
    return f * sizeof(float);
}

static fl_status train_state_alloc(fl_ctx *ctx, const fl_sae *m, int64_t T, int64_t Bmax, int nt, train_state *s)
{
    memset(s, 0, sizeof *s);
    s->T = T;
    s->Bmax = Bmax;
    s->nchunk_max = (Bmax + CHUNK - 1) / CHUNK;
    const int64_t F = m->F, L = m->cfg.latent;
    s->enc = calloc((size_t)s->nchunk_max, sizeof *s->enc);
    s->dec = calloc((size_t)nt, sizeof *s->dec);
    s->chunk_sse = calloc((size_t)s->nchunk_max, sizeof(double));
    s->grads = fl_calloc((size_t)(s->nchunk_max + 1) * (size_t)m->nparams, sizeof(float));
    s->adam_m = fl_calloc((size_t)m->nparams, sizeof(float));
    s->adam_v = fl_calloc((size_t)m->nparams, sizeof(float));
    s->mid_buf = fl_calloc((size_t)Bmax * (6 * F + 7 * L) + 2 * (size_t)(F + L) + 64, sizeof(float));
    if (!s->enc || !s->dec || !s->chunk_sse || !s->grads || !s->adam_m || !s->adam_v || !s->mid_buf)
        return fl_fail(ctx, FL_ENOMEM, "out of memory for training buffers");
    for (int64_t c = 0; c < s->nchunk_max; c++) {
        fl_status st = chunk_ws_alloc(ctx, m, m->cfg.enc_layers, T, CHUNK, 0, &s->enc[c]);
        if (st) return st;
    }
    for (int i = 0; i < nt; i++) {
        fl_status st = chunk_ws_alloc(ctx, m, m->cfg.dec_layers, T, CHUNK, 0, &s->dec[i]);
        if (st) return st;
    }
    float *p = s->mid_buf;
    s->lastd = p, p += Bmax * F;
    s->hb = p, p += Bmax * F;
    s->xhat_e = p, p += Bmax * F;
    s->dhb = p, p += Bmax * F;
    s->dlast = p, p += Bmax * F;
    s->inv_e = p, p += F;
    s->zpre = p, p += Bmax * L;
    s->z = p, p += Bmax * L;
    s->zz = p, p += Bmax * L;
    s->xhat_l = p, p += Bmax * L;
    s->dzz = p, p += Bmax * L;
    s->dz = p, p += Bmax * L;
    s->inv_l = p, p += L;
    return FL_OK;
}

/* Loss (MSE + L1 term) of the curves idx[0..B) of xn in training mode, and its gradient in
 * s->grads[0 .. nparams). Updates the batch-norm running statistics. */
static double forward_backward(fl_sae *m, train_state *s, const float *xn, const int64_t *idx, int64_t B,
                               uint64_t step, int nt, double *mse_out)
{
    const int64_t T = s->T, F = m->F, L = m->cfg.latent, np = m->nparams;
    const fl_sae_config *c = &m->cfg;
    float *P = m->params;
    const int64_t nch = (B + CHUNK - 1) / CHUNK;
    float *gmid = s->grads + (size_t)s->nchunk_max * np;
    memset(s->grads, 0, (size_t)(s->nchunk_max + 1) * (size_t)np * sizeof(float));
    const uint64_t dseed = c->seed ^ 0xD50F0A7ull;

    /* 1. encoders, parallel over chunks */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t ch = 0; ch < nch; ch++) {
        const int64_t s0 = ch * CHUNK, b = B - s0 < CHUNK ? B - s0 : CHUNK;
        drop_ctx dc = {c->dropout, dseed, step, B, s0};
        gather_chunk(xn, T, idx + s0, b, s->enc[ch].x0);
        encoder_forward(m, &s->enc[ch], T, b, &dc, s->lastd + s0 * F);
    }
    /* 2. middle part over the whole batch */
    if (c->batch_norm)
        fl_batchnorm_forward_train(B, F, s->lastd, P + m->enc_bn_g, P + m->enc_bn_b, c->bn_eps, c->bn_momentum,
                                   enc_rm(m), enc_rv(m), s->xhat_e, s->inv_e, s->hb);
    else
        memcpy(s->hb, s->lastd, (size_t)(B * F) * sizeof(float));
    fl_linear_forward(B, F, L, s->hb, F, P + m->emb_w, P + m->emb_b, s->zpre, L);
    double l1sum = 0;
    for (int64_t i = 0; i < B * L; i++) {
        s->z[i] = s->zpre[i] > 0.f ? s->zpre[i] : 0.f;
        l1sum += s->z[i];
    }
    if (c->batch_norm)
        fl_batchnorm_forward_train(B, L, s->z, P + m->lat_bn_g, P + m->lat_bn_b, c->bn_eps, c->bn_momentum,
                                   lat_rm(m), lat_rv(m), s->xhat_l, s->inv_l, s->zz);
    else
        memcpy(s->zz, s->z, (size_t)(B * L) * sizeof(float));
    /* 3. decoders forward + backward, parallel over chunks */
    const double inv_count = 1.0 / ((double)B * (double)T);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t ch = 0; ch < nch; ch++) {
        const int64_t s0 = ch * CHUNK, b = B - s0 < CHUNK ? B - s0 : CHUNK;
        drop_ctx dc = {c->dropout, dseed, step, B, s0};
        chunk_ws *w = &s->dec[thread_id()];
        gather_chunk(xn, T, idx + s0, b, w->x0);
        decoder_forward(m, w, T, b, &dc, s->zz + s0 * L);
        s->chunk_sse[ch] = decoder_backward(m, w, T, b, &dc, s->zz + s0 * L, inv_count, w->dlat, s->grads + ch * np);
        memcpy(s->dzz + s0 * L, w->dlat, (size_t)(b * L) * sizeof(float));
    }
    /* 4. middle backward */
    if (c->batch_norm)
        fl_batchnorm_backward(B, L, s->xhat_l, s->inv_l, P + m->lat_bn_g, s->dzz, s->dz, gmid + m->lat_bn_g,
                              gmid + m->lat_bn_b);
    else
        memcpy(s->dz, s->dzz, (size_t)(B * L) * sizeof(float));
    for (int64_t i = 0; i < B * L; i++) s->dz[i] = s->zpre[i] > 0.f ? s->dz[i] + c->l1 : 0.f;
    fl_linear_backward(B, F, L, s->hb, F, P + m->emb_w, s->dz, L, s->dhb, F, gmid + m->emb_w, gmid + m->emb_b);
    if (c->batch_norm)
        fl_batchnorm_backward(B, F, s->xhat_e, s->inv_e, P + m->enc_bn_g, s->dhb, s->dlast, gmid + m->enc_bn_g,
                              gmid + m->enc_bn_b);
    else
        memcpy(s->dlast, s->dhb, (size_t)(B * F) * sizeof(float));
    /* 5. encoders backward */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int64_t ch = 0; ch < nch; ch++) {
        const int64_t s0 = ch * CHUNK, b = B - s0 < CHUNK ? B - s0 : CHUNK;
        drop_ctx dc = {c->dropout, dseed, step, B, s0};
        encoder_backward(m, &s->enc[ch], T, b, &dc, s->dlast + s0 * F, s->grads + ch * np);
    }
    /* 6. reduce the gradients in a fixed order, then Adam */
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < np; i++) {
        float g = gmid[i];
        for (int64_t ch = 0; ch < nch; ch++) g += s->grads[ch * np + i];
        s->grads[i] = g;
    }
    double sse = 0;
    for (int64_t ch = 0; ch < nch; ch++) sse += s->chunk_sse[ch];
    *mse_out = sse * inv_count;
    return *mse_out + c->l1 * l1sum;
}

/* One optimisation step; returns the loss before the update. */
static double train_step(fl_sae *m, train_state *s, const float *xn, const int64_t *idx, int64_t B, uint64_t step,
                         int nt, double *mse_out)
{
    const fl_sae_config *c = &m->cfg;
    double loss = forward_backward(m, s, xn, idx, B, step, nt, mse_out);
    fl_adam_step(m->nparams, m->params, s->grads, s->adam_m, s->adam_v, c->lr, c->adam_beta1, c->adam_beta2,
                 c->adam_eps, (int64_t)step + 1);
    return loss;
}

fl_status fl_sae_debug_loss_grad(fl_ctx *ctx, fl_sae *m, const float *xn, int64_t B, int32_t T, float *grad,
                                 double *loss)
{
    if (m->cfg.steps != T) return fl_fail(ctx, FL_EMISMATCH, "curve length differs from the model's");
    const int nt = thread_count(ctx);
    train_state s;
    int64_t *idx = malloc((size_t)B * sizeof(int64_t));
    fl_status st = idx ? train_state_alloc(ctx, m, T, B, nt, &s) : fl_fail(ctx, FL_ENOMEM, "out of memory");
    if (!st) {
        for (int64_t i = 0; i < B; i++) idx[i] = i;
        double mse;
        *loss = forward_backward(m, &s, xn, idx, B, 0, nt, &mse);
        if (grad) memcpy(grad, s.grads, (size_t)m->nparams * sizeof(float));
    }
    if (idx) train_state_free(&s, nt);
    free(idx);
    return st;
}

float *fl_sae_debug_params(fl_sae *m) { return m->params; }

/* Loss of the validation curves in inference mode: MSE + l1 * batch * mean per-curve sum|z| (what
 * Keras' batched val_loss with the same batch size reports). */
static fl_status validation_loss(fl_ctx *ctx, const fl_sae *m, const float *xv, int64_t nv, int64_t T, double *loss,
                                 double *mse)
{
    float *emb = fl_alloc((size_t)nv * m->cfg.latent * sizeof(float));
    float *rec = fl_alloc((size_t)nv * T * sizeof(float));
    fl_status st = (!emb || !rec) ? fl_fail(ctx, FL_ENOMEM, "out of memory for validation") : FL_OK;
    if (!st) {
        /* no progress callbacks inside: a cancel here must not look like a training failure */
        fl_progress_fn saved = ctx->progress;
        ctx->progress = NULL;
        st = run_inference(ctx, m, xv, nv, T, emb, rec, "validate");
        ctx->progress = saved;
    }
    if (!st) {
        double sse = 0, l1 = 0;
        for (int64_t i = 0; i < nv * T; i++) sse += ((double)rec[i] - xv[i]) * ((double)rec[i] - xv[i]);
        for (int64_t i = 0; i < nv * m->cfg.latent; i++) l1 += emb[i];
        *mse = sse / (double)(nv * T);
        int64_t b = m->cfg.batch < nv ? m->cfg.batch : nv;
        *loss = *mse + m->cfg.l1 * (double)b * l1 / (double)nv;
    }
    fl_free(emb);
    fl_free(rec);
    return st;
}

/* No timings here: the same seed must give a bit-identical model file. */
static void record_json(fl_sae *m, const fl_sae_report *r, int64_t ntrain, int64_t nval,
                        const double *hist_loss, const double *hist_val, int32_t epochs)
{
    fl_strbuf b;
    fl_strbuf_init(&b);
    fl_strbuf_printf(&b,
                     "{\"epochs_run\":%d,\"best_epoch\":%d,\"best_val_loss\":%.9g,\"final_train_loss\":%.9g,"
                     "\"train_curves\":%lld,\"val_curves\":%lld,\"cancelled\":%d,\"loss\":[",
                     r->epochs_run, r->best_epoch, r->best_val_loss, r->final_train_loss, (long long)ntrain,
                     (long long)nval, r->cancelled);
    for (int32_t e = 0; e < epochs; e++) fl_strbuf_printf(&b, "%s%.7g", e ? "," : "", hist_loss[e]);
    fl_strbuf_printf(&b, "],\"val_loss\":[");
    for (int32_t e = 0; e < epochs; e++) fl_strbuf_printf(&b, "%s%.7g", e ? "," : "", hist_val[e]);
    fl_strbuf_printf(&b, "]}");
    if (!b.failed) {
        free(m->training_json);
        m->training_json = b.data; /* ownership moves to the model */
        b.data = NULL;
    }
    fl_strbuf_free(&b);
}

fl_status fl_sae_train(fl_ctx *ctx, fl_sae *m, const float *curves, int64_t n, int32_t T, fl_sae_report *report)
{
    fl_status st = check_curves(ctx, m, curves, n, T);
    if (st) return st;
    fl_sae_config *c = &m->cfg;
    if (c->epochs < 1) return fl_fail(ctx, FL_EINVAL, "training needs at least one epoch");
    int64_t nval = c->val_split > 0.f ? (int64_t)llround((double)n * c->val_split) : 0;
    if (c->val_split > 0.f && nval < 1) nval = 1;
    const int64_t ntrain = n - nval;
    if (ntrain < 2) return fl_fail(ctx, FL_EINVAL, "too few curves to train (%lld, of which %lld for validation)",
                                   (long long)n, (long long)nval);
    const int nt = thread_count(ctx);
    const int64_t Bmax = c->batch < ntrain ? c->batch : ntrain;
    size_t need = train_bytes(m, T, Bmax, nt) + (size_t)n * T * sizeof(float) * 2 + (size_t)m->nparams * 8;
    st = fl_check_budget(ctx, need, "training");
    if (st) return st;

    float *xn = fl_alloc((size_t)n * T * sizeof(float));
    float *xtr = fl_alloc((size_t)ntrain * T * sizeof(float));
    float *xv = nval ? fl_alloc((size_t)nval * T * sizeof(float)) : NULL;
    int64_t *perm = malloc((size_t)n * sizeof(int64_t));
    float *best_p = fl_alloc((size_t)m->nparams * sizeof(float));
    float *best_s = fl_alloc((size_t)m->nstats * sizeof(float));
    double *hist_loss = calloc((size_t)c->epochs, sizeof(double)), *hist_val = calloc((size_t)c->epochs, sizeof(double));
    train_state s;
    memset(&s, 0, sizeof s);
    if (!xn || !xtr || (nval && !xv) || !perm || !best_p || !best_s || !hist_loss || !hist_val)
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for %lld training curves", (long long)n);
    /* fit the normalisation on a private copy; the model's values change only on success */
    double mean = m->norm_mean, sd = m->norm_std;
    const double norm_was[2] = {m->norm_mean, m->norm_std};
    const int steps_was = c->steps;
    if (!st) st = normalise(ctx, m, 1, &mean, &sd, curves, n, T, xn, NULL, NULL);
    if (!st) st = train_state_alloc(ctx, m, T, Bmax, nt, &s);
    fl_sae_report rep = {0};
    rep.best_epoch = -1;
    rep.best_val_loss = INFINITY;
    if (!st) {
        c->steps = T;
        m->norm_mean = mean;
        m->norm_std = sd;
        fl_rng r;
        fl_rng_init(&r, c->seed, 0x5eed);
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        fl_rng_shuffle(&r, perm, n);
        for (int64_t i = 0; i < nval; i++) memcpy(xv + i * T, xn + perm[i] * T, (size_t)T * sizeof(float));
        for (int64_t i = 0; i < ntrain; i++) memcpy(xtr + i * T, xn + perm[nval + i] * T, (size_t)T * sizeof(float));
        memcpy(best_p, m->params, (size_t)m->nparams * sizeof(float));
        memcpy(best_s, m->stats, (size_t)m->nstats * sizeof(float));
    }
    int64_t *order = perm; /* reused as the training order */
    const int64_t nb = (ntrain + Bmax - 1) / Bmax;
    uint64_t step = 0;
    int since_best = 0;
    double t_start = fl_now_seconds();
    for (int32_t e = 0; e < c->epochs && !st; e++) {
        fl_rng r;
        fl_rng_init(&r, c->seed, 0xE0000000ull + (uint64_t)e);
        for (int64_t i = 0; i < ntrain; i++) order[i] = i;
        fl_rng_shuffle(&r, order, ntrain);
        double loss_sum = 0, mse = 0;
        int64_t seen = 0;
        for (int64_t bi = 0; bi < nb && !st; bi++) {
            const int64_t s0 = bi * Bmax, B = ntrain - s0 < Bmax ? ntrain - s0 : Bmax;
            double l = train_step(m, &s, xtr, order + s0, B, step++, nt, &mse);
            if (!isfinite(l)) {
                st = fl_fail(ctx, FL_EINVAL, "training diverged (loss %g at epoch %d); lower the learning rate", l, e + 1);
                break;
            }
            loss_sum += l * (double)B;
            seen += B;
            st = fl_progress(ctx, "train", (int64_t)e * nb + bi + 1, (int64_t)c->epochs * nb, loss_sum / (double)seen,
                             rep.best_val_loss);
        }
        if (st) break;
        double vloss = loss_sum / (double)seen, vmse = 0;
        if (nval) st = validation_loss(ctx, m, xv, nval, T, &vloss, &vmse);
        if (st) break;
        hist_loss[e] = loss_sum / (double)seen;
        hist_val[e] = vloss;
        rep.epochs_run = e + 1;
        rep.final_train_loss = hist_loss[e];
        if (vloss < rep.best_val_loss) {
            rep.best_val_loss = vloss;
            rep.best_epoch = e;
            memcpy(best_p, m->params, (size_t)m->nparams * sizeof(float));
            memcpy(best_s, m->stats, (size_t)m->nstats * sizeof(float));
            since_best = 0;
        } else if (c->patience && ++since_best >= c->patience) {
            break;
        }
        st = fl_progress(ctx, "epoch", e + 1, c->epochs, hist_loss[e], vloss);
    }
    const double elapsed = fl_now_seconds() - t_start;
    if (st == FL_ECANCELLED && rep.epochs_run > 0) {
        rep.cancelled = 1;
        fl_ctx_clear_error(ctx);
        st = FL_OK;
    }
    if (!st) {
        memcpy(m->params, best_p, (size_t)m->nparams * sizeof(float));
        memcpy(m->stats, best_s, (size_t)m->nstats * sizeof(float));
        rep.seconds_per_epoch = rep.epochs_run ? elapsed / rep.epochs_run : 0;
        record_json(m, &rep, ntrain, nval, hist_loss, hist_val, rep.epochs_run);
        if (report) *report = rep;
    } else if (best_p && best_s && s.grads) {
        /* failed: keep the best weights seen (the initial ones when no epoch finished) */
        memcpy(m->params, best_p, (size_t)m->nparams * sizeof(float));
        memcpy(m->stats, best_s, (size_t)m->nstats * sizeof(float));
        if (rep.epochs_run == 0) {
            c->steps = steps_was;
            m->norm_mean = norm_was[0];
            m->norm_std = norm_was[1];
        }
    }
    train_state_free(&s, nt);
    fl_free(xn);
    fl_free(xtr);
    fl_free(xv);
    free(perm);
    fl_free(best_p);
    fl_free(best_s);
    free(hist_loss);
    free(hist_val);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* model files                                                                                     */

/* Every stored tensor of the model, in file order, with its place in params/stats. kind: 0 copy,
 * 1 = PyTorch's bias_hh (saved as zeros; added to the one bias on load). part: 0 encoder side,
 * 1 decoder side (latent BN, decoder LSTMs, output: what a retrained Keras decoder replaces). */
typedef void (*tensor_fn)(void *user, const char *name, int32_t ndim, const int64_t *shape, float *ptr, int kind,
                          int part);

static void visit_lstm(const fl_sae *m, const char *prefix, const lstm_off *L, int32_t layers, int part, tensor_fn fn,
                       void *u)
{
    const int64_t H = m->cfg.hidden;
    char name[128];
    for (int32_t l = 0; l < layers; l++)
        for (int32_t d = 0; d < m->ndir; d++) {
            const char *suf = d ? "_reverse" : "";
            int64_t sih[2] = {4 * H, L[l].in}, shh[2] = {4 * H, H}, sb[1] = {4 * H};
            snprintf(name, sizeof name, "%s.%d.weight_ih_l0%s", prefix, l, suf);
            fn(u, name, 2, sih, m->params + L[l].dir[d].w_ih, 0, part);
            snprintf(name, sizeof name, "%s.%d.weight_hh_l0%s", prefix, l, suf);
            fn(u, name, 2, shh, m->params + L[l].dir[d].w_hh, 0, part);
            snprintf(name, sizeof name, "%s.%d.bias_ih_l0%s", prefix, l, suf);
            fn(u, name, 1, sb, m->params + L[l].dir[d].b, 0, part);
            snprintf(name, sizeof name, "%s.%d.bias_hh_l0%s", prefix, l, suf);
            fn(u, name, 1, sb, m->params + L[l].dir[d].b, 1, part);
        }
}

static void visit_bn(const fl_sae *m, const char *prefix, int64_t F, int64_t g, int64_t b, float *rm, float *rv,
                     int part, tensor_fn fn, void *u)
{
    if (!m->cfg.batch_norm) return;
    char name[128];
    int64_t sh[1] = {F};
    snprintf(name, sizeof name, "%s.weight", prefix);
    fn(u, name, 1, sh, m->params + g, 0, part);
    snprintf(name, sizeof name, "%s.bias", prefix);
    fn(u, name, 1, sh, m->params + b, 0, part);
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    fn(u, name, 1, sh, rm, 0, part);
    snprintf(name, sizeof name, "%s.running_var", prefix);
    fn(u, name, 1, sh, rv, 0, part);
}

static void visit_tensors(const fl_sae *m, tensor_fn fn, void *u)
{
    const int64_t L = m->cfg.latent, F = m->F;
    visit_lstm(m, "encoder", m->enc, m->cfg.enc_layers, 0, fn, u);
    visit_bn(m, "encoder_bn", F, m->enc_bn_g, m->enc_bn_b, enc_rm(m), enc_rv(m), 0, fn, u);
    int64_t sw[2] = {L, F}, sb[1] = {L}, so[2] = {1, F}, sob[1] = {1};
    fn(u, "embedding.weight", 2, sw, m->params + m->emb_w, 0, 0);
    fn(u, "embedding.bias", 1, sb, m->params + m->emb_b, 0, 0);
    visit_bn(m, "latent_bn", L, m->lat_bn_g, m->lat_bn_b, lat_rm(m), lat_rv(m), 1, fn, u);
    visit_lstm(m, "decoder", m->dec, m->cfg.dec_layers, 1, fn, u);
    fn(u, "output.weight", 2, so, m->params + m->out_w, 0, 1);
    fn(u, "output.bias", 1, sob, m->params + m->out_b, 0, 1);
}

typedef struct save_ctx {
    fl_ctx *ctx;
    fl_tensor_list *list;
    fl_status st;
} save_ctx;

static void save_one(void *u, const char *name, int32_t ndim, const int64_t *shape, float *ptr, int kind, int part)
{
    save_ctx *s = u;
    if (s->st) return;
    if (!fl_tensor_list_add(s->ctx, s->list, name, ndim, shape, kind == 1 ? NULL : ptr)) s->st = s->ctx->status;
}

typedef struct load_ctx {
    fl_ctx *ctx;
    const fl_tensor_list *list;
    int only_part; /* -1 all, else only tensors of that part */
    int32_t used;
    fl_status st;
} load_ctx;

static void load_one(void *u, const char *name, int32_t ndim, const int64_t *shape, float *ptr, int kind, int part)
{
    load_ctx *l = u;
    if (l->st || (l->only_part >= 0 && part != l->only_part)) return;
    const fl_tensor *t = fl_tensor_list_find(l->list, name);
    if (!t) {
        l->st = fl_fail(l->ctx, FL_EFORMAT, "model file lacks tensor '%s'", name);
        return;
    }
    int ok = t->ndim == ndim;
    for (int32_t i = 0; ok && i < ndim; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        l->st = fl_fail(l->ctx, FL_EFORMAT, "tensor '%s' has the wrong shape for this architecture", name);
        return;
    }
    const int64_t ne = fl_tensor_numel(t);
    for (int64_t i = 0; i < ne; i++)
        if (!isfinite(t->data[i])) {
            l->st = fl_fail(l->ctx, FL_EFORMAT, "tensor '%s' holds a NaN/Inf value", name);
            return;
        }
    if (kind == 1)
        for (int64_t i = 0; i < ne; i++) ptr[i] += t->data[i];
    else
        memcpy(ptr, t->data, (size_t)ne * sizeof(float));
    l->used++;
}

static void config_json(fl_strbuf *b, const fl_sae_config *c)
{
    fl_strbuf_printf(b,
                     "{\"steps\":%d,\"hidden\":%d,\"enc_layers\":%d,\"dec_layers\":%d,\"latent\":%d,"
                     "\"bidirectional\":%d,\"batch_norm\":%d,\"hard_sigmoid\":%d,\"bn_eps\":%.9g,"
                     "\"bn_momentum\":%.9g,\"l1\":%.9g,\"dropout\":%.9g,\"lr\":%.9g,\"adam_beta1\":%.9g,"
                     "\"adam_beta2\":%.9g,\"adam_eps\":%.9g,\"batch\":%d,\"epochs\":%d,\"val_split\":%.9g,"
                     "\"patience\":%d,\"seed\":%llu,\"norm_mode\":%d,\"outlier_repair\":%d}",
                     c->steps, c->hidden, c->enc_layers, c->dec_layers, c->latent, c->bidirectional, c->batch_norm,
                     c->hard_sigmoid, c->bn_eps, c->bn_momentum, c->l1, c->dropout, c->lr, c->adam_beta1,
                     c->adam_beta2, c->adam_eps, c->batch, c->epochs, c->val_split, c->patience,
                     (unsigned long long)c->seed, c->norm_mode, c->outlier_repair);
}

static fl_status config_from_json(fl_ctx *ctx, const char *text, fl_sae_config *c)
{
    fl_json *j = NULL;
    if (!text) return fl_fail(ctx, FL_EFORMAT, "model file has no configuration");
    fl_status st = fl_json_parse(ctx, text, strlen(text), &j);
    if (st) return fl_fail(ctx, FL_EFORMAT, "model configuration is not valid JSON: %s", fl_ctx_message(ctx));
    fl_sae_config_default(c);
    const fl_model_field f[] = {
        {"steps", 1, &c->steps}, {"hidden", 1, &c->hidden}, {"enc_layers", 1, &c->enc_layers},
        {"dec_layers", 1, &c->dec_layers}, {"latent", 1, &c->latent}, {"bidirectional", 1, &c->bidirectional},
        {"batch_norm", 1, &c->batch_norm}, {"hard_sigmoid", 1, &c->hard_sigmoid}, {"bn_eps", 0, &c->bn_eps},
        {"bn_momentum", 0, &c->bn_momentum}, {"l1", 0, &c->l1}, {"dropout", 0, &c->dropout}, {"lr", 0, &c->lr},
        {"adam_beta1", 0, &c->adam_beta1}, {"adam_beta2", 0, &c->adam_beta2}, {"adam_eps", 0, &c->adam_eps},
        {"batch", 1, &c->batch}, {"epochs", 1, &c->epochs}, {"val_split", 0, &c->val_split},
        {"patience", 1, &c->patience}, {"norm_mode", 1, &c->norm_mode}, {"outlier_repair", 1, &c->outlier_repair}
    };
    st = fl_model_meta_read_fields(ctx, j, f, sizeof f / sizeof f[0]);
    if (!st) st = fl_model_meta_read_seed(ctx, j, &c->seed);
    fl_json_free(j);
    if (!st && check_config(ctx, c)) st = fl_fail(ctx, FL_EFORMAT, "model configuration is invalid: %s", fl_ctx_message(ctx));
    if (!st && c->steps < 8) st = fl_fail(ctx, FL_EFORMAT, "model configuration has no curve length");
    return st;
}

fl_status fl_sae_save(fl_ctx *ctx, const fl_sae *m, const char *path)
{
    if (!m || !path || !*path) return fl_fail(ctx, FL_EINVAL, "save: no model or no path");
    if (m->cfg.steps < 8) return fl_fail(ctx, FL_EINVAL, "the model has no curve length yet: train it first");
    fl_tensor_list list;
    fl_tensor_list_init(&list);
    save_ctx sc = {ctx, &list, FL_OK};
    visit_tensors(m, save_one, &sc);
    fl_status st = sc.st;
    fl_strbuf b;
    fl_strbuf_init(&b);
    config_json(&b, &m->cfg);
    if (!st) st = fl_model_meta_set_common(ctx, &list, FAMILY_NAME, &b);
    if (!st) {
        static const char *modes[] = {"global", "per-curve", "none"};
        b.len = 0;
        fl_strbuf_printf(&b, "{\"mode\":\"%s\",\"mean\":%.17g,\"std\":%.17g}", modes[m->cfg.norm_mode], m->norm_mean,
                         m->norm_std);
        st = fl_model_meta_set_buf(ctx, &list, "normalisation", &b);
    }
    if (!st) {
        b.len = 0;
        fl_strbuf_printf(&b, "{\"label\":");
        fl_strbuf_json_string(&b, m->axis_label);
        fl_strbuf_printf(&b, ",\"unit\":");
        fl_strbuf_json_string(&b, m->axis_unit);
        fl_strbuf_printf(&b, ",\"values\":");
        if (m->axis) {
            fl_strbuf_printf(&b, "[");
            for (int32_t i = 0; i < m->cfg.steps; i++) fl_strbuf_printf(&b, "%s%.17g", i ? "," : "", m->axis[i]);
            fl_strbuf_printf(&b, "]}");
        } else {
            fl_strbuf_printf(&b, "null}");
        }
        st = fl_model_meta_set_buf(ctx, &list, "axis", &b);
    }
    if (!st && m->training_json) st = fl_tensor_list_set_meta(ctx, &list, "training", m->training_json);
    if (!st) st = fl_safetensors_write(ctx, path, &list);
    fl_strbuf_free(&b);
    fl_tensor_list_free(&list);
    return st;
}

/* Builds a model of configuration cfg from tensors (all of them, or one part); shapes checked. */
static fl_status sae_from_tensors(fl_ctx *ctx, const fl_sae_config *cfg, const fl_tensor_list *list, fl_sae **out)
{
    fl_sae *m;
    /* The configuration comes from the (untrusted) file: before allocating and initialising a model
     * of that size, check that the file holds at least as many values as such a model stores (every
     * parameter and BN statistic; BN parameters only with batch norm), so that a small file cannot
     * make us allocate gigabytes. */
    fl_status st = check_config(ctx, cfg);
    if (st) return st;
    fl_sae *probe = calloc(1, sizeof *probe);
    if (!probe) return fl_fail(ctx, FL_ENOMEM, "out of memory for the model");
    probe->cfg = *cfg;
    layout(probe);
    const int64_t bn_params = 2 * (int64_t)probe->F + 2 * (int64_t)cfg->latent;
    const int64_t need = probe->nparams + (cfg->batch_norm ? probe->nstats : -bn_params);
    free(probe);
    const int64_t have = fl_model_meta_values(list);
    if (have < need)
        return fl_fail(ctx, FL_EFORMAT,
                       "model file holds %lld values but its architecture needs at least %lld: damaged file or "
                       "wrong configuration",
                       (long long)have, (long long)need);
    st = sae_alloc(ctx, cfg, &m);
    if (st) return st;
    init_params(m); /* BN slots keep gamma 1 / beta 0 when the file has no BN */
    load_ctx lc = {ctx, list, -1, 0, FL_OK};
    visit_tensors(m, load_one, &lc);
    if (!lc.st && lc.used != list->count)
        lc.st = fl_fail(ctx, FL_EFORMAT, "model file has %d tensors this architecture does not use", list->count - lc.used);
    if (lc.st) {
        fl_sae_free(m);
        return lc.st;
    }
    *out = m;
    return FL_OK;
}

static fl_status parse_norm_axis(fl_ctx *ctx, fl_sae *m, const fl_tensor_list *list)
{
    fl_json *j = NULL;
    const char *norm = fl_tensor_list_get_meta(list, "normalisation");
    if (!norm || fl_json_parse(ctx, norm, strlen(norm), &j))
        return fl_fail(ctx, FL_EFORMAT, "model file has no valid normalisation record");
    double mu = fl_json_number(fl_json_get(j, "mean")), sd = fl_json_number(fl_json_get(j, "std"));
    fl_json_free(j);
    if (!isfinite(mu) || !isfinite(sd) || !(sd > 0)) return fl_fail(ctx, FL_EFORMAT, "model file: bad normalisation values");
    m->norm_mean = mu;
    m->norm_std = sd;
    const char *axis = fl_tensor_list_get_meta(list, "axis");
    if (!axis) return FL_OK;
    if (fl_json_parse(ctx, axis, strlen(axis), &j)) return fl_fail(ctx, FL_EFORMAT, "model file: axis record is not JSON");
    const fl_json *vals = fl_json_get(j, "values");
    const char *label = fl_json_string(fl_json_get(j, "label")), *unit = fl_json_string(fl_json_get(j, "unit"));
    fl_status st = FL_OK;
    double *v = NULL;
    if (vals && fl_json_type_of(vals) == FL_JSON_ARRAY) {
        if ((int64_t)fl_json_len(vals) != m->cfg.steps) {
            st = fl_fail(ctx, FL_EFORMAT, "model file: axis has %zu values for curves of %d points", fl_json_len(vals),
                         m->cfg.steps);
        } else {
            v = malloc((size_t)m->cfg.steps * sizeof(double));
            if (!v) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
            for (int32_t i = 0; !st && i < m->cfg.steps; i++) v[i] = fl_json_number(fl_json_at(vals, (size_t)i));
        }
    }
    if (!st) st = fl_sae_set_axis(ctx, m, v, m->cfg.steps, label, unit);
    if (st && st != FL_ENOMEM) st = fl_fail(ctx, FL_EFORMAT, "model file: bad axis record (%s)", fl_ctx_message(ctx));
    free(v);
    fl_json_free(j);
    return st;
}

fl_status fl_sae_load(fl_ctx *ctx, const char *path, fl_sae **out)
{
    if (!path || !out) return fl_fail(ctx, FL_EINVAL, "load: no path");
    fl_tensor_list list;
    fl_status st = fl_safetensors_read(ctx, path, &list);
    if (st) return st;
    fl_sae_config cfg;
    fl_sae *m = NULL;
    static const char *const fam[] = {FAMILY_NAME};
    st = fl_model_meta_check(ctx, &list, path, fam, 1, "a spectral autoencoder", NULL);
    if (!st) st = config_from_json(ctx, fl_tensor_list_get_meta(&list, "config"), &cfg);
    if (!st) st = sae_from_tensors(ctx, &cfg, &list, &m);
    if (!st) st = parse_norm_axis(ctx, m, &list);
    if (!st) {
        const char *tr = fl_tensor_list_get_meta(&list, "training");
        if (tr) m->training_json = strdup(tr);
    }
    fl_tensor_list_free(&list);
    if (st) {
        fl_sae_free(m);
        return st;
    }
    *out = m;
    return FL_OK;
}

fl_status fl_sae_import_keras(fl_ctx *ctx, const char *h5_path, int32_t steps, fl_sae **out)
{
    if (!h5_path || !out) return fl_fail(ctx, FL_EINVAL, "import: no path");
    if (steps < 8 || steps > 100000) return fl_fail(ctx, FL_EINVAL, "curve length must be 8..100000 (got %d)", steps);
    fl_tensor_list list;
    fl_tensor_list_init(&list);
    fl_sae_config cfg;
    fl_sae_config_default(&cfg);
    fl_status st = fl_keras_read_lstm_ae(ctx, h5_path, &list, &cfg);
    fl_sae *m = NULL;
    if (!st) {
        cfg.steps = steps;
        cfg.norm_mode = FL_NORM_NONE;
        st = sae_from_tensors(ctx, &cfg, &list, &m);
    }
    fl_tensor_list_free(&list);
    if (!st) *out = m;
    return st;
}

fl_status fl_sae_import_keras_decoder(fl_ctx *ctx, fl_sae *m, const char *h5_path)
{
    if (!m || !h5_path) return fl_fail(ctx, FL_EINVAL, "import decoder: bad arguments");
    fl_tensor_list list;
    fl_tensor_list_init(&list);
    fl_status st = fl_keras_read_lstm_decoder(ctx, h5_path, &list);
    float *backup_p = NULL, *backup_s = NULL;
    if (!st) {
        backup_p = fl_alloc((size_t)m->nparams * sizeof(float));
        backup_s = fl_alloc((size_t)m->nstats * sizeof(float));
        if (!backup_p || !backup_s) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    }
    if (!st) {
        memcpy(backup_p, m->params, (size_t)m->nparams * sizeof(float));
        memcpy(backup_s, m->stats, (size_t)m->nstats * sizeof(float));
        /* bias_hh is added to the bias on load: clear the decoder biases first */
        for (int32_t l = 0; l < m->cfg.dec_layers; l++)
            for (int32_t d = 0; d < m->ndir; d++)
                memset(m->params + m->dec[l].dir[d].b, 0, (size_t)(4 * m->cfg.hidden) * sizeof(float));
        load_ctx lc = {ctx, &list, 1, 0, FL_OK};
        visit_tensors(m, load_one, &lc);
        st = lc.st;
        if (!st && lc.used != list.count)
            st = fl_fail(ctx, FL_EFORMAT, "decoder file does not match the model's architecture");
        if (st) { /* change nothing on failure */
            memcpy(m->params, backup_p, (size_t)m->nparams * sizeof(float));
            memcpy(m->stats, backup_s, (size_t)m->nstats * sizeof(float));
        }
    }
    fl_free(backup_p);
    fl_free(backup_s);
    fl_tensor_list_free(&list);
    return st;
}

fl_status fl_model_info(fl_ctx *ctx, const char *path, int json, char *buf, size_t cap)
{
    if (!path || !buf || cap == 0) return fl_fail(ctx, FL_EINVAL, "model info: bad arguments");
    fl_tensor_list list;
    fl_status st = fl_safetensors_read(ctx, path, &list);
    if (st) return st;
    const int64_t total = fl_model_meta_values(&list);
    const char *fam = fl_tensor_list_get_meta(&list, "family");
    const char *ver = fl_tensor_list_get_meta(&list, "format_version");
    const char *eng = fl_tensor_list_get_meta(&list, "engine_version");
    const char *cfg = fl_tensor_list_get_meta(&list, "config");
    const char *tr = fl_tensor_list_get_meta(&list, "training");
    const char *norm = fl_tensor_list_get_meta(&list, "normalisation");
    fl_strbuf b;
    fl_strbuf_init(&b);
    if (json) {
        fl_strbuf_printf(&b, "{\"path\":");
        fl_strbuf_json_string(&b, path);
        fl_strbuf_printf(&b, ",\"family\":");
        fl_strbuf_json_string(&b, fam ? fam : "");
        fl_strbuf_printf(&b, ",\"format_version\":");
        fl_strbuf_json_string(&b, ver ? ver : "");
        fl_strbuf_printf(&b, ",\"engine_version\":");
        fl_strbuf_json_string(&b, eng ? eng : "");
        fl_strbuf_printf(&b, ",\"tensors\":%d,\"values\":%lld", list.count, (long long)total);
        const char *keys[3] = {"config", "normalisation", "training"}, *vals[3] = {cfg, norm, tr};
        for (int i = 0; i < 3; i++) {
            /* metadata comes from the file: pasted as JSON only when it is valid JSON, else quoted */
            fl_json *j = NULL;
            fl_ctx *probe = fl_ctx_new();
            int valid = vals[i] && probe && fl_json_parse(probe, vals[i], strlen(vals[i]), &j) == FL_OK;
            fl_json_free(j);
            fl_ctx_free(probe);
            fl_strbuf_printf(&b, ",\"%s\":", keys[i]);
            if (valid) fl_strbuf_append(&b, vals[i], strlen(vals[i]));
            else if (vals[i]) fl_strbuf_json_string(&b, vals[i]);
            else fl_strbuf_printf(&b, "null");
        }
        fl_strbuf_printf(&b, "}");
    } else {
        fl_strbuf_printf(&b, "%s: %s model (format %s, written by Ferrolens %s), %d tensors, %lld values\nconfig: %s\n",
                         path, fam ? fam : "unknown", ver ? ver : "?", eng ? eng : "?", list.count, (long long)total,
                         cfg ? cfg : "none");
        if (norm) fl_strbuf_printf(&b, "normalisation: %s\n", norm);
        if (tr) fl_strbuf_printf(&b, "training: %.300s%s\n", tr, strlen(tr) > 300 ? "..." : "");
    }
    if (b.failed) st = fl_fail(ctx, FL_ENOMEM, "out of memory");
    else if (b.len + 1 > cap) st = fl_fail(ctx, FL_EINVAL, "model info needs %zu bytes, buffer has %zu", b.len + 1, cap);
    else memcpy(buf, b.data, b.len + 1);
    if (json && !st && !fam) st = FL_OK; /* still valid JSON describing an unknown file */
    fl_strbuf_free(&b);
    fl_tensor_list_free(&list);
    return st;
}
