/* Synthetic I(V) grid at charged domain walls: the toy model is described in iv_grid.h. */
#include "synth/iv_grid.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PI_D 3.14159265358979323846

/* RNG streams (purpose in the top byte, index below). */
#define STREAM_LAYOUT ((uint64_t)1 << 56)
#define STREAM_WALL ((uint64_t)2 << 56)
#define STREAM_PIXEL ((uint64_t)3 << 56)

#define WIGGLE_SIGMA 4.0 /* rows: correlation length of the random wall displacement */
#define ROW_PAD 8        /* walls are traced this many rows beyond the image so edge distances are right */

void fl_synth_iv_params_default(fl_synth_iv_params *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->width = 64;
    p->height = 64;
    p->points = 64;
    p->vmax = 5.0;
    p->noise = 0.02;
    p->seed = 1;
    p->period = 16.0;
    p->meander_amplitude = 3.0;
    p->meander_wavelength = 48.0;
    p->wiggle = 0.8;
    p->wall_width = 1.5;
    p->domain_contrast = 0.3;
    p->tt_amplitude = 0.8;
    p->hh_suppression = 1.0;
    p->gain_jitter = 0.05;
    p->offset_jitter = 0.005;
    p->pixel_size = 0.05;
}

/* ---- curve shapes on the reduced bias u = V / vmax ------------------------------------------- */
static double bulk_u(double u) { return exp(u / 0.25) - exp(-u / 0.32); }

static double softplus_h(double x)
{
    const double s = 0.08;
    double z = x / s;
    return s * (z > 30.0 ? z : log1p(exp(z)));
}

static double tt_shape(double u)
{
    return (softplus_h(u - 0.15) - 0.6 * softplus_h(-u - 0.15)) / softplus_h(0.85);
}

/* Head-to-head wall: a depleted barrier in series with the contact limits the current to about
 * I_sat; the fraction of the bulk current it removes, |I_b| / (I_sat + |I_b|), is small at low bias
 * and large at high bias. I_sat = HH_SAT * R. */
#define HH_SAT 0.1
static double hh_fraction(double ib, double R) { return fabs(ib) / (HH_SAT * R + fabs(ib)); }

/* ---- parameter checks ---------------------------------------------------------------------------- */
static int finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

static fl_status check_params(fl_ctx *ctx, const fl_synth_iv_params *p)
{
    if (!p) return fl_fail(ctx, FL_EINVAL, "synth iv-grid: no parameters given");
    if (p->width < 2 || p->width > 65536 || p->height < 2 || p->height > 65536)
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: width and height must be between 2 and 65536 pixels (got %lld x %lld)",
                       (long long)p->width, (long long)p->height);
    if (p->points < 8 || p->points > 100000)
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: points per curve must be between 8 and 100000 (got %d)", (int)p->points);
    if (!finite_in(p->vmax, 1e-6, 1e6))
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: the bias range vmax must be a positive number of volts (got %g)", p->vmax);
    if (!finite_in(p->noise, 0.0, 10.0))
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: noise must be between 0 and 10 (fraction of the curve range; got %g)", p->noise);
    if (!finite_in(p->period, 4.0, 1e6))
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: the wall spacing (period) must be at least 4 pixels (got %g)", p->period);
    if (!finite_in(p->wall_width, 0.1, p->period))
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: the wall width must be between 0.1 pixel and the wall spacing (got %g)", p->wall_width);
    if (!finite_in(p->meander_amplitude, 0.0, 1e6) || !finite_in(p->meander_wavelength, 1.0, 1e9) ||
        !finite_in(p->wiggle, 0.0, 1e6))
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: meander amplitude and wiggle must be >= 0 and the meander wavelength >= 1 pixel");
    if (!finite_in(p->domain_contrast, 0.0, 0.99) || !finite_in(p->tt_amplitude, 0.0, 100.0) ||
        !finite_in(p->hh_suppression, 0.0, 1.0))
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: domain contrast must be in [0, 0.99], TT amplitude in [0, 100], HH suppression in [0, 1]");
    if (!finite_in(p->gain_jitter, 0.0, 2.0) || !finite_in(p->offset_jitter, 0.0, 10.0))
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: gain jitter must be in [0, 2] and offset jitter in [0, 10]");
    if (!finite_in(p->pixel_size, 1e-12, 1e12))
        return fl_fail(ctx, FL_EINVAL, "synth iv-grid: the pixel size must be a positive number of micrometres (got %g)", p->pixel_size);
    return FL_OK;
}

