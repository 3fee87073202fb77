/* Helpers of the benchmark programs (bench_*.c). */
#ifndef FL_BENCH_COMMON_H
#define FL_BENCH_COMMON_H

#include <stdio.h>

#include "fl_internal.h"

/* Prints ctx's message; returns the exit code 1, as in `if (fl_x(ctx, ...)) return bench_fail(ctx);` */
static inline int bench_fail(fl_ctx *ctx)
{
    fprintf(stderr, "%s\n", fl_ctx_message(ctx));
    return 1;
}

/* BEST = the smallest wall time (seconds) of REPS runs of the statement STMT. */
#define BENCH_BEST_OF(BEST, REPS, STMT)                                                                     \
    do {                                                                                                   \
        (BEST) = 1e30;                                                                                     \
        for (int bench_rep_ = 0; bench_rep_ < (REPS); bench_rep_++) {                                      \
            const double bench_t0_ = fl_now_seconds();                                                     \
            STMT;                                                                                          \
            const double bench_t_ = fl_now_seconds() - bench_t0_;                                          \
            if (bench_t_ < (BEST)) (BEST) = bench_t_;                                                      \
        }                                                                                                  \
    } while (0)

#endif
