/* Single-precision GEMM with run-time CPU dispatch (AVX-512F, AVX2+FMA, portable C).
 *
 * Layout (row-major C): the micro-kernel computes an R x NR tile of C (R <= MR rows), vectorised along
 * N. Each step k broadcasts R values of op(A) and loads NR values of op(B).
 *   AVX-512: MR = 8, NR = 32 (16 zmm accumulators);  AVX2: MR = 6, NR = 16 (12 ymm accumulators);
 *   generic: MR = 4, NR = 16 (plain C).
 * Blocking (loops from outer to inner):
 *   jb over N by NB    (B block KC x NB packed into NR-wide panels, kept in L2; or read in place when
 *                       op(B) = B is row-major and small, which avoids packing costs for tiny K)
 *   pb over K by KC    (KC depends on K only, so the k-summation order of every C element does not
 *                       depend on M, N or the tile it belongs to: fl_gemm_parallel is bit-identical)
 *   ib over M by MR    (A micro-panel read in place when A is row-major: no packing; packed into a
 *                       small stack buffer when transA, where rows of op(A) are strided)
 *   jr over NB by NR   -> micro-kernel (A micro-panel stays in L1, B panels stream from L2).
 * Every C element gets: acc = sum_k fma over a K block (k ascending), then
 *   first K block: C = alpha*acc (beta == 0) or fma(acc, alpha, beta*C);  later blocks: fma(acc, alpha, C).
 * Edge tiles use the same arithmetic (masked loads/stores, kernels instantiated per row count).
 */
#include "ops/gemm.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define FL_X86 1
#include <immintrin.h>
#else
#define FL_X86 0
#endif

#ifdef _OPENMP
#include <omp.h>
#endif

#ifndef KC_MAX
#define KC_MAX 384  /* K block */
#endif
#ifndef NB_MAX
#define NB_MAX 256  /* N block of packed B (multiple of every NR) */
#endif
#define MC_MAX 144 /* M block of packed A (transA only; multiple of every MR) */

#define FL_INLINE static inline __attribute__((always_inline))

typedef void (*fl_kern_fn)(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t bs,
                           float *c, int64_t ldc, float alpha, float beta, int mode, int mr, int nr);
/* Pack op(B)[k0:k0+kc, n0:n0+nc] into ceil(nc/NR) panels of kc x NR floats (zero padded). */
typedef void (*fl_packb_fn)(int transB, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t n0,
                            int64_t nc, float *dst);
/* Pack op(A)[i0:i0+mc, k0:k0+kc] for transA into MR-row panels (see packa_mr). */
typedef void (*fl_packa_fn)(const float *A, int64_t lda, int64_t k0, int64_t kc, int64_t i0, int64_t mc, float *dst);

typedef struct fl_gemm_impl {
    int mr, nr;
    fl_kern_fn kern;
    fl_packb_fn packb;
    fl_packa_fn packa;
    const char *name;
} fl_gemm_impl;

/* Packing buffers: per thread, so fl_gemm is re-entrant and usable inside parallel regions. */
static _Thread_local float fl_gemm_bbuf[KC_MAX * NB_MAX] __attribute__((aligned(64)));
static _Thread_local float fl_gemm_abuf[KC_MAX * MC_MAX] __attribute__((aligned(64)));

/* =========================================== portable C ========================================== */

#define G_MR 4
#define G_NR 16

static void kern_generic(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t bs,
                         float *c, int64_t ldc, float alpha, float beta, int mode, int mr, int nr)
{
    float acc[G_MR][G_NR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++) {
        const float *bk = b + k * bs;
        float bv[G_NR];
        for (int j = 0; j < G_NR; j++) bv[j] = j < nr ? bk[j] : 0.0f;
        for (int i = 0; i < mr; i++) {
            float x = a[i * ars + k * acs];
            for (int j = 0; j < G_NR; j++) acc[i][j] += x * bv[j];
        }
    }
    for (int i = 0; i < mr; i++) {
        float *cr = c + i * ldc;
        for (int j = 0; j < nr; j++) cr[j] = mode == 0 ? alpha * acc[i][j] : alpha * acc[i][j] + beta * cr[j];
    }
}

