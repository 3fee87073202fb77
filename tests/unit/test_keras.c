/* Keras HDF5 import (io/keras_hdf5.c) and the test-only .npy reader (npy.c). */
#include <criterion/criterion.h>

/* The unit_tests target does not get HDF5's include directory from CMake (the engine has it PRIVATE);
 * Debian keeps the serial headers in <hdf5/serial/>. */
#if __has_include(<hdf5.h>)
#include <hdf5.h>
#elif __has_include(<hdf5/serial/hdf5.h>)
#include <hdf5/serial/hdf5.h>
#else
#error "hdf5.h not found"
#endif

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fl_internal.h"
#include "io/keras_hdf5.h"
#include "npy.h"
#include "../shared/fault_injection.h"
#include "../shared/keras_h5_writer.h"

#ifndef FL_SHARED_DIR
#define FL_SHARED_DIR "../shared"
#endif
#define AGAR_DIR FL_SHARED_DIR "/data/agar-lstm-keras-weights"
#define PIEZO_W AGAR_DIR "/piezoresponse/weights.15179-0.00.hdf5"
#define PIEZO_FULL AGAR_DIR "/piezoresponse/start_seed_042.h5"
#define PIEZO_DEC AGAR_DIR "/piezoresponse/decoder_weights.00033723-0.0022.hdf5"

static int exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void need_shared(void)
{
    if (!exists(FL_SHARED_DIR "/data")) cr_skip_test("keras: ../shared/data absent");
}

static const fl_tensor *get(const fl_tensor_list *l, const char *name, int ndim, int64_t d0, int64_t d1)
{
    const fl_tensor *t = fl_tensor_list_find(l, name);
    cr_assert_not_null(t, "tensor %s missing", name);
    cr_assert_eq(t->ndim, ndim, "%s: ndim %d", name, t->ndim);
    cr_assert_eq(t->shape[0], d0, "%s: shape[0] %lld, expected %lld", name, (long long)t->shape[0], (long long)d0);
    if (ndim == 2) cr_assert_eq(t->shape[1], d1, "%s: shape[1] %lld, expected %lld", name, (long long)t->shape[1], (long long)d1);
    return t;
}

/* Names and shapes of the Agar piezo AE (H 64, bidirectional, 4+4 layers, latent 16, BN). */
static void check_agar_ae_shapes(const fl_tensor_list *l)
{
    static const char *const dirs[2] = {"", "_reverse"};
    char n[128];
    cr_assert_eq(l->count, 4 * 8 + 4 + 2 + 4 + 4 * 8 + 2, "tensor count %d", l->count);
    for (int part = 0; part < 2; part++) {
        for (int k = 0; k < 4; k++) {
            int64_t in = k == 0 ? (part == 0 ? 1 : 16) : 128;
            for (int d = 0; d < 2; d++) {
                const char *p = part == 0 ? "encoder" : "decoder";
                snprintf(n, sizeof n, "%s.%d.weight_ih_l0%s", p, k, dirs[d]);
                get(l, n, 2, 256, in);
                snprintf(n, sizeof n, "%s.%d.weight_hh_l0%s", p, k, dirs[d]);
                get(l, n, 2, 256, 64);
                snprintf(n, sizeof n, "%s.%d.bias_ih_l0%s", p, k, dirs[d]);
                get(l, n, 1, 256, 0);
                snprintf(n, sizeof n, "%s.%d.bias_hh_l0%s", p, k, dirs[d]);
                const fl_tensor *z = get(l, n, 1, 256, 0);
                for (int i = 0; i < 256; i++) cr_assert_eq(z->data[i], 0.0f, "%s must be zero", n);
            }
        }
    }
    static const char *const bn[4] = {"weight", "bias", "running_mean", "running_var"};
    for (int k = 0; k < 4; k++) {
        snprintf(n, sizeof n, "encoder_bn.%s", bn[k]);
        get(l, n, 1, 128, 0);
        snprintf(n, sizeof n, "latent_bn.%s", bn[k]);
        get(l, n, 1, 16, 0);
    }
    get(l, "embedding.weight", 2, 16, 128);
    get(l, "embedding.bias", 1, 16, 0);
    get(l, "output.weight", 2, 1, 128);
    get(l, "output.bias", 1, 1, 0);
}

