/* Synthetic 4D-STEM stripe domains with charged walls: the model is documented in stem4d.h. */
#include "synth/stem4d.h"

#include <math.h>
#include <string.h>

void fl_synth_stem4d_params_default(fl_synth_stem4d_params *p)
{
    memset(p, 0, sizeof *p);
    p->scan_x = 32;
    p->scan_y = 32;
    p->det = 32;
    p->period = 8;
    p->meander = 1.0;
    p->ratio = 1.6;
    p->wall_shift = 0.5;
    p->thick_min = 0.6;
    p->thick_max = 1.4;
    p->background = 0.05;
    p->dose = 200;
    p->spacing = 0;
    p->disc_sigma = 0;
    p->seed = 1;
}

static float poisson(fl_rng *r, double lam)
{
    if (!(lam > 0)) return 0.f;
    if (lam < 30) {
        const double l = exp(-lam);
        double prod = fl_rng_uniform(r);
        int k = 0;
        while (prod > l && k < 1000) {
            prod *= fl_rng_uniform(r);
            k++;
        }
        return (float)k;
    }
    double v = floor(lam + sqrt(lam) * fl_rng_normal(r) + 0.5);
    return (float)(v < 0 ? 0 : v);
}

#define CHECK_RANGE(cond, ...)                                    \
    do {                                                          \
        if (!(cond)) return fl_fail(ctx, FL_EINVAL, __VA_ARGS__); \
    } while (0)

