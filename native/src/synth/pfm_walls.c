/* Synthetic PFM amplitude images of domain walls with wall masks: the model is described in
 * pfm_walls.h. */
#include "synth/pfm_walls.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PI_D 3.14159265358979323846

#define STEP 0.25      /* curve sampling, px */
#define DCAP 12.0      /* distance maps are exact up to this distance */
#define MIN_SEP 8.0    /* 180 walls keep this far apart */
#define TRIES 30

enum { P_COND = 1, P_GEOM = 2, P_NOISE = 3 };

void fl_synth_pfm_params_default(fl_synth_pfm_params *p)
{
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->size = 128;
    p->count = 8;
    p->condition = FL_PFM_IN;
    p->kind = FL_PFM_MIXED;
    p->seed = 1;
    p->set = 0;
    p->contrast = p->noise = p->blur = p->tilt = p->lines = -1.0;
}

/* what image i is */
enum { IMG_180, IMG_AC, IMG_BLOBS, IMG_CHECKER, IMG_INVERTED, IMG_NOISY180, IMG_NOISYAC };

static int image_type(const fl_synth_pfm_params *p, int32_t i)
{
    if (p->condition == FL_PFM_OOD) {
        switch (i % 4) {
        case 0: return IMG_BLOBS;
        case 1: return IMG_CHECKER;
        case 2: return IMG_INVERTED;
        default: return (i % 8 == 3) ? IMG_NOISY180 : IMG_NOISYAC;
        }
    }
    if (p->kind == FL_PFM_180) return IMG_180;
    if (p->kind == FL_PFM_AC) return IMG_AC;
    return (i % 2 == 0) ? IMG_180 : IMG_AC;
}

const char *fl_synth_pfm_label(const fl_synth_pfm_params *p, int32_t i)
{
    if (!p) return "";
    switch (image_type(p, i)) {
    case IMG_180: return "180 walls";
    case IMG_AC: return "a/c stripes";
    case IMG_BLOBS: return "ood: blobs (no walls)";
    case IMG_CHECKER: return "ood: checkerboard";
    case IMG_INVERTED: return "ood: inverted contrast";
    case IMG_NOISY180: return "ood: large noise, 180 walls";
    default: return "ood: large noise, a/c stripes";
    }
}

/* ---- scratch for one image ------------------------------------------------------------------------ */
typedef struct pts {
    double *xy;
    int64_t n, cap;
} pts;

typedef struct work {
    int64_t S;
    double *dist;      /* S*S distance to the accepted walls, capped at DCAP */
    uint8_t *mask;     /* S*S */
    float *tmp;        /* S*S blur scratch */
    pts cur;           /* the curve being built */
    fl_status err;
} work;

static int pts_push(work *wk, double x, double y)
{
    pts *c = &wk->cur;
    if (c->n == c->cap) {
        int64_t cap = c->cap ? 2 * c->cap : 1024;
        double *nxy = fl_alloc((size_t)cap * 2 * sizeof(double));
        if (!nxy) {
            wk->err = FL_ENOMEM;
            return -1;
        }
        if (c->n) memcpy(nxy, c->xy, (size_t)c->n * 2 * sizeof(double));
        fl_free(c->xy);
        c->xy = nxy;
        c->cap = cap;
    }
    c->xy[2 * c->n] = x;
    c->xy[2 * c->n + 1] = y;
    c->n++;
    return 0;
}

static double seg_d2(double px, double py, double ax, double ay, double bx, double by)
{
    double dx = bx - ax, dy = by - ay, L = dx * dx + dy * dy;
    double t = L > 0.0 ? ((px - ax) * dx + (py - ay) * dy) / L : 0.0;
    t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
    double ex = ax + t * dx - px, ey = ay + t * dy - py;
    return ex * ex + ey * ey;
}