/* ---- wall geometry ----------------------------------------------------------------------------- */
typedef struct walls {
    int64_t count;    /* K */
    int64_t rows;     /* traced rows: y = -ROW_PAD .. height - 1 + ROW_PAD */
    double *x;        /* K x rows: x_k(y) at row index r = y + ROW_PAD */
    double *xmin, *xmax;
    int *is_tt;       /* 1: tail-to-tail, 0: head-to-head */
    int sign0;        /* P of the leftmost domain */
} walls;

static void walls_free(walls *w)
{
    fl_free(w->x);
    fl_free(w->xmin);
    fl_free(w->xmax);
    fl_free(w->is_tt);
    memset(w, 0, sizeof *w);
}

static fl_status walls_make(fl_ctx *ctx, const fl_synth_iv_params *p, walls *w)
{
    memset(w, 0, sizeof *w);
    fl_rng lr;
    fl_rng_init(&lr, p->seed, STREAM_LAYOUT);
    double s = p->period * fl_rng_uniform(&lr);
    w->sign0 = (fl_rng_u32(&lr) & 1u) ? 1 : -1;
    /* walls at x0 = s - period + k period, while x0 < width + period */
    int64_t K = (int64_t)floor(((double)p->width + 2.0 * p->period - s) / p->period) + 1;
    while (K > 0 && s - p->period + (double)(K - 1) * p->period >= (double)p->width + p->period) K--;
    if (K < 1) K = 1;
    w->count = K;
    w->rows = p->height + 2 * ROW_PAD;
    int krad = (int)ceil(3.0 * WIGGLE_SIGMA);
    int64_t raw_n = w->rows + 2 * krad;
    size_t xn;
    if (!fl_mul_size((size_t)K, (size_t)w->rows, &xn)) return fl_fail(ctx, FL_ENOMEM, "synth iv-grid: image too large");
    w->x = fl_alloc(xn * sizeof(double));
    w->xmin = fl_alloc((size_t)K * sizeof(double));
    w->xmax = fl_alloc((size_t)K * sizeof(double));
    w->is_tt = fl_alloc((size_t)K * sizeof(int));
    double *raw = fl_alloc((size_t)raw_n * sizeof(double));
    double kern[64];
    if (!w->x || !w->xmin || !w->xmax || !w->is_tt || !raw || 2 * krad + 1 > 64) {
        fl_free(raw);
        walls_free(w);
        return fl_fail(ctx, FL_ENOMEM, "synth iv-grid: out of memory for the wall geometry");
    }
    /* smoothing kernel normalised to unit energy: smoothed white noise has unit variance */
    double e = 0.0;
    for (int i = -krad; i <= krad; i++) {
        kern[i + krad] = exp(-0.5 * (i / WIGGLE_SIGMA) * (i / WIGGLE_SIGMA));
        e += kern[i + krad] * kern[i + krad];
    }
    for (int i = 0; i <= 2 * krad; i++) kern[i] /= sqrt(e);

    for (int64_t k = 0; k < K; k++) {
        fl_rng r;
        fl_rng_init(&r, p->seed, STREAM_WALL + (uint64_t)k);
        double amp = p->meander_amplitude * (0.7 + 0.6 * fl_rng_uniform(&r));
        double phi = 2.0 * PI_D * fl_rng_uniform(&r);
        for (int64_t i = 0; i < raw_n; i++) raw[i] = fl_rng_normal(&r);
        double x0 = s - p->period + (double)k * p->period;
        double *xk = w->x + k * w->rows;
        for (int64_t ri = 0; ri < w->rows; ri++) {
            double y = (double)(ri - ROW_PAD);
            double xi = 0.0;
            for (int i = 0; i <= 2 * krad; i++) xi += kern[i] * raw[ri + i];
            xk[ri] = x0 + amp * sin(2.0 * PI_D * y / p->meander_wavelength + phi) + p->wiggle * xi;
        }
        /* left domain of wall k has P = sign0 (-1)^k: +P|-P is head-to-head, -P|+P tail-to-tail */
        int left = (k % 2 == 0) ? w->sign0 : -w->sign0;
        w->is_tt[k] = left < 0;
    }
    fl_free(raw);
    /* keep the walls ordered and apart */
    double gap = p->period / 4.0;
    for (int64_t k = 1; k < K; k++) {
        double *xa = w->x + (k - 1) * w->rows, *xb = w->x + k * w->rows;
        for (int64_t ri = 0; ri < w->rows; ri++)
            if (xb[ri] < xa[ri] + gap) xb[ri] = xa[ri] + gap;
    }
    for (int64_t k = 0; k < K; k++) {
        const double *xk = w->x + k * w->rows;
        double lo = xk[0], hi = xk[0];
        for (int64_t ri = 1; ri < w->rows; ri++) {
            if (xk[ri] < lo) lo = xk[ri];
            if (xk[ri] > hi) hi = xk[ri];
        }
        w->xmin[k] = lo;
        w->xmax[k] = hi;
    }
    return FL_OK;
}

