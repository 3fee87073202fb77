/* Synthetic hysteresis-loop grid over a/c domain stripes: the toy model is described in loops_grid.h. */
#include "synth/loops_grid.h"

#include "ferrolens/loops.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PI_D 3.14159265358979323846

#define STREAM_LAYOUT ((uint64_t)1 << 56)
#define STREAM_LAMELLA ((uint64_t)2 << 56)
#define STREAM_PIXEL ((uint64_t)3 << 56)
#define STREAM_STRUCT ((uint64_t)4 << 56)
#define LAMELLA_BIAS ((int64_t)1 << 40) /* lamella index k -> stream k + LAMELLA_BIAS (k may be < 0) */

#define REV_TAU 0.3      /* reduced-bias width of the reversible part */
#define NUC_GRID 401     /* grid of the nucleation search (then refined) */

void fl_synth_loops_params_default(fl_synth_loops_params *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->width = 64;
    p->height = 64;
    p->points = 64;
    p->vmax = 5.0;
    p->noise = 0.03;
    p->period = 16.0;
    p->angle = 30.0;
    p->a_fraction = 0.4;
    p->meander_amplitude = 2.0;
    p->meander_wavelength = 40.0;
    p->wall_width = 2.0;
    p->structure_noise = 0.05;
    p->pixel_size = 0.05;
    p->seed = 1;
}

static int finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

static fl_status check_params(fl_ctx *ctx, const fl_synth_loops_params *p)
{
    if (!p) return fl_fail(ctx, FL_EINVAL, "synth loops: no parameters given");
    if (p->width < 2 || p->width > 65536 || p->height < 2 || p->height > 65536)
        return fl_fail(ctx, FL_EINVAL, "synth loops: width and height must be between 2 and 65536 pixels (got %lld x %lld)",
                       (long long)p->width, (long long)p->height);
    if (p->points < 8 || p->points > 100000 || p->points % 4 != 0)
        return fl_fail(ctx, FL_EINVAL,
                       "synth loops: points per loop must be a multiple of 4 between 8 and 100000, so that the sweep reaches "
                       "+-vmax (got %d)", (int)p->points);
    if (!finite_in(p->vmax, 1e-6, 1e6))
        return fl_fail(ctx, FL_EINVAL, "synth loops: vmax must be a positive number of volts (got %g)", p->vmax);
    if (!finite_in(p->noise, 0.0, 10.0))
        return fl_fail(ctx, FL_EINVAL, "synth loops: noise must be between 0 and 10 (got %g)", p->noise);
    if (!finite_in(p->structure_noise, 0.0, 10.0))
        return fl_fail(ctx, FL_EINVAL, "synth loops: structure noise must be between 0 and 10 (got %g)", p->structure_noise);
    if (!finite_in(p->period, 6.0, 1e5))
        return fl_fail(ctx, FL_EINVAL, "synth loops: the stripe period must be between 6 and 100000 pixels (got %g)", p->period);
    if (!finite_in(p->angle, -360.0, 360.0))
        return fl_fail(ctx, FL_EINVAL, "synth loops: the stripe angle must be between -360 and 360 degrees (got %g)", p->angle);
    if (!finite_in(p->a_fraction, 0.1, 0.9) || p->a_fraction * p->period < 2.0 || (1.0 - p->a_fraction) * p->period < 2.0)
        return fl_fail(ctx, FL_EINVAL,
                       "synth loops: the a-domain fraction must be in [0.1, 0.9] and leave a- and c-domains at least 2 pixels "
                       "wide (got %g of a %g-pixel period)", p->a_fraction, p->period);
    double amax = ((1.0 - p->a_fraction) * p->period - 1.0) / 2.6;
    if (!finite_in(p->meander_amplitude, 0.0, amax))
        return fl_fail(ctx, FL_EINVAL,
                       "synth loops: the meander amplitude must be between 0 and %.3g pixels for this period and a-fraction "
                       "(walls would touch; got %g)", amax, p->meander_amplitude);
    if (!finite_in(p->meander_wavelength, 2.0, 1e9))
        return fl_fail(ctx, FL_EINVAL, "synth loops: the meander wavelength must be at least 2 pixels (got %g)", p->meander_wavelength);
    if (!finite_in(p->wall_width, 0.1, p->period))
        return fl_fail(ctx, FL_EINVAL, "synth loops: the wall width must be between 0.1 pixel and the period (got %g)", p->wall_width);
    if (!finite_in(p->pixel_size, 1e-12, 1e12))
        return fl_fail(ctx, FL_EINVAL, "synth loops: the pixel size must be a positive number of micrometres (got %g)", p->pixel_size);
    return FL_OK;
}

