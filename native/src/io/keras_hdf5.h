/* Import of Keras 2.x HDF5 weight files of the Agar (2019) (Bi)LSTM autoencoder (family 1).
 *
 * Accepted files:
 *  - weights-only checkpoints (Keras `model.save_weights` / ModelCheckpoint(save_weights_only)):
 *    root attribute `layer_names`, one group per layer with attribute `weight_names`;
 *  - full model files (`model.save`): the same structure under the group /model_weights, plus the
 *    root attribute `model_config` (JSON), from which the L1 activity weight, the dropout rate and
 *    the LSTM recurrent activation are taken when present;
 *  - retrained-decoder checkpoints (fl_keras_read_lstm_decoder): [BN] -> (Bi)LSTM x D -> Dense(1).
 * The layer order comes from `layer_names`, the dataset paths from each layer's `weight_names`
 * (never guessed); the architecture is inferred from the dataset shapes. Layers without weights
 * (Dropout, RepeatVector, InputLayer) are skipped.
 *
 * Output tensors (PyTorch state_dict names and layouts; gate order i,f,g(c),o as in Keras):
 *   encoder.{l}.weight_ih_l0 (4H, In)   = Keras kernel (In, 4H) transposed
 *   encoder.{l}.weight_hh_l0 (4H, H)    = Keras recurrent_kernel (H, 4H) transposed
 *   encoder.{l}.bias_ih_l0   (4H)       = Keras bias
 *   encoder.{l}.bias_hh_l0   (4H)       = zeros
 *   ... the same with suffix `_reverse` for the backward direction of a Bidirectional layer;
 *   In = 1 for encoder.0, 2H (bidirectional) or H for later layers, latent for decoder.0.
 *   encoder_bn.{weight,bias,running_mean,running_var} (2H or H)   from the BN after the encoder
 *   embedding.weight (latent, 2H or H), embedding.bias (latent)   from the Dense `encoding`
 *   latent_bn.{weight,bias,running_mean,running_var} (latent)     from the BN after the embedding
 *   decoder.{l}.*  as for the encoder
 *   output.weight (1, 2H or H), output.bias (1)                   from the TimeDistributed Dense
 * Metadata: import_format = "keras-hdf5", keras_version, keras_backend (when the file has them).
 *
 * Isolation: libhdf5 parses the file in a forked child process (where fork() exists), so a crash
 * inside libhdf5 on a damaged file becomes FL_EFORMAT "the HDF5 library failed while reading '<file>'
 * (the file is damaged); nothing was imported" instead of killing the caller (Fiji). The child
 * writes its result into a private folder under $TMPDIR (else /tmp), removed before the call returns;
 * it is killed after FL_KERAS_CHILD_TIMEOUT_MS (60 s; FL_EFORMAT "the HDF5 library did not finish reading
 * '<file>' within 60 s (the file is damaged or far too large); nothing was imported"); cancellation
 * (fl_ctx_request_cancel) kills it at once (FL_ECANCELLED).
 * Thread safety: imports are serialised by one process-wide mutex (see keras_hdf5.c).
 */
#ifndef FL_KERAS_HDF5_H
#define FL_KERAS_HDF5_H

#include "fl_internal.h"

/* Reads a full autoencoder. `out` is initialised by the call (and left empty on failure); `cfg`
 * (may be NULL) receives fl_sae_config_default() overwritten with the inferred architecture:
 * hidden, enc_layers, dec_layers, latent, bidirectional, batch_norm, hard_sigmoid = 1 (Keras 2
 * default, 0 only if model_config says "sigmoid"), bn_eps = 1e-3, bn_momentum = 0.99, steps = 0
 * (not stored in the weights: the caller sets it), and l1 / dropout from model_config when present.
 * Errors: FL_EIO (cannot open), FL_EFORMAT (not HDF5 / not a Keras weight file / inconsistent
 * shapes), FL_EUNSUPPORTED (GRU, one BN only, multi-feature input, ...), FL_ENOMEM. */
fl_status fl_keras_read_lstm_ae(fl_ctx *ctx, const char *path, fl_tensor_list *out, fl_sae_config *cfg);

/* Reads a decoder-only checkpoint ([BN(latent)] -> D x (Bi)LSTM -> TimeDistributed Dense(1)) into
 * latent_bn.* (only if the file has the BN layer), decoder.{l}.*, output.* with the names above, so
 * that the tensors can replace those of an imported autoencoder. The inferred sizes are stored as
 * metadata: keras_hidden, keras_dec_layers, keras_latent, keras_bidirectional, keras_batch_norm. */
fl_status fl_keras_read_lstm_decoder(fl_ctx *ctx, const char *path, fl_tensor_list *out);

/* The time limit of the import child: the one place where it is set. */
#define FL_KERAS_CHILD_TIMEOUT_MS 60000

/* Internal entry points with the limits of the import child, for the unit tests
 * (tests/unit/test_keras_isolation.c, test_keras.c). The public functions above are these with
 * opts = NULL, i.e. {FL_KERAS_CHILD_TIMEOUT_MS, 0, 0, NULL}. Without fork() (KW_USE_FORK 0 in
 * keras_hdf5.c) every field is ignored and *child_pid is 0. */
typedef struct fl_keras_child_opts {
    int timeout_ms;     /* the child is killed after this long (>= 1; FL_KERAS_CHILD_TIMEOUT_MS) */
    int child_delay_ms; /* test only: the child sleeps this long before it parses (>= 0; 0) */
    int in_process;     /* test only: 1 runs the child's work (parse, safetensors file) in the calling
                         * process, without fork() and without a time limit, then the parent's
                         * steps as usual (allocation-failure sweeps: no fork per attempt) */
    long *child_pid;    /* test only: receives the id of the child (reaped before the call returns),
                         * 0 when none was started; may be NULL */
} fl_keras_child_opts;

fl_status fl_keras_read_lstm_ae_opts(fl_ctx *ctx, const char *path, fl_tensor_list *out, fl_sae_config *cfg,
                                     const fl_keras_child_opts *opts);
fl_status fl_keras_read_lstm_decoder_opts(fl_ctx *ctx, const char *path, fl_tensor_list *out,
                                          const fl_keras_child_opts *opts);

#endif
