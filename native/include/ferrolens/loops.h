/* Ferrolens engine: piezoresponse hysteresis-loop descriptors (public C API).
 *
 * A loop is given as the bias values v[0..n) and the responses r[0..n) in ACQUISITION ORDER, for a
 * triangle sweep such as the BEPS waveform 0 -> +Vmax -> -Vmax -> 0 (any rotation of one period is
 * accepted: -Vmax -> +Vmax -> -Vmax, +Vmax -> -Vmax -> +Vmax, with or without the closing point).
 *
 * Triangle sweep (checked by fl_loop_check_sweep): read cyclically (the last point is followed by the
 * first), the bias rises without ever decreasing from its minimum to its maximum and falls without
 * ever increasing from the maximum back to the minimum, and max > min. Equal neighbours (a repeated
 * turning or closing point) are allowed. The FORWARD branch is the rising part, from the (first)
 * minimum to the (first) maximum, both included; the REVERSE branch the falling part from the maximum
 * to the minimum, both included.
 *
 * Descriptors (fl_loop_desc, in the bias unit (V) and the response unit (a.u.)):
 *   v_plus      V+: zero crossing of the forward branch, by linear interpolation between the two
 *               points whose responses change sign (a point with response exactly 0 is the crossing).
 *               Only crossings in the branch's switching direction count (sign of the response at the
 *               branch end minus at its start; either direction when they are equal). When noise
 *               makes several such crossings, V+ is their median (the middle one in bias order; the
 *               lower middle one for an even count).
 *   v_minus     V-: the same on the reverse branch.
 *   imprint     (V+ + V-) / 2
 *   width       V+ - V-
 *   area        loop area: |shoelace area| of the closed polygon of the (v, r) points in acquisition
 *               order (= fl_loop_area = shapely Polygon(zip(v, r)).area, also for self-intersecting
 *               polygons, where shapely too returns |signed shoelace area|). Never NaN for finite input.
 *   nuc_plus    nucleation bias of the forward branch: the bias of maximum curvature at the onset of
 *               switching, i.e. among the forward-branch points acquired before the V+ crossing
 *               (bias < V+), the one where s * d2r/dv2 is largest, s = sign of the switching direction
 *               (the branch bends towards the switched state there). d2r/dv2 at a point is the second
 *               derivative of the least-squares parabola through the point and its two neighbours on
 *               each side along the branch (fewer at the branch ends; non-uniform bias steps are fine).
 *   nuc_minus   the same on the reverse branch: among the points acquired before the V- crossing (bias
 *               > V-), the largest -s * d2r/dv2 (s = sign of r(max bias) - r(min bias) on that branch).
 *   rem_plus    R+: response of the forward branch at v = 0 (linear interpolation), NaN when the
 *               forward branch does not span v = 0.
 *   rem_minus   R-: the same on the reverse branch.
 *   saturation  half the response swing between the bias extremes: (mean r of the points with
 *               v >= vmax - 0.1 (vmax - vmin)  minus  mean r of the points with v <= vmin + 0.1 (vmax - vmin)) / 2.
 *   offset      vertical offset: the average of those two means.
 * A branch that never crosses zero in its switching direction gives NaN for its crossing (and so for
 * imprint, width and its nucleation bias); this is not an error.
 */
#ifndef FERROLENS_LOOPS_H
#define FERROLENS_LOOPS_H

#include "ferrolens/ferrolens.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FL_LOOP_MIN_POINTS 8

typedef enum fl_loop_desc_index {
    FL_LOOP_V_PLUS = 0,
    FL_LOOP_V_MINUS,
    FL_LOOP_IMPRINT,
    FL_LOOP_WIDTH,
    FL_LOOP_AREA,
    FL_LOOP_NUC_PLUS,
    FL_LOOP_NUC_MINUS,
    FL_LOOP_REM_PLUS,
    FL_LOOP_REM_MINUS,
    FL_LOOP_SATURATION,
    FL_LOOP_OFFSET,
    FL_LOOP_NDESC
} fl_loop_desc_index;

typedef struct fl_loop_desc {
    double v_plus, v_minus, imprint, width, area, nuc_plus, nuc_minus, rem_plus, rem_minus, saturation, offset;
} fl_loop_desc;

/* The fields in fl_loop_desc_index order. */
void fl_loop_desc_to_array(const fl_loop_desc *d, double out[FL_LOOP_NDESC]);

/* Slice label ("V+ (V)", "area (V*a.u.)", ...) and short column name ("V+", "area", ...) of
 * descriptor k; NULL when k is out of range. */
const char *fl_loop_desc_label(int k);
const char *fl_loop_desc_name(int k);

/* |shoelace area| of the closed polygon (v[i], r[i]), i = 0..n-1 (the last point joins the first):
 * shapely's Polygon(zip(v, r)).area. 0 for n < 3; NaN when any value is not finite or v/r is NULL. */
double fl_loop_area(const float *v, const float *r, int64_t n);

/* FL_OK when v[0..n) is a triangle sweep (see above), else FL_EINVAL with a sentence saying what is
 * wrong (not finite, fewer than FL_LOOP_MIN_POINTS points, where the sweep turns back). */
fl_status fl_loop_check_sweep(fl_ctx *ctx, const float *v, int64_t n);

/* Descriptors of one loop. Fails (FL_EINVAL) on a bad sweep or non-finite responses; NaN fields are
 * not failures (see above). */
fl_status fl_loop_descriptors(fl_ctx *ctx, const float *v, const float *r, int64_t n, fl_loop_desc *out);

/* Every loop of a grid: curves is npix x n row-major (spectral_grid order), all sharing the bias
 * values v[0..n). out is npix x FL_LOOP_NDESC row-major (float, NaN where undefined). The sweep is
 * checked once; non-finite responses are an error naming the first pixel (as its index; the caller
 * knows the width). OpenMP over pixels; the result does not depend on the thread count. Progress
 * stage "loops"; when cancelled (FL_ECANCELLED) the loops finished so far are filled in. */
fl_status fl_loop_descriptors_grid(fl_ctx *ctx, const float *v, const float *curves, int64_t npix, int64_t n,
                                   float *out);

#ifdef __cplusplus
}
#endif
#endif
