/* Writes the hand-made part of the fuzz seed corpora (see make_seeds.sh), with the libraries the engine
 * reads them with, so that the seeds are small, valid and varied:
 *   keras/   tiny Keras 2.x HDF5 weight files: a weights-only LSTM autoencoder (old file format), a
 *            full-model file with model_config and /model_weights and a Bidirectional autoencoder with
 *            both BN layers (latest file format, compact datasets), and a retrained-decoder checkpoint;
 *   tiff/    8-bit, 16-bit big-endian LZW, tiled and BigTIFF pages (libtiff);
 *   json/    a few JSON documents (header-like, escapes, numbers, nesting).
 *
 *   cc -o gen_seeds gen_seeds.c $(pkg-config --cflags hdf5-serial) -lhdf5_serial -ltiff
 *   ./gen_seeds tests/fuzz/corpus
 */
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tiffio.h>

#include "../shared/keras_h5_writer.h"

static char root_dir[1024];

static void path_of(char *buf, size_t cap, const char *sub, const char *name)
{
    snprintf(buf, cap, "%s/%s/%s", root_dir, sub, name);
}

/* ---- Keras HDF5 ------------------------------------------------------------------------------------ */

static int g_compact;

static void put_names(hid_t obj, const char *attr, const char *const *names, int n)
{
    if (h5w_put_names(obj, attr, names, n)) {
        fprintf(stderr, "gen_seeds: cannot write attribute %s\n", attr);
        exit(1);
    }
}

static void put_vlen(hid_t obj, const char *attr, const char *value)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, attr, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &value);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void put_data(hid_t g, const char *name, int rank, const hsize_t *dims, float base, hid_t ftype)
{
    if (h5w_put_data(g, name, rank, dims, base, ftype, g_compact)) {
        fprintf(stderr, "gen_seeds: cannot create %s\n", name);
        exit(1);
    }
}

