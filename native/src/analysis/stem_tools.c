/* 4D-STEM tools: centre of mass, virtual detectors, mean patterns, NCC comparison (FFTW).
 * Every tool streams the source through fl_stem4d_foreach, so it works on files larger than memory.
 * Results do not depend on the thread count or the batch size: per-pattern values are computed by one
 * thread each, and sums over patterns run in pattern order per detector pixel. */
#include "analysis/stem_tools.h"
#include "io/stem4d.h"

#include <fftw3.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t fftw_mutex = PTHREAD_MUTEX_INITIALIZER;
void fl_stem_fftw_lock(void) { pthread_mutex_lock(&fftw_mutex); }
void fl_stem_fftw_unlock(void) { pthread_mutex_unlock(&fftw_mutex); }

static int nthreads(const fl_ctx *ctx) { return ctx && ctx->threads > 0 ? ctx->threads : 1; }

/* centre of binned pixel j in original detector pixels */
static double centre(int64_t j, int32_t bin) { return (double)j * bin + 0.5 * (bin - 1); }

void fl_stem_com_params_default(fl_stem_com_params *p)
{
    memset(p, 0, sizeof *p);
    p->bin = 1;
    p->hist_bins = 128;
}

void fl_stem_pattern_com(const float *pat, int64_t bw, int64_t bh, const fl_stem_com_params *p, double *cx, double *cy)
{
    const int32_t bin = p->bin;
    const double thr = p->threshold > 0 ? p->threshold : 0.0, r2 = p->mask_r * p->mask_r;
    const int masked = p->mask_r > 0;
    double s = 0, sx = 0, sy = 0;
    for (int64_t j = 0; j < bh; j++) {
        const double y = centre(j, bin);
        double rs = 0, rx = 0;
        for (int64_t i = 0; i < bw; i++) {
            double v = pat[j * bw + i];
            if (!(v == v)) continue; /* NaN pixels do not count */
            if (thr > 0) v = v > thr ? v - thr : 0.0;
            const double x = centre(i, bin);
            if (masked) {
                const double dx = x - p->mask_cx, dy = y - p->mask_cy;
                if (dx * dx + dy * dy > r2) continue;
            }
            rs += v;
            rx += v * x;
        }
        s += rs;
        sx += rx;
        sy += rs * y;
    }
    if (s != 0 && isfinite(s)) {
        *cx = sx / s;
        *cy = sy / s;
    } else {
        *cx = NAN;
        *cy = NAN;
    }
}

/* ---- sums over patterns (mean patterns) -------------------------------------------------------- */

/* acc[j] += sum over selected patterns of the batch, in pattern order, parallel over pixels. */
static void accumulate(const fl_ctx *ctx, double *acc, const float *pats, int64_t first, int64_t count, int64_t npx,
                       const float *select)
{
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
    for (int64_t j = 0; j < npx; j++) {
        double a = acc[j];
        for (int64_t k = 0; k < count; k++)
            if (!select || select[first + k] != 0) a += pats[k * npx + j];
        acc[j] = a;
    }
}

/* ---- COM ------------------------------------------------------------------------------------------ */

typedef struct com_job {
    const fl_stem_com_params *p;
    double *cx, *cy, *acc;
} com_job;

static fl_status com_batch(fl_ctx *ctx, void *user, int64_t first, int64_t count, const float *pats, int64_t bw, int64_t bh)
{
    com_job *j = user;
    const int64_t npx = bw * bh;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
    for (int64_t k = 0; k < count; k++)
        fl_stem_pattern_com(pats + k * npx, bw, bh, j->p, &j->cx[first + k], &j->cy[first + k]);
    accumulate(ctx, j->acc, pats, first, count, npx, NULL);
    return FL_OK;
}

void fl_stem_com_result_free(fl_stem_com_result *r)
{
    if (!r) return;
    fl_free(r->com_x);
    fl_free(r->com_y);
    fl_free(r->magnitude);
    fl_free(r->direction);
    fl_free(r->hist);
    fl_free(r->mean_pattern);
    memset(r, 0, sizeof *r);
}

