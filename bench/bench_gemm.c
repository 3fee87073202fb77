/* bench_gemm: GFLOP/s of fl_gemm (1 thread) and fl_gemm_parallel (2 threads) for large square matrices and
 * the small per-time-step shapes of an LSTM. Best-of-N timing.
 * Usage: bench_gemm [--quick] [--threads T]
 * Prints % of the nominal 225 GFLOP/s/core (AVX-512 FMA peak of the project machine) and % of the FMA peak
 * measured on this host for the ISA that fl_gemm dispatched to (the two differ on non-AVX-512 hosts). */
#include "ops/gemm.h"

#include "fl_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define NOMINAL_PEAK 225.0

#if defined(__x86_64__)
#define FMA12(F)                                                                                               \
    a0 = F(a0, m, c); a1 = F(a1, m, c); a2 = F(a2, m, c); a3 = F(a3, m, c); a4 = F(a4, m, c); a5 = F(a5, m, c);   \
    a6 = F(a6, m, c); a7 = F(a7, m, c); a8 = F(a8, m, c); a9 = F(a9, m, c); a10 = F(a10, m, c); a11 = F(a11, m, c);

__attribute__((target("avx512f"))) static double peak512(long it)
{
    __m512 m = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(0.9999999f);
    __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2), a3 = _mm512_set1_ps(3);
    __m512 a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5), a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7);
    __m512 a8 = _mm512_set1_ps(8), a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
    double t = fl_now_seconds();
    for (long n = 0; n < it; n++) {
        FMA12(_mm512_fmadd_ps)
    }
    t = fl_now_seconds() - t;
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    float o[16];
    _mm512_storeu_ps(o, s);
    if (o[0] == 12345.f) puts("");
    return (double)it * 12 * 32 / t * 1e-9;
}

__attribute__((target("avx2,fma"))) static double peak256(long it)
{
    __m256 m = _mm256_set1_ps(1.0000001f), c = _mm256_set1_ps(0.9999999f);
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2), a3 = _mm256_set1_ps(3);
    __m256 a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5), a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7);
    __m256 a8 = _mm256_set1_ps(8), a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    double t = fl_now_seconds();
    for (long n = 0; n < it; n++) {
        FMA12(_mm256_fmadd_ps)
    }
    t = fl_now_seconds() - t;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float o[8];
    _mm256_storeu_ps(o, s);
    if (o[0] == 12345.f) puts("");
    return (double)it * 12 * 16 / t * 1e-9;
}
#endif

static double host_peak(const char *kname)
{
#if defined(__x86_64__)
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double g = strcmp(kname, "avx512") == 0 ? peak512(30000000) : strcmp(kname, "avx2") == 0 ? peak256(30000000) : 0;
        if (g > best) best = g;
    }
    return best;
#else
    (void)kname;
    return 0;
#endif
}

typedef struct {
    const char *label;
    int tA, tB;
    int64_t M, N, K;
    float beta;
} shape;

static void fill(float *x, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) & 0xFFFF) / 65536.0f - 0.5f;
    }
}

static double run(const shape *s, int threads, int reps, double min_time)
{
    const int64_t M = s->M, N = s->N, K = s->K;
    const int64_t lda = s->tA ? M : K, ldb = s->tB ? K : N, ldc = N;
    float *A = aligned_alloc(64, (size_t)((M * K * 4 + 63) / 64 * 64));
    float *B = aligned_alloc(64, (size_t)((K * N * 4 + 63) / 64 * 64));
    float *C = aligned_alloc(64, (size_t)((M * N * 4 + 63) / 64 * 64));
    if (!A || !B || !C) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    fill(A, M * K, 1);
    fill(B, K * N, 2);
    fill(C, M * N, 3);
    const double flop = 2.0 * (double)M * (double)N * (double)K;
    /* calibrate the inner loop count so one repeat takes about min_time */
    int64_t iters = 1;
    for (;;) {
        double t = fl_now_seconds();
        for (int64_t i = 0; i < iters; i++) {
            if (threads == 1)
                fl_gemm(s->tA, s->tB, M, N, K, 1.0f, A, lda, B, ldb, s->beta, C, ldc);
            else
                fl_gemm_parallel(threads, s->tA, s->tB, M, N, K, 1.0f, A, lda, B, ldb, s->beta, C, ldc);
        }
        t = fl_now_seconds() - t;
        if (t >= min_time || iters >= (1 << 24)) break;
        iters = t <= 0 ? iters * 16 : (int64_t)(iters * (min_time / t) * 1.2) + 1;
    }
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = fl_now_seconds();
        for (int64_t i = 0; i < iters; i++) {
            if (threads == 1)
                fl_gemm(s->tA, s->tB, M, N, K, 1.0f, A, lda, B, ldb, s->beta, C, ldc);
            else
                fl_gemm_parallel(threads, s->tA, s->tB, M, N, K, 1.0f, A, lda, B, ldb, s->beta, C, ldc);
        }
        t = (fl_now_seconds() - t) / (double)iters;
        if (t < best) best = t;
    }
    free(A);
    free(B);
    free(C);
    return flop / best * 1e-9;
}