/* squared distance from (px, py) to the segment (ax, ay)-(bx, by) */
static double seg_d2(double px, double py, double ax, double ay, double bx, double by)
{
    double dx = bx - ax, dy = by - ay;
    double L = dx * dx + dy * dy;
    double t = L > 0.0 ? ((px - ax) * dx + (py - ay) * dy) / L : 0.0;
    if (t < 0.0) t = 0.0;
    if (t > 1.0) t = 1.0;
    double ex = ax + t * dx - px, ey = ay + t * dy - py;
    return ex * ex + ey * ey;
}

/* squared distance from pixel (x, y) to wall k's polyline, searching rows near y */
static double wall_d2(const walls *w, int64_t k, double x, int64_t y)
{
    const double *xk = w->x + k * w->rows;
    int64_t r0 = y + ROW_PAD;
    double dx = x - xk[r0];
    double best = dx * dx;
    for (int64_t dr = 0;; dr++) {
        /* segments (r0 + dr, r0 + dr + 1) and (r0 - dr - 1, r0 - dr) are at least dr rows away */
        if ((double)dr * (double)dr > best) break;
        int64_t ra = r0 + dr, rb = r0 - dr - 1;
        int any = 0;
        if (ra + 1 < w->rows) {
            double d = seg_d2(x, (double)y, xk[ra], (double)(ra - ROW_PAD), xk[ra + 1], (double)(ra + 1 - ROW_PAD));
            if (d < best) best = d;
            any = 1;
        }
        if (rb >= 0) {
            double d = seg_d2(x, (double)y, xk[rb], (double)(rb - ROW_PAD), xk[rb + 1], (double)(rb + 1 - ROW_PAD));
            if (d < best) best = d;
            any = 1;
        }
        if (!any) break;
    }
    return best;
}

