/* Static computation graph: building, memory plan, forward/backward of each op. See graph.h. */
#include "nn/graph.h"

#include "ops/gemm.h"
#include "ops/winograd.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define G_MAXIN 16
/* Columns of the im2col buffer are processed in chunks of whole planes up to this size. */
#define G_COL_BYTES ((size_t)64 << 20)
/* Elementwise loops go parallel above this many elements. */
#define G_PAR_MIN 32768

enum {
    OP_INPUT,
    OP_CONV,
    OP_BN,
    OP_LRELU,
    OP_ADD,
    OP_MAXPOOL,
    OP_UP_NEAREST,
    OP_UP_BILINEAR,
    OP_LAYERNORM,
    OP_LINEAR,
    OP_RESHAPE,
    OP_CONCAT
};

typedef struct g_param {
    char name[128];
    int32_t ndim;
    int64_t shape[4];
    int64_t off;       /* into params (trainable) or bufs (running statistics) */
    int64_t count;
    int trainable;
    int role;          /* 0 weight, 1 bias, 2 gamma (ones), 3 beta (zeros), 4 running mean, 5 running var */
    int64_t fan_in, fan_out;
} g_param;

typedef struct g_node {
    int64_t C, H, W;
    int32_t producer;  /* op index */
    int32_t last_use;  /* last op reading it (memory reuse in inference graphs) */
    float *data, *grad;
    int needs_grad;    /* some parameter lies upstream: its gradient is needed */
    int keep;          /* a result the caller reads: never reused (inference graphs) */
} g_node;

typedef struct g_op {
    int kind;
    int nin;
    fl_node in[G_MAXIN];
    fl_node out;
    int32_t w, b, rm, rv; /* parameter indices, -1 when absent */
    int kh, kw, stride, ph, pw, dh, dw;
    int k;                /* pool size / upsampling scale / align_corners */
    float slope;
    float *save;          /* BN: mean, inv_std per channel; LN: per plane */
    int64_t u_off;        /* keep_all Winograd layers: offset of the kernel's U in g->wino_u */
} g_op;

struct fl_graph {
    fl_ctx *ctx;
    int threads;
    int training;
    fl_status failed; /* the first build error (FL_OK: none); later build calls do nothing */
    int finalized;
    int64_t max_batch, batch;
    g_node *nodes;
    int32_t nnodes, cap_nodes;
    g_op *ops;
    int32_t nops, cap_ops;
    g_param *params;
    int32_t nparams, cap_params;
    int64_t n_trainable, n_bufs;
    float *p, *dp, *m, *v, *bufs; /* flat parameter buffers */
    float *work;                  /* im2col / linear transposition workspace (g_work_floats) */
    int keep_all;                 /* fl_graph_keep_all: every activation persists (row updates) */
    int no_winograd;              /* fl_graph_use_winograd(g, 0) */
    int64_t *pend;                /* keep_all: per node, rows [pend[2i], pend[2i+1]) are stale */
    float *wino_u;                /* keep_all: every Winograd layer's U as of the last full forward (row
                                     updates reuse them: transforming the kernels took 40 % of a ResHedNet
                                     line update) */
    float **pool;                 /* activation buffers (owned), at most 2 per node */
    int32_t npool;
};

/* ---- building --------------------------------------------------------------------------------- */

static int g_grow(fl_graph *g, void **arr, int32_t *cap, size_t elem, int32_t need)
{
    if (need <= *cap) return 0;
    int32_t nc = *cap ? *cap * 2 : 32;
    while (nc < need) nc *= 2;
    void *n = fl_calloc((size_t)nc, elem);
    if (!n) {
        if (!g->failed) g->failed = fl_fail(g->ctx, FL_ENOMEM, "out of memory while building a network");
        return -1;
    }
    if (*arr) memcpy(n, *arr, (size_t)*cap * elem);
    fl_free(*arr);
    *arr = n;
    *cap = nc;
    return 0;
}

fl_graph *fl_graph_new(fl_ctx *ctx, int64_t max_batch, int training)
{
    if (max_batch < 1) {
        fl_fail(ctx, FL_EINVAL, "batch size must be at least 1");
        return NULL;
    }
    fl_graph *g = fl_calloc(1, sizeof *g);
    if (!g) {
        fl_fail(ctx, FL_ENOMEM, "out of memory");
        return NULL;
    }
    g->ctx = ctx;
    g->threads = fl_ctx_threads(ctx);
    g->training = training;
    g->max_batch = g->batch = max_batch;
    return g;
}

void fl_graph_free(fl_graph *g)
{
    if (!g) return;
    for (int32_t i = 0; i < g->nops; i++) fl_free(g->ops[i].save);
    for (int32_t i = 0; i < g->npool; i++) fl_free(g->pool[i]);
    fl_free(g->pool);
    fl_free(g->nodes);
    fl_free(g->ops);
    fl_free(g->params);
    fl_free(g->p);
    fl_free(g->dp);
    fl_free(g->m);
    fl_free(g->v);
    fl_free(g->bufs);
    fl_free(g->work);
    fl_free(g->pend);
    fl_free(g->wino_u);
    fl_free(g);
}

static int g_bad(fl_graph *g, const char *fmt, const char *what)
{
    if (!g->failed) g->failed = fl_fail(g->ctx, FL_EINVAL, fmt, what);
    return -1;
}

static int g_valid(fl_graph *g, fl_node x)
{
    return !g->failed && !g->finalized && x >= 0 && x < g->nnodes;
}

static fl_node g_new_node(fl_graph *g, int64_t C, int64_t H, int64_t W)
{
    if (C < 1 || H < 1 || W < 1 || C > (1 << 24) || H > (1 << 24) || W > (1 << 24) ||
        (double)C * H * W * g->max_batch > 4e12)
        return g_bad(g, "network layer of impossible size (%s)", "check the input and patch sizes");
    if (g_grow(g, (void **)&g->nodes, &g->cap_nodes, sizeof(g_node), g->nnodes + 1)) return -1;
    g_node *n = &g->nodes[g->nnodes];
    n->C = C;
    n->H = H;
    n->W = W;
    n->producer = g->nops;
    n->last_use = -1;
    return g->nnodes++;
}

static g_op *g_new_op(fl_graph *g, int kind, int nin, const fl_node *in)
{
    if (g_grow(g, (void **)&g->ops, &g->cap_ops, sizeof(g_op), g->nops + 1)) return NULL;
    g_op *o = &g->ops[g->nops];
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->nin = nin;
    o->w = o->b = o->rm = o->rv = -1;
    for (int i = 0; i < nin; i++) o->in[i] = in[i];
    o->out = -1;
    return o;
}

/* Finishes an op: creates its output node. */
static fl_node g_emit(fl_graph *g, g_op *o, int64_t C, int64_t H, int64_t W)
{
    fl_node y = g_new_node(g, C, H, W);
    if (y < 0) return -1;
    o->out = y;
    int ng = 0;
    for (int i = 0; i < o->nin; i++) ng |= g->nodes[o->in[i]].needs_grad;
    g->nodes[y].needs_grad = ng || o->w >= 0 || o->b >= 0;
    for (int i = 0; i < o->nin; i++) g->nodes[o->in[i]].last_use = g->nops;
    g->nops++;
    return y;
}

static int32_t g_new_param(fl_graph *g, const char *prefix, const char *suffix, int32_t ndim, const int64_t *shape,
                           int trainable, int role, int64_t fan_in, int64_t fan_out)
{
    if (g_grow(g, (void **)&g->params, &g->cap_params, sizeof(g_param), g->nparams + 1)) return -1;
    g_param *p = &g->params[g->nparams];
    if ((size_t)snprintf(p->name, sizeof p->name, "%s.%s", prefix, suffix) >= sizeof p->name)
        return g_bad(g, "parameter name too long: %s", prefix);
    for (int32_t i = 0; i < g->nparams; i++)
        if (!strcmp(g->params[i].name, p->name)) return g_bad(g, "two layers are named %s", p->name);
    p->ndim = ndim;
    p->count = 1;
    for (int32_t i = 0; i < ndim; i++) {
        p->shape[i] = shape[i];
        p->count *= shape[i];
    }
    p->trainable = trainable;
    p->role = role;
    p->fan_in = fan_in;
    p->fan_out = fan_out;
    if (trainable) {
        p->off = g->n_trainable;
        g->n_trainable += (p->count + 15) & ~(int64_t)15; /* keep every tensor 64-byte aligned */
    } else {
        p->off = g->n_bufs;
        g->n_bufs += p->count;
    }
    return g->nparams++;
}

fl_node fl_g_input(fl_graph *g, int64_t C, int64_t H, int64_t W)
{
    if (g->failed || g->finalized) return -1;
    g_op *o = g_new_op(g, OP_INPUT, 0, NULL);
    if (!o) return -1;
    return g_emit(g, o, C, H, W);
}

static fl_node g_conv(fl_graph *g, fl_node x, const char *name, int64_t cout, int kh, int kw, int s, int ph, int pw,
                      int dh, int dw, int bias, int one_d)
{
    if (!g_valid(g, x)) return -1;
    const g_node *in = &g->nodes[x];
    if (kh < 1 || kw < 1 || s < 1 || ph < 0 || pw < 0 || dh < 1 || dw < 1 || cout < 1)
        return g_bad(g, "invalid convolution settings in layer %s", name);
    int64_t Ho = (in->H + 2 * ph - dh * (kh - 1) - 1) / s + 1;
    int64_t Wo = (in->W + 2 * pw - dw * (kw - 1) - 1) / s + 1;
    if (in->H + 2 * ph - dh * (kh - 1) - 1 < 0 || in->W + 2 * pw - dw * (kw - 1) - 1 < 0)
        return g_bad(g, "input too small for the convolution in layer %s", name);
    g_op *o = g_new_op(g, OP_CONV, 1, &x);
    if (!o) return -1;
    int64_t cin = in->C;
    int64_t shape4[4] = {cout, cin, kh, kw}, shape3[3] = {cout, cin, kw}, bshape[1] = {cout};
    o->w = g_new_param(g, name, "weight", one_d ? 3 : 4, one_d ? shape3 : shape4, 1, 0, cin * kh * kw,
                       cout * kh * kw);
    if (bias) o->b = g_new_param(g, name, "bias", 1, bshape, 1, 1, cin * kh * kw, cout * kh * kw);
    if (g->failed) return -1;
    o->kh = kh;
    o->kw = kw;
    o->stride = s;
    o->ph = ph;
    o->pw = pw;
    o->dh = dh;
    o->dw = dw;
    return g_emit(g, o, cout, Ho, Wo);
}

