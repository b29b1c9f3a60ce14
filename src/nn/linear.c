/* linear.c -- the fully connected layer, y[n,out] = x[n,in] W^T + b, as one
 * GEMM each for y, dx and dW; the bias gradient is a column sum of dy in
 * double. Shapes: x [n,in], W [out,in], b [out], dy [n,out].
 *
 * Left out: fused activations and quantized weights (the graph applies
 * fake quantization to W before calling these). */
#include "octav/nn.h"

#include <omp.h>

/* Columns per OpenMP task of the bias gradient, and the least work
 * (n * out) worth a parallel region. */
#define DB_COLS 64
#define DB_PAR_MIN 32768

#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define LIN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define LIN_CLONES
#endif

/* y[i, :] = b for every row (the GEMM then adds x W^T) */
LIN_CLONES
static void broadcast_rows(const float *b, float *y, int64_t n, int64_t out) {
    for (int64_t i = 0; i < n; i++) {
        float *yi = y + i * out;
#pragma omp simd
        for (int64_t j = 0; j < out; j++) yi[j] = b[j];
    }
}

void octav_linear_forward(const float *x, const float *w, const float *b,
                          float *y, int64_t n, int64_t in, int64_t out) {
    if (n <= 0 || out <= 0) return;
    if (b) broadcast_rows(b, y, n, out);
    /* y = x W^T (+ y) */
    octav_gemm(0, 1, n, out, in, 1.0f, x, in, w, in, b ? 1.0f : 0.0f, y, out);
}

/* db[out] = sum over rows of dy[n,out]; each column summed in row order in
 * double, so the result does not depend on the thread count. */
LIN_CLONES
static void col_sums(const float *dy, float *db, int64_t n, int64_t out, int64_t j0, int64_t nj) {
    double acc[DB_COLS] = {0};
    for (int64_t i = 0; i < n; i++) {
        const float *r = dy + i * out + j0;
#pragma omp simd
        for (int64_t j = 0; j < nj; j++) acc[j] += (double)r[j];
    }
    for (int64_t j = 0; j < nj; j++) db[j0 + j] = (float)acc[j];
}

static void bias_grad(const float *dy, float *db, int64_t n, int64_t out) {
    const int64_t nblk = (out + DB_COLS - 1) / DB_COLS;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (nblk > 1 && n * out >= DB_PAR_MIN)
    for (int64_t blk = 0; blk < nblk; blk++) {
        const int64_t j0 = blk * DB_COLS;
        col_sums(dy, db, n, out, j0, out - j0 < DB_COLS ? out - j0 : DB_COLS);
    }
}

void octav_linear_backward(const float *x, const float *w, const float *dy,
                           float *dx, float *dw, float *db, int64_t n,
                           int64_t in, int64_t out) {
    /* dx[n,in] = dy[n,out] W[out,in] */
    if (dx) octav_gemm(0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
    /* dW[out,in] = dy^T x (n == 0 gives zeros) */
    if (dw) octav_gemm(1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dw, in);
    if (db && out > 0) bias_grad(dy, db, n, out);
}
