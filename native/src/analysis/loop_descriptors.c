/* Hysteresis-loop descriptors (definitions in ferrolens/loops.h). */
#include "analysis/loop_descriptors.h"

#include <math.h>
#include <omp.h>
#include <string.h>

static const char *const desc_labels[FL_LOOP_NDESC] = {
    "V+ (V)", "V- (V)", "imprint (V)", "width (V)", "area (V*a.u.)", "nucleation+ (V)", "nucleation- (V)",
    "R+ (a.u.)", "R- (a.u.)", "saturation (a.u.)", "offset (a.u.)"};
static const char *const desc_names[FL_LOOP_NDESC] = {"V+", "V-", "imprint", "width", "area", "nucleation+",
                                                       "nucleation-", "R+", "R-", "saturation", "offset"};

const char *fl_loop_desc_label(int k) { return k >= 0 && k < FL_LOOP_NDESC ? desc_labels[k] : NULL; }
const char *fl_loop_desc_name(int k) { return k >= 0 && k < FL_LOOP_NDESC ? desc_names[k] : NULL; }

void fl_loop_desc_to_array(const fl_loop_desc *d, double out[FL_LOOP_NDESC])
{
    out[FL_LOOP_V_PLUS] = d->v_plus;
    out[FL_LOOP_V_MINUS] = d->v_minus;
    out[FL_LOOP_IMPRINT] = d->imprint;
    out[FL_LOOP_WIDTH] = d->width;
    out[FL_LOOP_AREA] = d->area;
    out[FL_LOOP_NUC_PLUS] = d->nuc_plus;
    out[FL_LOOP_NUC_MINUS] = d->nuc_minus;
    out[FL_LOOP_REM_PLUS] = d->rem_plus;
    out[FL_LOOP_REM_MINUS] = d->rem_minus;
    out[FL_LOOP_SATURATION] = d->saturation;
    out[FL_LOOP_OFFSET] = d->offset;
}

/* ---- area ------------------------------------------------------------------------------------ */
/* |shoelace area| relative to the first point (same area, less cancellation), for double and float
 * input: one body, the float values are widened to double */
#define LOOP_AREA(NAME, T)                                                                                  \
    double NAME(const T *v, const T *r, int64_t n)                                                         \
    {                                                                                                      \
        if (!v || !r) return NAN;                                                                          \
        for (int64_t i = 0; i < n; i++)                                                                    \
            if (!isfinite(v[i]) || !isfinite(r[i])) return NAN;                                            \
        if (n < 3) return 0.0;                                                                             \
        double s = 0.0;                                                                                    \
        const double x0 = v[0], y0 = r[0];                                                                 \
        for (int64_t i = 1; i + 1 < n; i++) {                                                              \
            double ax = (double)v[i] - x0, ay = (double)r[i] - y0;                                         \
            double bx = (double)v[i + 1] - x0, by = (double)r[i + 1] - y0;                                 \
            s += ax * by - bx * ay;                                                                        \
        }                                                                                                  \
        return fabs(0.5 * s);                                                                              \
    }
LOOP_AREA(fl_loop_area_d, double)
LOOP_AREA(fl_loop_area, float)
#undef LOOP_AREA

/* ---- sweep ----------------------------------------------------------------------------------- */
fl_status fl_loop_sweep_d(fl_ctx *ctx, const double *v, int64_t n, fl_loop_sweep *sw)
{
    if (!v || !sw) return fl_fail(ctx, FL_EINVAL, "loop descriptors: no bias values given");
    if (n < FL_LOOP_MIN_POINTS)
        return fl_fail(ctx, FL_EINVAL, "a hysteresis loop needs at least %d points (got %lld)", FL_LOOP_MIN_POINTS, (long long)n);
    int64_t imin = 0, imax = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(v[i]))
            return fl_fail(ctx, FL_EINVAL, "bias value %lld of the loop is not a finite number", (long long)(i + 1));
        if (v[i] < v[imin]) imin = i;
        if (v[i] > v[imax]) imax = i;
    }
    if (!(v[imax] > v[imin]))
        return fl_fail(ctx, FL_EINVAL, "the bias is constant (%g V): a hysteresis loop needs a triangle sweep", v[imin]);
    /* rising from the minimum to the maximum, cyclically */
    for (int64_t i = imin; i != imax; i = (i + 1) % n) {
        int64_t j = (i + 1) % n;
        if (v[j] < v[i])
            return fl_fail(ctx, FL_EINVAL,
                           "the bias values are not a triangle sweep: between the minimum (%g at point %lld) and the maximum "
                           "(%g at point %lld) the bias falls from %g to %g (points %lld -> %lld)",
                           v[imin], (long long)(imin + 1), v[imax], (long long)(imax + 1), v[i], v[j], (long long)(i + 1),
                           (long long)(j + 1));
    }
    for (int64_t i = imax; i != imin; i = (i + 1) % n) {
        int64_t j = (i + 1) % n;
        if (v[j] > v[i])
            return fl_fail(ctx, FL_EINVAL,
                           "the bias values are not a triangle sweep: between the maximum (%g at point %lld) and the minimum "
                           "(%g at point %lld) the bias rises from %g to %g (points %lld -> %lld)",
                           v[imax], (long long)(imax + 1), v[imin], (long long)(imin + 1), v[i], v[j], (long long)(i + 1),
                           (long long)(j + 1));
    }
    sw->imin = imin;
    sw->imax = imax;
    sw->n = n;
    return FL_OK;
}

