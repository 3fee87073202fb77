/* The layer graph of the convolutional families (native/src/nn/graph.c): every op's backward
 * against central finite differences (loss = sum(out .* R), R fixed random), a direct convolution
 * reference, a PyTorch golden file for forward semantics and state_dict names, and thread-count
 * independence. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fl_internal.h"
#include "io/safetensors.h"
#include "nn/graph.h"
#include "../shared/test_util.h"

static int64_t numel(fl_graph *g, fl_node x)
{
    int64_t C, H, W;
    fl_graph_shape(g, x, &C, &H, &W);
    return C * H * W * fl_graph_batch(g);
}

static double loss_of(fl_graph *g, fl_node y, const float *R)
{
    fl_graph_forward(g, 1);
    const float *d = fl_graph_data(g, y);
    double s = 0;
    for (int64_t i = 0; i < numel(g, y); i++) s += (double)d[i] * R[i];
    return s;
}

static void expect_grad(const char *what, int64_t i, double analytic, double numeric)
{
    double den = fmax(fmax(fabs(analytic), fabs(numeric)), 5e-2);
    cr_expect(fabs(analytic - numeric) / den < 3e-2, "%s[%lld]: analytic %.6g vs numeric %.6g", what, (long long)i,
              analytic, numeric);
}

/* d loss / d *v by central differences (v: a parameter or an input value of g; restored after) */
static double central_diff(fl_graph *g, fl_node y, const float *R, float *v, double eps)
{
    const float keep = *v;
    *v = keep + (float)eps;
    const double lp = loss_of(g, y, R);
    *v = keep - (float)eps;
    const double lm = loss_of(g, y, R);
    *v = keep;
    return (lp - lm) / (2 * eps);
}

typedef fl_node (*builder_fn)(fl_graph *g, fl_node x);

/* Builds input (C,H,W) -> build(), checks the gradients of up to 60 parameters and 30 inputs. */
static void gradcheck_eps(const char *name, builder_fn build, int64_t N, int64_t C, int64_t H, int64_t W, double eps)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, 2);
    fl_graph *g = fl_graph_new(ctx, N, 1);
    fl_node x = fl_g_input(g, C, H, W);
    fl_graph_want_input_grad(g, x);
    fl_node y = build(g, x);
    cr_assert(y >= 0, "%s: build failed: %s", name, fl_ctx_message(ctx));
    cr_assert_eq(fl_graph_finalize(g), FL_OK, "%s: %s", name, fl_ctx_message(ctx));
    fl_graph_init_params(g, 5, FL_INIT_TORCH);
    /* gamma/beta start at 1/0: perturb every parameter so no gradient is trivially symmetric */
    float *p = fl_graph_params(g);
    const int64_t np = fl_graph_param_count(g);
    float *noise = malloc((size_t)(np ? np : 1) * 4);
    fill_stream(noise, np, -0.3f, 0.3f, 9, 11);
    for (int64_t i = 0; i < np; i++) p[i] += noise[i];
    fill_stream(fl_graph_data(g, x), numel(g, x), -1, 1, 1, 11);
    const int64_t ny = numel(g, y);
    float *R = malloc((size_t)ny * 4);
    fill_stream(R, ny, -1, 1, 2, 11);
    loss_of(g, y, R);
    memcpy(fl_graph_grad(g, y), R, (size_t)ny * 4);
    fl_graph_zero_grads(g);
    fl_graph_backward(g, y);
    const float *dp = fl_graph_param_grads(g);
    float *dx = malloc((size_t)numel(g, x) * 4);
    memcpy(dx, fl_graph_grad(g, x), (size_t)numel(g, x) * 4);
    int64_t stride_p = np > 60 ? np / 60 : 1;
    for (int64_t i = 0; i < np; i += stride_p) expect_grad(name, i, dp[i], central_diff(g, y, R, &p[i], eps));
    float *xd = fl_graph_data(g, x);
    int64_t nx = numel(g, x), stride_x = nx > 30 ? nx / 30 : 1;
    for (int64_t i = 0; i < nx; i += stride_x) expect_grad(name, -i - 1, dx[i], central_diff(g, y, R, &xd[i], eps));
    free(noise);
    free(R);
    free(dx);
    fl_graph_free(g);
    fl_ctx_free(ctx);
}

static void gradcheck(const char *name, builder_fn build, int64_t N, int64_t C, int64_t H, int64_t W)
{
    gradcheck_eps(name, build, N, C, H, W, 1e-2);
}