/* ---- geometry -------------------------------------------------------------------------------- */
typedef struct lamellae {
    int64_t k0, count; /* lamella indices k0 .. k0 + count - 1 */
    double s0, period, half, lambda;
    double *amp, *phase;
} lamellae;

static double meander(const lamellae *L, int64_t i, double u)
{
    return L->amp[i] * sin(2.0 * PI_D * u / L->lambda + L->phase[i]);
}

static double meander_slope(const lamellae *L, int64_t i, double u)
{
    return L->amp[i] * (2.0 * PI_D / L->lambda) * cos(2.0 * PI_D * u / L->lambda + L->phase[i]);
}

/* squared distance from (u, s) to the wall s = off + M_i(u') at u' */
static double wall_g(const lamellae *L, int64_t i, double off, double u, double s, double up)
{
    double e = s - off - meander(L, i, up), du = up - u;
    return du * du + e * e;
}

/* nearest point of wall (lamella i, side off) to (u, s) within |u' - u| <= D: returns d^2, sets *ustar */
static double wall_nearest(const lamellae *L, int64_t i, double off, double u, double s, double D, double *ustar)
{
    const double h = 0.05;
    int64_t m = (int64_t)ceil(D / h);
    double best = wall_g(L, i, off, u, s, u), bu = u;
    for (int64_t t = -m; t <= m; t++) {
        double up = u + (double)t * h;
        double g = wall_g(L, i, off, u, s, up);
        if (g < best) best = g, bu = up;
    }
    /* golden-section refinement on [bu - h, bu + h] */
    double a = bu - h, b = bu + h;
    const double gr = 0.6180339887498949;
    double c = b - gr * (b - a), d = a + gr * (b - a), gc = wall_g(L, i, off, u, s, c), gd = wall_g(L, i, off, u, s, d);
    for (int it = 0; it < 40; it++) {
        if (gc < gd) {
            b = d, d = c, gd = gc;
            c = b - gr * (b - a);
            gc = wall_g(L, i, off, u, s, c);
        } else {
            a = c, c = d, gc = gd;
            d = a + gr * (b - a);
            gd = wall_g(L, i, off, u, s, d);
        }
    }
    double um = 0.5 * (a + b), gm = wall_g(L, i, off, u, s, um);
    if (gm < best) best = gm, bu = um;
    *ustar = bu;
    return best;
}

/* ---- loop model -------------------------------------------------------------------------------- */
typedef struct loop_par {
    double vc, imp, amp, sigma, rho, off;
} loop_par;

static loop_par blend(int is_c, double m, double omega)
{
    loop_par d = is_c ? (loop_par){0.40, 0.04, 1.00, 0.06, 0.90, 0.00} : (loop_par){0.55, -0.06, 0.40, 0.10, 0.75, 0.05};
    double co = cos(omega), si = sin(omega);
    loop_par w = {0.22, 0.10 * co + 0.45 * si, 0.65 + 0.15 * co, 0.15, 0.60, -0.05 + 0.08 * co};
    loop_par p;
    p.vc = (1.0 - m) * d.vc + m * w.vc;
    p.imp = (1.0 - m) * d.imp + m * w.imp;
    p.amp = (1.0 - m) * d.amp + m * w.amp;
    p.sigma = (1.0 - m) * d.sigma + m * w.sigma;
    p.rho = (1.0 - m) * d.rho + m * w.rho;
    p.off = (1.0 - m) * d.off + m * w.off;
    return p;
}