static void check_agar_cfg(const fl_sae_config *c)
{
    cr_expect_eq(c->hidden, 64);
    cr_expect_eq(c->enc_layers, 4);
    cr_expect_eq(c->dec_layers, 4);
    cr_expect_eq(c->latent, 16);
    cr_expect_eq(c->bidirectional, 1);
    cr_expect_eq(c->batch_norm, 1);
    cr_expect_eq(c->hard_sigmoid, 1);
    cr_expect_eq(c->steps, 0);
    cr_expect_float_eq(c->bn_eps, 1e-3f, 1e-9f);
    cr_expect_float_eq(c->bn_momentum, 0.99f, 1e-7f);
}

Test(keras, piezo_weights_checkpoint)
{
    need_shared();
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    memset(&cfg, 0xff, sizeof cfg);
    fl_status st = fl_keras_read_lstm_ae(ctx, PIEZO_W, &l, &cfg);
    cr_assert_eq(st, FL_OK, "%s", fl_ctx_message(ctx));
    check_agar_ae_shapes(&l);
    check_agar_cfg(&cfg);

    /* spot checks against `h5dump -m %.9g -d <path> weights.15179-0.00.hdf5` */
    /* /bidirectional_1/bidirectional_1/forward_lstm_1/kernel:0 [0,2] = -0.184016883 -> weight_ih[2][0] */
    cr_expect_float_eq(fl_tensor_list_find(&l, "encoder.0.weight_ih_l0")->data[2], -0.184016883f, 1e-8f);
    /* /bidirectional_2/bidirectional_2/backward_lstm_2/recurrent_kernel:0 [3,5] = -0.0565238819 -> weight_hh_reverse[5][3] */
    cr_expect_float_eq(fl_tensor_list_find(&l, "encoder.1.weight_hh_l0_reverse")->data[5 * 64 + 3], -0.0565238819f, 1e-9f);
    /* /encoding/encoding/kernel:0 [5,2] = 0.0856920406 -> embedding.weight[2][5] */
    cr_expect_float_eq(fl_tensor_list_find(&l, "embedding.weight")->data[2 * 128 + 5], 0.0856920406f, 1e-9f);
    /* /bidirectional_8/bidirectional_8/backward_lstm_8/bias:0 [65] = 0.997268081 */
    cr_expect_float_eq(fl_tensor_list_find(&l, "decoder.3.bias_ih_l0_reverse")->data[65], 0.997268081f, 1e-8f);
    /* /batch_normalization_2/batch_normalization_2/gamma:0 [1] = 1.11649203 */
    cr_expect_float_eq(fl_tensor_list_find(&l, "latent_bn.weight")->data[1], 1.11649203f, 1e-7f);
    /* /time_distributed_1/time_distributed_1/kernel:0 [127,0] = -0.103553787; bias:0 [0] = 0.0498808101 */
    cr_expect_float_eq(fl_tensor_list_find(&l, "output.weight")->data[127], -0.103553787f, 1e-8f);
    cr_expect_float_eq(fl_tensor_list_find(&l, "output.bias")->data[0], 0.0498808101f, 1e-9f);

    cr_expect_str_eq(fl_tensor_list_get_meta(&l, "import_format"), "keras-hdf5");
    cr_expect_str_eq(fl_tensor_list_get_meta(&l, "keras_version"), "2.1.5");
    cr_expect_str_eq(fl_tensor_list_get_meta(&l, "keras_backend"), "tensorflow");
    cr_expect_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0, "HDF5 handles left open");
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
}

Test(keras, piezo_full_model_file)
{
    need_shared();
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    fl_status st = fl_keras_read_lstm_ae(ctx, PIEZO_FULL, &l, &cfg);
    cr_assert_eq(st, FL_OK, "%s", fl_ctx_message(ctx));
    check_agar_ae_shapes(&l);
    check_agar_cfg(&cfg);
    /* model_config: encoding activity_regularizer {"l1": 9.999999747378752e-06}, Dropout rate 0.2 */
    cr_expect_float_eq(cfg.l1, 1e-5f, 1e-11f, "l1 %g", cfg.l1);
    cr_expect_float_eq(cfg.dropout, 0.2f, 1e-7f);
    /* untrained seed-42 weights: unit_forget_bias -> forget block (64..127) of the bias is 1 */
    const fl_tensor *b = fl_tensor_list_find(&l, "encoder.0.bias_ih_l0");
    cr_expect_eq(b->data[63], 0.0f);
    cr_expect_eq(b->data[64], 1.0f);
    cr_expect_eq(b->data[127], 1.0f);
    cr_expect_eq(b->data[128], 0.0f);
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
}

