/* Ferrolens engine: family 3, the 4D-STEM diffraction autoencoder (Ludacka et al. 2024, issue 4).
 *
 * Input: one detector pattern (binned, see ferrolens/stem.h), transformed x = log(I + 1) (I >= 0 raw
 * counts; values below -1 or non-finite are an error). Optional (config.normalise, off in the paper): before
 * the log, I is scaled to a fixed mean counts per pixel, so that a thickness or dose gradient (an overall
 * intensity factor) does not dominate the reconstruction error. Network (all convs 3x3, padding 1, bias; C = width):
 *   encoder: conv 1->C, then for every pooling factor p of `pools`: ConvBlock, IdentityBlock, MaxPool p;
 *            conv C->1 at the bottleneck (bh x bw), flatten, Linear(bh*bw -> embedding), ReLU = embedding z.
 *   decoder: Linear(embedding -> bh*bw) (no activation), view (1, bh, bw), conv 1->C, ConvBlock,
 *            IdentityBlock, then for every p of reversed(pools): bilinear upsampling x p (align_corners=True),
 *            ConvBlock, IdentityBlock; conv C->1 (no output activation: log-intensity units).
 *   ConvBlock(x)     = x + ReLU(LayerNorm_hw(conv3(conv2(conv1(x)))))  (no activation between the convs)
 *   IdentityBlock(x) = ReLU(LayerNorm_hw(conv(x)))                      (no skip, as the authors' code)
 *   LayerNorm_hw: statistics over each channel's plane, affine weight/bias of the plane's shape, eps 1e-5.
 * Parameter names are those of the PyTorch module STEMAE in shared/bench/torch_ref.py (encoder.0,
 * encoder.1.c1 ... encoder.1.norm, encoder.2.c, encoder.2.norm, [encoder.3 = pool], ..., fc_enc, fc_dec,
 * decoder.N...), so a state_dict of that module loads unchanged.
 *
 * Pooling rule (pools[] all 0): the bottleneck is 8 x 8 as in the paper. With r = pattern_h / 8 (must be a
 * power of two), pools are 4 while r >= 4 then a 2 if r is 2: 256 -> [4,4,2], 128 -> [4,4], 64 -> [4,2],
 * 32 -> [4], 16 -> [2], 8 -> [] (no pooling). pattern_w must then be divisible by the product (bottleneck
 * 8 x pattern_w/prod). Other sizes need explicit pools (each 2..8) whose product divides both sides.
 *
 * Loss per mini-batch of B patterns (Ludacka et al., m3_learning ConvAutoencoder.loss_function):
 *   L = MSE(x, x^) + R1 + Rc - Rd
 *   R1 = l1 * sum_{b,k} |z_bk| / B; when R1 is exactly 0 the REPORTED loss adds 0.5 (authors' quirk; no
 *        effect on gradients);
 *   Rc = contrastive / (2B) * sum_{i in S} (sum_{j in S} cos(z_i, z_j) - 1), S = rows with sum_k z_ik != 0;
 *   Rd = divergence / B * sum_b 1/2 sum_{j,k in nz(b)} |z_bj - z_bk| (non-zero entries of each row; SUBTRACTED).
 * Optimiser: PyTorch Adam; optional CyclicLR 'triangular' stepped once per epoch (epoch e uses
 *   lr = lr + (max_lr - lr) * max(0, 1 - |e / s - 2 floor(1 + e / (2 s)) + 1|), s = step_size_up).
 * Regulariser schedule: from epoch schedule_epoch (0-based; 0 = off) the weights l1_after,
 *   contrastive_after, divergence_after replace l1, contrastive, divergence.
 * The trained model holds the weights of the epoch with the lowest training loss since the last
 * regulariser change (the authors checkpoint on improving training loss).
 *
 * Determinism: same seed, same data => the same model file for any thread count.
 *
 * Initialisation (fl_dae_create): PyTorch's defaults from cfg->seed, except fc_enc.bias = +0.1 (PyTorch:
 * U(-1/sqrt(bh bw), +1/sqrt(bh bw))), so that no ReLU embedding channel starts dead. The first training of a
 * fresh model (created, never trained nor loaded) also sets the bias of the decoder's last conv to the mean
 * log(I + 1) value of the training patterns: otherwise the early Adam steps shift the whole output by the
 * mean, a gradient shared by every pattern that kills about half of the embedding channels in epoch one.
 *
 * Settings: fl_dae_config_default gives the paper's (lr 3e-5, batch 32, width 128, 225+ GPU epochs). For
 * short CPU runs use many small steps: batch 8, lr 1e-3, L1 3e-3, 20..40 epochs, width 8..16, patterns of
 * 16..64 px (bin), and normalise = -1 when a thickness/dose gradient scales the intensities (in log space such
 * a gradient is most of the reconstruction error). With the paper's tiny L1 (1e-5) the few live channels all
 * stay active on every pattern, the code is linear there and a binary factor such as +-P ends up in a rotated
 * pair of channels (each mixed with thickness); the stronger L1 (the paper's later phases use 5e-4..5e-3)
 * pushes channels into the ReLU kink where the sparse, aligned code is cheaper. Measured on the synthetic
 * stem4d set (32 x 32 det binned 2, width 8, embedding 8, 20 epochs, ~15-30 s on one core): best channel
 * balanced accuracy on +P/-P for seeds 1..8 0.969 / 0.922 / 0.969 / 0.965 / 0.973 / 0.956 / 0.968 / 0.967
 * (before the initialisation changes, lr 5e-4, L1 1e-5, seeds 1..5: 0.954 / 0.674 / 0.955 / 0.853 / 0.959).
 * The loss does not force one channel to align with a factor: train a few seeds and look at all channels.
 */
