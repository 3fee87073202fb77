/* One LSTM direction over a time-major sequence, forward and backpropagation through time.
 * Per step the recurrent product is one GEMM (B x H) . (H x 4H); the input projection of all steps is
 * one GEMM before the loop; the weight gradients are one GEMM each after the loop. */
#include "nn.h"
#include "ops/gemm.h"

#include <math.h>
#include <string.h>

#define FL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* Clamps written as selects (if-converted by the vectoriser; no -ffast-math needed). */
static inline float hard_sigmoid(float z)
{
    float v = 0.2f * z + 0.5f;
    v = v < 0.f ? 0.f : v;
    return v > 1.f ? 1.f : v;
}

static inline float logistic(float z) { return 1.f / (1.f + expf(-z)); }

/* g: one sample's 4H pre-activations -> activations in place; c, h outputs. c_prev NULL = zero state. */
#define CELL_FORWARD_BODY(ACT, CPREV)                                                                           \
    for (int32_t j = 0; j < H; j++) {                                                                       \
        float i = ACT(gi[j]), f = ACT(gf[j]), o = ACT(go[j]);                                               \
        float u = fl_tanh_fast(gg[j]);                                                                            \
        float cn = i * u + f * (CPREV);                                                                     \
        gi[j] = i;                                                                                          \
        gf[j] = f;                                                                                          \
        gg[j] = u;                                                                                          \
        go[j] = o;                                                                                          \
        c[j] = cn;                                                                                          \
        h[j] = o * fl_tanh_fast(cn);                                                                              \
    }

FL_CLONES static void cell_forward_hard(int32_t H, float *restrict g, const float *restrict c_prev, float *restrict c,
                                        float *restrict h)
{
    float *restrict gi = g, *restrict gf = g + H, *restrict gg = g + 2 * H, *restrict go = g + 3 * H;
    if (c_prev) {
        CELL_FORWARD_BODY(hard_sigmoid, c_prev[j])
    } else {
        CELL_FORWARD_BODY(hard_sigmoid, 0.f)
    }
}

static void cell_forward_logistic(int32_t H, float *restrict g, const float *restrict c_prev, float *restrict c,
                                  float *restrict h)
{
    float *restrict gi = g, *restrict gf = g + H, *restrict gg = g + 2 * H, *restrict go = g + 3 * H;
    if (c_prev) {
        CELL_FORWARD_BODY(logistic, c_prev[j])
    } else {
        CELL_FORWARD_BODY(logistic, 0.f)
    }
}

void fl_lstm_forward(const fl_lstm_shape *s, const float *X, int64_t ldx, const float *W_ih, const float *W_hh,
                     const float *b, float *G, float *C, float *Y, int64_t ldy)
{
    const int64_t T = s->T, B = s->B, In = s->In, H = s->H, G4 = 4 * H;
    /* input projection (+ bias) of every step */
    if (s->repeat_input) {
        for (int64_t r = 0; r < B; r++) memcpy(G + r * G4, b, (size_t)G4 * sizeof(float));
        fl_gemm(0, 1, B, G4, In, 1.f, X, ldx, W_ih, In, 1.f, G, G4);
        for (int64_t t = 1; t < T; t++) memcpy(G + t * B * G4, G, (size_t)(B * G4) * sizeof(float));
    } else {
        for (int64_t r = 0; r < T * B; r++) memcpy(G + r * G4, b, (size_t)G4 * sizeof(float));
        /* X rows of all steps form one (T*B, In) matrix when the row stride is uniform */
        fl_gemm(0, 1, T * B, G4, In, 1.f, X, ldx, W_ih, In, 1.f, G, G4);
    }
    for (int64_t k = 0; k < T; k++) {
        const int64_t t = s->reverse ? T - 1 - k : k;
        const int64_t tp = s->reverse ? t + 1 : t - 1; /* previous step in processing order */
        float *Gt = G + t * B * G4;
        const float *Cp = k ? C + tp * B * H : NULL;
        if (k) fl_gemm(0, 1, B, G4, H, 1.f, Y + tp * B * ldy, ldy, W_hh, H, 1.f, Gt, G4);
        for (int64_t r = 0; r < B; r++) {
            if (s->hard_sigmoid)
                cell_forward_hard((int32_t)H, Gt + r * G4, Cp ? Cp + r * H : NULL, C + (t * B + r) * H,
                                  Y + (t * B + r) * ldy);
            else
                cell_forward_logistic((int32_t)H, Gt + r * G4, Cp ? Cp + r * H : NULL, C + (t * B + r) * H,
                                      Y + (t * B + r) * ldy);
        }
    }
}

int64_t fl_lstm_backward_work_size(const fl_lstm_shape *s)
{
    return 3 * (int64_t)s->B * s->H + (int64_t)s->B * 4 * s->H;
}

/* One sample's step: gate activations in g are replaced by pre-activation gradients; dc carries the
 * cell gradient from the step after (in processing order) and is updated for the step before.
 * Hard sigmoid: slope 0.2 strictly inside (0,1), 0 on the clipped parts. */