static fl_node b_conv3(fl_graph *g, fl_node x) { return fl_g_conv2d(g, x, "c", 3, 3, 3, 1, 1, 1, 1, 1, 1); }
/* 32 channels in and out: the Winograd path (graph.c WINO_MIN_CHANNELS), forward and input gradient */
static fl_node b_conv3_winograd(fl_graph *g, fl_node x) { return fl_g_conv2d(g, x, "c", 32, 3, 3, 1, 1, 1, 1, 1, 1); }
static fl_node b_conv_dilated_winograd(fl_graph *g, fl_node x) { return fl_g_conv2d(g, x, "c", 32, 3, 3, 1, 2, 2, 2, 2, 1); }
static fl_node b_conv1d_winograd(fl_graph *g, fl_node x) { return fl_g_conv1d(g, x, "c", 32, 3, 1, 3, 3, 1); }
static fl_node b_conv_dil_stride(fl_graph *g, fl_node x) { return fl_g_conv2d(g, x, "c", 3, 3, 2, 2, 2, 1, 2, 1, 0); }
static fl_node b_conv1x1(fl_graph *g, fl_node x) { return fl_g_conv2d(g, x, "c", 4, 1, 1, 1, 0, 0, 1, 1, 1); }
static fl_node b_conv1d(fl_graph *g, fl_node x) { return fl_g_conv1d(g, x, "c", 3, 3, 1, 3, 3, 1); }
static fl_node b_bn_lrelu(fl_graph *g, fl_node x)
{
    return fl_g_leaky_relu(g, fl_g_batchnorm(g, fl_g_conv2d(g, x, "c", 3, 3, 3, 1, 1, 1, 1, 1, 1), "bn"), 0.1f);
}
static fl_node b_maxpool(fl_graph *g, fl_node x) { return fl_g_maxpool(g, fl_g_conv2d(g, x, "c", 2, 1, 1, 1, 0, 0, 1, 1, 1), 2); }
static fl_node b_nearest(fl_graph *g, fl_node x) { return fl_g_upsample_nearest(g, b_conv1x1(g, x), 2); }
static fl_node b_bilinear_ac(fl_graph *g, fl_node x) { return fl_g_upsample_bilinear(g, b_conv1x1(g, x), 9, 11, 1); }
static fl_node b_bilinear(fl_graph *g, fl_node x) { return fl_g_upsample_bilinear(g, b_conv1x1(g, x), 11, 8, 0); }
static fl_node b_layernorm(fl_graph *g, fl_node x) { return fl_g_layernorm_plane(g, b_conv1x1(g, x), "ln"); }
static fl_node b_linear_reshape(fl_graph *g, fl_node x)
{
    fl_node l = fl_g_linear(g, b_conv1x1(g, x), "fc", 12);
    return fl_g_conv2d(g, fl_g_reshape(g, l, 2, 2, 3), "c2", 2, 1, 1, 1, 0, 0, 1, 1, 1);
}
/* im2spec's dilated block: the sum of every intermediate tensor, and a concatenation */
static fl_node b_sum_concat(fl_graph *g, fl_node x)
{
    fl_node a = fl_g_conv2d(g, x, "a", 2, 3, 3, 1, 1, 1, 1, 1, 1);
    fl_node r = fl_g_leaky_relu(g, a, 0.1f);
    fl_node b = fl_g_batchnorm(g, r, "bn");
    fl_node c = fl_g_conv2d(g, b, "c", 2, 3, 3, 1, 2, 2, 2, 2, 1);
    fl_node s = fl_g_add(g, 4, (fl_node[]){a, r, b, c});
    return fl_g_concat(g, 2, (fl_node[]){s, c});
}

