/* Layers of the engine: allocation-free forward/backward pairs over caller-provided buffers.
 * Conventions: row-major; sequences are time-major (T, B, F) so that one time step is a contiguous
 * (B, F) matrix; backward functions ACCUMULATE (+=) into parameter gradients (the model zeroes them
 * once per step) and OVERWRITE input gradients unless stated. */
#ifndef FL_NN_H
#define FL_NN_H

#include <stdint.h>

/* ---- activations ---------------------------------------------------------------------------- */
/* Fast tanh: a [13/6] rational minimax approximation on [-7.9, 7.9] (the form of Eigen's
 * generic_fast_tanh_float), |error| < 5e-7, no libm call, so loops using it vectorise. The clamps are
 * selects, which the vectoriser if-converts (the engine builds with -fno-trapping-math). */
static inline float fl_tanh_fast(float x)
{
    const float clamp = 7.90531110763549805f;
    x = x > clamp ? clamp : x;
    x = x < -clamp ? -clamp : x;
    const float x2 = x * x;
    float p = -2.76076847742355e-16f;
    p = p * x2 + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    float q = 1.19825839466702e-06f;
    q = q * x2 + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    return p / q;
}

/* ---- LSTM, one direction ----------------------------------------------------------------------
 * Gates in PyTorch/Keras order i, f, g(c), o; W_ih (4H, In), W_hh (4H, H), one bias b (4H) (PyTorch's
 * bias_ih + bias_hh). i, f, o use the hard sigmoid clip(0.2 z + 0.5, 0, 1) (Keras 2) or the logistic;
 * h0 = c0 = 0. `reverse` runs t = T-1 ... 0 (Keras/PyTorch backward direction; outputs stay aligned
 * with t). */
typedef struct fl_lstm_shape {
    int32_t T, B, In, H;
    int32_t reverse;
    int32_t hard_sigmoid;
    int32_t repeat_input; /* X is one (B, In) matrix fed at every step (Keras RepeatVector) */
} fl_lstm_shape;

/* X: (T, B, In) with row stride ldx (or (B, In) when repeat_input). Writes the post-activation gates
 * G (T, B, 4H), the cell states C (T, B, H) and the hidden states into Y (T, B, *) with row stride
 * ldy (Y may be a column slice of a wider concatenated output). */
void fl_lstm_forward(const fl_lstm_shape *s, const float *X, int64_t ldx, const float *W_ih, const float *W_hh,
                     const float *b, float *G, float *C, float *Y, int64_t ldy);

/* dY: gradient w.r.t. this direction's hidden outputs, (T, B, *) with row stride lddy (rows of
 * steps that received no gradient must be zero). G is overwritten with the pre-activation gate
 * gradients. work: 3*B*H + B*4H floats. dX (same layout as X, stride lddx) receives dX when not
 * NULL: overwritten if accumulate_dx == 0, else added to. Parameter grads are accumulated. */
void fl_lstm_backward(const fl_lstm_shape *s, const float *X, int64_t ldx, const float *W_ih, const float *W_hh,
                      float *G, const float *C, const float *Y, int64_t ldy, const float *dY, int64_t lddy,
                      float *dX, int64_t lddx, int accumulate_dx, float *dW_ih, float *dW_hh, float *db,
                      float *work);
int64_t fl_lstm_backward_work_size(const fl_lstm_shape *s);

/* ---- Linear: Y (B, Out) = X (B, In) W^T + b, W (Out, In) -------------------------------------- */
void fl_linear_forward(int64_t B, int64_t In, int64_t Out, const float *X, int64_t ldx, const float *W,
                       const float *b, float *Y, int64_t ldy);
/* dX overwritten (if not NULL); dW, db accumulated. */
void fl_linear_backward(int64_t B, int64_t In, int64_t Out, const float *X, int64_t ldx, const float *W,
                        const float *dY, int64_t lddy, float *dX, int64_t lddx, float *dW, float *db);

/* ---- Batch normalisation over the rows of X (B, F) ---------------------------------------------
 * Training: batch statistics (biased variance for normalising), running stats updated as Keras:
 * running = momentum * running + (1 - momentum) * batch (variance unbiased, n/(n-1)).
 * Saves xhat (B, F) and inv_std (F) for backward. Inference: running statistics. */
void fl_batchnorm_forward_train(int64_t B, int64_t F, const float *X, const float *gamma, const float *beta,
                                float eps, float momentum, float *running_mean, float *running_var, float *xhat,
                                float *inv_std, float *Y);
void fl_batchnorm_forward_infer(int64_t B, int64_t F, const float *X, const float *gamma, const float *beta,
                                float eps, const float *running_mean, const float *running_var, float *Y);
/* dX overwritten; dgamma, dbeta accumulated. */
void fl_batchnorm_backward(int64_t B, int64_t F, const float *xhat, const float *inv_std, const float *gamma,
                           const float *dY, float *dX, float *dgamma, float *dbeta);

/* ---- Dropout (inverted, Keras): keep with probability 1-p, scale kept values by 1/(1-p).
 * The mask of element i depends only on (seed, stream, i), so it does not depend on threads or on how
 * a tensor is cut into pieces. */
void fl_dropout_apply(int64_t n, float p, uint64_t seed, uint64_t stream, uint64_t first_index, const float *x,
                      float *y);

/* ---- Adam (Keras 2 form: lr_t = lr sqrt(1-b2^t)/(1-b1^t); p -= lr_t m / (sqrt(v) + eps)) ------ */
void fl_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                  float eps, int64_t t);

#endif
