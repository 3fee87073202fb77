/* Layers of native/src/nn: every backward against central finite differences of the forward
 * (loss L = sum(out .* R) with a fixed random R, accumulated in double), and references. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_internal.h"
#include "nn/nn.h"
#include "../shared/test_util.h"

static double dot(const float *a, const float *b, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* Relative gradient error as in ggml's test-backend-ops. */
static void expect_grad(const char *what, double analytic, double numeric)
{
    double den = fmax(fmax(fabs(analytic), fabs(numeric)), 1e-2);
    cr_expect(fabs(analytic - numeric) / den < 2e-2, "%s: analytic %.6g vs numeric %.6g", what, analytic, numeric);
}

/* ---- LSTM ------------------------------------------------------------------------------------ */
typedef struct lstm_case {
    fl_lstm_shape s;
    float *X, *Wih, *Whh, *b, *G, *C, *Y, *R;
} lstm_case;

static double lstm_loss(lstm_case *k)
{
    const fl_lstm_shape *s = &k->s;
    int64_t xrows = s->repeat_input ? s->B : (int64_t)s->T * s->B;
    (void)xrows;
    fl_lstm_forward(s, k->X, s->In, k->Wih, k->Whh, k->b, k->G, k->C, k->Y, s->H);
    return dot(k->Y, k->R, (int64_t)s->T * s->B * s->H);
}

static void lstm_gradcheck(int reverse, int hard, int repeat, float wscale)
{
    lstm_case k;
    k.s = (fl_lstm_shape){5, 3, 4, 3, reverse, hard, repeat};
    const int64_t T = k.s.T, B = k.s.B, In = k.s.In, H = k.s.H, G4 = 4 * H;
    const int64_t nx = repeat ? B * In : T * B * In;
    k.X = malloc(nx * 4), k.Wih = malloc(G4 * In * 4), k.Whh = malloc(G4 * H * 4), k.b = malloc(G4 * 4);
    k.G = malloc(T * B * G4 * 4), k.C = malloc(T * B * H * 4), k.Y = malloc(T * B * H * 4), k.R = malloc(T * B * H * 4);
    fill(k.X, nx, -1, 1, 1);
    fill(k.Wih, G4 * In, -wscale, wscale, 2);
    fill(k.Whh, G4 * H, -wscale, wscale, 3);
    fill(k.b, G4, -wscale, wscale, 4);
    fill(k.R, T * B * H, -1, 1, 5);
    lstm_loss(&k);
    float *dX = calloc(nx, 4), *dWih = calloc(G4 * In, 4), *dWhh = calloc(G4 * H, 4), *db = calloc(G4, 4);
    float *work = malloc(fl_lstm_backward_work_size(&k.s) * 4);
    fl_lstm_backward(&k.s, k.X, In, k.Wih, k.Whh, k.G, k.C, k.Y, H, k.R, H, dX, In, 0, dWih, dWhh, db, work);
    struct {
        const char *name;
        float *p, *g;
        int64_t n;
    } t[] = {{"X", k.X, dX, nx}, {"W_ih", k.Wih, dWih, G4 * In}, {"W_hh", k.Whh, dWhh, G4 * H}, {"b", k.b, db, G4}};
    for (int i = 0; i < 4; i++)
        for (int64_t j = 0; j < t[i].n; j++) {
            float old = t[i].p[j];
            const float e = 1e-2f;
            t[i].p[j] = old + e;
            double lp = lstm_loss(&k);
            t[i].p[j] = old - e;
            double lm = lstm_loss(&k);
            t[i].p[j] = old;
            char what[64];
            snprintf(what, sizeof what, "lstm(rev=%d,hard=%d,rep=%d) d%s[%lld]", reverse, hard, repeat, t[i].name,
                     (long long)j);
            expect_grad(what, t[i].g[j], (lp - lm) / (2 * e));
        }
    free(k.X), free(k.Wih), free(k.Whh), free(k.b), free(k.G), free(k.C), free(k.Y), free(k.R);
    free(dX), free(dWih), free(dWhh), free(db), free(work);
}