fl_node fl_g_conv2d(fl_graph *g, fl_node x, const char *name, int64_t cout, int kh, int kw, int stride, int ph,
                    int pw, int dh, int dw, int bias)
{
    return g_conv(g, x, name, cout, kh, kw, stride, ph, pw, dh, dw, bias, 0);
}

fl_node fl_g_conv1d(fl_graph *g, fl_node x, const char *name, int64_t cout, int k, int stride, int pad, int dil,
                    int bias)
{
    if (g_valid(g, x) && g->nodes[x].H != 1) return g_bad(g, "1-D convolution %s on a 2-D activation", name);
    return g_conv(g, x, name, cout, 1, k, stride, 0, pad, 1, dil, bias, 1);
}

fl_node fl_g_batchnorm(fl_graph *g, fl_node x, const char *name)
{
    if (!g_valid(g, x)) return -1;
    int64_t C = g->nodes[x].C, shape[1] = {C};
    g_op *o = g_new_op(g, OP_BN, 1, &x);
    if (!o) return -1;
    o->w = g_new_param(g, name, "weight", 1, shape, 1, 2, 0, 0);
    o->b = g_new_param(g, name, "bias", 1, shape, 1, 3, 0, 0);
    o->rm = g_new_param(g, name, "running_mean", 1, shape, 0, 4, 0, 0);
    o->rv = g_new_param(g, name, "running_var", 1, shape, 0, 5, 0, 0);
    if (g->failed) return -1;
    return g_emit(g, o, C, g->nodes[x].H, g->nodes[x].W);
}

fl_node fl_g_leaky_relu(fl_graph *g, fl_node x, float slope)
{
    if (!g_valid(g, x)) return -1;
    g_op *o = g_new_op(g, OP_LRELU, 1, &x);
    if (!o) return -1;
    o->slope = slope;
    return g_emit(g, o, g->nodes[x].C, g->nodes[x].H, g->nodes[x].W);
}

static int g_same_inputs(fl_graph *g, int n, const fl_node *xs, int same_channels)
{
    if (n < 1 || n > G_MAXIN) return 0;
    for (int i = 0; i < n; i++) {
        if (!g_valid(g, xs[i])) return 0;
        const g_node *a = &g->nodes[xs[0]], *b = &g->nodes[xs[i]];
        if (a->H != b->H || a->W != b->W || (same_channels && a->C != b->C)) return 0;
    }
    return 1;
}

fl_node fl_g_add(fl_graph *g, int n, const fl_node *xs)
{
    if (!g_same_inputs(g, n, xs, 1)) return g->failed ? -1 : g_bad(g, "%s", "sum of activations of different shapes");
    g_op *o = g_new_op(g, OP_ADD, n, xs);
    if (!o) return -1;
    return g_emit(g, o, g->nodes[xs[0]].C, g->nodes[xs[0]].H, g->nodes[xs[0]].W);
}

fl_node fl_g_concat(fl_graph *g, int n, const fl_node *xs)
{
    if (!g_same_inputs(g, n, xs, 0))
        return g->failed ? -1 : g_bad(g, "%s", "concatenation of activations of different sizes");
    int64_t C = 0;
    for (int i = 0; i < n; i++) C += g->nodes[xs[i]].C;
    g_op *o = g_new_op(g, OP_CONCAT, n, xs);
    if (!o) return -1;
    return g_emit(g, o, C, g->nodes[xs[0]].H, g->nodes[xs[0]].W);
}

fl_node fl_g_maxpool(fl_graph *g, fl_node x, int k)
{
    if (!g_valid(g, x)) return -1;
    const g_node *in = &g->nodes[x];
    if (k < 1 || in->H / k < 1 || in->W / k < 1) return g_bad(g, "%s", "max-pooling of an activation smaller than its window");
    g_op *o = g_new_op(g, OP_MAXPOOL, 1, &x);
    if (!o) return -1;
    o->k = k;
    return g_emit(g, o, in->C, in->H / k, in->W / k);
}

fl_node fl_g_upsample_nearest(fl_graph *g, fl_node x, int scale)
{
    if (!g_valid(g, x)) return -1;
    if (scale < 1) return g_bad(g, "%s", "upsampling scale must be >= 1");
    const g_node *in = &g->nodes[x];
    g_op *o = g_new_op(g, OP_UP_NEAREST, 1, &x);
    if (!o) return -1;
    o->k = scale;
    return g_emit(g, o, in->C, in->H * scale, in->W * scale);
}

fl_node fl_g_upsample_bilinear(fl_graph *g, fl_node x, int64_t H, int64_t W, int align_corners)
{
    if (!g_valid(g, x)) return -1;
    g_op *o = g_new_op(g, OP_UP_BILINEAR, 1, &x);
    if (!o) return -1;
    o->k = align_corners != 0;
    return g_emit(g, o, g->nodes[x].C, H, W);
}

fl_node fl_g_layernorm_plane(fl_graph *g, fl_node x, const char *name)
{
    if (!g_valid(g, x)) return -1;
    const g_node *in = &g->nodes[x];
    int64_t shape[2] = {in->H, in->W};
    g_op *o = g_new_op(g, OP_LAYERNORM, 1, &x);
    if (!o) return -1;
    o->w = g_new_param(g, name, "weight", 2, shape, 1, 2, 0, 0);
    o->b = g_new_param(g, name, "bias", 2, shape, 1, 3, 0, 0);
    if (g->failed) return -1;
    return g_emit(g, o, in->C, in->H, in->W);
}

fl_node fl_g_linear(fl_graph *g, fl_node x, const char *name, int64_t out)
{
    if (!g_valid(g, x)) return -1;
    const g_node *in = &g->nodes[x];
    int64_t F = in->C * in->H * in->W;
    int64_t wshape[2] = {out, F}, bshape[1] = {out};
    if (out < 1) return g_bad(g, "linear layer %s needs at least one output", name);
    g_op *o = g_new_op(g, OP_LINEAR, 1, &x);
    if (!o) return -1;
    o->w = g_new_param(g, name, "weight", 2, wshape, 1, 0, F, out);
    o->b = g_new_param(g, name, "bias", 1, bshape, 1, 1, F, out);
    if (g->failed) return -1;
    return g_emit(g, o, out, 1, 1);
}

fl_node fl_g_reshape(fl_graph *g, fl_node x, int64_t C, int64_t H, int64_t W)
{
    if (!g_valid(g, x)) return -1;
    const g_node *in = &g->nodes[x];
    if (C * H * W != in->C * in->H * in->W) return g_bad(g, "%s", "reshape to a different number of values");
    g_op *o = g_new_op(g, OP_RESHAPE, 1, &x);
    if (!o) return -1;
    return g_emit(g, o, C, H, W);
}

void fl_graph_want_input_grad(fl_graph *g, fl_node x)
{
    if (x >= 0 && x < g->nnodes && g->training && !g->finalized && g->ops[g->nodes[x].producer].kind == OP_INPUT)
        g->nodes[x].needs_grad = 1;
}

void fl_graph_keep_all(fl_graph *g)
{
    if (!g->finalized && !g->training && !g->failed) g->keep_all = 1;
}

void fl_graph_use_winograd(fl_graph *g, int on)
{
    if (!g->finalized) g->no_winograd = !on;
}

void fl_graph_keep(fl_graph *g, fl_node x)
{
    if (x >= 0 && x < g->nnodes) g->nodes[x].keep = 1;
}

/* ---- memory plan ------------------------------------------------------------------------------ */

static int64_t node_numel(const fl_graph *g, fl_node x) /* at max batch */
{
    const g_node *n = &g->nodes[x];
    return n->C * g->max_batch * n->H * n->W;
}

/* Planes (samples) per im2col chunk of a convolution: as many as fit in G_COL_BYTES, at least one.
 * Depends on the layer's shapes only, so the summation order (and the result) does too. */
static int64_t conv_chunk_planes(const fl_graph *g, const g_op *o)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const size_t rows = (size_t)(in->C * o->kh * o->kw), plane = (size_t)(out->H * out->W);
    size_t planes = G_COL_BYTES / sizeof(float) / (rows * plane);
    if (planes < 1) planes = 1;
    if (planes > (size_t)g->max_batch) planes = (size_t)g->max_batch;
    return (int64_t)planes;
}

/* Winograd F(4x4, 3x3) / F(4, 3) instead of packed im2col + GEMM: stride-1 3x3 and 1-D k3 convolutions
 * with enough channels that the small GEMMs run efficiently (bench_conv: faster from 32 channels on, not
 * at 16). Row-update graphs use it too: a partial update computes whole tile rows (fl_wino_conv_rows). A
 * tile's rounding depends on all 6 input rows it reads, not only on the 3 each output row needs, so rows
 * updated this way equal a full forward to float rounding, not bit for bit (treating whole tiles as the
 * rows' inputs made a ResHedNet line update recompute nearly every row of the deep layers). */
enum { WINO_MIN_CHANNELS = 32 };
static int conv_uses_winograd(const fl_graph *g, const g_op *o)
{
    const int64_t cin = g->nodes[o->in[0]].C, cout = g->nodes[o->out].C;
    return !g->no_winograd && fl_wino_supported(o->kh, o->kw, o->stride, o->ph, o->pw, o->dh, o->dw) &&
           cin >= WINO_MIN_CHANNELS && cout >= WINO_MIN_CHANNELS;
}

