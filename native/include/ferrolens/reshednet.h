/* Ferrolens family 4: the ensembled ResHedNet for domain-wall segmentation (Liu et al. 2022, atomai 0.7.4;
 * docs/model-families.md section A4). Engine API; the CLI is `ferrolens walls train|retrain|apply|live`.
 *
 * Network (names = PyTorch state_dict of ../shared/bench/torch_ref.py --family 4):
 *   ResBlk(cin, cout): r = c0(x) (1x1 conv); t = LReLU_0.01(b1(c1(r))); out = LReLU_0.01(b2(c2(t)) + r)
 *   net1 = 3 ResBlk (1 -> F) at H x W            names net1.{0..2}.{c0,c1,b1,c2,b2}
 *   net2 = MaxPool2 + 4 ResBlk (F -> 2F) at H/2  names net2.1.{0..3}.*
 *   net3 = MaxPool2 + 5 ResBlk (2F -> 4F) at H/4 names net3.1.{0..4}.*
 *   side outputs s1/s2/s3 = Conv1x1(-> 1) + BN(1) (names sK.0, sK.1), s2 and s3 bilinearly resized to H x W
 *   (align_corners false), fuse = Conv1x1(3 -> 1): the wall logit. F = nb_filters (paper 64).
 *
 * Receptive field: an output row depends on input rows within FL_RESHED_RF_RADIUS (69) rows (6 rows from
 * net1, 2 x (1 + 8) from net2 at stride 2, 4 x (1 + 10) + 4 from net3 at stride 4 and its bilinear
 * resize; the same holds for columns). The live mode relies on it.
 *
 * Training (atomai EnsembleTrainer, "from scratch"): member i is initialised with Xavier-uniform weights
 * and zero biases from seed (seed + i) and draws its patches / augmentation from its own RNG stream
 * (seed + i). One iteration = one mini-batch of `batch` random patch x patch crops (uniform over all
 * crop positions of all pairs; atomai pre-extracts 2000 crops per image, mostly duplicates), each image
 * min-max normalised to [0, 1] beforehand; augmentation per batch: min-max over the batch, then per
 * patch one of {flip both axes, flip rows, flip columns, rotate 90 degrees} (same on the mask), Gaussian
 * blur sigma = k * 0.05 px, k uniform in 1..49 (image only), gamma correction x^g, g = k / 10, k in 5..19.
 * Loss: focal loss on the BATCH-MEAN BCE (atomai quirk): CE = mean BCEWithLogits, FL = alpha (1 -
 * exp(-CE))^gamma CE, alpha 0.5, gamma 2. Adam (PyTorch), lr 1e-3. SWA: the parameters of the last
 * `swa_last` iterations are averaged; batch-norm running statistics come from the first of those
 * snapshots (atomai: no averaging, no re-estimation). No validation batch is evaluated.
 *
 * Prediction (atomai EnsemblePredictor): the image is min-max normalised to [0, 1] (a constant image
 * gives 0), every member gives sigmoid(logit) in eval mode, and the maps are the mean and the
 * population variance over members.
 */
#ifndef FERROLENS_RESHEDNET_H
#define FERROLENS_RESHEDNET_H

#include "ferrolens/ferrolens.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FL_RESHED_RF_RADIUS 69

typedef struct fl_reshed_config {
    int32_t nb_filters;   /* F: 16 (CPU default; the paper uses 64) */
    int32_t members;      /* ensemble size: 10 */
    int32_t iterations;   /* mini-batches per member: 800 */
    int32_t batch;        /* patches per mini-batch: 10 */
    int32_t patch;        /* square patch side, multiple of 4, >= 16: 64 (paper 250; 64 keeps CPU training
                             tractable and still holds ~1 RF radius around the centre) */
    float lr;             /* Adam learning rate: 1e-3 */
    int32_t swa;          /* 1: stochastic weight averaging over the last swa_last iterations */
    int32_t swa_last;     /* 30 */
    int32_t aug_flip;     /* 1: flips / 90-degree rotation */
    int32_t aug_blur;     /* 1: Gaussian blur */
    int32_t aug_gamma;    /* 1: gamma correction */
    float focal_alpha;    /* 0.5 */
    float focal_gamma;    /* 2 */
    uint64_t seed;        /* member i: seed + i (0: atomai's member seeds 0..N-1) */
} fl_reshed_config;

void fl_reshed_config_default(fl_reshed_config *cfg);

/* One training pair: a width x height image and its wall mask (row-major). The mask must be binary:
 * exactly the values 0 and one positive value (1 or 255, ...), with at least one wall pixel. */
typedef struct fl_reshed_pair {
    const float *image;
    int64_t width, height;
    const float *mask;
    int64_t mask_width, mask_height; /* must equal width, height */
} fl_reshed_pair;

typedef struct fl_reshed fl_reshed; /* an ensemble: configuration + one state per member */

/* Trains cfg->members members from scratch. On cancellation (progress hook or fl_ctx_request_cancel)
 * the members finished so far are returned as a smaller usable ensemble with FL_ECANCELLED (*out is NULL
 * when none finished). Progress: stage "iteration" (done/total over all members, loss = mean focal loss
 * of the last 10 iterations, val_loss = the member index) and stage "member" after each member. */
