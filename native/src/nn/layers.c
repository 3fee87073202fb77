/* Linear, batch normalisation, dropout and Adam over flat float buffers. */
#include "nn.h"
#include "core/fl_internal.h"
#include "ops/gemm.h"

#include <math.h>
#include <string.h>

void fl_linear_forward(int64_t B, int64_t In, int64_t Out, const float *X, int64_t ldx, const float *W,
                       const float *b, float *Y, int64_t ldy)
{
    for (int64_t r = 0; r < B; r++) memcpy(Y + r * ldy, b, (size_t)Out * sizeof(float));
    fl_gemm(0, 1, B, Out, In, 1.f, X, ldx, W, In, 1.f, Y, ldy);
}

void fl_linear_backward(int64_t B, int64_t In, int64_t Out, const float *X, int64_t ldx, const float *W,
                        const float *dY, int64_t lddy, float *dX, int64_t lddx, float *dW, float *db)
{
    fl_gemm(1, 0, Out, In, B, 1.f, dY, lddy, X, ldx, 1.f, dW, In);
    for (int64_t r = 0; r < B; r++)
        for (int64_t j = 0; j < Out; j++) db[j] += dY[r * lddy + j];
    if (dX) fl_gemm(0, 0, B, In, Out, 1.f, dY, lddy, W, In, 0.f, dX, lddx);
}

void fl_batchnorm_forward_train(int64_t B, int64_t F, const float *X, const float *gamma, const float *beta,
                                float eps, float momentum, float *running_mean, float *running_var, float *xhat,
                                float *inv_std, float *Y)
{
    for (int64_t j = 0; j < F; j++) {
        double mean = 0, var = 0;
        for (int64_t r = 0; r < B; r++) mean += X[r * F + j];
        mean /= (double)B;
        for (int64_t r = 0; r < B; r++) {
            double d = X[r * F + j] - mean;
            var += d * d;
        }
        var /= (double)B;
        float is = (float)(1.0 / sqrt(var + eps));
        inv_std[j] = is;
        for (int64_t r = 0; r < B; r++) {
            float xh = (float)(X[r * F + j] - mean) * is;
            xhat[r * F + j] = xh;
            Y[r * F + j] = gamma[j] * xh + beta[j];
        }
        double unbiased = B > 1 ? var * (double)B / (double)(B - 1) : var;
        running_mean[j] = momentum * running_mean[j] + (1.f - momentum) * (float)mean;
        running_var[j] = momentum * running_var[j] + (1.f - momentum) * (float)unbiased;
    }
}

void fl_batchnorm_forward_infer(int64_t B, int64_t F, const float *X, const float *gamma, const float *beta,
                                float eps, const float *running_mean, const float *running_var, float *Y)
{
    for (int64_t j = 0; j < F; j++) {
        float scale = gamma[j] / sqrtf(running_var[j] + eps);
        float shift = beta[j] - running_mean[j] * scale;
        for (int64_t r = 0; r < B; r++) Y[r * F + j] = X[r * F + j] * scale + shift;
    }
}

void fl_batchnorm_backward(int64_t B, int64_t F, const float *xhat, const float *inv_std, const float *gamma,
                           const float *dY, float *dX, float *dgamma, float *dbeta)
{
    for (int64_t j = 0; j < F; j++) {
        double sdy = 0, sdyx = 0;
        for (int64_t r = 0; r < B; r++) {
            sdy += dY[r * F + j];
            sdyx += (double)dY[r * F + j] * xhat[r * F + j];
        }
        dgamma[j] += (float)sdyx;
        dbeta[j] += (float)sdy;
        double k = (double)gamma[j] * inv_std[j] / (double)B;
        for (int64_t r = 0; r < B; r++)
            dX[r * F + j] = (float)(k * ((double)B * dY[r * F + j] - sdy - xhat[r * F + j] * sdyx));
    }
}

void fl_dropout_apply(int64_t n, float p, uint64_t seed, uint64_t stream, uint64_t first_index, const float *x,
                      float *y)
{
    if (p <= 0.f) {
        if (y != x) memmove(y, x, (size_t)n * sizeof(float));
        return;
    }
    const float scale = 1.f / (1.f - p);
    /* Masks need independence, not cryptographic quality: one SplitMix64 finaliser per pair of
     * indices (two 24-bit uniforms), about 4x cheaper than Philox. */
    const uint64_t key = seed * 0x9E3779B97F4A7C15ull ^ (stream + 0x632BE59BD9B4E019ull) * 0xD1B54A32D192ED03ull;
    for (int64_t k = 0; k < n; k++) {
        const uint64_t i = first_index + (uint64_t)k;
        uint64_t z = key + (i >> 1) * 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        const float u = (float)((z >> ((i & 1) ? 40 : 8)) & 0xFFFFFF) * (1.0f / 16777216.0f);
        y[k] = u >= p ? x[k] * scale : 0.f;
    }
}

void fl_adam_step(int64_t n, float *p, const float *g, float *m, float *v, float lr, float beta1, float beta2,
                  float eps, int64_t t)
{
    const double lr_t = lr * sqrt(1.0 - pow(beta2, (double)t)) / (1.0 - pow(beta1, (double)t));
    const float lrf = (float)lr_t;
    for (int64_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.f - beta2) * g[i] * g[i];
        p[i] -= lrf * m[i] / (sqrtf(v[i]) + eps);
    }
}