/* The Winograd geometry of a convolution's forward pass, or of its input gradient (a convolution of dy
 * with the flipped kernel, padded by d*(k-1) - p). */
static fl_wino_geom wino_geom(const fl_graph *g, const g_op *o, int input_grad)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int one_d = o->kh == 1;
    if (input_grad)
        return (fl_wino_geom){in->C, out->C, g->batch, out->H, out->W, one_d,
                              one_d ? 0 : 2 * o->dh - o->ph, 2 * o->dw - o->pw, o->dh, o->dw};
    return (fl_wino_geom){out->C, in->C, g->batch, in->H, in->W, one_d, o->ph, o->pw, o->dh, o->dw};
}

static size_t g_work_floats(const fl_graph *g)
{
    size_t w = 0;
    for (int32_t i = 0; i < g->nops; i++) {
        const g_op *o = &g->ops[i];
        const g_node *in = o->nin ? &g->nodes[o->in[0]] : NULL, *out = &g->nodes[o->out];
        size_t need = 0;
        if (o->kind == OP_CONV && g->training) {
            /* backward only (the forward pass packs its columns itself): im2col chunk for the weight gradient, then the flipped kernel */
            need = (size_t)(in->C * o->kh * o->kw) * (size_t)(out->H * out->W) * (size_t)conv_chunk_planes(g, o);
            if (need < (size_t)(in->C * o->kh * o->kw * out->C)) need = (size_t)(in->C * o->kh * o->kw * out->C);
        } else if (o->kind == OP_LINEAR) {
            need = (size_t)(in->C * in->H * in->W * g->max_batch);
        }
        if (o->kind == OP_CONV && conv_uses_winograd(g, o)) {
            /* U, then fl_wino_conv's scratch, for the forward pass and (training) the input gradient; the
             * weight gradient's scratch */
            for (int input_grad = 0; input_grad <= (g->training ? 1 : 0); input_grad++) {
                const fl_wino_geom geo = wino_geom(g, o, input_grad);
                /* (keep_all graphs keep U in g->wino_u) */
                const size_t wino = (g->keep_all ? 0 : fl_wino_weight_floats(&geo)) + fl_wino_work_floats(g->threads, &geo);
                if (need < wino) need = wino;
            }
            const fl_wino_geom geo = wino_geom(g, o, 0);
            if (g->training && need < fl_wino_weight_grad_work_floats(&geo)) need = fl_wino_weight_grad_work_floats(&geo);
        }
        if (need > w) w = need;
    }
    return w;
}

/* keep_all graphs: floats of all Winograd layers' U (and each layer's offset when set). */
static size_t wino_u_floats(fl_graph *g, int set)
{
    size_t n = 0;
    for (int32_t i = 0; i < g->nops; i++) {
        g_op *o = &g->ops[i];
        if (!g->keep_all || o->kind != OP_CONV || !conv_uses_winograd(g, o)) continue;
        const fl_wino_geom geo = wino_geom(g, o, 0);
        if (set) o->u_off = (int64_t)n;
        n += fl_wino_weight_floats(&geo);
    }
    return n;
}

size_t fl_graph_memory_bytes(const fl_graph *g)
{
    size_t act = 0;
    for (int32_t i = 0; i < g->nnodes; i++) act += (size_t)node_numel(g, i) * (g->training ? 2 : 1);
    if (!g->training && !g->keep_all) act = act / 2 + 1; /* reuse: a rough upper bound for the plan below */
    size_t par = (size_t)g->n_trainable * (g->training ? 4 : 1) + (size_t)g->n_bufs;
    return (act + par + g_work_floats(g) + wino_u_floats((fl_graph *)g, 0)) * sizeof(float);
}

/* A zeroed activation buffer, owned by the graph (g->pool has room for two per node). */
static float *g_pool_alloc(fl_graph *g, size_t floats)
{
    float *b = fl_calloc(floats ? floats : 1, sizeof(float));
    if (!b) return NULL;
    g->pool[g->npool++] = b;
    return b;
}

/* Inference graphs: a buffer is returned to a free list after the last op that reads it and reused
 * by a later output of at most its size. */
static fl_status g_plan_inference(fl_graph *g)
{
    int32_t nfree = 0;
    float **free_buf = fl_calloc((size_t)g->nnodes + 1, sizeof *free_buf);
    size_t *free_size = fl_calloc((size_t)g->nnodes + 1, sizeof *free_size);
    size_t *node_size = fl_calloc((size_t)g->nnodes + 1, sizeof *node_size);
    if (!free_buf || !free_size || !node_size) goto oom;
    for (int32_t i = 0; i < g->nops; i++) {
        const g_op *o = &g->ops[i];
        size_t need = (size_t)node_numel(g, o->out);
        int32_t best = -1;
        for (int32_t f = 0; f < nfree; f++)
            if (free_size[f] >= need && (best < 0 || free_size[f] < free_size[best])) best = f;
        if (best >= 0) {
            g->nodes[o->out].data = free_buf[best];
            node_size[o->out] = free_size[best];
            free_buf[best] = free_buf[--nfree];
            free_size[best] = free_size[nfree];
        } else {
            if (!(g->nodes[o->out].data = g_pool_alloc(g, need))) goto oom;
            node_size[o->out] = need;
        }
        /* inputs whose last reader is this op (and the output if nobody reads it... it is kept: it
         * may be the model output) */
        for (int k = 0; k < o->nin; k++) {
            fl_node x = o->in[k];
            int dup = 0;
            for (int j = 0; j < k; j++) dup |= o->in[j] == x;
            if (dup || g->nodes[x].last_use != i || g->nodes[x].keep || g->keep_all ||
                g->ops[g->nodes[x].producer].kind == OP_INPUT)
                continue;
            free_buf[nfree] = g->nodes[x].data;
            free_size[nfree++] = node_size[x];
        }
    }
    fl_free(free_buf);
    fl_free(free_size);
    fl_free(node_size);
    return FL_OK;
oom:
    fl_free(free_buf);
    fl_free(free_size);
    fl_free(node_size);
    return fl_fail(g->ctx, FL_ENOMEM, "out of memory for the network activations");
}

fl_status fl_graph_finalize(fl_graph *g)
{
    if (g->failed) return g->failed;
    if (g->finalized) return FL_OK;
    size_t bytes = fl_graph_memory_bytes(g);
    fl_status st = fl_check_budget(g->ctx, bytes, "the network");
    if (st != FL_OK) return st;
    for (int32_t i = 0; i < g->nops; i++) {
        g_op *o = &g->ops[i];
        if (o->kind == OP_BN) o->save = fl_calloc((size_t)(2 * g->nodes[o->out].C), sizeof(float));
        if (o->kind == OP_LAYERNORM) o->save = fl_calloc((size_t)(2 * g->nodes[o->out].C * g->max_batch), sizeof(float));
        if ((o->kind == OP_BN || o->kind == OP_LAYERNORM) && !o->save) goto oom;
    }
    size_t np = (size_t)(g->n_trainable ? g->n_trainable : 1);
    g->p = fl_calloc(np, sizeof(float));
    g->bufs = fl_calloc((size_t)(g->n_bufs ? g->n_bufs : 1), sizeof(float));
    if (!g->p || !g->bufs) goto oom;
    if (g->training) {
        g->dp = fl_calloc(np, sizeof(float));
        g->m = fl_calloc(np, sizeof(float));
        g->v = fl_calloc(np, sizeof(float));
        if (!g->dp || !g->m || !g->v) goto oom;
    }
    const size_t work_floats = g_work_floats(g);
    g->work = fl_calloc(work_floats ? work_floats : 1, sizeof(float));
    g->pool = fl_calloc((size_t)(2 * g->nnodes + 1), sizeof *g->pool);
    if (!g->work || !g->pool) goto oom;
    if (g->keep_all && !(g->pend = fl_calloc((size_t)(2 * g->nnodes), sizeof *g->pend))) goto oom;
    const size_t u_floats = wino_u_floats(g, 1);
    if (u_floats && !(g->wino_u = fl_alloc(u_floats * sizeof(float)))) goto oom;
    if (g->training) {
        for (int32_t i = 0; i < g->nnodes; i++) {
            size_t n = (size_t)node_numel(g, i);
            if (!(g->nodes[i].data = g_pool_alloc(g, n))) goto oom;
            if (!(g->nodes[i].grad = g_pool_alloc(g, n))) goto oom;
        }
    } else if ((st = g_plan_inference(g)) != FL_OK) {
        return st;
    }
    g->finalized = 1;
    fl_graph_init_params(g, 0, FL_INIT_TORCH);
    return FL_OK;
oom:
    return fl_fail(g->ctx, FL_ENOMEM, "out of memory for the network (%.1f MiB needed)", bytes / 1048576.0);
}

/* ---- parameters ------------------------------------------------------------------------------- */

void fl_graph_init_params(fl_graph *g, uint64_t seed, fl_init_kind kind)
{
    for (int32_t i = 0; i < g->nparams; i++) {
        const g_param *p = &g->params[i];
        float *d = p->trainable ? g->p + p->off : g->bufs + p->off;
        fl_rng r;
        fl_rng_init(&r, seed, 0x6e6e0000u + (uint64_t)i);
        float bound = 0.f, fill = 0.f;
        if (p->role == 0)
            bound = kind == FL_INIT_XAVIER ? sqrtf(6.f / (float)(p->fan_in + p->fan_out)) : 1.f / sqrtf((float)p->fan_in);
        else if (p->role == 1)
            bound = kind == FL_INIT_XAVIER ? 0.f : 1.f / sqrtf((float)p->fan_in);
        else if (p->role == 2 || p->role == 5)
            fill = 1.f;
        for (int64_t j = 0; j < p->count; j++) d[j] = bound > 0.f ? (2.f * fl_rng_uniform(&r) - 1.f) * bound : fill;
    }
    fl_graph_reset_optimizer(g);
}