Test(graph, conv2d_gradients) { gradcheck("conv3x3", b_conv3, 2, 2, 5, 6); }
Test(graph, conv2d_winograd_gradients) { gradcheck("conv3x3 winograd", b_conv3_winograd, 2, 32, 6, 7); }
Test(graph, conv2d_dilated_winograd_gradients) { gradcheck("conv3x3 dil2 winograd", b_conv_dilated_winograd, 2, 32, 7, 9); }
Test(graph, conv1d_dilated_winograd_gradients) { gradcheck("conv1d dil3 winograd", b_conv1d_winograd, 2, 32, 1, 19); }
Test(graph, conv2d_dilated_strided_gradients) { gradcheck("conv dil2 stride2", b_conv_dil_stride, 2, 2, 7, 6); }
Test(graph, conv1x1_gradients) { gradcheck("conv1x1", b_conv1x1, 3, 2, 3, 4); }
Test(graph, conv1d_gradients) { gradcheck("conv1d", b_conv1d, 2, 2, 1, 9); }
/* rows wider than a GEMM panel (16 or 32 columns): the column packer copies runs instead of gathering */
Test(graph, conv2d_wide_rows_gradients) { gradcheck("conv3x3 wide", b_conv3, 2, 2, 3, 37); }
Test(graph, conv1d_wide_dilated_gradients) { gradcheck("conv1d wide", b_conv1d, 1, 2, 1, 41); }
/* small steps: batch norm amplifies them and the leaky ReLU has a kink */
Test(graph, batchnorm_leaky_relu_gradients) { gradcheck_eps("bn+lrelu", b_bn_lrelu, 3, 2, 4, 4, 1e-3); }
Test(graph, maxpool_gradients) { gradcheck("maxpool", b_maxpool, 2, 2, 5, 7); }
Test(graph, upsample_nearest_gradients) { gradcheck("nearest", b_nearest, 2, 2, 3, 4); }
Test(graph, bilinear_align_corners_gradients) { gradcheck("bilinear ac", b_bilinear_ac, 2, 1, 4, 5); }
Test(graph, bilinear_half_pixel_gradients) { gradcheck("bilinear", b_bilinear, 2, 1, 5, 3); }
Test(graph, layernorm_gradients) { gradcheck("layernorm", b_layernorm, 2, 2, 3, 4); }
Test(graph, linear_reshape_gradients) { gradcheck("linear+reshape", b_linear_reshape, 3, 2, 2, 3); }
Test(graph, sum_of_intermediates_and_concat_gradients) { gradcheck("sum+concat", b_sum_concat, 2, 1, 5, 5); }

/* Direct convolution (PyTorch semantics, zero padding) against the graph's convolution, for shapes
 * that take each path of the column packer: small planes (gather table), rows wider than a panel
 * (runs, crossing panel ends), stride 2 on wide rows, a dilated 1-D convolution; and Winograd layers. */
static void conv_vs_direct(int64_t N, int64_t Ci, int64_t H, int64_t W, int64_t Co, int kh, int kw, int s, int ph,
                           int pw, int dh, int dw)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, 2);
    fl_graph *g = fl_graph_new(ctx, N, 0);
    fl_node x = fl_g_input(g, Ci, H, W);
    fl_node y = fl_g_conv2d(g, x, "c", Co, kh, kw, s, ph, pw, dh, dw, 1);
    cr_assert_eq(fl_graph_finalize(g), FL_OK);
    fl_graph_init_params(g, 3, FL_INIT_TORCH);
    float *xd = fl_graph_data(g, x);
    fill_stream(xd, numel(g, x), -1, 1, 4, 11);
    fl_graph_forward(g, 0);
    int64_t C2, Ho, Wo;
    fl_graph_shape(g, y, &C2, &Ho, &Wo);
    cr_assert_eq(Ho, (H + 2 * ph - dh * (kh - 1) - 1) / s + 1);
    const float *w = fl_graph_params(g), *b = w + ((Co * Ci * kh * kw + 15) & ~15);
    double maxerr = 0;
    for (int64_t n = 0; n < N; n++)
        for (int64_t co = 0; co < Co; co++)
            for (int64_t oy = 0; oy < Ho; oy++)
                for (int64_t ox = 0; ox < Wo; ox++) {
                    double acc = b[co];
                    for (int64_t ci = 0; ci < Ci; ci++)
                        for (int64_t i = 0; i < kh; i++)
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t iy = oy * s - ph + i * dh, ix = ox * s - pw + j * dw;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                acc += (double)w[((co * Ci + ci) * kh + i) * kw + j] * xd[((ci * N + n) * H + iy) * W + ix];
                            }
                    double got = fl_graph_data(g, y)[((co * N + n) * Ho + oy) * Wo + ox];
                    maxerr = fmax(maxerr, fabs(got - acc));
                }
    cr_expect(maxerr < 1e-5, "%lldx%lld, k %dx%d, stride %d: max |conv - direct| = %g", (long long)H, (long long)W, kh,
              kw, s, maxerr);
    fl_graph_free(g);
    fl_ctx_free(ctx);
}

