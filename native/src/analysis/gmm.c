/* k-means (k-means++ seeding, Lloyd), Gaussian mixture with full covariances fitted by EM, and the
 * nearest-sample query of the latent-space "inverse" view.
 *
 * The GMM follows sklearn.mixture.GaussianMixture(covariance_type="full", init_params="kmeans",
 * n_init=1): responsibilities initialised one-hot from k-means labels, M-step with nk + 10 eps and
 * reg_covar on the diagonal, E-step log-densities through the Cholesky factor of each covariance
 * (LAPACKE_dpotrf), stop when the mean log-likelihood changes by less than tol, labels from a final
 * E-step. Per-sample work runs in parallel; every sum over samples runs in sample order inside one
 * thread, so results are bit-identical for any thread count. */
#include "analysis/gmm.h"
#include "analysis/pca.h"

#include <float.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LOG_2PI 1.8378770664093453

static double sqdist(const float *x, const double *c, int32_t d)
{
    double s = 0;
    for (int32_t j = 0; j < d; j++) {
        const double t = (double)x[j] - c[j];
        s += t * t;
    }
    return s;
}

/* uniform index in [0, n) */
static int64_t rng_index(fl_rng *r, int64_t n)
{
    uint64_t v = ((uint64_t)fl_rng_u32(r) << 32) | fl_rng_u32(r);
    return (int64_t)(v % (uint64_t)n);
}

/* uniform double in [0, 1) with 53 random bits */
static double rng_double(fl_rng *r)
{
    uint64_t v = ((uint64_t)fl_rng_u32(r) << 32) | fl_rng_u32(r);
    return (double)(v >> 11) * 0x1.0p-53;
}

/* Assign every sample to its nearest centre (ties: lower index); dist gets the squared distance. */
static void assign(const float *X, int64_t n, int32_t d, int32_t k, const double *C, int32_t *lab, double *dist, int nt)
{
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; i++) {
        double best = INFINITY;
        int32_t arg = 0;
        for (int32_t c = 0; c < k; c++) {
            const double t = sqdist(X + i * d, C + (int64_t)c * d, d);
            if (t < best) best = t, arg = c;
        }
        lab[i] = arg;
        dist[i] = best;
    }
}

fl_status fl_kmeans(fl_ctx *ctx, const float *X, int64_t n, int32_t d, int32_t k, int32_t max_iter, uint64_t seed,
                    double *centers, int32_t *labels, double *inertia, int32_t *iterations)
{
    fl_status st = fl_an_check(ctx, "k-means", X, n, d, k);
    if (st) return st;
    if (max_iter < 1) return fl_fail(ctx, FL_EINVAL, "k-means: max_iter must be at least 1 (got %d)", (int)max_iter);
    if (!centers || !labels) return fl_fail(ctx, FL_EINVAL, "k-means: no output arrays");
    st = fl_check_budget(ctx, (size_t)n * (sizeof(double) + sizeof(int32_t)) + (size_t)k * d * 2 * sizeof(double),
                         "k-means");
    if (st) return st;
    double *dist = fl_alloc((size_t)n * sizeof(double)), *C = fl_alloc((size_t)k * d * sizeof(double));
    double *cnt = fl_alloc((size_t)k * sizeof(double));
    int32_t *lab = fl_alloc((size_t)n * sizeof(int32_t)), *prev = fl_alloc((size_t)n * sizeof(int32_t));
    uint8_t *taken = fl_calloc((size_t)n, 1);
    if (!dist || !C || !cnt || !lab || !prev || !taken) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for k-means of %lld samples", (long long)n);
        goto done;
    }
    const int nt = fl_ctx_threads(ctx);

    /* k-means++ seeding: first centre uniform, then each next one with probability ~ D(x)^2 */
    fl_rng rng;
    fl_rng_init(&rng, seed, 0x6b6d65616e73ull);
    int64_t pick = rng_index(&rng, n);
    for (int32_t j = 0; j < d; j++) C[j] = X[pick * d + j];
    for (int32_t c = 1; c < k; c++) {
        const double *prevc = C + (int64_t)(c - 1) * d;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t i = 0; i < n; i++) {
            const double t = sqdist(X + i * d, prevc, d);
            if (c == 1 || t < dist[i]) dist[i] = t;
        }
        double total = 0;
        for (int64_t i = 0; i < n; i++) total += dist[i];
        if (total > 0) {
            const double u = rng_double(&rng) * total;
            double acc = 0;
            pick = -1;
            for (int64_t i = 0; i < n; i++) {
                acc += dist[i];
                if (dist[i] > 0 && acc > u) {
                    pick = i;
                    break;
                }
            }
            if (pick < 0) /* round-off at the end of the sum: the last sample with weight */
                for (int64_t i = n - 1; i >= 0 && pick < 0; i--)
                    if (dist[i] > 0) pick = i;
        } else {
            pick = rng_index(&rng, n); /* every sample coincides with a centre */
        }
        for (int32_t j = 0; j < d; j++) C[(int64_t)c * d + j] = X[pick * d + j];
    }

    /* Lloyd iterations */
    int32_t it = 0;
    for (int64_t i = 0; i < n; i++) prev[i] = -1;
    while (it < max_iter) {
        assign(X, n, d, k, C, lab, dist, nt);
        it++;
        int64_t changed = 0;
        for (int64_t i = 0; i < n; i++) changed += lab[i] != prev[i];
        memset(C, 0, (size_t)k * d * sizeof(double));
        memset(cnt, 0, (size_t)k * sizeof(double));
        for (int64_t i = 0; i < n; i++) {
            double *c = C + (int64_t)lab[i] * d;
            for (int32_t j = 0; j < d; j++) c[j] += X[i * d + j];
            cnt[lab[i]] += 1;
        }
        int empty = 0;
        for (int64_t i = 0; i < n; i++) taken[i] = 0;
        for (int32_t c = 0; c < k; c++) {
            if (cnt[c] > 0) {
                for (int32_t j = 0; j < d; j++) C[(int64_t)c * d + j] /= cnt[c];
                continue;
            }
            /* empty cluster: move its centre to the sample farthest from its own centre */
            empty = 1;
            int64_t far = -1;
            for (int64_t i = 0; i < n; i++)
                if (!taken[i] && (far < 0 || dist[i] > dist[far])) far = i;
            taken[far] = 1;
            for (int32_t j = 0; j < d; j++) C[(int64_t)c * d + j] = X[far * d + j];
        }
        if (!changed && !empty) break;
        memcpy(prev, lab, (size_t)n * sizeof(int32_t));
        st = fl_progress(ctx, "k-means", it, max_iter, NAN, NAN);
        if (st) goto done;
    }
    assign(X, n, d, k, C, lab, dist, nt); /* labels of the final centres */
    double in = 0;
    for (int64_t i = 0; i < n; i++) in += dist[i];
    memcpy(centers, C, (size_t)k * d * sizeof(double));
    memcpy(labels, lab, (size_t)n * sizeof(int32_t));
    if (inertia) *inertia = in;
    if (iterations) *iterations = it;