static void packb_generic_nr(int NR, int transB, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t n0,
                             int64_t nc, float *dst)
{
    for (int64_t p = 0; p * NR < nc; p++) {
        float *d = dst + p * kc * NR;
        int64_t nn = nc - p * NR < NR ? nc - p * NR : NR;
        const float *s0 = transB ? B + (n0 + p * NR) * ldb + k0 : B + k0 * ldb + n0 + p * NR;
        for (int64_t k = 0; k < kc; k++) {
            float *dk = d + k * NR;
            if (transB) {
                for (int64_t j = 0; j < nn; j++) dk[j] = s0[j * ldb + k];
            } else {
                for (int64_t j = 0; j < nn; j++) dk[j] = s0[k * ldb + j];
            }
            for (int64_t j = nn; j < NR; j++) dk[j] = 0.0f;
        }
    }
}

static void packb_generic(int transB, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                          float *dst)
{
    packb_generic_nr(G_NR, transB, B, ldb, k0, kc, n0, nc, dst);
}

/* Pack op(A)[i0:i0+mc, k0:k0+kc] for transA (A is K x M, rows of op(A) strided) into ceil(mc/MR) panels
 * of kc x MR floats: panel q at dst + q*kc*MR, element (i, k) at [k*MR + i]. Row k of A is read
 * contiguously (k outer), which keeps the cache and TLB happy for large lda. */
FL_INLINE void packa_mr(const int MR, const float *A, int64_t lda, int64_t k0, int64_t kc, int64_t i0, int64_t mc,
                        float *dst)
{
    const int64_t nfull = mc / MR, rest = mc - nfull * MR;
    for (int64_t k = 0; k < kc; k++) {
        const float *s = A + (k0 + k) * lda + i0;
        float *d = dst + k * MR;
        for (int64_t q = 0; q < nfull; q++, s += MR, d += kc * MR) memcpy(d, s, sizeof(float) * (size_t)MR);
        for (int64_t i = 0; i < rest; i++) d[i] = s[i];
    }
}

static void packa_generic(const float *A, int64_t lda, int64_t k0, int64_t kc, int64_t i0, int64_t mc, float *dst)
{
    packa_mr(G_MR, A, lda, k0, kc, i0, mc, dst);
}

static const fl_gemm_impl impl_generic = {G_MR, G_NR, kern_generic, packb_generic, packa_generic, "generic"};

#if FL_X86
/* ============================================ AVX2+FMA =========================================== */

#define T2 __attribute__((target("avx2,fma")))
#define A2_MR 6
#define A2_NR 16

T2 static inline __m256i avx2_mask(int n) /* lanes j < n set */
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