Test(graph, conv2d_matches_direct_convolution)
{
    conv_vs_direct(3, 3, 9, 7, 4, 3, 2, 2, 2, 1, 2, 3);    /* small planes, stride 2, dilated */
    conv_vs_direct(2, 3, 5, 37, 5, 3, 3, 1, 1, 1, 1, 1);   /* wide rows crossing panels */
    conv_vs_direct(2, 2, 6, 41, 3, 3, 3, 2, 1, 1, 2, 2);   /* wide rows, stride 2, dilation 2 */
    conv_vs_direct(4, 3, 1, 70, 4, 1, 3, 1, 0, 4, 1, 4);   /* 1-D, dilation 4 */
    conv_vs_direct(1, 70, 3, 300, 3, 3, 3, 1, 1, 1, 1, 1); /* K and N over one GEMM block */
    conv_vs_direct(3, 32, 9, 13, 40, 3, 3, 1, 1, 1, 1, 1); /* Winograd: edge tiles, several planes */
    conv_vs_direct(1, 48, 37, 35, 32, 3, 3, 1, 0, 2, 1, 1); /* Winograd: unequal padding, several tile blocks */
    conv_vs_direct(2, 32, 16, 16, 32, 3, 3, 1, 3, 3, 3, 3); /* Winograd: dilation 3 */
    conv_vs_direct(3, 32, 1, 64, 40, 1, 3, 1, 0, 4, 1, 4); /* Winograd 1-D: dilation 4 */
}

/* The PyTorch network of tests/fixtures/make_graph_golden.py, built from graph ops. */
static fl_node build_golden(fl_graph *g, fl_node x)
{
    fl_node a = fl_g_conv2d(g, x, "c1", 4, 3, 3, 1, 1, 1, 1, 1, 1);
    fl_node r = fl_g_leaky_relu(g, fl_g_batchnorm(g, a, "bn"), 0.1f);
    fl_node p = fl_g_maxpool(g, fl_g_conv2d(g, r, "c2", 4, 3, 3, 1, 2, 2, 2, 2, 0), 2);
    fl_node u = fl_g_upsample_nearest(g, fl_g_layernorm_plane(g, p, "ln"), 2);
    fl_node c3 = fl_g_conv2d(g, u, "c3", 2, 1, 1, 1, 0, 0, 1, 1, 1);
    fl_node b1 = fl_g_upsample_bilinear(g, c3, 10, 10, 0);
    fl_node b2 = fl_g_upsample_bilinear(g, b1, 8, 8, 1);
    fl_node s = fl_g_add(g, 2, (fl_node[]){b2, c3});
    fl_node y = fl_g_conv2d(g, fl_g_concat(g, 2, (fl_node[]){s, c3}), "c4", 1, 3, 3, 2, 1, 1, 1, 1, 1);
    fl_node z = fl_g_reshape(g, fl_g_linear(g, y, "fc", 6), 2, 1, 3);
    return fl_g_conv1d(g, z, "c5", 3, 3, 1, 2, 2, 1);
}

static const fl_tensor *need(const fl_tensor_list *l, const char *name)
{
    const fl_tensor *t = fl_tensor_list_find(l, name);
    cr_assert(t, "golden file lacks %s", name);
    return t;
}