/* smallest distance-map value at the samples of the current curve that lie in the image */
static double curve_clearance(const work *wk)
{
    const int64_t S = wk->S;
    double best = DCAP;
    for (int64_t i = 0; i < wk->cur.n; i++) {
        int64_t x = (int64_t)floor(wk->cur.xy[2 * i] + 0.5), y = (int64_t)floor(wk->cur.xy[2 * i + 1] + 0.5);
        if (x < 0 || y < 0 || x >= S || y >= S) continue;
        if (wk->dist[x + S * y] < best) best = wk->dist[x + S * y];
    }
    return best;
}

/* add the current curve to the distance map and to the mask */
static void curve_commit(work *wk, int closed)
{
    const int64_t S = wk->S, n = wk->cur.n;
    const double *xy = wk->cur.xy;
    for (int64_t i = 0; i + 1 < n; i++) {
        double ax = xy[2 * i], ay = xy[2 * i + 1], bx = xy[2 * i + 2], by = xy[2 * i + 3];
        int64_t x0 = (int64_t)floor(fmin(ax, bx) - DCAP), x1 = (int64_t)ceil(fmax(ax, bx) + DCAP);
        int64_t y0 = (int64_t)floor(fmin(ay, by) - DCAP), y1 = (int64_t)ceil(fmax(ay, by) + DCAP);
        if (x1 < 0 || y1 < 0 || x0 >= S || y0 >= S) continue;
        if (x0 < 0) x0 = 0;
        if (y0 < 0) y0 = 0;
        if (x1 > S - 1) x1 = S - 1;
        if (y1 > S - 1) y1 = S - 1;
        for (int64_t y = y0; y <= y1; y++)
            for (int64_t x = x0; x <= x1; x++) {
                double d = sqrt(seg_d2((double)x, (double)y, ax, ay, bx, by));
                if (d < wk->dist[x + S * y]) wk->dist[x + S * y] = d;
            }
    }
    /* grid-intersection digitisation: where the curve crosses a column line x = k (a row line
     * y = k) it marks the pixel of that column (row) nearest to the crossing, so every marked pixel
     * is within 0.5 px of the curve; consecutive marks are 8-adjacent. The chain is thinned on the fly
     * (a pixel is dropped when its predecessor and successor touch). */
    int64_t cap = 8;
    for (int64_t i = 0; i + 1 < n; i++)
        cap += (int64_t)(fabs(xy[2 * i + 2] - xy[2 * i]) + fabs(xy[2 * i + 3] - xy[2 * i + 1])) + 2;
    int64_t *chain = fl_alloc((size_t)cap * 2 * sizeof(int64_t));
    if (!chain) {
        wk->err = FL_ENOMEM;
        return;
    }
    int64_t m = 0;
    for (int64_t i = 0; i + 1 < n; i++) {
        double ax = xy[2 * i], ay = xy[2 * i + 1], bx = xy[2 * i + 2], by = xy[2 * i + 3];
        double ct[8];
        int64_t cx[8], cy[8];
        int nc = 0;
        for (int axis = 0; axis < 2; axis++) {
            double a0 = axis ? ay : ax, b0 = axis ? by : bx;
            if (a0 == b0) continue;
            /* lines k with a0 < k <= b0 (increasing) or b0 <= k < a0 (decreasing): counted once */
            int64_t k0 = a0 < b0 ? (int64_t)floor(a0) + 1 : (int64_t)ceil(b0);
            int64_t k1 = a0 < b0 ? (int64_t)floor(b0) : (int64_t)ceil(a0) - 1;
            for (int64_t k = k0; k <= k1 && nc < 8; k++) {
                double t = ((double)k - a0) / (b0 - a0);
                double o = axis ? ax + t * (bx - ax) : ay + t * (by - ay);
                ct[nc] = t;
                cx[nc] = axis ? (int64_t)floor(o + 0.5) : k;
                cy[nc] = axis ? k : (int64_t)floor(o + 0.5);
                nc++;
            }
        }
        for (int u = 1; u < nc; u++) /* order along the segment */
            for (int v = u; v > 0 && ct[v] < ct[v - 1]; v--) {
                double tt = ct[v];
                ct[v] = ct[v - 1];
                ct[v - 1] = tt;
                int64_t q = cx[v];
                cx[v] = cx[v - 1];
                cx[v - 1] = q;
                q = cy[v];
                cy[v] = cy[v - 1];
                cy[v - 1] = q;
            }
        for (int u = 0; u < nc; u++) {
            int64_t qx = cx[u], qy = cy[u];
            while (m >= 2 && llabs(chain[2 * (m - 2)] - qx) <= 1 && llabs(chain[2 * (m - 2) + 1] - qy) <= 1) m--;
            if (m >= 1 && chain[2 * (m - 1)] == qx && chain[2 * (m - 1) + 1] == qy) continue;
            if (m >= cap) break;
            chain[2 * m] = qx;
            chain[2 * m + 1] = qy;
            m++;
        }
    }
    int64_t first = 0;
#define CH_TOUCH(a, b) (llabs(chain[2 * (a)] - chain[2 * (b)]) <= 1 && llabs(chain[2 * (a) + 1] - chain[2 * (b) + 1]) <= 1)
    for (int changed = 1; closed && changed && m - first >= 4;) {
        /* the chain is a cycle: no duplicate and no redundant pixel across the seam */
        changed = 0;
        if (chain[2 * first] == chain[2 * (m - 1)] && chain[2 * first + 1] == chain[2 * (m - 1) + 1]) m--, changed = 1;
        else if (CH_TOUCH(m - 2, first)) m--, changed = 1;
        else if (CH_TOUCH(m - 1, first + 1)) first++, changed = 1;
    }
#undef CH_TOUCH
    for (int64_t i = first; i < m; i++) {
        int64_t x = chain[2 * i], y = chain[2 * i + 1];
        if (x >= 0 && y >= 0 && x < S && y < S) wk->mask[x + S * y] = 1;
    }
    fl_free(chain);
}

