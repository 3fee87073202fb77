/* Domain-wall mask post-processing (definitions in ferrolens/walls.h). */
#include "analysis/skeleton.h"

#include <math.h>
#include <string.h>

#define MAX_SIDE 65536

static fl_status check_dims(fl_ctx *ctx, const char *what, int64_t w, int64_t h)
{
    if (w < 1 || h < 1 || w > MAX_SIDE || h > MAX_SIDE)
        return fl_fail(ctx, FL_EINVAL, "%s: the image must be between 1 and %d pixels on each side (got %lld x %lld)",
                       what, MAX_SIDE, (long long)w, (long long)h);
    return FL_OK;
}

fl_status fl_walls_threshold(fl_ctx *ctx, const float *prob, int64_t w, int64_t h, float threshold, uint8_t *mask)
{
    fl_status st = check_dims(ctx, "threshold", w, h);
    if (st) return st;
    if (!prob || !mask) return fl_fail(ctx, FL_EINVAL, "threshold: no image given");
    if (!isfinite(threshold)) return fl_fail(ctx, FL_EINVAL, "threshold: the threshold must be a finite number");
    const int64_t n = w * h;
    for (int64_t i = 0; i < n; i++) mask[i] = prob[i] >= threshold; /* NaN compares false */
    return FL_OK;
}

/* ---- skeleton: scikit-image 0.19 _fast_skeletonize ------------------------------------------------ */

/* skimage/morphology/_skeletonize_cy.pyx: neighbourhood code = 1 NW + 2 N + 4 NE + 8 E + 16 SE +
 * 32 S + 64 SW + 128 W; 1: removable in the first sub-iteration, 2: in the second, 3: in both. */
static const uint8_t ZS_LUT[256] = {
    0, 0, 0, 1, 0, 0, 1, 3, 0, 0, 3, 1, 1, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2, 0, 3, 0, 3, 3,
    0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 2, 2,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 3, 0, 2, 0,
    0, 0, 3, 1, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    3, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 1, 3, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 0, 1, 0, 0, 0, 0, 2, 2, 0, 0, 2, 0, 0, 0};

fl_status fl_walls_skeletonize(fl_ctx *ctx, const uint8_t *mask, int64_t w, int64_t h, uint8_t *skel)
{
    fl_status st = check_dims(ctx, "skeleton", w, h);
    if (st) return st;
    if (!mask || !skel) return fl_fail(ctx, FL_EINVAL, "skeleton: no mask given");
    const int64_t W = w + 2, H = h + 2;
    size_t n = (size_t)W * (size_t)H;
    uint8_t *s = fl_calloc(n, 2);
    if (!s) return fl_fail(ctx, FL_ENOMEM, "skeleton: out of memory for a %lld x %lld image", (long long)w, (long long)h);
    uint8_t *c = s + n;
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) s[(x + 1) + W * (y + 1)] = mask[x + w * y] != 0;
    memcpy(c, s, n);
    int removed = 1;
    while (removed) {
        removed = 0;
        for (int pass = 0; pass < 2; pass++) {
            const int first = pass == 0;
            for (int64_t r = 1; r < H - 1; r++) {
                const uint8_t *up = s + W * (r - 1), *mid = s + W * r, *dn = s + W * (r + 1);
                for (int64_t col = 1; col < W - 1; col++) {
                    if (!mid[col]) continue;
                    int code = up[col - 1] + 2 * up[col] + 4 * up[col + 1] + 8 * mid[col + 1] + 16 * dn[col + 1] +
                               32 * dn[col] + 64 * dn[col - 1] + 128 * mid[col - 1];
                    int v = ZS_LUT[code];
                    if ((v == 1 && first) || (v == 2 && !first) || v == 3) {
                        c[col + W * r] = 0;
                        removed = 1;
                    }
                }
            }
            memcpy(s, c, n);
        }
    }
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) skel[x + w * y] = s[(x + 1) + W * (y + 1)];
    fl_free(s);
    return FL_OK;
}

/* ---- tracing ------------------------------------------------------------------------------------ */

/* ring order N, NE, E, SE, S, SW, W, NW */
static const int RING_DX[8] = {0, 1, 1, 1, 0, -1, -1, -1};
static const int RING_DY[8] = {-1, -1, 0, 1, 1, 1, 0, -1};

static int at(const uint8_t *m, int64_t w, int64_t h, int64_t x, int64_t y)
{
    return x >= 0 && y >= 0 && x < w && y < h && m[x + w * y];
}

