/* Ferrolens engine: the public C API. The CLI and the JNI glue include only this header.
 *
 * Rules every function follows:
 *  - it takes an fl_ctx (thread knob, progress/cancel hook, last error message) and is re-entrant;
 *  - it never prints, exits or aborts: it returns an fl_status and leaves a sentence for the user in
 *    fl_ctx_message(ctx);
 *  - it never modifies its input arrays (they are const);
 *  - on failure its outputs are left untouched or freed (no half-built objects escape).
 */
#ifndef FERROLENS_H
#define FERROLENS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FL_VERSION_STRING "0.1.0"
#define FL_MODEL_FORMAT_VERSION 1

typedef enum fl_status {
    FL_OK = 0,
    FL_EINVAL,       /* bad argument or unusable input data (message says which) */
    FL_ENOMEM,       /* allocation failed or the memory budget would be exceeded */
    FL_EIO,          /* file could not be read or written */
    FL_EFORMAT,      /* file is not what it claims, corrupt, or of another family/version */
    FL_EMISMATCH,    /* model and data do not fit together (curve length, family, ...) */
    FL_ECANCELLED,   /* the user cancelled; partial results are valid where documented */
    FL_EUNSUPPORTED, /* valid but not supported (e.g. a TIFF sample format) */
    FL_EINTERNAL
} fl_status;

const char *fl_status_name(fl_status s);

/* ---------------------------------------------------------------------------------------------
 * Context: one per call site (one ImageJ command run, one CLI invocation). Not shared between
 * threads that run at the same time, except fl_ctx_request_cancel which may be called from any thread.
 */
typedef struct fl_ctx fl_ctx;

/* Progress hook, called only on the thread that called the engine, between work units, never from
 * inside a parallel region. `stage` is a short lowercase word ("epoch", "encode", ...).
 * `loss` is NaN when the stage has no loss. Return non-zero to request cancellation. */
typedef int (*fl_progress_fn)(void *user, const char *stage, int64_t done, int64_t total, double loss,
                              double val_loss);

fl_ctx *fl_ctx_new(void);                 /* NULL only when out of memory */
void fl_ctx_free(fl_ctx *ctx);
const char *fl_ctx_message(const fl_ctx *ctx); /* "" when no error */
void fl_ctx_clear_error(fl_ctx *ctx);
void fl_ctx_set_threads(fl_ctx *ctx, int threads); /* <= 0: all cores (OpenMP default) */
int fl_ctx_threads(const fl_ctx *ctx);
void fl_ctx_set_progress(fl_ctx *ctx, fl_progress_fn fn, void *user);
void fl_ctx_request_cancel(fl_ctx *ctx);  /* async-safe, any thread */
int fl_ctx_cancel_requested(const fl_ctx *ctx);
/* Native memory budget in bytes for one call (0 = no limit). Commands refuse up front, with the
 * numbers, when their estimate exceeds it. */
void fl_ctx_set_memory_budget(fl_ctx *ctx, size_t bytes);
size_t fl_ctx_memory_budget(const fl_ctx *ctx);

/* ---------------------------------------------------------------------------------------------
 * Family 1: sparse (Bi)LSTM spectral autoencoder (Agar 2019, Holstad 2020).
 *
 * curve (T) -> enc_layers x (Bi)LSTM(hidden) [dropout between] -> last step -> [BN] -> Linear(latent)
 * -> ReLU (= embedding, L1 activity penalty) -> [BN] -> RepeatVector(T) -> dec_layers x (Bi)LSTM(hidden)
 * [dropout] -> time-distributed Linear(1).
 */
typedef enum fl_norm_mode {
    FL_NORM_GLOBAL = 0,   /* one mean/std over all values of the training grid (Agar) */
    FL_NORM_PER_CURVE = 1, /* each curve to zero mean, unit std */
    FL_NORM_NONE = 2
} fl_norm_mode;

typedef struct fl_sae_config {
    int32_t steps;          /* curve length T (points per curve); set from the data when 0 */
    int32_t hidden;         /* LSTM units per direction */
    int32_t enc_layers;
    int32_t dec_layers;
    int32_t latent;         /* embedding channels */
    int32_t bidirectional;  /* 1: BiLSTM (concat), 0: LSTM */
    int32_t batch_norm;     /* 1: BN after encoder and after embedding (Agar batch_norm=[True,True]) */
    int32_t hard_sigmoid;   /* 1: Keras-2 hard sigmoid recurrent activation, 0: logistic */
    float bn_eps;           /* 1e-3 (Keras) */
    float bn_momentum;      /* 0.99 (Keras: moving = m*moving + (1-m)*batch) */
    float l1;               /* L1 activity weight, summed over the mini-batch (Keras 2.1 semantics) */
    float dropout;          /* between recurrent layers */
    /* training */
    float lr;
    float adam_beta1, adam_beta2, adam_eps;
    int32_t batch;
    int32_t epochs;
    float val_split;        /* fraction of curves held out for validation/early stopping */
    int32_t patience;       /* early stopping after this many epochs without val improvement; 0 = off */
    uint64_t seed;
    /* preprocessing */
    int32_t norm_mode;      /* fl_norm_mode */
    int32_t outlier_repair; /* 1: Savitzky-Golay outlier repair (Agar filters.savgol) */
} fl_sae_config;