void fl_graph_reset_optimizer(fl_graph *g)
{
    if (!g->training || !g->finalized) return;
    memset(g->m, 0, (size_t)g->n_trainable * sizeof(float));
    memset(g->v, 0, (size_t)g->n_trainable * sizeof(float));
}

int64_t fl_graph_param_count(const fl_graph *g) { return g->n_trainable; }
float *fl_graph_params(fl_graph *g) { return g->p; }
float *fl_graph_param_grads(fl_graph *g) { return g->dp; }

void fl_graph_zero_grads(fl_graph *g)
{
    if (g->dp) memset(g->dp, 0, (size_t)g->n_trainable * sizeof(float));
}

void fl_graph_adam_step(fl_graph *g, float lr, float beta1, float beta2, float eps, int64_t t)
{
    const float c1 = (float)(1.0 - pow(beta1, (double)t)), c2 = (float)(1.0 - pow(beta2, (double)t));
    const float step = lr / c1, rc2 = 1.f / sqrtf(c2);
    float *p = g->p, *m = g->m, *v = g->v;
    const float *dp = g->dp;
    int64_t n = g->n_trainable;
#pragma omp parallel for num_threads(g->threads) if (n > G_PAR_MIN) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.f - beta1) * dp[i];
        v[i] = beta2 * v[i] + (1.f - beta2) * dp[i] * dp[i];
        p[i] -= step * m[i] / (sqrtf(v[i]) * rc2 + eps);
    }
}

int64_t fl_graph_state_count(const fl_graph *g) { return g->n_trainable + g->n_bufs; }

void fl_graph_get_state(const fl_graph *g, float *out)
{
    memcpy(out, g->p, (size_t)g->n_trainable * sizeof(float));
    memcpy(out + g->n_trainable, g->bufs, (size_t)g->n_bufs * sizeof(float));
}

void fl_graph_set_state(fl_graph *g, const float *in)
{
    memcpy(g->p, in, (size_t)g->n_trainable * sizeof(float));
    memcpy(g->bufs, in + g->n_trainable, (size_t)g->n_bufs * sizeof(float));
}

void fl_graph_copy_state(fl_graph *dst, const fl_graph *src)
{
    memcpy(dst->p, src->p, (size_t)src->n_trainable * sizeof(float));
    memcpy(dst->bufs, src->bufs, (size_t)src->n_bufs * sizeof(float));
}

fl_status fl_graph_export(fl_graph *g, fl_ctx *ctx, fl_tensor_list *out, const char *prefix)
{
    char name[256];
    for (int32_t i = 0; i < g->nparams; i++) {
        const g_param *p = &g->params[i];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", p->name);
        if (!fl_tensor_list_add(ctx, out, name, p->ndim, p->shape, (p->trainable ? g->p : g->bufs) + p->off))
            return FL_ENOMEM;
    }
    return FL_OK;
}

fl_status fl_graph_import(fl_graph *g, fl_ctx *ctx, const fl_tensor_list *in, const char *prefix)
{
    char name[256];
    for (int32_t i = 0; i < g->nparams; i++) {
        const g_param *p = &g->params[i];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", p->name);
        const fl_tensor *t = fl_tensor_list_find(in, name);
        if (!t) return fl_fail(ctx, FL_EFORMAT, "model file lacks the tensor %s", name);
        int same = t->ndim == p->ndim;
        for (int32_t d = 0; same && d < p->ndim; d++) same = t->shape[d] == p->shape[d];
        if (!same) return fl_fail(ctx, FL_EMISMATCH, "tensor %s in the model file has another shape than this network", name);
        const float *src = t->data;
        for (int64_t j = 0; j < p->count; j++)
            if (!isfinite(src[j])) return fl_fail(ctx, FL_EFORMAT, "tensor %s in the model file holds NaN or infinity", name);
        if (p->role == 5)
            for (int64_t j = 0; j < p->count; j++)
                if (src[j] < 0.f) return fl_fail(ctx, FL_EFORMAT, "tensor %s holds a negative variance", name);
    }
    for (int32_t i = 0; i < g->nparams; i++) {
        const g_param *p = &g->params[i];
        snprintf(name, sizeof name, "%s%s", prefix ? prefix : "", p->name);
        memcpy((p->trainable ? g->p : g->bufs) + p->off, fl_tensor_list_find(in, name)->data,
               (size_t)p->count * sizeof(float));
    }
    return FL_OK;
}

/* ---- running ---------------------------------------------------------------------------------- */

void fl_graph_set_batch(fl_graph *g, int64_t n) { g->batch = n < 1 ? 1 : n > g->max_batch ? g->max_batch : n; }
int64_t fl_graph_batch(const fl_graph *g) { return g->batch; }

void fl_graph_shape(const fl_graph *g, fl_node x, int64_t *C, int64_t *H, int64_t *W)
{
    *C = g->nodes[x].C;
    *H = g->nodes[x].H;
    *W = g->nodes[x].W;
}

float *fl_graph_data(fl_graph *g, fl_node x) { return g->nodes[x].data; }
float *fl_graph_grad(fl_graph *g, fl_node x) { return g->nodes[x].grad; }

static float *P(fl_graph *g, int32_t idx) /* parameter or buffer data */
{
    const g_param *p = &g->params[idx];
    return (p->trainable ? g->p : g->bufs) + p->off;
}
static float *DP(fl_graph *g, int32_t idx) { return g->dp + g->params[idx].off; }

/* -- convolution (im2col + GEMM over chunks of whole planes) -- */

static int conv_is_pointwise(const g_op *o)
{
    return o->kh == 1 && o->kw == 1 && o->stride == 1 && o->ph == 0 && o->pw == 0;
}

/* col (rows = Cin*kh*kw, cols = (n1-n0)*Ho*Wo) from planes n0..n1-1 of x. */
static void im2col(const fl_graph *g, const g_op *o, const g_node *in, const g_node *out, const float *x, int64_t n0,
                   int64_t n1, float *col)
{
    const int64_t N = g->batch, H = in->H, W = in->W, Ho = out->H, Wo = out->W, Cin = in->C;
    const int64_t cols = (n1 - n0) * Ho * Wo, rows = Cin * o->kh * o->kw;
#pragma omp parallel for num_threads(g->threads) if (rows * cols > G_PAR_MIN) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t c = r / (o->kh * o->kw), ki = (r / o->kw) % o->kh, kj = r % o->kw;
        float *dst = col + r * cols;
        for (int64_t n = n0; n < n1; n++) {
            const float *src = x + (c * N + n) * H * W;
            for (int64_t oy = 0; oy < Ho; oy++) {
                const int64_t iy = oy * o->stride - o->ph + ki * o->dh;
                float *d = dst + ((n - n0) * Ho + oy) * Wo;
                if (iy < 0 || iy >= H) {
                    memset(d, 0, (size_t)Wo * sizeof(float));
                    continue;
                }
                const float *s = src + iy * W;
                if (o->stride == 1) {
                    /* ix = ox + off: zeros, one contiguous copy, zeros */
                    const int64_t off = kj * o->dw - o->pw;
                    int64_t lo = off < 0 ? -off : 0, hi = W - off < Wo ? W - off : Wo;
                    if (hi < lo) hi = lo;
                    for (int64_t ox = 0; ox < lo && ox < Wo; ox++) d[ox] = 0.f;
                    if (hi > lo) memcpy(d + lo, s + lo + off, (size_t)(hi - lo) * sizeof(float));
                    for (int64_t ox = hi > lo ? hi : lo; ox < Wo; ox++) d[ox] = 0.f;
                    continue;
                }
                for (int64_t ox = 0; ox < Wo; ox++) {
                    const int64_t ix = ox * o->stride - o->pw + kj * o->dw;
                    d[ox] = ix >= 0 && ix < W ? s[ix] : 0.f;
                }
            }
        }
    }
}

/* dx += col2im(dcol); one thread per input channel, so the sums run in a fixed order. */
static void col2im(const fl_graph *g, const g_op *o, const g_node *in, const g_node *out, const float *dcol,
                   int64_t n0, int64_t n1, float *dx)
{
    const int64_t N = g->batch, H = in->H, W = in->W, Ho = out->H, Wo = out->W, Cin = in->C;
    const int64_t cols = (n1 - n0) * Ho * Wo, kk = (int64_t)o->kh * o->kw;
#pragma omp parallel for num_threads(g->threads) if (Cin * kk * cols > G_PAR_MIN) schedule(static)
    for (int64_t c = 0; c < Cin; c++) {
        for (int64_t q = 0; q < kk; q++) {
            const int64_t ki = q / o->kw, kj = q % o->kw;
            const float *s0 = dcol + (c * kk + q) * cols;
            for (int64_t n = n0; n < n1; n++) {
                float *dst = dx + (c * N + n) * H * W;
                for (int64_t oy = 0; oy < Ho; oy++) {
                    const int64_t iy = oy * o->stride - o->ph + ki * o->dh;
                    if (iy < 0 || iy >= H) continue;
                    const float *s = s0 + ((n - n0) * Ho + oy) * Wo;
                    float *d = dst + iy * W;
                    if (o->stride == 1) {
                        const int64_t off = kj * o->dw - o->pw;
                        const int64_t lo = off < 0 ? -off : 0, hi = W - off < Wo ? W - off : Wo;
                        for (int64_t ox = lo; ox < hi; ox++) d[ox + off] += s[ox];
                        continue;
                    }
                    for (int64_t ox = 0; ox < Wo; ox++) {
                        const int64_t ix = ox * o->stride - o->pw + kj * o->dw;
                        if (ix >= 0 && ix < W) d[ix] += s[ox];
                    }
                }
            }
        }
    }
}

/* The column matrix of a convolution over a (C, N, H, W) activation, row (c, ki, kj), column
 * (n, oy, ox), written straight into the GEMM's B panels (fl_gemm_bpack), so the forward pass never
 * materialises im2col. Consecutive columns of one output row read consecutive input pixels (stride 1),
 * so a panel row is a few runs of contiguous copies. */
