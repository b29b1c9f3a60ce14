/* nn_ops_bench.c -- time of the engine's memory-bound operators (batchnorm,
 * activations, dropout, pooling, layernorm, softmax) on a 128x32x28x28
 * float tensor, the first conv block of a small CNN at batch 128.
 * Not built by CMake (no timing belongs in the test suite); build against a
 * Release build and run from the repository root:
 *
 *   cc -O2 -std=c11 -fopenmp -Iinclude bench/nn_ops_bench.c build/liboctav.a \
 *      -L/usr/lib/x86_64-linux-gnu/blis-openmp -lblis -lcjson -lz -ldnnl -lm \
 *      -o build/nn_ops_bench && build/nn_ops_bench 2
 *
 * The argument is the thread count (octav_set_threads). Each line is the
 * fastest of 15 calls and the bytes the op must move (reads + writes of
 * whole tensors) divided by that time. On a shared machine other processes
 * show up as 4 ms scheduler ticks in the multi-threaded figures. */
#define _POSIX_C_SOURCE 200809L
#include "octav/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define BENCH(name, bytes, stmt)                                                                   \
    do {                                                                                           \
        double best_ = 1e30;                                                                       \
        for (int r_ = 0; r_ < 15; r_++) {                                                          \
            double t0_ = now();                                                                    \
            stmt;                                                                                  \
            double t_ = now() - t0_;                                                               \
            if (t_ < best_) best_ = t_;                                                            \
        }                                                                                          \
        printf("%-30s %9.3f ms %8.2f GB/s\n", name, best_ * 1e3, (double)(bytes) / best_ / 1e9);  \
    } while (0)

int main(int argc, char **argv) {
    octav_set_threads(argc > 1 ? atoi(argv[1]) : 0);
    const int64_t n = 128, c = 32, h = 28, w = 28, hw = h * w, N = n * c * hw;
    float *x = malloc((size_t)N * 4), *y = malloc((size_t)N * 4), *dy = malloc((size_t)N * 4),
          *dx = malloc((size_t)N * 4), *aux = malloc((size_t)N * 4);
    int32_t *am = malloc((size_t)N * 4);
    uint8_t *mask = malloc((size_t)N);
    if (!x || !y || !dy || !dx || !aux || !am || !mask) return 1;
    for (int64_t i = 0; i < N; i++) {
        x[i] = (float)(4.0 * octav_hash_uniform(1, (uint64_t)i) - 2.0);
        dy[i] = (float)(octav_hash_uniform(2, (uint64_t)i) - 0.5);
    }
    float g[32], b[32], mean[32], rstd[32], rm[32], rv[32], dg[32], db[32], lng[784], lnb[784];
    for (int i = 0; i < 32; i++) {
        g[i] = 1.0f; b[i] = 0.0f; rm[i] = 0.0f; rv[i] = 1.0f;
    }
    const double B = (double)N * 4;
    printf("threads %d, x 128x32x28x28 (%.1f MB)\n", octav_get_threads(), B / 1e6);
    BENCH("batchnorm train forward", 2 * B,
          octav_batchnorm_forward_train(x, g, b, y, mean, rstd, rm, rv, n, c, hw, 0.1f, 1e-5f));
    BENCH("batchnorm backward", 3 * B,
          octav_batchnorm_backward(x, g, mean, rstd, dy, dx, dg, db, n, c, hw));
    BENCH("batchnorm forward + backward", 5 * B,
          (octav_batchnorm_forward_train(x, g, b, y, mean, rstd, rm, rv, n, c, hw, 0.1f, 1e-5f),
           octav_batchnorm_backward(x, g, mean, rstd, dy, dx, dg, db, n, c, hw)));
    BENCH("batchnorm eval", 2 * B, octav_batchnorm_forward_eval(x, g, b, rm, rv, y, n, c, hw, 1e-5f));
    BENCH("relu forward", 2 * B, octav_relu_forward(x, y, N));
    BENCH("relu backward", 3 * B, octav_relu_backward(x, dy, dx, N));
    BENCH("gelu forward", 2 * B, octav_gelu_forward(x, y, N));
    BENCH("gelu backward", 3 * B, octav_gelu_backward(x, dy, dx, N));
    BENCH("dropout forward p=0.1", 2.25 * B, octav_dropout_forward(x, y, mask, N, 0.1f, 7));
    BENCH("dropout backward", 2.25 * B, octav_dropout_backward(mask, dy, dx, N, 0.1f));
    BENCH("add", 3 * B, octav_add_forward(x, dy, y, N));
    BENCH("maxpool k2 s2 forward", 1.5 * B, octav_maxpool2d_forward(x, y, am, n, c, h, w, 2, 2, 0));
    BENCH("maxpool k2 s2 backward", 1.5 * B, octav_maxpool2d_backward(am, dy, dx, n, c, h, w, 2, 2, 0));
    BENCH("maxpool k3 s2 p1 forward", 1.5 * B, octav_maxpool2d_forward(x, y, am, n, c, h, w, 3, 2, 1));
    BENCH("avgpool k2 s2 forward", 1.25 * B, octav_avgpool2d_forward(x, y, n, c, h, w, 2, 2, 0));
    BENCH("avgpool k2 s2 backward", 1.25 * B, octav_avgpool2d_backward(dy, dx, n, c, h, w, 2, 2, 0));
    BENCH("global avg pool forward", B, octav_gap_forward(x, y, n, c, hw));
    BENCH("layernorm forward 4096x784", 2 * B,
          octav_layernorm_forward(x, NULL, NULL, y, aux, aux + 4096, 4096, 784, 1e-5f));
    BENCH("layernorm backward 4096x784", 3 * B,
          octav_layernorm_backward(x, NULL, aux, aux + 4096, dy, dx, lng, lnb, 4096, 784));
    BENCH("softmax forward 4096x784", 2 * B, octav_softmax_forward(x, y, 4096, 784));
    BENCH("softmax backward 4096x784", 3 * B, octav_softmax_backward(y, dy, dx, 4096, 784));
    free(x); free(y); free(dy); free(dx); free(aux); free(am); free(mask);
    return 0;
}
