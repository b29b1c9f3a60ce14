/* conv_timing.c -- times conv2d forward, backward-data and backward-weights
 * (dw + db) per backend on the conv shapes of the cnn, resnet20 and
 * mobilenetv2 models (batch 128 by default). Not part of the CMake build:
 *
 *   cmake --build build -j2 &&
 *   gcc -std=c11 -O2 -fopenmp -Iinclude -Isrc bench/conv_timing.c \
 *       build/liboctav.a -ldnnl -L/usr/lib/x86_64-linux-gnu/blis-openmp -lblis \
 *       -lcjson -lz -lm -o build/conv_timing
 *   build/conv_timing [threads=2] [batch=128] [filter]
 *
 * Prints one row per shape: ms per call of each backend (gemm, dnnl with
 * plain layouts, dnnl with blocked layouts + reorders) for forward, backward
 * data, backward weights + bias, and a training step (forward + one
 * backward giving dx, dw, db), and which backend AUTO picks. Each number is
 * the minimum over repeated calls (at least 5, about 0.5 s or
 * OCTAV_BENCH_SECONDS): on a shared
 * machine the minimum is the stable statistic; the median is printed by
 * OCTAV_BENCH_MEDIAN=1; OCTAV_BENCH_CPUTIME=1 times process CPU time (for
 * one-thread runs on a busy machine). */
#define _POSIX_C_SOURCE 200809L
#include "nn/conv_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *name;
    int64_t c_in, hw, c_out, k;
    int stride, pad, groups;
} shape;

static const shape shapes[] = {
    {"cnn1 1->32 3x3 28", 1, 28, 32, 3, 1, 1, 1},
    {"cnn2 32->32 3x3 28", 32, 28, 32, 3, 1, 1, 1},
    {"cnn3 32->64 3x3 14", 32, 14, 64, 3, 1, 1, 1},
    {"cnn4 64->64 3x3 14", 64, 14, 64, 3, 1, 1, 1},
    {"rn 3->16 3x3 32", 3, 32, 16, 3, 1, 1, 1},
    {"rn 16->16 3x3 32", 16, 32, 16, 3, 1, 1, 1},
    {"rn 32->32 3x3 16", 32, 16, 32, 3, 1, 1, 1},
    {"rn 64->64 3x3 8", 64, 8, 64, 3, 1, 1, 1},
    {"rn 16->32 3x3 s2 32", 16, 32, 32, 3, 2, 1, 1},
    {"rn 32->64 3x3 s2 16", 32, 16, 64, 3, 2, 1, 1},
    {"rn 16->32 1x1 s2 32", 16, 32, 32, 1, 2, 0, 1},
    {"rn 32->64 1x1 s2 16", 32, 16, 64, 1, 2, 0, 1},
    {"mb 16->96 1x1 16", 16, 16, 96, 1, 1, 0, 1},
    {"mb dw96 3x3 16", 96, 16, 96, 3, 1, 1, 96},
    {"mb dw96 3x3 s2 16", 96, 16, 96, 3, 2, 1, 96},
    {"mb 96->24 1x1 16", 96, 16, 24, 1, 1, 0, 1},
    {"mb 96->24 1x1 8", 96, 8, 24, 1, 1, 0, 1},
};