/* One (Bi)LSTM layer group: In inputs, H units. */
static void put_rnn(hid_t parent, const char *layer, const char *inner, int bi, hsize_t In, hsize_t H)
{
    hid_t g = H5Gcreate2(parent, layer, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    char wn[6][128];
    const char *w[6];
    static const char *roles[3] = {"kernel", "recurrent_kernel", "bias"};
    int n = bi ? 6 : 3;
    for (int i = 0; i < n; i++) {
        if (bi) snprintf(wn[i], 128, "%s/%s_%s/%s:0", layer, i < 3 ? "forward" : "backward", inner, roles[i % 3]);
        else snprintf(wn[i], 128, "%s/%s/%s:0", layer, inner, roles[i % 3]);
        w[i] = wn[i];
    }
    put_names(g, "weight_names", w, n);
    for (int i = 0; i < n; i++) {
        hsize_t k[2] = {In, 4 * H}, rk[2] = {H, 4 * H}, b[1] = {4 * H};
        if (i % 3 == 0) put_data(g, wn[i], 2, k, 0.1f, H5T_IEEE_F32LE);
        else if (i % 3 == 1) put_data(g, wn[i], 2, rk, -0.1f, H5T_IEEE_F32LE);
        else put_data(g, wn[i], 1, b, 0.0f, i == 2 ? H5T_IEEE_F64LE : H5T_IEEE_F32LE);
    }
    H5Gclose(g);
}

static void put_bn(hid_t parent, const char *layer, hsize_t n)
{
    hid_t g = H5Gcreate2(parent, layer, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    static const char *roles[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    char wn[4][128];
    const char *w[4];
    for (int i = 0; i < 4; i++) {
        snprintf(wn[i], 128, "%s/%s:0", layer, roles[i]);
        w[i] = wn[i];
    }
    put_names(g, "weight_names", w, 4);
    for (int i = 0; i < 4; i++) put_data(g, wn[i], 1, &n, i == 3 ? 1.0f : 0.0f, H5T_IEEE_F32LE);
    H5Gclose(g);
}

static void put_dense(hid_t parent, const char *layer, hsize_t in, hsize_t out)
{
    hid_t g = H5Gcreate2(parent, layer, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    char wn[2][128];
    const char *w[2] = {wn[0], wn[1]};
    snprintf(wn[0], 128, "%s/kernel:0", layer);
    snprintf(wn[1], 128, "%s/bias:0", layer);
    put_names(g, "weight_names", w, 2);
    hsize_t k[2] = {in, out};
    put_data(g, wn[0], 2, k, 0.2f, H5T_IEEE_F32LE);
    put_data(g, wn[1], 1, &out, 0.0f, H5T_IEEE_F32LE);
    H5Gclose(g);
}

static void put_empty(hid_t parent, const char *layer)
{
    hid_t g = H5Gcreate2(parent, layer, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    put_names(g, "weight_names", NULL, 0);
    H5Gclose(g);
}

static hid_t create_file(const char *name, int latest)
{
    char p[1200];
    path_of(p, sizeof p, "keras", name);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (latest) H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fcreate(p, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        fprintf(stderr, "gen_seeds: cannot create %s\n", p);
        exit(1);
    }
    g_compact = latest;
    return f;
}

static void keras_seeds(void)
{
    /* 1. weights-only LSTM AE, H 2, latent 1, no BN (old file format, contiguous datasets) */
    hid_t f = create_file("ae_lstm_weights.h5", 0);
    const char *l1[] = {"lstm_1", "dropout_1", "encoding", "repeat_vector_1", "lstm_2", "time_distributed_1"};
    put_names(f, "layer_names", l1, 6);
    put_vlen(f, "keras_version", "2.1.5");
    put_vlen(f, "backend", "tensorflow");
    put_rnn(f, "lstm_1", "lstm_1", 0, 1, 2);
    put_empty(f, "dropout_1");
    put_dense(f, "encoding", 2, 1);
    put_empty(f, "repeat_vector_1");
    put_rnn(f, "lstm_2", "lstm_2", 0, 1, 2);
    put_dense(f, "time_distributed_1", 2, 1);
    H5Fclose(f);

    /* 2. full model file: BiLSTM x2 -> BN -> encoding -> BN -> BiLSTM -> TimeDistributed Dense,
     *    model_config JSON at the root, weights under /model_weights (latest format, compact data) */
    f = create_file("ae_bilstm_full_model.h5", 1);
    put_vlen(f, "model_config",
             "{\"class_name\": \"Model\", \"config\": {\"layers\": [{\"class_name\": \"Bidirectional\", \"config\": "
             "{\"layer\": {\"class_name\": \"LSTM\", \"config\": {\"recurrent_activation\": \"hard_sigmoid\", "
             "\"dropout\": 0.0}}}}, {\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.2}}, {\"class_name\": "
             "\"Dense\", \"config\": {\"name\": \"encoding\", \"activity_regularizer\": {\"class_name\": "
             "\"L1L2\", \"config\": {\"l1\": 9.999999747378752e-05, \"l2\": 0.0}}}}]}}");
    hid_t mw = H5Gcreate2(f, "model_weights", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const char *l2[] = {"input_1", "bidirectional_1", "dropout_1", "bidirectional_2", "batch_normalization_1",
                        "encoding", "batch_normalization_2", "repeat_vector_1", "bidirectional_3", "time_distributed_1"};
    put_names(mw, "layer_names", l2, 10);
    put_vlen(mw, "keras_version", "2.1.5");
    put_vlen(mw, "backend", "tensorflow");
    put_empty(mw, "input_1");
    put_rnn(mw, "bidirectional_1", "lstm_1", 1, 1, 2);
    put_empty(mw, "dropout_1");
    put_rnn(mw, "bidirectional_2", "lstm_2", 1, 4, 2);
    put_bn(mw, "batch_normalization_1", 4);
    put_dense(mw, "encoding", 4, 2);
    put_bn(mw, "batch_normalization_2", 2);
    put_empty(mw, "repeat_vector_1");
    put_rnn(mw, "bidirectional_3", "lstm_3", 1, 2, 2);
    put_dense(mw, "time_distributed_1", 4, 1);
    H5Gclose(mw);
    H5Fclose(f);

    /* 3. retrained-decoder checkpoint for file 2: BN(latent 2) -> BiLSTM(H 2) -> TimeDistributed Dense(1) */
    f = create_file("decoder_bilstm.h5", 1);
    const char *l3[] = {"batch_normalization_2", "repeat_vector_1", "bidirectional_3", "time_distributed_1"};
    put_names(f, "layer_names", l3, 4);
    put_bn(f, "batch_normalization_2", 2);
    put_empty(f, "repeat_vector_1");
    put_rnn(f, "bidirectional_3", "lstm_3", 1, 2, 2);
    put_dense(f, "time_distributed_1", 4, 1);
    H5Fclose(f);
}

/* ---- TIFF ------------------------------------------------------------------------------------------ */

static void tiff_page(TIFF *t, uint32_t w, uint32_t h, int bps, int fmt, int tiled, int comp, const char *desc, int page)
{
    TIFFSetField(t, TIFFTAG_IMAGEWIDTH, w);
    TIFFSetField(t, TIFFTAG_IMAGELENGTH, h);
    TIFFSetField(t, TIFFTAG_BITSPERSAMPLE, bps);
    TIFFSetField(t, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(t, TIFFTAG_SAMPLEFORMAT, fmt);
    TIFFSetField(t, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK);
    TIFFSetField(t, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(t, TIFFTAG_COMPRESSION, comp);
    if (desc) TIFFSetField(t, TIFFTAG_IMAGEDESCRIPTION, desc);
    TIFFSetField(t, TIFFTAG_XRESOLUTION, 2.0f);
    TIFFSetField(t, TIFFTAG_YRESOLUTION, 2.0f);
    TIFFSetField(t, TIFFTAG_RESOLUTIONUNIT, RESUNIT_CENTIMETER);
    size_t bpp = (size_t)bps / 8;
    unsigned char *buf = calloc((size_t)w * h, bpp);
    for (size_t i = 0; i < (size_t)w * h * bpp; i++) buf[i] = (unsigned char)(i * 7 + page * 13);
    if (tiled) {
        TIFFSetField(t, TIFFTAG_TILEWIDTH, 16);
        TIFFSetField(t, TIFFTAG_TILELENGTH, 16);
        unsigned char *tile = calloc(16 * 16, bpp);
        for (uint32_t y = 0; y < h; y += 16)
            for (uint32_t x = 0; x < w; x += 16) {
                memset(tile, 0, 16 * 16 * bpp);
                for (uint32_t r = 0; r < 16 && y + r < h; r++)
                    for (uint32_t c = 0; c < 16 && x + c < w; c++)
                        memcpy(tile + (r * 16 + c) * bpp, buf + ((size_t)(y + r) * w + x + c) * bpp, bpp);
                TIFFWriteTile(t, tile, x, y, 0, 0);
            }
        free(tile);
    } else {
        TIFFSetField(t, TIFFTAG_ROWSPERSTRIP, 3);
        for (uint32_t y = 0; y < h; y++) TIFFWriteScanline(t, buf + (size_t)y * w * bpp, y, 0);
    }
    TIFFWriteDirectory(t);
    free(buf);
}

static void tiff_seed(const char *name, const char *mode, uint32_t w, uint32_t h, int pages, int bps, int fmt,
                      int tiled, int comp, const char *desc)
{
    char p[1200];
    path_of(p, sizeof p, "tiff", name);
    TIFF *t = TIFFOpen(p, mode);
    if (!t) {
        fprintf(stderr, "gen_seeds: cannot create %s\n", p);
        exit(1);
    }
    for (int i = 0; i < pages; i++) tiff_page(t, w, h, bps, fmt, tiled, comp, i == 0 ? desc : NULL, i);
    TIFFClose(t);
}

static void tiff_seeds(void)
{
    tiff_seed("u8_3pages.tif", "wl", 6, 5, 3, 8, SAMPLEFORMAT_UINT, 0, COMPRESSION_NONE,
              "ImageJ=1.54f\nimages=3\nslices=3\nunit=micron\nspacing=0.5\nloop=false\n");
    tiff_seed("u16_be_lzw.tif", "wb", 9, 7, 2, 16, SAMPLEFORMAT_UINT, 0, COMPRESSION_LZW,
              "ImageJ=1.54f\nimages=2\nframes=2\nfinterval=0.25\n");
    tiff_seed("i16_tiled_deflate.tif", "wl", 20, 18, 1, 16, SAMPLEFORMAT_INT, 1, COMPRESSION_ADOBE_DEFLATE, NULL);
    tiff_seed("f32_bigtiff_hyperstack.tif", "w8l", 4, 3, 4, 32, SAMPLEFORMAT_IEEEFP, 0, COMPRESSION_NONE,
              "ImageJ=1.54f\nimages=4\nchannels=2\nslices=2\nhyperstack=true\nmode=grayscale\n");
    tiff_seed("u8_packbits.tif", "wl", 10, 4, 1, 8, SAMPLEFORMAT_UINT, 0, COMPRESSION_PACKBITS, NULL);
}

/* ---- JSON ------------------------------------------------------------------------------------------ */

static void json_seed(const char *name, const char *text)
{
    char p[1200];
    path_of(p, sizeof p, "json", name);
    FILE *f = fopen(p, "wb");
    if (!f) {
        fprintf(stderr, "gen_seeds: cannot create %s\n", p);
        exit(1);
    }
    fwrite(text, 1, strlen(text), f);
    fclose(f);
}

static void json_seeds(void)
{
    json_seed("header.json",
              "{\"__metadata__\":{\"format\":\"ferrolens-model\",\"family\":\"spectral-ae\"},"
              "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}");
    json_seed("escapes.json", "[\"a\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\", \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\", \"\"]");
    json_seed("numbers.json", "[0, -0, 1e308, -1.5e-320, 9007199254740993, 123456789012345678901234567890, 0.1, "
                              "-12.5E+3, 2e-5, true, false, null]");
    json_seed("nested.json", "{\"a\":[[[[{\"b\":{\"c\":[1,{\"d\":[]}]}}]]]],\"e\":{},\"f\":[{},[],\"x\"]}");
    json_seed("config.json",
              "{\"steps\":8,\"hidden\":4,\"enc_layers\":1,\"dec_layers\":1,\"latent\":2,\"bidirectional\":1,"
              "\"batch_norm\":1,\"bn_eps\":0.00100000005,\"l1\":9.99999975e-05,\"seed\":42,\"norm_mode\":0}");
    json_seed("axis.json", " {\"label\":\"voltage\",\"unit\":\"V\",\"values\":[-5,-2.5,0,2.5,5]} \n");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds CORPUS_DIR (with keras/, tiff/, json/ inside)\n");
        return 2;
    }
    snprintf(root_dir, sizeof root_dir, "%s", argv[1]);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    keras_seeds();
    tiff_seeds();
    json_seeds();
    return 0;
}