typedef struct conv_cols {
    const float *x;
    int64_t col0; /* first column (n, oy, ox) of the GEMM's column 0 */
    int64_t N, H, W, Ho, Wo;
    int kh, kw, stride, ph, pw, dh, dw;
} conv_cols;

typedef struct col_run {
    int64_t dst;              /* offset of the run in panel row 0 */
    int64_t src;              /* offset of input pixel (oy*stride, ox*stride) in the channel */
    int64_t oy, ox, len;
} col_run;

/* d[0:len] = row[ix0 + t] where 0 <= ix0 + t < W, else 0 */
static inline void copy_padded(float *d, const float *row, int64_t ix0, int64_t len, int64_t W, int nr)
{
    if (ix0 >= 0 && ix0 + len <= W) {
        if (len == 16 && nr == 16) memcpy(d, row + ix0, 16 * sizeof(float)); /* the common case, inlined */
        else memcpy(d, row + ix0, (size_t)len * sizeof(float));
        return;
    }
    int64_t lo = ix0 < 0 ? -ix0 : 0, hi = W - ix0 < len ? W - ix0 : len;
    if (lo > len) lo = len;
    if (hi < lo) hi = lo;
    for (int64_t t = 0; t < lo; t++) d[t] = 0.f;
    for (int64_t t = lo; t < hi; t++) d[t] = row[ix0 + t];
    for (int64_t t = hi; t < len; t++) d[t] = 0.f;
}

/* Small output planes (rows shorter than a panel): runs would be a few pixels long, so gather through
 * a table of offsets per kernel tap instead (the same for every input channel); padding is a zero mask
 * (bitwise, so NaN and infinity pass through unchanged elsewhere). */
enum { TAB_MAX_TAPS = 25, TAB_MAX_COLS = 256 };

static void conv_pack_cols_small(const conv_cols *s, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr,
                                 float *dst)
{
    const int64_t HWo = s->Ho * s->Wo, HW = s->H * s->W, kk = (int64_t)s->kh * s->kw;
    int32_t off[TAB_MAX_TAPS][TAB_MAX_COLS];
    uint32_t keep[TAB_MAX_TAPS][TAB_MAX_COLS];
    for (int64_t q = 0; q < kk; q++) {
        const int64_t dy = (q / s->kw) * s->dh - s->ph, dx = (q % s->kw) * s->dw - s->pw;
        for (int64_t t = 0; t < nc; t++) {
            const int64_t j = s->col0 + n0 + t, n = j / HWo, oy = j % HWo / s->Wo, ox = j % s->Wo;
            const int64_t iy = oy * s->stride + dy, ix = ox * s->stride + dx;
            const int ok = iy >= 0 && iy < s->H && ix >= 0 && ix < s->W;
            off[q][t] = ok ? (int32_t)(n * HW + iy * s->W + ix) : 0;
            keep[q][t] = ok ? 0xFFFFFFFFu : 0u;
        }
    }
    const int64_t npan = (nc + nr - 1) / nr;
    for (int64_t k = 0; k < kc; k++) {
        const int64_t row = k0 + k, q = row % kk;
        const float *xc = s->x + row / kk * s->N * HW;
        for (int64_t p = 0; p < npan; p++) {
            uint32_t *d = (uint32_t *)(dst + p * kc * nr + k * nr);
            const int64_t t0 = p * nr, nn = nc - t0 < nr ? nc - t0 : nr;
            for (int64_t t = 0; t < nn; t++) {
                uint32_t v;
                memcpy(&v, xc + off[q][t0 + t], sizeof v);
                d[t] = v & keep[q][t0 + t];
            }
            for (int64_t t = nn; t < nr; t++) d[t] = 0u;
        }
    }
}

static void conv_pack_cols(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float *dst)
{
    const conv_cols *s = ctx;
    if (s->Wo < nr && (int64_t)s->kh * s->kw <= TAB_MAX_TAPS && nc <= TAB_MAX_COLS && s->N * s->H * s->W < INT32_MAX) {
        conv_pack_cols_small(s, k0, kc, n0, nc, nr, dst);
        return;
    }
    const int64_t HWo = s->Ho * s->Wo, HW = s->H * s->W, st = s->stride;
    enum { MAX_RUNS = 2 * 256 };
    col_run runs[MAX_RUNS];
    int32_t nrun = 0;
    /* runs split at output-row ends and at panel ends (nc <= 256, at most 2 runs per column) */
    for (int64_t j = s->col0 + n0; j < s->col0 + n0 + nc && nrun < MAX_RUNS;) {
        const int64_t n = j / HWo, r = j % HWo, oy = r / s->Wo, ox = r % s->Wo, at = j - s->col0 - n0;
        int64_t len = s->Wo - ox;
        if (len > nc - at) len = nc - at;
        if (len > nr - at % nr) len = nr - at % nr;
        runs[nrun++] = (col_run){(at / nr) * kc * nr + at % nr, n * HW + oy * st * s->W + ox * st, oy, ox, len};
        j += len;
    }
    const int64_t npan = (nc + nr - 1) / nr, tail = nc % nr;
    int64_t c = k0 / (s->kh * s->kw), ki = (k0 / s->kw) % s->kh, kj = k0 % s->kw;
    for (int64_t k = 0; k < kc; k++) {
        const float *xc = s->x + c * s->N * HW;
        const int64_t dy = ki * s->dh - s->ph, dx = kj * s->dw - s->pw;
        for (int32_t q = 0; q < nrun; q++) {
            const col_run *u = &runs[q];
            float *d = dst + u->dst + k * nr;
            const int64_t iy = u->oy * st + dy;
            if (iy < 0 || iy >= s->H) {
                memset(d, 0, (size_t)u->len * sizeof(float));
            } else if (st == 1) {
                copy_padded(d, xc + u->src - u->ox + dy * s->W, u->ox + dx, u->len, s->W, nr);
            } else {
                const float *row = xc + u->src - u->ox * st + dy * s->W;
                for (int64_t t = 0; t < u->len; t++) {
                    const int64_t ix = (u->ox + t) * st + dx;
                    d[t] = ix >= 0 && ix < s->W ? row[ix] : 0.f;
                }
            }
        }
        if (tail) memset(dst + (npan - 1) * kc * nr + k * nr + tail, 0, (size_t)(nr - tail) * sizeof(float));
        if (++kj == s->kw) {
            kj = 0;
            if (++ki == s->kh) ki = 0, c++;
        }
    }
}

/* y[Cout x ncols] (+)= w[Cout x Cin*kh*kw] * columns src->col0 .. + ncols of x (row stride of y: ldy):
 * one GEMM over the whole batch, or over some output rows. */
static void conv_gemm(const fl_graph *g, const float *w, const conv_cols *src, int64_t Cout, int64_t Cin,
                      int64_t ncols, float beta, float *y, int64_t ldy)
{
    const int64_t K = Cin * src->kh * src->kw;
    fl_gemm_packed_b_parallel(g->threads, Cout, ncols, K, 1.f, w, K, conv_pack_cols, src, beta, y, ldy);
}

static conv_cols conv_cols_of(const fl_graph *g, const g_op *o, const float *x)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    return (conv_cols){x, 0, g->batch, in->H, in->W, out->H, out->W, o->kh, o->kw, o->stride, o->ph, o->pw, o->dh, o->dw};
}

/* The input gradient of a stride-1 convolution is itself a stride-1 convolution of dy with the kernel
 * flipped and Cin/Cout swapped, padded by d*(k-1) - p: no col2im needed. */
static int conv_grad_is_conv(const g_op *o)
{
    return o->stride == 1 && o->ph <= o->dh * (o->kh - 1) && o->pw <= o->dw * (o->kw - 1);
}

/* Where a Winograd layer's U lives: keep_all graphs keep the forward U of every layer from the last full
 * pass in g->wino_u (their row updates reuse it); otherwise U is built at the start of the workspace.
 * *scratch: fl_wino_conv's workspace after it. */
static float *wino_u_of(fl_graph *g, const g_op *o, int input_grad, const fl_wino_geom *geo, float **scratch)
{
    if (g->wino_u && !input_grad) {
        *scratch = g->work;
        return g->wino_u + o->u_off;
    }
    *scratch = g->work + fl_wino_weight_floats(geo);
    return g->work;
}

/* A full Winograd pass: the forward convolution, or (input_grad) the input gradient as a convolution of
 * dy with the flipped kernel. */
static void wino_run(fl_graph *g, const g_op *o, int input_grad, const float *x, float beta, float *y)
{
    const fl_wino_geom geo = wino_geom(g, o, input_grad);
    float *scratch, *U = wino_u_of(g, o, input_grad, &geo, &scratch);
    fl_wino_weights(g->threads, P(g, o->w), &geo, input_grad, U);
    fl_wino_conv(g->threads, U, &geo, x, beta, y, scratch);
}

/* Adds the bias to output rows [y0, y1) of every plane (a part of the rows only with batch 1). */
static void conv_bias_rows(fl_graph *g, const g_op *o, int64_t y0, int64_t y1)
{
    if (o->b < 0) return;
    const g_node *out = &g->nodes[o->out];
    const int64_t N = g->batch, HWo = out->H * out->W, Cout = out->C;
    const int64_t ncols = N == 1 ? (y1 - y0) * out->W : N * HWo;
    const float *b = P(g, o->b);
    float *y = out->data + y0 * out->W;
#pragma omp parallel for num_threads(g->threads) if (Cout * ncols > G_PAR_MIN) schedule(static)
    for (int64_t c = 0; c < Cout; c++) {
        float *row = y + c * N * HWo;
        for (int64_t j = 0; j < ncols; j++) row[j] += b[c];
    }
}

/* Output rows [y0, y1) of every plane; a part of the rows only with batch 1 (row updates; a Winograd
 * layer rounds them out to whole tile rows). */