fl_status fl_reshed_train(fl_ctx *ctx, const fl_reshed_config *cfg, const fl_reshed_pair *pairs, int32_t npairs,
                          fl_reshed **out);
/* Fine-tunes every member from its weights (fresh Adam state, same learning rate, SWA and augmentation as
 * the configuration, batch order stream seed + i + 1000 * (number of previous retrains + 1)) for
 * `iterations` mini-batches on the new pairs. On failure or cancellation the ensemble is unchanged. */
fl_status fl_reshed_retrain(fl_ctx *ctx, fl_reshed *m, const fl_reshed_pair *pairs, int32_t npairs,
                            int32_t iterations);
void fl_reshed_free(fl_reshed *m);

const fl_reshed_config *fl_reshed_get_config(const fl_reshed *m);
int32_t fl_reshed_members(const fl_reshed *m);
int64_t fl_reshed_param_count(const fl_reshed *m); /* trainable values of one member */
/* Focal loss per iteration of the last training / retraining: members x iterations values (NaN where a
 * member did not run); NULL when none. */
const float *fl_reshed_loss_history(const fl_reshed *m, int32_t *members, int32_t *iterations);

/* Mean wall probability and population variance over members for one width x height image (any size
 * >= 4 x 4; finite values). Either output may be NULL. */
fl_status fl_reshed_apply(fl_ctx *ctx, const fl_reshed *m, const float *image, int64_t width, int64_t height,
                          float *mean, float *variance);

/* Single members' probabilities (for tests / display): probs holds members x width x height. */
fl_status fl_reshed_apply_members(fl_ctx *ctx, const fl_reshed *m, const float *image, int64_t width,
                                  int64_t height, float *probs);

/* ---- live mode: an image of width x height acquired line by line (row 0 first) -------------------------
 * The image is normalised with the fixed range [lo, hi] when lo < hi, else with the running min/max of
 * the rows acquired so far. After line r the rows [r - R, r] of the maps are refreshed (R =
 * FL_RESHED_RF_RADIUS) by running a band of input rows [s, s + B) through every member, s = a multiple of
 * 4 at or above r - 2R, B = the smallest multiple of 4 >= 2R + 5 (the whole image when smaller): row r - R
 * then sees its complete receptive field and is final; rows (r - R, r] are provisional (their
 * unacquired rows are replaced by zero padding). After the last line every row equals a full
 * fl_reshed_apply on the final image (with the same normalisation), except when the height is not a
 * multiple of 4 (the bilinear resize of the side outputs is then not shift-invariant) or the running
 * range changed after a row was finalised: fl_reshed_live_finish then recomputes the whole image once
 * (reported by fl_reshed_live_full_refreshes). Rows not acquired yet hold NaN. */
typedef struct fl_reshed_live fl_reshed_live;
/* Row mode (preferred, when every member's activations for the whole image fit in the memory budget, or
 * without one in half the memory available at the start, at least 4 GiB; 64 filters, 10 members,
 * 256 x 256: about 9.5 GB): the ensemble keeps its activations and a new line recomputes in every layer
 * only the rows it reaches (up to the new line); the maps of rows 0..r then always equal a full prediction
 * on the acquired rows with zeros below (bit for bit below 32 filters; with 32 or more, whose 3x3 layers
 * run by Winograd tiles, to float rounding, ~1e-6), and no refresh is ever needed.
 * fl_reshed_live_incremental tells which mode runs; the band mode described above is the fallback. */
int fl_reshed_live_incremental(const fl_reshed_live *lv);

fl_status fl_reshed_live_begin(fl_ctx *ctx, const fl_reshed *m, int64_t width, int64_t height, double lo, double hi,
                               fl_reshed_live **out);
/* Appends the next row (width values). */
fl_status fl_reshed_live_add_line(fl_ctx *ctx, fl_reshed_live *lv, const float *line);
/* After the last line: makes the maps final (see above). */
fl_status fl_reshed_live_finish(fl_ctx *ctx, fl_reshed_live *lv);
const float *fl_reshed_live_mean(const fl_reshed_live *lv);
const float *fl_reshed_live_variance(const fl_reshed_live *lv);
int64_t fl_reshed_live_rows(const fl_reshed_live *lv);          /* lines acquired */
int64_t fl_reshed_live_band_rows(const fl_reshed_live *lv);     /* B */
int32_t fl_reshed_live_full_refreshes(const fl_reshed_live *lv);
void fl_reshed_live_free(fl_reshed_live *lv);

/* One file with every member: tensors "member<i>.<state_dict name>", metadata family "reshednet",
 * format_version 1, members, config (JSON), training record. Atomic. */
fl_status fl_reshed_save(fl_ctx *ctx, const fl_reshed *m, const char *path);
fl_status fl_reshed_load(fl_ctx *ctx, const char *path, fl_reshed **out);

#ifdef __cplusplus
}
#endif
#endif
