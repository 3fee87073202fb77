/* Winograd F(4x4, 3x3) and F(4, 3) convolutions: see winograd.h.
 *
 * Tiles (n, residue class, ty, tx) are numbered row-major and processed in blocks of TB tiles, one block per
 * thread at a time: the P transformed inputs of the block (V, P x Cin x TB; P = 36 points for 2-D, 6 for
 * 1-D), P single-threaded GEMMs into M (P x Cout x TB), the output transform. V and M of one block stay in
 * the thread's cache. The transforms run on 8 tiles at once (GCC vector extension; an AVX2 build of the
 * block function is chosen at run time, like the GEMM's kernels). A dilated convolution is an undilated
 * one on each sub-grid of pixels d apart, so its tiles are sub-grid tiles. */
#include "ops/winograd.h"

#include "ops/gemm.h"

#include <omp.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
/* Tiles per block, the GEMMs' N: 128 measured best on Zen 3 (512 KiB L2 per core) for 32-256 channels,
 * against 64 and 256 (fewer passes over U per tile, while V and M of a block stay in L2/L3). */
enum { LANES = 8, TB_MAX = 128 };

#define FL_INLINE static inline __attribute__((always_inline))

/* Floats between the slices of V (Cin x TB) or M (Cout x TB): padded by a cache line, as the slices
 * would otherwise lie a multiple of 4 KiB apart and the 36 stores or loads of one tile group would all
 * fall into the same L1 set. */
static int64_t xi_stride(int64_t C, int64_t tb) { return C * tb + 16; }

/* Floats of scratch the per-block tile table takes (after V and M; see tile_table). */
static size_t table_floats(void) { return (size_t)TB_MAX * (36 * 2 + 36 + 16 * 2); }

/* Transform points: 6x6 per 2-D tile, 6 per 1-D tile. */
static int points(const fl_wino_geom *g) { return g->one_d ? 6 : 36; }

size_t fl_wino_weight_floats(const fl_wino_geom *g) { return (size_t)(points(g) * g->Cout * g->Cin); }

/* Scratch of one thread: V, M (their slices for TB_MAX tiles), then the tile table. */
static size_t vm_floats(const fl_wino_geom *g)
{
    return (size_t)(points(g) * (xi_stride(g->Cin, TB_MAX) + xi_stride(g->Cout, TB_MAX)));
}

size_t fl_wino_work_floats(int threads, const fl_wino_geom *g)
{
    return (size_t)(threads < 1 ? 1 : threads) * (vm_floats(g) + table_floats());
}

int fl_wino_supported(int kh, int kw, int stride, int ph, int pw, int dh, int dw)
{
    if (stride != 1 || kw != 3 || pw % dw || pw / dw > 2) return 0;
    if (kh == 1) return ph == 0 && dh == 1; /* 1-D along W */
    return kh == 3 && ph % dh == 0 && ph / dh <= 2;
}

/* G (6x3) of F(4x4, 3x3), exact in double. */
static const double WG[6][3] = {{1.0 / 4, 0, 0},
                                {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                {0, 0, 1}};

void fl_wino_weights(int threads, const float *w, const fl_wino_geom *geo, int flip, float *U)
{
    const int64_t Cout = geo->Cout, Cin = geo->Cin, pairs = Cout * Cin;
    const int kk = geo->one_d ? 3 : 9;
#pragma omp parallel for num_threads(threads) if (pairs > 4096) schedule(static)
    for (int64_t p = 0; p < pairs; p++) {
        const int64_t co = p / Cin, ci = p % Cin;
        double g[3][3] = {{0}}, t[6][3];
        for (int q = 0; q < kk; q++) {
            const float v = flip ? w[(ci * Cout + co) * kk + kk - 1 - q] : w[(co * Cin + ci) * kk + q];
            if (geo->one_d) g[0][q] = v;
            else g[q / 3][q % 3] = v;
        }
        if (geo->one_d) {
            for (int j = 0; j < 6; j++) U[j * pairs + p] = (float)(WG[j][0] * g[0][0] + WG[j][1] * g[0][1] + WG[j][2] * g[0][2]);
            continue;
        }
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 3; j++) t[i][j] = WG[i][0] * g[0][j] + WG[i][1] * g[1][j] + WG[i][2] * g[2][j];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
                U[(i * 6 + j) * pairs + p] = (float)(t[i][0] * WG[j][0] + t[i][1] * WG[j][1] + t[i][2] * WG[j][2]);
    }
}

/* r[i rs] = (B^T d)_i for the six vectors d[j ds]: one column or row of a 6x6 tile (8 tiles at once).
 * Vectors travel by pointer: passing 32-byte vectors by value has no stable ABI without AVX. */
FL_INLINE void bt6(const v8 *d, int ds, v8 *r, int rs)
{
    const v8 a = d[4 * ds] - 4.f * d[2 * ds], b = d[3 * ds] - 4.f * d[ds], c = d[4 * ds] - d[2 * ds],
             e = 2.f * (d[3 * ds] - d[ds]);
    r[0] = 4.f * d[0] - 5.f * d[2 * ds] + d[4 * ds];
    r[rs] = a + b;
    r[2 * rs] = a - b;
    r[3 * rs] = c + e;
    r[4 * rs] = c - e;
    r[5 * rs] = 4.f * d[ds] - 5.f * d[3 * ds] + d[5 * ds];
}