T2 FL_INLINE void kern_avx2_body(const int R, int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b,
                                 int64_t bs, float *c, int64_t ldc, float alpha, float beta, int mode, int nr)
{
    __m256 acc[A2_MR][2];
    const float *ap[A2_MR];
#pragma GCC unroll 6
    for (int i = 0; i < R; i++) {
        acc[i][0] = _mm256_setzero_ps();
        acc[i][1] = _mm256_setzero_ps();
        ap[i] = a + i * ars;
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 15), _MM_HINT_T0);
    }
    if (nr == A2_NR) {
        int64_t off = 0;
#pragma GCC unroll 4
        for (int64_t k = 0; k < kc; k++) {
            __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
            b += bs;
#pragma GCC unroll 6
            for (int i = 0; i < R; i++) {
                __m256 x = _mm256_broadcast_ss(ap[i] + off);
                acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
            }
            off += acs;
        }
    } else {
        __m256i m0 = avx2_mask(nr), m1 = avx2_mask(nr - 8);
        int64_t off = 0;
#pragma GCC unroll 2
        for (int64_t k = 0; k < kc; k++) {
            __m256 b0 = _mm256_maskload_ps(b, m0), b1 = _mm256_maskload_ps(b + 8, m1);
            b += bs;
#pragma GCC unroll 6
            for (int i = 0; i < R; i++) {
                __m256 x = _mm256_broadcast_ss(ap[i] + off);
                acc[i][0] = _mm256_fmadd_ps(x, b0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(x, b1, acc[i][1]);
            }
            off += acs;
        }
    }
    const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
    if (nr == A2_NR) {
#pragma GCC unroll 6
        for (int i = 0; i < R; i++) {
            float *cr = c + i * ldc;
            __m256 v0, v1;
            if (mode == 0) {
                v0 = _mm256_mul_ps(acc[i][0], va);
                v1 = _mm256_mul_ps(acc[i][1], va);
            } else {
                v0 = _mm256_fmadd_ps(acc[i][0], va, _mm256_mul_ps(vb, _mm256_loadu_ps(cr)));
                v1 = _mm256_fmadd_ps(acc[i][1], va, _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8)));
            }
            _mm256_storeu_ps(cr, v0);
            _mm256_storeu_ps(cr + 8, v1);
        }
    } else {
        __m256i m0 = avx2_mask(nr), m1 = avx2_mask(nr - 8);
#pragma GCC unroll 6
        for (int i = 0; i < R; i++) {
            float *cr = c + i * ldc;
            __m256 v0, v1;
            if (mode == 0) {
                v0 = _mm256_mul_ps(acc[i][0], va);
                v1 = _mm256_mul_ps(acc[i][1], va);
            } else {
                v0 = _mm256_fmadd_ps(acc[i][0], va, _mm256_mul_ps(vb, _mm256_maskload_ps(cr, m0)));
                v1 = _mm256_fmadd_ps(acc[i][1], va, _mm256_mul_ps(vb, _mm256_maskload_ps(cr + 8, m1)));
            }
            _mm256_maskstore_ps(cr, m0, v0);
            _mm256_maskstore_ps(cr + 8, m1, v1);
        }
    }
}

#define KERN2(R)                                                                                                  \
    T2 static void kern_avx2_##R(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t bs, \
                                 float *c, int64_t ldc, float alpha, float beta, int mode, int nr)                 \
    {                                                                                                             \
        kern_avx2_body(R, kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr);                                 \
    }
KERN2(1)
KERN2(2)
KERN2(3)
KERN2(4)
KERN2(5)
KERN2(6)