static void conv_forward(fl_graph *g, const g_op *o, int64_t y0, int64_t y1)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t N = g->batch, HWo = out->H * out->W, K = in->C * o->kh * o->kw, Cout = out->C;
    const int64_t c0 = y0 * out->W, ncols = N == 1 ? (y1 - y0) * out->W : N * HWo;
    const float *x = in->data, *w = P(g, o->w);
    float *y = out->data + c0;
    if (conv_is_pointwise(o)) {
        fl_gemm_parallel(g->threads, 0, 0, Cout, ncols, K, 1.f, w, K, x + c0, N * HWo, 0.f, y, N * HWo);
    } else if (conv_uses_winograd(g, o) && y0 == 0 && y1 == out->H) {
        wino_run(g, o, 0, x, 0.f, y);
    } else if (conv_uses_winograd(g, o)) {
        /* row updates: whole tile rows ([y0, y1) rounded out to fl_wino_row_block), U of the last full pass */
        const fl_wino_geom geo = wino_geom(g, o, 0);
        float *scratch, *U = wino_u_of(g, o, 0, &geo, &scratch);
        fl_wino_conv_rows(g->threads, U, &geo, x, out->data, scratch, y0, y1, &y0, &y1);
    } else {
        conv_cols src = conv_cols_of(g, o, x);
        src.col0 = c0;
        conv_gemm(g, w, &src, Cout, in->C, ncols, 0.f, y, N * HWo);
    }
    conv_bias_rows(g, o, y0, y1);
}

static void conv_backward(fl_graph *g, const g_op *o)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t N = g->batch, HWo = out->H * out->W, K = in->C * o->kh * o->kw, Cout = out->C, Cin = in->C;
    const float *x = in->data, *w = P(g, o->w), *dy = out->grad;
    float *dw = DP(g, o->w), *dx = in->needs_grad ? in->grad : NULL;
    if (o->b >= 0) {
        float *db = DP(g, o->b);
#pragma omp parallel for num_threads(g->threads) if (Cout * N * HWo > G_PAR_MIN) schedule(static)
        for (int64_t c = 0; c < Cout; c++) {
            const float *row = dy + c * N * HWo;
            double s = 0.0;
            for (int64_t j = 0; j < N * HWo; j++) s += row[j];
            db[c] += (float)s;
        }
    }
    if (conv_is_pointwise(o)) {
        fl_gemm_parallel(g->threads, 0, 1, Cout, K, N * HWo, 1.f, dy, N * HWo, x, N * HWo, 1.f, dw, K);
        if (dx) fl_gemm_parallel(g->threads, 1, 0, K, N * HWo, Cout, 1.f, w, K, dy, N * HWo, 1.f, dx, N * HWo);
        return;
    }
    const int64_t chunk = conv_chunk_planes(g, o);
    const int flip = conv_grad_is_conv(o), wino = conv_uses_winograd(g, o);
    if (wino) {
        const fl_wino_geom geo = wino_geom(g, o, 0);
        fl_wino_weight_grad(g->threads, &geo, x, dy, dw, g->work);
    }
    for (int64_t n0 = 0; n0 < N && !wino; n0 += chunk) {
        const int64_t n1 = n0 + chunk < N ? n0 + chunk : N, cols = (n1 - n0) * HWo;
        im2col(g, o, in, out, x, n0, n1, g->work);
        fl_gemm_parallel(g->threads, 0, 1, Cout, K, cols, 1.f, dy + n0 * HWo, N * HWo, g->work, cols, 1.f, dw, K);
        if (dx && !flip) {
            fl_gemm_parallel(g->threads, 1, 0, K, cols, Cout, 1.f, w, K, dy + n0 * HWo, N * HWo, 0.f, g->work, cols);
            col2im(g, o, in, out, g->work, n0, n1, dx);
        }
    }
    if (dx && flip && wino) {
        wino_run(g, o, 1, dy, 1.f, dx);
    } else if (dx && flip) {
        /* wf[ci][co, kh-1-ki, kw-1-kj] = w[co][ci, ki, kj] (g->work holds at least the weight count) */
        const int64_t kk = (int64_t)o->kh * o->kw;
        float *wf = g->work;
        for (int64_t co = 0; co < Cout; co++)
            for (int64_t ci = 0; ci < Cin; ci++)
                for (int64_t q = 0; q < kk; q++) wf[(ci * Cout + co) * kk + (kk - 1 - q)] = w[(co * Cin + ci) * kk + q];
        const conv_cols src = {dy, 0, N, out->H, out->W, in->H, in->W, o->kh, o->kw, 1,
                               o->dh * (o->kh - 1) - o->ph, o->dw * (o->kw - 1) - o->pw, o->dh, o->dw};
        conv_gemm(g, wf, &src, Cin, Cout, N * in->H * in->W, 1.f, dx, N * in->H * in->W);
    }
}

/* -- batch norm over (N, H, W) of each channel -- */

static void bn_forward(fl_graph *g, g_op *o, int train, int64_t y0, int64_t y1)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t C = in->C, M = g->batch * in->H * in->W;
    const float *x = in->data, *gamma = P(g, o->w), *beta = P(g, o->b);
    float *rm = P(g, o->rm), *rv = P(g, o->rv), *y = out->data, *mean = o->save, *istd = o->save + C;
    const float eps = 1e-5f, mom = 0.1f;
#pragma omp parallel for num_threads(g->threads) if (C * M > G_PAR_MIN) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * M;
        float mu, is;
        if (train) {
            double s = 0.0, s2 = 0.0;
            for (int64_t j = 0; j < M; j++) s += xc[j];
            const double md = s / (double)M;
            for (int64_t j = 0; j < M; j++) s2 += ((double)xc[j] - md) * ((double)xc[j] - md);
            const double var = s2 / (double)M;
            mu = (float)md;
            is = (float)(1.0 / sqrt(var + eps));
            rm[c] = (1.f - mom) * rm[c] + mom * mu;
            rv[c] = (1.f - mom) * rv[c] + mom * (float)(M > 1 ? s2 / (double)(M - 1) : var);
        } else {
            mu = rm[c];
            is = 1.f / sqrtf(rv[c] + eps);
        }
        mean[c] = mu;
        istd[c] = is;
        const float a = gamma[c] * is, b = beta[c] - mu * a;
        const int64_t HW = in->H * in->W, j0 = y0 * in->W, j1 = y1 * in->W; /* rows of every sample */
        for (int64_t q = c * M; q < (c + 1) * M; q += HW)
            for (int64_t j = q + j0; j < q + j1; j++) y[j] = x[j] * a + b;
    }
}

static void bn_backward(fl_graph *g, const g_op *o)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t C = in->C, M = g->batch * in->H * in->W;
    const float *x = in->data, *gamma = P(g, o->w), *dy = out->grad, *mean = o->save, *istd = o->save + C;
    float *dgamma = DP(g, o->w), *dbeta = DP(g, o->b), *dx = in->needs_grad ? in->grad : NULL;
#pragma omp parallel for num_threads(g->threads) if (C * M > G_PAR_MIN) schedule(static)
    for (int64_t c = 0; c < C; c++) {
        const float *xc = x + c * M, *dyc = dy + c * M;
        const float mu = mean[c], is = istd[c];
        double sdy = 0.0, sdyx = 0.0;
        for (int64_t j = 0; j < M; j++) {
            sdy += dyc[j];
            sdyx += (double)dyc[j] * (xc[j] - mu) * is;
        }
        dgamma[c] += (float)sdyx;
        dbeta[c] += (float)sdy;
        if (!dx) continue;
        const float k = gamma[c] * is, mdy = (float)(sdy / (double)M), mdyx = (float)(sdyx / (double)M);
        float *dxc = dx + c * M;
        for (int64_t j = 0; j < M; j++) dxc[j] += k * (dyc[j] - mdy - (xc[j] - mu) * is * mdyx);
    }
}

/* -- LayerNorm over each (channel, sample) plane with a per-pixel affine -- */

static void ln_forward(fl_graph *g, g_op *o)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t planes = in->C * g->batch, HW = in->H * in->W;
    const float *x = in->data, *gamma = P(g, o->w), *beta = P(g, o->b);
    float *y = out->data, *mean = o->save, *istd = o->save + in->C * g->max_batch;
    const double eps = 1e-5;
#pragma omp parallel for num_threads(g->threads) if (planes * HW > G_PAR_MIN) schedule(static)
    for (int64_t q = 0; q < planes; q++) {
        const float *xq = x + q * HW;
        double s = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < HW; j++) s += xq[j];
        const double md = s / (double)HW;
        for (int64_t j = 0; j < HW; j++) s2 += ((double)xq[j] - md) * ((double)xq[j] - md);
        const float mu = (float)md, is = (float)(1.0 / sqrt(s2 / (double)HW + eps));
        mean[q] = mu;
        istd[q] = is;
        float *yq = y + q * HW;
        for (int64_t j = 0; j < HW; j++) yq[j] = (xq[j] - mu) * is * gamma[j] + beta[j];
    }
}

static void ln_backward(fl_graph *g, const g_op *o)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t planes = in->C * g->batch, HW = in->H * in->W;
    const float *x = in->data, *gamma = P(g, o->w), *dy = out->grad, *mean = o->save,
                *istd = o->save + in->C * g->max_batch;
    float *dgamma = DP(g, o->w), *dbeta = DP(g, o->b), *dx = in->needs_grad ? in->grad : NULL;
#pragma omp parallel for num_threads(g->threads) if (planes * HW > G_PAR_MIN) schedule(static)
    for (int64_t j = 0; j < HW; j++) {
        double sg = 0.0, sb = 0.0;
        for (int64_t q = 0; q < planes; q++) {
            const float d = dy[q * HW + j];
            sg += (double)d * (x[q * HW + j] - mean[q]) * istd[q];
            sb += d;
        }
        dgamma[j] += (float)sg;
        dbeta[j] += (float)sb;
    }
    if (!dx) return;
