/* Fast, accurate tanh for the LSTM cell: a [13/6] rational minimax approximation on [-7.9, 7.9]
 * (the form used by Eigen's generic_fast_tanh_float), vectorisable, no libm call. */
#include "nn.h"

#define FL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

static inline float tanh_rational(float x)
{
    const float clamp = 7.90531110763549805f;
    x = x > clamp ? clamp : (x < -clamp ? -clamp : x);
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

float fl_tanhf(float x) { return tanh_rational(x); }

FL_CLONES void fl_tanh_inplace(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = tanh_rational(x[i]);
}
