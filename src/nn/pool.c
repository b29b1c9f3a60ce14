/* pool.c -- 2-D max and average pooling and global average pooling over
 * NCHW planes, forward and backward, PyTorch semantics (floor mode).
 *
 * Each (sample, channel) plane is independent; planes run in parallel and
 * every plane is processed in a fixed order, so results (including the
 * accumulation of overlapping windows in backward) never depend on the
 * thread count.
 *  - Max pool: the window is scanned row by row; an element replaces the
 *    current maximum when it is greater or NaN (PyTorch's rule: the first
 *    maximum wins, a NaN propagates). Padding is never selected. argmax is
 *    the flat index within the input plane. A window lying wholly in the
 *    padding (only possible with p > k/2, which PyTorch rejects) gives -inf
 *    and argmax -1, and no gradient. For k = 2 and 3 the windows inside the
 *    plane are computed across a row of outputs at once (vectorised, the
 *    same steps in the same order), the border ones one by one.
 *  - Avg pool: the window sum (float, row by row) divided by k*k
 *    (count_include_pad=True); backward adds dy / (k*k) to the window.
 *  - Global average pool: the plane mean, summed in double.
 * Left out: ceil_mode, dilation, count_include_pad=False, divisor_override,
 * non-square windows. */
#include <math.h>
#include <string.h>

#include "octav/nn.h"

#define PAR_MIN 32768 /* input elements below which loops stay serial */

static int64_t out_size(int64_t h, int k, int s, int p) { return (h + 2 * (int64_t)p - k) / s + 1; }

/* Clipped window [lo, hi) along one axis for output index o. */
static void window(int64_t o, int k, int s, int p, int64_t h, int64_t *lo, int64_t *hi) {
    int64_t a = o * s - p, b = a + k;
    *lo = a < 0 ? 0 : a;
    *hi = b > h ? h : b;
}

#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define OCTAV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OCTAV_CLONES
#endif

/* Replaces (best, idx) by (v, j) when v is greater or NaN; branch-free (the
 * outcome is data-dependent and mispredicts; both compares unconditional so
 * that the vectoriser if-converts the selects). */
#define MAX_STEP(v, j)                                                                             \
    do {                                                                                           \
        const float v_ = (v);                                                                      \
        const int take_ = (v_ > best) | (v_ != v_);                                                \
        best = take_ ? v_ : best;                                                                  \
        idx = take_ ? (j) : idx;                                                                   \
    } while (0)

/* Any window, clipped to the plane. */
static void max_window(const float *x, int64_t w, int64_t oh, int64_t ow, int64_t h, int k, int s,
                       int p, float *y, int32_t *am) {
    int64_t h0, h1, w0, w1;
    window(oh, k, s, p, h, &h0, &h1);
    window(ow, k, s, p, w, &w0, &w1);
    float best = -INFINITY;
    int64_t idx = (h0 < h1 && w0 < w1) ? h0 * w + w0 : -1;
    for (int64_t ih = h0; ih < h1; ih++)
        for (int64_t iw = w0; iw < w1; iw++) MAX_STEP(x[ih * w + iw], ih * w + iw);
    *y = best;
    if (am) *am = (int32_t)idx;
}

/* Outputs [o0, o1) of one output row whose k x k windows (k = 2, 3) lie
 * inside the plane, window o starting at flat index base + s o; vectorised
 * across the outputs (the same steps in the same order as max_window). */
#define STEPS2                                                                                     \
    MAX_STEP(x[i], i);                                                                             \
    MAX_STEP(x[i + 1], i + 1);                                                                     \
    MAX_STEP(x[i + w], i + w);                                                                     \
    MAX_STEP(x[i + w + 1], i + w + 1)
#define STEPS3                                                                                     \
    MAX_STEP(x[i], i);                                                                             \
    MAX_STEP(x[i + 1], i + 1);                                                                     \
    MAX_STEP(x[i + 2], i + 2);                                                                     \
    MAX_STEP(x[i + w], i + w);                                                                     \
    MAX_STEP(x[i + w + 1], i + w + 1);                                                             \
    MAX_STEP(x[i + w + 2], i + w + 2);                                                             \
    MAX_STEP(x[i + 2 * w], i + 2 * w);                                                             \
    MAX_STEP(x[i + 2 * w + 1], i + 2 * w + 1);                                                     \
    MAX_STEP(x[i + 2 * w + 2], i + 2 * w + 2)
