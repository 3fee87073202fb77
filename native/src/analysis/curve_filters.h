/* Per-curve cleaning used before training on spectroscopy grids (Agar et al., filters.py). */
#ifndef FL_CURVE_FILTERS_H
#define FL_CURVE_FILTERS_H

#include <stdint.h>

/* Replace NaN runs by linear interpolation between finite neighbours (ends copy the nearest finite
 * value). Returns the number of points replaced, or -1 when the curve has no finite point. */
int32_t fl_curve_fill_nans(float *y, int32_t T);

/* Savitzky-Golay outlier repair: fit a polynomial of `order` in a sliding `window` (shifted inside at
 * the ends), set the `num_remove` points farthest from the fit to NaN and re-interpolate them
 * linearly. Needs T >= window > order. Returns 0, or -1 on bad arguments / no finite point. */
int32_t fl_curve_savgol_repair(float *y, int32_t T, int32_t window, int32_t order, int32_t num_remove);


/* Linear resampling of n curves (n x T) to Tnew points evenly spaced in the point index (so it works for
 * hysteresis loops whose axis goes up and down); the axis values are interpolated the same way
 * (out_axis may be NULL; axis NULL means the index). out: n x Tnew. Returns 0, or -1 on bad arguments. */
int32_t fl_curves_resample(const float *curves, int64_t n, int32_t T, const double *axis, int32_t Tnew, float *out,
                           double *out_axis);

#endif