void fl_sae_config_default(fl_sae_config *cfg);

typedef struct fl_sae fl_sae; /* a model: architecture + weights + normalisation + metadata */

/* Per-epoch record of a training run (filled by fl_sae_train). */
typedef struct fl_sae_report {
    int32_t epochs_run;
    int32_t best_epoch;       /* 0-based epoch whose weights the model now holds */
    double best_val_loss;     /* MSE on the validation curves (normalised units) */
    double final_train_loss;  /* MSE + L1 term of the last epoch */
    double seconds_per_epoch;
    int32_t cancelled;        /* 1 if stopped by the user; the model holds the best weights so far */
} fl_sae_report;

/* FL_OK when fl_sae_create would accept cfg (steps may still be 0); else FL_EINVAL and a message naming
 * the setting and its range. Front ends call it before reading their data. */
fl_status fl_sae_check_config(fl_ctx *ctx, const fl_sae_config *cfg);
fl_status fl_sae_create(fl_ctx *ctx, const fl_sae_config *cfg, fl_sae **out);
void fl_sae_free(fl_sae *m);
const fl_sae_config *fl_sae_get_config(const fl_sae *m);
int64_t fl_sae_param_count(const fl_sae *m);

/* curves: n x T row-major raw values (T must equal cfg.steps). Fits the normalisation, trains, and
 * leaves the best-validation weights in the model. Curves with NaN/Inf are rejected unless
 * outlier_repair is on (then NaN runs are interpolated, Inf rejected). */
fl_status fl_sae_train(fl_ctx *ctx, fl_sae *m, const float *curves, int64_t n, int32_t T,
                       fl_sae_report *report);

/* Embedding (ReLU output, before BN) for n raw curves: emb is n x latent. */
fl_status fl_sae_encode(fl_ctx *ctx, const fl_sae *m, const float *curves, int64_t n, int32_t T, float *emb);
/* Decode embeddings (n x latent) into raw-unit curves (n x T). */
fl_status fl_sae_decode(fl_ctx *ctx, const fl_sae *m, const float *emb, int64_t n, float *curves);
/* Both at once; recon is n x T in raw units; either output may be NULL. */
fl_status fl_sae_apply(fl_ctx *ctx, const fl_sae *m, const float *curves, int64_t n, int32_t T, float *emb,
                       float *recon);

/* Latent traversal ("decoded curves"): channel `channel` goes through `levels` evenly spaced values
 * from 0 to its largest value in emb (n x latent, from fl_sae_encode); the other channels are held at
 * 0 (others_at_mean = 0) or at their mean over emb (1). Writes the channel values (levels) and the
 * decoded raw-unit curves (levels x T). */
fl_status fl_sae_traverse(fl_ctx *ctx, const fl_sae *m, const float *emb, int64_t n, int32_t channel,
                          int32_t levels, int32_t others_at_mean, float *values_out, float *curves_out);

/* Spectral-axis description stored in the model (values of the T points and their unit). */
fl_status fl_sae_set_axis(fl_ctx *ctx, fl_sae *m, const double *values, int32_t T, const char *label,
                          const char *unit);
const double *fl_sae_axis_values(const fl_sae *m); /* NULL if none */
const char *fl_sae_axis_unit(const fl_sae *m);
const char *fl_sae_axis_label(const fl_sae *m);

/* Model files (safetensors, PyTorch layouts and state_dict names, metadata). Save is atomic:
 * written to a temporary file beside `path`, then renamed. */
fl_status fl_sae_save(fl_ctx *ctx, const fl_sae *m, const char *path);
fl_status fl_sae_load(fl_ctx *ctx, const char *path, fl_sae **out);
/* Published Keras 2.1 HDF5 weights of Agar et al. (weights-only checkpoint or full model file).
 * Architecture is inferred from the layer shapes; `steps` is the curve length the model is used with
 * (LSTM weights do not depend on it). Normalisation is set to "none" (the published inputs are
 * already z-scored). */
fl_status fl_sae_import_keras(fl_ctx *ctx, const char *h5_path, int32_t steps, fl_sae **out);
/* Replace the decoder (latent BN, decoder LSTMs, output layer) by a retrained Keras decoder file
 * (Agar's update_decoder step); shapes must match the model. */
fl_status fl_sae_import_keras_decoder(fl_ctx *ctx, fl_sae *m, const char *h5_path);

/* One-line human description of any model file (family, version, shapes); JSON when json != 0.
 * Writes at most cap bytes (NUL-terminated). */
fl_status fl_model_info(fl_ctx *ctx, const char *path, int json, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