Test(keras, piezo_decoder_file)
{
    need_shared();
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_status st = fl_keras_read_lstm_decoder(ctx, PIEZO_DEC, &l);
    cr_assert_eq(st, FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(l.count, 4 + 4 * 8 + 2, "tensor count %d", l.count);
    get(&l, "latent_bn.running_var", 1, 16, 0);
    const fl_tensor *w = get(&l, "decoder.0.weight_ih_l0", 2, 256, 16);
    get(&l, "decoder.0.weight_ih_l0_reverse", 2, 256, 16);
    get(&l, "decoder.3.weight_hh_l0_reverse", 2, 256, 64);
    get(&l, "decoder.2.weight_ih_l0", 2, 256, 128);
    get(&l, "output.weight", 2, 1, 128);
    cr_expect_null(fl_tensor_list_find(&l, "encoder.0.weight_ih_l0"));
    cr_expect_null(fl_tensor_list_find(&l, "embedding.weight"));
    /* /bidirectional_21/bidirectional_21/forward_lstm_21/kernel:0 [15,255] = -0.0545477569 */
    cr_expect_float_eq(w->data[255 * 16 + 15], -0.0545477569f, 1e-9f);
    /* /time_distributed_5/time_distributed_5/bias:0 [0] = 0.0479454733 */
    cr_expect_float_eq(fl_tensor_list_find(&l, "output.bias")->data[0], 0.0479454733f, 1e-9f);
    cr_expect_str_eq(fl_tensor_list_get_meta(&l, "keras_hidden"), "64");
    cr_expect_str_eq(fl_tensor_list_get_meta(&l, "keras_dec_layers"), "4");
    cr_expect_str_eq(fl_tensor_list_get_meta(&l, "keras_latent"), "16");
    cr_expect_str_eq(fl_tensor_list_get_meta(&l, "keras_bidirectional"), "1");
    cr_expect_str_eq(fl_tensor_list_get_meta(&l, "keras_batch_norm"), "1");
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
}

Test(keras, wrong_reader_for_file)
{
    need_shared();
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    cr_expect_eq(fl_keras_read_lstm_ae(ctx, PIEZO_DEC, &l, &cfg), FL_EFORMAT);
    cr_expect(strstr(fl_ctx_message(ctx), "decoder") != NULL, "message: %s", fl_ctx_message(ctx));
    cr_expect_eq(l.count, 0);
    cr_expect_eq(fl_keras_read_lstm_decoder(ctx, PIEZO_W, &l), FL_EFORMAT);
    cr_expect(strstr(fl_ctx_message(ctx), "autoencoder") != NULL, "message: %s", fl_ctx_message(ctx));
    cr_expect_eq(l.count, 0);
    fl_ctx_free(ctx);
}

/* ---- bad input ---------------------------------------------------------------------------------- */

static void tmp_name(char *buf, size_t cap, const char *tag)
{
    const char *dir = getenv("TMPDIR");
    snprintf(buf, cap, "%s/fl_keras_%s_%ld.h5", dir && *dir ? dir : "/tmp", tag, (long)getpid());
}

Test(keras, missing_file)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    cr_expect_eq(fl_keras_read_lstm_ae(ctx, "/nonexistent/dir/model.h5", &l, &cfg), FL_EIO);
    cr_expect(strlen(fl_ctx_message(ctx)) > 10);
    cr_expect_eq(fl_keras_read_lstm_decoder(ctx, "/nonexistent/dir/model.h5", &l), FL_EIO);
    cr_expect_eq(l.count, 0);
    fl_ctx_free(ctx);
}

Test(keras, garbage_file)
{
    char path[512];
    tmp_name(path, sizeof path, "garbage");
    FILE *fp = fopen(path, "wb");
    cr_assert_not_null(fp);
    for (int i = 0; i < 4096; i++) fputc((i * 7919) & 0xff, fp);
    fclose(fp);
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    cr_expect_eq(fl_keras_read_lstm_ae(ctx, path, &l, &cfg), FL_EFORMAT);
    cr_expect(strstr(fl_ctx_message(ctx), "not an HDF5") != NULL, "message: %s", fl_ctx_message(ctx));
    cr_expect_eq(l.count, 0);
    /* empty file */
    fp = fopen(path, "wb");
    fclose(fp);
    cr_expect_eq(fl_keras_read_lstm_decoder(ctx, path, &l), FL_EFORMAT);
    remove(path);
    fl_ctx_free(ctx);
}

