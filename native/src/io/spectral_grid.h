/* Grids of curves <-> hyperstacks: an X x Y image whose spectral axis is Z (slices) or T (frames).
 *
 * Curves are stored n x T row-major with pixel n = x + W * y (the same order as a plane's pixels).
 * Spectral-axis values come, in this order of preference, from
 *   1. the slice/frame labels when every label along the axis starts with a number, optionally
 *      followed by one unit word ("-2.5 V", "0.3", "1e-3 mV"; everything after a newline in an
 *      ImageJ label is ignored) and all units agree;
 *   2. the calibration: slices -> z * pixel_depth in the image unit (when the image is calibrated:
 *      unit not "pixel" or pixel_depth != 1); frames -> t * frame_interval in "s" (when > 0);
 *   3. the index 0 .. T-1 with unit "".
 */
#ifndef FL_SPECTRAL_GRID_H
#define FL_SPECTRAL_GRID_H

#include "fl_internal.h"
#include "io/tiff.h"

#define FL_GRID_MIN_POINTS 8

/* Parse one axis label: a number, then optionally one unit word (no spaces inside). Returns 1 and sets
 * *value and unit (cap bytes, "" when none) on success, 0 when the label is not of that form. */
int fl_parse_axis_label(const char *label, double *value, char *unit, size_t cap);

/* axis: 0 = automatic (the only non-singleton of Z and T), 'z' or 't'.
 * Rejects RGB, multi-channel, single-plane and both-Z-and-T images, curves shorter than
 * FL_GRID_MIN_POINTS, and NaN/Inf pixels (count and first position in the message).
 * On success *curves (n x T) and *axis_values (T) are fl_alloc'ed and owned by the caller (fl_free);
 * unit gets the axis unit ("" if none), label a name for the axis ("voltage" when the unit is V-like,
 * else "slice label", "Z", "time" or "index"). On failure nothing is allocated. */
fl_status fl_grid_to_curves(fl_ctx *ctx, const fl_image *img, int axis, float **curves, int64_t *n, int32_t *T,
                            double **axis_values, char unit[32], char label[64]);

/* curves (W*H x T) -> out: W x H x T slices, slice k labelled "<value> <unit>" ("%.3f" when every value is a
 * multiple of 0.001, else the shortest %g with 6..15 digits that reads back within 1e-9 relative). Spatial calibration (pixel size, unit) and
 * frame interval copied from `like` when given; pixel_depth is the mean axis step when the values are
 * evenly spaced, else 1. axis_values may be NULL (labels are then 1..T). out is initialised here. */
fl_status fl_curves_to_grid(fl_ctx *ctx, const float *curves, int64_t W, int64_t H, int32_t T,
                            const double *axis_values, const char *unit, const fl_image *like, fl_image *out);

/* maps (W*H x K row-major: K values per pixel) -> out: W x H x K slices labelled labels[k] (labels
 * or single entries may be NULL: "channel <k+1>"). Spatial calibration copied from `like`. */
fl_status fl_maps_to_image(fl_ctx *ctx, const float *maps, int64_t W, int64_t H, int32_t K,
                           const char *const *labels, const fl_image *like, fl_image *out);

#endif
