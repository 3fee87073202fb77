/* Named tensors + string metadata: the in-memory form of a model file. */
#include "fl_internal.h"

#include <stdlib.h>
#include <string.h>

void fl_tensor_list_init(fl_tensor_list *l) { memset(l, 0, sizeof *l); }

void fl_tensor_list_free(fl_tensor_list *l)
{
    if (!l) return;
    for (int32_t i = 0; i < l->count; i++) fl_free(l->items[i].data);
    for (int32_t i = 0; i < l->meta_count; i++) {
        free(l->meta[i].key);
        free(l->meta[i].value);
    }
    free(l->items);
    free(l->meta);
    memset(l, 0, sizeof *l);
}

int64_t fl_tensor_numel(const fl_tensor *t)
{
    int64_t n = 1;
    for (int32_t i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

fl_tensor *fl_tensor_list_add(fl_ctx *ctx, fl_tensor_list *l, const char *name, int32_t ndim,
                              const int64_t *shape, const float *data)
{
    if (ndim < 0 || ndim > 8 || strlen(name) >= sizeof l->items[0].name) {
        fl_fail(ctx, FL_EINVAL, "tensor '%s': bad rank or name too long", name);
        return NULL;
    }
    size_t numel = 1;
    for (int32_t i = 0; i < ndim; i++) {
        if (shape[i] < 0 || !fl_mul_size(numel, (size_t)shape[i], &numel) || numel > ((size_t)1 << 40)) {
            fl_fail(ctx, FL_EINVAL, "tensor '%s': bad shape", name);
            return NULL;
        }
    }
    if (l->count == l->cap) {
        int32_t cap = l->cap ? 2 * l->cap : 32;
        fl_tensor *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) {
            fl_fail(ctx, FL_ENOMEM, "out of memory for tensor list");
            return NULL;
        }
        l->items = items;
        l->cap = cap;
    }
    fl_tensor *t = &l->items[l->count];
    memset(t, 0, sizeof *t);
    strcpy(t->name, name);
    t->ndim = ndim;
    for (int32_t i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->data = fl_calloc(numel, sizeof(float));
    if (!t->data) {
        fl_fail(ctx, FL_ENOMEM, "out of memory for tensor '%s' (%zu values)", name, numel);
        return NULL;
    }
    if (data) memcpy(t->data, data, numel * sizeof(float));
    l->count++;
    return t;
}

const fl_tensor *fl_tensor_list_find(const fl_tensor_list *l, const char *name)
{
    for (int32_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i].name, name) == 0) return &l->items[i];
    return NULL;
}

fl_status fl_tensor_list_set_meta(fl_ctx *ctx, fl_tensor_list *l, const char *key, const char *value)
{
    for (int32_t i = 0; i < l->meta_count; i++) {
        if (strcmp(l->meta[i].key, key) == 0) {
            char *v = strdup(value);
            if (!v) return fl_fail(ctx, FL_ENOMEM, "out of memory for metadata");
            free(l->meta[i].value);
            l->meta[i].value = v;
            return FL_OK;
        }
    }
    if (l->meta_count == l->meta_cap) {
        int32_t cap = l->meta_cap ? 2 * l->meta_cap : 16;
        fl_kv *m = realloc(l->meta, (size_t)cap * sizeof *m);
        if (!m) return fl_fail(ctx, FL_ENOMEM, "out of memory for metadata");
        l->meta = m;
        l->meta_cap = cap;
    }
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return fl_fail(ctx, FL_ENOMEM, "out of memory for metadata");
    }
    l->meta[l->meta_count].key = k;
    l->meta[l->meta_count].value = v;
    l->meta_count++;
    return FL_OK;
}

const char *fl_tensor_list_get_meta(const fl_tensor_list *l, const char *key)
{
    for (int32_t i = 0; i < l->meta_count; i++)
        if (strcmp(l->meta[i].key, key) == 0) return l->meta[i].value;
    return NULL;
}
