/* Ferrolens engine: latent-space and decomposition analysis (PCA, NMF, k-means, Gaussian mixture,
 * nearest samples). Used by `ferrolens decompose` and `ferrolens latent` and by the Fiji plugin.
 *
 * Data are always an (n samples x d features) row-major float matrix (for a grid of curves: one row per
 * pixel, one column per spectral point; for an embedding: one row per pixel, one column per latent
 * channel). Arithmetic is done in double. Every function follows the rules of ferrolens.h: re-entrant,
 * inputs const, no output on failure (results are zeroed / freed), a sentence in fl_ctx_message.
 * Results are deterministic for a given seed and do not depend on the thread count (reductions over
 * samples are done per fixed-size chunk, then summed in chunk order).
 */
#ifndef FERROLENS_ANALYSIS_H
#define FERROLENS_ANALYSIS_H

#include "ferrolens/ferrolens.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- PCA ------------------------------------------------------------------------------------------
 * Mean-centred, unscaled. Components are unit vectors, sorted by decreasing variance; the sign of each
 * is chosen so that its largest-|value| entry is positive (first such entry on ties). Variances use the
 * n-1 denominator (as numpy/sklearn). Requires n >= 2 and 1 <= k <= min(n, d). */
typedef struct fl_pca_result {
    int64_t n;
    int32_t d, k;
    double *mean;                      /* d */
    double *components;                /* k x d */
    double *explained_variance;        /* k */
    double *explained_variance_ratio;  /* k (of the total variance, all d directions) */
    double total_variance;             /* trace of the covariance */
    float *scores;                     /* n x k: (x - mean) . component */
} fl_pca_result;

fl_status fl_pca(fl_ctx *ctx, const float *X, int64_t n, int32_t d, int32_t k, fl_pca_result *out);
void fl_pca_result_free(fl_pca_result *r); /* zeroes *r; safe on a zeroed or freed result */

/* ---- NMF ------------------------------------------------------------------------------------------
 * X (n x d, >= 0) ~ W (n x k) H (k x d), Frobenius loss, multiplicative updates (Lee & Seung 2001) in
 * sklearn's order (W then H), convergence checked every 10 iterations as sklearn:
 * (previous error - error) / initial error < tol. */
typedef enum fl_nmf_init {
    FL_NMF_INIT_NNDSVDA = 0, /* Boutsidis & Gallopoulos NNDSVD, zeros filled with mean(X); needs k <= min(n,d) */
    FL_NMF_INIT_RANDOM = 1   /* sqrt(mean(X)/k) * |N(0,1)|, seeded */
} fl_nmf_init;

typedef struct fl_nmf_config {
    int32_t k;
    int32_t init;       /* fl_nmf_init */
    int32_t max_iter;   /* >= 1 */
    double tol;         /* >= 0; 0: run max_iter iterations */
    uint64_t seed;      /* random init only */
    int32_t shift;      /* 1: subtract the global minimum of X first (for signed data such as loops);
                           0: negative values are an error */
} fl_nmf_config;

void fl_nmf_config_default(fl_nmf_config *c); /* k 2, nndsvda, max_iter 200, tol 1e-4, seed 1, no shift */

typedef struct fl_nmf_result {
    int64_t n;
    int32_t d, k;
    float *W;                    /* n x k */
    float *H;                    /* k x d */
    double shift;                /* value subtracted from X (0 without shift) */
    double reconstruction_err;   /* ||X' - W H||_F (X' = shifted X) */
    double relative_err;         /* reconstruction_err / ||X'||_F */
    int32_t iterations;
    int32_t converged;
} fl_nmf_result;

fl_status fl_nmf(fl_ctx *ctx, const float *X, int64_t n, int32_t d, const fl_nmf_config *cfg, fl_nmf_result *out);
void fl_nmf_result_free(fl_nmf_result *r);

/* ---- k-means --------------------------------------------------------------------------------------
 * Lloyd iterations from k-means++ seeding (Arthur & Vassilvitskii, one D^2-sampled candidate per
 * centre, seeded Philox RNG). Stops when no label changes or after max_iter iterations. An empty
 * cluster takes the sample farthest from its centre. centers: k x d, labels: n (0..k-1), both
 * caller-allocated; inertia = sum of squared distances to the assigned centre. */
fl_status fl_kmeans(fl_ctx *ctx, const float *X, int64_t n, int32_t d, int32_t k, int32_t max_iter, uint64_t seed,
                    double *centers, int32_t *labels, double *inertia, int32_t *iterations);

/* ---- Gaussian mixture, full covariances, EM (as sklearn.mixture.GaussianMixture, n_init 1) --------- */
typedef struct fl_gmm_config {
    int32_t k;
    int32_t max_iter;     /* 100 */
    double tol;           /* 1e-3 on the change of the mean log-likelihood lower bound */
    double reg_covar;     /* 1e-6 added to every covariance diagonal */
    uint64_t seed;        /* k-means++ seeding of the k-means initialisation */
    int32_t kmeans_iter;  /* 300 */
} fl_gmm_config;

void fl_gmm_config_default(fl_gmm_config *c);

typedef struct fl_gmm_result {
    int64_t n;
    int32_t d, k;
    double *weights;        /* k */
    double *means;          /* k x d */
    double *covariances;    /* k x d x d */
    int32_t *labels;        /* n: argmax responsibility under the final parameters (0..k-1) */
    int32_t converged;
    int32_t iterations;     /* EM iterations run */
    double lower_bound;     /* mean log-likelihood of the last E-step (sklearn's lower_bound_) */
    double log_likelihood;  /* total log-likelihood of X under the final parameters */
    double mean_log_likelihood; /* log_likelihood / n (sklearn's score(X)) */
} fl_gmm_result;

fl_status fl_gmm_fit(fl_ctx *ctx, const float *X, int64_t n, int32_t d, const fl_gmm_config *cfg, fl_gmm_result *out);
void fl_gmm_result_free(fl_gmm_result *r);

/* ---- nearest samples ("inverse" view) ----------------------------------------------------------------
 * Indices of the `count` rows of X (n x d) nearest to `point` (d values) in Euclidean distance, nearest
 * first (ties: lower index first). valid (n bytes, may be NULL) excludes rows with valid[i] == 0.
 * Writes min(count, number of valid rows) indices to idx and that number to *found. */
fl_status fl_nearest_samples(fl_ctx *ctx, const float *X, int64_t n, int32_t d, const double *point,
                             const uint8_t *valid, int64_t count, int64_t *idx, int64_t *found);

#ifdef __cplusplus
}
#endif
#endif
