/* PCA (ferrolens/analysis.h) and the helpers the other analysis files share: input checks, the
 * deterministic Gram matrix, the symmetric eigen-decomposition. */
#ifndef FL_ANALYSIS_PCA_H
#define FL_ANALYSIS_PCA_H

#include "fl_internal.h"
#include "ferrolens/analysis.h"

#define FL_AN_MAX_COMPONENTS 4096

/* Checks an n x d data matrix and a component count k for `what` ("PCA", "NMF", ...): X not NULL,
 * n >= 1, d >= 1, 1 <= k <= min(n, FL_AN_MAX_COMPONENTS), n*d fits in memory sizes, every value finite (the message names the
 * first bad sample and feature). */
fl_status fl_an_check(fl_ctx *ctx, const char *what, const float *X, int64_t n, int32_t d, int32_t k);

/* G (d x d, full symmetric) = sum_i (x_i - mean)(x_i - mean)^T, in double; mean may be NULL (no
 * centring). Samples are added in index order for every entry, whatever the thread count. */
fl_status fl_an_gram(fl_ctx *ctx, const float *X, int64_t n, int32_t d, const double *mean, double *G);

/* Eigen-decomposition of the symmetric d x d matrix A (overwritten) with LAPACKE_dsyevd: on return
 * w holds the eigenvalues in DEcreasing order and row r of V (d x d) the unit eigenvector of w[r],
 * its largest-|value| entry made positive. */
fl_status fl_an_sym_eig(fl_ctx *ctx, double *A, int32_t d, double *w, double *V);

#endif
