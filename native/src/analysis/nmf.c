/* NMF with multiplicative updates (Lee & Seung 2001, Frobenius loss), following
 * sklearn.decomposition.NMF(solver="mu", beta_loss="frobenius"): nndsvda or random initialisation,
 * W updated before H, convergence checked every 10 iterations. Everything is computed in double; every
 * sum runs over samples in index order inside one thread, so results do not depend on the thread count. */
#include "analysis/nmf.h"
#include "analysis/pca.h"

#include <math.h>
#include <string.h>

void fl_nmf_config_default(fl_nmf_config *c)
{
    memset(c, 0, sizeof *c);
    c->k = 2;
    c->init = FL_NMF_INIT_NNDSVDA;
    c->max_iter = 200;
    c->tol = 1e-4;
    c->seed = 1;
    c->shift = 0;
}

void fl_nmf_result_free(fl_nmf_result *r)
{
    if (!r) return;
    fl_free(r->W);
    fl_free(r->H);
    memset(r, 0, sizeof *r);
}

/* NNDSVD (Boutsidis & Gallopoulos 2008) from the top-k singular triplets of X' = X - shift, the singular
 * vectors from the eigen-decomposition of X'^T X' (d x d, see pca.c for why); zeros are then filled
 * with mean(X') ("nndsvda"). */
static fl_status init_nndsvda(fl_ctx *ctx, const float *X, int64_t n, int32_t d, int32_t k, double shift, double xmean,
                              double *W, double *H)
{
    double *G = fl_alloc((size_t)d * d * sizeof(double)), *V = fl_alloc((size_t)d * d * sizeof(double));
    double *w = fl_alloc((size_t)d * sizeof(double)), *U = fl_alloc((size_t)n * k * sizeof(double));
    double *sh = fl_alloc((size_t)d * sizeof(double));
    fl_status st = FL_OK;
    if (!G || !V || !w || !U || !sh) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for the NMF initialisation");
        goto done;
    }
    for (int32_t j = 0; j < d; j++) sh[j] = shift;
    st = fl_an_gram(ctx, X, n, d, sh, G);
    if (!st) st = fl_an_sym_eig(ctx, G, d, w, V);
    if (st) goto done;
    double *S = w; /* singular values of X' */
    for (int32_t c = 0; c < k; c++) S[c] = w[c] > 0 ? sqrt(w[c]) : 0.0;
    const int nt = fl_ctx_threads(ctx);
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; i++)
        for (int32_t c = 0; c < k; c++) {
            double s = 0;
            for (int32_t j = 0; j < d; j++) s += ((double)X[i * d + j] - shift) * V[(int64_t)c * d + j];
            U[i * k + c] = S[c] > 0 ? s / S[c] : 0.0;
        }
    for (int32_t c = 0; c < k; c++) {
        const double *v = V + (int64_t)c * d;
        if (c == 0) {
            const double r = sqrt(S[0]);
            for (int64_t i = 0; i < n; i++) W[i * k] = r * fabs(U[i * k]);
            for (int32_t j = 0; j < d; j++) H[j] = r * fabs(v[j]);
            continue;
        }
        double xp = 0, xn = 0, yp = 0, yn = 0;
        for (int64_t i = 0; i < n; i++) {
            const double u = U[i * k + c];
            if (u > 0) xp += u * u;
            else xn += u * u;
        }
        for (int32_t j = 0; j < d; j++) {
            if (v[j] > 0) yp += v[j] * v[j];
            else yn += v[j] * v[j];
        }
        xp = sqrt(xp), xn = sqrt(xn), yp = sqrt(yp), yn = sqrt(yn);
        const double mp = xp * yp, mn = xn * yn;
        const int pos = mp > mn;
        const double nu = pos ? xp : xn, nv = pos ? yp : yn, sigma = pos ? mp : mn;
        const double lbd = sqrt(S[c] * sigma);
        for (int64_t i = 0; i < n; i++) {
            const double u = U[i * k + c];
            const double part = pos ? (u > 0 ? u : 0) : (u < 0 ? -u : 0);
            W[i * k + c] = nu > 0 ? lbd * part / nu : 0.0;
        }
        for (int32_t j = 0; j < d; j++) {
            const double part = pos ? (v[j] > 0 ? v[j] : 0) : (v[j] < 0 ? -v[j] : 0);
            H[(int64_t)c * d + j] = nv > 0 ? lbd * part / nv : 0.0;
        }
    }
    /* sklearn: values below eps = 1e-6 are zeroed, then zeros become the mean ("a" variant) */
    for (int64_t i = 0; i < n * k; i++)
        if (W[i] < 1e-6) W[i] = xmean;
    for (int64_t i = 0; i < (int64_t)k * d; i++)
        if (H[i] < 1e-6) H[i] = xmean;
