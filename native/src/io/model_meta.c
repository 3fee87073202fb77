/* Metadata common to every Ferrolens model file: see model_meta.h. */
#include "io/model_meta.h"

#include <math.h>
#include <string.h>

fl_status fl_model_meta_set_common(fl_ctx *ctx, fl_tensor_list *l, const char *family, const fl_strbuf *config)
{
    fl_status st = fl_tensor_list_set_meta(ctx, l, "format", "ferrolens-model");
    if (!st) st = fl_tensor_list_set_meta(ctx, l, "family", family);
    if (!st) st = fl_tensor_list_set_meta(ctx, l, "format_version", FL_MODEL_FORMAT_VERSION_STRING);
    if (!st) st = fl_tensor_list_set_meta(ctx, l, "engine_version", FL_VERSION_STRING);
    if (!st) st = fl_model_meta_set_buf(ctx, l, "config", config);
    return st;
}

fl_status fl_model_meta_set_buf(fl_ctx *ctx, fl_tensor_list *l, const char *key, const fl_strbuf *b)
{
    if (b->failed || !b->data) return fl_fail(ctx, FL_ENOMEM, "out of memory");
    return fl_tensor_list_set_meta(ctx, l, key, b->data);
}

fl_status fl_model_meta_check(fl_ctx *ctx, const fl_tensor_list *l, const char *path, const char *const *families,
                              int n, const char *what, int *which)
{
    const char *fam = fl_tensor_list_get_meta(l, "family");
    const char *ver = fl_tensor_list_get_meta(l, "format_version");
    if (!fam) return fl_fail(ctx, FL_EFORMAT, "'%s' is not a Ferrolens model (no family in its metadata)", path);
    int k = 0;
    while (k < n && strcmp(fam, families[k]) != 0) k++;
    if (k == n) return fl_fail(ctx, FL_EMISMATCH, "'%s' is a '%s' model, not %s", path, fam, what);
    if (!ver || strcmp(ver, FL_MODEL_FORMAT_VERSION_STRING) != 0)
        return fl_fail(ctx, FL_EFORMAT, "'%s' has model format version '%s'; this Ferrolens reads version %s", path,
                       ver ? ver : "(none)", FL_MODEL_FORMAT_VERSION_STRING);
    if (which) *which = k;
    return FL_OK;
}

int64_t fl_model_meta_values(const fl_tensor_list *l)
{
    int64_t have = 0;
    for (int32_t i = 0; i < l->count; i++) have += fl_tensor_numel(&l->items[i]);
    return have;
}

fl_status fl_model_meta_read_fields(fl_ctx *ctx, const fl_json *j, const fl_model_field *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const fl_json *v = fl_json_get(j, f[i].key);
        int64_t iv = 0;
        const double dv = fl_json_number(v);
        if (f[i].isint ? !fl_json_int64(v, -2000000000, 2000000000, &iv) : !isfinite(dv))
            return fl_fail(ctx, FL_EFORMAT, "model configuration: '%s' is missing or invalid", f[i].key);
        if (f[i].isint) *(int32_t *)f[i].dst = (int32_t)iv;
        else *(float *)f[i].dst = (float)dv;
    }
    return FL_OK;
}

fl_status fl_model_meta_read_seed(fl_ctx *ctx, const fl_json *j, uint64_t *seed)
{
    const double v = fl_json_number(fl_json_get(j, "seed"));
    if (!(v >= 0 && v < 18446744073709551616.0)) /* 2^64: the cast must not overflow */
        return fl_fail(ctx, FL_EFORMAT, "model configuration: bad seed");
    *seed = (uint64_t)v;
    return FL_OK;
}
