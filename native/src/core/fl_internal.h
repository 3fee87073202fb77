/* Engine-internal declarations shared by all of native/src (not installed, not used by cli/ or jni/). */
#ifndef FL_INTERNAL_H
#define FL_INTERNAL_H

#include "ferrolens/ferrolens.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FL_MSG_CAP 1024

struct fl_ctx {
    int threads;                 /* resolved thread count (>= 1) */
    fl_progress_fn progress;
    void *progress_user;
    atomic_int cancel;
    size_t memory_budget;        /* bytes, 0 = unlimited */
    fl_status status;
    char message[FL_MSG_CAP];
};

/* Record an error in ctx (printf-style) and return `s`, so callers can `return fl_fail(ctx, ...)`. */
fl_status fl_fail(fl_ctx *ctx, fl_status s, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Call the progress hook (caller thread only); returns FL_ECANCELLED if the user asked to stop. */
fl_status fl_progress(fl_ctx *ctx, const char *stage, int64_t done, int64_t total, double loss, double val_loss);
/* Refuse when `bytes` exceeds the ctx budget; `what` names the job in the message. */
fl_status fl_check_budget(fl_ctx *ctx, size_t bytes, const char *what);
/* Bytes of physical memory available now (Linux MemAvailable), 0 when unknown. */
size_t fl_memory_available(void);

/* 64-byte aligned allocation; NULL on failure or on size overflow. fl_free(NULL) is a no-op.
 * When the environment variable FL_FAULT_ALLOC=N is set (tests), the N-th allocation fails. */
void *fl_alloc(size_t bytes);
void *fl_calloc(size_t count, size_t size);
void fl_free(void *p);
/* a*b and a*b*c with overflow detection: false on overflow. */
bool fl_mul_size(size_t a, size_t b, size_t *out);

double fl_now_seconds(void);

/* ---- counter-based RNG (Philox-4x32-10): value depends only on (seed, stream, counter) --------- */
typedef struct fl_rng {
    uint64_t seed;
    uint64_t stream;
    uint64_t counter;
} fl_rng;
void fl_rng_init(fl_rng *r, uint64_t seed, uint64_t stream);
uint32_t fl_rng_u32(fl_rng *r);
float fl_rng_uniform(fl_rng *r);                 /* [0,1) */
float fl_rng_normal(fl_rng *r);                  /* N(0,1), Box-Muller */
void fl_rng_shuffle(fl_rng *r, int64_t *idx, int64_t n); /* Fisher-Yates */

/* ---- named tensors: the in-memory form of a model file (safetensors / Keras import) ----------- */
typedef struct fl_tensor {
    char name[128];
    int32_t ndim;
    int64_t shape[8];
    float *data;            /* owned, fl_alloc */
} fl_tensor;

typedef struct fl_kv {
    char *key;
    char *value;
} fl_kv;

typedef struct fl_tensor_list {
    fl_tensor *items;
    int32_t count, cap;
    fl_kv *meta;            /* string -> string metadata (safetensors "__metadata__") */
    int32_t meta_count, meta_cap;
} fl_tensor_list;

void fl_tensor_list_init(fl_tensor_list *l);
void fl_tensor_list_free(fl_tensor_list *l);
int64_t fl_tensor_numel(const fl_tensor *t);
/* Adds a tensor (copies `data` when not NULL, else zero-fills); returns NULL on failure (ctx set). */
fl_tensor *fl_tensor_list_add(fl_ctx *ctx, fl_tensor_list *l, const char *name, int32_t ndim,
                              const int64_t *shape, const float *data);
const fl_tensor *fl_tensor_list_find(const fl_tensor_list *l, const char *name);
fl_status fl_tensor_list_set_meta(fl_ctx *ctx, fl_tensor_list *l, const char *key, const char *value);
const char *fl_tensor_list_get_meta(const fl_tensor_list *l, const char *key);

#endif