#define MAX_ROW(name, STEPS, STORE_IDX, STRIDE)                                                    \
    OCTAV_CLONES                                                                                   \
    static void name(const float *x, float *y, int32_t *am, int32_t w, int32_t base, int32_t s,   \
                     int64_t o0, int64_t o1) {                                                     \
        (void)s;                                                                                   \
        _Pragma("omp simd")                                                                        \
        for (int64_t o = o0; o < o1; o++) {                                                        \
            const int32_t i = base + (STRIDE) * (int32_t)o;                                        \
            float best = -INFINITY;                                                                \
            int32_t idx = i;                                                                       \
            STEPS;                                                                                 \
            y[o] = best;                                                                           \
            STORE_IDX;                                                                             \
        }                                                                                          \
    }
/* stride 2 as a constant: even / odd loads instead of gathers */
MAX_ROW(max_row2_s2, STEPS2, am[o] = idx, 2)
MAX_ROW(max_row3_s2, STEPS3, am[o] = idx, 2)
MAX_ROW(max_row2, STEPS2, am[o] = idx, s)
MAX_ROW(max_row3, STEPS3, am[o] = idx, s)
MAX_ROW(max_row2_noidx, STEPS2, (void)am; (void)idx, s)
MAX_ROW(max_row3_noidx, STEPS3, (void)am; (void)idx, s)

static void maxpool_plane(const float *x, float *y, int32_t *am, int64_t h, int64_t w, int64_t ho,
                          int64_t wo, int k, int s, int p) {
    /* outputs whose windows lie inside along w: o s - p >= 0, o s - p + k <= w */
    int64_t o_lo = (p + s - 1) / s, o_hi = w - k + p >= 0 ? (w - k + p) / s + 1 : 0;
    if (o_hi > wo) o_hi = wo;
    if (o_lo > o_hi) o_lo = o_hi;
    const int rows_fast = k == 2 || k == 3;
    for (int64_t oh = 0; oh < ho; oh++) {
        const int64_t h0 = oh * s - p;
        int64_t a = 0, b = 0; /* the vectorised range of this row */
        if (rows_fast && h0 >= 0 && h0 + k <= h) {
            a = o_lo;
            b = o_hi;
            const int32_t base = (int32_t)(h0 * w - p);
            float *yr = y + oh * wo;
            int32_t *ar = am ? am + oh * wo : NULL;
            if (!am)
                (k == 2 ? max_row2_noidx : max_row3_noidx)(x, yr, NULL, (int32_t)w, base, s, a, b);
            else if (s == 2)
                (k == 2 ? max_row2_s2 : max_row3_s2)(x, yr, ar, (int32_t)w, base, s, a, b);
            else
                (k == 2 ? max_row2 : max_row3)(x, yr, ar, (int32_t)w, base, s, a, b);
        }
        for (int64_t ow = 0; ow < wo; ow++) {
            if (ow == a && b > a) ow = b;
            if (ow >= wo) break;
            max_window(x, w, oh, ow, h, k, s, p, y + oh * wo + ow, am ? am + oh * wo + ow : NULL);
        }
    }
}

void octav_maxpool2d_forward(const float *x, float *y, int32_t *argmax, int64_t n, int64_t c,
                             int64_t h, int64_t w, int k, int s, int p) {
    const int64_t ho = out_size(h, k, s, p), wo = out_size(w, k, s, p), planes = n * c;
    if (planes <= 0 || ho <= 0 || wo <= 0) return;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (planes * h * w >= PAR_MIN)
    for (int64_t q = 0; q < planes; q++)
        maxpool_plane(x + q * h * w, y + q * ho * wo, argmax ? argmax + q * ho * wo : NULL, h, w, ho,
                      wo, k, s, p);
}

void octav_maxpool2d_backward(const int32_t *argmax, const float *dy, float *dx, int64_t n,
                              int64_t c, int64_t h, int64_t w, int k, int s, int p) {
    const int64_t ho = out_size(h, k, s, p), wo = out_size(w, k, s, p), planes = n * c;
    if (planes <= 0) return;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (planes * h * w >= PAR_MIN)
    for (int64_t q = 0; q < planes; q++) {
        float *dp = dx + q * h * w;
        memset(dp, 0, (size_t)(h * w) * sizeof *dp);
        if (ho <= 0 || wo <= 0) continue;
        const int32_t *ap = argmax + q * ho * wo;
        const float *gp = dy + q * ho * wo;
        for (int64_t o = 0; o < ho * wo; o++)
            if (ap[o] >= 0) dp[ap[o]] += gp[o];
    }
}

