/* A static computation graph for the convolutional families (im2spec/spec2im, the diffraction
 * autoencoder, ResHedNet): a model is built once from layer calls, then run forward and backward
 * many times without allocating.
 *
 * Layout: every activation is stored channel-major ACROSS the batch, (C, N, H, W): channel c of
 * sample n is the contiguous plane at (c*N + n)*H*W. With this layout a convolution over the whole
 * batch is one GEMM, W (Cout x Cin*kh*kw) * columns (Cin*kh*kw x N*Ho*Wo), whose result is already the
 * next activation; batch norm sees each channel as one contiguous row. 1-D layers use H = 1. When
 * C == 1 (all model inputs and outputs here) the layout equals PyTorch's NCHW.
 *
 * Parameters carry PyTorch state_dict names and shapes (conv weight (Cout, Cin, kh, kw) or
 * (Cout, Cin, k) for 1-D, linear (out, in) with in = C*H*W flattened in PyTorch order), so weights
 * trained in PyTorch load unchanged. Batch norm follows PyTorch (momentum 0.1 on the running
 * statistics, unbiased running variance, eps 1e-5).
 *
 * Determinism: every reduction runs in an order fixed by the shapes alone (GEMMs via
 * fl_gemm_parallel, per-channel sums by one thread each), so results are bit-identical for any
 * thread count. */
#ifndef FL_GRAPH_H
#define FL_GRAPH_H

#include "fl_internal.h"

typedef int32_t fl_node; /* an activation; -1 = a failed build step (the error is in the graph) */
typedef struct fl_graph fl_graph;

typedef enum fl_init_kind {
    FL_INIT_TORCH = 0, /* PyTorch defaults: weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    FL_INIT_XAVIER = 1 /* Xavier-uniform weights, zero biases (atomai's weights_init) */
} fl_init_kind;

/* max_batch: the largest batch the graph will run (buffers are sized for it). `training` keeps
 * every activation and its gradient; otherwise activation buffers are reused once dead. */
fl_graph *fl_graph_new(fl_ctx *ctx, int64_t max_batch, int training);
void fl_graph_free(fl_graph *g);

/* ---- building (before fl_graph_finalize) ---------------------------------------------------- */
fl_node fl_g_input(fl_graph *g, int64_t C, int64_t H, int64_t W);
/* 2-D convolution, kernel kh x kw, zero padding (ph, pw), dilation (dh, dw), stride s. */
fl_node fl_g_conv2d(fl_graph *g, fl_node x, const char *name, int64_t cout, int kh, int kw, int stride, int ph,
                    int pw, int dh, int dw, int bias);
/* 1-D convolution over W (input H must be 1); weight shape (Cout, Cin, k) as nn.Conv1d. */
fl_node fl_g_conv1d(fl_graph *g, fl_node x, const char *name, int64_t cout, int k, int stride, int pad, int dil,
                    int bias);
fl_node fl_g_batchnorm(fl_graph *g, fl_node x, const char *name); /* BatchNorm1d/2d over channels */
fl_node fl_g_leaky_relu(fl_graph *g, fl_node x, float slope);       /* slope 0: ReLU */
fl_node fl_g_add(fl_graph *g, int n, const fl_node *xs);            /* element-wise sum, same shapes */
fl_node fl_g_maxpool(fl_graph *g, fl_node x, int k);                /* kernel = stride = k, floor */
fl_node fl_g_upsample_nearest(fl_graph *g, fl_node x, int scale);
/* Bilinear resize to (H, W) with PyTorch's align_corners semantics. */
fl_node fl_g_upsample_bilinear(fl_graph *g, fl_node x, int64_t H, int64_t W, int align_corners);
/* LayerNorm([H, W]): statistics over each channel's plane, affine weight/bias of shape (H, W). */
fl_node fl_g_layernorm_plane(fl_graph *g, fl_node x, const char *name);
/* Linear on the flattened sample (C*H*W, PyTorch order) -> (out, 1, 1). */
fl_node fl_g_linear(fl_graph *g, fl_node x, const char *name, int64_t out);
fl_node fl_g_reshape(fl_graph *g, fl_node x, int64_t C, int64_t H, int64_t W); /* a copy in this layout */
fl_node fl_g_concat(fl_graph *g, int n, const fl_node *xs);                     /* along channels */

/* Marks an activation the caller will read after fl_graph_forward (outputs that nothing reads
 * later are kept anyway); only inference graphs reuse buffers. */
void fl_graph_keep(fl_graph *g, fl_node x);

