/* gemm.c -- row-major GEMM for the engine: C = alpha op(A) op(B) + beta C.
 *
 * octav_gemm is a thin wrapper of BLIS's cblas_sgemm; octav_gemm_ref is the
 * specification (triple loop, double accumulation); octav_gemm_batched runs
 * many independent products (attention).
 *
 * BLAS conventions hold for every entry point: beta == 0 overwrites C
 * without reading it (NaN in C does not survive), and alpha == 0 or k == 0
 * gives C = beta C without reading A or B. m == 0 or n == 0 does nothing.
 *
 * Leading dimensions below the stored row length are a caller's bug
 * (asserted). BLIS's CBLAS takes 32-bit sizes (Debian's build); a size or
 * leading dimension beyond INT32_MAX falls back to the reference loops
 * rather than truncating.
 *
 * Thread counts: for a fixed thread count the result is always the same,
 * but BLIS's small-matrix ("sup") kernels divide the work by thread count,
 * and for some shapes (e.g. 37x53x500 with op(B) = B^T) a 2-thread product
 * differs from a 1-thread one in the last bits. Forcing BLIS's large-matrix
 * path (thread-count invariant) would cost 3-4x on the small layers
 * (128x10x256: 64 -> 16 GFLOP/s), so octav accepts this.
 *
 * Deliberately left out: mixed precision, packed-weight reuse, strided
 * batches with negative strides. */
#define _POSIX_C_SOURCE 200809L /* BLIS's header uses pthread barriers */
#include "octav/nn.h"

#include "nn/blas.h"

#include <assert.h>
#include <omp.h>

/* Leading dimensions at least the stored row lengths (BLAS's rule). */
static int ld_ok(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k, int64_t lda,
                 int64_t ldb, int64_t ldc) {
    return lda >= (trans_a ? m : k) && ldb >= (trans_b ? k : n) && ldc >= n;
}

/* C[m, n] (row stride ldc) = beta * C; beta == 0 writes zeros. */
static void scale_c(int64_t m, int64_t n, float beta, float *c, int64_t ldc) {
    if (beta == 1.0f) return;
    for (int64_t i = 0; i < m; i++) {
        float *ci = c + i * ldc;
        if (beta == 0.0f) {
            for (int64_t j = 0; j < n; j++) ci[j] = 0.0f;
        } else {
            for (int64_t j = 0; j < n; j++) ci[j] *= beta;
        }
    }
}

void octav_gemm_ref(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b,
                    int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    assert(ldc >= n);
    if (k <= 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    assert(ld_ok(trans_a, trans_b, m, n, k, lda, ldb, ldc));
    /* op(A)[i, p] and op(B)[p, j] as strides over p. */
    const int64_t a_row = trans_a ? 1 : lda, a_p = trans_a ? lda : 1;
    const int64_t b_col = trans_b ? ldb : 1, b_p = trans_b ? 1 : ldb;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < n; j++) {
            const float *ai = a + i * a_row, *bj = b + j * b_col;
            double acc = 0.0;
            for (int64_t p = 0; p < k; p++) acc += (double)ai[p * a_p] * (double)bj[p * b_p];
            double v = (double)alpha * acc;
            if (beta != 0.0f) v += (double)beta * (double)c[i * ldc + j];
            c[i * ldc + j] = (float)v;
        }
    }
}

static int fits_int(int64_t v) { return v >= 0 && v <= INT32_MAX; }

void octav_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                float alpha, const float *a, int64_t lda, const float *b,
                int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    assert(ldc >= n);
    if (k <= 0 || alpha == 0.0f) {
        scale_c(m, n, beta, c, ldc);
        return;
    }
    assert(ld_ok(trans_a, trans_b, m, n, k, lda, ldb, ldc));
    if (!fits_int(m) || !fits_int(n) || !fits_int(k) || !fits_int(lda) ||
        !fits_int(ldb) || !fits_int(ldc)) {
        octav_gemm_ref(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (f77_int)m, (f77_int)n,
                (f77_int)k, alpha, a, (f77_int)lda, b, (f77_int)ldb, beta, c,
                (f77_int)ldc);
}

/* Products of at most this many multiply-adds (m n k) are spread over the
 * batch, one OpenMP thread and one single-threaded BLIS call per matrix;
 * larger ones run one after another, each on all BLIS threads. Measured on
 * 2 cores with attention-like shapes: 64 x (64x64x32) 23 -> 30 GFLOP/s,
 * 256 x (16x16x16) 2.5 -> 5.3; at 32 x (128x128x64) both 64; at
 * 8 x (512x512x64) the loop is faster (58 vs 53). */
#define BATCH_OMP_MAX_MNK ((int64_t)1 << 20)

void octav_gemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m,
                        int64_t n, int64_t k, float alpha, const float *a,
                        int64_t lda, int64_t stride_a, const float *b,
                        int64_t ldb, int64_t stride_b, float beta, float *c,
                        int64_t ldc, int64_t stride_c) {
    if (batch <= 0 || m <= 0 || n <= 0) return;
    const int nt = octav_get_threads();
    const int64_t mnk = m * n * (k > 0 ? k : 1);
    /* Inside the region OpenMP nesting is inactive (checked), so BLIS runs
     * each product single-threaded: the result is that of a
     * single-threaded call whatever the thread count. (A multi-threaded
     * BLIS call can differ from a single-threaded one in the last bits for
     * some shapes: its small-matrix kernels split the work by thread
     * count.) */
    if (nt > 1 && batch > 1 && mnk <= BATCH_OMP_MAX_MNK && !omp_in_parallel() &&
        omp_get_max_active_levels() <= 1) {
#pragma omp parallel for schedule(static) num_threads(nt)
        for (int64_t i = 0; i < batch; i++)
            octav_gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda,
                       b + i * stride_b, ldb, beta, c + i * stride_c, ldc);
        return;
    }
    for (int64_t i = 0; i < batch; i++)
        octav_gemm(trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda,
                   b + i * stride_b, ldb, beta, c + i * stride_c, ldc);
}