/* branch response at reduced bias u; uc = u_plus (forward) or u_minus (reverse) */
static double branch_r(const loop_par *p, double uc, double u)
{
    return p->off + p->amp * (p->rho * tanh((u - uc) / p->sigma) + (1.0 - p->rho) * tanh(u / REV_TAU));
}

/* d2/du2 of the branch */
static double branch_r2(const loop_par *p, double uc, double u)
{
    double x = (u - uc) / p->sigma, y = u / REV_TAU;
    double tx = tanh(x), ty = tanh(y);
    double sx = 1.0 - tx * tx, sy = 1.0 - ty * ty;
    return p->amp * (p->rho * (-2.0 * tx * sx) / (p->sigma * p->sigma) + (1.0 - p->rho) * (-2.0 * ty * sy) / (REV_TAU * REV_TAU));
}

static double logcosh(double x)
{
    double a = fabs(x);
    return a + log1p(exp(-2.0 * a)) - 0.6931471805599453;
}

static double branch_root(const loop_par *p, double uc)
{
    double a = -1.0, b = 1.0, fa = branch_r(p, uc, a), fb = branch_r(p, uc, b);
    if (!(fa < 0.0 && fb > 0.0)) return NAN; /* branches rise with u (amp, rho >= 0) */
    for (int it = 0; it < 200 && b - a > 1e-15; it++) {
        double c = 0.5 * (a + b), fc = branch_r(p, uc, c);
        if (fc > 0.0) b = c;
        else a = c;
    }
    return 0.5 * (a + b);
}

/* argmax of sgn * r'' on [a, b): a grid of NUC_GRID points, then golden-section refinement around the
 * best grid point (r'' is smooth there) */
static double curvature_peak(const loop_par *p, double uc, double a, double b, double sgn)
{
    double h = (b - a) / (NUC_GRID - 1), best = -INFINITY, at = a;
    for (int i = 0; i < NUC_GRID - 1; i++) {
        double u = a + h * i;
        if (sgn < 0.0) u = b - h * i; /* reverse branch: the interval (a, b], a excluded */
        double c = sgn * branch_r2(p, uc, u);
        if (c > best) best = c, at = u;
    }
    double lo = at - h > a ? at - h : a, hi = at + h < b ? at + h : b;
    const double gr = 0.6180339887498949;
    double c1 = hi - gr * (hi - lo), c2 = lo + gr * (hi - lo);
    double g1 = sgn * branch_r2(p, uc, c1), g2 = sgn * branch_r2(p, uc, c2);
    for (int it = 0; it < 50; it++) {
        if (g1 > g2) {
            hi = c2, c2 = c1, g2 = g1;
            c1 = hi - gr * (hi - lo);
            g1 = sgn * branch_r2(p, uc, c1);
        } else {
            lo = c1, c1 = c2, g1 = g2;
            c2 = lo + gr * (hi - lo);
            g2 = sgn * branch_r2(p, uc, c2);
        }
    }
    double um = 0.5 * (lo + hi);
    return sgn * branch_r2(p, uc, um) >= best ? um : at;
}

static double band_mean(const loop_par *p, double uc, double lo, double hi)
{
    /* Simpson on 200 intervals */
    const int N = 200;
    double h = (hi - lo) / N, s = branch_r(p, uc, lo) + branch_r(p, uc, hi);
    for (int i = 1; i < N; i++) s += (i % 2 ? 4.0 : 2.0) * branch_r(p, uc, lo + h * i);
    return s * h / 3.0 / (hi - lo);
}