Test(nn, lstm_gradient_logistic) { lstm_gradcheck(0, 0, 0, 0.8f); }
Test(nn, lstm_gradient_logistic_reverse) { lstm_gradcheck(1, 0, 0, 0.8f); }
Test(nn, lstm_gradient_repeat_input) { lstm_gradcheck(0, 0, 1, 0.8f); }
/* hard sigmoid: small weights keep every gate inside the linear zone (no kink within 2e) */
Test(nn, lstm_gradient_hard_sigmoid) { lstm_gradcheck(0, 1, 0, 0.3f); }
Test(nn, lstm_gradient_hard_sigmoid_reverse_repeat) { lstm_gradcheck(1, 1, 1, 0.3f); }

/* Forward against a plain double-precision LSTM written from the Keras equations. */
Test(nn, lstm_forward_matches_reference)
{
    const int T = 6, B = 2, In = 3, H = 4, G4 = 16;
    float X[T * B * In], Wih[G4 * In], Whh[G4 * H], b[G4], G[T * B * G4], C[T * B * H], Y[T * B * H];
    fill(X, T * B * In, -2, 2, 11);
    fill(Wih, G4 * In, -1, 1, 12);
    fill(Whh, G4 * H, -1, 1, 13);
    fill(b, G4, -1, 1, 14);
    for (int hard = 0; hard < 2; hard++)
        for (int rev = 0; rev < 2; rev++) {
            fl_lstm_shape s = {T, B, In, H, rev, hard, 0};
            fl_lstm_forward(&s, X, In, Wih, Whh, b, G, C, Y, H);
            for (int r = 0; r < B; r++) {
                double h[4] = {0}, c[4] = {0};
                for (int k = 0; k < T; k++) {
                    int t = rev ? T - 1 - k : k;
                    double z[16];
                    for (int q = 0; q < G4; q++) {
                        z[q] = b[q];
                        for (int i = 0; i < In; i++) z[q] += (double)X[(t * B + r) * In + i] * Wih[q * In + i];
                        for (int i = 0; i < H; i++) z[q] += h[i] * Whh[q * H + i];
                    }
                    for (int j = 0; j < H; j++) {
                        double act[4];
                        for (int g = 0; g < 4; g++) {
                            double v = z[g * H + j];
                            act[g] = g == 2 ? tanh(v) : hard ? fmin(1, fmax(0, 0.2 * v + 0.5)) : 1 / (1 + exp(-v));
                        }
                        c[j] = act[1] * c[j] + act[0] * act[2];
                        h[j] = act[3] * tanh(c[j]);
                        cr_expect(fabs(h[j] - Y[(t * B + r) * H + j]) < 2e-6, "hard=%d rev=%d t=%d: %g vs %g", hard,
                                  rev, t, h[j], Y[(t * B + r) * H + j]);
                    }
                }
            }
        }
}

Test(nn, fast_tanh_accuracy)
{
    double worst = 0;
    for (int i = -200000; i <= 200000; i++) {
        float x = i * 1e-4f;
        worst = fmax(worst, fabs((double)fl_tanh_fast(x) - tanh((double)x)));
    }
    cr_expect(worst < 5e-7, "max |fast tanh - tanh| = %g", worst);
    cr_expect(fl_tanh_fast(100.f) <= 1.f && fl_tanh_fast(100.f) > 0.99999f);
    cr_expect(fl_tanh_fast(-100.f) >= -1.f && fl_tanh_fast(-100.f) < -0.99999f);
}

/* ---- Linear and batch norm ---------------------------------------------------------------- */
Test(nn, linear_gradient)
{
    enum { B = 4, In = 5, Out = 3 };
    float X[B * In], W[Out * In], b[Out], Y[B * Out], R[B * Out], dX[B * In], dW[Out * In] = {0}, db[Out] = {0};
    fill(X, B * In, -1, 1, 1);
    fill(W, Out * In, -1, 1, 2);
    fill(b, Out, -1, 1, 3);
    fill(R, B * Out, -1, 1, 4);
    fl_linear_backward(B, In, Out, X, In, W, R, Out, dX, In, dW, db);
    float *ps[3] = {X, W, b}, *gs[3] = {dX, dW, db};
    int ns[3] = {B * In, Out * In, Out};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < ns[k]; j++) {
            float old = ps[k][j], e = 1e-2f;
            ps[k][j] = old + e;
            fl_linear_forward(B, In, Out, X, In, W, b, Y, Out);
            double lp = dot(Y, R, B * Out);
            ps[k][j] = old - e;
            fl_linear_forward(B, In, Out, X, In, W, b, Y, Out);
            double lm = dot(Y, R, B * Out);
            ps[k][j] = old;
            expect_grad("linear", gs[k][j], (lp - lm) / (2 * e));
        }
}

