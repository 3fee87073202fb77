/* Ferrolens engine: 4D-STEM data access and reciprocal-space tools (issue 4).
 *
 * Layout (DESIGN.md): a 4D-STEM data set is a stack of detector patterns. Each pattern is an image of
 * det_w x det_h pixels (kx = column, ky = row, row-major, ky pointing down as in any image). Pattern
 * p = sx + scan_x * sy is the pattern of scan position (sx, sy); as an ImageJ hyperstack scan x is on
 * Z (slices) and scan y on T (frames), so pattern p is TIFF page / hyperstack plane p. Scan maps
 * (COM, virtual detector images) are scan_x x scan_y images, row-major, index sx + scan_x * sy.
 *
 * Sources stream: a source holds at most one page of raw bytes and one page of floats, never the
 * whole data set, so the tools below work on files larger than memory. Reads of different sources
 * may run on different threads at the same time; one source must be used by one thread at a time
 * (it holds a file position and a page buffer).
 *
 * Binning (bin = 1, 2 or 4): each bin x bin block of detector pixels is SUMMED (total counts are
 * preserved). When det_w or det_h is not a multiple of bin, the last det_w % bin columns and
 * det_h % bin rows (right and bottom edge) are dropped. Binned pattern size: (det_w / bin) x (det_h / bin).
 * Binned pixel j covers original pixels j*bin .. j*bin + bin - 1; its centre is j*bin + (bin - 1) / 2
 * in original detector pixels. All detector coordinates of the tools (masks, COM, shifts) are in
 * ORIGINAL detector pixels (pixel centres at integer positions), whatever the binning.
 */
#ifndef FERROLENS_STEM_H
#define FERROLENS_STEM_H

#include "ferrolens/ferrolens.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fl_stem4d fl_stem4d; /* a streaming 4D-STEM source */

typedef enum fl_stem_dtype {
    FL_STEM_U8 = 0,
    FL_STEM_U16,
    FL_STEM_I16,
    FL_STEM_U32,
    FL_STEM_I32,
    FL_STEM_F32,
    FL_STEM_F64
} fl_stem_dtype;

/* "u8", "u16", "i16", "u32", "i32", "f32", "f64" -> dtype; -1 when unknown. */
int fl_stem_dtype_parse(const char *name);
const char *fl_stem_dtype_name(int dtype);

/* A raw file: a header of `offset` bytes, then scan_x * scan_y patterns of det_w * det_h samples, row
 * by row, pattern after pattern, no padding. The file size must be exactly
 * offset + det_w * det_h * scan_x * scan_y * sizeof(sample). */
typedef struct fl_stem_raw_params {
    int64_t det_w, det_h, scan_x, scan_y;
    int32_t dtype;      /* fl_stem_dtype */
    int32_t big_endian; /* 0: little-endian samples, 1: big-endian */
    uint64_t offset;    /* header bytes to skip */
} fl_stem_raw_params;

/* Open a TIFF or BigTIFF stack (8/16/32-bit integers, 32/64-bit floats, one sample per pixel, any
 * compression libtiff decodes, strips or tiles; also ImageJ's contiguous "images=N" layout with a
 * single IFD). The scan shape comes from scan_x, scan_y when both are > 0 (their product must equal
 * the number of patterns), else from the ImageJ description (slices = scan x, frames = scan y; a stack
 * with only slices is one scan row), else all pages are one scan row (scan_y = 1). */
fl_status fl_stem4d_open_tiff(fl_ctx *ctx, const char *path, int64_t scan_x, int64_t scan_y, fl_stem4d **out);
fl_status fl_stem4d_open_raw(fl_ctx *ctx, const char *path, const fl_stem_raw_params *p, fl_stem4d **out);
/* An in-memory float stack in the layout above (an ImageJ hyperstack: planes p = sx + scan_x * sy).
 * `data` is not copied: it must stay valid and unchanged until fl_stem4d_close. */
