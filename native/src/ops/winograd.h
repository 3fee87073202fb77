/* 3x3 and 1x3 convolutions (stride 1, any dilation) by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray,
 * "Fast Algorithms for Convolutional Neural Networks", 2016): each 4x4 output tile is computed from a 6x6
 * input tile as A^T [ (G g G^T) . (B^T d B) ] A, so a layer is 36 GEMMs of (Cout x Cin) x (Cin x tiles)
 * with 4x fewer multiplications than im2col + GEMM. The kernel's gradient is the adjoint: dU = sum over
 * tiles of (A dY A^T) . (B^T d B), 36 GEMMs of (Cout x tiles) x (tiles x Cin), then dw = G^T dU G.
 * Rounding differs from the direct sum by a few ulp of the terms' magnitude (tested against double-precision
 * direct sums).
 *
 * Activations are (C, N, H, W) as in nn/graph: channel c of plane n at x + (c*N + n)*H*W. Each output tile
 * is computed the same way whatever the thread count and tile blocking, so results are bit-identical for
 * any number of threads. */
#ifndef FL_WINOGRAD_H
#define FL_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>

/* One convolution: input (Cin, N, H, W), kernel 3x3 (or 1x3 along W when one_d: rows are independent, as
 * a 1-D convolution), stride 1, dilation dh/dw, zero padding ph/pw a multiple (0, 1 or 2) of the dilation.
 * Output (Cout, N, Ho, Wo) with Ho = H + 2ph - 2dh (one_d: H), Wo = W + 2pw - 2dw, both >= 1. */
typedef struct fl_wino_geom {
    int64_t Cout, Cin, N, H, W;
    int one_d;
    int ph, pw, dh, dw;
} fl_wino_geom;

/* Does this convolution (kernel kh x kw, stride, padding, dilation) fit fl_wino_geom? */
int fl_wino_supported(int kh, int kw, int stride, int ph, int pw, int dh, int dw);

/* Floats of the transformed kernel U: 36 (one_d: 6) * Cout * Cin. */
size_t fl_wino_weight_floats(const fl_wino_geom *g);

/* U[36][Cout][Cin] = G k G^T of every kernel k of w[Cout][Cin][3][3] (one_d: U[6][Cout][Cin] = G k of
 * w[Cout][Cin][3]; PyTorch layouts). With flip, the kernel of a convolution's input gradient: w is read
 * as w[Cin][Cout][..] (the forward layer's Cout x Cin) and each kernel rotated by 180 degrees, giving U for
 * Cout x Cin of the gradient pass. */
void fl_wino_weights(int threads, const float *w, const fl_wino_geom *g, int flip, float *U);

/* Scratch floats fl_wino_conv needs for `threads` threads. */
size_t fl_wino_work_floats(int threads, const fl_wino_geom *g);

/* y = conv(x) + beta * y with beta 0 (overwrite, NaN in y is not propagated) or 1 (accumulate). Must not
 * be called inside an OpenMP parallel region. */
void fl_wino_conv(int threads, const float *U, const fl_wino_geom *g, const float *x, float beta, float *y,
                  float *work);

/* Rows of output computed together: a tile row of every residue class of the dilation (4 dh; one_d: 1). */
int64_t fl_wino_row_block(const fl_wino_geom *g);

/* Output rows of one plane (N == 1) only: the tile rows that cover rows [oy0, oy1), i.e. rows
 * [*done0, *done1) = [oy0 rounded down, oy1 rounded up to a multiple of fl_wino_row_block) within Ho,
 * written as fl_wino_conv (beta 0) writes them: bit for bit the same values, as each tile is computed the
 * same way. Scratch as fl_wino_conv. */
void fl_wino_conv_rows(int threads, const float *U, const fl_wino_geom *g, const float *x, float *y, float *work,
                       int64_t oy0, int64_t oy1, int64_t *done0, int64_t *done1);

/* dw += the gradient of the kernel of y = conv(x) (geometry g) given dy, the gradient of y (Cout, N, Ho,
 * Wo); dw is w's layout. Tiles are summed in an order fixed by the geometry: bit-identical for any thread
 * count. work: fl_wino_weight_grad_work_floats(g) floats. Must not be called inside a parallel region. */
size_t fl_wino_weight_grad_work_floats(const fl_wino_geom *g);
void fl_wino_weight_grad(int threads, const fl_wino_geom *g, const float *x, const float *dy, float *dw, float *work);

#endif