fl_status fl_loop_check_sweep(fl_ctx *ctx, const float *v, int64_t n)
{
    if (!v) return fl_fail(ctx, FL_EINVAL, "loop descriptors: no bias values given");
    if (n < FL_LOOP_MIN_POINTS)
        return fl_fail(ctx, FL_EINVAL, "a hysteresis loop needs at least %d points (got %lld)", FL_LOOP_MIN_POINTS, (long long)n);
    if (n > (int64_t)(SIZE_MAX / 64)) return fl_fail(ctx, FL_EINVAL, "the loop is too long (%lld points)", (long long)n);
    double *d = fl_alloc((size_t)n * sizeof(double));
    if (!d) return fl_fail(ctx, FL_ENOMEM, "out of memory for a loop of %lld points", (long long)n);
    for (int64_t i = 0; i < n; i++) d[i] = v[i];
    fl_loop_sweep sw;
    fl_status st = fl_loop_sweep_d(ctx, d, n, &sw);
    fl_free(d);
    return st;
}

/* ---- one branch ------------------------------------------------------------------------------ */

/* Zero crossing of a branch (bv, br: L points in acquisition order). Returns the bias (NaN if none)
 * and the acquisition direction of the chosen crossing (+1 up, -1 down) in *dir_out. cross holds L
 * doubles, dirs L ints worth of doubles. */
static double branch_crossing(const double *bv, const double *br, int64_t L, double *cross, double *cdir, int *dir_out)
{
    double d = br[L - 1] - br[0];
    int want = d > 0.0 ? 1 : (d < 0.0 ? -1 : 0);
    int64_t m = 0;
    for (int64_t i = 0; i + 1 < L; i++) {
        double a = br[i], b = br[i + 1];
        int dir = 0;
        if (a <= 0.0 && b > 0.0) dir = 1;
        else if (a >= 0.0 && b < 0.0) dir = -1;
        if (dir == 0 || (want != 0 && dir != want)) continue;
        double x = a == 0.0 ? bv[i] : bv[i] + (a / (a - b)) * (bv[i + 1] - bv[i]);
        /* insertion into ascending bias order */
        int64_t k = m++;
        while (k > 0 && cross[k - 1] > x) {
            cross[k] = cross[k - 1];
            cdir[k] = cdir[k - 1];
            k--;
        }
        cross[k] = x;
        cdir[k] = dir;
    }
    *dir_out = 0;
    if (m == 0) return NAN;
    int64_t mid = (m - 1) / 2;
    *dir_out = cdir[mid] > 0 ? 1 : -1;
    return cross[mid];
}

/* d2r/dv2 at point i from the least-squares parabola through points i-2..i+2 (clipped to the branch);
 * NaN when fewer than 3 points or a degenerate window (repeated biases). */
static double branch_curvature(const double *bv, const double *br, int64_t L, int64_t i)
{
    int64_t a = i - 2 < 0 ? 0 : i - 2, b = i + 2 > L - 1 ? L - 1 : i + 2;
    if (b - a + 1 < 3) return NAN;
    double h = 0.0;
    for (int64_t j = a; j <= b; j++) {
        double x = fabs(bv[j] - bv[i]);
        if (x > h) h = x;
    }
    if (!(h > 0.0)) return NAN;
    /* normal equations in x' = (v - v_i)/h: sums of x'^k (k = 0..4) and x'^k r (k = 0..2) */
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, t0 = 0, t1 = 0, t2 = 0;
    for (int64_t j = a; j <= b; j++) {
        double x = (bv[j] - bv[i]) / h, x2 = x * x, y = br[j];
        s0 += 1.0;
        s1 += x;
        s2 += x2;
        s3 += x2 * x;
        s4 += x2 * x2;
        t0 += y;
        t1 += x * y;
        t2 += x2 * y;
    }
    /* Cramer's rule for c2 of [[s0 s1 s2][s1 s2 s3][s2 s3 s4]] c = [t0 t1 t2] */
    double det = s0 * (s2 * s4 - s3 * s3) - s1 * (s1 * s4 - s3 * s2) + s2 * (s1 * s3 - s2 * s2);
    if (!(fabs(det) > 1e-9 * s0 * s0 * s0)) return NAN;
    double det2 = s0 * (s2 * t2 - s3 * t1) - s1 * (s1 * t2 - s3 * t0) + t0 * (s1 * s3 - s2 * s2);
    double c2 = det2 / det;
    return 2.0 * c2 / (h * h);
}

