/* Tests of ops/gemm: fl_gemm (dispatched kernel and every kernel family the CPU supports) against the
 * double-accumulating reference, and bit-identity of fl_gemm_parallel for 1, 2 and 3 threads. */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ops/gemm.h"

/* Internal entry point of gemm.c (not in the public header): forces a kernel family
 * (0 generic, 1 avx2, 2 avx512); returns -1 when the CPU does not support it. */
int fl_gemm_with_isa(int which, int transA, int transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                     int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void fill(float *x, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lcg(&seed) & 0xFFFF) / 32768.0f - 1.0f;
}

typedef struct {
    int tA, tB;
    int64_t M, N, K, lda, ldb, ldc;
    float alpha, beta;
    float *A, *B, *C0;
} prob;

/* Allocates A, B, C0 with leading dimensions padded by `pad` (garbage in the padding). */
static void prob_make(prob *p, int tA, int tB, int64_t M, int64_t N, int64_t K, int64_t pad, float alpha, float beta,
                      uint32_t seed)
{
    p->tA = tA;
    p->tB = tB;
    p->M = M;
    p->N = N;
    p->K = K;
    p->alpha = alpha;
    p->beta = beta;
    int64_t ar = tA ? K : M, ac = tA ? M : K, br = tB ? N : K, bc = tB ? K : N;
    p->lda = ac + pad;
    p->ldb = bc + pad;
    p->ldc = N + pad;
    int64_t na = ar * p->lda + 1, nb = br * p->ldb + 1, nc = M * p->ldc + 1;
    p->A = malloc(sizeof(float) * (size_t)na);
    p->B = malloc(sizeof(float) * (size_t)nb);
    p->C0 = malloc(sizeof(float) * (size_t)nc);
    cr_assert(p->A && p->B && p->C0);
    fill(p->A, na, seed * 3 + 1);
    fill(p->B, nb, seed * 3 + 2);
    fill(p->C0, nc, seed * 3 + 3);
}

static void prob_free(prob *p)
{
    free(p->A);
    free(p->B);
    free(p->C0);
}

static float *copy_c(const prob *p)
{
    size_t n = (size_t)(p->M * p->ldc + 1);
    float *c = malloc(sizeof(float) * n);
    cr_assert(c);
    memcpy(c, p->C0, sizeof(float) * n);
    return c;
}

/* Compare C with the reference: |c - r| <= tol * (|alpha| sum|a||b| + |beta c0|), tol = 1e-5 sqrt(K);
 * the padding between rows must be untouched. */
static void check_against_ref(const prob *p, const float *C, const char *what)
{
    float *R = copy_c(p);
    fl_gemm_ref(p->tA, p->tB, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B, p->ldb, p->beta, R, p->ldc);
    const double tol = 1e-5 * sqrt((double)(p->K > 1 ? p->K : 1));
    for (int64_t i = 0; i < p->M; i++) {
        for (int64_t j = 0; j < p->ldc; j++) {
            float c = C[i * p->ldc + j], r = R[i * p->ldc + j];
            if (j >= p->N) {
                cr_assert(memcmp(&c, &p->C0[i * p->ldc + j], sizeof c) == 0,
                          "%s: padding of C overwritten at (%lld,%lld)", what, (long long)i, (long long)j);
                continue;
            }
            double bound = 0;
            for (int64_t k = 0; k < p->K; k++) {
                double a = p->tA ? p->A[k * p->lda + i] : p->A[i * p->lda + k];
                double b = p->tB ? p->B[j * p->ldb + k] : p->B[k * p->ldb + j];
                bound += fabs(a * b);
            }
            bound = fabs((double)p->alpha) * bound + (p->beta != 0.0f ? fabs((double)p->beta * p->C0[i * p->ldc + j]) : 0);
            cr_assert(isfinite(c), "%s: non-finite C(%lld,%lld) tA=%d tB=%d M=%lld N=%lld K=%lld", what, (long long)i,
                      (long long)j, p->tA, p->tB, (long long)p->M, (long long)p->N, (long long)p->K);
            cr_assert(fabs((double)c - (double)r) <= tol * bound + 1e-30,
                      "%s: C(%lld,%lld) = %.9g, ref %.9g (bound %g) tA=%d tB=%d M=%lld N=%lld K=%lld a=%g b=%g", what,
                      (long long)i, (long long)j, c, r, bound, p->tA, p->tB, (long long)p->M, (long long)p->N,
                      (long long)p->K, p->alpha, p->beta);
        }
    }
    free(R);
}

