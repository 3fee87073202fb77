/* PCA via the covariance eigen-decomposition, and helpers shared by nmf.c and gmm.c.
 *
 * Why the d x d covariance and not an SVD of the n x d data: here d is a curve length or a latent
 * dimension (tens to a few hundred) while n is the number of pixels (thousands to millions). Forming
 * X^T X costs n d^2 flops in one streaming pass and the eigen-problem d^3, with O(d^2) memory; a thin
 * SVD of X would need an n x d copy and n d^2 flops with a larger constant. Squaring the condition
 * number loses accuracy only in the tiny trailing eigenvalues, which PCA discards; the Gram matrix is
 * accumulated in double. */
#include "analysis/pca.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

#define GRAM_BLOCK 256 /* samples centred into a double buffer at a time */

fl_status fl_an_check(fl_ctx *ctx, const char *what, const float *X, int64_t n, int32_t d, int32_t k)
{
    if (!X) return fl_fail(ctx, FL_EINVAL, "%s: no data", what);
    if (n < 1) return fl_fail(ctx, FL_EINVAL, "%s: no samples (n = %lld)", what, (long long)n);
    if (d < 1) return fl_fail(ctx, FL_EINVAL, "%s: samples need at least one feature (d = %d)", what, (int)d);
    if (k < 1) return fl_fail(ctx, FL_EINVAL, "%s: the number of components must be at least 1 (got %d)", what, (int)k);
    if (k > FL_AN_MAX_COMPONENTS)
        return fl_fail(ctx, FL_EINVAL, "%s: %d components are too many (at most %d)", what, (int)k, FL_AN_MAX_COMPONENTS);
    if ((int64_t)k > n)
        return fl_fail(ctx, FL_EINVAL, "%s: %d components for only %lld samples; use at most %lld", what, (int)k,
                       (long long)n, (long long)n);
    size_t bytes;
    if (!fl_mul_size((size_t)n, (size_t)d, &bytes) || !fl_mul_size(bytes, sizeof(double), &bytes))
        return fl_fail(ctx, FL_EINVAL, "%s: %lld x %d values are too many", what, (long long)n, (int)d);
    const int64_t nd = n * (int64_t)d;
    int64_t bad = -1, nbad = 0;
    for (int64_t i = 0; i < nd; i++)
        if (!isfinite(X[i])) {
            if (bad < 0) bad = i;
            nbad++;
        }
    if (nbad)
        return fl_fail(ctx, FL_EINVAL, "%s: %lld value(s) are NaN or infinite (first at sample %lld, feature %lld)", what,
                       (long long)nbad, (long long)(bad / d), (long long)(bad % d));
    return FL_OK;
}

fl_status fl_an_gram(fl_ctx *ctx, const float *X, int64_t n, int32_t d, const double *mean, double *G)
{
    double *B = fl_alloc((size_t)GRAM_BLOCK * d * sizeof(double));
    if (!B) return fl_fail(ctx, FL_ENOMEM, "out of memory for a %d x %d covariance", (int)d, (int)d);
    memset(G, 0, (size_t)d * d * sizeof(double));
    const int nt = fl_ctx_threads(ctx);
    for (int64_t s0 = 0; s0 < n; s0 += GRAM_BLOCK) {
        const int64_t m = n - s0 < GRAM_BLOCK ? n - s0 : GRAM_BLOCK;
        for (int64_t s = 0; s < m; s++)
            for (int32_t j = 0; j < d; j++) B[s * d + j] = (double)X[(s0 + s) * d + j] - (mean ? mean[j] : 0.0);
        /* row i of the upper triangle belongs to one thread; samples are added in order */
#pragma omp parallel for schedule(dynamic, 4) num_threads(nt)
        for (int32_t i = 0; i < d; i++) {
            double *g = G + (int64_t)i * d;
            for (int64_t s = 0; s < m; s++) {
                const double *b = B + s * d;
                const double bi = b[i];
                for (int32_t j = i; j < d; j++) g[j] += bi * b[j];
            }
        }
        fl_status st = fl_progress(ctx, "covariance", s0 + m, n, NAN, NAN);
        if (st) {
            fl_free(B);
            return st;
        }
    }
    for (int32_t i = 0; i < d; i++)
        for (int32_t j = 0; j < i; j++) G[(int64_t)i * d + j] = G[(int64_t)j * d + i];
    fl_free(B);
    return FL_OK;
}