int fl_ring_runs(const uint8_t *m, int64_t w, int64_t h, int64_t x, int64_t y)
{
    int b[8], all = 1;
    for (int k = 0; k < 8; k++) {
        b[k] = at(m, w, h, x + RING_DX[k], y + RING_DY[k]);
        all &= b[k];
    }
    if (all) return 1;
    int runs = 0;
    for (int k = 0; k < 8; k++) runs += !b[k] && b[(k + 1) & 7];
    return runs;
}

/* trace step order: E, S, W, N, then SE, SW, NW, NE */
static const int STEP_DX[8] = {1, 0, -1, 0, 1, -1, -1, 1};
static const int STEP_DY[8] = {0, 1, 0, -1, 1, 1, -1, -1};

enum { PX_NONE = 0, PX_PATH = 1, PX_JUNCTION = 2 };

typedef struct trace_buf {
    int64_t *pix;      /* pixel indices of all paths, back to back */
    int64_t *start;    /* path p = pix[start[p] .. start[p+1]) */
    int64_t npix, npaths;
    int32_t loops;
} trace_buf;

/* 1 when pixels (x, y) and (qx, qy) touch the same junction pixel: a trace does not cut across a
 * junction from one branch to the next */
static int shares_junction(const uint8_t *cls, int64_t w, int64_t h, int64_t x, int64_t y, int64_t qx, int64_t qy)
{
    for (int k = 0; k < 8; k++) {
        int64_t jx = x + RING_DX[k], jy = y + RING_DY[k];
        if (jx < 0 || jy < 0 || jx >= w || jy >= h || cls[jx + w * jy] != PX_JUNCTION) continue;
        if (jx - qx >= -1 && jx - qx <= 1 && jy - qy >= -1 && jy - qy <= 1) return 1;
    }
    return 0;
}

static void trace_path(const uint8_t *cls, uint8_t *done, int64_t w, int64_t h, int64_t p0, trace_buf *t)
{
    int64_t p = p0;
    t->start[t->npaths] = t->npix;
    for (;;) {
        done[p] = 1;
        t->pix[t->npix++] = p;
        int64_t x = p % w, y = p / w, next = -1;
        for (int k = 0; k < 8 && next < 0; k++) {
            int64_t nx = x + STEP_DX[k], ny = y + STEP_DY[k];
            if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
            int64_t q = nx + w * ny;
            if (cls[q] != PX_PATH || done[q] || shares_junction(cls, w, h, x, y, nx, ny)) continue;
            next = q;
        }
        if (next < 0) break;
        p = next;
    }
    int64_t n = t->npix - t->start[t->npaths];
    if (n >= 4) {
        int64_t a = t->pix[t->start[t->npaths]], b = t->pix[t->npix - 1];
        int64_t dx = a % w - b % w, dy = a / w - b / w;
        if (dx >= -1 && dx <= 1 && dy >= -1 && dy <= 1) t->loops++;
    }
    t->npaths++;
    t->start[t->npaths] = t->npix;
}