static void true_desc(const loop_par *p, double vmax, double out[FL_LOOP_NDESC])
{
    double up = p->imp + p->vc, um = p->imp - p->vc;
    double rp = branch_root(p, up), rm = branch_root(p, um);
    out[FL_LOOP_V_PLUS] = vmax * rp;
    out[FL_LOOP_V_MINUS] = vmax * rm;
    out[FL_LOOP_IMPRINT] = 0.5 * (out[FL_LOOP_V_PLUS] + out[FL_LOOP_V_MINUS]);
    out[FL_LOOP_WIDTH] = out[FL_LOOP_V_PLUS] - out[FL_LOOP_V_MINUS];
    /* integral of r_r - r_f = A rho sigma [logcosh((u-um)/s) - logcosh((u-up)/s)] from -1 to 1 */
    double s = p->sigma;
    double F1 = logcosh((1.0 - um) / s) - logcosh((1.0 - up) / s), F0 = logcosh((-1.0 - um) / s) - logcosh((-1.0 - up) / s);
    out[FL_LOOP_AREA] = vmax * fabs(p->amp * p->rho * s * (F1 - F0));
    out[FL_LOOP_NUC_PLUS] = isfinite(rp) ? vmax * curvature_peak(p, up, -1.0, rp, 1.0) : NAN;
    out[FL_LOOP_NUC_MINUS] = isfinite(rm) ? vmax * curvature_peak(p, um, rm, 1.0, -1.0) : NAN;
    out[FL_LOOP_REM_PLUS] = branch_r(p, up, 0.0);
    out[FL_LOOP_REM_MINUS] = branch_r(p, um, 0.0);
    double hi = 0.5 * (band_mean(p, up, 0.8, 1.0) + band_mean(p, um, 0.8, 1.0));
    double lo = 0.5 * (band_mean(p, up, -1.0, -0.8) + band_mean(p, um, -1.0, -0.8));
    out[FL_LOOP_SATURATION] = 0.5 * (hi - lo);
    out[FL_LOOP_OFFSET] = 0.5 * (hi + lo);
}

static double tri_u(int64_t j, int64_t P)
{
    /* exact for P a multiple of 4: 4 j / P etc. */
    int64_t q = P / 4;
    if (j <= q) return (double)j / (double)q;
    if (j <= 3 * q) return (double)(2 * q - j) / (double)q;
    return (double)(j - 4 * q) / (double)q;
}

