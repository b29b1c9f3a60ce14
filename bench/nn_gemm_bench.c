/* nn_gemm_bench.c -- throughput of octav_gemm on the linear layers of a small
 * CNN at batch 128 (forward y = x W^T and the two backward GEMMs), of
 * octav_gemm_batched on attention-like shapes, and of the optimizer steps.
 * Not built by CMake (no timing belongs in the test suite); build against a
 * Release build and run from the repository root:
 *
 *   cc -O2 -std=c11 -fopenmp -Iinclude bench/nn_gemm_bench.c build/liboctav.a \
 *      -L/usr/lib/x86_64-linux-gnu/blis-openmp -lblis -lcjson -lz -ldnnl -lm \
 *      -o build/nn_gemm_bench && build/nn_gemm_bench 2
 *
 * The argument is the thread count (octav_set_threads). Every call is timed
 * on its own; the figures are the median call and the fastest call. */
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

static float *rnd(int64_t n, uint64_t seed) {
    float *p = malloc((size_t)n * sizeof *p);
    if (!p) abort();
    for (int64_t i = 0; i < n; i++) p[i] = (float)(octav_hash_uniform(seed, (uint64_t)i) - 0.5);
    return p;
}

typedef struct {
    int kind; /* 0 gemm, 1 batched, 2 sgd, 3 adamw */
    int ta, tb;
    int64_t batch, m, n, k;
    float *a, *b, *c, *d;
} job;

static void run(job *j) {
    switch (j->kind) {
    case 0:
        octav_gemm(j->ta, j->tb, j->m, j->n, j->k, 1.0f, j->a, j->ta ? j->m : j->k, j->b,
                   j->tb ? j->k : j->n, 0.0f, j->c, j->n);
        break;
    case 1:
        octav_gemm_batched(j->ta, j->tb, j->batch, j->m, j->n, j->k, 1.0f, j->a, j->ta ? j->m : j->k,
                           j->m * j->k, j->b, j->tb ? j->k : j->n, j->k * j->n, 0.0f, j->c, j->n,
                           j->m * j->n);
        break;
    case 2:
        octav_sgd_step(j->a, j->b, j->c, j->m, 0.01f, 0.9f, 5e-4f, 0, 2);
        break;
    default:
        octav_adamw_step(j->a, j->b, j->c, j->d, j->m, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 2);
        break;
    }
}

/* Seconds per call: every call timed on its own for at least 0.5 s (and 20
 * calls); *best is the fastest call, the return value the median. On a
 * machine shared with other work the median shows the interference, the
 * best what the code does when it has the cores. */
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double seconds(job *j, double *best) {
    enum { MAXN = 100000 };
    static double t[MAXN];
    run(j);
    int n = 0;
    double start = now();
    while (n < MAXN && (n < 20 || now() - start < 0.5)) {
        double t0 = now();
        run(j);
        t[n++] = now() - t0;
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    *best = t[0];
    return t[n / 2];
}

static void gemm_line(const char *what, int ta, int tb, int64_t m, int64_t n, int64_t k) {
    job j = {0, ta, tb, 1, m, n, k, rnd(m * k, 1), rnd(k * n, 2), rnd(m * n, 3), NULL};
    double best, t = seconds(&j, &best);
    const double f = 2.0 * (double)(m * n * k) * 1e-9;
    printf("  %-22s m %4lld n %4lld k %4lld  median %8.1f us %6.1f GFLOP/s, best %8.1f us %6.1f GFLOP/s\n",
           what, (long long)m, (long long)n, (long long)k, t * 1e6, f / t, best * 1e6, f / best);
    free(j.a); free(j.b); free(j.c);
}

int main(int argc, char **argv) {
    int nt = octav_set_threads(argc > 1 ? atoi(argv[1]) : 0);
    printf("octav_gemm, %d thread(s)\n", nt);
    static const int64_t LAYERS[][3] = {{128, 3136, 256}, {128, 256, 10}}; /* batch, in, out */
    for (int l = 0; l < 2; l++) {
        const int64_t N = LAYERS[l][0], I = LAYERS[l][1], O = LAYERS[l][2];
        printf(" linear %lldx%lld -> %lld\n", (long long)N, (long long)I, (long long)O);
        gemm_line("forward  y = x W^T", 0, 1, N, O, I);
        gemm_line("backward dx = dy W", 0, 0, N, I, O);
        gemm_line("backward dW = dy^T x", 1, 0, O, I, N);
    }
    printf("octav_gemm_batched (C = A B^T)\n");
    static const int64_t BATCH[][4] = {{256, 16, 16, 16}, {64, 64, 64, 32}, {32, 128, 128, 64}, {8, 512, 512, 64}};
    for (int s = 0; s < 4; s++) {
        const int64_t B = BATCH[s][0], m = BATCH[s][1], n = BATCH[s][2], k = BATCH[s][3];
        job j = {1, 0, 1, B, m, n, k, rnd(B * m * k, 1), rnd(B * k * n, 2), rnd(B * m * n, 3), NULL};
        double best, t = seconds(&j, &best);
        const double f = 2.0 * (double)(B * m * n * k) * 1e-9;
        printf("  batch %3lld of %3lldx%3lldx%3lld  median %8.1f us %6.1f GFLOP/s, best %8.1f us %6.1f GFLOP/s\n",
               (long long)B, (long long)m, (long long)n, (long long)k, t * 1e6, f / t, best * 1e6, f / best);
        free(j.a); free(j.b); free(j.c);
    }
    printf("optimizer steps\n");
    static const int64_t SIZES[] = {1 << 16, 1 << 20, 1 << 23};
    for (int s = 0; s < 3; s++) {
        const int64_t n = SIZES[s];
        for (int kind = 2; kind <= 3; kind++) {
            job j = {kind, 0, 0, 1, n, 0, 0, rnd(n, 1), rnd(n, 2), rnd(n, 3), rnd(n, 4)};
            for (int64_t i = 0; i < n; i++) j.d[i] *= j.d[i];
            double best, t = seconds(&j, &best);
            printf("  %-5s n %8lld  median %8.1f us %5.2f ns/element, best %8.1f us %5.2f ns/element\n",
                   kind == 2 ? "sgd" : "adamw", (long long)n, t * 1e6, t / (double)n * 1e9, best * 1e6,
                   best / (double)n * 1e9);
            free(j.a); free(j.b); free(j.c); free(j.d);
        }
    }
    return 0;
}