#ifndef FERROLENS_DIFFRACTION_AE_H
#define FERROLENS_DIFFRACTION_AE_H

#include "ferrolens/ferrolens.h"
#include "ferrolens/stem.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FL_DAE_MAX_POOLS 6

typedef struct fl_dae_config {
    int32_t pattern_w, pattern_h; /* BINNED pattern size the model works on (0: from the data at training) */
    int32_t bin;                  /* detector binning 1, 2, 4 applied to the source */
    int32_t width;                /* conv channels (paper 128; 16-32 on CPUs) */
    int32_t embedding;            /* 32 */
    int32_t pools[FL_DAE_MAX_POOLS]; /* all 0: derived (rule above) */
    float l1, contrastive, divergence;               /* 1e-5, 0, 0 */
    int32_t schedule_epoch;                          /* 0: no schedule */
    float l1_after, contrastive_after, divergence_after;
    float lr;                 /* 3e-5 (base lr of the cycle) */
    int32_t cyclic;           /* 0: constant lr */
    float max_lr;             /* 1e-4 */
    int32_t step_size_up;     /* epochs, 15 */
    float adam_beta1, adam_beta2, adam_eps;
    int32_t epochs;           /* 10 */
    int32_t batch;            /* 32 */
    int32_t scan_stride;      /* train on every scan_stride-th scan position in x and y (1) */
    float fraction;           /* then on a random fraction of those (1.0) */
    float normalise;          /* 0 (paper): none. > 0: every pattern is scaled to this mean counts per pixel
                               * before log(I + 1) (removes thickness / beam-current scaling); < 0: at training,
                               * the mean counts per pixel of the training patterns (stored in the model). */
    uint64_t seed;
} fl_dae_config;

void fl_dae_config_default(fl_dae_config *c);
/* Fills pools (when all 0) from pattern_w/h by the rule above; checks the sizes. */
fl_status fl_dae_derive_pools(fl_ctx *ctx, fl_dae_config *c);

typedef struct fl_dae fl_dae;

typedef struct fl_dae_epoch {
    double lr, loss, mse, l1, contrastive, divergence; /* means over the epoch's patterns; loss as reported */
} fl_dae_epoch;

typedef struct fl_dae_report {
    int32_t epochs_run;
    int32_t best_epoch;        /* 0-based epoch whose weights the model holds */
    double best_loss;
    int64_t train_patterns;
    int32_t cached;            /* 1: training set held in memory, 0: mini-batches read from the source */
    double seconds, patterns_per_second;
    int32_t cancelled;
} fl_dae_report;

/* cfg must have pattern_w/h > 0. Weights: PyTorch default initialisation from cfg->seed, fc_enc.bias = 0.1
 * (see above). */
fl_status fl_dae_create(fl_ctx *ctx, const fl_dae_config *cfg, fl_dae **out);
void fl_dae_free(fl_dae *m);
const fl_dae_config *fl_dae_get_config(const fl_dae *m);
int64_t fl_dae_param_count(const fl_dae *m);
/* Bottleneck size (bh, bw). */
void fl_dae_bottleneck(const fl_dae *m, int64_t *bh, int64_t *bw);
/* Per-epoch history of the last training (NULL / 0 before training); valid until the next train/free. */
const fl_dae_epoch *fl_dae_history(const fl_dae *m, int32_t *epochs);

/* Trains on the scan positions selected by scan_stride / fraction of `src` (binned by cfg.bin; the binned
 * size must equal pattern_w x pattern_h). The training set is held in memory (log-transformed) when it fits
 * in half the ctx memory budget; otherwise every mini-batch is read from the source (slow on large TIFFs,
 * fine on raw files). Progress: "epoch" (done, total, loss, NaN) after every epoch. On cancel: the model
 * holds the best weights so far and FL_ECANCELLED is returned (report->cancelled = 1); the report and
 * history are valid. */
fl_status fl_dae_train(fl_ctx *ctx, fl_dae *m, fl_stem4d *src, fl_dae_report *report);

/* Embedding of every pattern of src, streamed in batches: emb is patterns x embedding (pattern order of
 * the source). The batch is chosen so that network + two input buffers stay within the ctx memory budget;
 * the next batch is read by a helper thread (a POSIX thread with its own fl_ctx) while the current one
 * runs through the network. Progress stage "embed". */
fl_status fl_dae_embed(fl_ctx *ctx, const fl_dae *m, fl_stem4d *src, float *emb);
/* In-memory variants: patterns are n raw (binned) patterns of pattern_w x pattern_h. */
fl_status fl_dae_encode(fl_ctx *ctx, const fl_dae *m, const float *patterns, int64_t n, float *emb);
/* emb (n x embedding) -> n patterns in log(I + 1) units (the network output; exp(x) - 1 gives counts). */
fl_status fl_dae_decode(fl_ctx *ctx, const fl_dae *m, const float *emb, int64_t n, float *patterns);

/* Virtual-aperture patterns: for every channel k of emb (n x channels, n = patterns of src), the mean raw
 * (binned by `bin`) pattern of the ceil(frac n) patterns with the largest z_k minus the mean of the
 * ceil(frac n) with the smallest (ties broken by pattern index). out: channels x bw x bh. frac 0: 0.05. */
fl_status fl_dae_apertures(fl_ctx *ctx, fl_stem4d *src, int32_t bin, const float *emb, int64_t n, int32_t channels,
                           double frac, float *out);

/* Model files (safetensors, family "diffraction-ae", atomic save). */
fl_status fl_dae_save(fl_ctx *ctx, const fl_dae *m, const char *path);
fl_status fl_dae_load(fl_ctx *ctx, const char *path, fl_dae **out);

#ifdef __cplusplus
}
#endif
#endif
