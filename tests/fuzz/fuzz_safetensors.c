/* libFuzzer target: fl_safetensors_read, then the family-1 model loader fl_sae_load and the model
 * description fl_model_info on the same bytes; a model that loads is also run on two curves (as the
 * CLI and Fiji do right after loading), when small enough to keep the fuzzer fast. */
#include "fuzz_common.h"

#include "io/safetensors.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    fl_ctx *ctx = fuzz_ctx();

    fl_tensor_list l;
    fl_status st = fl_safetensors_read(ctx, path, &l);
    fuzz_check_message(ctx, st);
    if (st == FL_OK) {
        volatile float acc = 0;
        for (int32_t i = 0; i < l.count; i++) {
            int64_t n = fl_tensor_numel(&l.items[i]);
            for (int64_t k = 0; k < n; k++) acc += l.items[i].data[k];
        }
        (void)acc;
    }
    fl_tensor_list_free(&l);

    fl_ctx_clear_error(ctx);
    char info[2048];
    st = fl_model_info(ctx, path, 0, info, sizeof info);
    fuzz_check_message(ctx, st);
    fl_ctx_clear_error(ctx);
    st = fl_model_info(ctx, path, 1, info, sizeof info);
    fuzz_check_message(ctx, st);

    fl_ctx_clear_error(ctx);
    fl_sae *m = NULL;
    st = fl_sae_load(ctx, path, &m);
    fuzz_check_message(ctx, st);
    if (st == FL_OK && m) {
        const fl_sae_config *c = fl_sae_get_config(m);
        if (c && c->steps > 0 && c->steps <= 64 && c->latent > 0 && c->latent <= 64 &&
            fl_sae_param_count(m) <= 20000) {
            int32_t T = c->steps;
            float curves[2 * 64], recon[2 * 64], emb[2 * 64], vals[3], trav[3 * 64];
            for (int i = 0; i < 2 * T; i++) curves[i] = (float)(i % 7) - 3.0f;
            fl_ctx_clear_error(ctx);
            st = fl_sae_apply(ctx, m, curves, 2, T, emb, recon);
            fuzz_check_message(ctx, st);
            if (st == FL_OK) {
                st = fl_sae_traverse(ctx, m, emb, 2, 0, 3, 1, vals, trav);
                fuzz_check_message(ctx, st);
            }
            (void)fl_sae_axis_values(m);
            const char *u = fl_sae_axis_unit(m), *lb = fl_sae_axis_label(m);
            volatile size_t n = (u ? strlen(u) : 0) + (lb ? strlen(lb) : 0);
            (void)n;
        }
    }
    fl_sae_free(m);
    fl_ctx_free(ctx);
    return 0;
}