T2 static void kern_avx2(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t bs, float *c,
                         int64_t ldc, float alpha, float beta, int mode, int mr, int nr)
{
    switch (mr) {
    case 6: kern_avx2_6(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 5: kern_avx2_5(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 4: kern_avx2_4(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 3: kern_avx2_3(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 2: kern_avx2_2(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    default: kern_avx2_1(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    }
}

/* 8x8 transpose: r[i] = row i in, r[c] = column c out. */
T2 FL_INLINE void tr8_avx2(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

T2 static void packb_avx2(int transB, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                          float *dst)
{
    const int64_t np = (nc + A2_NR - 1) / A2_NR;
    if (!transB) {
        for (int64_t k = 0; k < kc; k++) {
            const float *s = B + (k0 + k) * ldb + n0;
            float *d = dst + k * A2_NR;
            for (int64_t p = 0; p < np; p++, s += A2_NR, d += kc * A2_NR) {
                int64_t nn = nc - p * A2_NR;
                if (nn >= A2_NR) {
                    _mm256_store_ps(d, _mm256_loadu_ps(s));
                    _mm256_store_ps(d + 8, _mm256_loadu_ps(s + 8));
                } else {
                    _mm256_store_ps(d, _mm256_maskload_ps(s, avx2_mask((int)nn)));
                    _mm256_store_ps(d + 8, _mm256_maskload_ps(s + 8, avx2_mask((int)nn - 8)));
                }
            }
        }
        return;
    }
    /* op(B)[k][n] = B[n*ldb + k]: 8x8 transposes */
    for (int64_t p = 0; p < np; p++) {
        float *d = dst + p * kc * A2_NR;
        for (int h = 0; h < 2; h++) {
            const int64_t nbase = p * A2_NR + h * 8;
            const int nn = nc - nbase >= 8 ? 8 : (nc - nbase > 0 ? (int)(nc - nbase) : 0);
            for (int64_t kk = 0; kk < kc; kk += 8) {
                const int kl = kc - kk >= 8 ? 8 : (int)(kc - kk);
                __m256 r[8];
                if (kl == 8) {
                    for (int i = 0; i < 8; i++)
                        r[i] = i < nn ? _mm256_loadu_ps(B + (n0 + nbase + i) * ldb + k0 + kk) : _mm256_setzero_ps();
                } else {
                    __m256i km = avx2_mask(kl);
                    for (int i = 0; i < 8; i++)
                        r[i] = i < nn ? _mm256_maskload_ps(B + (n0 + nbase + i) * ldb + k0 + kk, km)
                                      : _mm256_setzero_ps();
                }
                tr8_avx2(r);
                for (int j = 0; j < kl; j++) _mm256_store_ps(d + (kk + j) * A2_NR + h * 8, r[j]);
            }
        }
    }
}

static void packa_avx2(const float *A, int64_t lda, int64_t k0, int64_t kc, int64_t i0, int64_t mc, float *dst)
{
    packa_mr(A2_MR, A, lda, k0, kc, i0, mc, dst);
}

static const fl_gemm_impl impl_avx2 = {A2_MR, A2_NR, kern_avx2, packb_avx2, packa_avx2, "avx2"};

/* ============================================ AVX-512F =========================================== */

#define T5 __attribute__((target("avx512f")))
#define A5_MR 8
#define A5_NR 32

T5 static inline __mmask16 avx512_mask(int n) /* lanes j < n set */
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

T5 FL_INLINE void kern_avx512_body(const int R, int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b,
                                   int64_t bs, float *c, int64_t ldc, float alpha, float beta, int mode, int nr)
{
    __m512 acc[A5_MR][2];
    const float *ap[A5_MR];
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        acc[i][0] = _mm512_setzero_ps();
        acc[i][1] = _mm512_setzero_ps();
        ap[i] = a + i * ars;
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 31), _MM_HINT_T0);
    }
    const __mmask16 m0 = avx512_mask(nr), m1 = avx512_mask(nr - 16);
    if (nr == A5_NR) {
        int64_t off = 0;
#pragma GCC unroll 4
        for (int64_t k = 0; k < kc; k++) {
            __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
            b += bs;
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                __m512 x = _mm512_set1_ps(ap[i][off]);
                acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
            }
            off += acs;
        }
    } else {
        int64_t off = 0;
#pragma GCC unroll 2
        for (int64_t k = 0; k < kc; k++) {
            __m512 b0 = _mm512_maskz_loadu_ps(m0, b), b1 = _mm512_maskz_loadu_ps(m1, b + 16);
            b += bs;
#pragma GCC unroll 8
            for (int i = 0; i < R; i++) {
                __m512 x = _mm512_set1_ps(ap[i][off]);
                acc[i][0] = _mm512_fmadd_ps(x, b0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(x, b1, acc[i][1]);
            }
            off += acs;
        }
    }
    const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < R; i++) {
        float *cr = c + i * ldc;
        __m512 v0, v1;
        if (mode == 0) {
            v0 = _mm512_mul_ps(acc[i][0], va);
            v1 = _mm512_mul_ps(acc[i][1], va);
        } else {
            v0 = _mm512_fmadd_ps(acc[i][0], va, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m0, cr)));
            v1 = _mm512_fmadd_ps(acc[i][1], va, _mm512_mul_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16)));
        }
        _mm512_mask_storeu_ps(cr, m0, v0);
        _mm512_mask_storeu_ps(cr + 16, m1, v1);
    }
}

#define KERN5(R)                                                                                                    \
    T5 static void kern_avx512_##R(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t bs, \
                                   float *c, int64_t ldc, float alpha, float beta, int mode, int nr)                 \
    {                                                                                                               \
        kern_avx512_body(R, kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr);                                 \
    }
KERN5(1)
KERN5(2)
KERN5(3)
KERN5(4)
KERN5(5)
KERN5(6)
KERN5(7)
KERN5(8)