/* r[i rs] = (A^T m)_i: six vectors m[j ms] to four. */
FL_INLINE void at6(const v8 *m, int ms, v8 *r, int rs)
{
    const v8 s12 = m[ms] + m[2 * ms], d12 = m[ms] - m[2 * ms], s34 = m[3 * ms] + m[4 * ms], d34 = m[3 * ms] - m[4 * ms];
    r[0] = m[0] + s12 + s34;
    r[rs] = d12 + 2.f * d34;
    r[2 * rs] = s12 + 4.f * s34;
    r[3 * rs] = d12 + 8.f * d34 + m[5 * ms];
}

typedef struct wino_layer {
    const float *U, *x;
    float *y;
    int64_t Cout, Cin, N, H, W, Ho, Wo;
    int64_t tH, tW, T, TB; /* tiles per residue class and plane: tH x tW; all tiles T; tiles per block TB */
    int a, b;              /* padding in dilations (rows, columns) */
    int dh, dw;
    float beta;
} wino_layer;

/* Per block, where each tile reads and writes, as offsets from the start of a channel (the same for every
 * channel): gather[k][l] is input point k of tile l, with keep[k][l] all ones inside the image and zero
 * for padding (a bitwise mask, so NaN or infinity elsewhere in the image cannot leak into padding);
 * scatter[k][l] is output k of the tile, -1 outside the output. One branch-free path for every tile. */
typedef struct tile_table {
    int64_t *gather;  /* [36][TB] */
    uint32_t *keep;   /* [36][TB] */
    int64_t *scatter; /* [16][TB] */
} tile_table;

FL_INLINE void block_impl(const wino_layer *L, int64_t t0, float *V, float *M, const tile_table *tab, const int one_d)
{
    const int P = one_d ? 6 : 36, WH = one_d ? 1 : 6, TH = one_d ? 1 : 4; /* points, window and tile height */
    const int64_t tb = L->T - t0 < L->TB ? L->T - t0 : L->TB, groups = (tb + LANES - 1) / LANES, TB = L->TB;
    const int64_t HW = L->H * L->W, N = L->N, W = L->W, H = L->H, vs = xi_stride(L->Cin, TB),
                  ms = xi_stride(L->Cout, TB), HWo = L->Ho * L->Wo;
    for (int64_t l = 0; l < groups * LANES; l++) {
        int64_t t = t0 + l;
        const int64_t tx = t % L->tW;
        t /= L->tW;
        const int64_t ty = t % L->tH;
        t /= L->tH;
        const int64_t rx = t % L->dw;
        t /= L->dw;
        const int64_t ry = t % L->dh, n = t / L->dh;
        /* output tile origin; input window origin (both in image pixels) */
        const int64_t oy = ry + L->dh * (TH * ty), ox = rx + L->dw * (4 * tx);
        const int64_t iy = oy - L->dh * L->a, ix = ox - L->dw * L->b;
        for (int i = 0; i < WH; i++)
            for (int j = 0; j < 6; j++) {
                const int64_t yy = iy + i * L->dh, xx = ix + j * L->dw, k = i * 6 + j;
                const int ok = l < tb && yy >= 0 && yy < H && xx >= 0 && xx < W;
                tab->gather[k * TB + l] = ok ? n * HW + yy * W + xx : 0;
                tab->keep[k * TB + l] = ok ? 0xFFFFFFFFu : 0u;
            }
        for (int i = 0; i < TH; i++)
            for (int j = 0; j < 4; j++) {
                const int64_t yy = oy + i * L->dh, xx = ox + j * L->dw;
                tab->scatter[(i * 4 + j) * TB + l] = l < tb && yy < L->Ho && xx < L->Wo ? n * HWo + yy * L->Wo + xx : -1;
            }
    }
    /* input transform: V[xi][c][t] */
    for (int64_t c = 0; c < L->Cin; c++) {
        const float *xc = L->x + c * N * HW;
        for (int64_t g = 0; g < groups; g++) {
            float d[36][LANES];
            for (int k = 0; k < P; k++) {
                const int64_t *off = tab->gather + k * TB + g * LANES;
                const uint32_t *keep = tab->keep + k * TB + g * LANES;
                for (int l = 0; l < LANES; l++) {
                    uint32_t v;
                    memcpy(&v, xc + off[l], sizeof v);
                    v &= keep[l];
                    memcpy(&d[k][l], &v, sizeof v);
                }
            }
            v8 dv[36], v[36];
            memcpy(dv, d, (size_t)P * sizeof(v8)); /* d[k] holds point k of the 8 tiles: one vector */
            if (one_d) {
                bt6(dv, 1, v, 1);
            } else {
                v8 t[36];
                for (int j = 0; j < 6; j++) bt6(dv + j, 6, t + j, 6); /* columns */
                for (int i = 0; i < 6; i++) bt6(t + 6 * i, 1, v + 6 * i, 1); /* rows */
            }
            for (int k = 0; k < P; k++) memcpy(V + k * vs + c * TB + g * LANES, &v[k], sizeof(v8));
        }
    }
    /* the products M[xi] = U[xi] V[xi] */
    const int64_t ncols = groups * LANES;
    for (int k = 0; k < P; k++)
        fl_gemm(0, 0, L->Cout, ncols, L->Cin, 1.f, L->U + k * L->Cout * L->Cin, L->Cin, V + k * vs, TB, 0.f, M + k * ms,
                TB);
    /* output transform */
    for (int64_t co = 0; co < L->Cout; co++) {
        float *yc = L->y + co * N * HWo;
        for (int64_t g = 0; g < groups; g++) {
            v8 m[36], r[16];
            for (int k = 0; k < P; k++) memcpy(&m[k], M + k * ms + co * TB + g * LANES, sizeof(v8));
            if (one_d) {
                at6(m, 1, r, 1);
            } else {
                v8 t[24];
                for (int j = 0; j < 6; j++) at6(m + j, 6, t + j, 6); /* columns: 6x6 -> 4x6 */
                for (int i = 0; i < 4; i++) at6(t + 6 * i, 1, r + 4 * i, 1); /* rows: 4x6 -> 4x4 */
            }
            float o[16][LANES];
            memcpy(o, r, (size_t)(4 * TH) * sizeof(v8));
            for (int k = 0; k < 4 * TH; k++) {
                const int64_t *off = tab->scatter + k * TB + g * LANES;
                if (L->beta == 0.f) {
                    for (int l = 0; l < LANES; l++)
                        if (off[l] >= 0) yc[off[l]] = o[k][l];
                } else {
                    for (int l = 0; l < LANES; l++)
                        if (off[l] >= 0) yc[off[l]] += o[k][l];
                }
            }
        }
    }
}