/* Checks fl_gemm and every supported kernel family against the reference. */
static void check_all_kernels(const prob *p)
{
    float *C = copy_c(p);
    fl_gemm(p->tA, p->tB, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B, p->ldb, p->beta, C, p->ldc);
    check_against_ref(p, C, fl_gemm_kernel_name());
    free(C);
    static const char *names[] = {"generic", "avx2", "avx512"};
    for (int isa = 0; isa < 3; isa++) {
        C = copy_c(p);
        if (fl_gemm_with_isa(isa, p->tA, p->tB, p->M, p->N, p->K, p->alpha, p->A, p->lda, p->B, p->ldb, p->beta, C,
                             p->ldc) == 0)
            check_against_ref(p, C, names[isa]);
        free(C);
    }
}

Test(gemm, kernel_name)
{
    const char *n = fl_gemm_kernel_name();
    cr_assert(!strcmp(n, "avx512") || !strcmp(n, "avx2") || !strcmp(n, "generic"), "kernel %s", n);
    cr_log_info("fl_gemm kernel: %s", n);
}

Test(gemm, tiny_1x1x1)
{
    for (int t = 0; t < 4; t++) {
        prob p;
        prob_make(&p, t & 1, t >> 1, 1, 1, 1, 0, 1.0f, 0.0f, 7);
        check_all_kernels(&p);
        float a = 3.0f, b = -2.0f, c = 10.0f;
        fl_gemm(t & 1, t >> 1, 1, 1, 1, 0.5f, &a, 1, &b, 1, 2.0f, &c, 1);
        cr_assert_eq(c, 17.0f);
        prob_free(&p);
    }
}

/* Every transpose combination over odd, prime and tile-boundary sizes. */
Test(gemm, odd_sizes_all_transposes)
{
    static const int64_t mn[] = {1, 2, 3, 5, 6, 7, 8, 9, 13, 16, 17, 31, 32, 33, 37};
    static const int64_t ks[] = {1, 2, 7, 16, 37};
    uint32_t seed = 1;
    for (int t = 0; t < 4; t++)
        for (size_t a = 0; a < sizeof mn / sizeof *mn; a++)
            for (size_t b = 0; b < sizeof mn / sizeof *mn; b++)
                for (size_t c = 0; c < sizeof ks / sizeof *ks; c++) {
                    prob p;
                    float beta = (seed % 3 == 0) ? 0.0f : (seed % 3 == 1 ? 1.0f : -0.75f);
                    prob_make(&p, t & 1, t >> 1, mn[a], mn[b], ks[c], (int64_t)(seed % 4), 1.0f, beta, seed);
                    seed++;
                    check_all_kernels(&p);
                    prob_free(&p);
                }
}

Test(gemm, alpha_beta_variants)
{
    static const float ab[][2] = {{1, 0}, {1, 1}, {-0.5f, 2}, {2.5f, -1}, {0, 0.5f}, {0, 0}, {1e-3f, 1e3f}};
    for (size_t v = 0; v < sizeof ab / sizeof *ab; v++)
        for (int t = 0; t < 4; t++) {
            prob p;
            prob_make(&p, t & 1, t >> 1, 29, 41, 23, 5, ab[v][0], ab[v][1], (uint32_t)(v * 4 + t));
            check_all_kernels(&p);
            prob_free(&p);
        }
}

