/* Small helpers shared by the unit tests: seeded uniform fills and the largest elementwise difference. */
#ifndef FL_TEST_UTIL_H
#define FL_TEST_UTIL_H

#include <math.h>
#include <stdint.h>

#include "fl_internal.h"

/* x[i] = lo + (hi - lo) * u, u uniform in [0,1) from the Philox stream (seed, stream) */
static inline void fill_stream(float *x, int64_t n, float lo, float hi, uint64_t seed, uint64_t stream)
{
    fl_rng r;
    fl_rng_init(&r, seed, stream);
    for (int64_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * fl_rng_uniform(&r);
}

/* the same on stream 7 (the tests' usual one) */
static inline void fill(float *x, int64_t n, float lo, float hi, uint64_t seed)
{
    fill_stream(x, n, lo, hi, seed, 7);
}

/* max_i |a[i] - b[i]| in double */
static inline double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

#endif