fl_status fl_walls_points(fl_ctx *ctx, const uint8_t *skel, int64_t w, int64_t h, int32_t every, double fraction,
                          fl_wall_point **points, int64_t *count, fl_wall_paths_info *info)
{
    fl_status st = check_dims(ctx, "points", w, h);
    if (st) return st;
    if (!skel || !points || !count) return fl_fail(ctx, FL_EINVAL, "points: no skeleton given");
    const int use_every = every > 0;
    if (use_every == (fraction != 0.0) || every < 0)
        return fl_fail(ctx, FL_EINVAL, "points: give either a spacing 'every' >= 1 pixel or a fraction in (0, 1], not both");
    if (!use_every && !(fraction > 0.0 && fraction <= 1.0))
        return fl_fail(ctx, FL_EINVAL, "points: the fraction of skeleton pixels must be in (0, 1] (got %g)", fraction);
    const int64_t n = w * h;
    int64_t nset = 0;
    for (int64_t i = 0; i < n; i++) nset += skel[i] != 0;
    if (nset == 0) return fl_fail(ctx, FL_EINVAL, "points: the mask is empty: there are no wall pixels to place points on");

    uint8_t *cls = fl_calloc((size_t)n, 2);
    int64_t *pix = fl_alloc((size_t)nset * sizeof(int64_t));
    int64_t *start = fl_alloc((size_t)(nset + 2) * sizeof(int64_t));
    if (!cls || !pix || !start) {
        fl_free(cls);
        fl_free(pix);
        fl_free(start);
        return fl_fail(ctx, FL_ENOMEM, "points: out of memory for a %lld x %lld skeleton", (long long)w, (long long)h);
    }
    uint8_t *done = cls + n;
    int64_t njunc = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!skel[i]) continue;
        int runs = fl_ring_runs(skel, w, h, i % w, i / w);
        cls[i] = runs >= 3 ? PX_JUNCTION : PX_PATH;
        njunc += runs >= 3;
    }
    trace_buf t = {pix, start, 0, 0, 0};
    /* 1: ends (<= 1 branch); 2: next to a junction; 3: whatever is left (closed loops) */
    for (int cls_pass = 0; cls_pass < 3; cls_pass++) {
        for (int64_t i = 0; i < n; i++) {
            if (cls[i] != PX_PATH || done[i]) continue;
            int64_t x = i % w, y = i / w;
            int ok = cls_pass == 2;
            if (cls_pass == 0) ok = fl_ring_runs(skel, w, h, x, y) <= 1;
            if (cls_pass == 1)
                for (int k = 0; k < 8 && !ok; k++) {
                    int64_t nx = x + RING_DX[k], ny = y + RING_DY[k];
                    ok = nx >= 0 && ny >= 0 && nx < w && ny < h && cls[nx + w * ny] == PX_JUNCTION;
                }
            if (ok) trace_path(cls, done, w, h, i, &t);
        }
    }

    /* points */
    int64_t np = 0;
    for (int64_t p = 0; p < t.npaths; p++) {
        int64_t len = start[p + 1] - start[p];
        if (use_every) np += (len - 1) / every + 1;
        else {
            int64_t m = (int64_t)llround(fraction * (double)len);
            np += m < 1 ? 1 : m;
        }
    }
    fl_wall_point *pts = fl_alloc((size_t)(np > 0 ? np : 1) * sizeof(fl_wall_point));
    double *arc = fl_alloc((size_t)nset * sizeof(double));
    if (!pts || !arc) {
        fl_free(pts);
        fl_free(arc);
        fl_free(cls);
        fl_free(pix);
        fl_free(start);
        return fl_fail(ctx, FL_ENOMEM, "points: out of memory for %lld points", (long long)np);
    }
    int64_t k = 0;
    for (int64_t p = 0; p < t.npaths; p++) {
        const int64_t *pp = pix + start[p];
        int64_t len = start[p + 1] - start[p];
        arc[0] = 0.0;
        for (int64_t i = 1; i < len; i++) {
            int64_t dx = pp[i] % w - pp[i - 1] % w, dy = pp[i] / w - pp[i - 1] / w;
            arc[i] = arc[i - 1] + ((dx != 0 && dy != 0) ? sqrt(2.0) : 1.0);
        }
        int64_t m = use_every ? (len - 1) / every + 1 : (int64_t)llround(fraction * (double)len);
        if (m < 1) m = 1;
        for (int64_t j = 0; j < m; j++) {
            int64_t i = use_every ? j * every : (int64_t)floor(((double)j + 0.5) * (double)len / (double)m);
            if (i >= len) i = len - 1;
            pts[k].x = (int32_t)(pp[i] % w);
            pts[k].y = (int32_t)(pp[i] / w);
            pts[k].path = (int32_t)p;
            pts[k].index = (int32_t)i;
            pts[k].arc = arc[i];
            k++;
        }
    }
    if (info) {
        info->paths = (int32_t)t.npaths;
        info->loops = t.loops;
        info->path_pixels = t.npix;
        info->junction_pixels = njunc;
    }
    fl_free(arc);
    fl_free(cls);
    fl_free(pix);
    fl_free(start);
    *points = pts;
    *count = k;
    return FL_OK;
}

void fl_walls_points_free(fl_wall_point *points) { fl_free(points); }

/* ---- rasterisation ------------------------------------------------------------------------------- */

static void put(uint8_t *m, int64_t w, int64_t h, int64_t x, int64_t y)
{
    if (x >= 0 && y >= 0 && x < w && y < h) m[x + w * y] = 1;
}

static void bresenham(uint8_t *m, int64_t w, int64_t h, int64_t x0, int64_t y0, int64_t x1, int64_t y1)
{
    int64_t dx = x1 > x0 ? x1 - x0 : x0 - x1, dy = y1 > y0 ? y0 - y1 : y1 - y0;
    int64_t sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        put(m, w, h, x0, y0);
        if (x0 == x1 && y0 == y1) break;
        int64_t e2 = 2 * err;
        if (e2 >= dy) {
            err += dy;
            x0 += sx;
        }
        if (e2 <= dx) {
            err += dx;
            y0 += sy;
        }
    }
}

