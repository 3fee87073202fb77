/* Small statistics used to score models against ground truth. */
#ifndef FL_STATS_H
#define FL_STATS_H

#include <stdint.h>

/* Pearson correlation of a and b (n values, strides sa and sb); NaN when either is constant. */
double fl_pearson(const float *a, int64_t sa, const float *b, int64_t sb, int64_t n);
/* Coefficient of determination 1 - SSE/SST of pred against truth (n values). */
double fl_r_squared(const float *pred, const float *truth, int64_t n);

#endif