static double U(fl_rng *r, double lo, double hi) { return lo + (hi - lo) * (double)fl_rng_uniform(r); }

/* ---- geometries ----------------------------------------------------------------------------------- */

static void geom_180(work *wk, fl_rng *g)
{
    const double S = (double)wk->S, cx = 0.5 * (S - 1.0), cy = cx;
    int n_open = 1 + (fl_rng_uniform(g) < 0.5f);
    for (int w = 0; w < n_open; w++) {
        for (int t = 0; t < TRIES; t++) {
            double th = U(g, 0.0, PI_D), c = U(g, -0.3, 0.3) * S, Lb = U(g, 1.0, 2.0) * S;
            double a[4], ph[4];
            for (int m = 1; m <= 3; m++) {
                a[m] = U(g, 0.0, 0.05) * S / m;
                ph[m] = U(g, 0.0, 2.0 * PI_D);
            }
            wk->cur.n = 0;
            double ct = cos(th), st = sin(th);
            for (double s = -0.8 * S; s <= 0.8 * S + 1e-9; s += STEP) {
                double yp = c;
                for (int m = 1; m <= 3; m++) yp += a[m] * sin(2.0 * PI_D * m * s / Lb + ph[m]);
                if (pts_push(wk, cx + s * ct - yp * st, cy + s * st + yp * ct)) return;
            }
            if (curve_clearance(wk) >= MIN_SEP) {
                curve_commit(wk, 0);
                break;
            }
        }
    }
    int n_closed = 1 + (int)(fl_rng_u32(g) % 3u);
    for (int b = 0; b < n_closed; b++) {
        for (int t = 0; t < TRIES; t++) {
            double r0 = U(g, 0.06, 0.18) * S, e2 = U(g, 0.0, 0.12), e3 = U(g, 0.0, 0.12);
            double p2 = U(g, 0.0, 2.0 * PI_D), p3 = U(g, 0.0, 2.0 * PI_D);
            double margin = 1.3 * r0 + 3.0;
            double bx = U(g, margin, S - 1.0 - margin), by = U(g, margin, S - 1.0 - margin);
            int64_t n = (int64_t)ceil(2.0 * PI_D * r0 * 1.3 / STEP);
            wk->cur.n = 0;
            for (int64_t k = 0; k <= n; k++) {
                double a = 2.0 * PI_D * (double)k / (double)n;
                double r = r0 * (1.0 + e2 * cos(2.0 * a + p2) + e3 * cos(3.0 * a + p3));
                if (pts_push(wk, bx + r * cos(a), by + r * sin(a))) return;
            }
            if (curve_clearance(wk) >= MIN_SEP) {
                curve_commit(wk, 1);
                break;
            }
        }
    }
}