__attribute__((target("avx2,fma"))) static void block_avx2_2d(const wino_layer *L, int64_t t0, float *V, float *M,
                                                              const tile_table *tab)
{
    block_impl(L, t0, V, M, tab, 0);
}

__attribute__((target("avx2,fma"))) static void block_avx2_1d(const wino_layer *L, int64_t t0, float *V, float *M,
                                                              const tile_table *tab)
{
    block_impl(L, t0, V, M, tab, 1);
}

static void block_generic_2d(const wino_layer *L, int64_t t0, float *V, float *M, const tile_table *tab)
{
    block_impl(L, t0, V, M, tab, 0);
}

static void block_generic_1d(const wino_layer *L, int64_t t0, float *V, float *M, const tile_table *tab)
{
    block_impl(L, t0, V, M, tab, 1);
}

void fl_wino_conv(int threads, const float *U, const fl_wino_geom *geo, const float *x, float beta, float *y,
                  float *work)
{
    if (threads < 1) threads = 1;
    const int one_d = geo->one_d, P = points(geo);
    const int64_t Cout = geo->Cout, Cin = geo->Cin;
    wino_layer L = {U, x, y, Cout, Cin, geo->N, geo->H, geo->W, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, beta};
    L.dh = one_d ? 1 : geo->dh;
    L.dw = geo->dw;
    L.a = one_d ? 0 : geo->ph / geo->dh;
    L.b = geo->pw / geo->dw;
    L.Ho = one_d ? geo->H : geo->H + 2 * geo->ph - 2 * geo->dh;
    L.Wo = geo->W + 2 * geo->pw - 2 * geo->dw;
    /* tiles per residue class: the largest class has ceil(Ho / d) output rows */
    const int64_t rows = (L.Ho + L.dh - 1) / L.dh, cols = (L.Wo + L.dw - 1) / L.dw;
    L.tH = one_d ? rows : (rows + 3) / 4;
    L.tW = (cols + 3) / 4;
    L.T = geo->N * L.dh * L.dw * L.tH * L.tW;
    /* enough blocks for every thread */
    int64_t tb = (L.T + threads - 1) / threads;
    tb = (tb + LANES - 1) / LANES * LANES;
    L.TB = tb < TB_MAX ? tb : TB_MAX;
    const int64_t nblocks = (L.T + L.TB - 1) / L.TB;
    const int nthr = nblocks < threads ? (int)nblocks : threads;
    const int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    void (*block)(const wino_layer *, int64_t, float *, float *, const tile_table *) =
        avx2 ? (one_d ? block_avx2_1d : block_avx2_2d) : (one_d ? block_generic_1d : block_generic_2d);
    const size_t vm = vm_floats(geo), per_thread = vm + table_floats();
#pragma omp parallel num_threads(nthr)
    {
        float *V = work + (size_t)omp_get_thread_num() * per_thread, *M = V + P * xi_stride(Cin, L.TB);
        /* the table after V and M (vm is even, so the int64 arrays stay 8-byte aligned) */
        int64_t *t64 = (int64_t *)(void *)(V + vm);
        const tile_table tab = {t64, (uint32_t *)(t64 + 36 * TB_MAX + 16 * TB_MAX), t64 + 36 * TB_MAX};
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nblocks; b++) block(&L, b * L.TB, V, M, &tab);
    }
}