fl_status fl_stem4d_open_memory(fl_ctx *ctx, const float *data, int64_t det_w, int64_t det_h, int64_t scan_x,
                                int64_t scan_y, fl_stem4d **out);
void fl_stem4d_close(fl_stem4d *src); /* NULL is a no-op */

typedef struct fl_stem4d_info {
    int64_t det_w, det_h, scan_x, scan_y, patterns;
    int32_t dtype;         /* sample type in the file (FL_STEM_F32 for memory sources) */
    uint64_t file_bytes;   /* 0 for memory sources */
} fl_stem4d_info;
void fl_stem4d_get_info(const fl_stem4d *src, fl_stem4d_info *info);

/* Patterns [first, first + count) as float32, binned (see above): out holds
 * count * (det_w / bin) * (det_h / bin) floats. Non-finite samples in a file are passed through. */
fl_status fl_stem4d_read(fl_ctx *ctx, fl_stem4d *src, int64_t first, int64_t count, int32_t bin, float *out);

/* Streaming map over all patterns in order: reads batches of at most `batch` patterns (0: automatic),
 * binned by `bin`, and calls fn(ctx, user, first, count, patterns, bw, bh) for each (patterns: count x
 * bw x bh, valid during the call only). The batch is shrunk so that its buffer stays within a quarter
 * of the ctx memory budget (at least one pattern; 64 MiB when there is no budget). Progress stage
 * "patterns" (done / total patterns) after every batch; FL_ECANCELLED when the user cancels. A non-OK
 * status from fn stops the map and is returned (fn should set the message with fl_ctx calls it owns).
 * fn is called on the calling thread only. */
typedef fl_status (*fl_stem4d_batch_fn)(fl_ctx *ctx, void *user, int64_t first, int64_t count,
                                        const float *patterns, int64_t bw, int64_t bh);
fl_status fl_stem4d_foreach(fl_ctx *ctx, fl_stem4d *src, int64_t batch, int32_t bin, fl_stem4d_batch_fn fn,
                            void *user);

/* ---------------------------------------------------------------------------------------------
 * Centre of mass (COM) per pattern.
 *   I'(k) = max(I(k) - threshold, 0) when threshold > 0, else I(k); only pixels inside the circular
 *   mask |k - (mask_cx, mask_cy)| <= mask_r count (mask_r <= 0: the whole detector).
 *   com(p) = sum_k k I'(k) / sum_k I'(k) in original detector pixels (NaN when the sum is 0).
 *   The reference (ref_x, ref_y) is the COM of the mean pattern (same mask and threshold); the maps
 *   hold the shift com(p) - ref. magnitude = |shift|; direction = atan2(com_y, com_x) (angle from +kx
 *   towards +ky, i.e. clockwise on screen since ky points down), in radians in (-pi, pi], or degrees
 *   in (-180, 180] when degrees != 0.
 *   Histogram: hist_bins x hist_bins counts of (com_x, com_y) over [-range, range]^2, x = column,
 *   y = row (row 0 = -range); range = hist_range when > 0, else the largest finite |com_x|, |com_y|
 *   (1 when all are 0). Values outside the range and NaN shifts are not counted.
 */
typedef struct fl_stem_com_params {
    int32_t bin;
    double threshold;
    double mask_cx, mask_cy, mask_r;
    int32_t degrees;
    int32_t hist_bins;   /* 0: 128 */
    double hist_range;   /* 0: automatic */
} fl_stem_com_params;
void fl_stem_com_params_default(fl_stem_com_params *p); /* bin 1, no threshold, no mask, radians, 128 bins */

typedef struct fl_stem_com_result {
    int64_t scan_x, scan_y;
    float *com_x, *com_y, *magnitude, *direction; /* scan_x * scan_y each */
    int32_t hist_bins;
    double hist_range;
    float *hist;                                   /* hist_bins * hist_bins */
    int64_t pattern_w, pattern_h;                  /* binned pattern size */
    float *mean_pattern;                           /* pattern_w * pattern_h, binned */
    double ref_x, ref_y;                           /* COM of the mean pattern */
} fl_stem_com_result;
/* On success out owns its arrays (fl_stem_com_result_free); on failure nothing is allocated. */
fl_status fl_stem_com(fl_ctx *ctx, fl_stem4d *src, const fl_stem_com_params *p, fl_stem_com_result *out);
void fl_stem_com_result_free(fl_stem_com_result *r);