/* Training graphs: also compute d(loss)/d(input) for this input (off by default: the first layer's
 * input gradient is wasted work in training). Call right after fl_g_input. */
void fl_graph_want_input_grad(fl_graph *g, fl_node x);

/* Allocates parameters, optimiser state and activations; fails (budget, memory, an earlier build
 * error) with the message in ctx. */
fl_status fl_graph_finalize(fl_graph *g);
/* Bytes fl_graph_finalize will allocate (valid after building). */
size_t fl_graph_memory_bytes(const fl_graph *g);

/* ---- running --------------------------------------------------------------------------------- */
void fl_graph_init_params(fl_graph *g, uint64_t seed, fl_init_kind kind);
void fl_graph_set_batch(fl_graph *g, int64_t n); /* 1 <= n <= max_batch; default max_batch */
int64_t fl_graph_batch(const fl_graph *g);
void fl_graph_shape(const fl_graph *g, fl_node x, int64_t *C, int64_t *H, int64_t *W);
float *fl_graph_data(fl_graph *g, fl_node x); /* (C, n, H, W) for the current batch n */
float *fl_graph_grad(fl_graph *g, fl_node x); /* training graphs only */
/* train != 0: batch statistics in batch norm (and running statistics updated). */
void fl_graph_forward(fl_graph *g, int train);

/* ---- row updates (live inference on an image that grows or changes row by row) -------------------
 * fl_graph_keep_all (before finalize, inference graphs only) keeps every activation. After one full
 * fl_graph_forward, when rows [y0, y1) of input x changed, fl_graph_forward_rows recomputes in every
 * node only the rows those input rows reach, and of them only the rows needed for rows [0, need) of
 * node y (the others are remembered as stale and recomputed when a later call needs them). Result:
 * rows [*out0, *out1) of y changed (empty when *out0 >= *out1); the other rows below `need` hold the
 * values of a full forward on the current input: bit for bit, or to float rounding when the graph has
 * Winograd layers (see fl_graph_use_winograd). Row updates use the parameters of the last full
 * fl_graph_forward (after changing parameters, run one: the kept activations need it anyway). Batch 1,
 * every op row-local (no LayerNorm, linear or reshape), else an error. */
void fl_graph_keep_all(fl_graph *g);

/* Stride-1 3x3 and 1-D k3 convolutions (any dilation) with 32+ channels run by Winograd F(4x4, 3x3) /
 * F(4, 3) (ops/winograd.h: 4x / 2x fewer multiplications, rounding within ~1e-6 of the terms'
 * magnitude), forward, input and weight gradient, unless turned off here before finalize (benchmarks, tests
 * comparing with the direct sum). Row-update graphs never use it. */
void fl_graph_use_winograd(fl_graph *g, int on);
fl_status fl_graph_forward_rows(fl_graph *g, fl_node x, int64_t y0, int64_t y1, fl_node y, int64_t need,
                                int64_t *out0, int64_t *out1);
/* The caller has written d(loss)/d(out) into fl_graph_grad(g, out); every other activation
 * gradient is zeroed here, parameter gradients are ACCUMULATED (fl_graph_zero_grads first). */
void fl_graph_backward(fl_graph *g, fl_node out);
void fl_graph_zero_grads(fl_graph *g);

/* Trainable parameters and their gradients as one flat vector each. */
int64_t fl_graph_param_count(const fl_graph *g);
float *fl_graph_params(fl_graph *g);
float *fl_graph_param_grads(fl_graph *g);
/* PyTorch Adam (bias-corrected moments, eps outside the square root), step t >= 1. */
void fl_graph_adam_step(fl_graph *g, float lr, float beta1, float beta2, float eps, int64_t t);
void fl_graph_reset_optimizer(fl_graph *g);

/* The state (parameters and batch-norm running statistics) as named tensors, with `prefix` put
 * before each name; and back, with every name and shape checked. */
fl_status fl_graph_export(fl_graph *g, fl_ctx *ctx, fl_tensor_list *out, const char *prefix);
fl_status fl_graph_import(fl_graph *g, fl_ctx *ctx, const fl_tensor_list *in, const char *prefix);
/* Copy the state of `src` (same architecture) into `dst`. */
void fl_graph_copy_state(fl_graph *dst, const fl_graph *src);
/* State as one flat vector (parameters then running statistics): for averaging (SWA, ensembles). */
int64_t fl_graph_state_count(const fl_graph *g);
void fl_graph_get_state(const fl_graph *g, float *out);
void fl_graph_set_state(fl_graph *g, const float *in);

#endif