fl_status fl_stem_com(fl_ctx *ctx, fl_stem4d *src, const fl_stem_com_params *p, fl_stem_com_result *out)
{
    if (!out || !p) return fl_fail(ctx, FL_EINVAL, "fl_stem_com: no parameters or output");
    memset(out, 0, sizeof *out);
    int64_t bw = 0, bh = 0;
    fl_status st = fl_stem4d_check_bin(ctx, src, p->bin, &bw, &bh);
    if (st) return st;
    if (!isfinite(p->threshold) || !isfinite(p->mask_cx) || !isfinite(p->mask_cy) || !isfinite(p->mask_r) ||
        !isfinite(p->hist_range) || p->hist_range < 0)
        return fl_fail(ctx, FL_EINVAL, "COM: threshold, mask and histogram range must be finite numbers");
    int32_t hb = p->hist_bins ? p->hist_bins : 128;
    if (hb < 2 || hb > 4096) return fl_fail(ctx, FL_EINVAL, "COM: histogram bins must be between 2 and 4096 (got %d)", (int)hb);
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    const int64_t n = info.patterns, npx = bw * bh;
    size_t need = (size_t)n * (2 * sizeof(double) + 4 * sizeof(float)) + (size_t)npx * (sizeof(double) + sizeof(float)) +
                  (size_t)hb * hb * sizeof(float);
    if ((st = fl_check_budget(ctx, need, "the centre-of-mass maps"))) return st;
    double *cx = fl_alloc((size_t)n * sizeof(double)), *cy = fl_alloc((size_t)n * sizeof(double));
    double *acc = fl_calloc((size_t)npx, sizeof(double));
    out->com_x = fl_alloc((size_t)n * sizeof(float));
    out->com_y = fl_alloc((size_t)n * sizeof(float));
    out->magnitude = fl_alloc((size_t)n * sizeof(float));
    out->direction = fl_alloc((size_t)n * sizeof(float));
    out->hist = fl_calloc((size_t)hb * hb, sizeof(float));
    out->mean_pattern = fl_alloc((size_t)npx * sizeof(float));
    if (!cx || !cy || !acc || !out->com_x || !out->com_y || !out->magnitude || !out->direction || !out->hist ||
        !out->mean_pattern) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for the centre-of-mass maps");
        goto done;
    }
    com_job job = {p, cx, cy, acc};
    if ((st = fl_stem4d_foreach(ctx, src, 0, p->bin, com_batch, &job))) goto done;
    for (int64_t j = 0; j < npx; j++) out->mean_pattern[j] = (float)(acc[j] / (double)n);
    fl_stem_pattern_com(out->mean_pattern, bw, bh, p, &out->ref_x, &out->ref_y);
    if (!isfinite(out->ref_x)) {
        st = fl_fail(ctx, FL_EINVAL, "COM: the mean pattern has no intensity inside the mask above the threshold");
        goto done;
    }
    double range = p->hist_range;
    int64_t finite = 0;
    for (int64_t i = 0; i < n; i++) {
        double x = cx[i] - out->ref_x, y = cy[i] - out->ref_y;
        out->com_x[i] = (float)x;
        out->com_y[i] = (float)y;
        out->magnitude[i] = (float)sqrt(x * x + y * y);
        double a = atan2(y, x);
        out->direction[i] = (float)(p->degrees ? a * (180.0 / M_PI) : a);
        if (isfinite(x) && isfinite(y)) {
            finite++;
            if (p->hist_range <= 0) range = fmax(range, fmax(fabs(x), fabs(y)));
        }
    }
    if (!(range > 0)) range = 1;
    for (int64_t i = 0; i < n; i++) {
        double x = out->com_x[i], y = out->com_y[i];
        if (!isfinite(x) || !isfinite(y) || fabs(x) > range || fabs(y) > range) continue;
        int64_t ix = (int64_t)floor((x + range) / (2 * range) * hb), iy = (int64_t)floor((y + range) / (2 * range) * hb);
        if (ix >= hb) ix = hb - 1;
        if (iy >= hb) iy = hb - 1;
        if (ix < 0) ix = 0;
        if (iy < 0) iy = 0;
        out->hist[iy * hb + ix] += 1.0f;
    }
    (void)finite;
    out->scan_x = info.scan_x;
    out->scan_y = info.scan_y;
    out->hist_bins = hb;
    out->hist_range = range;
    out->pattern_w = bw;
    out->pattern_h = bh;
done:
    fl_free(cx);
    fl_free(cy);
    fl_free(acc);
    if (st) fl_stem_com_result_free(out);
    return st;
}

/* ---- virtual detectors ---------------------------------------------------------------------------- */

typedef struct vdf_job {
    const float *w; /* weights, bw x bh */
    double wsum;
    int mean;
    float *out;
} vdf_job;

