#include "curve_filters.h"

#include <math.h>
#include <string.h>

int32_t fl_curve_fill_nans(float *y, int32_t T)
{
    int32_t first = -1, replaced = 0;
    for (int32_t i = 0; i < T; i++)
        if (isfinite(y[i])) {
            first = i;
            break;
        }
    if (first < 0) return -1;
    for (int32_t i = 0; i < first; i++, replaced++) y[i] = y[first];
    int32_t last = first;
    for (int32_t i = first + 1; i < T; i++) {
        if (!isfinite(y[i])) continue;
        for (int32_t k = last + 1; k < i; k++, replaced++)
            y[k] = y[last] + (y[i] - y[last]) * (float)(k - last) / (float)(i - last);
        last = i;
    }
    for (int32_t k = last + 1; k < T; k++, replaced++) y[k] = y[last];
    return replaced;
}

/* Least-squares polynomial of degree `order` through (x, y[s..s+w)) with x = 0..w-1, evaluated at xe. */
static double poly_fit_eval(const float *y, int32_t w, int32_t order, double xe)
{
    double A[8][8] = {{0}}, b[8] = {0};
    const int32_t n = order + 1;
    for (int32_t k = 0; k < w; k++) {
        double p[8];
        p[0] = 1;
        for (int32_t j = 1; j < n; j++) p[j] = p[j - 1] * (k - (w - 1) / 2.0);
        for (int32_t i = 0; i < n; i++) {
            b[i] += p[i] * y[k];
            for (int32_t j = 0; j < n; j++) A[i][j] += p[i] * p[j];
        }
    }
    /* Gaussian elimination with partial pivoting (n <= 8) */
    for (int32_t c = 0; c < n; c++) {
        int32_t piv = c;
        for (int32_t r = c + 1; r < n; r++)
            if (fabs(A[r][c]) > fabs(A[piv][c])) piv = r;
        if (fabs(A[piv][c]) < 1e-300) return y[(int32_t)xe];
        if (piv != c) {
            for (int32_t j = 0; j < n; j++) {
                double t = A[c][j];
                A[c][j] = A[piv][j];
                A[piv][j] = t;
            }
            double t = b[c];
            b[c] = b[piv];
            b[piv] = t;
        }
        for (int32_t r = c + 1; r < n; r++) {
            double f = A[r][c] / A[c][c];
            for (int32_t j = c; j < n; j++) A[r][j] -= f * A[c][j];
            b[r] -= f * b[c];
        }
    }
    double coef[8];
    for (int32_t r = n - 1; r >= 0; r--) {
        double s = b[r];
        for (int32_t j = r + 1; j < n; j++) s -= A[r][j] * coef[j];
        coef[r] = s / A[r][r];
    }
    double xc = xe - (w - 1) / 2.0, v = 0, p = 1;
    for (int32_t j = 0; j < n; j++, p *= xc) v += coef[j] * p;
    return v;
}

int32_t fl_curve_savgol_repair(float *y, int32_t T, int32_t window, int32_t order, int32_t num_remove)
{
    if (window > T || window <= order || order < 0 || order > 7 || num_remove < 0 || num_remove >= T) return -1;
    if (fl_curve_fill_nans(y, T) < 0) return -1;
    float resid[T > 0 ? T : 1];
    for (int32_t i = 0; i < T; i++) {
        int32_t s = i - window / 2;
        if (s < 0) s = 0;
        if (s > T - window) s = T - window;
        resid[i] = fabsf(y[i] - (float)poly_fit_eval(y + s, window, order, i - s));
    }
    for (int32_t r = 0; r < num_remove; r++) {
        int32_t worst = -1;
        for (int32_t i = 0; i < T; i++)
            if (resid[i] >= 0 && (worst < 0 || resid[i] > resid[worst])) worst = i;
        if (worst < 0) break;
        resid[worst] = -1.f;
        y[worst] = NAN;
    }
    return fl_curve_fill_nans(y, T) < 0 ? -1 : 0;
}

int32_t fl_curves_resample(const float *curves, int64_t n, int32_t T, const double *axis, int32_t Tnew, float *out,
                           double *out_axis)
{
    if (!curves || !out || n < 0 || T < 2 || Tnew < 2) return -1;
    for (int32_t j = 0; j < Tnew; j++) {
        double pos = (double)(T - 1) * (double)j / (double)(Tnew - 1);
        int32_t k = (int32_t)pos;
        if (k > T - 2) k = T - 2;
        double w = pos - k;
        if (out_axis) out_axis[j] = axis ? (1.0 - w) * axis[k] + w * axis[k + 1] : pos;
        for (int64_t c = 0; c < n; c++)
            out[c * Tnew + j] = (float)((1.0 - w) * curves[c * T + k] + w * curves[c * T + k + 1]);
    }
    return 0;
}