static double bn_loss(int64_t B, int64_t F, const float *X, const float *g, const float *be, const float *R)
{
    float rm[8] = {0}, rv[8] = {0}, xh[64], is[8], Y[64];
    fl_batchnorm_forward_train(B, F, X, g, be, 1e-3f, 0.99f, rm, rv, xh, is, Y);
    return dot(Y, R, B * F);
}

Test(nn, batchnorm_gradient_and_running_stats)
{
    enum { B = 6, F = 3 };
    float X[B * F], g[F], be[F], R[B * F], dX[B * F], dg[F] = {0}, dbe[F] = {0};
    fill(X, B * F, -2, 3, 1);
    fill(g, F, 0.5f, 1.5f, 2);
    fill(be, F, -1, 1, 3);
    fill(R, B * F, -1, 1, 4);
    float rm[F] = {0}, rv[F] = {1, 1, 1}, xh[B * F], is[F], Y[B * F];
    fl_batchnorm_forward_train(B, F, X, g, be, 1e-3f, 0.99f, rm, rv, xh, is, Y);
    for (int j = 0; j < F; j++) { /* Keras update: running = 0.99 running + 0.01 batch (unbiased var) */
        double mu = 0, v = 0;
        for (int r = 0; r < B; r++) mu += X[r * F + j];
        mu /= B;
        for (int r = 0; r < B; r++) v += (X[r * F + j] - mu) * (X[r * F + j] - mu);
        cr_expect(fabs(rm[j] - 0.01 * mu) < 1e-6);
        cr_expect(fabs(rv[j] - (0.99 + 0.01 * v / (B - 1))) < 1e-6);
    }
    fl_batchnorm_backward(B, F, xh, is, g, R, dX, dg, dbe);
    float *ps[3] = {X, g, be}, *gs[3] = {dX, dg, dbe};
    int ns[3] = {B * F, F, F};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < ns[k]; j++) {
            float old = ps[k][j], e = 1e-2f;
            ps[k][j] = old + e;
            double lp = bn_loss(B, F, X, g, be, R);
            ps[k][j] = old - e;
            double lm = bn_loss(B, F, X, g, be, R);
            ps[k][j] = old;
            expect_grad("batchnorm", gs[k][j], (lp - lm) / (2 * e));
        }
}

Test(nn, dropout_mask_is_deterministic_and_scaled)
{
    enum { N = 10000 };
    static float x[N], y1[N], y2[N], part[N];
    for (int i = 0; i < N; i++) x[i] = 1.f;
    fl_dropout_apply(N, 0.2f, 5, 9, 0, x, y1);
    fl_dropout_apply(N, 0.2f, 5, 9, 0, x, y2);
    /* the same mask when computed in two pieces (as two chunks on two threads would) */
    fl_dropout_apply(N / 2, 0.2f, 5, 9, 0, x, part);
    fl_dropout_apply(N / 2, 0.2f, 5, 9, N / 2, x, part + N / 2);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        cr_expect(y1[i] == y2[i] && y1[i] == part[i]);
        cr_expect(y1[i] == 0.f || fabsf(y1[i] - 1.25f) < 1e-6f);
        kept += y1[i] != 0.f;
    }
    cr_expect(abs(kept - 8000) < 200, "kept %d of 10000 at p=0.2", kept);
}

Test(nn, adam_matches_keras_formula)
{
    float p[2] = {1.f, -2.f}, g[2] = {0.5f, -0.1f}, m[2] = {0}, v[2] = {0};
    fl_adam_step(2, p, g, m, v, 0.01f, 0.9f, 0.999f, 1e-7f, 1);
    /* first step: lr_t = lr sqrt(1-b2)/(1-b1); m = 0.1 g; v = 0.001 g^2 -> step = lr_t * 0.1 g / (sqrt(0.001)|g| + eps) */
    double lr_t = 0.01 * sqrt(1 - 0.999) / (1 - 0.9);
    cr_expect(fabs(p[0] - (1.0 - lr_t * 0.05 / (sqrt(0.001) * 0.5 + 1e-7))) < 1e-6);
    cr_expect(fabs(p[1] - (-2.0 + lr_t * 0.01 / (sqrt(0.001) * 0.1 + 1e-7))) < 1e-6);
}
