/* Ferrolens family 2: im2spec / spec2im encoder-decoders (Kalinin, Kelley, Vasudevan, Ziatdinov,
 * arXiv 2006.01374; code ziatdinovmax/im2spec, models.py).
 *
 * Data: a STRUCTURE image (W x H, one value per pixel, pixel x + W*y) and a GRID of spectra of the same
 * field of view (W x H pixels, P points each, row-major: spectrum of pixel x + W*y at [(x + W*y) * P]).
 * Every pixel whose p x p patch lies inside the image gives one pair: the patch with rows y-p/2 ..
 * y+p/2-1 and columns x-p/2 .. x+p/2-1 (the paper's hdata[i-4:i+4, j-4:j+4] for p = 8) and the spectrum
 * of that pixel. Edge pixels whose patch leaves the frame are skipped (maps hold NaN there).
 *
 *   im2spec: patch (1, p, p) -> spectrum (1, P)      spec2im: spectrum (1, P) -> patch (1, p, p)
 *
 * Architecture exactly as models.py (conv_block = Conv(k3) -> LeakyReLU(0.1) -> BatchNorm; the dilated
 * block's output is the sum of all 12 intermediate tensors); parameters carry its state_dict names
 * (enc_conv.block.0.weight, dec_atrous.atrous_module.2.running_var, dec_out.bias, ...), so a model file's
 * tensors load into the PyTorch module (num_batches_tracked is not stored: load with strict=False).
 *
 * Training: Adam, MSE (mean), mini-batches shuffled with the seeded counter-based RNG, no LR schedule,
 * the weights of the last epoch are kept (as the paper's trainer). Train/test split is spatial: the
 * pixels whose centre lies in a rectangle (roi) or in the columns left of a cut (train_fraction of the
 * usable columns, like the paper's pos[:,1] <= 42); every other usable pixel is the test region.
 * Same seed and data => bit-identical model for any thread count.
 */
#ifndef FERROLENS_IM2SPEC_H
#define FERROLENS_IM2SPEC_H

#include "ferrolens/ferrolens.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum fl_i2s_direction {
    FL_I2S_IM2SPEC = 0, /* structure patch -> spectrum */
    FL_I2S_SPEC2IM = 1  /* spectrum -> structure patch */
} fl_i2s_direction;

typedef struct fl_i2s_config {
    int32_t direction;   /* fl_i2s_direction */
    int32_t patch;       /* p: 8 or 16 */
    int32_t latent;      /* z >= 1 (paper: 2 or 10) */
    int32_t filters;     /* nb_filters_enc = nb_filters_dec (64) */
    int32_t points;      /* P, set from the data by training (0 before) */
    /* training */
    int32_t epochs;      /* 100 */
    int32_t batch;       /* 64 */
    float lr;            /* 1e-3 */
    float adam_beta1, adam_beta2, adam_eps; /* PyTorch defaults 0.9, 0.999, 1e-8 */
    uint64_t seed;       /* 1 */
    /* train region: roi_w > 0 and roi_h > 0 -> pixels with x in [roi_x, roi_x+roi_w) and y in
     * [roi_y, roi_y+roi_h); otherwise the leftmost round(train_fraction * usable columns) columns. */
    int32_t roi_x, roi_y, roi_w, roi_h;
    float train_fraction; /* (0,1); 0.75 */
    /* 0 (default, as the paper): raw values. 1: inputs and targets are each z-scored with one global
     * mean and standard deviation fitted on the training pixels (stored in the model; predictions are
     * returned in raw units). Helps when the values are far from unit scale (e.g. 1e-4). */
    int32_t standardise;
} fl_i2s_config;

void fl_i2s_config_default(fl_i2s_config *cfg);

/* The data of one field of view. structure: sw x sh floats; spectra: gw x gh x points floats; both must
 * have the same size (W = sw = gw, H = sh = gh). axis: the P spectral-axis values (bias in V for
 * loops), may be NULL (then 0 .. P-1). NaN/Inf are rejected. */
