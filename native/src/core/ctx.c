/* Context: thread knob, progress/cancel, error message, memory budget. No globals are mutated. */
#include "fl_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

const char *fl_status_name(fl_status s)
{
    switch (s) {
    case FL_OK: return "ok";
    case FL_EINVAL: return "invalid input";
    case FL_ENOMEM: return "out of memory";
    case FL_EIO: return "i/o error";
    case FL_EFORMAT: return "bad file format";
    case FL_EMISMATCH: return "model and data do not match";
    case FL_ECANCELLED: return "cancelled";
    case FL_EUNSUPPORTED: return "unsupported";
    case FL_EINTERNAL: return "internal error";
    }
    return "unknown status";
}

static int default_threads(void)
{
#ifdef _OPENMP
    int n = omp_get_num_procs();
    return n > 0 ? n : 1;
#else
    return 1;
#endif
}

fl_ctx *fl_ctx_new(void)
{
    fl_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->threads = default_threads();
    atomic_init(&ctx->cancel, 0);
    return ctx;
}

void fl_ctx_free(fl_ctx *ctx) { free(ctx); }

const char *fl_ctx_message(const fl_ctx *ctx) { return ctx ? ctx->message : "no context"; }

void fl_ctx_clear_error(fl_ctx *ctx)
{
    if (!ctx) return;
    ctx->status = FL_OK;
    ctx->message[0] = '\0';
}

void fl_ctx_set_threads(fl_ctx *ctx, int threads)
{
    if (!ctx) return;
    ctx->threads = threads > 0 ? threads : default_threads();
}

int fl_ctx_threads(const fl_ctx *ctx) { return ctx ? ctx->threads : 1; }

void fl_ctx_set_progress(fl_ctx *ctx, fl_progress_fn fn, void *user)
{
    if (!ctx) return;
    ctx->progress = fn;
    ctx->progress_user = user;
}

void fl_ctx_request_cancel(fl_ctx *ctx)
{
    if (ctx) atomic_store(&ctx->cancel, 1);
}

int fl_ctx_cancel_requested(const fl_ctx *ctx)
{
    return ctx ? atomic_load(&((fl_ctx *)ctx)->cancel) : 0;
}

void fl_ctx_set_memory_budget(fl_ctx *ctx, size_t bytes)
{
    if (ctx) ctx->memory_budget = bytes;
}

size_t fl_ctx_memory_budget(const fl_ctx *ctx) { return ctx ? ctx->memory_budget : 0; }

fl_status fl_fail(fl_ctx *ctx, fl_status s, const char *fmt, ...)
{
    if (!ctx) return s;
    ctx->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->message, sizeof ctx->message, fmt, ap);
    va_end(ap);
    return s;
}

fl_status fl_progress(fl_ctx *ctx, const char *stage, int64_t done, int64_t total, double loss, double val_loss)
{
    if (!ctx) return FL_OK;
    if (ctx->progress && ctx->progress(ctx->progress_user, stage, done, total, loss, val_loss))
        atomic_store(&ctx->cancel, 1);
    if (atomic_load(&ctx->cancel)) return fl_fail(ctx, FL_ECANCELLED, "cancelled by the user");
    return FL_OK;
}

fl_status fl_check_budget(fl_ctx *ctx, size_t bytes, const char *what)
{
    if (!ctx || ctx->memory_budget == 0 || bytes <= ctx->memory_budget) return FL_OK;
    return fl_fail(ctx, FL_ENOMEM, "%s needs about %.1f MiB of native memory, more than the budget of %.1f MiB",
                   what, bytes / 1048576.0, ctx->memory_budget / 1048576.0);
}

size_t fl_memory_available(void)
{
    /* Linux: MemAvailable (free memory plus what the page cache would give back) */
    FILE *f = fopen("/proc/meminfo", "r");
    if (f) {
        char line[256];
        unsigned long long kib = 0;
        int found = 0;
        while (!found && fgets(line, sizeof line, f)) found = sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
        fclose(f);
        if (found && kib > 0) return (size_t)kib * 1024u;
    }
#if defined(_SC_AVPHYS_PAGES) && defined(_SC_PAGESIZE)
    const long pages = sysconf(_SC_AVPHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) return (size_t)pages * (size_t)page;
#endif
    return 0;
}

double fl_now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