static double seg_dist2(double px, double py, double ax, double ay, double bx, double by)
{
    double dx = bx - ax, dy = by - ay, L = dx * dx + dy * dy;
    double t = L > 0.0 ? ((px - ax) * dx + (py - ay) * dy) / L : 0.0;
    t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
    double ex = ax + t * dx - px, ey = ay + t * dy - py;
    return ex * ex + ey * ey;
}

fl_status fl_walls_draw_polyline(fl_ctx *ctx, const double *xy, int64_t nvert, double width, int64_t w, int64_t h,
                                 uint8_t *mask)
{
    fl_status st = check_dims(ctx, "polyline", w, h);
    if (st) return st;
    if (!xy || !mask || nvert < 1) return fl_fail(ctx, FL_EINVAL, "polyline: no vertices given");
    if (!isfinite(width) || width < 1.0 || width > 1e4)
        return fl_fail(ctx, FL_EINVAL, "polyline: the line width must be between 1 and 10000 pixels (got %g)", width);
    const double lim = 1e6;
    for (int64_t i = 0; i < 2 * nvert; i++)
        if (!isfinite(xy[i]) || xy[i] < -lim || xy[i] > lim + (double)(i % 2 ? h : w))
            return fl_fail(ctx, FL_EINVAL, "polyline: vertex %lld has a coordinate that is not finite or far outside the image (%g)",
                           (long long)(i / 2), xy[i]);
    if (width == 1.0) {
        int64_t px = (int64_t)floor(xy[0] + 0.5), py = (int64_t)floor(xy[1] + 0.5);
        put(mask, w, h, px, py);
        for (int64_t i = 1; i < nvert; i++) {
            int64_t qx = (int64_t)floor(xy[2 * i] + 0.5), qy = (int64_t)floor(xy[2 * i + 1] + 0.5);
            bresenham(mask, w, h, px, py, qx, qy);
            px = qx;
            py = qy;
        }
        return FL_OK;
    }
    const double r = width / 2.0, r2 = r * r;
    for (int64_t i = 0; i < (nvert > 1 ? nvert - 1 : 1); i++) {
        double ax = xy[2 * i], ay = xy[2 * i + 1];
        double bx = nvert > 1 ? xy[2 * i + 2] : ax, by = nvert > 1 ? xy[2 * i + 3] : ay;
        int64_t x0 = (int64_t)floor(fmin(ax, bx) - r), x1 = (int64_t)ceil(fmax(ax, bx) + r);
        int64_t y0 = (int64_t)floor(fmin(ay, by) - r), y1 = (int64_t)ceil(fmax(ay, by) + r);
        if (x0 < 0) x0 = 0;
        if (y0 < 0) y0 = 0;
        if (x1 > w - 1) x1 = w - 1;
        if (y1 > h - 1) y1 = h - 1;
        for (int64_t y = y0; y <= y1; y++)
            for (int64_t x = x0; x <= x1; x++)
                if (seg_dist2((double)x, (double)y, ax, ay, bx, by) <= r2) mask[x + w * y] = 1;
    }
    return FL_OK;
}

/* ---- distance transform and metrics ---------------------------------------------------------------- */

#define EDT_INF 1e20

/* 1-D squared distance transform of f (n values) into d; v (n ints as doubles) and z (n + 1). */
static void edt_1d(const double *f, int64_t n, double *d, double *v, double *z)
{
    int64_t k = 0;
    v[0] = 0;
    z[0] = -INFINITY;
    z[1] = INFINITY;
    for (int64_t q = 1; q < n; q++) {
        if (f[q] >= EDT_INF) continue;
        if (f[(int64_t)v[k]] >= EDT_INF) {
            v[k] = (double)q;
            continue;
        }
        double s;
        for (;;) {
            int64_t vk = (int64_t)v[k];
            s = ((f[q] + (double)q * q) - (f[vk] + (double)vk * vk)) / (2.0 * (double)(q - vk));
            if (s <= z[k] && k > 0) k--;
            else break;
        }
        k++;
        v[k] = (double)q;
        z[k] = s;
        z[k + 1] = INFINITY;
    }
    if (f[(int64_t)v[0]] >= EDT_INF) {
        for (int64_t q = 0; q < n; q++) d[q] = EDT_INF;
        return;
    }
    k = 0;
    for (int64_t q = 0; q < n; q++) {
        while (z[k + 1] < (double)q) k++;
        double dq = (double)q - v[k];
        d[q] = dq * dq + f[(int64_t)v[k]];
    }
}

