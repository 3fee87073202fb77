/* Shared helpers of the libFuzzer targets in tests/fuzz (see run_fuzz.sh).
 *
 * The engine's file readers take a path, so each input is written to one temporary file per process
 * (mkstemp in $TMPDIR, else /dev/shm, else /tmp; removed at a normal exit, left behind by a crash),
 * rewritten in place for every input. (A memfd behind /proc/self/fd/N works for libtiff and stdio but not for HDF5, which
 * resolves the real path of the file it opens.) */
#ifndef FL_FUZZ_COMMON_H
#define FL_FUZZ_COMMON_H

#define _GNU_SOURCE
#include "ferrolens/ferrolens.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Native memory budget of the fuzzed calls: what a user with --memory 256 gets; larger claims of a
 * hostile header must be refused by the budget check, not allocated. */
#define FUZZ_BUDGET ((size_t)256 << 20)

static int fuzz_fd = -1;
static char fuzz_path[512];

static void fuzz_file_remove(void)
{
    if (fuzz_path[0]) unlink(fuzz_path);
}

/* Replaces the contents of the per-process input file by data[0..size) and returns its path. */
static const char *fuzz_file(const uint8_t *data, size_t size)
{
    if (fuzz_fd < 0) {
        const char *dir = getenv("TMPDIR");
        if (!dir || !*dir) dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_path, sizeof fuzz_path, "%s/ferrolens-fuzz-XXXXXX", dir);
        fuzz_fd = mkstemp(fuzz_path);
        if (fuzz_fd < 0) {
            perror("mkstemp");
            abort();
        }
        atexit(fuzz_file_remove);
    }
    if (ftruncate(fuzz_fd, 0) != 0) abort();
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fuzz_fd, data + done, size - done, (off_t)done);
        if (w <= 0) abort();
        done += (size_t)w;
    }
    return fuzz_path;
}

/* A context as the CLI and Fiji use it: one thread (the fuzzer gets one core), a memory budget. */
static fl_ctx *fuzz_ctx(void)
{
    fl_ctx *ctx = fl_ctx_new();
    if (!ctx) abort();
    fl_ctx_set_threads(ctx, 1);
    fl_ctx_set_memory_budget(ctx, FUZZ_BUDGET);
    return ctx;
}

/* Every failure must come with a message for the user. FUZZ_VERBOSE=1 prints each status (to see
 * how far the seeds get). */
static void fuzz_check_message(fl_ctx *ctx, fl_status st)
{
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") != NULL;
    if (verbose) fprintf(stderr, "fuzz: status %d: %s\n", (int)st, fl_ctx_message(ctx));
    if (st != FL_OK && fl_ctx_message(ctx)[0] == '\0') {
        fprintf(stderr, "fuzz: status %d without an error message\n", (int)st);
        abort();
    }
}

#endif