int main(int argc, char **argv)
{
    int quick = 0, tmax = 2, tmin = 1;
    shape one = {"custom", 0, 0, 0, 0, 0, 0.0f};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) tmax = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only-threads") && i + 1 < argc) tmin = tmax = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shape") && i + 1 < argc) {
            long long m, n, k;
            if (sscanf(argv[++i], "%d,%d,%lld,%lld,%lld,%f", &one.tA, &one.tB, &m, &n, &k, &one.beta) != 6) {
                fprintf(stderr, "--shape tA,tB,M,N,K,beta\n");
                return 2;
            }
            one.M = m;
            one.N = n;
            one.K = k;
        } else {
            fprintf(stderr, "usage: bench_gemm [--quick] [--threads T | --only-threads T] [--shape tA,tB,M,N,K,beta]\n");
            return 2;
        }
    }
    const shape all[] = {
        {"square", 0, 0, 512, 512, 512, 0.0f},
        {"square", 0, 0, 1024, 1024, 1024, 0.0f},
        {"square", 0, 0, 2048, 2048, 2048, 0.0f},
        {"square tA tB", 1, 1, 1024, 1024, 1024, 0.0f},
        {"lstm gates x W^T", 0, 1, 32, 256, 64, 1.0f},
        {"lstm gates x W^T", 0, 1, 32, 256, 128, 1.0f},
        {"lstm gates x W^T", 0, 1, 64, 256, 64, 1.0f},
        {"lstm gates x W^T", 0, 1, 64, 256, 128, 1.0f},
        {"lstm gates (torch)", 0, 1, 64, 256, 192, 1.0f},
        {"dW += dZ^T X", 1, 0, 256, 64, 32, 1.0f},
        {"dW += dZ^T X", 1, 0, 256, 64, 64, 1.0f},
        {"dW += dZ^T X", 1, 0, 256, 128, 64, 1.0f},
        {"dX = dZ W", 0, 0, 64, 64, 256, 0.0f},
        {"dX = dZ W", 0, 0, 32, 64, 256, 0.0f},
    };
    const shape *shapes = one.M > 0 ? &one : all;
    const size_t nshapes = one.M > 0 ? 1 : sizeof all / sizeof all[0];
    const char *kname = fl_gemm_kernel_name();
    double hp = host_peak(kname);
    printf("fl_gemm kernel: %s; host %s FMA peak (measured, 1 core): %.1f GFLOP/s; nominal project peak %.0f\n", kname,
           kname, hp, NOMINAL_PEAK);
    printf("%-20s %2s %2s %5s %5s %5s %4s %3s %9s %8s %8s\n", "shape", "tA", "tB", "M", "N", "K", "beta", "thr",
           "GFLOP/s", "%of225", "%ofhost");
    const int reps = quick ? 3 : 7;
    const double mt = quick ? 0.02 : 0.05;
    for (size_t i = 0; i < nshapes; i++) {
        const shape *s = &shapes[i];
        for (int t = tmin; t <= tmax; t++) {
            if (quick && s->M >= 2048) continue;
            double g = run(s, t, reps, mt);
            printf("%-20s %2d %2d %5lld %5lld %5lld %4.1f %3d %9.1f %7.1f%% %7.1f%%\n", s->label, s->tA, s->tB,
                   (long long)s->M, (long long)s->N, (long long)s->K, s->beta, t, g, 100.0 * g / (NOMINAL_PEAK * t),
                   hp > 0 ? 100.0 * g / (hp * t) : 0.0);
            fflush(stdout);
        }
    }
    return 0;
}