#pragma omp parallel for num_threads(g->threads) if (planes * HW > G_PAR_MIN) schedule(static)
    for (int64_t q = 0; q < planes; q++) {
        const float *xq = x + q * HW, *dyq = dy + q * HW;
        const float mu = mean[q], is = istd[q];
        double s1 = 0.0, s2 = 0.0;
        for (int64_t j = 0; j < HW; j++) {
            const double dxh = (double)dyq[j] * gamma[j];
            s1 += dxh;
            s2 += dxh * (xq[j] - mu) * is;
        }
        const float m1 = (float)(s1 / (double)HW), m2 = (float)(s2 / (double)HW);
        float *dxq = dx + q * HW;
        for (int64_t j = 0; j < HW; j++) dxq[j] += is * (dyq[j] * gamma[j] - m1 - (xq[j] - mu) * is * m2);
    }
}

/* -- pooling and resampling: one plane per iteration -- */

static void maxpool_fwd_bwd(fl_graph *g, const g_op *o, int backward, int64_t y0, int64_t y1)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t planes = in->C * g->batch, H = in->H, W = in->W, Ho = out->H, Wo = out->W, k = o->k;
    const float *x = in->data;
#pragma omp parallel for num_threads(g->threads) if (planes * H * W > G_PAR_MIN) schedule(static)
    for (int64_t q = 0; q < planes; q++) {
        const float *xq = x + q * H * W;
        for (int64_t oy = y0; oy < y1; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                int64_t best = (oy * k) * W + ox * k;
                float bv = xq[best];
                for (int64_t a = 0; a < k; a++)
                    for (int64_t b = 0; b < k; b++) {
                        const int64_t idx = (oy * k + a) * W + ox * k + b;
                        if (xq[idx] > bv || isnan(xq[idx])) { /* PyTorch's rule: the first max, NaN wins */
                            bv = xq[idx];
                            best = idx;
                        }
                    }
                const int64_t oi = q * Ho * Wo + oy * Wo + ox;
                if (backward) in->grad[q * H * W + best] += out->grad[oi];
                else out->data[oi] = bv;
            }
    }
}

static void up_nearest_fwd_bwd(fl_graph *g, const g_op *o, int backward, int64_t y0, int64_t y1)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t planes = in->C * g->batch, H = in->H, W = in->W, Ho = out->H, Wo = out->W, s = o->k;
#pragma omp parallel for num_threads(g->threads) if (planes * Ho * Wo > G_PAR_MIN) schedule(static)
    for (int64_t q = 0; q < planes; q++)
        for (int64_t oy = y0; oy < y1; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                const int64_t i = q * H * W + (oy / s) * W + ox / s, oi = q * Ho * Wo + oy * Wo + ox;
                if (backward) in->grad[i] += out->grad[oi];
                else out->data[oi] = in->data[i];
            }
}

/* PyTorch's source index: align_corners maps the corner pixels onto each other; otherwise pixel
 * centres are aligned, with negative source positions clamped to 0. */
static void bilinear_src(int64_t o, int64_t in, int64_t out, int align, int64_t *i0, int64_t *i1, float *l1)
{
    double src;
    if (align) src = out > 1 ? (double)o * (double)(in - 1) / (double)(out - 1) : 0.0;
    else {
        src = ((double)o + 0.5) * (double)in / (double)out - 0.5;
        if (src < 0) src = 0;
    }
    int64_t a = (int64_t)src;
    if (a > in - 1) a = in - 1;
    *i0 = a;
    *i1 = a + 1 < in ? a + 1 : in - 1;
    *l1 = (float)(src - (double)a);
}

static void up_bilinear_fwd_bwd(fl_graph *g, const g_op *o, int backward, int64_t y0, int64_t y1)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t planes = in->C * g->batch, H = in->H, W = in->W, Ho = out->H, Wo = out->W;
#pragma omp parallel for num_threads(g->threads) if (planes * Ho * Wo > G_PAR_MIN) schedule(static)
    for (int64_t q = 0; q < planes; q++) {
        for (int64_t oy = y0; oy < y1; oy++) {
            int64_t r0, r1;
            float ly;
            bilinear_src(oy, H, Ho, o->k, &r0, &r1, &ly);
            for (int64_t ox = 0; ox < Wo; ox++) {
                int64_t x0, x1;
                float lx;
                bilinear_src(ox, W, Wo, o->k, &x0, &x1, &lx);
                const int64_t b = q * H * W, oi = q * Ho * Wo + oy * Wo + ox;
                const float w00 = (1 - ly) * (1 - lx), w01 = (1 - ly) * lx, w10 = ly * (1 - lx), w11 = ly * lx;
                if (backward) {
                    const float d = out->grad[oi];
                    float *dx = in->grad + b;
                    dx[r0 * W + x0] += w00 * d;
                    dx[r0 * W + x1] += w01 * d;
                    dx[r1 * W + x0] += w10 * d;
                    dx[r1 * W + x1] += w11 * d;
                } else {
                    const float *x = in->data + b;
                    out->data[oi] = w00 * x[r0 * W + x0] + w01 * x[r0 * W + x1] + w10 * x[r1 * W + x0] +
                                    w11 * x[r1 * W + x1];
                }
            }
        }
    }
}

/* -- linear: the (C, N, HW) activation is transposed into (F, N) with F = C*HW in PyTorch's
 * flatten order, then Y (out, N) = W (out, F) X + b -- */

static void flatten_to(const fl_graph *g, const g_node *in, const float *x, float *xt)
{
    const int64_t N = g->batch, C = in->C, HW = in->H * in->W;
    for (int64_t c = 0; c < C; c++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t p = 0; p < HW; p++) xt[(c * HW + p) * N + n] = x[(c * N + n) * HW + p];
}

static void linear_forward(fl_graph *g, const g_op *o)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t N = g->batch, F = in->C * in->H * in->W, Out = out->C;
    const float *xt = in->data;
    if (in->H * in->W > 1 && N > 1) {
        flatten_to(g, in, in->data, g->work);
        xt = g->work;
    }
    const float *b = P(g, o->b);
    float *y = out->data;
    fl_gemm_parallel(g->threads, 0, 0, Out, N, F, 1.f, P(g, o->w), F, xt, N, 0.f, y, N);
    for (int64_t j = 0; j < Out; j++)
        for (int64_t n = 0; n < N; n++) y[j * N + n] += b[j];
}

static void linear_backward(fl_graph *g, const g_op *o)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t N = g->batch, F = in->C * in->H * in->W, Out = out->C, HW = in->H * in->W;
    const int transposed = HW > 1 && N > 1;
    const float *xt = in->data, *dy = out->grad;
    if (transposed) {
        flatten_to(g, in, in->data, g->work);
        xt = g->work;
    }
    float *db = DP(g, o->b);
    for (int64_t j = 0; j < Out; j++)
        for (int64_t n = 0; n < N; n++) db[j] += dy[j * N + n];
    fl_gemm_parallel(g->threads, 0, 1, Out, F, N, 1.f, dy, N, xt, N, 1.f, DP(g, o->w), F);
    if (!in->needs_grad) return;
    if (!transposed) {
        fl_gemm_parallel(g->threads, 1, 0, F, N, Out, 1.f, P(g, o->w), F, dy, N, 1.f, in->grad, N);
        return;
    }
    fl_gemm_parallel(g->threads, 1, 0, F, N, Out, 1.f, P(g, o->w), F, dy, N, 0.f, g->work, N);
    const int64_t C = in->C;
    for (int64_t c = 0; c < C; c++)
        for (int64_t n = 0; n < N; n++)
            for (int64_t p = 0; p < HW; p++) in->grad[(c * N + n) * HW + p] += g->work[(c * HW + p) * N + n];
}

/* Element f of sample n of an activation of shape (C, H, W): offset in the (C, N, HW) layout. */
static inline int64_t flat_offset(int64_t f, int64_t n, int64_t N, int64_t HW)
{
    return ((f / HW) * N + n) * HW + f % HW;
}

static void reshape_fwd_bwd(fl_graph *g, const g_op *o, int backward)
{
    const g_node *in = &g->nodes[o->in[0]], *out = &g->nodes[o->out];
    const int64_t N = g->batch, F = in->C * in->H * in->W, hwi = in->H * in->W, hwo = out->H * out->W;
    for (int64_t n = 0; n < N; n++)
        for (int64_t f = 0; f < F; f++) {
            const int64_t i = flat_offset(f, n, N, hwi), j = flat_offset(f, n, N, hwo);
            if (backward) in->grad[i] += out->grad[j];
            else out->data[j] = in->data[i];
        }
}

/* y[j] = x[j] > 0 ? x[j] : slope * x[j], or the sum of the inputs, over rows [y0, y1) of every plane */
static void elementwise_rows(fl_graph *g, const g_op *o, int64_t y0, int64_t y1)
{
    const g_node *out = &g->nodes[o->out];
    const int64_t planes = out->C * g->batch, HW = out->H * out->W, j0 = y0 * out->W, j1 = y1 * out->W;
    float *y = out->data;
    const float a = o->slope;
#pragma omp parallel for num_threads(g->threads) if (planes * (j1 - j0) > G_PAR_MIN) schedule(static)
    for (int64_t q = 0; q < planes; q++) {
        const int64_t b = q * HW;
        if (o->kind == OP_LRELU) {
            const float *x = g->nodes[o->in[0]].data;
            for (int64_t j = b + j0; j < b + j1; j++) y[j] = x[j] > 0.f ? x[j] : a * x[j];
            continue;
        }
        /* a sum of many tensors (the dilated block's 12) in pieces that stay in L1, same order of additions */
        for (int64_t c0 = b + j0; c0 < b + j1; c0 += 512) {
            const int64_t c1 = c0 + 512 < b + j1 ? c0 + 512 : b + j1;
            memcpy(y + c0, g->nodes[o->in[0]].data + c0, (size_t)(c1 - c0) * sizeof(float));
            for (int k = 1; k < o->nin; k++) {
                const float *x = g->nodes[o->in[k]].data;
                for (int64_t j = c0; j < c1; j++) y[j] += x[j];
            }
        }
    }
}

