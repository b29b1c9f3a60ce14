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
 *    and argmax -1, and no gradient.
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

/* Replaces (best, idx) by (v, j) when v is greater or NaN; branch-free (the
 * outcome is data-dependent and mispredicts). */
#define MAX_STEP(v, j)                                                                             \
    do {                                                                                           \
        const float v_ = (v);                                                                      \
        const int take_ = (v_ > best) | (v_ != v_);                                                \
        best = take_ ? v_ : best;                                                                  \
        idx = take_ ? (j) : idx;                                                                   \
    } while (0)

/* Any window; the 3x3 windows lying inside the plane are unrolled. */
static void maxpool_plane(const float *x, float *y, int32_t *am, int64_t h, int64_t w, int64_t ho,
                          int64_t wo, int k, int s, int p) {
    for (int64_t oh = 0; oh < ho; oh++) {
        int64_t h0, h1;
        window(oh, k, s, p, h, &h0, &h1);
        for (int64_t ow = 0; ow < wo; ow++) {
            int64_t w0, w1;
            window(ow, k, s, p, w, &w0, &w1);
            float best = -INFINITY;
            int64_t idx = (h0 < h1 && w0 < w1) ? h0 * w + w0 : -1;
            if (k == 3 && h1 - h0 == 3 && w1 - w0 == 3) {
                const int64_t i = h0 * w + w0;
                const float *r0 = x + i, *r1 = r0 + w, *r2 = r1 + w;
                MAX_STEP(r0[0], i);
                MAX_STEP(r0[1], i + 1);
                MAX_STEP(r0[2], i + 2);
                MAX_STEP(r1[0], i + w);
                MAX_STEP(r1[1], i + w + 1);
                MAX_STEP(r1[2], i + w + 2);
                MAX_STEP(r2[0], i + 2 * w);
                MAX_STEP(r2[1], i + 2 * w + 1);
                MAX_STEP(r2[2], i + 2 * w + 2);
            } else {
                for (int64_t ih = h0; ih < h1; ih++)
                    for (int64_t iw = w0; iw < w1; iw++) MAX_STEP(x[ih * w + iw], ih * w + iw);
            }
            y[oh * wo + ow] = best;
            if (am) am[oh * wo + ow] = (int32_t)idx;
        }
    }
}

/* The common k = s = 2, p = 0 case. */
static void maxpool_plane_2x2(const float *x, float *y, int32_t *am, int64_t w, int64_t ho,
                              int64_t wo) {
    for (int64_t oh = 0; oh < ho; oh++) {
        const float *r0 = x + 2 * oh * w, *r1 = r0 + w;
        for (int64_t ow = 0; ow < wo; ow++) {
            const int64_t c = 2 * ow, i = 2 * oh * w + c;
            float best = -INFINITY;
            int64_t idx = i;
            MAX_STEP(r0[c], i);
            MAX_STEP(r0[c + 1], i + 1);
            MAX_STEP(r1[c], i + w);
            MAX_STEP(r1[c + 1], i + w + 1);
            y[oh * wo + ow] = best;
            if (am) am[oh * wo + ow] = (int32_t)idx;
        }
    }
}

void octav_maxpool2d_forward(const float *x, float *y, int32_t *argmax, int64_t n, int64_t c,
                             int64_t h, int64_t w, int k, int s, int p) {
    const int64_t ho = out_size(h, k, s, p), wo = out_size(w, k, s, p), planes = n * c;
    if (planes <= 0 || ho <= 0 || wo <= 0) return;
    const int fast = k == 2 && s == 2 && p == 0;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (planes * h * w >= PAR_MIN)
    for (int64_t q = 0; q < planes; q++) {
        const float *xp = x + q * h * w;
        float *yp = y + q * ho * wo;
        int32_t *ap = argmax ? argmax + q * ho * wo : NULL;
        if (fast)
            maxpool_plane_2x2(xp, yp, ap, w, ho, wo);
        else
            maxpool_plane(xp, yp, ap, h, w, ho, wo, k, s, p);
    }
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