done:
    fl_free(dist);
    fl_free(C);
    fl_free(cnt);
    fl_free(lab);
    fl_free(prev);
    fl_free(taken);
    return st;
}

/* ---- Gaussian mixture -------------------------------------------------------------------------- */

void fl_gmm_config_default(fl_gmm_config *c)
{
    memset(c, 0, sizeof *c);
    c->k = 2;
    c->max_iter = 100;
    c->tol = 1e-3;
    c->reg_covar = 1e-6;
    c->seed = 1;
    c->kmeans_iter = 300;
}

void fl_gmm_result_free(fl_gmm_result *r)
{
    if (!r) return;
    fl_free(r->weights);
    fl_free(r->means);
    fl_free(r->covariances);
    fl_free(r->labels);
    memset(r, 0, sizeof *r);
}

/* M-step from responsibilities R (n x k): weights, means, covariances (+ reg on the diagonal). */
static void m_step(const float *X, int64_t n, int32_t d, int32_t k, const double *R, double reg, double *wts,
                   double *mu, double *cov, int nt)
{
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (int32_t c = 0; c < k; c++) {
        double nk = 0;
        double *m = mu + (int64_t)c * d, *S = cov + (int64_t)c * d * d;
        for (int32_t j = 0; j < d; j++) m[j] = 0;
        for (int64_t i = 0; i < n; i++) {
            const double r = R[i * k + c];
            nk += r;
            for (int32_t j = 0; j < d; j++) m[j] += r * X[i * d + j];
        }
        nk += 10 * DBL_EPSILON;
        for (int32_t j = 0; j < d; j++) m[j] /= nk;
        memset(S, 0, (size_t)d * d * sizeof(double));
        double diff[d];
        for (int64_t i = 0; i < n; i++) {
            const double r = R[i * k + c];
            if (r == 0) continue;
            for (int32_t j = 0; j < d; j++) diff[j] = (double)X[i * d + j] - m[j];
            for (int32_t a = 0; a < d; a++) {
                const double ra = r * diff[a];
                for (int32_t b = a; b < d; b++) S[(int64_t)a * d + b] += ra * diff[b];
            }
        }
        for (int32_t a = 0; a < d; a++)
            for (int32_t b = a; b < d; b++) {
                const double v = S[(int64_t)a * d + b] / nk + (a == b ? reg : 0.0);
                S[(int64_t)a * d + b] = v;
                S[(int64_t)b * d + a] = v;
            }
        wts[c] = nk / (double)n;
    }
}