typedef struct ac_geom {
    double th, P, fa, A, lam, phi, off;
} ac_geom;

static void geom_ac(work *wk, fl_rng *g, ac_geom *q)
{
    const double S = (double)wk->S, cx = 0.5 * (S - 1.0), cy = cx, R = 0.75 * S;
    q->th = U(g, 0.0, PI_D);
    q->P = U(g, 0.16, 0.28) * S;
    q->fa = U(g, 0.3, 0.5);
    q->A = U(g, 0.0, 0.03) * S;
    q->lam = U(g, 0.4, 0.8) * S;
    q->phi = U(g, 0.0, 2.0 * PI_D);
    q->off = U(g, 0.0, q->P);
    double ct = cos(q->th), st = sin(q->th);
    int64_t k0 = (int64_t)floor((-R - q->off) / q->P) - 1, k1 = (int64_t)ceil((R - q->off) / q->P) + 1;
    for (int64_t k = k0; k <= k1; k++)
        for (int side = 0; side < 2; side++) {
            double u0 = (double)k * q->P + q->off + (side ? q->fa * q->P : 0.0);
            if (u0 < -R - q->A || u0 > R + q->A) continue;
            wk->cur.n = 0;
            for (double v = -R; v <= R + 1e-9; v += STEP) {
                double u = u0 - q->A * sin(2.0 * PI_D * v / q->lam + q->phi);
                if (pts_push(wk, cx + u * ct - v * st, cy + u * st + v * ct)) return;
            }
            curve_commit(wk, 0);
            if (wk->err) return;
        }
}

static int ac_is_a(const ac_geom *q, double S, double x, double y)
{
    const double cx = 0.5 * (S - 1.0), cy = cx;
    double ct = cos(q->th), st = sin(q->th);
    double u = (x - cx) * ct + (y - cy) * st, v = -(x - cx) * st + (y - cy) * ct;
    double gg = u + q->A * sin(2.0 * PI_D * v / q->lam + q->phi) - q->off;
    double m = gg - q->P * floor(gg / q->P);
    return m < q->fa * q->P;
}

static void geom_checker(work *wk, fl_rng *g)
{
    const double S = (double)wk->S;
    double c = U(g, 6.0, 9.0), x0 = U(g, 0.0, c), y0 = U(g, 0.0, c);
    for (int dir = 0; dir < 2; dir++)
        for (double l = (dir ? y0 : x0) - c; l < S + c; l += c) {
            wk->cur.n = 0;
            for (double s = -2.0; s <= S + 1.0 + 1e-9; s += STEP)
                if (pts_push(wk, dir ? s : l, dir ? l : s)) return;
            curve_commit(wk, 0);
            if (wk->err) return;
        }
}

/* ---- acquisition ---------------------------------------------------------------------------------- */

/* one 1-D pass of the separable blur over the S lines of an S x S image: pixel p of line l is
 * l * line_stride + p * step (rows: S, 1; columns: 1, S); edge pixels repeated */
