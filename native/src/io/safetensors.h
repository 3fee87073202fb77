/* safetensors model files: 8-byte little-endian header length, JSON header, raw little-endian data. */
#ifndef FL_SAFETENSORS_H
#define FL_SAFETENSORS_H

#include "fl_internal.h"

/* Writes F32 tensors and the string metadata ("__metadata__"); atomic: temp file beside path, fsync,
 * rename. */
fl_status fl_safetensors_write(fl_ctx *ctx, const char *path, const fl_tensor_list *l);
/* Reads and validates everything (header size, JSON, dtypes, shapes, offsets in bounds, no overlap,
 * data fully covered); F64/F16/BF16 are converted to float. `out` is initialised by the call. */
fl_status fl_safetensors_read(fl_ctx *ctx, const char *path, fl_tensor_list *out);

/* Largest JSON header accepted on reading (bytes). */
#define FL_SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)

/* Atomic replacement helpers shared by the writers of src/io (safetensors, TIFF):
 * fl_io_tmp_create makes a new, exclusive file "<path>.tmp-<pid>-<random>" beside `path` (same
 * directory, so rename is atomic), mode 0666 & ~umask, and returns its name in tmp[cap] and an open
 * read/write descriptor; the caller writes, fsyncs and closes it, then calls fl_io_tmp_commit (rename;
 * removes the temp file when that fails) or unlink(tmp) on failure. */
fl_status fl_io_tmp_create(fl_ctx *ctx, const char *path, char *tmp, size_t cap, int *fd_out);
fl_status fl_io_tmp_commit(fl_ctx *ctx, const char *tmp, const char *path);

#endif