void fl_edt_squared(const uint8_t *mask, int64_t w, int64_t h, double *d2, double *scratch)
{
    const int64_t L = w > h ? w : h;
    double *f = scratch, *v = scratch + L, *tmp = scratch + 2 * L, *z = scratch + 3 * L; /* z: L + 1 */
    for (int64_t x = 0; x < w; x++) { /* along y */
        for (int64_t y = 0; y < h; y++) f[y] = mask[x + w * y] ? 0.0 : EDT_INF;
        edt_1d(f, h, tmp, v, z);
        for (int64_t y = 0; y < h; y++) d2[x + w * y] = tmp[y];
    }
    for (int64_t y = 0; y < h; y++) { /* then along x */
        double *row = d2 + w * y;
        memcpy(f, row, (size_t)w * sizeof(double));
        edt_1d(f, w, row, v, z);
    }
}

void fl_walls_metrics_finish(fl_walls_metrics *m)
{
    if (m->pred_pixels == 0 && m->truth_pixels == 0) {
        m->precision = m->recall = m->f1 = m->iou = 1.0;
        return;
    }
    m->precision = m->pred_pixels ? (double)m->pred_correct / (double)m->pred_pixels : 0.0;
    m->recall = m->truth_pixels ? (double)m->truth_found / (double)m->truth_pixels : 0.0;
    double s = m->precision + m->recall;
    m->f1 = s > 0.0 ? 2.0 * m->precision * m->recall / s : 0.0;
    m->iou = m->union_pixels ? (double)m->intersection / (double)m->union_pixels : 0.0;
}

void fl_walls_metrics_add(fl_walls_metrics *acc, const fl_walls_metrics *one)
{
    acc->pred_pixels += one->pred_pixels;
    acc->truth_pixels += one->truth_pixels;
    acc->pred_correct += one->pred_correct;
    acc->truth_found += one->truth_found;
    acc->intersection += one->intersection;
    acc->union_pixels += one->union_pixels;
    fl_walls_metrics_finish(acc);
}

fl_status fl_walls_metrics_compute(fl_ctx *ctx, const uint8_t *pred, const uint8_t *truth, int64_t w, int64_t h,
                                   double tolerance, fl_walls_metrics *out)
{
    fl_status st = check_dims(ctx, "metrics", w, h);
    if (st) return st;
    if (!pred || !truth || !out) return fl_fail(ctx, FL_EINVAL, "metrics: no masks given");
    if (!isfinite(tolerance) || tolerance < 0.0 || tolerance > 1e6)
        return fl_fail(ctx, FL_EINVAL, "metrics: the tolerance must be a distance between 0 and 1e6 pixels (got %g)", tolerance);
    const int64_t n = w * h, L = w > h ? w : h;
    size_t bytes;
    if (!fl_mul_size((size_t)n, 2 * sizeof(double), &bytes)) return fl_fail(ctx, FL_ENOMEM, "metrics: image too large");
    st = fl_check_budget(ctx, bytes, "mask metrics");
    if (st) return st;
    double *dt = fl_alloc((size_t)n * sizeof(double)), *dp = fl_alloc((size_t)n * sizeof(double));
    double *scratch = fl_alloc((size_t)(4 * L + 1) * sizeof(double));
    if (!dt || !dp || !scratch) {
        fl_free(dt);
        fl_free(dp);
        fl_free(scratch);
        return fl_fail(ctx, FL_ENOMEM, "metrics: out of memory for two %lld x %lld distance maps", (long long)w, (long long)h);
    }
    fl_edt_squared(truth, w, h, dt, scratch);
    fl_edt_squared(pred, w, h, dp, scratch);
    /* squared distances between pixel centres are integers: compare with a margin below the next one */
    const double t2 = tolerance * tolerance + 1e-9;
    fl_walls_metrics m;
    memset(&m, 0, sizeof m);
    for (int64_t i = 0; i < n; i++) {
        int p = pred[i] != 0, t = truth[i] != 0;
        m.pred_pixels += p;
        m.truth_pixels += t;
        m.intersection += p && t;
        m.union_pixels += p || t;
        if (p && dt[i] <= t2) m.pred_correct++;
        if (t && dp[i] <= t2) m.truth_found++;
    }
    fl_free(dt);
    fl_free(dp);
    fl_free(scratch);
    fl_walls_metrics_finish(&m);
    *out = m;
    return FL_OK;
}