typedef struct fl_i2s_data {
    const float *structure;
    int64_t sw, sh;
    const float *spectra;
    int64_t gw, gh;
    int32_t points;
    const double *axis;
} fl_i2s_data;

typedef struct fl_i2s fl_i2s;

/* Region map for an image: per pixel 0 = skipped (patch leaves the frame), 1 = train, 2 = test.
 * FL_EINVAL with a sentence when the region holds no training pixel or leaves no test pixel. */
fl_status fl_i2s_region(fl_ctx *ctx, const fl_i2s_config *cfg, int64_t W, int64_t H, uint8_t *mask);

/* Train a new model. Progress: stage "epoch" after every epoch (loss = train MSE, val_loss = test MSE).
 * On cancel after at least one epoch, *out is the model of the last finished epoch and the status is
 * FL_ECANCELLED; otherwise on failure *out is NULL. */
fl_status fl_i2s_train(fl_ctx *ctx, const fl_i2s_config *cfg, const fl_i2s_data *data, fl_i2s **out);
void fl_i2s_free(fl_i2s *m);
const fl_i2s_config *fl_i2s_get_config(const fl_i2s *m);
int64_t fl_i2s_param_count(const fl_i2s *m);
/* Values of the spectrum (P) / of the patch (p*p) the model predicts. */
int64_t fl_i2s_output_size(const fl_i2s *m);
/* Loss per epoch (MSE per value, mean over the region's samples, raw units unless standardised). */
int32_t fl_i2s_history(const fl_i2s *m, const double **train_loss, const double **test_loss);
const double *fl_i2s_axis_values(const fl_i2s *m); /* NULL if the training data had none */

/* Error-map slices written by fl_i2s_apply. The third is |A_pred - A_true| (im2spec: area of the
 * closed (bias, response) polygon, fl_loop_area) or 1 - SSIM (spec2im: 7 x 7 uniform window,
 * K1 0.01, K2 0.03, sample covariance, data range = max - min of the true patch, mean over the
 * valid (cropped) window centres, as skimage.metrics.structural_similarity). */
enum { FL_I2S_ERR_MSE = 0, FL_I2S_ERR_NRMS = 1, FL_I2S_ERR_THIRD = 2, FL_I2S_NERR = 3 };
const char *fl_i2s_error_label(const fl_i2s *m, int k); /* "MSE", "normalised RMS", "loop area error" / "1-SSIM" */

/* Region means of the errors of the model and of the baseline predictor (the mean training spectrum for
 * im2spec, the mean training patch for spec2im). */
typedef struct fl_i2s_scores {
    int64_t n_train, n_test;
    double test[FL_I2S_NERR], train[FL_I2S_NERR];
    double baseline_test[FL_I2S_NERR];
    double mse_ratio; /* test MSE / baseline test MSE */
} fl_i2s_scores;

/* Apply to a field of view (data: the model's input is required - structure for im2spec, spectra for
 * spec2im; the other may be NULL, then no errors are computed). Outputs, each may be NULL, are W*H rows
 * (NaN rows for skipped pixels): pred (W*H x fl_i2s_output_size), latent (W*H x z), errors
 * (W*H x FL_I2S_NERR). scores (needs the truth): region from the model's configuration; when that
 * region does not fit this image, every usable pixel counts as test. */
fl_status fl_i2s_apply(fl_ctx *ctx, const fl_i2s *m, const fl_i2s_data *data, float *pred, float *latent,
                       float *errors, fl_i2s_scores *scores);
/* Decode n latent vectors (n x z) into n outputs (n x fl_i2s_output_size), raw units. */
fl_status fl_i2s_decode(fl_ctx *ctx, const fl_i2s *m, const float *latent, int64_t n, float *out);

/* Model files: safetensors with the PyTorch names; metadata family "im2spec" or "spec2im". Atomic save.
 * Loading a file of another family fails with FL_EMISMATCH. */
fl_status fl_i2s_save(fl_ctx *ctx, const fl_i2s *m, const char *path);
fl_status fl_i2s_load(fl_ctx *ctx, const char *path, fl_i2s **out);

#ifdef __cplusplus
}
#endif
#endif