done:
    fl_free(G);
    fl_free(V);
    fl_free(w);
    fl_free(U);
    fl_free(sh);
    return st;
}

/* ||X' - W H||_F with per-sample sums added in sample order. */
static double frob_error(const float *X, int64_t n, int32_t d, int32_t k, double shift, const double *W,
                         const double *H, double *rowbuf, int nt)
{
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int64_t i = 0; i < n; i++) {
        double e = 0;
        for (int32_t j = 0; j < d; j++) {
            double r = (double)X[i * d + j] - shift;
            for (int32_t c = 0; c < k; c++) r -= W[i * k + c] * H[(int64_t)c * d + j];
            e += r * r;
        }
        rowbuf[i] = e;
    }
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += rowbuf[i];
    return sqrt(s);
}

fl_status fl_nmf(fl_ctx *ctx, const float *X, int64_t n, int32_t d, const fl_nmf_config *cfg, fl_nmf_result *out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "NMF: no result structure");
    memset(out, 0, sizeof *out);
    if (!cfg) return fl_fail(ctx, FL_EINVAL, "NMF: no configuration");
    const int32_t k = cfg->k;
    fl_status st = fl_an_check(ctx, "NMF", X, n, d, k);
    if (st) return st;
    if (cfg->max_iter < 1) return fl_fail(ctx, FL_EINVAL, "NMF: max_iter must be at least 1 (got %d)", (int)cfg->max_iter);
    if (!(cfg->tol >= 0) || !isfinite(cfg->tol)) return fl_fail(ctx, FL_EINVAL, "NMF: tol must be a finite number >= 0");
    if (cfg->init != FL_NMF_INIT_NNDSVDA && cfg->init != FL_NMF_INIT_RANDOM)
        return fl_fail(ctx, FL_EINVAL, "NMF: unknown initialisation %d", (int)cfg->init);
    if (cfg->init == FL_NMF_INIT_NNDSVDA && k > d)
        return fl_fail(ctx, FL_EINVAL,
                       "NMF: the nndsvda initialisation allows at most %d components (the number of features); "
                       "use the random initialisation for %d",
                       (int)d, (int)k);
    /* negative values */
    const int64_t nd = n * (int64_t)d;
    int64_t argmin = 0, nneg = 0;
    double sum = 0;
    for (int64_t i = 0; i < nd; i++) {
        if (X[i] < X[argmin]) argmin = i;
        nneg += X[i] < 0;
        sum += X[i];
    }
    double shift = 0;
    if (nneg && !cfg->shift)
        return fl_fail(ctx, FL_EINVAL,
                       "NMF needs non-negative data, but %lld value(s) are negative (minimum %g at sample %lld, feature "
                       "%lld); ask for a shift (--shift) to subtract the global minimum first",
                       (long long)nneg, (double)X[argmin], (long long)(argmin / d), (long long)(argmin % d));
    if (cfg->shift && X[argmin] < 0) shift = X[argmin];
    const double xmean = sum / (double)nd - shift;

    size_t bytes = ((size_t)n * k * 2 + (size_t)k * d * 3 + (size_t)n) * sizeof(double);
    st = fl_check_budget(ctx, bytes, "NMF");
    if (st) return st;
    double *W = fl_alloc((size_t)n * k * sizeof(double)), *H = fl_alloc((size_t)k * d * sizeof(double));
    double *WtX = fl_alloc((size_t)k * d * sizeof(double)), *rowbuf = fl_alloc((size_t)n * sizeof(double));
    double *HHt = fl_alloc((size_t)k * k * sizeof(double)), *WtW = fl_alloc((size_t)k * k * sizeof(double));
    fl_nmf_result r = {.n = n, .d = d, .k = k, .shift = shift};
    r.W = fl_alloc((size_t)n * k * sizeof(float));
    r.H = fl_alloc((size_t)k * d * sizeof(float));
    if (!W || !H || !WtX || !rowbuf || !HHt || !WtW || !r.W || !r.H) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for NMF of %lld x %d values", (long long)n, (int)d);
        goto done;
    }
    if (cfg->init == FL_NMF_INIT_NNDSVDA) {
        st = init_nndsvda(ctx, X, n, d, k, shift, xmean, W, H);
        if (st) goto done;
    } else {
        const double avg = sqrt(xmean / k);
        fl_rng rng;
        fl_rng_init(&rng, cfg->seed, 0);
        for (int64_t i = 0; i < (int64_t)k * d; i++) H[i] = avg * fabs((double)fl_rng_normal(&rng));
        fl_rng_init(&rng, cfg->seed, 1);
        for (int64_t i = 0; i < n * k; i++) W[i] = avg * fabs((double)fl_rng_normal(&rng));
    }

    const int nt = fl_ctx_threads(ctx);
    const double err0 = frob_error(X, n, d, k, shift, W, H, rowbuf, nt);
    double prev = err0;
    int32_t it = 0, converged = 0;
    if (err0 == 0) converged = 1;
    while (!converged && it < cfg->max_iter) {
        /* W <- W * (X H^T) / (W H H^T) */
        for (int32_t a = 0; a < k; a++)
            for (int32_t b = 0; b < k; b++) {
                double s = 0;
                for (int32_t j = 0; j < d; j++) s += H[(int64_t)a * d + j] * H[(int64_t)b * d + j];
                HHt[a * k + b] = s;
            }
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t i = 0; i < n; i++) {
            double num[k], den[k];
            for (int32_t c = 0; c < k; c++) {
                double s = 0, t = 0;
                for (int32_t j = 0; j < d; j++) s += ((double)X[i * d + j] - shift) * H[(int64_t)c * d + j];
                for (int32_t b = 0; b < k; b++) t += W[i * k + b] * HHt[b * k + c];
                num[c] = s;
                den[c] = t == 0 ? FL_NMF_EPSILON : t;
            }
            for (int32_t c = 0; c < k; c++) W[i * k + c] *= num[c] / den[c];
        }
        /* H <- H * (W^T X) / (W^T W H) */
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int32_t a = 0; a < k; a++)
            for (int32_t b = 0; b < k; b++) {
                double s = 0;
                for (int64_t i = 0; i < n; i++) s += W[i * k + a] * W[i * k + b];
                WtW[a * k + b] = s;
            }
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int32_t j = 0; j < d; j++) {
            double acc[k];
            for (int32_t c = 0; c < k; c++) acc[c] = 0;
            for (int64_t i = 0; i < n; i++) {
                const double x = (double)X[i * d + j] - shift;
                for (int32_t c = 0; c < k; c++) acc[c] += W[i * k + c] * x;
            }
            for (int32_t c = 0; c < k; c++) WtX[(int64_t)c * d + j] = acc[c];
        }
        for (int32_t c = 0; c < k; c++)
            for (int32_t j = 0; j < d; j++) {
                double t = 0;
                for (int32_t b = 0; b < k; b++) t += WtW[c * k + b] * H[(int64_t)b * d + j];
                WtX[(int64_t)c * d + j] /= (t == 0 ? FL_NMF_EPSILON : t);
            }
        for (int64_t i = 0; i < (int64_t)k * d; i++) H[i] *= WtX[i];
        it++;
        if (cfg->tol > 0 && it % 10 == 0) {
            const double e = frob_error(X, n, d, k, shift, W, H, rowbuf, nt);
            if ((prev - e) / err0 < cfg->tol) converged = 1;
            prev = e;
            st = fl_progress(ctx, "nmf", it, cfg->max_iter, e, NAN);
            if (st) goto done;
        }
    }
    r.iterations = it;
    r.converged = converged;
    r.reconstruction_err = frob_error(X, n, d, k, shift, W, H, rowbuf, nt);
    {
        double xx = 0;
        for (int64_t i = 0; i < nd; i++) xx += ((double)X[i] - shift) * ((double)X[i] - shift);
        r.relative_err = xx > 0 ? r.reconstruction_err / sqrt(xx) : 0.0;
    }
    for (int64_t i = 0; i < n * k; i++) r.W[i] = (float)W[i];
    for (int64_t i = 0; i < (int64_t)k * d; i++) r.H[i] = (float)H[i];
done:
    fl_free(W);
    fl_free(H);
    fl_free(WtX);
    fl_free(rowbuf);
    fl_free(HHt);
    fl_free(WtW);
    if (st) fl_nmf_result_free(&r);
    else *out = r;
    return st;
}