static void golden_run(int threads, int training_graph)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tests/fixtures/graph_golden.safetensors", FL_SOURCE_DIR);
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, threads);
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    cr_assert_eq(fl_safetensors_read(ctx, path, &l), FL_OK, "%s", fl_ctx_message(ctx));
    fl_graph *g = fl_graph_new(ctx, 3, training_graph);
    fl_node x = fl_g_input(g, 1, 8, 8);
    fl_node y = build_golden(g, x);
    cr_assert_eq(fl_graph_finalize(g), FL_OK, "%s", fl_ctx_message(ctx));
    cr_assert_eq(fl_graph_import(g, ctx, &l, ""), FL_OK, "%s", fl_ctx_message(ctx));
    /* start from the running statistics PyTorch had before its training-mode forward */
    fl_tensor_list start;
    fl_tensor_list_init(&start);
    cr_assert_eq(fl_graph_export(g, ctx, &start, ""), FL_OK);
    for (int i = 0; i < start.count; i++) {
        if (!strcmp(start.items[i].name, "bn.running_mean")) memcpy(start.items[i].data, need(&l, "bn.running_mean_initial")->data, 16);
        if (!strcmp(start.items[i].name, "bn.running_var")) memcpy(start.items[i].data, need(&l, "bn.running_var_initial")->data, 16);
    }
    cr_assert_eq(fl_graph_import(g, ctx, &start, ""), FL_OK);
    const fl_tensor *in = need(&l, "input"), *yt = need(&l, "output_train"), *ye = need(&l, "output_eval");
    memcpy(fl_graph_data(g, x), in->data, (size_t)fl_tensor_numel(in) * 4);
    /* output (3 channels, N=3, 1, W) in the graph layout vs PyTorch's (N, 3, W) */
    int64_t C, H, W;
    fl_graph_shape(g, y, &C, &H, &W);
    cr_assert(C == 3 && H == 1 && W == 3 && fl_tensor_numel(yt) == 27);
    float got[27];
    fl_graph_forward(g, 1);
    for (int64_t n = 0; n < 3; n++)
        for (int64_t c = 0; c < 3; c++)
            for (int64_t w = 0; w < 3; w++) got[(n * 3 + c) * 3 + w] = fl_graph_data(g, y)[(c * 3 + n) * 3 + w];
    cr_expect(max_abs_diff(got, yt->data, 27) < 2e-5, "training-mode output differs from PyTorch by %g",
              max_abs_diff(got, yt->data, 27));
    fl_tensor_list after;
    fl_tensor_list_init(&after);
    cr_assert_eq(fl_graph_export(g, ctx, &after, ""), FL_OK);
    cr_expect(max_abs_diff(fl_tensor_list_find(&after, "bn.running_mean")->data, need(&l, "bn.running_mean")->data, 4) < 1e-6);
    cr_expect(max_abs_diff(fl_tensor_list_find(&after, "bn.running_var")->data, need(&l, "bn.running_var")->data, 4) < 1e-5);
    fl_graph_forward(g, 0);
    for (int64_t n = 0; n < 3; n++)
        for (int64_t c = 0; c < 3; c++)
            for (int64_t w = 0; w < 3; w++) got[(n * 3 + c) * 3 + w] = fl_graph_data(g, y)[(c * 3 + n) * 3 + w];
    cr_expect(max_abs_diff(got, ye->data, 27) < 2e-5, "eval-mode output differs from PyTorch by %g",
              max_abs_diff(got, ye->data, 27));
    fl_tensor_list_free(&after);
    fl_tensor_list_free(&start);
    fl_tensor_list_free(&l);
    fl_graph_free(g);
    fl_ctx_free(ctx);
}

Test(graph, matches_pytorch_golden_network) { golden_run(2, 1); }
Test(graph, inference_graph_reuses_buffers_and_matches_pytorch) { golden_run(1, 0); }

Test(graph, import_rejects_wrong_shapes_and_nan)
{
    fl_ctx *ctx = fl_ctx_new();
    fl_graph *g = fl_graph_new(ctx, 2, 0);
    fl_node x = fl_g_input(g, 1, 4, 4);
    fl_g_conv2d(g, x, "c", 2, 3, 3, 1, 1, 1, 1, 1, 1);
    cr_assert_eq(fl_graph_finalize(g), FL_OK);
    fl_tensor_list l;
    fl_tensor_list_init(&l);
    cr_assert_eq(fl_graph_import(g, ctx, &l, ""), FL_EFORMAT);
    cr_expect(strstr(fl_ctx_message(ctx), "c.weight") != NULL, "%s", fl_ctx_message(ctx));
    fl_tensor_list_add(ctx, &l, "c.weight", 4, (int64_t[]){2, 1, 3, 2}, NULL);
    fl_tensor_list_add(ctx, &l, "c.bias", 1, (int64_t[]){2}, NULL);
    cr_assert_eq(fl_graph_import(g, ctx, &l, ""), FL_EMISMATCH);
    fl_tensor_list_free(&l);
    fl_tensor_list_init(&l);
    fl_tensor_list_add(ctx, &l, "c.weight", 4, (int64_t[]){2, 1, 3, 3}, NULL);
    fl_tensor_list_add(ctx, &l, "c.bias", 1, (int64_t[]){2}, (float[]){0.f, NAN});
    cr_assert_eq(fl_graph_import(g, ctx, &l, ""), FL_EFORMAT);
    fl_tensor_list_free(&l);
    fl_graph_free(g);
    fl_ctx_free(ctx);
}

