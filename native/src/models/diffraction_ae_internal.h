/* Test hooks of the diffraction autoencoder (family 3); not part of the public API. */
#ifndef FL_DIFFRACTION_AE_INTERNAL_H
#define FL_DIFFRACTION_AE_INTERNAL_H

#include "fl_internal.h"
#include "ferrolens/diffraction_ae.h"

/* The three regularisers of the latent batch z (B x K, row b = sample b) and the gradient of
 * R1 + Rc - Rd into dz (B x K, overwritten; may be NULL). parts: R1, Rc, Rd. Returns R1 + Rc - Rd. */
double fl_dae_regularisers(const float *z, int64_t B, int64_t K, double l1, double contrastive, double divergence,
                           double *dz, double parts[3]);

/* A training pair of graphs (encoder, decoder) for batches up to B, holding a copy of the model's weights. */
typedef struct fl_dae_net fl_dae_net;
fl_status fl_dae_debug_net_new(fl_ctx *ctx, const fl_dae *m, int64_t B, fl_dae_net **out);
void fl_dae_debug_net_free(fl_dae_net *n);
/* part 0: encoder, 1: decoder; the graph's flat parameter (and gradient) vector. */
float *fl_dae_debug_params(fl_dae_net *n, int part, int64_t *count);
float *fl_dae_debug_grads(fl_dae_net *n, int part);
/* Training-mode loss (gradient form: MSE + R1 + Rc - Rd, no 0.5 quirk) of B log-space patterns x with the
 * model's regulariser weights; gradients of all parameters are left in fl_dae_debug_grads. */
double fl_dae_debug_loss_grad(fl_dae_net *n, const float *x, int64_t B);

#endif
