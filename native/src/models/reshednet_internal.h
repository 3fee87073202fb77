/* Family 4 internals shared with the unit tests and the benchmark. */
#ifndef FL_RESHEDNET_INTERNAL_H
#define FL_RESHEDNET_INTERNAL_H

#include "fl_internal.h"
#include "ferrolens/reshednet.h"
#include "nn/graph.h"

/* Focal loss on the batch-mean BCE (atomai): returns FL for n logits z and targets y in {0, 1} and, when
 * grad is not NULL, writes dFL/dz (n values). */
double fl_reshed_focal_loss(const float *z, const float *y, int64_t n, float alpha, float gamma, float *grad);

/* Builds the ResHedNet with nb_filters F for inputs of H x W into g; returns the logit node and the input
 * node in *input (-1 on failure, message in the graph's ctx). */
fl_node fl_reshed_build(fl_graph *g, int64_t F, int64_t H, int64_t W, fl_node *input);

/* Member k's flat state (fl_graph_get_state layout). */
const float *fl_reshed_member_state(const fl_reshed *m, int32_t k);

/* fl_reshed_apply with the normalisation range [lo, hi] instead of the image's min/max (mean only). */
fl_status fl_reshed_apply_fixed_range(fl_ctx *ctx, const fl_reshed *m, const float *image, int64_t w, int64_t h,
                                      double lo, double hi, float *mean);

/* fl_reshed_live_begin with the row mode allowed (rows = 1, as the public call) or not (band mode). */
fl_status fl_reshed_live_begin_mode(fl_ctx *ctx, const fl_reshed *m, int64_t width, int64_t height, double lo,
                                    double hi, int rows, fl_reshed_live **out);

#endif