/* ---- the grid ---------------------------------------------------------------------------------- */
fl_status fl_synth_loops(fl_ctx *ctx, const fl_synth_loops_params *p, fl_image *loops_out, fl_image *structure_out,
                         fl_image *truth_out)
{
    if (!loops_out || !structure_out || !truth_out) return fl_fail(ctx, FL_EINVAL, "synth loops: no output images given");
    fl_image_init(loops_out);
    fl_image_init(structure_out);
    fl_image_init(truth_out);
    fl_status st = check_params(ctx, p);
    if (st != FL_OK) return st;

    const int64_t W = p->width, H = p->height, npix = W * H;
    const int32_t P = p->points;
    const int NT = FL_SYNTH_LOOPS_TRUTH_DESC0 + FL_LOOP_NDESC;
    lamellae L;
    memset(&L, 0, sizeof L);
    double *u_of = NULL;

    st = fl_image_alloc(ctx, loops_out, W, H, 1, P, 1);
    if (st == FL_OK) st = fl_image_alloc(ctx, structure_out, W, H, 1, 1, 1);
    if (st == FL_OK) st = fl_image_alloc(ctx, truth_out, W, H, 1, NT, 1);
    if (st != FL_OK) goto fail;

    /* lamellae covering the rotated image with one period to spare on each side */
    const double th = p->angle * PI_D / 180.0, ct = cos(th), sn = sin(th);
    const double cx = 0.5 * (double)(W - 1), cy = 0.5 * (double)(H - 1);
    double smax = 0.0;
    for (int c = 0; c < 4; c++) {
        double x = (c & 1) ? (double)(W - 1) : 0.0, y = (c & 2) ? (double)(H - 1) : 0.0;
        double s = fabs(-(x - cx) * sn + (y - cy) * ct);
        if (s > smax) smax = s;
    }
    fl_rng lr;
    fl_rng_init(&lr, p->seed, STREAM_LAYOUT);
    L.s0 = p->period * fl_rng_uniform(&lr);
    L.period = p->period;
    L.half = 0.5 * p->a_fraction * p->period;
    L.lambda = p->meander_wavelength;
    L.k0 = (int64_t)floor((-smax - L.s0) / p->period) - 2;
    int64_t k1 = (int64_t)ceil((smax - L.s0) / p->period) + 2;
    L.count = k1 - L.k0 + 1;
    L.amp = fl_alloc((size_t)L.count * sizeof(double));
    L.phase = fl_alloc((size_t)L.count * sizeof(double));
    u_of = fl_alloc((size_t)P * sizeof(double));
    if (!L.amp || !L.phase || !u_of) {
        st = fl_fail(ctx, FL_ENOMEM, "synth loops: out of memory");
        goto fail;
    }
    for (int64_t i = 0; i < L.count; i++) {
        fl_rng r;
        fl_rng_init(&r, p->seed, STREAM_LAMELLA + (uint64_t)(L.k0 + i + LAMELLA_BIAS));
        L.amp[i] = p->meander_amplitude * (0.7 + 0.6 * fl_rng_uniform(&r));
        L.phase[i] = 2.0 * PI_D * fl_rng_uniform(&r);
    }
    for (int32_t j = 0; j < P; j++) u_of[j] = tri_u(j, P);

    float *lo = loops_out->data, *so = structure_out->data, *tr = truth_out->data;
    const double l2 = 2.0 * p->wall_width * p->wall_width;
#pragma omp parallel for schedule(dynamic, 16) num_threads(fl_ctx_threads(ctx))
    for (int64_t n = 0; n < npix; n++) {
        double x = (double)(n % W), y = (double)(n / W);
        double u = (x - cx) * ct + (y - cy) * sn, s = -(x - cx) * sn + (y - cy) * ct;
        int64_t kk = (int64_t)llround((s - L.s0) / L.period);
        int is_c = 1;
        double best = INFINITY, ustar = u, omega = 0.0;
        int64_t bi = -1, bside = 0;
        for (int q = 0; q < 3; q++) {
            int64_t k = kk + (q == 0 ? 0 : (q == 1 ? -1 : 1)); /* nearest lamella first */
            int64_t i = k - L.k0;
            if (i < 0 || i >= L.count) continue;
            double ck = L.s0 + (double)k * L.period;
            double e = s - ck - meander(&L, i, u);
            if (fabs(e) < L.half) is_c = 0;
            for (int side = -1; side <= 1; side += 2) {
                double off = ck + side * L.half;
                double lb = fabs(s - off) - L.amp[i]; /* the wall stays within +-amp of off */
                if (lb > 0.0 && lb * lb >= best) continue;
                double dv = fabs(s - off - meander(&L, i, u)); /* vertical distance bounds the true one */
                double D = dv < sqrt(best) ? dv : sqrt(best);
                if (!isfinite(D)) D = dv;
                double us;
                double g = wall_nearest(&L, i, off, u, s, D, &us);
                if (g < best) best = g, ustar = us, bi = i, bside = side;
            }
        }
        double d = sqrt(best);
        if (bi >= 0) {
            double slope = meander_slope(&L, bi, ustar);
            double tau = atan(slope);
            /* a -> c normal: +s side for the right wall (side +1), -s side for the left wall */
            double nu = -sin(tau), ns = cos(tau);
            if (bside < 0) nu = -nu, ns = -ns;
            omega = atan2(nu, ns);
        }
        double m = exp(-best / l2);
        loop_par lp = blend(is_c, m, omega);
        double up = lp.imp + lp.vc, um = lp.imp - lp.vc;
        fl_rng r;
        fl_rng_init(&r, p->seed, STREAM_PIXEL + (uint64_t)n);
        for (int32_t j = 0; j < P; j++) {
            double uj = u_of[j], prev = u_of[j == 0 ? P - 1 : j - 1];
            double val = branch_r(&lp, uj > prev ? up : um, uj) + p->noise * fl_rng_normal(&r);
            lo[(int64_t)j * npix + n] = (float)val;
        }
        fl_rng rs;
        fl_rng_init(&rs, p->seed, STREAM_STRUCT + (uint64_t)n);
        double b = is_c ? 1.0 : 0.45;
        so[n] = (float)(b * (1.0 - 0.6 * exp(-best / (2.0 * 0.8 * 0.8))) + p->structure_noise * fl_rng_normal(&rs));
        double od = omega * 180.0 / PI_D;
        if (od <= -180.0) od += 360.0;
        tr[(int64_t)FL_SYNTH_LOOPS_TRUTH_DISTANCE * npix + n] = (float)d;
        tr[(int64_t)FL_SYNTH_LOOPS_TRUTH_ORIENTATION * npix + n] = (float)od;
        tr[(int64_t)FL_SYNTH_LOOPS_TRUTH_DOMAIN * npix + n] = is_c ? 1.0f : 0.0f;
        double td[FL_LOOP_NDESC];
        true_desc(&lp, p->vmax, td);
        for (int k = 0; k < FL_LOOP_NDESC; k++) tr[(int64_t)(FL_SYNTH_LOOPS_TRUTH_DESC0 + k) * npix + n] = (float)td[k];
    }

    /* calibration and labels */
    const double step = 4.0 * p->vmax / (double)P;
    loops_out->pixel_width = loops_out->pixel_height = p->pixel_size;
    loops_out->pixel_depth = step;
    structure_out->pixel_width = structure_out->pixel_height = p->pixel_size;
    truth_out->pixel_width = truth_out->pixel_height = p->pixel_size;
    snprintf(loops_out->unit, sizeof loops_out->unit, "um");
    snprintf(structure_out->unit, sizeof structure_out->unit, "um");
    snprintf(truth_out->unit, sizeof truth_out->unit, "um");
    for (int32_t j = 0; j < P && st == FL_OK; j++) {
        double v = p->vmax * u_of[j];
        char lab[64];
        double milli = v * 1000.0;
        if (fabs(milli - nearbyint(milli)) < 1e-6) snprintf(lab, sizeof lab, "%.3f V", v);
        else snprintf(lab, sizeof lab, "%.9g V", v);
        if (strcmp(lab, "-0.000 V") == 0) snprintf(lab, sizeof lab, "0.000 V");
        st = fl_image_set_label(ctx, loops_out, j, lab);
    }
    if (st == FL_OK) st = fl_image_set_label(ctx, structure_out, 0, "PFM amplitude");
    if (st == FL_OK) st = fl_image_set_label(ctx, truth_out, FL_SYNTH_LOOPS_TRUTH_DISTANCE, "distance to wall (px)");
    if (st == FL_OK) st = fl_image_set_label(ctx, truth_out, FL_SYNTH_LOOPS_TRUTH_ORIENTATION, "wall orientation (deg)");
    if (st == FL_OK) st = fl_image_set_label(ctx, truth_out, FL_SYNTH_LOOPS_TRUTH_DOMAIN, "domain (1 = c, 0 = a)");
    for (int k = 0; k < FL_LOOP_NDESC && st == FL_OK; k++)
        st = fl_image_set_label(ctx, truth_out, FL_SYNTH_LOOPS_TRUTH_DESC0 + k, fl_loop_desc_label(k));
    if (st != FL_OK) goto fail;
    fl_free(L.amp);
    fl_free(L.phase);
    fl_free(u_of);
    return FL_OK;

fail:
    fl_free(L.amp);
    fl_free(L.phase);
    fl_free(u_of);
    fl_image_free(loops_out);
    fl_image_free(structure_out);
    fl_image_free(truth_out);
    fl_image_init(loops_out);
    fl_image_init(structure_out);
    fl_image_init(truth_out);
    return st;
}