static void blur_pass(const float *src, float *dst, int64_t S, int64_t line_stride, int64_t step, const double *k,
                      int rad)
{
    for (int64_t l = 0; l < S; l++)
        for (int64_t q = 0; q < S; q++) {
            double a = 0.0;
            for (int i = -rad; i <= rad; i++) {
                int64_t j = q + i;
                j = j < 0 ? 0 : j >= S ? S - 1 : j;
                a += k[i + rad] * src[l * line_stride + j * step];
            }
            dst[l * line_stride + q * step] = (float)a;
        }
}

static void blur(work *wk, float *img, double sigma)
{
    if (!(sigma > 0.0)) return;
    int rad = (int)ceil(3.0 * sigma);
    if (rad > 64) rad = 64;
    double k[129], sum = 0.0;
    for (int i = -rad; i <= rad; i++) sum += (k[i + rad] = exp(-0.5 * (i / sigma) * (i / sigma)));
    for (int i = 0; i <= 2 * rad; i++) k[i] /= sum;
    blur_pass(img, wk->tmp, wk->S, wk->S, 1, k, rad);
    blur_pass(wk->tmp, img, wk->S, 1, wk->S, k, rad);
}

static fl_status one_image(const fl_synth_pfm_params *p, int32_t i, work *wk, float *img, float *msk)
{
    const int64_t S = wk->S, N = S * S;
    const double Sd = (double)S;
    const uint64_t base = ((p->set & 0xffffu) << 40) | ((uint64_t)(uint32_t)i << 8);
    fl_rng cr, gr, nr;
    fl_rng_init(&cr, p->seed, base + P_COND);
    fl_rng_init(&gr, p->seed, base + P_GEOM);
    fl_rng_init(&nr, p->seed, base + P_NOISE);
    const int type = image_type(p, i);
    const int clean = p->condition == FL_PFM_CLEAN;

    /* conditions: always drawn in the same order so that an override changes nothing else */
    double A0 = U(&cr, 0.8, 1.2), noise = U(&cr, 0.02, 0.08), bl = U(&cr, 0.4, 1.0), tilt = U(&cr, 0.0, 0.3);
    double tdir = U(&cr, 0.0, 2.0 * PI_D), lines = U(&cr, 0.0, 0.06);
    int streaks = (int)(fl_rng_u32(&cr) % 3u);
    double w180 = U(&cr, 0.5, 0.9), wac = U(&cr, 0.8, 1.5), ratio = U(&cr, 0.35, 0.6);
    double big_noise = U(&cr, 0.3, 0.5), big_lines = U(&cr, 0.1, 0.2);
    if (clean) {
        A0 = 1.0;
        noise = bl = tilt = lines = 0.0;
        streaks = 0;
    }
    if (type == IMG_NOISY180 || type == IMG_NOISYAC) {
        noise = big_noise;
        lines = big_lines;
    }
    if (p->contrast >= 0.0) A0 = p->contrast;
    if (p->noise >= 0.0) noise = p->noise;
    if (p->blur >= 0.0) bl = p->blur;
    if (p->tilt >= 0.0) tilt = p->tilt;
    if (p->lines >= 0.0) lines = p->lines;

    for (int64_t k = 0; k < N; k++) wk->dist[k] = DCAP;
    memset(wk->mask, 0, (size_t)N);
    ac_geom q;
    memset(&q, 0, sizeof q);
    switch (type) {
    case IMG_AC:
    case IMG_NOISYAC: geom_ac(wk, &gr, &q); break;
    case IMG_CHECKER: geom_checker(wk, &gr); break;
    case IMG_BLOBS: break;
    default: geom_180(wk, &gr); break;
    }
    if (wk->err) return wk->err;

    for (int64_t y = 0; y < S; y++)
        for (int64_t x = 0; x < S; x++) {
            int64_t k = x + S * y;
            double d = wk->dist[k], a;
            switch (type) {
            case IMG_AC:
            case IMG_NOISYAC: {
                double Aa = ratio * A0, mid = 0.5 * (A0 + Aa);
                double level = ac_is_a(&q, Sd, (double)x, (double)y) ? Aa : A0;
                a = mid + (level - mid) * tanh(d / wac);
                break;
            }
            case IMG_INVERTED: a = A0 * (0.35 + 0.65 * (1.0 - tanh(d / w180))); break;
            case IMG_BLOBS: a = A0; break;
            default: a = A0 * tanh(d / w180); break;
            }
            img[k] = (float)a;
        }
    if (type == IMG_BLOBS) {
        for (int b = 0; b < 40; b++) {
            double bx = U(&gr, -4.0, Sd + 3.0), by = U(&gr, -4.0, Sd + 3.0), r = U(&gr, 1.5, 4.0);
            double amp = U(&gr, -0.5, 0.3) * A0;
            for (int64_t y = 0; y < S; y++)
                for (int64_t x = 0; x < S; x++) {
                    double dx = (double)x - bx, dy = (double)y - by, e = (dx * dx + dy * dy) / (2.0 * r * r);
                    if (e < 20.0) img[x + S * y] += (float)(amp * exp(-e));
                }
        }
    }
    blur(wk, img, bl);
    /* tilt, scan lines, streaks, noise */
    const double cx = 0.5 * (Sd - 1.0);
    double gx = tilt * A0 * cos(tdir) / Sd, gy = tilt * A0 * sin(tdir) / Sd;
    for (int64_t y = 0; y < S; y++) {
        double off = lines * A0 * fl_rng_normal(&nr);
        for (int64_t x = 0; x < S; x++)
            img[x + S * y] += (float)(gx * ((double)x - cx) + gy * ((double)y - cx) + off);
    }
    for (int s = 0; s < streaks; s++) {
        int64_t row = (int64_t)(fl_rng_u32(&nr) % (uint32_t)S);
        int64_t len = (int64_t)(U(&nr, 0.2, 1.0) * Sd), x0 = (int64_t)(fl_rng_u32(&nr) % (uint32_t)S);
        double amp = U(&nr, 0.15, 0.3) * A0 * ((fl_rng_u32(&nr) & 1u) ? 1.0 : -1.0);
        for (int64_t x = x0; x < x0 + len && x < S; x++) img[x + S * row] += (float)amp;
    }
    for (int64_t k = 0; k < N; k++) img[k] += (float)(noise * A0 * fl_rng_normal(&nr));
    if (msk)
        for (int64_t k = 0; k < N; k++) msk[k] = wk->mask[k] ? 1.0f : 0.0f;
    return FL_OK;
}

