/* Curve preprocessing: NaN interpolation, Savitzky-Golay outlier repair, resampling. */
#include <criterion/criterion.h>
#include <math.h>

#include "analysis/curve_filters.h"

Test(curve_filters, nan_runs_are_interpolated_linearly)
{
    float y[8] = {NAN, 1, 2, NAN, NAN, 5, 6, NAN};
    cr_expect_eq(fl_curve_fill_nans(y, 8), 4);
    float want[8] = {1, 1, 2, 3, 4, 5, 6, 6};
    for (int i = 0; i < 8; i++) cr_expect_float_eq(y[i], want[i], 1e-6, "point %d", i);
    float none[3] = {NAN, NAN, NAN};
    cr_expect_eq(fl_curve_fill_nans(none, 3), -1);
}

Test(curve_filters, savgol_repair_removes_spikes_and_keeps_smooth_curves)
{
    enum { T = 40 };
    float y[T], clean[T];
    for (int i = 0; i < T; i++) clean[i] = y[i] = 0.01f * (float)(i * i) - 0.3f * (float)i; /* a parabola */
    y[7] += 5.f;
    y[22] -= 4.f;
    y[33] = NAN;
    cr_assert_eq(fl_curve_savgol_repair(y, T, 7, 3, 3), 0);
    for (int i = 0; i < T; i++) cr_expect(fabsf(y[i] - clean[i]) < 0.05f, "point %d: %g vs %g", i, y[i], clean[i]);
    cr_expect_eq(fl_curve_savgol_repair(y, 5, 7, 3, 3), -1); /* window longer than the curve */
}

Test(curve_filters, resampling_follows_the_index_for_loops)
{
    /* a loop axis going up then down: 0 1 2 1 0, values = 10 * axis */
    double axis[5] = {0, 1, 2, 1, 0};
    float y[5] = {0, 10, 20, 10, 0}, out[9];
    double oa[9];
    cr_assert_eq(fl_curves_resample(y, 1, 5, axis, 9, out, oa), 0);
    for (int j = 0; j < 9; j++) {
        cr_expect_float_eq(out[j], 10.0 * oa[j], 1e-5, "point %d", j);
        cr_expect_float_eq(oa[j], j <= 4 ? j * 0.5 : (8 - j) * 0.5, 1e-12, "axis %d", j);
    }
    cr_expect_eq(fl_curves_resample(y, 1, 1, axis, 9, out, oa), -1);
}