/* Bias of the largest dir * d2r/dv2 among the points acquired before the crossing at vc. */
static double branch_nucleation(const double *bv, const double *br, int64_t L, double vc, int dir)
{
    if (!isfinite(vc) || dir == 0) return NAN;
    double best = -INFINITY, at = NAN;
    for (int64_t i = 0; i < L; i++) {
        /* acquired before the crossing: the branch runs up (bv rising) or down */
        int rising = bv[L - 1] > bv[0];
        if (rising ? !(bv[i] < vc) : !(bv[i] > vc)) break;
        double c = branch_curvature(bv, br, L, i);
        if (!isfinite(c)) continue;
        c *= (double)dir;
        if (c > best) {
            best = c;
            at = bv[i];
        }
    }
    return at;
}

/* Response at v = 0 along a branch monotone in v; NaN if the branch does not span 0. */
static double branch_at_zero(const double *bv, const double *br, int64_t L)
{
    for (int64_t i = 0; i + 1 < L; i++) {
        double a = bv[i], b = bv[i + 1];
        if ((a <= 0.0 && b >= 0.0) || (a >= 0.0 && b <= 0.0)) {
            if (a == b) return br[i];
            double t = (0.0 - a) / (b - a);
            return br[i] + t * (br[i + 1] - br[i]);
        }
    }
    if (L == 1 && bv[0] == 0.0) return br[0];
    return NAN;
}

void fl_loop_desc_d(const double *v, const double *r, const fl_loop_sweep *sw, double *scratch, fl_loop_desc *out)
{
    const int64_t n = sw->n;
    double *fv = scratch, *fr = fv + (n + 2), *rv = fr + (n + 2), *rr = rv + (n + 2), *cross = rr + (n + 2),
           *cdir = cross + (n + 2);
    int64_t Lf = 0, Lr = 0;
    for (int64_t i = sw->imin;; i = (i + 1) % n) {
        fv[Lf] = v[i];
        fr[Lf++] = r[i];
        if (i == sw->imax) break;
    }
    for (int64_t i = sw->imax;; i = (i + 1) % n) {
        rv[Lr] = v[i];
        rr[Lr++] = r[i];
        if (i == sw->imin) break;
    }
    int dplus = 0, dminus = 0;
    out->v_plus = branch_crossing(fv, fr, Lf, cross, cdir, &dplus);
    out->v_minus = branch_crossing(rv, rr, Lr, cross, cdir, &dminus);
    out->imprint = 0.5 * (out->v_plus + out->v_minus);
    out->width = out->v_plus - out->v_minus;
    out->area = fl_loop_area_d(v, r, n);
    out->nuc_plus = branch_nucleation(fv, fr, Lf, out->v_plus, dplus);
    out->nuc_minus = branch_nucleation(rv, rr, Lr, out->v_minus, dminus);
    out->rem_plus = branch_at_zero(fv, fr, Lf);
    out->rem_minus = branch_at_zero(rv, rr, Lr);
    const double vmin = v[sw->imin], vmax = v[sw->imax], band = 0.1 * (vmax - vmin);
    double hi = 0.0, lo = 0.0;
    int64_t nhi = 0, nlo = 0;
    for (int64_t i = 0; i < n; i++) {
        if (v[i] >= vmax - band) hi += r[i], nhi++;
        if (v[i] <= vmin + band) lo += r[i], nlo++;
    }
    hi /= (double)nhi; /* nhi, nlo >= 1: the extremes themselves */
    lo /= (double)nlo;
    out->saturation = 0.5 * (hi - lo);
    out->offset = 0.5 * (hi + lo);
}