static fl_status vdf_batch(fl_ctx *ctx, void *user, int64_t first, int64_t count, const float *pats, int64_t bw, int64_t bh)
{
    vdf_job *j = user;
    const int64_t npx = bw * bh;
#pragma omp parallel for num_threads(nthreads(ctx)) schedule(static)
    for (int64_t k = 0; k < count; k++) {
        const float *pt = pats + k * npx;
        double s = 0;
        for (int64_t i = 0; i < npx; i++)
            if (j->w[i] != 0) s += (double)j->w[i] * pt[i];
        j->out[first + k] = (float)(j->mean ? s / j->wsum : s);
    }
    return FL_OK;
}

fl_status fl_stem_vdf(fl_ctx *ctx, fl_stem4d *src, const fl_stem_vdf_params *p, float *out)
{
    if (!p || !out) return fl_fail(ctx, FL_EINVAL, "fl_stem_vdf: no parameters or output");
    int64_t bw = 0, bh = 0;
    fl_status st = fl_stem4d_check_bin(ctx, src, p->bin, &bw, &bh);
    if (st) return st;
    const int64_t npx = bw * bh;
    if (p->shape == FL_VDF_RECT) {
        if (!isfinite(p->x) || !isfinite(p->y) || !isfinite(p->w) || !isfinite(p->h) || p->w <= 0 || p->h <= 0)
            return fl_fail(ctx, FL_EINVAL, "virtual detector: the rectangle needs finite x, y and a positive width and height");
    } else if (p->shape == FL_VDF_ANNULUS) {
        if (!isfinite(p->cx) || !isfinite(p->cy) || !isfinite(p->r_in) || !isfinite(p->r_out) || p->r_in < 0 ||
            p->r_out < p->r_in)
            return fl_fail(ctx, FL_EINVAL, "virtual detector: the annulus needs finite cx, cy and 0 <= r_in <= r_out");
    } else if (p->shape == FL_VDF_MASK) {
        if (!p->mask) return fl_fail(ctx, FL_EINVAL, "virtual detector: no mask given");
    } else {
        return fl_fail(ctx, FL_EINVAL, "virtual detector: unknown shape %d", (int)p->shape);
    }
    if ((st = fl_check_budget(ctx, (size_t)npx * sizeof(float), "the virtual detector mask"))) return st;
    float *w = fl_alloc((size_t)npx * sizeof(float));
    if (!w) return fl_fail(ctx, FL_ENOMEM, "out of memory for the virtual detector mask");
    double wsum = 0;
    int64_t nonzero = 0;
    for (int64_t j = 0; j < bh && !st; j++)
        for (int64_t i = 0; i < bw; i++) {
            const double x = centre(i, p->bin), y = centre(j, p->bin);
            float v;
            if (p->shape == FL_VDF_RECT) {
                v = x >= p->x && x < p->x + p->w && y >= p->y && y < p->y + p->h;
            } else if (p->shape == FL_VDF_ANNULUS) {
                const double r = hypot(x - p->cx, y - p->cy);
                v = r >= p->r_in && r <= p->r_out;
            } else {
                v = p->mask[j * bw + i];
                if (!isfinite(v)) {
                    st = fl_fail(ctx, FL_EINVAL, "virtual detector: the mask has a non-finite value at (%lld, %lld)",
                                 (long long)i, (long long)j);
                    break;
                }
            }
            w[j * bw + i] = v;
            wsum += v;
            nonzero += v != 0;
        }
    if (!st && nonzero == 0)
        st = fl_fail(ctx, FL_EINVAL, "virtual detector: the aperture contains no detector pixel of the %lld x %lld (binned) pattern",
                     (long long)bw, (long long)bh);
    if (!st && p->mean && wsum == 0)
        st = fl_fail(ctx, FL_EINVAL, "virtual detector: the mask weights sum to 0, so no mean can be taken");
    if (!st) {
        vdf_job job = {w, wsum, p->mean != 0, out};
        st = fl_stem4d_foreach(ctx, src, 0, p->bin, vdf_batch, &job);
    }
    fl_free(w);
    return st;
}

/* ---- mean patterns and comparison ----------------------------------------------------------------- */

typedef struct mean_job {
    const float *sel[2];
    double *acc[2];
    int k;
} mean_job;

static fl_status mean_batch(fl_ctx *ctx, void *user, int64_t first, int64_t count, const float *pats, int64_t bw, int64_t bh)
{
    mean_job *j = user;
    for (int i = 0; i < j->k; i++) accumulate(ctx, j->acc[i], pats, first, count, bw * bh, j->sel[i]);
    return FL_OK;
}

