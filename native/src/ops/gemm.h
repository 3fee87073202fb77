/* Single-precision GEMM, row-major: C[M x N] = alpha * op(A) * op(B) + beta * C,
 * op(A) is M x K (A is K x M when transA), op(B) is K x N (B is N x K when transB).
 * beta == 0 means C is overwritten (NaN in C is not propagated). */
#ifndef FL_GEMM_H
#define FL_GEMM_H

#include <stdint.h>

/* Single-threaded, allocation-free, safe to call inside an OpenMP parallel region. Chooses the best
 * kernel for the CPU at run time (AVX-512, AVX2+FMA, or portable C). */
void fl_gemm(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
             const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Same contract, split over `threads` OpenMP threads (must not be called inside a parallel region).
 * Each C element is computed by exactly one thread with the same summation order as fl_gemm, so the
 * result is bit-identical for any thread count. */
void fl_gemm_parallel(int threads, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha,
                      const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* op(B) built by the caller straight into the GEMM's packing buffer (e.g. a convolution's im2col, which
 * then never exists as a whole matrix). pack writes op(B)[k0:k0+kc, n0:n0+nc] as ceil(nc/nr) panels of
 * kc x nr floats: panel p at dst + p*kc*nr, element (k, n0 + p*nr + j) at [k*nr + j], columns past nc
 * zero. nc <= 256. It is called from the GEMM's threads at once, so it must only read shared data. */
typedef void (*fl_gemm_bpack)(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int nr, float *dst);

/* C = alpha * A * op(B) + beta * C with A row-major M x K and op(B) (K x N) from pack; threads as
 * fl_gemm_parallel, with the same bit-identical guarantee. */
void fl_gemm_packed_b_parallel(int threads, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                               fl_gemm_bpack pack, const void *pack_ctx, float beta, float *C, int64_t ldc);

/* Plain triple loop with double accumulation: the reference for tests. */
void fl_gemm_ref(int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                 const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

/* Name of the kernel fl_gemm uses on this CPU ("avx512", "avx2", "generic"). */
const char *fl_gemm_kernel_name(void);

#endif