Test(gemm, beta_zero_ignores_nan_in_c)
{
    for (int t = 0; t < 4; t++) {
        prob p;
        prob_make(&p, t & 1, t >> 1, 19, 45, 33, 3, 1.0f, 0.0f, 99);
        for (int64_t i = 0; i < p.M; i++)
            for (int64_t j = 0; j < p.N; j++) p.C0[i * p.ldc + j] = (i + j) % 2 ? NAN : INFINITY;
        check_all_kernels(&p);
        /* K = 0 and alpha = 0 with beta = 0 must also clear NaN */
        float *C = copy_c(&p);
        fl_gemm(p.tA, p.tB, p.M, p.N, 0, 1.0f, p.A, p.lda, p.B, p.ldb, 0.0f, C, p.ldc);
        for (int64_t i = 0; i < p.M; i++)
            for (int64_t j = 0; j < p.N; j++) cr_assert_eq(C[i * p.ldc + j], 0.0f);
        memcpy(C, p.C0, sizeof(float) * (size_t)(p.M * p.ldc));
        fl_gemm(p.tA, p.tB, p.M, p.N, p.K, 0.0f, p.A, p.lda, p.B, p.ldb, 0.0f, C, p.ldc);
        for (int64_t i = 0; i < p.M; i++)
            for (int64_t j = 0; j < p.N; j++) cr_assert_eq(C[i * p.ldc + j], 0.0f);
        free(C);
        prob_free(&p);
    }
}

Test(gemm, degenerate_dims)
{
    /* K = 0: C = beta * C */
    for (int t = 0; t < 4; t++) {
        prob p;
        prob_make(&p, t & 1, t >> 1, 7, 9, 0, 2, 1.0f, 0.5f, 5);
        check_all_kernels(&p);
        prob_free(&p);
        prob_make(&p, t & 1, t >> 1, 7, 9, 0, 2, 1.0f, 1.0f, 6);
        float *C = copy_c(&p);
        fl_gemm(p.tA, p.tB, p.M, p.N, 0, 1.0f, p.A, p.lda, p.B, p.ldb, 1.0f, C, p.ldc);
        cr_assert(memcmp(C, p.C0, sizeof(float) * (size_t)(p.M * p.ldc)) == 0);
        free(C);
        prob_free(&p);
    }
    /* M = 0 or N = 0: nothing is touched (pointers may be NULL) */
    float c = 42.0f;
    fl_gemm(0, 0, 0, 5, 5, 1.0f, NULL, 5, NULL, 5, 0.0f, NULL, 5);
    fl_gemm(0, 0, 5, 0, 5, 1.0f, NULL, 5, NULL, 1, 0.0f, NULL, 1);
    fl_gemm_parallel(2, 0, 0, 0, 0, 3, 1.0f, NULL, 3, NULL, 1, 0.0f, &c, 1);
    cr_assert_eq(c, 42.0f);
    /* vectors: M = 1 (row times matrix), N = 1 (matrix times vector) */
    for (int t = 0; t < 4; t++) {
        prob p;
        prob_make(&p, t & 1, t >> 1, 1, 300, 70, 1, 1.0f, 1.0f, 11);
        check_all_kernels(&p);
        prob_free(&p);
        prob_make(&p, t & 1, t >> 1, 300, 1, 70, 1, 1.0f, 0.0f, 12);
        check_all_kernels(&p);
        prob_free(&p);
    }
}

/* Larger shapes: several K blocks (K > 384), several N blocks of packed B (N > 256), packed and in-place B. */
Test(gemm, large_shapes)
{
    static const int64_t shp[][3] = {{300, 200, 150}, {45, 600, 50}, {70, 90, 800}, {129, 300, 400}};
    for (size_t s = 0; s < sizeof shp / sizeof *shp; s++)
        for (int t = 0; t < 4; t++) {
            prob p;
            prob_make(&p, t & 1, t >> 1, shp[s][0], shp[s][1], shp[s][2], (int64_t)(s + t) % 3 * 7, 1.0f,
                      t % 2 ? 0.0f : 0.5f, (uint32_t)(100 + s * 4 + t));
            check_all_kernels(&p);
            prob_free(&p);
        }
}