/* E-step: R (n x k) = responsibilities, returns the mean log-likelihood in *mean_ll. L (k x d x d) is
 * scratch for the Cholesky factors, lpn (n) for the per-sample log-likelihoods. */
static fl_status e_step(fl_ctx *ctx, const float *X, int64_t n, int32_t d, int32_t k, const double *wts,
                        const double *mu, const double *cov, double *L, double *R, double *lpn, double *mean_ll)
{
    double logdet[k];
    for (int32_t c = 0; c < k; c++) {
        double *Lc = L + (int64_t)c * d * d;
        memcpy(Lc, cov + (int64_t)c * d * d, (size_t)d * d * sizeof(double));
        lapack_int info = LAPACKE_dpotrf(LAPACK_ROW_MAJOR, 'L', d, Lc, d);
        if (info != 0)
            return fl_fail(ctx, FL_EINVAL,
                           "Gaussian mixture: the covariance of component %d is not positive definite (collapsed onto "
                           "too few distinct samples); use fewer components or a larger covariance regularisation",
                           (int)c + 1);
        double s = 0;
        for (int32_t j = 0; j < d; j++) s += log(Lc[(int64_t)j * d + j]);
        logdet[c] = 2 * s;
    }
    const int nt = fl_ctx_threads(ctx);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; i++) {
        double y[d], lp[k];
        double mx = -INFINITY;
        for (int32_t c = 0; c < k; c++) {
            const double *Lc = L + (int64_t)c * d * d, *m = mu + (int64_t)c * d;
            double q = 0;
            for (int32_t a = 0; a < d; a++) {
                double v = (double)X[i * d + a] - m[a];
                for (int32_t b = 0; b < a; b++) v -= Lc[(int64_t)a * d + b] * y[b];
                y[a] = v / Lc[(int64_t)a * d + a];
                q += y[a] * y[a];
            }
            lp[c] = log(wts[c]) - 0.5 * (d * LOG_2PI + q + logdet[c]);
            if (lp[c] > mx) mx = lp[c];
        }
        double s = 0;
        for (int32_t c = 0; c < k; c++) s += exp(lp[c] - mx);
        const double norm = mx + log(s);
        lpn[i] = norm;
        for (int32_t c = 0; c < k; c++) R[i * k + c] = exp(lp[c] - norm);
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += lpn[i];
    *mean_ll = s / (double)n;
    if (!isfinite(*mean_ll))
        return fl_fail(ctx, FL_EINVAL, "Gaussian mixture: the log-likelihood is not finite (degenerate data?)");
    return FL_OK;
}

fl_status fl_gmm_fit(fl_ctx *ctx, const float *X, int64_t n, int32_t d, const fl_gmm_config *cfg, fl_gmm_result *out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "Gaussian mixture: no result structure");
    memset(out, 0, sizeof *out);
    if (!cfg) return fl_fail(ctx, FL_EINVAL, "Gaussian mixture: no configuration");
    const int32_t k = cfg->k;
    fl_status st = fl_an_check(ctx, "Gaussian mixture", X, n, d, k);
    if (st) return st;
    if (d > 4096) return fl_fail(ctx, FL_EINVAL, "Gaussian mixture: %d dimensions are too many (at most 4096)", (int)d);
    if (cfg->max_iter < 1)
        return fl_fail(ctx, FL_EINVAL, "Gaussian mixture: max_iter must be at least 1 (got %d)", (int)cfg->max_iter);
    if (cfg->kmeans_iter < 1)
        return fl_fail(ctx, FL_EINVAL, "Gaussian mixture: kmeans_iter must be at least 1 (got %d)", (int)cfg->kmeans_iter);
    if (!(cfg->tol >= 0) || !isfinite(cfg->tol)) return fl_fail(ctx, FL_EINVAL, "Gaussian mixture: tol must be >= 0");
    if (!(cfg->reg_covar >= 0) || !isfinite(cfg->reg_covar))
        return fl_fail(ctx, FL_EINVAL, "Gaussian mixture: reg_covar must be >= 0");
    size_t kdd;
    if (!fl_mul_size((size_t)k * d, (size_t)d, &kdd)) return fl_fail(ctx, FL_EINVAL, "Gaussian mixture: too large");
    st = fl_check_budget(ctx, ((size_t)n * (k + 2) + kdd * 2 + (size_t)k * (d + 1)) * sizeof(double) + (size_t)n * 4,
                         "Gaussian mixture");
    if (st) return st;

    fl_gmm_result r = {.n = n, .d = d, .k = k};
    r.weights = fl_alloc((size_t)k * sizeof(double));
    r.means = fl_alloc((size_t)k * d * sizeof(double));
    r.covariances = fl_alloc(kdd * sizeof(double));
    r.labels = fl_alloc((size_t)n * sizeof(int32_t));
    double *R = fl_calloc((size_t)n * k, sizeof(double)), *L = fl_alloc(kdd * sizeof(double));
    double *lpn = fl_alloc((size_t)n * sizeof(double));
    if (!r.weights || !r.means || !r.covariances || !r.labels || !R || !L || !lpn) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for a %d-component Gaussian mixture of %lld samples", (int)k,
                     (long long)n);
        goto done;
    }
    st = fl_kmeans(ctx, X, n, d, k, cfg->kmeans_iter, cfg->seed, r.means, r.labels, NULL, NULL);
    if (st) goto done;
    for (int64_t i = 0; i < n; i++) R[i * k + r.labels[i]] = 1.0;
    const int nt = fl_ctx_threads(ctx);
    m_step(X, n, d, k, R, cfg->reg_covar, r.weights, r.means, r.covariances, nt);

    double lb = -INFINITY;
    int32_t it = 0;
    while (it < cfg->max_iter) {
        const double prev = lb;
        st = e_step(ctx, X, n, d, k, r.weights, r.means, r.covariances, L, R, lpn, &lb);
        if (st) goto done;
        m_step(X, n, d, k, R, cfg->reg_covar, r.weights, r.means, r.covariances, nt);
        it++;
        st = fl_progress(ctx, "em", it, cfg->max_iter, -lb, NAN);
        if (st) goto done;
        if (fabs(lb - prev) < cfg->tol) {
            r.converged = 1;
            break;
        }
    }
    r.iterations = it;
    r.lower_bound = lb;
    double ll;
    st = e_step(ctx, X, n, d, k, r.weights, r.means, r.covariances, L, R, lpn, &ll);
    if (st) goto done;
    r.mean_log_likelihood = ll;
    r.log_likelihood = 0;
    for (int64_t i = 0; i < n; i++) r.log_likelihood += lpn[i];
    for (int64_t i = 0; i < n; i++) {
        int32_t arg = 0;
        for (int32_t c = 1; c < k; c++)
            if (R[i * k + c] > R[i * k + arg]) arg = c;
        r.labels[i] = arg;
    }