/* ---- the grid ---------------------------------------------------------------------------------- */
fl_status fl_synth_iv_grid(fl_ctx *ctx, const fl_synth_iv_params *p, fl_image *curves_out, fl_image *truth_out)
{
    if (!curves_out || !truth_out) return fl_fail(ctx, FL_EINVAL, "synth iv-grid: no output images given");
    fl_image_init(curves_out);
    fl_image_init(truth_out);
    fl_status st = check_params(ctx, p);
    if (st != FL_OK) return st;

    const int64_t W = p->width, H = p->height;
    const int32_t T = p->points;
    const int64_t npix = W * H;
    double *shape = NULL;
    walls wl;
    memset(&wl, 0, sizeof wl);

    st = fl_image_alloc(ctx, curves_out, W, H, 1, T, 1);
    if (st == FL_OK) st = fl_image_alloc(ctx, truth_out, W, H, 1, 3, 1);
    if (st != FL_OK) goto fail;
    st = walls_make(ctx, p, &wl);
    if (st != FL_OK) goto fail;

    /* per-point shapes: bulk, domain factor, TT, HH */
    shape = fl_alloc((size_t)T * 4 * sizeof(double));
    if (!shape) {
        st = fl_fail(ctx, FL_ENOMEM, "synth iv-grid: out of memory");
        goto fail;
    }
    const double R = bulk_u(1.0) - bulk_u(-1.0);
    for (int32_t j = 0; j < T; j++) {
        double u = -1.0 + 2.0 * (double)j / (double)(T - 1);
        shape[4 * j + 0] = bulk_u(u);
        shape[4 * j + 1] = tanh(u / 0.2);
        shape[4 * j + 2] = tt_shape(u);
        shape[4 * j + 3] = hh_fraction(shape[4 * j + 0], R);
    }

    /* truth maps */
    float *dom = truth_out->data, *mtt = truth_out->data + npix, *mhh = truth_out->data + 2 * npix;
    const double w2 = 2.0 * p->wall_width * p->wall_width;
    const double cut = 8.0 * p->wall_width;
#pragma omp parallel for schedule(static) num_threads(fl_ctx_threads(ctx))
    for (int64_t y = 0; y < H; y++) {
        for (int64_t x = 0; x < W; x++) {
            int64_t right_of = 0;
            double dtt = INFINITY, dhh = INFINITY;
            for (int64_t k = 0; k < wl.count; k++) {
                if ((double)x > wl.x[k * wl.rows + y + ROW_PAD]) right_of++;
                if ((double)x < wl.xmin[k] - cut || (double)x > wl.xmax[k] + cut) continue;
                double d2 = wall_d2(&wl, k, (double)x, y);
                if (wl.is_tt[k]) {
                    if (d2 < dtt) dtt = d2;
                } else if (d2 < dhh) {
                    dhh = d2;
                }
            }
            int P = (right_of % 2 == 0) ? wl.sign0 : -wl.sign0;
            int64_t n = x + W * y;
            dom[n] = (float)P;
            mtt[n] = isfinite(dtt) ? (float)exp(-dtt / w2) : 0.0f;
            mhh[n] = isfinite(dhh) ? (float)exp(-dhh / w2) : 0.0f;
        }
    }

    /* curves: one RNG stream per pixel */
    float *cv = curves_out->data;
#pragma omp parallel for schedule(static) num_threads(fl_ctx_threads(ctx))
    for (int64_t n = 0; n < npix; n++) {
        fl_rng r;
        fl_rng_init(&r, p->seed, STREAM_PIXEL + (uint64_t)n);
        double g = exp(p->gain_jitter * fl_rng_normal(&r));
        double off = p->offset_jitter * R * fl_rng_normal(&r);
        double P = dom[n], tt = mtt[n], hh = mhh[n];
        for (int32_t j = 0; j < T; j++) {
            const double *s = shape + 4 * j;
            /* the HH barrier removes the fraction a_hh m_hh S of the local (domain) current, so the
             * current never flows against the bias */
            double local = s[0] * (1.0 + p->domain_contrast * P * s[1]);
            double I = local * (1.0 - p->hh_suppression * hh * s[3]) + p->tt_amplitude * tt * R * s[2];
            I = g * I + off + p->noise * R * fl_rng_normal(&r);
            cv[(int64_t)j * npix + n] = (float)I;
        }
    }

    /* calibration and labels */
    const double step = 2.0 * p->vmax / (double)(T - 1);
    curves_out->pixel_width = curves_out->pixel_height = p->pixel_size;
    curves_out->pixel_depth = step;
    snprintf(curves_out->unit, sizeof curves_out->unit, "um");
    truth_out->pixel_width = truth_out->pixel_height = p->pixel_size;
    truth_out->pixel_depth = 1.0;
    snprintf(truth_out->unit, sizeof truth_out->unit, "um");
    for (int32_t j = 0; j < T && st == FL_OK; j++) {
        double v = -p->vmax + step * (double)j;
        if (fabs(v) < 1e-9 * p->vmax) v = 0.0;
        char lab[64];
        snprintf(lab, sizeof lab, "%.3f V", v);
        if (strcmp(lab, "-0.000 V") == 0) snprintf(lab, sizeof lab, "0.000 V");
        st = fl_image_set_label(ctx, curves_out, j, lab);
    }
    if (st == FL_OK) st = fl_image_set_label(ctx, truth_out, FL_SYNTH_IV_TRUTH_DOMAIN, "domain P");
    if (st == FL_OK) st = fl_image_set_label(ctx, truth_out, FL_SYNTH_IV_TRUTH_TT, "tail-to-tail wall");
    if (st == FL_OK) st = fl_image_set_label(ctx, truth_out, FL_SYNTH_IV_TRUTH_HH, "head-to-head wall");
    if (st != FL_OK) goto fail;

    fl_free(shape);
    walls_free(&wl);
    return FL_OK;

fail:
    fl_free(shape);
    walls_free(&wl);
    fl_image_free(curves_out);
    fl_image_free(truth_out);
    fl_image_init(curves_out);
    fl_image_init(truth_out);
    return st;
}