T5 static void kern_avx512(int64_t kc, const float *a, int64_t ars, int64_t acs, const float *b, int64_t bs, float *c,
                           int64_t ldc, float alpha, float beta, int mode, int mr, int nr)
{
    switch (mr) {
    case 8: kern_avx512_8(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 7: kern_avx512_7(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 6: kern_avx512_6(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 5: kern_avx512_5(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 4: kern_avx512_4(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 3: kern_avx512_3(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    case 2: kern_avx512_2(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    default: kern_avx512_1(kc, a, ars, acs, b, bs, c, ldc, alpha, beta, mode, nr); break;
    }
}

/* 16x16 transpose: r[i] = row i in, r[c] = column c out. */
T5 FL_INLINE void tr16_avx512(__m512 r[16])
{
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        r[4 * i + 0] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
        t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
        t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
        t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
        r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
        r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xDD);
    }
}

T5 static void packb_avx512(int transB, const float *B, int64_t ldb, int64_t k0, int64_t kc, int64_t n0, int64_t nc,
                            float *dst)
{
    const int64_t np = (nc + A5_NR - 1) / A5_NR;
    if (!transB) {
        for (int64_t k = 0; k < kc; k++) {
            const float *s = B + (k0 + k) * ldb + n0;
            float *d = dst + k * A5_NR;
            for (int64_t p = 0; p < np; p++, s += A5_NR, d += kc * A5_NR) {
                int64_t nn = nc - p * A5_NR;
                if (nn >= A5_NR) {
                    _mm512_store_ps(d, _mm512_loadu_ps(s));
                    _mm512_store_ps(d + 16, _mm512_loadu_ps(s + 16));
                } else {
                    _mm512_store_ps(d, _mm512_maskz_loadu_ps(avx512_mask((int)nn), s));
                    _mm512_store_ps(d + 16, _mm512_maskz_loadu_ps(avx512_mask((int)nn - 16), s + 16));
                }
            }
        }
        return;
    }
    /* op(B)[k][n] = B[n*ldb + k]: 16x16 transposes */
    for (int64_t p = 0; p < np; p++) {
        float *d = dst + p * kc * A5_NR;
        for (int h = 0; h < 2; h++) {
            const int64_t nbase = p * A5_NR + h * 16;
            const int nn = nc - nbase >= 16 ? 16 : (nc - nbase > 0 ? (int)(nc - nbase) : 0);
            for (int64_t kk = 0; kk < kc; kk += 16) {
                const int kl = kc - kk >= 16 ? 16 : (int)(kc - kk);
                const __mmask16 km = avx512_mask(kl);
                __m512 r[16];
                for (int i = 0; i < 16; i++)
                    r[i] = i < nn ? _mm512_maskz_loadu_ps(km, B + (n0 + nbase + i) * ldb + k0 + kk) : _mm512_setzero_ps();
                tr16_avx512(r);
                for (int j = 0; j < kl; j++) _mm512_store_ps(d + (kk + j) * A5_NR + h * 16, r[j]);
            }
        }
    }
}

static void packa_avx512(const float *A, int64_t lda, int64_t k0, int64_t kc, int64_t i0, int64_t mc, float *dst)
{
    packa_mr(A5_MR, A, lda, k0, kc, i0, mc, dst);
}

static const fl_gemm_impl impl_avx512 = {A5_MR, A5_NR, kern_avx512, packb_avx512, packa_avx512, "avx512"};
#endif /* FL_X86 */

/* ============================================ dispatch =========================================== */

enum { ISA_GENERIC = 1, ISA_AVX2 = 2, ISA_AVX512 = 3 };

static int detect_isa(void)
{
#if FL_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ISA_AVX2;
#endif
    return ISA_GENERIC;
}

static int best_isa(void)
{
    static atomic_int isa; /* 0 until detected; detection is idempotent, so a race is harmless */
    int v = atomic_load_explicit(&isa, memory_order_acquire);
    if (v == 0) {
        v = detect_isa();
        atomic_store_explicit(&isa, v, memory_order_release);
    }
    return v;
}

static const fl_gemm_impl *impl_for(int isa)
{
#if FL_X86
    if (isa == ISA_AVX512) return &impl_avx512;
    if (isa == ISA_AVX2) return &impl_avx2;
#endif
    return &impl_generic;
}

const char *fl_gemm_kernel_name(void)
{
    return impl_for(best_isa())->name;
}

/* ============================================= driver ============================================ */

/* K block size: depends on K only (bit-identical results for any split of M and N). */
static int64_t k_block(int64_t K)
{
    int64_t nkb = (K + KC_MAX - 1) / KC_MAX;
    int64_t kc = (K + nkb - 1) / nkb;
    return kc;
}

static void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        float *cr = C + i * ldc;
        if (beta == 0.0f) {
            for (int64_t j = 0; j < N; j++) cr[j] = 0.0f;
        } else if (beta != 1.0f) {
            for (int64_t j = 0; j < N; j++) cr[j] *= beta;
        }
    }
}

/* op(B) comes either from the matrix B or, when bp->pack is set, from a packer; bp->col0 is the first
 * column of op(B) this call computes (fl_gemm_parallel splits N between threads). */
typedef struct b_source {
    fl_gemm_bpack pack;
    const void *ctx;
    int64_t col0;
} b_source;

static void gemm_drive(const fl_gemm_impl *im, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                       const float *A, int64_t lda, const float *B, int64_t ldb, const b_source *bp, float beta,
                       float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    const int MR = im->mr, NR = im->nr;
    const int64_t kcb = k_block(K);
    /* Read op(B) in place when B is row-major and small (packing would not pay off). */
    const int directB = !bp->pack && !transB && (K * N <= 64 * 1024 || M <= 2 * MR);
    const int64_t nbmax = directB ? N : NB_MAX;
    float *bbuf = fl_gemm_bbuf, *abuf = fl_gemm_abuf;

    for (int64_t jb = 0; jb < N; jb += nbmax) {
        const int64_t nb = N - jb < nbmax ? N - jb : nbmax;
        for (int64_t pb = 0; pb < K; pb += kcb) {
            const int64_t kc = K - pb < kcb ? K - pb : kcb;
            const int mode = (pb == 0 && beta == 0.0f) ? 0 : 1;
            const float bet = pb == 0 ? beta : 1.0f;
            if (bp->pack) bp->pack(bp->ctx, pb, kc, bp->col0 + jb, nb, NR, bbuf);
            else if (!directB) im->packb(transB, B, ldb, pb, kc, jb, nb, bbuf);
            for (int64_t ib = 0, mr; ib < M; ib += mr) {
                mr = M - ib < MR ? M - ib : MR;
                /* Row-major A: split a last remainder of 1-3 rows with the panel before it (e.g. 32 rows
                 * = 4x6 + 4 + 4 rather than 5x6 + 2): tiles of < 4 rows have too few accumulators to
                 * hide the FMA latency. Packed A (transA) keeps MR-row panels. */
                if (!transA && M - ib > MR && M - ib < MR + 4) mr = (M - ib + 1) / 2;
                const float *ap;
                int64_t ars, acs;
                if (!transA) {
                    ap = A + ib * lda + pb;
                    ars = lda;
                    acs = 1;
                } else {
                    const int64_t ic = ib / MC_MAX * MC_MAX; /* MC_MAX is a multiple of MR */
                    if (ib == ic) im->packa(A, lda, pb, kc, ic, M - ic < MC_MAX ? M - ic : MC_MAX, abuf);
                    ap = abuf + (ib - ic) / MR * kc * MR;
                    ars = 1;
                    acs = MR;
                }
                float *cb = C + ib * ldc + jb;
                for (int64_t jr = 0; jr < nb; jr += NR) {
                    const int nr = nb - jr < NR ? (int)(nb - jr) : NR;
                    const float *bp;
                    int64_t bs;
                    if (directB) {
                        bp = B + pb * ldb + jb + jr;
                        bs = ldb;
                    } else {
                        bp = bbuf + (jr / NR) * kc * NR;
                        bs = NR;
                    }
                    im->kern(kc, ap, ars, acs, bp, bs, cb + jr, ldc, alpha, bet, mode, (int)mr, nr);
                }
            }
        }
    }
}

void fl_gemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
             const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    const b_source plain = {NULL, NULL, 0};
    gemm_drive(impl_for(best_isa()), transA, transB, M, N, K, alpha, A, lda, B, ldb, &plain, beta, C, ldc);
}

/* Internal (tests): run with a given kernel family, 0 = generic, 1 = avx2, 2 = avx512.
 * Returns -1 (and does nothing) when the CPU lacks it. Not part of the public header. */
int fl_gemm_with_isa(int which, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    int isa = which == 2 ? ISA_AVX512 : which == 1 ? ISA_AVX2 : ISA_GENERIC;
    if (isa > best_isa()) return -1;
    const b_source plain = {NULL, NULL, 0};
    gemm_drive(impl_for(isa), transA, transB, M, N, K, alpha, A, lda, B, ldb, &plain, beta, C, ldc);
    return 0;
}

/* Splits C between threads in whole tiles (see fl_gemm_parallel); op(B) from B or from bp. */
static void gemm_parallel(int threads, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                          const float *A, int64_t lda, const float *B, int64_t ldb, const b_source *bp, float beta,
                          float *C, int64_t ldc)
{
    if (M <= 0 || N <= 0) return;
    const fl_gemm_impl *im = impl_for(best_isa());
#ifdef _OPENMP
    const int64_t mt = (M + im->mr - 1) / im->mr, nt = (N + im->nr - 1) / im->nr;
    const double flops = 2.0 * (double)M * (double)N * (double)(K > 0 ? K : 1);
    if (threads > 1 && flops >= 2.0e5 && mt * nt >= 2 && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
        {
            const int64_t T = omp_get_num_threads(), t = omp_get_thread_num();
            /* 1-D split of C in whole tiles along the dimension with more tiles. */
            int64_t m0 = 0, m1 = M, n0 = 0, n1 = N;
            if (nt >= mt || nt >= 4 * T) {
                int64_t a = nt * t / T, b = nt * (t + 1) / T;
                n0 = a * im->nr;
                n1 = b * im->nr < N ? b * im->nr : N;
            } else {
                int64_t a = mt * t / T, b = mt * (t + 1) / T;
                m0 = a * im->mr;
                m1 = b * im->mr < M ? b * im->mr : M;
            }
            if (m1 > m0 && n1 > n0) {
                const float *Ab = transA ? A + m0 : A + m0 * lda;
                const float *Bb = bp->pack ? NULL : transB ? B + n0 * ldb : B + n0;
                const b_source part = {bp->pack, bp->ctx, bp->col0 + n0};
                gemm_drive(im, transA, transB, m1 - m0, n1 - n0, K, alpha, Ab, lda, Bb, ldb, &part, beta,
                           C + m0 * ldc + n0, ldc);
            }
        }
        return;
    }
#else
    (void)threads;
#endif
    gemm_drive(im, transA, transB, M, N, K, alpha, A, lda, B, ldb, bp, beta, C, ldc);
}

void fl_gemm_parallel(int threads, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    const b_source plain = {NULL, NULL, 0};
    gemm_parallel(threads, transA, transB, M, N, K, alpha, A, lda, B, ldb, &plain, beta, C, ldc);
}

void fl_gemm_packed_b_parallel(int threads, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                               fl_gemm_bpack pack, const void *pack_ctx, float beta, float *C, int64_t ldc)
{
    const b_source src = {pack, pack_ctx, 0};
    gemm_parallel(threads, 0, 0, M, N, K, alpha, A, lda, NULL, 0, &src, beta, C, ldc);
}

void fl_gemm_ref(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc)
{
    for (int64_t i = 0; i < M; i++) {
        for (int64_t j = 0; j < N; j++) {
            double acc = 0.0;
            for (int64_t k = 0; k < K; k++) {
                double a = transA ? A[k * lda + i] : A[i * lda + k];
                double b = transB ? B[j * ldb + k] : B[k * ldb + j];
                acc += a * b;
            }
            double v = (double)alpha * acc;
            if (beta != 0.0f) v += (double)beta * (double)C[i * ldc + j];
            C[i * ldc + j] = (float)v;
        }
    }
}