Test(graph, same_result_for_one_and_two_threads)
{
    float *res[2];
    for (int t = 0; t < 2; t++) {
        fl_ctx *ctx = fl_ctx_new();
        fl_ctx_set_threads(ctx, t + 1);
        fl_graph *g = fl_graph_new(ctx, 4, 1);
        fl_node x = fl_g_input(g, 1, 8, 8);
        fl_node y = build_golden(g, x);
        cr_assert_eq(fl_graph_finalize(g), FL_OK);
        fl_graph_init_params(g, 11, FL_INIT_XAVIER);
        for (int step = 1; step <= 3; step++) {
            fill_stream(fl_graph_data(g, x), 4 * 64, -1, 1, 100 + step, 11);
            fl_graph_forward(g, 1);
            fill_stream(fl_graph_grad(g, y), numel(g, y), -1, 1, 200 + step, 11);
            fl_graph_zero_grads(g);
            fl_graph_backward(g, y);
            fl_graph_adam_step(g, 1e-2f, 0.9f, 0.999f, 1e-8f, step);
        }
        res[t] = malloc((size_t)fl_graph_state_count(g) * 4);
        fl_graph_get_state(g, res[t]);
        if (t == 1) cr_expect(memcmp(res[0], res[1], (size_t)fl_graph_state_count(g) * 4) == 0, "1 and 2 threads differ");
        fl_graph_free(g);
        fl_ctx_free(ctx);
    }
    free(res[0]);
    free(res[1]);
}

/* ---- row updates -------------------------------------------------------------------------------- */

/* A network with every row-local op (dilated and strided conv, BN, LeakyReLU, sum, max-pool, nearest
 * and bilinear upsampling, concat), fed an image row by row (rows not acquired yet are 0): after each
 * row, fl_graph_forward_rows must give exactly the rows [0, r] of a full forward on the same input,
 * while touching only the rows the new row reaches. */
static fl_node b_rows(fl_graph *g, fl_node x)
{
    fl_node a = fl_g_leaky_relu(g, fl_g_batchnorm(g, fl_g_conv2d(g, x, "c1", 3, 3, 3, 1, 2, 2, 2, 2, 1), "b1"), 0.1f);
    fl_node p = fl_g_maxpool(g, a, 2);
    fl_node c = fl_g_conv2d(g, p, "c2", 3, 3, 3, 1, 1, 1, 1, 1, 1);
    fl_node s2[2] = {c, p};
    fl_node up = fl_g_upsample_bilinear(g, fl_g_add(g, 2, s2), 24, 12, 0);
    fl_node nr = fl_g_upsample_nearest(g, fl_g_conv2d(g, p, "c3", 1, 3, 3, 2, 1, 1, 1, 1, 1), 4);
    fl_node cat[3] = {a, up, nr};
    return fl_g_conv2d(g, fl_g_concat(g, 3, cat), "fuse", 2, 1, 1, 1, 0, 0, 1, 1, 1);
}

/* The same with 32 channels, so that the 3x3 layers (one dilated) run by Winograd, whose row updates
 * compute whole tile rows. */
static fl_node b_rows_wide(fl_graph *g, fl_node x)
{
    fl_node e = fl_g_conv2d(g, x, "c0", 32, 1, 1, 1, 0, 0, 1, 1, 1);
    fl_node a = fl_g_leaky_relu(g, fl_g_batchnorm(g, fl_g_conv2d(g, e, "c1", 32, 3, 3, 1, 2, 2, 2, 2, 1), "b1"), 0.1f);
    fl_node p = fl_g_maxpool(g, a, 2);
    fl_node c = fl_g_conv2d(g, p, "c2", 32, 3, 3, 1, 1, 1, 1, 1, 1);
    fl_node s2[2] = {c, p};
    fl_node up = fl_g_upsample_nearest(g, fl_g_add(g, 2, s2), 2);
    fl_node cat[2] = {fl_g_conv2d(g, a, "c3", 32, 3, 3, 1, 1, 1, 1, 1, 1), up};
    return fl_g_conv2d(g, fl_g_concat(g, 2, cat), "fuse", 2, 1, 1, 1, 0, 0, 1, 1, 1);
}

/* Feeds the image row by row to a keep_all graph and compares every step with a full forward: equal, or
 * within tol * (1 + |full|) (worst relative difference in *worst). Returns how many output rows changed
 * after the middle row. */
