/* bench_conv: GFLOP/s of the graph's convolutions (im2col + fl_gemm_parallel) forward and backward
 * for the layer shapes of the three convolutional families (Winograd F(4x4,3x3) for 3x3 layers unless --no-winograd).
 * Usage: bench_conv [--threads T] [--no-winograd] [--repeats R (3; the best is reported)]
 *   (T = 1 is timed in process CPU time, so a busy machine does not skew it; --no-winograd: im2col + GEMM
 *   for the 3x3 layers too)
 * FLOP = 2 * multiply-adds of the convolution (forward); backward does twice the forward work
 * (weight and input gradients). Winograd layers do fewer FLOPs than counted: "GF/s" is then the direct
 * convolution's FLOP count over the time, the speed a direct kernel would need to match. Compare with bench_gemm's measured FMA peak of this host. */
#include "nn/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Process CPU time with one thread (robust on a shared machine), wall time otherwise. */
static int use_cpu_time;
static double now(void)
{
    struct timespec t;
    clock_gettime(use_cpu_time ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct shape {
    const char *what;
    int64_t N, Cin, H, W, Cout;
    int k, dil;
} shape;

int main(int argc, char **argv)
{
    int threads = 2, winograd = 1, repeats = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-winograd")) winograd = 0;
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
    }
    use_cpu_time = threads == 1;
    const shape shapes[] = {
        {"im2spec encoder 64->64 3x3 @8x8, batch 64", 64, 64, 8, 8, 64, 3, 1},
        {"im2spec dilated 1-D 64->64 k3 d4 @64, batch 64", 64, 64, 1, 64, 64, 3, 4},
        {"ResHedNet 64->64 3x3 @128x128, batch 2", 2, 64, 128, 128, 64, 3, 1},
        {"ResHedNet 256->256 3x3 @32x32, batch 2", 2, 256, 32, 32, 256, 3, 1},
        {"ResHedNet f16 16->16 3x3 @256x256, batch 1", 1, 16, 256, 256, 16, 3, 1},
        {"ResHedNet f16 32->32 3x3 @128x128, batch 1", 1, 32, 128, 128, 32, 3, 1},
        {"ResHedNet f16 64->64 3x3 @64x64, batch 1", 1, 64, 64, 64, 64, 3, 1},
        {"STEM AE 128->128 3x3 @64x64, batch 4", 4, 128, 64, 64, 128, 3, 1},
        {"STEM AE 32->32 3x3 @32x32, batch 32", 32, 32, 32, 32, 32, 3, 1},
    };
    printf("threads %d\n%-48s %10s %10s\n", threads, "layer", "fwd GF/s", "bwd GF/s");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const shape *c = &shapes[s];
        fl_ctx *ctx = fl_ctx_new();
        fl_ctx_set_threads(ctx, threads);
        fl_graph *g = fl_graph_new(ctx, c->N, 1);
        fl_node x = fl_g_input(g, c->Cin, c->H, c->W);
        fl_graph_want_input_grad(g, x); /* a layer inside a network: both gradients */
        fl_graph_use_winograd(g, winograd);
        fl_node y = c->H == 1 ? fl_g_conv1d(g, x, "c", c->Cout, c->k, 1, c->dil, c->dil, 1)
                              : fl_g_conv2d(g, x, "c", c->Cout, c->k, c->k, 1, c->dil, c->dil, c->dil, c->dil, 1);
        if (fl_graph_finalize(g) != FL_OK) {
            fprintf(stderr, "%s: %s\n", c->what, fl_ctx_message(ctx));
            return 1;
        }
        int64_t n = c->N * c->Cin * c->H * c->W, ny = c->N * c->Cout * c->H * c->W;
        for (int64_t i = 0; i < n; i++) fl_graph_data(g, x)[i] = (float)(i % 13) * 0.01f;
        for (int64_t i = 0; i < ny; i++) fl_graph_grad(g, y)[i] = (float)(i % 7) * 0.01f;
        const double kk = c->H == 1 ? c->k : (double)c->k * c->k;
        const double flop = 2.0 * c->N * c->Cout * c->H * c->W * c->Cin * kk;
        double bf = 1e30, bb = 1e30;
        for (int r = 0; r < repeats; r++) {
            double t0 = now();
            fl_graph_forward(g, 1);
            double t1 = now();
            fl_graph_backward(g, y);
            double t2 = now();
            if (t1 - t0 < bf) bf = t1 - t0;
            if (t2 - t1 < bb) bb = t2 - t1;
        }
        printf("%-48s %10.1f %10.1f\n", c->what, flop / bf * 1e-9, 2 * flop / bb * 1e-9);
        fl_graph_free(g);
        fl_ctx_free(ctx);
    }
    return 0;
}