static void concat_rows(fl_graph *g, const g_op *o, int64_t y0, int64_t y1)
{
    const g_node *out = &g->nodes[o->out];
    const int64_t HW = out->H * out->W, j0 = y0 * out->W, len = (y1 - y0) * out->W;
    int64_t off = 0;
    for (int k = 0; k < o->nin; k++) {
        const g_node *x = &g->nodes[o->in[k]];
        for (int64_t q = 0; q < x->C * g->batch; q++)
            memcpy(out->data + off + q * HW + j0, x->data + q * HW + j0, (size_t)len * sizeof(float));
        off += x->C * g->batch * HW;
    }
}

/* Output rows [y0, y1) of op o (all rows for the ops that are not row-local). */
static void op_forward(fl_graph *g, g_op *o, int train, int64_t y0, int64_t y1)
{
    switch (o->kind) {
    case OP_INPUT: break;
    case OP_CONV: conv_forward(g, o, y0, y1); break;
    case OP_BN: bn_forward(g, o, train, y0, y1); break;
    case OP_LRELU:
    case OP_ADD: elementwise_rows(g, o, y0, y1); break;
    case OP_CONCAT: concat_rows(g, o, y0, y1); break;
    case OP_MAXPOOL: maxpool_fwd_bwd(g, o, 0, y0, y1); break;
    case OP_UP_NEAREST: up_nearest_fwd_bwd(g, o, 0, y0, y1); break;
    case OP_UP_BILINEAR: up_bilinear_fwd_bwd(g, o, 0, y0, y1); break;
    case OP_LAYERNORM: ln_forward(g, o); break;
    case OP_LINEAR: linear_forward(g, o); break;
    case OP_RESHAPE: reshape_fwd_bwd(g, o, 0); break;
    }
}

void fl_graph_forward(fl_graph *g, int train)
{
    for (int32_t i = 0; i < g->nops; i++) op_forward(g, &g->ops[i], train, 0, g->nodes[g->ops[i].out].H);
    if (g->pend) memset(g->pend, 0, (size_t)(2 * g->nnodes) * sizeof *g->pend);
}

/* ---- row updates ------------------------------------------------------------------------------ */

static int op_is_row_local(int kind)
{
    return kind != OP_LAYERNORM && kind != OP_LINEAR && kind != OP_RESHAPE;
}

/* Rows of op o's input (of height H) that output row oy reads: [*lo, *hi]. */
static void op_input_rows(const fl_graph *g, const g_op *o, int64_t oy, int64_t H, int64_t *lo, int64_t *hi)
{
    switch (o->kind) {
    case OP_CONV:
        *lo = oy * o->stride - o->ph;
        *hi = *lo + (int64_t)o->dh * (o->kh - 1);
        break;
    case OP_MAXPOOL: *lo = oy * o->k, *hi = oy * o->k + o->k - 1; break;
    case OP_UP_NEAREST: *lo = *hi = oy / o->k; break;
    case OP_UP_BILINEAR: {
        float l;
        bilinear_src(oy, H, g->nodes[o->out].H, o->k, lo, hi, &l);
        break;
    }
    default: *lo = *hi = oy;
    }
    if (*lo < 0) *lo = 0;
    if (*hi > H - 1) *hi = H - 1;
}

fl_status fl_graph_forward_rows(fl_graph *g, fl_node x, int64_t y0, int64_t y1, fl_node y, int64_t need,
                                int64_t *out0, int64_t *out1)
{
    if (!g->finalized || !g->pend || g->batch != 1)
        return fl_fail(g->ctx, FL_EINTERNAL, "row updates need a finalized batch-1 graph made with fl_graph_keep_all");
    for (int32_t i = 0; i < g->nops; i++)
        if (!op_is_row_local(g->ops[i].kind))
            return fl_fail(g->ctx, FL_EUNSUPPORTED, "row updates need a network of row-local layers only");
    const int32_t nn = g->nnodes;
    int64_t *needhi = fl_calloc((size_t)nn, sizeof *needhi), *chg = fl_calloc((size_t)(2 * nn), sizeof *chg);
    if (!needhi || !chg) {
        fl_free(needhi);
        fl_free(chg);
        return fl_fail(g->ctx, FL_ENOMEM, "out of memory");
    }
    /* rows of every node that rows [0, need) of y read (a prefix, since every op is monotone) */
    needhi[y] = need < g->nodes[y].H ? need : g->nodes[y].H;
    for (int32_t i = g->nops - 1; i >= 0; i--) {
        const g_op *o = &g->ops[i];
        if (needhi[o->out] <= 0) continue;
        for (int k = 0; k < o->nin; k++) {
            const int64_t H = g->nodes[o->in[k]].H;
            int64_t lo, hi;
            op_input_rows(g, o, needhi[o->out] - 1, H, &lo, &hi);
            if (hi + 1 > needhi[o->in[k]]) needhi[o->in[k]] = hi + 1;
        }
    }
    chg[2 * x] = y0;
    chg[2 * x + 1] = y1;
    for (int32_t i = 0; i < g->nops; i++) {
        g_op *o = &g->ops[i];
        const fl_node t = o->out;
        if (o->kind == OP_INPUT) continue;
        /* output rows that read a changed input row (a contiguous range: the ops are monotone) */
        int64_t a = INT64_MAX, b = INT64_MIN;
        for (int k = 0; k < o->nin; k++) {
            const int64_t c0 = chg[2 * o->in[k]], c1 = chg[2 * o->in[k] + 1], H = g->nodes[o->in[k]].H;
            if (c1 <= c0) continue;
            for (int64_t oy = 0; oy < g->nodes[t].H; oy++) {
                int64_t lo, hi;
                op_input_rows(g, o, oy, H, &lo, &hi);
                if (hi < c0 || lo >= c1) continue;
                if (oy < a) a = oy;
                if (oy + 1 > b) b = oy + 1;
            }
        }
        int64_t *pd = g->pend + 2 * t;
        if (a < b) {
            if (pd[1] <= pd[0]) pd[0] = a, pd[1] = b;
            else pd[0] = a < pd[0] ? a : pd[0], pd[1] = b > pd[1] ? b : pd[1];
        }
        const int64_t r0 = pd[0], r1 = pd[1] < needhi[t] ? pd[1] : needhi[t];
        if (r0 < r1) {
            op_forward(g, o, 0, r0, r1);
            chg[2 * t] = r0;
            chg[2 * t + 1] = r1;
            pd[0] = r1; /* what is left stale lies below the rows needed now */
        }
    }
    *out0 = chg[2 * y];
    *out1 = chg[2 * y + 1];
    fl_free(needhi);
    fl_free(chg);
    return FL_OK;
}

void fl_graph_backward(fl_graph *g, fl_node y)
{
    const int64_t N = g->batch;
    /* zero every gradient but y's, split between the threads (tens of MB per step for batch training) */
#pragma omp parallel num_threads(g->threads)
    for (int32_t i = 0; i < g->nnodes; i++) {
        if (i == y || !g->nodes[i].grad) continue;
        const int64_t n = g->nodes[i].C * N * g->nodes[i].H * g->nodes[i].W, part = 1 << 14;
#pragma omp for schedule(static) nowait
        for (int64_t j = 0; j < n; j += part)
            memset(g->nodes[i].grad + j, 0, (size_t)(n - j < part ? n - j : part) * sizeof(float));
    }
    for (int32_t i = g->nodes[y].producer; i >= 0; i--) {
        const g_op *o = &g->ops[i];
        const g_node *out = &g->nodes[o->out];
        if (!out->needs_grad) continue;
        const int64_t n_out = out->C * N * out->H * out->W;
        switch (o->kind) {
        case OP_INPUT: break;
        case OP_CONV: conv_backward(g, o); break;
        case OP_BN: bn_backward(g, o); break;
        case OP_LRELU: {
            const g_node *in = &g->nodes[o->in[0]];
            if (!in->needs_grad) break;
            const float *x = in->data, *dy = out->grad, a = o->slope;
            float *dx = in->grad;
#pragma omp parallel for num_threads(g->threads) if (n_out > G_PAR_MIN) schedule(static)
            for (int64_t j = 0; j < n_out; j++) dx[j] += x[j] > 0.f ? dy[j] : a * dy[j];
            break;
        }
        case OP_ADD: {
            /* dy added to every input's gradient, in pieces of dy that stay in L1 (inputs in order) */
            const float *dy = out->grad;
#pragma omp parallel for num_threads(g->threads) if (n_out > G_PAR_MIN) schedule(static)
            for (int64_t c0 = 0; c0 < n_out; c0 += 512) {
                const int64_t c1 = c0 + 512 < n_out ? c0 + 512 : n_out;
                for (int k = 0; k < o->nin; k++) {
                    const g_node *in = &g->nodes[o->in[k]];
                    if (!in->needs_grad) continue;
                    float *dx = in->grad;
                    for (int64_t j = c0; j < c1; j++) dx[j] += dy[j];
                }
            }
            break;
        }
        case OP_CONCAT: {
            int64_t off = 0;
            for (int k = 0; k < o->nin; k++) {
                const g_node *in = &g->nodes[o->in[k]];
                const int64_t n = in->C * N * in->H * in->W;
                if (in->needs_grad)
                    for (int64_t j = 0; j < n; j++) in->grad[j] += out->grad[off + j];
                off += n;
            }
            break;
        }
        case OP_MAXPOOL:
            if (g->nodes[o->in[0]].needs_grad) maxpool_fwd_bwd(g, o, 1, 0, g->nodes[o->out].H);
            break;
        case OP_UP_NEAREST:
            if (g->nodes[o->in[0]].needs_grad) up_nearest_fwd_bwd(g, o, 1, 0, g->nodes[o->out].H);
            break;
        case OP_UP_BILINEAR:
            if (g->nodes[o->in[0]].needs_grad) up_bilinear_fwd_bwd(g, o, 1, 0, g->nodes[o->out].H);
            break;
        case OP_LAYERNORM: ln_backward(g, o); break;
        case OP_LINEAR: linear_backward(g, o); break;
        case OP_RESHAPE:
            if (g->nodes[o->in[0]].needs_grad) reshape_fwd_bwd(g, o, 1);
            break;
        }
    }
}