void octav_avgpool2d_forward(const float *x, float *y, int64_t n, int64_t c, int64_t h, int64_t w,
                             int k, int s, int p) {
    const int64_t ho = out_size(h, k, s, p), wo = out_size(w, k, s, p), planes = n * c;
    if (planes <= 0 || ho <= 0 || wo <= 0) return;
    const float div = (float)k * (float)k;
    const int fast = k == 2 && s == 2 && p == 0;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (planes * h * w >= PAR_MIN)
    for (int64_t q = 0; q < planes; q++) {
        const float *xp = x + q * h * w;
        float *yp = y + q * ho * wo;
        if (fast) {
            for (int64_t oh = 0; oh < ho; oh++) {
                const float *r0 = xp + 2 * oh * w, *r1 = r0 + w;
                for (int64_t ow = 0; ow < wo; ow++) {
                    float sum = 0.0f; /* the generic order, from 0 (0 + -0 = +0) */
                    sum += r0[2 * ow];
                    sum += r0[2 * ow + 1];
                    sum += r1[2 * ow];
                    sum += r1[2 * ow + 1];
                    yp[oh * wo + ow] = sum / div;
                }
            }
            continue;
        }
        for (int64_t oh = 0; oh < ho; oh++) {
            int64_t h0, h1;
            window(oh, k, s, p, h, &h0, &h1);
            for (int64_t ow = 0; ow < wo; ow++) {
                int64_t w0, w1;
                window(ow, k, s, p, w, &w0, &w1);
                float sum = 0.0f;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) sum += xp[ih * w + iw];
                yp[oh * wo + ow] = sum / div;
            }
        }
    }
}

void octav_avgpool2d_backward(const float *dy, float *dx, int64_t n, int64_t c, int64_t h,
                              int64_t w, int k, int s, int p) {
    const int64_t ho = out_size(h, k, s, p), wo = out_size(w, k, s, p), planes = n * c;
    if (planes <= 0) return;
    const float div = (float)k * (float)k;
    const int fast = k == 2 && s == 2 && p == 0;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (planes * h * w >= PAR_MIN)
    for (int64_t q = 0; q < planes; q++) {
        float *dp = dx + q * h * w;
        const float *gp = dy + q * ho * wo;
        memset(dp, 0, (size_t)(h * w) * sizeof *dp);
        if (fast) { /* disjoint windows: each element gets 0 + g once */
            for (int64_t oh = 0; oh < ho; oh++) {
                float *r0 = dp + 2 * oh * w, *r1 = r0 + w;
                for (int64_t ow = 0; ow < wo; ow++) {
                    const float g = 0.0f + gp[oh * wo + ow] / div;
                    r0[2 * ow] = r0[2 * ow + 1] = r1[2 * ow] = r1[2 * ow + 1] = g;
                }
            }
            continue;
        }
        for (int64_t oh = 0; oh < ho; oh++) {
            int64_t h0, h1;
            window(oh, k, s, p, h, &h0, &h1);
            for (int64_t ow = 0; ow < wo; ow++) {
                int64_t w0, w1;
                window(ow, k, s, p, w, &w0, &w1);
                float g = gp[oh * wo + ow] / div;
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) dp[ih * w + iw] += g;
            }
        }
    }
}

void octav_gap_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw) {
    const int64_t planes = n * c;
    if (planes <= 0 || hw <= 0) return;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (planes * hw >= PAR_MIN)
    for (int64_t q = 0; q < planes; q++) {
        const float *xp = x + q * hw;
        double a[4] = {0, 0, 0, 0};
        int64_t j = 0;
        for (; j + 4 <= hw; j += 4)
            for (int l = 0; l < 4; l++) a[l] += (double)xp[j + l];
        for (int l = 0; j < hw; j++, l++) a[l] += (double)xp[j];
        y[q] = (float)(((a[0] + a[1]) + (a[2] + a[3])) / (double)hw);
    }
}

void octav_gap_backward(const float *dy, float *dx, int64_t n, int64_t c, int64_t hw) {
    const int64_t planes = n * c;
    if (planes <= 0 || hw <= 0) return;
    const float div = (float)hw;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (planes * hw >= PAR_MIN)
    for (int64_t q = 0; q < planes; q++) {
        float g = dy[q] / div;
        float *dp = dx + q * hw;
        for (int64_t j = 0; j < hw; j++) dp[j] = g;
    }
}