static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void) {
    struct timespec t;
    clock_gettime(clock_id, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int use_median;
static double seconds = 0.5; /* per cell: OCTAV_BENCH_SECONDS */

/* ms of op: 0 forward, 1 backward data, 2 backward weights + bias, 3 all. */
static double time_op(octav_conv2d *c, int op, const float *x, const float *w, const float *b,
                      float *y, const float *dy, float *dx, float *dw, float *db) {
    double t[200];
    int reps = 0;
    double start = now();
    for (int i = -2; i < 200 && (i < 5 || now() - start < seconds); i++) { /* 2 warm-up calls */
        double t0 = now();
        if (op == 0 || op == 3) octav_conv2d_forward(c, x, w, b, y);
        if (op == 1) octav_conv2d_backward(c, x, w, dy, dx, NULL, NULL);
        if (op == 2) octav_conv2d_backward(c, x, w, dy, NULL, dw, db);
        if (op == 3) octav_conv2d_backward(c, x, w, dy, dx, dw, db);
        if (i >= 0) t[reps++] = (now() - t0) * 1e3;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp_d);
    return use_median ? t[reps / 2] : t[0];
}

static float *rnd(int64_t n, uint64_t seed) {
    float *p = malloc((size_t)n * sizeof *p);
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (float)((double)(seed >> 40) / (double)(1 << 24) - 0.5);
    }
    return p;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    int64_t batch = argc > 2 ? atoll(argv[2]) : 128;
    const char *filter = argc > 3 ? argv[3] : NULL;
    use_median = getenv("OCTAV_BENCH_MEDIAN") && atoi(getenv("OCTAV_BENCH_MEDIAN"));
    /* OCTAV_BENCH_CPUTIME=1: process CPU time instead of wall time (with one
     * thread, insensitive to other processes on a shared machine). */
    if (getenv("OCTAV_BENCH_SECONDS")) seconds = atof(getenv("OCTAV_BENCH_SECONDS"));
    if (getenv("OCTAV_BENCH_CPUTIME") && atoi(getenv("OCTAV_BENCH_CPUTIME")))
        clock_id = CLOCK_PROCESS_CPUTIME_ID;
    octav_set_threads(threads);
    printf("threads %d, batch %lld; ms per call (%s)\n", threads, (long long)batch,
           use_median ? "median" : "minimum");
    printf("%-22s | %-23s | %-23s | %-23s | %-23s | auto\n", "shape", "forward gemm/plain/blk",
           "bwd-data gemm/plain/blk", "bwd-w gemm/plain/blk", "step gemm/plain/blk");
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        const shape *s = &shapes[si];
        if (filter && !strstr(s->name, filter)) continue;
        octav_conv2d_desc d = {.n = batch, .c_in = s->c_in, .h_in = s->hw, .w_in = s->hw,
                               .c_out = s->c_out, .kh = s->k, .kw = s->k,
                               .stride_h = s->stride, .stride_w = s->stride,
                               .pad_h = s->pad, .pad_w = s->pad, .groups = s->groups};
        if (octav_conv2d_desc_check(&d) != OCTAV_OK) return 1;
        int64_t nx = conv_x_numel(&d), ny = conv_y_numel(&d), nw = conv_w_numel(&d);
        float *x = rnd(nx, 1), *w = rnd(nw, 2), *b = rnd(d.c_out, 3), *dy = rnd(ny, 4);
        float *y = malloc((size_t)ny * 4), *dx = malloc((size_t)nx * 4);
        float *dw = malloc((size_t)nw * 4), *db = malloc((size_t)d.c_out * 4);
        double ms[4][3];
        for (int v = 0; v < 3; v++) {
            octav_conv2d *c = NULL;
            octav_status st = v == 0 ? octav_conv2d_create(&d, OCTAV_BACKEND_GEMM, &c)
                              : octav_conv2d_create_dnnl(&d, v == 1 ? CONV_DNNL_PLAIN
                                                                     : CONV_DNNL_BLOCKED, &c);
            for (int op = 0; op < 4; op++)
                ms[op][v] = st ? -1 : time_op(c, op, x, w, b, y, dy, dx, dw, db);
            octav_conv2d_destroy(c);
        }
        octav_conv2d *c = NULL;
        char pick[32] = "?";
        if (octav_conv2d_create(&d, OCTAV_BACKEND_AUTO, &c) == OCTAV_OK) {
            if (c->kind == OCTAV_BACKEND_DNNL)
                snprintf(pick, sizeof pick, "dnnl %c%c%c", "?PB"[c->dnnl_used[0]],
                         "?PB"[c->dnnl_used[1]], "?PB"[c->dnnl_used[2]]);
            else
                snprintf(pick, sizeof pick, "%s", octav_conv2d_backend_name(c));
        }
        octav_conv2d_destroy(c);
        printf("%-22s |", s->name);
        for (int op = 0; op < 4; op++)
            printf(" %7.2f %7.2f %7.2f |", ms[op][0], ms[op][1], ms[op][2]);
        printf(" %s\n", pick);
        fflush(stdout);
        free(x); free(w); free(b); free(dy); free(y); free(dx); free(dw); free(db);
    }
    return 0;
}
