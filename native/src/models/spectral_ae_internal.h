/* Test hooks of the spectral autoencoder (not part of the public API). */
#ifndef FL_SPECTRAL_AE_INTERNAL_H
#define FL_SPECTRAL_AE_INTERNAL_H

#include "fl_internal.h"

/* Training-mode loss (MSE + L1 term) of the first B normalised curves xn (B x T) and its gradient
 * w.r.t. every parameter (grad: fl_sae_param_count floats, may be NULL). Dropout uses step 0. */
fl_status fl_sae_debug_loss_grad(fl_ctx *ctx, fl_sae *m, const float *xn, int64_t B, int32_t T, float *grad,
                                 double *loss);
/* The flat parameter buffer, for finite-difference checks. */
float *fl_sae_debug_params(fl_sae *m);

#endif