/* LSTM per-step shapes. */
Test(gemm, lstm_shapes)
{
    static const int row[][6] = {
        /* tA tB M N K beta!=0 */
        {0, 1, 64, 256, 128, 1}, {0, 1, 32, 256, 64, 0}, {1, 0, 256, 64, 32, 1}, {1, 0, 256, 64, 64, 1},
        {0, 0, 64, 64, 256, 0},
    };
    for (size_t s = 0; s < sizeof row / sizeof *row; s++) {
        prob p;
        prob_make(&p, row[s][0], row[s][1], row[s][2], row[s][3], row[s][4], 0, 1.0f, row[s][5] ? 1.0f : 0.0f,
                  (uint32_t)(200 + s));
        check_all_kernels(&p);
        prob_free(&p);
    }
}

/* fl_gemm_parallel must give exactly the bytes of fl_gemm for any thread count. */
Test(gemm, parallel_bit_identical)
{
    static const int64_t shp[][3] = {{300, 200, 150}, {64, 256, 128}, {256, 64, 64}, {37, 1000, 29},
                                     {1000, 37, 29},  {97, 131, 900}, {64, 64, 256}, {7, 5, 3}};
    for (size_t s = 0; s < sizeof shp / sizeof *shp; s++)
        for (int t = 0; t < 4; t++) {
            prob p;
            float beta = (s + t) % 2 ? 0.0f : 0.7f;
            prob_make(&p, t & 1, t >> 1, shp[s][0], shp[s][1], shp[s][2], (int64_t)(s % 3), 1.25f, beta,
                      (uint32_t)(300 + s * 4 + t));
            float *C1 = copy_c(&p);
            fl_gemm(p.tA, p.tB, p.M, p.N, p.K, p.alpha, p.A, p.lda, p.B, p.ldb, p.beta, C1, p.ldc);
            for (int th = 1; th <= 3; th++) {
                float *Ct = copy_c(&p);
                fl_gemm_parallel(th, p.tA, p.tB, p.M, p.N, p.K, p.alpha, p.A, p.lda, p.B, p.ldb, p.beta, Ct, p.ldc);
                cr_assert(memcmp(C1, Ct, sizeof(float) * (size_t)(p.M * p.ldc + 1)) == 0,
                          "threads=%d differs: tA=%d tB=%d M=%lld N=%lld K=%lld", th, p.tA, p.tB, (long long)p.M,
                          (long long)p.N, (long long)p.K);
                free(Ct);
            }
            if (s == 0) check_against_ref(&p, C1, "parallel");
            free(C1);
            prob_free(&p);
        }
}

/* fl_gemm inside an OpenMP region (each thread its own problem) works and matches the serial result. */
Test(gemm, callable_inside_parallel_region)
{
    prob p;
    prob_make(&p, 0, 1, 64, 300, 100, 0, 1.0f, 0.0f, 77);
    float *C1 = copy_c(&p);
    fl_gemm(p.tA, p.tB, p.M, p.N, p.K, p.alpha, p.A, p.lda, p.B, p.ldb, p.beta, C1, p.ldc);
    float *Cs[4];
    for (int i = 0; i < 4; i++) Cs[i] = copy_c(&p);
#pragma omp parallel for num_threads(2)
    for (int i = 0; i < 4; i++) fl_gemm(p.tA, p.tB, p.M, p.N, p.K, p.alpha, p.A, p.lda, p.B, p.ldb, p.beta, Cs[i], p.ldc);
    for (int i = 0; i < 4; i++) {
        cr_assert(memcmp(C1, Cs[i], sizeof(float) * (size_t)(p.M * p.ldc)) == 0);
        free(Cs[i]);
    }
    free(C1);
    prob_free(&p);
}
