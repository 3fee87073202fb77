/* Winograd F(4x4, 3x3) and F(4, 3) convolutions and their weight gradient: see winograd.h.
 *
 * Tiles (n, residue class, ty, tx) are numbered row-major. The input of a chunk of planes is first
 * transposed to pixel-major (see XT_BUDGET). Forward: blocks of TB tiles, one block per thread at a time:
 * the P transformed inputs of the block (V; P = 36 points for 2-D, 6 for 1-D), P single-threaded GEMMs
 * M[xi] = U[xi] V[xi], the output transform. Weight gradient: steps of WG_TILES tiles, whose V and
 * D = A dY A^T all threads build, then one thread per point accumulates dU[xi] += D[xi] V[xi]^T; at the
 * end dw += G^T dU G. The transforms run on 8 tiles at once (GCC vector extension; AVX2 builds chosen at
 * run time, like the GEMM's kernels). A dilated convolution is an undilated one on each sub-grid of
 * pixels d apart, so its tiles are sub-grid tiles. */
#include "ops/winograd.h"

#include "ops/gemm.h"

#include <omp.h>
#include <string.h>

typedef float v8 __attribute__((vector_size(32)));
/* Unaligned vector access (one vmovups; memcpy into a vector was split into 16-byte halves via the stack). */
typedef float v8u __attribute__((vector_size(32), aligned(4), may_alias));
#define LD8(p) (*(const v8u *)(const void *)(p))
#define ST8(p, v) (*(v8u *)(void *)(p) = (v))
/* Tiles per block, the GEMMs' N: 128 measured best on Zen 3 (512 KiB L2 per core) for 32-256 channels,
 * against 64 and 256 (fewer passes over U per tile, while V and M of a block stay in L2/L3). */
enum { LANES = 8, TB_MAX = 128, PB = 256 /* pixels per transpose task */ };

#define FL_INLINE static inline __attribute__((always_inline))

/* V and M of a block are [channel][point][tile]: the P points of a channel and tile group, which one
 * transform writes or reads, lie within P*TB floats. As the GEMMs' B and C (Cin or Cout rows of TB
 * tiles), rows are this many floats apart: padded by a cache line, or the rows of a GEMM operand would
 * fall into a few L1 sets. */
static int64_t channel_stride(int P, int64_t tb) { return P * tb + 16; }

/* Floats of scratch the per-block output offsets take (int64 [16][TB_MAX], after V and M). */
static size_t table_floats(void) { return (size_t)TB_MAX * 16 * 2; }

/* Transform points: 6x6 per 2-D tile, 6 per 1-D tile. */
static int points(const fl_wino_geom *g) { return g->one_d ? 6 : 36; }

size_t fl_wino_weight_floats(const fl_wino_geom *g) { return (size_t)(points(g) * g->Cout * g->Cin); }

/* Scratch of one thread: V and M for TB_MAX tiles, then the output offsets. */
static size_t vm_floats(const fl_wino_geom *g)
{
    return (size_t)((g->Cin + g->Cout) * channel_stride(points(g), TB_MAX));
}

/* The input is read pixel-major: a chunk of planes is first transposed to xt[pixel][channel] (channels
 * padded to a multiple of 8, then one row of zeros that padding points read), so the input transform
 * loads 8 channels of a point with one vector load instead of 8 scalar gathers. Chunks hold about
 * XT_BUDGET floats (at least one plane), which bounds the extra memory for large batches. */
