/* Domain-wall mask post-processing: skeleton, measurement points, label rasterisation, metrics.
 * The public API and its exact definitions are in ferrolens/walls.h; this header adds the helpers
 * the rest of the engine (toy model, tests) shares. */
#ifndef FL_SKELETON_H
#define FL_SKELETON_H

#include "fl_internal.h"
#include "ferrolens/walls.h"

/* Exact squared Euclidean distance transform (Felzenszwalb & Huttenlocher 2012): d2[i] = squared
 * distance from pixel i to the nearest pixel with mask != 0 (pixel-centre units); a very large value
 * (1e20) everywhere when the mask is empty. d2 holds w*h doubles; scratch must hold
 * 4 * max(w, h) + 1 doubles. No checks (callers validate). */
void fl_edt_squared(const uint8_t *mask, int64_t w, int64_t h, double *d2, double *scratch);

/* Number of separate runs of set pixels in the 8-ring of pixel (x, y) (0..4), the ring read
 * circularly N, NE, E, SE, S, SW, W, NW; pixels outside the image are background. */
int fl_ring_runs(const uint8_t *m, int64_t w, int64_t h, int64_t x, int64_t y);

#endif