static fl_status check_select(fl_ctx *ctx, const float *sel, int64_t n, const char *what, int64_t *count)
{
    int64_t c = 0;
    if (!sel) {
        *count = n;
        return FL_OK;
    }
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(sel[i])) return fl_fail(ctx, FL_EINVAL, "%s: non-finite value at scan position %lld", what, (long long)i);
        c += sel[i] != 0;
    }
    if (c == 0) return fl_fail(ctx, FL_EINVAL, "%s selects no scan position", what);
    *count = c;
    return FL_OK;
}

/* Means of k selections (k = 1 or 2) in one pass. */
static fl_status means(fl_ctx *ctx, fl_stem4d *src, int32_t bin, int k, const float *const *sel, const char *const *what,
                       float **outs, int64_t *counts)
{
    int64_t bw = 0, bh = 0;
    fl_status st = fl_stem4d_check_bin(ctx, src, bin, &bw, &bh);
    if (st) return st;
    fl_stem4d_info info;
    fl_stem4d_get_info(src, &info);
    for (int i = 0; i < k; i++)
        if ((st = check_select(ctx, sel[i], info.patterns, what[i], &counts[i]))) return st;
    const int64_t npx = bw * bh;
    if ((st = fl_check_budget(ctx, (size_t)k * npx * sizeof(double), "the mean patterns"))) return st;
    mean_job job = {{sel[0], k > 1 ? sel[1] : NULL}, {NULL, NULL}, k};
    for (int i = 0; i < k; i++) job.acc[i] = fl_calloc((size_t)npx, sizeof(double));
    if (!job.acc[0] || (k > 1 && !job.acc[1])) st = fl_fail(ctx, FL_ENOMEM, "out of memory for the mean patterns");
    if (!st) st = fl_stem4d_foreach(ctx, src, 0, bin, mean_batch, &job);
    if (!st)
        for (int i = 0; i < k; i++)
            for (int64_t j = 0; j < npx; j++) outs[i][j] = (float)(job.acc[i][j] / (double)counts[i]);
    for (int i = 0; i < k; i++) fl_free(job.acc[i]);
    return st;
}

fl_status fl_stem_mean_pattern(fl_ctx *ctx, fl_stem4d *src, int32_t bin, const float *select, float *out, int64_t *count)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_stem_mean_pattern: no output");
    const float *sel[1] = {select};
    const char *what[1] = {"the scan selection"};
    int64_t c = 0;
    fl_status st = means(ctx, src, bin, 1, sel, what, &out, &c);
    if (!st && count) *count = c;
    return st;
}

fl_status fl_stem_ncc(fl_ctx *ctx, const float *a, const float *b, int64_t w, int64_t h, float *ncc, double *peak,
                      int64_t *dx, int64_t *dy)
{
    if (!a || !b || !ncc) return fl_fail(ctx, FL_EINVAL, "fl_stem_ncc: missing pattern or output");
    if (w < 1 || h < 1 || w > 65536 || h > 65536 || w * h < 2)
        return fl_fail(ctx, FL_EINVAL, "cross-correlation: bad pattern size %lld x %lld", (long long)w, (long long)h);
    const int64_t n = w * h, wc = w / 2 + 1, nc = h * wc;
    fl_status st = fl_check_budget(ctx, (size_t)n * 2 * sizeof(float) + (size_t)nc * 2 * sizeof(fftwf_complex), "the cross-correlation");
    if (st) return st;
    double ma = 0, mb = 0, va = 0, vb = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(a[i]) || !isfinite(b[i]))
            return fl_fail(ctx, FL_EINVAL, "cross-correlation: the patterns contain non-finite values");
        ma += a[i];
        mb += b[i];
    }
    ma /= (double)n;
    mb /= (double)n;
    for (int64_t i = 0; i < n; i++) {
        va += (a[i] - ma) * (a[i] - ma);
        vb += (b[i] - mb) * (b[i] - mb);
    }
    if (!(va > 0) || !(vb > 0)) return fl_fail(ctx, FL_EINVAL, "cross-correlation: a pattern is constant (no contrast to correlate)");
    float *ra = fftwf_alloc_real((size_t)n), *rb = fftwf_alloc_real((size_t)n);
    fftwf_complex *fa = fftwf_alloc_complex((size_t)nc), *fb = fftwf_alloc_complex((size_t)nc);
    fftwf_plan pa = NULL, pb = NULL, pi = NULL;
    if (!ra || !rb || !fa || !fb) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for the cross-correlation");
        goto done;
    }
    fl_stem_fftw_lock();
    pa = fftwf_plan_dft_r2c_2d((int)h, (int)w, ra, fa, FFTW_ESTIMATE);
    pb = fftwf_plan_dft_r2c_2d((int)h, (int)w, rb, fb, FFTW_ESTIMATE);
    pi = fftwf_plan_dft_c2r_2d((int)h, (int)w, fa, ra, FFTW_ESTIMATE);
    fl_stem_fftw_unlock();
    if (!pa || !pb || !pi) {
        st = fl_fail(ctx, FL_EINTERNAL, "FFTW could not plan a %lld x %lld transform", (long long)w, (long long)h);
        goto done;
    }
    for (int64_t i = 0; i < n; i++) {
        ra[i] = (float)(a[i] - ma);
        rb[i] = (float)(b[i] - mb);
    }
    fftwf_execute(pa);
    fftwf_execute(pb);
    /* corr(d) = sum_k a(k) b(k + d)  <->  conj(A) B */
    for (int64_t i = 0; i < nc; i++) {
        const float ar = fa[i][0], ai = fa[i][1], br = fb[i][0], bi = fb[i][1];
        fa[i][0] = ar * br + ai * bi;
        fa[i][1] = ar * bi - ai * br;
    }
    fftwf_execute(pi);
    const double norm = 1.0 / ((double)n * sqrt(va * vb)); /* c2r is unnormalised: factor n; n std_a std_b = sqrt(va vb) */
    double best = -INFINITY;
    int64_t bx = 0, by = 0;
    for (int64_t oy = 0; oy < h; oy++)
        for (int64_t ox = 0; ox < w; ox++) {
            const int64_t sy = oy - h / 2, sx = ox - w / 2;
            const int64_t iy = ((sy % h) + h) % h, ix = ((sx % w) + w) % w;
            const double v = ra[iy * w + ix] * norm;
            ncc[oy * w + ox] = (float)v;
            if (v > best) {
                best = v;
                bx = sx;
                by = sy;
            }
        }
    if (peak) *peak = best;
    if (dx) *dx = bx;
    if (dy) *dy = by;