#define CELL_BACKWARD_BODY(CPREV, SLOPE)                                                                        \
    for (int32_t j = 0; j < H; j++) {                                                                       \
        float i = gi[j], f = gf[j], u = gg[j], o = go[j];                                                   \
        float tc = fl_tanh_fast(c[j]);                                                                            \
        float dcj = dh[j] * o * (1.f - tc * tc) + dc[j];                                                    \
        float d_o = dh[j] * tc;                                                                             \
        dc[j] = dcj * f;                                                                                    \
        gi[j] = dcj * u * SLOPE(i);                                                                         \
        gf[j] = dcj * (CPREV) * SLOPE(f);                                                                   \
        gg[j] = dcj * i * (1.f - u * u);                                                                    \
        go[j] = d_o * SLOPE(o);                                                                             \
    }
#define HARD_SLOPE(a) ((a) > 0.f && (a) < 1.f ? 0.2f : 0.f)
#define LOGISTIC_SLOPE(a) ((a) * (1.f - (a)))

FL_CLONES static void cell_backward(int32_t H, int hard, float *restrict g, const float *restrict c,
                                    const float *restrict c_prev, const float *restrict dh, float *restrict dc)
{
    float *restrict gi = g, *restrict gf = g + H, *restrict gg = g + 2 * H, *restrict go = g + 3 * H;
    if (hard && c_prev) {
        CELL_BACKWARD_BODY(c_prev[j], HARD_SLOPE)
    } else if (hard) {
        CELL_BACKWARD_BODY(0.f, HARD_SLOPE)
    } else if (c_prev) {
        CELL_BACKWARD_BODY(c_prev[j], LOGISTIC_SLOPE)
    } else {
        CELL_BACKWARD_BODY(0.f, LOGISTIC_SLOPE)
    }
}

void fl_lstm_backward(const fl_lstm_shape *s, const float *X, int64_t ldx, const float *W_ih, const float *W_hh,
                      float *G, const float *C, const float *Y, int64_t ldy, const float *dY, int64_t lddy,
                      float *dX, int64_t lddx, int accumulate_dx, float *dW_ih, float *dW_hh, float *db,
                      float *work)
{
    const int64_t T = s->T, B = s->B, In = s->In, H = s->H, G4 = 4 * H;
    float *dh = work;            /* B x H */
    float *dh_next = dh + B * H; /* B x H: recurrent gradient into the step before */
    float *dc = dh_next + B * H; /* B x H */
    float *dZsum = dc + B * H;   /* B x 4H: sum over steps, for a repeated input */
    memset(dh_next, 0, (size_t)(B * H) * sizeof(float));
    memset(dc, 0, (size_t)(B * H) * sizeof(float));
    for (int64_t k = T - 1; k >= 0; k--) {
        const int64_t t = s->reverse ? T - 1 - k : k;
        const int64_t tp = s->reverse ? t + 1 : t - 1;
        float *Gt = G + t * B * G4;
        for (int64_t r = 0; r < B; r++)
            for (int64_t j = 0; j < H; j++) dh[r * H + j] = dY[(t * B + r) * lddy + j] + dh_next[r * H + j];
        for (int64_t r = 0; r < B; r++)
            cell_backward((int32_t)H, s->hard_sigmoid, Gt + r * G4, C + (t * B + r) * H,
                          k ? C + (tp * B + r) * H : NULL, dh + r * H, dc + r * H);
        if (k) fl_gemm(0, 0, B, H, G4, 1.f, Gt, G4, W_hh, H, 0.f, dh_next, H);
    }
    /* dW_hh += sum_t dZ_t^T h_prev(t): the h_prev rows of all steps are Y shifted by one step */
    if (T > 1) {
        const float *dZ = s->reverse ? G : G + B * G4;
        const float *Hp = s->reverse ? Y + B * ldy : Y;
        fl_gemm(1, 0, G4, H, (T - 1) * B, 1.f, dZ, G4, Hp, ldy, 1.f, dW_hh, H);
    }
    /* db += sum over all rows of dZ */
    for (int64_t r = 0; r < T * B; r++) {
        const float *z = G + r * G4;
        for (int64_t j = 0; j < G4; j++) db[j] += z[j];
    }
    if (s->repeat_input) {
        memcpy(dZsum, G, (size_t)(B * G4) * sizeof(float));
        for (int64_t t = 1; t < T; t++) {
            const float *z = G + t * B * G4;
            for (int64_t j = 0; j < B * G4; j++) dZsum[j] += z[j];
        }
        fl_gemm(1, 0, G4, In, B, 1.f, dZsum, G4, X, ldx, 1.f, dW_ih, In);
        if (dX) fl_gemm(0, 0, B, In, G4, 1.f, dZsum, G4, W_ih, In, accumulate_dx ? 1.f : 0.f, dX, lddx);
    } else {
        fl_gemm(1, 0, G4, In, T * B, 1.f, G, G4, X, ldx, 1.f, dW_ih, In);
        if (dX) fl_gemm(0, 0, T * B, In, G4, 1.f, G, G4, W_ih, In, accumulate_dx ? 1.f : 0.f, dX, lddx);
    }
}
