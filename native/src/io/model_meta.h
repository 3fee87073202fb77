/* Metadata common to every Ferrolens model file (safetensors "__metadata__"): format, family,
 * format_version and engine_version, written and checked the same way by every model family. */
#ifndef FL_MODEL_META_H
#define FL_MODEL_META_H

#include "ferrolens/ferrolens.h"
#include "fl_internal.h"
#include "io/json.h"

/* FL_MODEL_FORMAT_VERSION (ferrolens.h) as the metadata string: written, and the only one read. */
#define FL_MODEL_META_STR_(x) #x
#define FL_MODEL_META_STR(x) FL_MODEL_META_STR_(x)
#define FL_MODEL_FORMAT_VERSION_STRING FL_MODEL_META_STR(FL_MODEL_FORMAT_VERSION)

/* Sets format "ferrolens-model", family, format_version, engine_version and config (the family's
 * configuration JSON in config) on l. */
fl_status fl_model_meta_set_common(fl_ctx *ctx, fl_tensor_list *l, const char *family, const fl_strbuf *config);
/* Sets metadata `key` to the text of b; fails with "out of memory" when building b failed. */
fl_status fl_model_meta_set_buf(fl_ctx *ctx, fl_tensor_list *l, const char *key, const fl_strbuf *b);
/* Checks that l (read from path) is a Ferrolens model whose family is one of families[0..n) and whose
 * format version this engine reads; stores the family's index in *which (may be NULL). `what` names
 * the accepted families for the mismatch message ("a spectral autoencoder"). */
fl_status fl_model_meta_check(fl_ctx *ctx, const fl_tensor_list *l, const char *path, const char *const *families,
                              int n, const char *what, int *which);
/* One configuration field of a model file: an int32_t (isint) or a float at dst. */
typedef struct fl_model_field {
    const char *key;
    int isint;
    void *dst;
} fl_model_field;
/* Reads the fields f[0..n) from the JSON object j (integers: integral, |v| <= 2e9; floats: finite);
 * fails with "model configuration: '<key>' is missing or invalid" at the first bad one. */
fl_status fl_model_meta_read_fields(fl_ctx *ctx, const fl_json *j, const fl_model_field *f, size_t n);
/* Reads "seed" from j: a number in [0, 2^64); fails with "model configuration: bad seed". */
fl_status fl_model_meta_read_seed(fl_ctx *ctx, const fl_json *j, uint64_t *seed);
/* Number of values held by all tensors of l. */
int64_t fl_model_meta_values(const fl_tensor_list *l);

#endif