static void put_names(hid_t obj, const char *attr, const char *const *names, int n)
{
    cr_assert(h5w_put_names(obj, attr, names, n) == 0, "attribute %s", attr);
}

enum bad_kind { MINI_OK, MINI_BAD_BIAS, MINI_3D, MINI_INT, MINI_MISSING, MINI_ONE_BN, MINI_GRU_SHAPE, MINI_PLAIN };

static void put_data(hid_t g, const char *name, int rank, const hsize_t *dims, float base, hid_t ftype)
{
    cr_assert(h5w_put_data(g, name, rank, dims, base, ftype, 0) == 0, "create %s", name);
}

/* A tiny one-directional AE: lstm_1 (H 2, In 1) -> encoding (latent 1) -> lstm_2 -> time_distributed_1,
 * with one defect selected by `kind`. */
static void write_mini(const char *path, enum bad_kind kind)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(f >= 0);
    if (kind == MINI_PLAIN) {
        hsize_t d[2] = {3, 5};
        put_data(f, "x", 2, d, 0.f, H5T_IEEE_F32LE);
        H5Fclose(f);
        return;
    }
    const char *layers[] = {"lstm_1", "dropout_1", "batch_normalization_1", "encoding", "repeat_vector_1",
                            "lstm_2", "time_distributed_1"};
    const char *layers_nobn[] = {"lstm_1", "dropout_1", "encoding", "repeat_vector_1", "lstm_2", "time_distributed_1"};
    if (kind == MINI_ONE_BN) put_names(f, "layer_names", layers, 7);
    else put_names(f, "layer_names", layers_nobn, 6);
    for (int i = 0; i < 7; i++) {
        if (kind != MINI_ONE_BN && i == 2) continue;
        hid_t g = H5Gcreate2(f, layers[i], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        cr_assert(g >= 0);
        if (i == 0 || i == 5) {
            char wn[3][64];
            const char *w[3] = {wn[0], wn[1], wn[2]};
            const char *base = i == 0 ? "lstm_1/lstm_1/" : "lstm_2/lstm_2/";
            snprintf(wn[0], 64, "%skernel:0", base);
            snprintf(wn[1], 64, "%srecurrent_kernel:0", base);
            snprintf(wn[2], 64, "%sbias:0", base);
            put_names(g, "weight_names", w, 3);
            hsize_t k[3] = {1, 8, 2}, rk[2] = {2, kind == MINI_GRU_SHAPE && i == 5 ? 6 : 8};
            hsize_t b[1] = {kind == MINI_BAD_BIAS && i == 5 ? 7 : 8};
            if (kind == MINI_3D && i == 0) put_data(g, wn[0], 3, k, 1.f, H5T_IEEE_F32LE);
            else put_data(g, wn[0], 2, k, 1.f, H5T_IEEE_F32LE);
            put_data(g, wn[1], 2, rk, 2.f, kind == MINI_INT && i == 0 ? H5T_STD_I32LE : H5T_IEEE_F32LE);
            if (!(kind == MINI_MISSING && i == 5)) put_data(g, wn[2], 1, b, 3.f, H5T_IEEE_F64LE);
        } else if (i == 2) {
            const char *w[4] = {"batch_normalization_1/gamma:0", "batch_normalization_1/beta:0",
                                "batch_normalization_1/moving_mean:0", "batch_normalization_1/moving_variance:0"};
            put_names(g, "weight_names", w, 4);
            hsize_t d[1] = {2};
            for (int k = 0; k < 4; k++) put_data(g, w[k], 1, d, 1.f, H5T_IEEE_F32LE);
        } else if (i == 3 || i == 6) {
            const char *w3[2] = {"encoding/kernel:0", "encoding/bias:0"};
            const char *w6[2] = {"time_distributed_1/kernel:0", "time_distributed_1/bias:0"};
            const char *const *w = i == 3 ? w3 : w6;
            put_names(g, "weight_names", w, 2);
            hsize_t k[2] = {2, 1}, b[1] = {1};
            put_data(g, w[0], 2, k, 4.f, H5T_IEEE_F32LE);
            put_data(g, w[1], 1, b, 5.f, H5T_IEEE_F32LE);
        } else {
            put_names(g, "weight_names", NULL, 0);
        }
        H5Gclose(g);
    }
    H5Fclose(f);
}

