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
/* The spatial calibration (pixel width, height, depth, unit) of src onto dst. */
void fl_image_copy_calibration(fl_image *dst, const fl_image *src);

fl_status fl_tiff_read(fl_ctx *ctx, const char *path, fl_image *out);
/* float32, ImageJ hyperstack description (images/channels/slices/frames/unit/spacing/min/max),
 * resolution tags for calibration, slice labels in the ImageJ metadata tags; atomic (tmp + rename). */
fl_status fl_tiff_write(fl_ctx *ctx, const char *path, const fl_image *img);
/* As fl_tiff_write; force_bigtiff != 0 writes BigTIFF even when classic TIFF would do (classic TIFF
 * is used only while the whole file stays below 4 GiB). The layout is ImageJ's: header, first IFD,
 * all planes contiguous, then the other IFDs (ImageJ reads "images=N" files that way). */
fl_status fl_tiff_write_ex(fl_ctx *ctx, const char *path, const fl_image *img, int force_bigtiff);

/* ---- page-level reading (internal: fl_tiff_read and io/stem4d.c) ------------------------------- */

typedef struct tiff TIFF; /* libtiff's handle (tiffio.h) */

/* An open libtiff handle whose errors and warnings never reach stderr: libtiff's first error
 * message since the last call that cleared it is in msg. Must not move while open (the handler
 * points at msg); zero it (or fl_tiff_close it) before use. */
typedef struct fl_tiff_reader {
    TIFF *tif;
    const char *path;   /* the caller's string, for messages */
    int64_t dir;        /* current directory, -1 when unknown */
    char msg[512];
    int have_msg;
    unsigned char *buf; /* one strip or tile */
    size_t cap;
} fl_tiff_reader;

/* Grey sample kinds; all are converted to float32. */
enum { FL_TIFF_U8, FL_TIFF_S8, FL_TIFF_U16, FL_TIFF_S16, FL_TIFF_U32, FL_TIFF_S32, FL_TIFF_F32, FL_TIFF_F64 };

typedef struct fl_tiff_page {
    uint32_t w, h;
    uint16_t bps, fmt;
    int kind;            /* FL_TIFF_* */
    size_t sample_bytes;
    int tiled;
    int is_colour;       /* set (with the failure) when the page holds RGB/palette samples */
} fl_tiff_page;

/* Checks the magic ("not a TIFF file", naming PNG/JPEG/GIF), opens without memory mapping, the
 * ctx memory budget as libtiff's allocation limit; positioned on the first page. */
fl_status fl_tiff_open(fl_ctx *ctx, const char *path, fl_tiff_reader *r);
void fl_tiff_close(fl_tiff_reader *r);
/* Number of directories (1 .. 2^24). */
fl_status fl_tiff_page_count(fl_ctx *ctx, fl_tiff_reader *r, int64_t *pages);
/* Makes directory `page` (0-based) current; `pages` is the total, for the message. */
fl_status fl_tiff_goto_page(fl_ctx *ctx, fl_tiff_reader *r, int64_t page, int64_t pages);
/* Format of the current directory (`page` for messages): one grey sample of a supported kind. */
fl_status fl_tiff_page_format(fl_ctx *ctx, fl_tiff_reader *r, int64_t page, fl_tiff_page *pf);
/* The current directory (format pf) into dst, pf->w * pf->h floats; strips or tiles, any codec. */
fl_status fl_tiff_read_page(fl_ctx *ctx, fl_tiff_reader *r, int64_t page, const fl_tiff_page *pf, float *dst);

#endif
