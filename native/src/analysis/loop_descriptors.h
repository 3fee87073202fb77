/* Hysteresis-loop descriptors: engine-internal double-precision core behind ferrolens/loops.h (the
 * definitions of every descriptor are documented there). */
#ifndef FL_LOOP_DESCRIPTORS_H
#define FL_LOOP_DESCRIPTORS_H

#include "fl_internal.h"
#include "ferrolens/loops.h"

/* Where a triangle sweep turns: first index of the minimum and of the maximum bias. */
typedef struct fl_loop_sweep {
    int64_t imin, imax;
    int64_t n;
} fl_loop_sweep;

/* Checks v[0..n) (see fl_loop_check_sweep) and fills *sw; FL_EINVAL with a message otherwise. */
fl_status fl_loop_sweep_d(fl_ctx *ctx, const double *v, int64_t n, fl_loop_sweep *sw);

/* Scratch doubles fl_loop_desc_d needs for a loop of n points. */
#define FL_LOOP_SCRATCH(n) (6 * ((size_t)(n) + 2))

/* Descriptors of one loop with a checked sweep; r must be finite. scratch holds FL_LOOP_SCRATCH(n)
 * doubles. Never fails. */
void fl_loop_desc_d(const double *v, const double *r, const fl_loop_sweep *sw, double *scratch, fl_loop_desc *out);

/* |shoelace area| of the closed polygon (double version of fl_loop_area). */
double fl_loop_area_d(const double *v, const double *r, int64_t n);

#endif