fl_status fl_loop_descriptors(fl_ctx *ctx, const float *v, const float *r, int64_t n, fl_loop_desc *out)
{
    if (!v || !r || !out) return fl_fail(ctx, FL_EINVAL, "loop descriptors: missing argument");
    if (n < FL_LOOP_MIN_POINTS)
        return fl_fail(ctx, FL_EINVAL, "a hysteresis loop needs at least %d points (got %lld)", FL_LOOP_MIN_POINTS, (long long)n);
    if (n > (int64_t)(SIZE_MAX / 128)) return fl_fail(ctx, FL_EINVAL, "the loop is too long (%lld points)", (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(r[i]))
            return fl_fail(ctx, FL_EINVAL, "response %lld of the loop is not a finite number", (long long)(i + 1));
    size_t need = 2 * (size_t)n + FL_LOOP_SCRATCH(n);
    double *buf = fl_alloc(need * sizeof(double));
    if (!buf) return fl_fail(ctx, FL_ENOMEM, "out of memory for a loop of %lld points", (long long)n);
    double *dv = buf, *dr = buf + n;
    for (int64_t i = 0; i < n; i++) {
        dv[i] = v[i];
        dr[i] = r[i];
    }
    fl_loop_sweep sw;
    fl_status st = fl_loop_sweep_d(ctx, dv, n, &sw);
    if (st == FL_OK) fl_loop_desc_d(dv, dr, &sw, buf + 2 * n, out);
    fl_free(buf);
    return st;
}

#define GRID_BLOCK 4096

fl_status fl_loop_descriptors_grid(fl_ctx *ctx, const float *v, const float *curves, int64_t npix, int64_t n, float *out)
{
    if (!v || !curves || !out) return fl_fail(ctx, FL_EINVAL, "loop descriptors: missing argument");
    if (npix < 1) return fl_fail(ctx, FL_EINVAL, "loop descriptors: no loops given");
    if (n < FL_LOOP_MIN_POINTS)
        return fl_fail(ctx, FL_EINVAL, "a hysteresis loop needs at least %d points (got %lld)", FL_LOOP_MIN_POINTS, (long long)n);
    size_t cells;
    if (n > (int64_t)(SIZE_MAX / 128) || !fl_mul_size((size_t)npix, (size_t)n, &cells))
        return fl_fail(ctx, FL_EINVAL, "loop descriptors: the grid is too large");
    for (size_t i = 0; i < cells; i++)
        if (!isfinite(curves[i])) {
            int64_t p = (int64_t)(i / (size_t)n), k = (int64_t)(i % (size_t)n);
            return fl_fail(ctx, FL_EINVAL, "loop %lld (0-based pixel index) has a non-finite response at point %lld",
                           (long long)p, (long long)(k + 1));
        }
    const int threads = fl_ctx_threads(ctx);
    const size_t per = (size_t)n + FL_LOOP_SCRATCH(n); /* r + scratch per thread */
    size_t bytes;
    if (!fl_mul_size(per * sizeof(double), (size_t)threads, &bytes) || bytes > SIZE_MAX - (size_t)n * sizeof(double))
        return fl_fail(ctx, FL_ENOMEM, "loop descriptors: the loops are too long");
    bytes += (size_t)n * sizeof(double);
    fl_status st = fl_check_budget(ctx, bytes, "loop descriptors");
    if (st != FL_OK) return st;
    double *buf = fl_alloc(bytes);
    if (!buf) return fl_fail(ctx, FL_ENOMEM, "out of memory for the loop descriptors (%.1f MiB)", bytes / 1048576.0);
    double *dv = buf + (size_t)threads * per;
    for (int64_t i = 0; i < n; i++) dv[i] = v[i];
    fl_loop_sweep sw;
    st = fl_loop_sweep_d(ctx, dv, n, &sw);
    for (int64_t b0 = 0; st == FL_OK && b0 < npix; b0 += GRID_BLOCK) {
        int64_t b1 = b0 + GRID_BLOCK < npix ? b0 + GRID_BLOCK : npix;
#pragma omp parallel for schedule(static) num_threads(threads)
        for (int64_t p = b0; p < b1; p++) {
            double *mine = buf + (size_t)omp_get_thread_num() * per;
            const float *src = curves + (size_t)p * (size_t)n;
            for (int64_t i = 0; i < n; i++) mine[i] = src[i];
            fl_loop_desc d;
            fl_loop_desc_d(dv, mine, &sw, mine + n, &d);
            double dd[FL_LOOP_NDESC];
            fl_loop_desc_to_array(&d, dd);
            for (int k = 0; k < FL_LOOP_NDESC; k++) out[(size_t)p * FL_LOOP_NDESC + (size_t)k] = (float)dd[k];
        }
        st = fl_progress(ctx, "loops", b1, npix, NAN, NAN);
    }
    fl_free(buf);
    return st;
}