Test(keras, mini_unidirectional_ok)
{
    char path[512];
    tmp_name(path, sizeof path, "mini");
    write_mini(path, MINI_OK);
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    fl_status st = fl_keras_read_lstm_ae(ctx, path, &l, &cfg);
    remove(path);
    cr_assert_eq(st, FL_OK, "%s", fl_ctx_message(ctx));
    cr_expect_eq(cfg.hidden, 2);
    cr_expect_eq(cfg.enc_layers, 1);
    cr_expect_eq(cfg.dec_layers, 1);
    cr_expect_eq(cfg.latent, 1);
    cr_expect_eq(cfg.bidirectional, 0);
    cr_expect_eq(cfg.batch_norm, 0);
    cr_expect_eq(l.count, 4 + 2 + 4 + 2);
    cr_expect_null(fl_tensor_list_find(&l, "encoder.0.weight_ih_l0_reverse"));
    cr_expect_null(fl_tensor_list_find(&l, "encoder_bn.weight"));
    /* recurrent_kernel (2, 8) values 2 + 0.01*(j*8+g) -> weight_hh (8, 2) [g][j] */
    const fl_tensor *hh = get(&l, "encoder.0.weight_hh_l0", 2, 8, 2);
    for (int g = 0; g < 8; g++)
        for (int j = 0; j < 2; j++) cr_expect_float_eq(hh->data[g * 2 + j], 2.f + 0.01f * (float)(j * 8 + g), 1e-6f);
    const fl_tensor *b = get(&l, "decoder.0.bias_ih_l0", 1, 8, 0); /* stored as float64 */
    cr_expect_float_eq(b->data[7], 3.07f, 1e-6f);
    get(&l, "decoder.0.weight_ih_l0", 2, 8, 1);
    get(&l, "embedding.weight", 2, 1, 2);
    const fl_tensor *ow = get(&l, "output.weight", 2, 1, 2);
    cr_expect_float_eq(ow->data[1], 4.01f, 1e-6f);
    fl_tensor_list_free(&l);
    fl_ctx_free(ctx);
}

static void expect_bad(enum bad_kind kind, fl_status want, const char *needle)
{
    char path[512];
    tmp_name(path, sizeof path, "bad");
    write_mini(path, kind);
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    memset(&cfg, 0x5a, sizeof cfg);
    fl_sae_config before = cfg;
    fl_status st = fl_keras_read_lstm_ae(ctx, path, &l, &cfg);
    remove(path);
    cr_expect_eq(st, want, "kind %d: status %d (%s), expected %d", kind, st, fl_ctx_message(ctx), want);
    cr_expect(strstr(fl_ctx_message(ctx), needle) != NULL, "kind %d: message '%s' lacks '%s'", kind,
              fl_ctx_message(ctx), needle);
    cr_expect_eq(l.count, 0);
    cr_expect_null(l.items);
    cr_expect(memcmp(&cfg, &before, sizeof cfg) == 0, "cfg modified on failure");
    fl_ctx_free(ctx);
}

