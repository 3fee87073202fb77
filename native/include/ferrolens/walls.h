/* Ferrolens: domain-wall masks and their post-processing (issue 5), and the PFM wall toy model.
 *
 * Masks are uint8 images, row-major, width x height, 0 = background, 1 = wall (any non-zero value
 * is read as 1). Pixel (x, y) is mask[x + width * y]; pixel centres sit at integer coordinates, so
 * the pixel (x, y) covers [x - 0.5, x + 0.5] x [y - 0.5, y + 0.5]. (ImageJ ROI coordinates put the
 * pixel corner at integers: subtract 0.5 from them before calling.)
 *
 * All functions follow the rules of ferrolens.h: re-entrant, no printing, inputs are const, outputs
 * are written only on success, errors leave a sentence in fl_ctx_message(ctx). Every result is
 * independent of the thread count (these are single-threaded: the images are small).
 */
#ifndef FERROLENS_WALLS_H
#define FERROLENS_WALLS_H

#include "ferrolens/ferrolens.h"

#ifdef __cplusplus
extern "C" {
#endif

/* mask = (prob >= threshold) for every pixel. NaN is background. threshold must be finite. */
fl_status fl_walls_threshold(fl_ctx *ctx, const float *prob, int64_t width, int64_t height, float threshold,
                             uint8_t *mask);

/* Binary thinning to a one-pixel-wide skeleton: exactly the 2-D algorithm of
 * skimage.morphology.skeletonize (scikit-image 0.19, method "zhang": Zhang & Suen 1984 with
 * scikit-image's 256-entry lookup table; both sub-iterations scan in raster order against a frozen
 * copy, until nothing changes; the image is padded with background). skel may alias mask. */
fl_status fl_walls_skeletonize(fl_ctx *ctx, const uint8_t *mask, int64_t width, int64_t height, uint8_t *skel);

/* ---- measurement points along the skeleton ---------------------------------------------------------
 * The skeleton (as given: call fl_walls_skeletonize first for a thick mask) is traced into ordered
 * paths. A pixel whose 8-neighbourhood ring, read circularly, holds >= 3 separate runs of wall pixels
 * (crossing number >= 3) is a junction;
 * junction pixels belong to no path, so junctions split paths. Paths start, in this priority and in
 * raster order within each class, at end pixels (<= 1 run in the ring), then at pixels next to a
 * junction, then (closed loops) at any pixel left. A trace steps to an untraced non-junction
 * neighbour, 4-neighbours first (order E, S, W, N, then SE, SW, NW, NE), never between two pixels that
 * touch the same junction pixel. Every non-junction pixel
 * belongs to exactly one path. Arc length: sum of the steps (1 or sqrt 2) from the path's first pixel.
 *
 * Points per path of n pixels: every > 0: pixels 0, every, 2*every, ... (the first pixel always);
 * otherwise fraction f in (0, 1]: m = max(1, round(f * n)) pixels at indices floor((j + 0.5) n / m),
 * j = 0..m-1 (evenly spread, centred). */
typedef struct fl_wall_point {
    int32_t x, y;      /* pixel */
    int32_t path;      /* 0-based path id (paths in tracing order) */
    int32_t index;     /* pixel index along the path */
    double arc;        /* arc length from the path's first pixel, in pixels */
} fl_wall_point;

typedef struct fl_wall_paths_info {
    int32_t paths;         /* number of paths */
    int32_t loops;         /* of which closed loops (last pixel 8-adjacent to the first, >= 4 pixels) */
    int64_t path_pixels;   /* skeleton pixels on paths */
    int64_t junction_pixels;
} fl_wall_paths_info;

/* Exactly one of every (>= 1) and fraction (in (0, 1]) must be given (the other 0). *points is
 * allocated (free with fl_walls_points_free) and holds *count points ordered by path then index.
 * An empty skeleton is an error (FL_EINVAL: "no wall pixels"). info may be NULL. */
fl_status fl_walls_points(fl_ctx *ctx, const uint8_t *skel, int64_t width, int64_t height, int32_t every,
                          double fraction, fl_wall_point **points, int64_t *count, fl_wall_paths_info *info);
void fl_walls_points_free(fl_wall_point *points);

/* ---- label rasterisation -----------------------------------------------------------------------
 * Draw a polyline (nvert vertices, xy = x0, y0, x1, y1, ..., pixel-centre coordinates) into mask
 * (sets pixels to 1, leaves the others; pixels outside the image are clipped). Exact, no
 * antialiasing. width == 1: each segment is an 8-connected Bresenham line between the vertices
 * rounded to the nearest pixel (round half up: floor(v + 0.5)), both ends included. width > 1: every
 * pixel whose centre lies within distance width / 2 of the polyline. nvert == 1 draws the vertex
 * pixel (width 1) or a disc. Coordinates must be finite and within 1e6 of the image. */
fl_status fl_walls_draw_polyline(fl_ctx *ctx, const double *xy, int64_t nvert, double width, int64_t w, int64_t h,
                                 uint8_t *mask);

/* ---- mask metrics ---------------------------------------------------------------------------------
 * A predicted wall pixel is correct when a truth wall pixel lies within Euclidean distance
 * `tolerance` of it (exact distance transform, distance <= tolerance); a truth pixel is found when a
 * predicted pixel lies within `tolerance` of it. precision = correct predicted / predicted, recall =
 * found truth / truth, F1 = 2 P R / (P + R) (0 when P + R = 0); IoU = |pred AND truth| /
 * |pred OR truth| pixel for pixel (no tolerance). Conventions for empty masks: no predicted pixels
 * gives precision 0, no truth pixels gives recall 0; both empty gives 1 for all four. */
typedef struct fl_walls_metrics {
    double precision, recall, f1, iou;
    int64_t pred_pixels, truth_pixels;
    int64_t pred_correct;   /* predicted pixels within tolerance of the truth */
    int64_t truth_found;    /* truth pixels within tolerance of the prediction */
    int64_t intersection, union_pixels;
} fl_walls_metrics;

fl_status fl_walls_metrics_compute(fl_ctx *ctx, const uint8_t *pred, const uint8_t *truth, int64_t width,
                                   int64_t height, double tolerance, fl_walls_metrics *out);
/* Pool counts (micro average over images) and recompute the ratios: acc += one. */
void fl_walls_metrics_add(fl_walls_metrics *acc, const fl_walls_metrics *one);
void fl_walls_metrics_finish(fl_walls_metrics *m); /* ratios from the counts, conventions as above */

/* ---- toy model: band-excitation PFM amplitude images with wall masks ---------------------------------
 * Documented in native/src/synth/pfm_walls.h and sample-stacks/README.md. */
typedef enum fl_pfm_condition {
    FL_PFM_IN = 0,     /* in-distribution: the training conditions (random within documented ranges) */
    FL_PFM_OOD = 1,    /* out-of-distribution variants, cycling: blobs, checkerboard, inverted, noisy */
    FL_PFM_CLEAN = 2   /* in-distribution geometry, no noise, blur, tilt or scan lines */
} fl_pfm_condition;

typedef enum fl_pfm_kind {
    FL_PFM_MIXED = 0,  /* alternate: even images 180-degree walls, odd images a/c stripes */
    FL_PFM_180 = 1,
    FL_PFM_AC = 2
} fl_pfm_kind;

typedef struct fl_synth_pfm_params {
    int64_t size;       /* images are size x size pixels (128), 32..4096 */
    int32_t count;      /* images (8) */
    int32_t condition;  /* fl_pfm_condition (FL_PFM_IN) */
    int32_t kind;       /* fl_pfm_kind (FL_PFM_MIXED); ignored for FL_PFM_OOD */
    uint64_t seed;      /* (1) */
    uint64_t set;       /* independent sub-stream: 0 train, 1 test, 2 ood, ... (0) */
    /* condition overrides; < 0: drawn per image from the condition's range (all -1 by default) */
    double contrast;    /* domain amplitude A0 */
    double noise;       /* Gaussian noise sigma, in units of A0 */
    double blur;        /* Gaussian blur sigma in pixels */
    double tilt;        /* background plane: total rise across the image diagonal, units of A0 */
    double lines;       /* sigma of the per-scan-line offsets, units of A0 */
} fl_synth_pfm_params;

void fl_synth_pfm_params_default(fl_synth_pfm_params *p);

/* Short description of image i of a set (e.g. "180 walls", "a/c stripes", "ood: blobs (no walls)"),
 * as used for the slice labels. */
const char *fl_synth_pfm_label(const fl_synth_pfm_params *p, int32_t i);

/* images: count x size x size float amplitudes; masks: same, 0/1 (either may be NULL). */
fl_status fl_synth_pfm_walls(fl_ctx *ctx, const fl_synth_pfm_params *p, float *images, float *masks);

#ifdef __cplusplus
}
#endif
#endif