static int64_t check_row_updates(fl_ctx *ctx, fl_node (*build)(fl_graph *, fl_node), int64_t H, int64_t W, double tol,
                                 double *worst)
{
    *worst = 0;
    fl_graph *inc = fl_graph_new(ctx, 1, 0), *full = fl_graph_new(ctx, 1, 0);
    fl_node xi = fl_g_input(inc, 1, H, W), yi = build(inc, xi);
    fl_node xf = fl_g_input(full, 1, H, W), yf = build(full, xf);
    fl_graph_keep_all(inc);
    fl_graph_keep(full, yf);
    cr_assert_eq(fl_graph_finalize(inc), FL_OK);
    cr_assert_eq(fl_graph_finalize(full), FL_OK);
    fl_graph_init_params(inc, 5, FL_INIT_TORCH);
    fl_graph_init_params(full, 5, FL_INIT_TORCH);
    float *img = malloc(H * W * sizeof(float));
    fill_stream(img, H * W, -1, 1, 4, 21);
    float *xin = fl_graph_data(inc, xi), *xfu = fl_graph_data(full, xf);
    memset(xin, 0, H * W * sizeof(float));
    fl_graph_forward(inc, 0);
    int64_t touched_mid = -1;
    for (int64_t r = 0; r < H; r++) {
        memcpy(xin + r * W, img + r * W, W * sizeof(float));
        int64_t o0, o1;
        cr_assert_eq(fl_graph_forward_rows(inc, xi, r, r + 1, yi, r + 1, &o0, &o1), FL_OK, "%s", fl_ctx_message(ctx));
        memset(xfu, 0, H * W * sizeof(float));
        memcpy(xfu, img, (r + 1) * W * sizeof(float));
        fl_graph_forward(full, 0);
        const float *a = fl_graph_data(inc, yi), *b = fl_graph_data(full, yf);
        for (int64_t c = 0; c < 2; c++)
            for (int64_t j = 0; j < (r + 1) * W; j++) {
                const double d = fabs((double)a[c * H * W + j] - b[c * H * W + j]) / (1.0 + fabs(b[c * H * W + j]));
                if (d > *worst) *worst = d;
                cr_assert(d <= tol, "row %lld: channel %lld pixel %lld differs: %.9g vs %.9g", (long long)r, (long long)c,
                          (long long)j, a[c * H * W + j], b[c * H * W + j]);
            }
        cr_expect(o1 <= r + 1 && o0 >= 0, "changed rows [%lld, %lld) after row %lld", (long long)o0, (long long)o1, (long long)r);
        if (r == H / 2) touched_mid = o1 - o0;
    }
    free(img);
    fl_graph_free(inc);
    fl_graph_free(full);
    return touched_mid;
}

Test(graph, row_updates_match_full_forward)
{
    const int64_t H = 24, W = 12;
    fl_ctx *ctx = fl_ctx_new();
    fl_ctx_set_threads(ctx, 2);
    double worst;
    int64_t touched_mid = check_row_updates(ctx, b_rows, H, W, 0.0, &worst); /* bit for bit */
    cr_expect(touched_mid > 0 && touched_mid < H / 2, "row %lld changed %lld output rows", (long long)(H / 2), (long long)touched_mid);
    /* Winograd tiles: rounding of the tile's other input rows (a few ulp per layer), nothing more */
    touched_mid = check_row_updates(ctx, b_rows_wide, 2 * H, W, 2e-6, &worst);
    cr_log_info("Winograd row updates: worst difference %.3g of (1 + |full|); row %lld changed %lld output rows", worst,
                (long long)H, (long long)touched_mid);
    cr_expect(touched_mid > 0 && touched_mid < H / 2, "Winograd: row %lld changed %lld output rows", (long long)H,
              (long long)touched_mid);
    /* a graph with a layer that is not row-local is refused */
    fl_graph *ln = fl_graph_new(ctx, 1, 0);
    fl_node xl = fl_g_input(ln, 1, 4, 4), yl = fl_g_layernorm_plane(ln, xl, "ln");
    fl_graph_keep_all(ln);
    cr_assert_eq(fl_graph_finalize(ln), FL_OK);
    fl_graph_forward(ln, 0);
    int64_t o0, o1;
    cr_expect_eq(fl_graph_forward_rows(ln, xl, 0, 1, yl, 4, &o0, &o1), FL_EUNSUPPORTED);
    fl_graph_free(ln);
    fl_ctx_free(ctx);
}