Test(keras, bad_hdf5_contents)
{
    expect_bad(MINI_PLAIN, FL_EFORMAT, "layer_names");
    expect_bad(MINI_BAD_BIAS, FL_EFORMAT, "bias has shape (7), expected (8)");
    expect_bad(MINI_3D, FL_EFORMAT, "3 dimensions");
    expect_bad(MINI_INT, FL_EFORMAT, "not a floating-point");
    expect_bad(MINI_MISSING, FL_EFORMAT, "lstm_2/lstm_2/bias:0");
    expect_bad(MINI_ONE_BN, FL_EUNSUPPORTED, "batch normalisation only after the encoder");
    expect_bad(MINI_GRU_SHAPE, FL_EUNSUPPORTED, "not that of an LSTM");
    /* every HDF5 handle was closed on the error paths */
    cr_expect_eq(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

/* Every allocation failure during an import is a clean FL_ENOMEM with an empty list.
 *
 * Costs (issue 6): every import forks the libhdf5 child, and the fault countdown of FL_FAULT_ALLOC
 * (core/alloc.c) is copied into the child, so that with the fork the child's allocations and the
 * parent's first allocations after fork() share the same point numbers N: a point that fails in the
 * child never fails in the parent. The sweep over the forked import of the Agar piezo weights (1297
 * points, stopped at N = 999 before it reached the end of the import) took 35-76 s. Now:
 *  1. exhaustive sweeps, N = 1, 2, ... until the import succeeds, with the child's work run in the
 *     test process (fl_keras_child_opts.in_process: the same kw_child_work, then the same parent
 *     steps), so that every allocation of the child's code and every one of the parent's fails once,
 *     over two small files that between them reach every allocation site of the reader (the code
 *     that the child runs, the safetensors round trip, build_ae, build_decoder): the smallest full model
 *     file that has every layer kind (write_min_full: BiLSTM -> BN -> encoding -> BN -> BiLSTM ->
 *     TimeDistributed Dense, /model_weights, model_config, compact datasets as in the fuzz corpus)
 *     (595 points) and the fuzz corpus's BiLSTM decoder checkpoint (303 points);
 *  2. the forked import of the full model file for N = 1..FORK_POINTS, which covers every allocation
 *     of the child (55 for this file) and the first of the parent: an out-of-memory inside the child
 *     comes back through the report as FL_ENOMEM;
 *  3. the Agar piezo weights (real size, when ../shared/data is there) through the fork, every
 *     PIEZO_STRIDE-th point only (a sample: N = 1, 1 + stride, ..., up to its success; ~1300 points).
 * About 10-17 s on the 2-core development machine under load (was 35-76 s). */
#define CORPUS_DIR FL_SOURCE_DIR "/tests/fuzz/corpus/keras"
#define FORK_POINTS 80
#define PIEZO_STRIDE 97

static void put_vlen_str(hid_t obj, const char *attr, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, attr, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(a >= 0 && H5Awrite(a, t, &value) >= 0, "attribute %s", attr);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

/* layer group `layer` with weights `roles` (relative to `prefix`) of the given shapes */
static void put_layer(hid_t parent, const char *layer, const char *prefix, int n, const char *const *roles,
                      const hsize_t (*dims)[2])
{
    hid_t g = H5Gcreate2(parent, layer, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    cr_assert(g >= 0);
    char wn[6][128];
    const char *w[6];
    for (int i = 0; i < n; i++) {
        snprintf(wn[i], sizeof wn[i], "%s/%s:0", prefix, roles[i]);
        w[i] = wn[i];
    }
    put_names(g, "weight_names", w, n);
    for (int i = 0; i < n; i++)
        cr_assert(h5w_put_data(g, wn[i], dims[i][1] ? 2 : 1, dims[i], 0.1f * (float)i, H5T_IEEE_F32LE, 1) == 0);
    H5Gclose(g);
}

/* BiLSTM (H 2, In 1) -> BN(4) -> encoding (latent 1) -> BN(1) -> BiLSTM (H 2) -> TimeDistributed Dense(1),
 * saved as a full model (model_config, /model_weights), latest file format with compact datasets. */
static void write_min_full(const char *path)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    cr_assert(f >= 0, "cannot create %s", path);
    put_vlen_str(f, "model_config",
                 "{\"class_name\": \"Model\", \"config\": {\"layers\": [{\"class_name\": \"LSTM\", \"config\": "
                 "{\"recurrent_activation\": \"sigmoid\"}}, {\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.2}}]}}");
    hid_t mw = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *layers[] = {"input_1", "bidirectional_1", "batch_normalization_1", "encoding", "batch_normalization_2",
                            "repeat_vector_1", "bidirectional_2", "time_distributed_1"};
    put_names(mw, "layer_names", layers, 8);
    put_vlen_str(mw, "keras_version", "2.1.5");
    put_vlen_str(mw, "backend", "tensorflow");
    static const char *const rnn[6] = {"forward_lstm_1/kernel", "forward_lstm_1/recurrent_kernel", "forward_lstm_1/bias",
                                       "backward_lstm_1/kernel", "backward_lstm_1/recurrent_kernel", "backward_lstm_1/bias"};
    static const char *const rnn2[6] = {"forward_lstm_2/kernel", "forward_lstm_2/recurrent_kernel", "forward_lstm_2/bias",
                                        "backward_lstm_2/kernel", "backward_lstm_2/recurrent_kernel", "backward_lstm_2/bias"};
    static const char *const bn[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    static const char *const dense[2] = {"kernel", "bias"};
    const hsize_t rnn_d[6][2] = {{1, 8}, {2, 8}, {8, 0}, {1, 8}, {2, 8}, {8, 0}};
    const hsize_t bn4[4][2] = {{4, 0}, {4, 0}, {4, 0}, {4, 0}}, bn1[4][2] = {{1, 0}, {1, 0}, {1, 0}, {1, 0}};
    const hsize_t enc_d[2][2] = {{4, 1}, {1, 0}}, out_d[2][2] = {{4, 1}, {1, 0}};
    hid_t g = H5Gcreate2(mw, "input_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    put_names(g, "weight_names", NULL, 0);
    H5Gclose(g);
    put_layer(mw, "bidirectional_1", "bidirectional_1", 6, rnn, rnn_d);
    put_layer(mw, "batch_normalization_1", "batch_normalization_1", 4, bn, bn4);
    put_layer(mw, "encoding", "encoding", 2, dense, enc_d);
    put_layer(mw, "batch_normalization_2", "batch_normalization_2", 4, bn, bn1);
    g = H5Gcreate2(mw, "repeat_vector_1", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    put_names(g, "weight_names", NULL, 0);
    H5Gclose(g);
    put_layer(mw, "bidirectional_2", "bidirectional_2", 6, rnn2, rnn_d);
    put_layer(mw, "time_distributed_1", "time_distributed_1", 2, dense, out_d);
    H5Gclose(mw);
    H5Fclose(f);
}

typedef struct alloc_job {
    const char *file;
    int decoder, in_process;
} alloc_job;

static int import_job(void *user)
{
    const alloc_job *j = user;
    fl_keras_child_opts o = {.timeout_ms = FL_KERAS_CHILD_TIMEOUT_MS, .in_process = j->in_process};
    fl_ctx *ctx = fl_ctx_new();
    fl_tensor_list l;
    fl_sae_config cfg;
    fl_status st = j->decoder ? fl_keras_read_lstm_decoder_opts(ctx, j->file, &l, &o)
                              : fl_keras_read_lstm_ae_opts(ctx, j->file, &l, &cfg, &o);
    int code = st == FL_OK ? 0 : (st == FL_ENOMEM && l.count == 0 && l.items == NULL && l.meta_count == 0) ? 1 : 2;
    if (code == 2) fprintf(stderr, "%s: status %d (%s)\n", j->file, st, fl_ctx_message(ctx));
    fl_tensor_list_free(&l);
    if (code == 0 && H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) code = 3;
    fl_ctx_free(ctx);
    return code;
}

/* FL_FAULT_ALLOC = first, first + stride, ... until the import succeeds or N passes `last` */
static int sweep_points(alloc_job *j, int first, int last, int stride, int *succeeded)
{
    return sweep_allocation_points(import_job, j, j->file, first, last, stride, succeeded);
}

Test(keras, allocation_failures, .timeout = 120)
{
    /* the result file goes through fsync(): tmpfs keeps that cheap */
    struct stat sb;
    if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0) setenv("TMPDIR", "/dev/shm", 1);
    /* every child of the sweep starts from an initialised libhdf5 (~20 % faster) */
    cr_assert_geq(H5open(), 0);
    char full[512];
    tmp_name(full, sizeof full, "minfull");
    write_min_full(full);
    int ok;
    const struct {
        const char *file;
        int decoder, min_points;
    } in_process[2] = {{full, 0, 500}, {CORPUS_DIR "/decoder_bilstm.h5", 1, 280}};
    for (int k = 0; k < 2; k++) {
        alloc_job j = {in_process[k].file, in_process[k].decoder, 1};
        int n = sweep_points(&j, 1, 100000, 1, &ok);
        cr_expect(ok, "%s: the import never succeeded", j.file);
        cr_expect_gt(n, in_process[k].min_points, "%s: only %d allocation points exercised", j.file, n);
    }
    alloc_job forked = {full, 0, 0};
    int n = sweep_points(&forked, 1, FORK_POINTS, 1, &ok);
    cr_expect(!ok && n == FORK_POINTS, "forked import: %d clean failures in %d points", n, FORK_POINTS);
    if (exists(FL_SHARED_DIR "/data")) {
        alloc_job piezo = {PIEZO_W, 0, 0};
        n = sweep_points(&piezo, 1, 100000, PIEZO_STRIDE, &ok);
        cr_expect(ok, "piezo: the import never succeeded");
        cr_expect_gt(n, 1200 / PIEZO_STRIDE, "piezo: only %d allocation points exercised", n);
    }
    {
        /* (after the sweeps: the first engine allocation of a process reads FL_FAULT_ALLOC, and the
         * children of the sweep must not inherit "no fault") the file is what it claims to be: one
         * BiLSTM layer each side, both BN, logistic recurrent activation and dropout from model_config */
        fl_ctx *ctx = fl_ctx_new();
        fl_tensor_list l;
        fl_sae_config cfg;
        cr_assert_eq(fl_keras_read_lstm_ae(ctx, full, &l, &cfg), FL_OK, "%s", fl_ctx_message(ctx));
        cr_expect(cfg.hidden == 2 && cfg.enc_layers == 1 && cfg.dec_layers == 1 && cfg.latent == 1 &&
                  cfg.bidirectional == 1 && cfg.batch_norm == 1 && cfg.hard_sigmoid == 0);
        cr_expect_float_eq(cfg.dropout, 0.2f, 1e-6f);
        cr_expect_eq(l.count, 2 * 8 + 4 + 2 + 4 + 2);
        fl_tensor_list_free(&l);
        fl_ctx_free(ctx);
    }
    remove(full);
}

/* ---- .npy reader (tests/unit/npy.c) --------------------------------------------------------------- */

Test(keras, npy_reference_files)
{
    const char *norm = FL_SHARED_DIR "/data/pzt-beps-loops/piezo_norm.npy";
    const char *emb = AGAR_DIR "/reference_outputs/piezo_embedding_ref.npy";
    if (!exists(norm) || !exists(emb)) cr_skip_test("npy: ../shared/data absent");
    char err[256] = "";
    npy_array a;
    cr_assert_eq(npy_read(norm, &a, err, sizeof err), 0, "%s", err);
    cr_expect_eq(a.ndim, 2);
    cr_expect_eq(a.shape[0], 3600);
    cr_expect_eq(a.shape[1], 96);
    cr_expect_eq(a.src_f64, 1);
    /* float64 values read with Python's struct module */
    cr_expect_float_eq(a.data[0], 1.2233597902316413f, 1e-7f);
    cr_expect_float_eq(a.data[1234 * 96 + 50], -1.4660930387162923f, 1e-7f);
    cr_expect_float_eq(a.data[3599 * 96 + 95], 1.081155756781108f, 1e-7f);
    npy_free(&a);

    cr_assert_eq(npy_read(emb, &a, err, sizeof err), 0, "%s", err);
    cr_expect_eq(a.ndim, 2);
    cr_expect_eq(a.shape[0], 3600);
    cr_expect_eq(a.shape[1], 16);
    cr_expect_eq(a.src_f64, 0);
    cr_expect_eq(a.data[0], 0.0f);
    cr_expect_eq(a.data[1], 0.004502975847572088f);
    cr_expect_eq(a.data[1000 * 16 + 7], 0.0012033141683787107f);
    /* active channels exactly {1, 7, 11, 12, 15} (README) */
    float mx[16] = {0};
    for (int64_t i = 0; i < a.shape[0]; i++)
        for (int k = 0; k < 16; k++) mx[k] = fmaxf(mx[k], a.data[i * 16 + k]);
    for (int k = 0; k < 16; k++)
        cr_expect_eq(mx[k] > 0, k == 1 || k == 7 || k == 11 || k == 12 || k == 15, "channel %d max %g", k, mx[k]);
    npy_free(&a);
}

Test(keras, npy_bad_input)
{
    char err[256] = "";
    npy_array a;
    cr_expect_eq(npy_read("/nonexistent/x.npy", &a, err, sizeof err), -1);
    cr_expect(strlen(err) > 0);
    char path[512];
    tmp_name(path, sizeof path, "npy");
    FILE *fp = fopen(path, "wb");
    static const char bad[] = "\x93NUMPY\x01\x00\x20\x00{'descr': '<i4', 'shape': (2,)}\n\x01\x00\x00\x00\x02\x00\x00\x00";
    fwrite(bad, 1, sizeof bad - 1, fp);
    fclose(fp);
    cr_expect_eq(npy_read(path, &a, err, sizeof err), -1);
    cr_expect(strstr(err, "dtype") != NULL, "%s", err);
    cr_expect_null(a.data);
    remove(path);
}