static int finite_in(double v, double lo, double hi) { return isfinite(v) && v >= lo && v <= hi; }

static fl_status check_params(fl_ctx *ctx, const fl_synth_pfm_params *p)
{
    if (!p) return fl_fail(ctx, FL_EINVAL, "synth pfm-walls: no parameters given");
    if (p->size < 32 || p->size > 4096)
        return fl_fail(ctx, FL_EINVAL, "synth pfm-walls: the image size must be between 32 and 4096 pixels (got %lld)", (long long)p->size);
    if (p->count < 1 || p->count > 100000)
        return fl_fail(ctx, FL_EINVAL, "synth pfm-walls: the number of images must be between 1 and 100000 (got %d)", (int)p->count);
    if (p->condition < FL_PFM_IN || p->condition > FL_PFM_CLEAN)
        return fl_fail(ctx, FL_EINVAL, "synth pfm-walls: unknown condition set %d", (int)p->condition);
    if (p->kind < FL_PFM_MIXED || p->kind > FL_PFM_AC)
        return fl_fail(ctx, FL_EINVAL, "synth pfm-walls: unknown wall kind %d", (int)p->kind);
    if (p->set > 0xffffu) return fl_fail(ctx, FL_EINVAL, "synth pfm-walls: the set number must be below 65536");
    const double *ov[5] = {&p->contrast, &p->noise, &p->blur, &p->tilt, &p->lines};
    const char *names[5] = {"contrast", "noise", "blur", "tilt", "lines"};
    const double hi[5] = {1e6, 100.0, 20.0, 100.0, 100.0};
    for (int k = 0; k < 5; k++)
        if (isnan(*ov[k]) || (*ov[k] >= 0.0 && !finite_in(*ov[k], 0.0, hi[k])))
            return fl_fail(ctx, FL_EINVAL, "synth pfm-walls: %s must be between 0 and %g (or negative for the default range; got %g)",
                           names[k], hi[k], *ov[k]);
    return FL_OK;
}

