/* libFuzzer target: Keras 2.x HDF5 weight import (fl_keras_read_lstm_ae, fl_keras_read_lstm_decoder)
 * on arbitrary bytes; libhdf5 parses the file, the engine validates what it gets from it. A file
 * that imports is also turned into a model and run on two curves when small. */
#include "fuzz_common.h"

#include "io/keras_hdf5.h"

#include <hdf5.h>

/* The reader must leave no HDF5 object open, whatever the file (an open file id would keep the file
 * and its descriptor alive in Fiji). */
static void check_no_open_objects(const char *after)
{
    ssize_t n = H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
    if (n != 0) {
        fprintf(stderr, "fuzz: %zd HDF5 objects left open after %s\n", n, after);
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
    fuzz_check_message(ctx, st);
    int ae_ok = st == FL_OK;
    int64_t floats = 0;
    if (ae_ok)
        for (int32_t i = 0; i < l.count; i++) floats += fl_tensor_numel(&l.items[i]);
    fl_tensor_list_free(&l);
    check_no_open_objects("fl_keras_read_lstm_ae");

    fl_ctx_clear_error(ctx);
    st = fl_keras_read_lstm_decoder(ctx, path, &l);
    fuzz_check_message(ctx, st);
    fl_tensor_list_free(&l);
    check_no_open_objects("fl_keras_read_lstm_decoder");

    if (ae_ok && floats <= 20000) {
        enum { T = 8 };
        fl_sae *m = NULL;
        fl_ctx_clear_error(ctx);
        st = fl_sae_import_keras(ctx, path, T, &m);
        fuzz_check_message(ctx, st);
        if (st == FL_OK) {
            const fl_sae_config *c = fl_sae_get_config(m);
            float curves[2 * T], recon[2 * T], emb[2 * 4096];
            for (int i = 0; i < 2 * T; i++) curves[i] = (float)(i % 5) - 2.0f;
            if (c->latent <= 4096) {
                st = fl_sae_apply(ctx, m, curves, 2, T, emb, recon);
                fuzz_check_message(ctx, st);
            }
            fl_ctx_clear_error(ctx);
            st = fl_sae_import_keras_decoder(ctx, m, path);
            fuzz_check_message(ctx, st);
        }
        fl_sae_free(m);
    }
    fl_ctx_free(ctx);
    return 0;
}