done:
    fl_free(R);
    fl_free(L);
    fl_free(lpn);
    if (st) fl_gmm_result_free(&r);
    else *out = r;
    return st;
}

/* ---- nearest samples --------------------------------------------------------------------------- */

typedef struct dist_idx {
    double d;
    int64_t i;
} dist_idx;

static int cmp_dist_idx(const void *a, const void *b)
{
    const dist_idx *x = a, *y = b;
    if (x->d < y->d) return -1;
    if (x->d > y->d) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

fl_status fl_nearest_samples(fl_ctx *ctx, const float *X, int64_t n, int32_t d, const double *point,
                             const uint8_t *valid, int64_t count, int64_t *idx, int64_t *found)
{
    /* only the rows the mask keeps must be finite (e.g. im2spec's latent maps are NaN at the frame edge) */
    if (!valid) {
        fl_status st = fl_an_check(ctx, "nearest samples", X, n, d, 1);
        if (st) return st;
    } else if (!X || n < 1 || d < 1 || n > INT64_MAX / d) {
        return fl_fail(ctx, FL_EINVAL, "nearest samples: no data, or %lld x %d values", (long long)n, (int)d);
    }
    for (int64_t i = 0; valid && i < n; i++)
        for (int32_t j = 0; valid[i] && j < d; j++)
            if (!isfinite(X[i * d + j]))
                return fl_fail(ctx, FL_EINVAL, "nearest samples: sample %lld (kept by the mask) is NaN or infinite",
                               (long long)i);
    if (!point || !idx || !found) return fl_fail(ctx, FL_EINVAL, "nearest samples: missing point or output");
    if (count < 1) return fl_fail(ctx, FL_EINVAL, "nearest samples: the count must be at least 1 (got %lld)", (long long)count);
    for (int32_t j = 0; j < d; j++)
        if (!isfinite(point[j])) return fl_fail(ctx, FL_EINVAL, "nearest samples: the query point is not finite");
    int64_t m = 0;
    for (int64_t i = 0; i < n; i++) m += !valid || valid[i];
    dist_idx *v = fl_alloc((size_t)(m ? m : 1) * sizeof(dist_idx));
    if (!v) return fl_fail(ctx, FL_ENOMEM, "out of memory for a nearest-sample query");
    for (int64_t i = 0, p = 0; i < n; i++)
        if (!valid || valid[i]) v[p++].i = i;
    const int nt = fl_ctx_threads(ctx);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t p = 0; p < m; p++) v[p].d = sqdist(X + v[p].i * d, point, d);
    qsort(v, (size_t)m, sizeof *v, cmp_dist_idx);
    const int64_t f = count < m ? count : m;
    for (int64_t p = 0; p < f; p++) idx[p] = v[p].i;
    *found = f;
    fl_free(v);
    return FL_OK;
}
