/* TIFF hyperstacks as ImageJ writes and reads them (libtiff). */
#ifndef FL_TIFF_H
#define FL_TIFF_H

#include "fl_internal.h"

/* An image hyperstack in memory, always float32. Plane order is ImageJ's: channel fastest, then
 * slice (Z), then frame (T): plane p = c + C*(z + Z*t); each plane is height rows of width pixels. */
typedef struct fl_image {
    int64_t width, height;
    int64_t channels, slices, frames;
    float *data;                    /* owned (fl_alloc), width*height*channels*slices*frames */
    double pixel_width, pixel_height, pixel_depth; /* spatial calibration, 1.0 when absent */
    char unit[32];                  /* spatial unit, "pixel" when absent */
    double frame_interval;          /* 0 when absent */
    char **labels;                  /* NULL, or one malloc'd string (maybe NULL) per plane */
    int32_t source_bits;            /* 8, 16 or 32: what the file held */
    int32_t is_rgb;                 /* the file held RGB/colour samples (data is then NULL) */
} fl_image;

void fl_image_init(fl_image *img);
void fl_image_free(fl_image *img);
int64_t fl_image_planes(const fl_image *img);
/* Allocate data (zeroed) for the given dimensions; checks overflow and the ctx memory budget. */
fl_status fl_image_alloc(fl_ctx *ctx, fl_image *img, int64_t w, int64_t h, int64_t c, int64_t z, int64_t t);
fl_status fl_image_set_label(fl_ctx *ctx, fl_image *img, int64_t plane, const char *label);

fl_status fl_tiff_read(fl_ctx *ctx, const char *path, fl_image *out);
/* float32, ImageJ hyperstack description (images/channels/slices/frames/unit/spacing/min/max),
 * resolution tags for calibration, slice labels in the ImageJ metadata tags; atomic (tmp + rename). */
fl_status fl_tiff_write(fl_ctx *ctx, const char *path, const fl_image *img);
/* As fl_tiff_write; force_bigtiff != 0 writes BigTIFF even when classic TIFF would do (classic TIFF
 * is used only while the whole file stays below 4 GiB). The layout is ImageJ's: header, first IFD,
 * all planes contiguous, then the other IFDs (ImageJ reads "images=N" files that way). */
fl_status fl_tiff_write_ex(fl_ctx *ctx, const char *path, const fl_image *img, int force_bigtiff);

#endif