fl_status fl_an_sym_eig(fl_ctx *ctx, double *A, int32_t d, double *w, double *V)
{
    double *wa = fl_alloc((size_t)d * sizeof(double));
    if (!wa) return fl_fail(ctx, FL_ENOMEM, "out of memory for an eigen-decomposition");
    /* row-major: column c of A holds the eigenvector of wa[c] (ascending) */
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', d, A, d, wa);
    if (info != 0) {
        fl_free(wa);
        return fl_fail(ctx, FL_EINTERNAL, "the eigen-decomposition of a %d x %d matrix did not converge (LAPACK info %d)",
                       (int)d, (int)d, (int)info);
    }
    for (int32_t r = 0; r < d; r++) {
        const int32_t c = d - 1 - r;
        w[r] = wa[c];
        int32_t arg = 0;
        for (int32_t i = 1; i < d; i++)
            if (fabs(A[(int64_t)i * d + c]) > fabs(A[(int64_t)arg * d + c])) arg = i;
        const double sgn = A[(int64_t)arg * d + c] < 0 ? -1.0 : 1.0;
        for (int32_t i = 0; i < d; i++) V[(int64_t)r * d + i] = sgn * A[(int64_t)i * d + c];
    }
    fl_free(wa);
    return FL_OK;
}

void fl_pca_result_free(fl_pca_result *r)
{
    if (!r) return;
    fl_free(r->mean);
    fl_free(r->components);
    fl_free(r->explained_variance);
    fl_free(r->explained_variance_ratio);
    fl_free(r->scores);
    memset(r, 0, sizeof *r);
}

fl_status fl_pca(fl_ctx *ctx, const float *X, int64_t n, int32_t d, int32_t k, fl_pca_result *out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "PCA: no result structure");
    memset(out, 0, sizeof *out);
    fl_status st = fl_an_check(ctx, "PCA", X, n, d, k);
    if (st) return st;
    if (n < 2) return fl_fail(ctx, FL_EINVAL, "PCA needs at least 2 samples (got %lld)", (long long)n);
    if (k > d)
        return fl_fail(ctx, FL_EINVAL, "PCA: %d components for %d features; use at most %d", (int)k, (int)d, (int)d);
    size_t dd, nk;
    if (!fl_mul_size((size_t)d, (size_t)d, &dd) || !fl_mul_size(dd, 2 * sizeof(double), &dd) ||
        !fl_mul_size((size_t)n, (size_t)k, &nk) || !fl_mul_size(nk, sizeof(float), &nk))
        return fl_fail(ctx, FL_EINVAL, "PCA: the problem is too large");
    st = fl_check_budget(ctx, dd + nk, "PCA");
    if (st) return st;

    fl_pca_result r = {.n = n, .d = d, .k = k};
    double *G = fl_alloc(dd / 2), *V = fl_alloc(dd / 2), *w = fl_alloc((size_t)d * sizeof(double));
    r.mean = fl_calloc((size_t)d, sizeof(double));
    r.components = fl_alloc((size_t)k * d * sizeof(double));
    r.explained_variance = fl_alloc((size_t)k * sizeof(double));
    r.explained_variance_ratio = fl_alloc((size_t)k * sizeof(double));
    r.scores = fl_alloc(nk);
    if (!G || !V || !w || !r.mean || !r.components || !r.explained_variance || !r.explained_variance_ratio || !r.scores) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for PCA of %lld x %d values", (long long)n, (int)d);
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        for (int32_t j = 0; j < d; j++) r.mean[j] += X[i * d + j];
    for (int32_t j = 0; j < d; j++) r.mean[j] /= (double)n;
    st = fl_an_gram(ctx, X, n, d, r.mean, G);
    if (st) goto done;
    for (int64_t i = 0; i < (int64_t)d * d; i++) G[i] /= (double)(n - 1);
    double total = 0;
    for (int32_t j = 0; j < d; j++) total += G[(int64_t)j * d + j];
    st = fl_an_sym_eig(ctx, G, d, w, V);
    if (st) goto done;
    r.total_variance = total;
    memcpy(r.components, V, (size_t)k * d * sizeof(double));
    for (int32_t c = 0; c < k; c++) {
        r.explained_variance[c] = w[c] > 0 ? w[c] : 0.0; /* round-off can make null directions negative */
        r.explained_variance_ratio[c] = total > 0 ? r.explained_variance[c] / total : 0.0;
    }
    const int nt = fl_ctx_threads(ctx);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; i++)
        for (int32_t c = 0; c < k; c++) {
            double s = 0;
            for (int32_t j = 0; j < d; j++) s += ((double)X[i * d + j] - r.mean[j]) * r.components[(int64_t)c * d + j];
            r.scores[i * k + c] = (float)s;
        }
done:
    fl_free(G);
    fl_free(V);
    fl_free(w);
    if (st) fl_pca_result_free(&r);
    else *out = r;
    return st;
}