fl_status fl_synth_pfm_walls(fl_ctx *ctx, const fl_synth_pfm_params *p, float *images, float *masks)
{
    fl_status st = check_params(ctx, p);
    if (st) return st;
    if (!images && !masks) return fl_fail(ctx, FL_EINVAL, "synth pfm-walls: no output buffers given");
    const int64_t S = p->size, N = S * S;
    work wk;
    memset(&wk, 0, sizeof wk);
    wk.S = S;
    wk.dist = fl_alloc((size_t)N * sizeof(double));
    wk.mask = fl_alloc((size_t)N);
    wk.tmp = fl_alloc((size_t)N * sizeof(float));
    float *img1 = images ? NULL : fl_alloc((size_t)N * sizeof(float));
    if (!wk.dist || !wk.mask || !wk.tmp || (!images && !img1)) {
        st = fl_fail(ctx, FL_ENOMEM, "synth pfm-walls: out of memory for a %lld x %lld image", (long long)S, (long long)S);
        goto done;
    }
    for (int32_t i = 0; i < p->count; i++) {
        float *img = images ? images + (size_t)i * (size_t)N : img1;
        float *msk = masks ? masks + (size_t)i * (size_t)N : NULL;
        if (one_image(p, i, &wk, img, msk) != FL_OK) {
            st = fl_fail(ctx, FL_ENOMEM, "synth pfm-walls: out of memory while tracing the walls");
            goto done;
        }
        st = fl_progress(ctx, "image", i + 1, p->count, NAN, NAN);
        if (st) goto done;
    }
done:
    fl_free(wk.dist);
    fl_free(wk.mask);
    fl_free(wk.tmp);
    fl_free(wk.cur.xy);
    fl_free(img1);
    return st;
}

fl_status fl_synth_pfm_walls_stack(fl_ctx *ctx, const fl_synth_pfm_params *p, fl_image *images_out,
                                   fl_image *masks_out)
{
    if (images_out) fl_image_init(images_out);
    if (masks_out) fl_image_init(masks_out);
    if (!images_out) return fl_fail(ctx, FL_EINVAL, "synth pfm-walls: no output image given");
    fl_status st = check_params(ctx, p);
    if (st) return st;
    size_t bytes;
    if (!fl_mul_size((size_t)p->size * (size_t)p->size, (size_t)p->count * sizeof(float) * (masks_out ? 2 : 1), &bytes))
        return fl_fail(ctx, FL_ENOMEM, "synth pfm-walls: the stack is too large");
    st = fl_check_budget(ctx, bytes, "synth pfm-walls");
    if (st) return st;
    st = fl_image_alloc(ctx, images_out, p->size, p->size, 1, p->count, 1);
    if (!st && masks_out) st = fl_image_alloc(ctx, masks_out, p->size, p->size, 1, p->count, 1);
    for (int32_t i = 0; i < p->count && !st; i++) {
        st = fl_image_set_label(ctx, images_out, i, fl_synth_pfm_label(p, i));
        if (!st && masks_out) st = fl_image_set_label(ctx, masks_out, i, fl_synth_pfm_label(p, i));
    }
    if (!st) st = fl_synth_pfm_walls(ctx, p, images_out->data, masks_out ? masks_out->data : NULL);
    if (st) {
        fl_image_free(images_out);
        if (masks_out) fl_image_free(masks_out);
    }
    return st;
}