enum { XT_BUDGET = 1 << 21 };
static int64_t padded_channels(int64_t C) { return (C + LANES - 1) / LANES * LANES; }
/* The kernels below run in AVX2+FMA when the CPU has them, else as plain C of the same code. */
static int has_avx2_fma(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
/* Planes per chunk when a plane takes per_plane floats of transposed data. */
static int64_t planes_per_chunk(const fl_wino_geom *g, int64_t per_plane)
{
    const int64_t c = XT_BUDGET / (per_plane > 0 ? per_plane : 1);
    return c < 1 ? 1 : c < g->N ? c : g->N;
}
static int64_t chunk_planes(const fl_wino_geom *g) { return planes_per_chunk(g, g->H * g->W * padded_channels(g->Cin)); }
static size_t xt_floats(const fl_wino_geom *g)
{
    return (size_t)((chunk_planes(g) * g->H * g->W + 1) * padded_channels(g->Cin));
}

size_t fl_wino_work_floats(int threads, const fl_wino_geom *g)
{
    return xt_floats(g) + (size_t)(threads < 1 ? 1 : threads) * (vm_floats(g) + table_floats());
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

/* U of 8 kernel pairs p0 .. p0 + 7 (those below pairs), one lane each: the 36 (one_d: 6) values of a pair
 * lie pairs floats apart, so 8 pairs are one vector store per value. In float (G's entries rounded to
 * float: U differs from the exact transform by an ulp or two, well inside the transform's own rounding). */
FL_INLINE void weights8_impl(const float *w, const fl_wino_geom *geo, int flip, float *U, int64_t p0)
{
    const int64_t Cout = geo->Cout, Cin = geo->Cin, pairs = Cout * Cin;
    const int kk = geo->one_d ? 3 : 9, n = pairs - p0 < LANES ? (int)(pairs - p0) : LANES;
    float gb[9][LANES] = {{0}};
    for (int l = 0; l < n; l++) {
        const int64_t p = p0 + l, co = p / Cin, ci = p % Cin;
        for (int q = 0; q < kk; q++) gb[q][l] = flip ? w[(ci * Cout + co) * kk + kk - 1 - q] : w[p * kk + q];
    }
    v8 g[9], t[6][3], u[36];
    for (int q = 0; q < kk; q++) g[q] = LD8(gb[q]);
    if (geo->one_d) {
        for (int j = 0; j < 6; j++) u[j] = (float)WG[j][0] * g[0] + (float)WG[j][1] * g[1] + (float)WG[j][2] * g[2];
    } else {
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 3; j++)
                t[i][j] = (float)WG[i][0] * g[j] + (float)WG[i][1] * g[3 + j] + (float)WG[i][2] * g[6 + j];
        for (int i = 0; i < 6; i++)
            for (int j = 0; j < 6; j++)
                u[i * 6 + j] = t[i][0] * (float)WG[j][0] + t[i][1] * (float)WG[j][1] + t[i][2] * (float)WG[j][2];
    }
    const int P = geo->one_d ? 6 : 36;
    if (n == LANES) {
        for (int k = 0; k < P; k++) ST8(U + k * pairs + p0, u[k]);
    } else {
        for (int k = 0; k < P; k++) {
            float o[LANES];
            memcpy(o, &u[k], sizeof o);
            for (int l = 0; l < n; l++) U[k * pairs + p0 + l] = o[l];
        }
    }
}

typedef void (*weights8_fn)(const float *, const fl_wino_geom *, int, float *, int64_t);
__attribute__((target("avx2,fma"))) static void weights8_avx2(const float *w, const fl_wino_geom *geo, int flip,
                                                              float *U, int64_t p0)
{
    weights8_impl(w, geo, flip, U, p0);
}
static void weights8_generic(const float *w, const fl_wino_geom *geo, int flip, float *U, int64_t p0)
{
    weights8_impl(w, geo, flip, U, p0);
}

void fl_wino_weights(int threads, const float *w, const fl_wino_geom *geo, int flip, float *U)
{
    const int64_t pairs = geo->Cout * geo->Cin;
    const int avx2 = has_avx2_fma();
    const weights8_fn weights8 = avx2 ? weights8_avx2 : weights8_generic;
#pragma omp parallel for num_threads(threads) if (pairs >= 4096) schedule(static)
    for (int64_t p0 = 0; p0 < pairs; p0 += LANES) weights8(w, geo, flip, U, p0);
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

/* r[i rs] = (A e)_i: the adjoint of at6, four vectors e[j es] to six (the weight gradient's transform of
 * an output-gradient tile). */
FL_INLINE void a6(const v8 *e, int es, v8 *r, int rs)
{
    const v8 s02 = e[0] + e[2 * es], s13 = e[es] + e[3 * es], q02 = e[0] + 4.f * e[2 * es],
             q13 = 2.f * e[es] + 8.f * e[3 * es];
    r[0] = e[0];
    r[rs] = s02 + s13;
    r[2 * rs] = s02 - s13;
    r[3 * rs] = q02 + q13;
    r[4 * rs] = q02 - q13;
    r[5 * rs] = e[3 * es];
}

typedef struct wino_layer {
    const float *U, *x;
    float *y;
    int64_t Cout, Cin, N, H, W, Ho, Wo;
    int64_t tH, tW, T, TB; /* tiles per residue class and plane: tH x tW; all tiles T; tiles per block TB */
    int a, b;              /* padding in dilations (rows, columns) */
    int dh, dw;
    float beta;
    const float *xt;     /* the current chunk of planes, pixel-major (see XT_BUDGET) */
    int64_t n0, nch;     /* the chunk's first plane and plane count */
    int64_t ty0;         /* tile rows [ty0, ty0 + tH) (fl_wino_conv_rows; else 0) */
    int64_t ylo, rows_in; /* xt holds input rows [ylo, ylo + rows_in) of each plane (else 0, H) */
} wino_layer;

/* Transposes 8 vectors in place: r[i][j] becomes r[j][i]. */
FL_INLINE void tr8(v8 *r)
{
    v8 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4)
        for (int j = 0; j < 2; j++) {
            u[i + 2 * j] = __builtin_shufflevector(t[i + j], t[i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            u[i + 2 * j + 1] = __builtin_shufflevector(t[i + j], t[i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    for (int i = 0; i < 4; i++) {
        r[i] = __builtin_shufflevector(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[i + 4] = __builtin_shufflevector(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/* xt[p][c] = channel c of pixel p (p < P) of x, whose channel planes lie NHW floats apart, zero for the
 * channels from C to the next multiple of 8; then one row of zeros. Runs inside a parallel region (an omp
 * for with its barrier). */
FL_INLINE void transpose_chunk_impl(const float *x, int64_t C, int64_t NHW, int64_t P, float *xt)
{
    const int64_t Cp = padded_channels(C);
    const int64_t pblocks = (P + PB - 1) / PB, cgroups = Cp / LANES;
#pragma omp single nowait
    memset(xt + P * Cp, 0, (size_t)Cp * sizeof(float));
    /* a task is PB pixels of 8 channels: 8 sequential read streams (the channel planes lie N*H*W floats
     * apart, often a multiple of 4 KiB: reading many channels of one pixel group at once thrashed L1/L2) */
#pragma omp for schedule(static)
    for (int64_t q = 0; q < pblocks * cgroups; q++) {
        const int64_t c0 = q / pblocks * LANES, pb = q % pblocks * PB, pe = pb + PB < P ? pb + PB : P;
        int64_t p0 = pb;
        if (c0 + LANES <= C)
            for (; p0 + LANES <= pe; p0 += LANES) {
                v8 r[8];
                for (int i = 0; i < 8; i++) r[i] = LD8(x + (c0 + i) * NHW + p0);
                tr8(r);
                for (int j = 0; j < 8; j++) ST8(xt + (p0 + j) * Cp + c0, r[j]);
            }
        for (int64_t p = p0; p < pe; p++)
            for (int64_t c = c0; c < c0 + LANES; c++) xt[p * Cp + c] = c < C ? x[c * NHW + p] : 0.f;
    }
}

/* The layer's tiling from its geometry: output size, dilation, padding in dilations, tiles per residue
 * class and plane (the largest class has ceil(Ho / d) output rows). */
static wino_layer layer_of(const fl_wino_geom *geo, const float *x, float *work)
{
    const int one_d = geo->one_d;
    wino_layer L = {0};
    L.x = x;
    L.xt = work;
    L.Cout = geo->Cout, L.Cin = geo->Cin, L.N = geo->N, L.H = geo->H, L.W = geo->W;
    L.dh = one_d ? 1 : geo->dh;
    L.dw = geo->dw;
    L.a = one_d ? 0 : geo->ph / geo->dh;
    L.b = geo->pw / geo->dw;
    L.Ho = one_d ? geo->H : geo->H + 2 * geo->ph - 2 * geo->dh;
    L.Wo = geo->W + 2 * geo->pw - 2 * geo->dw;
    const int64_t rows = (L.Ho + L.dh - 1) / L.dh, cols = (L.Wo + L.dw - 1) / L.dw;
    L.tH = one_d ? rows : (rows + 3) / 4;
    L.tW = (cols + 3) / 4;
    L.rows_in = L.H;
    return L;
}

/* Tile t: its plane n and the origin of its output tile (oy, ox) in image pixels. */
FL_INLINE void tile_origin(const wino_layer *L, int64_t t, int TH, int64_t *n, int64_t *oy, int64_t *ox)
{
    const int64_t tx = t % L->tW;
    t /= L->tW;
    const int64_t ty = t % L->tH;
    t /= L->tH;
    const int64_t rx = t % L->dw;
    t /= L->dw;
    const int64_t ry = t % L->dh;
    *n = t / L->dh;
    *oy = ry + L->dh * (TH * (ty + L->ty0));
    *ox = rx + L->dw * (4 * tx);
}

/* Row of xt (the chunk's pixel-major input) that input point (i, j) of the tile at (n, oy, ox) reads: the
 * zero row outside the image or when !valid. */
FL_INLINE int64_t input_row(const wino_layer *L, int valid, int64_t n, int64_t oy, int64_t ox, int i, int j)
{
    const int64_t yy = oy + L->dh * (i - L->a), xx = ox + L->dw * (j - L->b);
    const int ok = valid && yy >= L->ylo && yy < L->ylo + L->rows_in && xx >= 0 && xx < L->W;
    return ok ? ((n - L->n0) * L->rows_in + yy - L->ylo) * L->W + xx : L->nch * L->rows_in * L->W;
}

/* d[c][k] = channel c0 + c of point k of 8 tiles (rows[k][l]: the pixel-major row of point k of tile l in
 * src, whose rows hold Cp floats): per point, 8 vector loads and a transpose. */
FL_INLINE void gather_points(const float *src, int64_t Cp, int64_t c0, const int64_t rows[][LANES], int npoints,
                             v8 d[LANES][36])
{
    for (int k = 0; k < npoints; k++) {
        v8 r[LANES];
        for (int l = 0; l < LANES; l++) r[l] = LD8(src + rows[k][l] * Cp + c0);
        tr8(r);
        for (int c = 0; c < LANES; c++) d[c][k] = r[c];
    }
}

/* The input transform of 8 tiles (xt rows rows[k][l] of point k, tile l) for every channel:
 * V[c * vs + k * ts] (8 floats, one per tile). 8 channels of a point of 8 tiles are 8 vector loads and a
 * transpose. */
FL_INLINE void input_transform(const float *xt, int64_t Cin, const int64_t rows[36][LANES], float *V, int64_t vs,
                               int64_t ts, int one_d)
{
    const int P = one_d ? 6 : 36;
    const int64_t Cp = padded_channels(Cin);
    for (int64_t c0 = 0; c0 < Cin; c0 += LANES) {
        v8 d[LANES][36];
        gather_points(xt, Cp, c0, rows, P, d);
        const int nc = Cin - c0 < LANES ? (int)(Cin - c0) : LANES;
        for (int c = 0; c < nc; c++) {
            v8 v[36];
            if (one_d) {
                bt6(d[c], 1, v, 1);
            } else {
                v8 t[36];
                for (int j = 0; j < 6; j++) bt6(d[c] + j, 6, t + j, 6); /* columns */
                for (int i = 0; i < 6; i++) bt6(t + 6 * i, 1, v + 6 * i, 1); /* rows */
            }
            for (int k = 0; k < P; k++) ST8(V + (c0 + c) * vs + k * ts, v[k]);
        }
    }
}

/* xt rows of the input points of tiles t0 .. t0 + 7 (the zero row for tiles from t_end on). */
FL_INLINE void group_input_rows(const wino_layer *L, int64_t t0, int64_t t_end, int one_d, int64_t rows[36][LANES])
{
    for (int l = 0; l < LANES; l++) {
        int64_t n, oy, ox;
        tile_origin(L, t0 + l, one_d ? 1 : 4, &n, &oy, &ox);
        for (int i = 0; i < (one_d ? 1 : 6); i++)
            for (int j = 0; j < 6; j++) rows[i * 6 + j][l] = input_row(L, t0 + l < t_end, n, oy, ox, i, j);
    }
}

/* A block's TB tiles: V[c][xi][t] = B^T d B, M[xi] = U[xi] V[xi] (P GEMMs), y = A^T M A. scatter ([16][TB])
 * holds the offset of output k of each tile from the start of an output channel, -1 outside the output. */
FL_INLINE void block_impl(const wino_layer *L, int64_t t0, float *V, float *M, int64_t *scatter, const int one_d)
{
    const int P = one_d ? 6 : 36, TH = one_d ? 1 : 4; /* points, tile height */
    const int64_t tb = L->T - t0 < L->TB ? L->T - t0 : L->TB, groups = (tb + LANES - 1) / LANES, TB = L->TB;
    const int64_t N = L->N, vs = channel_stride(P, TB), HWo = L->Ho * L->Wo;
    for (int64_t l = 0; l < groups * LANES; l++) {
        int64_t n, oy, ox;
        tile_origin(L, t0 + l, TH, &n, &oy, &ox);
        for (int i = 0; i < TH; i++)
            for (int j = 0; j < 4; j++) {
                const int64_t yy = oy + i * L->dh, xx = ox + j * L->dw;
                scatter[(i * 4 + j) * TB + l] = l < tb && yy < L->Ho && xx < L->Wo ? n * HWo + yy * L->Wo + xx : -1;
            }
    }
    for (int64_t g = 0; g < groups; g++) {
        int64_t rows[36][LANES];
        group_input_rows(L, t0 + g * LANES, t0 + tb, one_d, rows);
        input_transform(L->xt, L->Cin, rows, V + g * LANES, vs, TB, one_d);
    }
    /* the products M[xi] = U[xi] V[xi] */
    const int64_t ncols = groups * LANES;
    for (int k = 0; k < P; k++)
        fl_gemm(0, 0, L->Cout, ncols, L->Cin, 1.f, L->U + k * L->Cout * L->Cin, L->Cin, V + k * TB, vs, 0.f, M + k * TB,
                vs);
    /* output transform */
    for (int64_t co = 0; co < L->Cout; co++) {
        float *yc = L->y + co * N * HWo;
        for (int64_t g = 0; g < groups; g++) {
            v8 m[36], r[16];
            for (int k = 0; k < P; k++) m[k] = LD8(M + co * vs + k * TB + g * LANES);
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
                const int64_t *off = scatter + k * TB + g * LANES;
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

__attribute__((target("avx2,fma"))) static void transpose_chunk_avx2(const float *x, int64_t C, int64_t NHW, int64_t P,
                                                                     float *xt)
{
    transpose_chunk_impl(x, C, NHW, P, xt);
}

static void transpose_chunk_generic(const float *x, int64_t C, int64_t NHW, int64_t P, float *xt)
{
    transpose_chunk_impl(x, C, NHW, P, xt);
}

typedef void (*transpose_fn)(const float *, int64_t, int64_t, int64_t, float *);

typedef void (*block_fn)(const wino_layer *, int64_t, float *, float *, int64_t *);
#define BLOCK(name, attr, one_d)                                                                                  \
    attr static void name(const wino_layer *L, int64_t t0, float *V, float *M, int64_t *scatter)                  \
    {                                                                                                             \
        block_impl(L, t0, V, M, scatter, one_d);                                                                  \
    }
BLOCK(block_avx2_2d, __attribute__((target("avx2,fma"))), 0)
BLOCK(block_avx2_1d, __attribute__((target("avx2,fma"))), 1)
BLOCK(block_generic_2d, , 0)
BLOCK(block_generic_1d, , 1)

/* Tiles [t_begin, t_end) of L's chunk (its planes' input rows [ylo, ylo + rows_in) transposed first). */
static void conv_tiles(int threads, const wino_layer *L, const fl_wino_geom *geo, int64_t t_begin, int64_t t_end,
                       float *work)
{
    const int one_d = geo->one_d, P = points(geo);
    const int64_t Cin = geo->Cin, HW = geo->H * geo->W;
    const int avx2 = has_avx2_fma();
    const block_fn block = avx2 ? (one_d ? block_avx2_1d : block_avx2_2d) : (one_d ? block_generic_1d : block_generic_2d);
    const transpose_fn transpose = avx2 ? transpose_chunk_avx2 : transpose_chunk_generic;
    float *xt = work, *scratch = work + xt_floats(geo);
    const size_t vm = vm_floats(geo), per_thread = vm + table_floats();
    const int64_t nblocks = (t_end - t_begin + L->TB - 1) / L->TB;
    const int nthr = nblocks < threads ? (int)nblocks : threads;
    const float *src = L->x + L->n0 * HW + L->ylo * geo->W;
    const int64_t npix = L->nch * L->rows_in * geo->W; /* a part of the rows only with one plane */
    wino_layer Lc = *L;
    Lc.xt = xt;
    Lc.T = t_end;
#pragma omp parallel num_threads(nthr)
    {
        transpose(src, Cin, geo->N * HW, npix, xt);
        float *V = scratch + (size_t)omp_get_thread_num() * per_thread, *M = V + Cin * channel_stride(P, Lc.TB);
        /* the output offsets after V and M (vm is even, so they stay 8-byte aligned) */
        int64_t *scatter = (int64_t *)(void *)(V + vm);
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nblocks; b++) block(&Lc, t_begin + b * Lc.TB, V, M, scatter);
    }
}

/* Tiles per block: enough blocks for every thread, at most TB_MAX. */
static int64_t tiles_per_block(int threads, int64_t T)
{
    int64_t tb = (T + threads - 1) / threads;
    tb = (tb + LANES - 1) / LANES * LANES;
    return tb < TB_MAX ? tb : TB_MAX;
}

void fl_wino_conv(int threads, const float *U, const fl_wino_geom *geo, const float *x, float beta, float *y,
                  float *work)
{
    if (threads < 1) threads = 1;
    wino_layer L = layer_of(geo, x, work);
    L.U = U;
    L.y = y;
    L.beta = beta;
    const int64_t plane_tiles = L.dh * L.dw * L.tH * L.tW, cp = chunk_planes(geo);
    L.TB = tiles_per_block(threads, geo->N * plane_tiles);
    for (L.n0 = 0; L.n0 < geo->N; L.n0 += cp) {
        L.nch = geo->N - L.n0 < cp ? geo->N - L.n0 : cp;
        /* the chunk's blocks: tiles [t_begin, t_end), never straddling two chunks */
        conv_tiles(threads, &L, geo, L.n0 * plane_tiles, (L.n0 + L.nch) * plane_tiles, work);
    }
}

int64_t fl_wino_row_block(const fl_wino_geom *g) { return g->one_d ? 1 : 4 * (int64_t)g->dh; }

void fl_wino_conv_rows(int threads, const float *U, const fl_wino_geom *geo, const float *x, float *y, float *work,
                       int64_t oy0, int64_t oy1, int64_t *done0, int64_t *done1)
{
    if (threads < 1) threads = 1;
    const int one_d = geo->one_d, TH = one_d ? 1 : 4;
    wino_layer L = layer_of(geo, x, work);
    const int64_t A = fl_wino_row_block(geo);
    oy0 = oy0 < 0 ? 0 : oy0;
    oy1 = oy1 > L.Ho ? L.Ho : oy1;
    *done0 = *done1 = oy0;
    if (geo->N != 1 || oy0 >= oy1) return;
    /* tile row ty of every residue class covers output rows [A ty, A ty + A) together */
    const int64_t ty0 = oy0 / A, ty1 = (oy1 + A - 1) / A < L.tH ? (oy1 + A - 1) / A : L.tH;
    L.U = U;
    L.y = y;
    L.beta = 0.f;
    L.ty0 = ty0;
    L.tH = ty1 - ty0;
    L.nch = 1;
    /* input rows those tiles read */
    int64_t ylo = L.dh * (TH * ty0 - L.a), yhi = (L.dh - 1) + L.dh * (TH * (ty1 - 1) + (one_d ? 0 : 5) - L.a);
    ylo = ylo < 0 ? 0 : ylo;
    yhi = yhi > L.H - 1 ? L.H - 1 : yhi;
    L.ylo = ylo <= yhi ? ylo : 0;
    L.rows_in = ylo <= yhi ? yhi - ylo + 1 : 0;
    const int64_t T = L.dh * L.dw * L.tH * L.tW;
    L.TB = tiles_per_block(threads, T);
    conv_tiles(threads, &L, geo, 0, T, work);
    *done0 = A * ty0;
    *done1 = A * ty1 < L.Ho ? A * ty1 : L.Ho;
}

/* ---- weight gradient: dU[xi] = sum over tiles of (A dY A^T)[xi] (x) (B^T d B)[xi], dw += G^T dU G ---- */

/* Tiles per step of the weight gradient (the GEMMs' K): fixed, so the summation order does not depend on
 * the thread count. */
enum { WG_TILES = 256 };

/* Planes per chunk of the weight gradient: both x and dy of the chunk are transposed. */
static int64_t wgrad_chunk_planes(const fl_wino_geom *g, int64_t Ho, int64_t Wo)
{
    const int64_t a = g->H * g->W * padded_channels(g->Cin), b = Ho * Wo * padded_channels(g->Cout);
    return planes_per_chunk(g, a > b ? a : b);
}

size_t fl_wino_weight_grad_work_floats(const fl_wino_geom *g)
{
    const wino_layer L = layer_of(g, NULL, NULL);
    const int64_t Ho = L.Ho, Wo = L.Wo, cp = wgrad_chunk_planes(g, Ho, Wo);
    const int P = points(g);
    return (size_t)((cp * g->H * g->W + 1) * padded_channels(g->Cin) + (cp * Ho * Wo + 1) * padded_channels(g->Cout) +
                    (g->Cin + g->Cout) * channel_stride(P, WG_TILES) + (int64_t)P * g->Cout * g->Cin);
}

/* One group of 8 tiles (t0 .. t0 + 7, those before t_end): V[c][xi][col..col+7] = B^T d B of x and
 * D[co][xi][col..] = A dY A^T of dy, zero for the tiles past t_end. */
FL_INLINE void wgrad_group_impl(const wino_layer *L, const float *dyt, int64_t t0, int64_t t_end, float *V, float *D,
                                int64_t col, int one_d)
{
    const int P = one_d ? 6 : 36, TH = one_d ? 1 : 4;
    const int64_t vs = channel_stride(P, WG_TILES), HWo = L->Ho * L->Wo, Cop = padded_channels(L->Cout);
    int64_t rows[36][LANES], orows[16][LANES];
    group_input_rows(L, t0, t_end, one_d, rows);
    for (int l = 0; l < LANES; l++) {
        int64_t n, oy, ox;
        const int valid = t0 + l < t_end;
        tile_origin(L, t0 + l, TH, &n, &oy, &ox);
        for (int i = 0; i < TH; i++)
            for (int j = 0; j < 4; j++) {
                const int64_t yy = oy + i * L->dh, xx = ox + j * L->dw;
                orows[i * 4 + j][l] = valid && yy < L->Ho && xx < L->Wo ? (n - L->n0) * HWo + yy * L->Wo + xx : L->nch * HWo;
            }
    }
    input_transform(L->xt, L->Cin, rows, V + col, vs, WG_TILES, one_d);
    for (int64_t c0 = 0; c0 < L->Cout; c0 += LANES) {
        v8 e[LANES][36];
        gather_points(dyt, Cop, c0, orows, 4 * TH, e);
        const int nc = L->Cout - c0 < LANES ? (int)(L->Cout - c0) : LANES;
        for (int c = 0; c < nc; c++) {
            v8 m[36];
            if (one_d) {
                a6(e[c], 1, m, 1);
            } else {
                v8 t[24];
                for (int j = 0; j < 4; j++) a6(e[c] + j, 4, t + j, 4); /* columns: 4x4 -> 6x4 */
                for (int i = 0; i < 6; i++) a6(t + 4 * i, 1, m + 6 * i, 1); /* rows: 6x4 -> 6x6 */
            }
            for (int k = 0; k < P; k++) ST8(D + (c0 + c) * vs + k * WG_TILES + col, m[k]);
        }
    }
}

typedef void (*wgrad_group_fn)(const wino_layer *, const float *, int64_t, int64_t, float *, float *, int64_t);
#define WGRAD_GROUP(name, attr, one_d)                                                                            \
    attr static void name(const wino_layer *L, const float *dyt, int64_t t0, int64_t t_end, float *V, float *D,   \
                          int64_t col)                                                                            \
    {                                                                                                             \
        wgrad_group_impl(L, dyt, t0, t_end, V, D, col, one_d);                                                    \
    }
WGRAD_GROUP(wgrad_group_avx2_2d, __attribute__((target("avx2,fma"))), 0)
WGRAD_GROUP(wgrad_group_avx2_1d, __attribute__((target("avx2,fma"))), 1)
WGRAD_GROUP(wgrad_group_generic_2d, , 0)
WGRAD_GROUP(wgrad_group_generic_1d, , 1)

/* dw[co][ci] += G^T dU[co][ci] G (one_d: G^T dU), in double. */
static void wgrad_finish(int threads, const fl_wino_geom *geo, const float *dU, float *dw)
{
    const int64_t pairs = geo->Cout * geo->Cin;
#pragma omp parallel for num_threads(threads) if (pairs >= 512) schedule(static)
    for (int64_t p = 0; p < pairs; p++) {
        if (geo->one_d) {
            for (int b = 0; b < 3; b++) {
                double s = 0;
                for (int j = 0; j < 6; j++) s += WG[j][b] * dU[j * pairs + p];
                dw[p * 3 + b] += (float)s;
            }
            continue;
        }
        double t[3][6]; /* G^T dU */
        for (int a = 0; a < 3; a++)
            for (int j = 0; j < 6; j++) {
                double s = 0;
                for (int i = 0; i < 6; i++) s += WG[i][a] * dU[(i * 6 + j) * pairs + p];
                t[a][j] = s;
            }
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                double s = 0;
                for (int j = 0; j < 6; j++) s += t[a][j] * WG[j][b];
                dw[p * 9 + a * 3 + b] += (float)s;
            }
    }
}

void fl_wino_weight_grad(int threads, const fl_wino_geom *geo, const float *x, const float *dy, float *dw, float *work)
{
    if (threads < 1) threads = 1;
    const int one_d = geo->one_d, P = points(geo);
    wino_layer L = layer_of(geo, x, work);
    const int64_t Cout = geo->Cout, Cin = geo->Cin, Ho = L.Ho, Wo = L.Wo;
    const int64_t plane_tiles = L.dh * L.dw * L.tH * L.tW, cp = wgrad_chunk_planes(geo, Ho, Wo);
    const int64_t vs = channel_stride(P, WG_TILES);
    float *xt = work, *dyt = xt + (cp * geo->H * geo->W + 1) * padded_channels(Cin);
    float *V = dyt + (cp * Ho * Wo + 1) * padded_channels(Cout), *D = V + Cin * vs, *dU = D + Cout * vs;
    const int avx2 = has_avx2_fma();
    const wgrad_group_fn group = avx2 ? (one_d ? wgrad_group_avx2_1d : wgrad_group_avx2_2d)
                                      : (one_d ? wgrad_group_generic_1d : wgrad_group_generic_2d);
    const transpose_fn transpose = avx2 ? transpose_chunk_avx2 : transpose_chunk_generic;
    for (L.n0 = 0; L.n0 < geo->N; L.n0 += cp) {
        L.nch = geo->N - L.n0 < cp ? geo->N - L.n0 : cp;
        const int64_t t_begin = L.n0 * plane_tiles, t_end = (L.n0 + L.nch) * plane_tiles;
        const wino_layer Lc = L;
#pragma omp parallel num_threads(threads)
        {
            if (Lc.n0 == 0) {
#pragma omp for schedule(static)
                for (int k = 0; k < P; k++) memset(dU + (int64_t)k * Cout * Cin, 0, (size_t)(Cout * Cin) * sizeof(float));
            }
            transpose(x + Lc.n0 * geo->H * geo->W, Cin, geo->N * geo->H * geo->W, Lc.nch * geo->H * geo->W, xt);
            transpose(dy + Lc.n0 * Ho * Wo, Cout, geo->N * Ho * Wo, Lc.nch * Ho * Wo, dyt);
            for (int64_t s0 = t_begin; s0 < t_end; s0 += WG_TILES) {
                const int64_t s1 = s0 + WG_TILES < t_end ? s0 + WG_TILES : t_end, groups = (s1 - s0 + LANES - 1) / LANES;
#pragma omp for schedule(static)
                for (int64_t gi = 0; gi < groups; gi++) group(&Lc, dyt, s0 + gi * LANES, s1, V, D, gi * LANES);
                /* dU[xi] += D[xi] V[xi]^T: each point's sum by one thread, tiles in order */
#pragma omp for schedule(static)
                for (int k = 0; k < P; k++)
                    fl_gemm(0, 1, Cout, Cin, groups * LANES, 1.f, D + k * WG_TILES, vs, V + k * WG_TILES, vs, 1.f,
                            dU + (int64_t)k * Cout * Cin, Cin);
            }
        }
    }
    wgrad_finish(threads, geo, dU, dw);
}
