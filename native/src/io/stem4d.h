/* 4D-STEM streaming sources (TIFF/BigTIFF page by page, raw files, memory): the engine side of
 * native/include/ferrolens/stem.h (fl_stem4d_open_*, fl_stem4d_read, fl_stem4d_foreach). */
#ifndef FL_IO_STEM4D_H
#define FL_IO_STEM4D_H

#include "fl_internal.h"
#include "ferrolens/stem.h"

/* Sample type not in the raw-file list but found in TIFF files (signed 8-bit). */
#define FL_STEM_I8 7

/* Binned pattern size for bin (1, 2, 4); 0 when bin is invalid or the detector is smaller than bin. */
int64_t fl_stem4d_binned(int64_t n, int32_t bin);
/* Checks bin (1, 2 or 4, not larger than the detector) and sets the binned size; message on failure. */
fl_status fl_stem4d_check_bin(fl_ctx *ctx, const fl_stem4d *src, int32_t bin, int64_t *bw, int64_t *bh);

#endif
