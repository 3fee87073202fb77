/* Test hooks of the im2spec / spec2im models (not part of the public API). */
#ifndef FL_IM2SPEC_INTERNAL_H
#define FL_IM2SPEC_INTERNAL_H

#include "fl_internal.h"
#include "ferrolens/im2spec.h"
#include "nn/graph.h"

/* The network of cfg (cfg->points must be set) for batches of up to `batch` samples, finalized, with
 * PyTorch-default initial parameters from `seed`. in: (1,p,p) patch or (1,1,P) spectrum; out: the
 * prediction; lat: the latent vector (z,1,1). NULL on failure (message in ctx). */
fl_graph *fl_i2s_debug_net(fl_ctx *ctx, const fl_i2s_config *cfg, int64_t batch, int training, uint64_t seed,
                           fl_node *in, fl_node *lat, fl_node *out);
/* The training loss: mean squared error of out against target (current batch x output values); with
 * grad != 0 also writes d(loss)/d(out) into fl_graph_grad(g, out). */
double fl_i2s_debug_mse(fl_graph *g, fl_node out, const float *target, int grad);

/* The SSIM of fl_i2s_apply's 1-SSIM map for two p x p images (p >= 7). */
double fl_i2s_debug_ssim(const float *truth, const float *pred, int p);

#endif