done:
    fl_stem_fftw_lock();
    if (pa) fftwf_destroy_plan(pa);
    if (pb) fftwf_destroy_plan(pb);
    if (pi) fftwf_destroy_plan(pi);
    fl_stem_fftw_unlock();
    fftwf_free(ra);
    fftwf_free(rb);
    fftwf_free(fa);
    fftwf_free(fb);
    return st;
}

void fl_stem_compare_result_free(fl_stem_compare_result *r)
{
    if (!r) return;
    fl_free(r->mean_a);
    fl_free(r->mean_b);
    fl_free(r->ncc);
    fl_free(r->difference);
    memset(r, 0, sizeof *r);
}

fl_status fl_stem_compare(fl_ctx *ctx, fl_stem4d *src, int32_t bin, const float *select_a, const float *select_b,
                          fl_stem_compare_result *out)
{
    if (!out) return fl_fail(ctx, FL_EINVAL, "fl_stem_compare: no output");
    memset(out, 0, sizeof *out);
    if (!select_a || !select_b) return fl_fail(ctx, FL_EINVAL, "compare: two scan selections are needed");
    int64_t bw = 0, bh = 0;
    fl_status st = fl_stem4d_check_bin(ctx, src, bin, &bw, &bh);
    if (st) return st;
    const size_t npx = (size_t)bw * (size_t)bh;
    if ((st = fl_check_budget(ctx, 4 * npx * sizeof(float), "the comparison patterns"))) return st;
    out->mean_a = fl_alloc(npx * sizeof(float));
    out->mean_b = fl_alloc(npx * sizeof(float));
    out->ncc = fl_alloc(npx * sizeof(float));
    out->difference = fl_alloc(npx * sizeof(float));
    if (!out->mean_a || !out->mean_b || !out->ncc || !out->difference) {
        st = fl_fail(ctx, FL_ENOMEM, "out of memory for the comparison patterns");
        goto done;
    }
    const float *sel[2] = {select_a, select_b};
    const char *what[2] = {"selection A", "selection B"};
    float *outs[2] = {out->mean_a, out->mean_b};
    int64_t counts[2] = {0, 0};
    if ((st = means(ctx, src, bin, 2, sel, what, outs, counts))) goto done;
    for (size_t i = 0; i < npx; i++) out->difference[i] = out->mean_a[i] - out->mean_b[i];
    if ((st = fl_stem_ncc(ctx, out->mean_a, out->mean_b, bw, bh, out->ncc, &out->peak, &out->shift_x, &out->shift_y)))
        goto done;
    out->pattern_w = bw;
    out->pattern_h = bh;
    out->count_a = counts[0];
    out->count_b = counts[1];
done:
    if (st) fl_stem_compare_result_free(out);
    return st;
}