/* ---------------------------------------------------------------------------------------------
 * Virtual detector images. A binned detector pixel with centre c (original pixels) is inside
 *   FL_VDF_RECT     when x <= c_x < x + w and y <= c_y < y + h;
 *   FL_VDF_ANNULUS  when r_in <= |c - (cx, cy)| <= r_out (a disc when r_in = 0);
 *   FL_VDF_MASK     weight mask[j] (pattern_w x pattern_h floats, BINNED size; finite, any sign).
 * out[p] = sum_k w(k) I_p(k) (mean = 0) or that sum divided by sum_k w(k) (mean = 1: the mean raw
 * intensity inside the aperture, as Ludacka et al.). An empty aperture is an error.
 */
typedef enum fl_stem_vdf_shape { FL_VDF_RECT = 0, FL_VDF_ANNULUS = 1, FL_VDF_MASK = 2 } fl_stem_vdf_shape;
typedef struct fl_stem_vdf_params {
    int32_t shape;
    double x, y, w, h;              /* FL_VDF_RECT */
    double cx, cy, r_in, r_out;     /* FL_VDF_ANNULUS */
    const float *mask;              /* FL_VDF_MASK */
    int32_t mean;
    int32_t bin;
} fl_stem_vdf_params;
/* out: scan_x * scan_y floats. */
fl_status fl_stem_vdf(fl_ctx *ctx, fl_stem4d *src, const fl_stem_vdf_params *p, float *out);

/* ---------------------------------------------------------------------------------------------
 * Mean pattern over the scan positions whose select[p] != 0 (select NULL: all); binned size.
 * *count gets the number of patterns averaged (0 is an error). */
fl_status fl_stem_mean_pattern(fl_ctx *ctx, fl_stem4d *src, int32_t bin, const float *select, float *out,
                               int64_t *count);

/* Normalised cross-correlation of two w x h patterns via FFTW (circular / periodic):
 *   ncc(d) = sum_k (a(k) - mean a) (b(k + d) - mean b) / (n std a std b),  n = w h,
 * so 1 when b is a circularly shifted by d (b(k) = a(k - d)). ncc is w x h with zero shift at pixel
 * (w/2, h/2): ncc[(dy + h/2) * w + (dx + w/2)], dx in [-w/2, (w-1)/2]. *peak, *dx, *dy: the maximum
 * (first one in row-major order of ncc). A constant pattern is an error. */
fl_status fl_stem_ncc(fl_ctx *ctx, const float *a, const float *b, int64_t w, int64_t h, float *ncc, double *peak,
                      int64_t *dx, int64_t *dy);

/* Compare the mean patterns of two scan selections (select_a, select_b: scan_x * scan_y 0/1 masks):
 * mean_a, mean_b, the NCC map (fl_stem_ncc(mean_a, mean_b)) and difference = mean_a - mean_b. */
typedef struct fl_stem_compare_result {
    int64_t pattern_w, pattern_h;
    float *mean_a, *mean_b, *ncc, *difference; /* pattern_w * pattern_h each */
    int64_t count_a, count_b;
    double peak;           /* NCC maximum */
    int64_t shift_x, shift_y; /* its shift in BINNED pixels (b relative to a) */
} fl_stem_compare_result;
fl_status fl_stem_compare(fl_ctx *ctx, fl_stem4d *src, int32_t bin, const float *select_a, const float *select_b,
                          fl_stem_compare_result *out);
void fl_stem_compare_result_free(fl_stem_compare_result *r);

#ifdef __cplusplus
}
#endif
#endif