fl_status fl_synth_stem4d(fl_ctx *ctx, const fl_synth_stem4d_params *p, fl_image *data, fl_image *truth)
{
    if (!p || !data || !truth) return fl_fail(ctx, FL_EINVAL, "fl_synth_stem4d: missing parameters or outputs");
    fl_image_init(data);
    fl_image_init(truth);
    CHECK_RANGE(p->scan_x >= 2 && p->scan_x <= 4096 && p->scan_y >= 2 && p->scan_y <= 4096,
                "synth stem4d: the scan must be 2..4096 positions per side (got %lld x %lld)", (long long)p->scan_x,
                (long long)p->scan_y);
    CHECK_RANGE(p->det >= 8 && p->det <= 1024, "synth stem4d: the detector must be 8..1024 pixels (got %lld)", (long long)p->det);
    CHECK_RANGE(isfinite(p->period) && p->period >= 2, "synth stem4d: the domain period must be at least 2 scan pixels");
    CHECK_RANGE(isfinite(p->meander) && p->meander >= 0 && p->meander < p->period / 2,
                "synth stem4d: the meander amplitude must be in [0, period / 2)");
    CHECK_RANGE(isfinite(p->ratio) && p->ratio >= 1 && p->ratio <= 100, "synth stem4d: the 004/00-4 ratio must be in [1, 100]");
    CHECK_RANGE(isfinite(p->wall_shift) && fabs(p->wall_shift) <= p->det / 4.0, "synth stem4d: the wall disc shift is out of range");
    CHECK_RANGE(isfinite(p->thick_min) && isfinite(p->thick_max) && p->thick_min > 0 && p->thick_max >= p->thick_min &&
                    p->thick_max <= 100,
                "synth stem4d: thickness must satisfy 0 < min <= max <= 100");
    CHECK_RANGE(isfinite(p->background) && p->background >= 0 && p->background <= 100, "synth stem4d: background must be in [0, 100]");
    CHECK_RANGE(isfinite(p->dose) && p->dose >= 0 && p->dose <= 1e9, "synth stem4d: dose must be in [0, 1e9]");
    const double K = (double)p->det, c = (K - 1) / 2;
    const double g = p->spacing > 0 ? p->spacing : 0.19 * K, sig = p->disc_sigma > 0 ? p->disc_sigma : 0.05 * K;
    CHECK_RANGE(isfinite(g) && isfinite(sig) && 2 * g + sig <= c + 1e-9 && sig <= K,
                "synth stem4d: the disc row (spacing %.3g, sigma %.3g) does not fit on a %lld px detector", g, sig, (long long)p->det);

    const int64_t SX = p->scan_x, SY = p->scan_y, npx = SX * SY, D = p->det, dpx = D * D;
    fl_status st = fl_image_alloc(ctx, data, D, D, 1, SX, SY);
    if (!st) st = fl_image_alloc(ctx, truth, SX, SY, 1, 4, 1);
    const char *tl[4] = {"polarisation", "wall", "wall type", "thickness"};
    for (int i = 0; i < 4 && !st; i++) st = fl_image_set_label(ctx, truth, i, tl[i]);
    if (st) goto fail;

    /* geometry */
    fl_rng gr;
    fl_rng_init(&gr, p->seed, 0);
    const double y0 = p->period * fl_rng_uniform(&gr), phi = 2 * M_PI * fl_rng_uniform(&gr);
    const int s_top = fl_rng_uniform(&gr) < 0.5 ? 1 : -1;
    const double a = (p->ratio - 1) / (p->ratio + 1);
    const double amp[3] = {1.0, 0.35, 0.12};
    float *P = truth->data, *W = P + npx, *WT = W + npx, *T = WT + npx;
    const int kmax = (int)ceil((double)SY / p->period) + 2;
    for (int64_t sy = 0; sy < SY; sy++)
        for (int64_t sx = 0; sx < SX; sx++) {
            const double off = y0 + p->meander * sin(2 * M_PI * (double)sx / (double)SX + phi);
            /* walls y_k = off + k period, k = -1 .. kmax; domain index = walls above */
            int above = 0;
            double dmin = INFINITY;
            int kmin = 0;
            for (int k = -1; k <= kmax; k++) {
                const double yk = off + k * p->period;
                if (yk < (double)sy) above++;
                const double d = fabs((double)sy - yk);
                if (d < dmin) {
                    dmin = d;
                    kmin = k;
                }
            }
            /* sign of the top domain (above wall -1) is s_top: flips at every wall */
            const int sign = (above % 2 == 0) ? s_top : -s_top;
            /* wall kmin: the domain above it has (kmin + 1) walls above it (k = -1 .. kmin - 1) */
            const int sign_above = ((kmin + 1) % 2 == 0) ? s_top : -s_top;
            const int64_t i = sx + SX * sy;
            P[i] = (float)sign;
            W[i] = dmin <= 1.0;
            WT[i] = dmin <= 1.0 ? (float)(sign_above > 0 ? 1 : -1) : 0.f;
            T[i] = (float)(p->thick_min + (p->thick_max - p->thick_min) * (double)sx / (double)(SX - 1));
            (void)sign_above;
        }
    /* distance again per pattern (cheap) for the fading and the wall shift */
    int nt = ctx && ctx->threads > 0 ? ctx->threads : 1;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < npx; i++) {
        const int64_t sx = i % SX, sy = i / SX;
        const double off = y0 + p->meander * sin(2 * M_PI * (double)sx / (double)SX + phi);
        double dmin = INFINITY;
        for (int k = -1; k <= kmax; k++) dmin = fmin(dmin, fabs((double)sy - (off + k * p->period)));
        const double fade = fmin(dmin, 1.0);
        const double pe = P[i] * fade;
        const double shift = WT[i] != 0 ? p->wall_shift * (1 - fade) * WT[i] : 0.0;
        const double t = T[i];
        double In[5];
        for (int n = -2; n <= 2; n++) In[n + 2] = amp[n < 0 ? -n : n] * (n == 0 ? 1.0 : (n > 0 ? 1 + a * pe : 1 - a * pe));
        fl_rng r;
        fl_rng_init(&r, p->seed, 1 + (uint64_t)i);
        float *out = data->data + i * dpx;
        const double bs2 = 2 * (K / 4) * (K / 4), ds2 = 2 * sig * sig;
        const double dose = p->dose > 0 ? p->dose : 1.0;
        for (int64_t ky = 0; ky < D; ky++)
            for (int64_t kx = 0; kx < D; kx++) {
                const double dx = (double)kx - c;
                double v = 0;
                for (int n = 0; n < 5; n++) {
                    const double dy = (double)ky - (c + (n - 2) * g + shift);
                    v += In[n] * exp(-(dx * dx + dy * dy) / ds2);
                }
                const double dyc = (double)ky - c;
                v += t * p->background * exp(-(dx * dx + dyc * dyc) / bs2);
                const double lam = dose * t * v;
                out[ky * D + kx] = p->dose > 0 ? poisson(&r, lam) : (float)lam;
            }
    }
    if ((st = fl_progress(ctx, "synth", npx, npx, NAN, NAN))) goto fail;
    return FL_OK;
fail:
    fl_image_free(data);
    fl_image_free(truth);
    return st;
}
