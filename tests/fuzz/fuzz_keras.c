/* libFuzzer target: Keras 2.x HDF5 weight import (fl_keras_read_lstm_ae, fl_keras_read_lstm_decoder)
 * on arbitrary bytes; libhdf5 parses the file, the engine validates what it gets from it. A file
 * that imports is also turned into a model and run on two curves when small.
 *
 * libhdf5 runs in a child process of the import (keras_hdf5.c): a crash there (libhdf5's or ours) is a
 * clean error in this process, its sanitizer report goes to stderr and run_fuzz.sh sorts it (a report
 * whose first frame outside the sanitizer runtime is Ferrolens code fails the run). In this ASan build
 * the child also counts the HDF5 objects left open; that comes back as FL_EINTERNAL, which aborts here.
 * Leaks of the code that runs in the child are not seen (LeakSanitizer does not work after fork() from
 * a threaded process). */
#include "fuzz_common.h"

#include "io/keras_hdf5.h"

#include <hdf5.h>
#include <string.h>

/* The reader must leave no HDF5 object open, whatever the file (an open file id would keep the file
 * and its descriptor alive in Fiji): checked in the import child (FL_EINTERNAL) and here, in case a
 * platform without fork() parses in-process. No internal error either. */
static void check_no_open_objects(const char *after)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n != 0) {
        fprintf(stderr, "fuzz: %zd HDF5 objects left open after %s\n", n, after);
        abort();
    }
}

/* An input on which the import child died (libhdf5 or our reader) is not saved by libFuzzer, which saw
 * no crash: keep a copy in $FUZZ_CHILD_CRASH_DIR (run_fuzz.sh: BUILD_DIR/artifacts/keras/child/), named
 * by its FNV-1a hash, so that a sanitizer report from Ferrolens code can be reproduced. */
static void keep_child_crash(const fl_ctx *ctx, const uint8_t *data, size_t size)
{
    const char *dir = getenv("FUZZ_CHILD_CRASH_DIR");
    if (!dir || !*dir || strncmp(fl_ctx_message(ctx), "the HDF5 library failed", 23) != 0) return;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
    char p[4096];
    snprintf(p, sizeof p, "%s/child-crash-%016llx", dir, (unsigned long long)h);
    FILE *f = fopen(p, "wb");
    if (!f) return;
    fwrite(data, 1, size, f);
    fclose(f);
}

static void check_status(fl_ctx *ctx, fl_status st)
{
    fuzz_check_message(ctx, st);
    if (st == FL_EINTERNAL) {
        fprintf(stderr, "fuzz: internal error: %s\n", fl_ctx_message(ctx));
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    fl_ctx *ctx = fuzz_ctx();

    fl_tensor_list l;
    fl_sae_config cfg;
    fl_status st = fl_keras_read_lstm_ae(ctx, path, &l, &cfg);
    check_status(ctx, st);
    keep_child_crash(ctx, data, size);
    int ae_ok = st == FL_OK;
    int64_t floats = 0;
    if (ae_ok)
        for (int32_t i = 0; i < l.count; i++) floats += fl_tensor_numel(&l.items[i]);
    fl_tensor_list_free(&l);
    check_no_open_objects("fl_keras_read_lstm_ae");

    fl_ctx_clear_error(ctx);
    st = fl_keras_read_lstm_decoder(ctx, path, &l);
    check_status(ctx, st);
    fl_tensor_list_free(&l);
    check_no_open_objects("fl_keras_read_lstm_decoder");

    if (ae_ok && floats <= 20000) {
        enum { T = 8 };
        fl_sae *m = NULL;
        fl_ctx_clear_error(ctx);
        st = fl_sae_import_keras(ctx, path, T, &m);
        check_status(ctx, st);
        if (st == FL_OK) {
            const fl_sae_config *c = fl_sae_get_config(m);
            float curves[2 * T], recon[2 * T], emb[2 * 4096];
            for (int i = 0; i < 2 * T; i++) curves[i] = (float)(i % 5) - 2.0f;
            if (c->latent <= 4096) {
                st = fl_sae_apply(ctx, m, curves, 2, T, emb, recon);
                check_status(ctx, st);
            }
            fl_ctx_clear_error(ctx);
            st = fl_sae_import_keras_decoder(ctx, m, path);
            check_status(ctx, st);
        }
        fl_sae_free(m);
    }
    fl_ctx_free(ctx);
    return 0;
}
