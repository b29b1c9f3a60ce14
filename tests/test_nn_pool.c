/* test_nn_pool.c -- max pooling (argmax), average pooling and global
 * average pooling over NCHW.
 *
 * References: PyTorch fixtures (F.max_pool2d with return_indices, including
 * ties and a plane of -inf; F.avg_pool2d with count_include_pad; adaptive
 * average pooling to 1x1; autograd backward), made by
 * tests/fixtures/gen_nn_ops.py; finite-difference gradient checks (max pool
 * on distinct values, so that no argmax moves within the step); bitwise
 * equality of runs with 1 and 2 threads. */
#include "test_nn_ops.h"

#define POOL_ATOL 1e-6 /* avg / gap: a few float roundings of order-1 values */
#define POOL_RTOL 1e-6
#define GC_H 1e-2      /* finite-difference step (avg, gap: linear)  */
#define GC_H_MAX 1e-3  /* max pool: values are >= 0.05 apart         */

static int64_t osz(int64_t h, int k, int s, int p) { return (h + 2 * p - k) / s + 1; }

static void maxpool_fixture(const char *pre, int64_t n, int64_t c, int64_t h, int64_t w, int k,
                            int s, int p) {
    char nm[64];
    const int64_t ho = osz(h, k, s, p), wo = osz(w, k, s, p), ni = n * c * h * w, no = n * c * ho * wo;
#define L(name, cnt) (snprintf(nm, sizeof nm, "%s%s", pre, name), FIX(nm, cnt))
    float *x = L("x", ni), *y_ref = L("y", no), *dy = L("dy", no), *dx_ref = L("dx", ni);
    snprintf(nm, sizeof nm, "%sargmax", pre);
    int32_t *am_ref = FIX_INTS(nm, no);
#undef L
    float *y = fbuf(no), *dx = fbuf(ni);
    int32_t *am = ibuf(no);
    if (x && y_ref && dy && dx_ref && am_ref) {
        octav_maxpool2d_forward(x, y, am, n, c, h, w, k, s, p);
        CHECK_SAME_BITS(y, y_ref, no * 4);
        int64_t bad = -1;
        for (int64_t i = 0; i < no && bad < 0; i++)
            if (am[i] != am_ref[i]) bad = i;
        CHECK_MSG(bad < 0, "argmax differs at %lld: %d vs %d", (long long)bad, bad < 0 ? 0 : am[bad],
                  bad < 0 ? 0 : am_ref[bad]);
        octav_maxpool2d_backward(am, dy, dx, n, c, h, w, k, s, p);
        CHECK_ARRAYS(dx, dx_ref, ni, POOL_ATOL, POOL_RTOL);
        /* argmax may be NULL in forward */
        float *y2 = fbuf(no);
        octav_maxpool2d_forward(x, y2, NULL, n, c, h, w, k, s, p);
        CHECK_SAME_BITS(y2, y, no * 4);
        free(y2);
    }
    free(x); free(y_ref); free(dy); free(dx_ref); free(am_ref); free(y); free(dx); free(am);
}

static void test_maxpool_fixture(void) {
    maxpool_fixture("mpa_", 2, 3, 7, 7, 3, 2, 1);
    maxpool_fixture("mpb_", 2, 3, 7, 7, 2, 2, 0);
}

static void avgpool_fixture(const char *pre, int64_t n, int64_t c, int64_t h, int64_t w, int k,
                            int s, int p) {
    char nm[64];
    const int64_t ho = osz(h, k, s, p), wo = osz(w, k, s, p), ni = n * c * h * w, no = n * c * ho * wo;
#define L(name, cnt) (snprintf(nm, sizeof nm, "%s%s", pre, name), FIX(nm, cnt))
    float *x = L("x", ni), *y_ref = L("y", no), *dy = L("dy", no), *dx_ref = L("dx", ni);
#undef L
    float *y = fbuf(no), *dx = fbuf(ni);
    if (x && y_ref && dy && dx_ref) {
        octav_avgpool2d_forward(x, y, n, c, h, w, k, s, p);
        CHECK_ARRAYS(y, y_ref, no, POOL_ATOL, POOL_RTOL);
        octav_avgpool2d_backward(dy, dx, n, c, h, w, k, s, p);
        CHECK_ARRAYS(dx, dx_ref, ni, POOL_ATOL, POOL_RTOL);
    }
    free(x); free(y_ref); free(dy); free(dx_ref); free(y); free(dx);
}

static void test_avgpool_fixture(void) {
    avgpool_fixture("apa_", 2, 3, 7, 7, 2, 2, 0);
    avgpool_fixture("apb_", 2, 3, 6, 6, 3, 1, 1);
}

static void test_gap_fixture(void) {
    const int64_t n = 2, c = 3, hw = 25;
    float *x = FIX("gap_x", n * c * hw), *y_ref = FIX("gap_y", n * c), *dy = FIX("gap_dy", n * c),
          *dx_ref = FIX("gap_dx", n * c * hw);
    float *y = fbuf(n * c), *dx = fbuf(n * c * hw);
    if (x && y_ref && dy && dx_ref) {
        octav_gap_forward(x, y, n, c, hw);
        CHECK_ARRAYS(y, y_ref, n * c, POOL_ATOL, POOL_RTOL);
        octav_gap_backward(dy, dx, n, c, hw);
        CHECK_ARRAYS(dx, dx_ref, n * c * hw, POOL_ATOL, POOL_RTOL);
    }
    free(x); free(y_ref); free(dy); free(dx_ref); free(y); free(dx);
}

/* ---- gradient checks ------------------------------------------------------------------ */

typedef struct {
    int kind; /* 0 max, 1 avg, 2 gap */
    int64_t n, c, h, w;
    int k, s, p;
    const float *r;
    float *y;
    int64_t ny;
} pool_ctx;

static double pool_loss(const float *x, void *pv) {
    pool_ctx *q = pv;
    if (q->kind == 0)
        octav_maxpool2d_forward(x, q->y, NULL, q->n, q->c, q->h, q->w, q->k, q->s, q->p);
    else if (q->kind == 1)
        octav_avgpool2d_forward(x, q->y, q->n, q->c, q->h, q->w, q->k, q->s, q->p);
    else
        octav_gap_forward(x, q->y, q->n, q->c, q->h * q->w);
    return gc_dot(q->r, q->y, q->ny);
}

static void pool_gradcheck(int kind, int64_t n, int64_t c, int64_t h, int64_t w, int k, int s, int p) {
    static const char *names[] = {"maxpool", "avgpool", "gap"};
    const int64_t ni = n * c * h * w;
    const int64_t no = kind == 2 ? n * c : n * c * osz(h, k, s, p) * osz(w, k, s, p);
    trng r = {(uint64_t)(ni * 3 + kind * 7 + k), 0, 0};
    float *x = fbuf(ni), *dy = fbuf(no), *y = fbuf(no), *dx = fbuf(ni);
    int32_t *am = ibuf(no);
    if (kind == 0) {
        /* distinct values 0.05 apart, shuffled */
        for (int64_t i = 0; i < ni; i++) x[i] = (float)(0.05 * (double)(i - ni / 2));
        for (int64_t i = ni - 1; i > 0; i--) {
            int64_t j = (int64_t)(trng_u64(&r) % (uint64_t)(i + 1));
            float t = x[i]; x[i] = x[j]; x[j] = t;
        }
    } else {
        fill_gauss(&r, x, ni, 1.0, 0.0);
    }
    fill_gauss(&r, dy, no, 1.0, 0.0);
    if (kind == 0) {
        octav_maxpool2d_forward(x, y, am, n, c, h, w, k, s, p);
        octav_maxpool2d_backward(am, dy, dx, n, c, h, w, k, s, p);
    } else if (kind == 1) {
        octav_avgpool2d_backward(dy, dx, n, c, h, w, k, s, p);
    } else {
        octav_gap_backward(dy, dx, n, c, h * w);
    }
    pool_ctx q = {kind, n, c, h, w, k, s, p, dy, y, no};
    GC_CHECK(names[kind], pool_loss, &q, x, dx, ni, kind == 0 ? GC_H_MAX : GC_H, &r);
    free(x); free(dy); free(y); free(dx); free(am);
}

static void test_gradcheck(void) {
    pool_gradcheck(0, 2, 3, 7, 7, 3, 2, 1);
    pool_gradcheck(0, 2, 2, 8, 6, 2, 2, 0);
    pool_gradcheck(0, 1, 2, 5, 5, 3, 1, 1);
    pool_gradcheck(1, 2, 3, 7, 7, 2, 2, 0);
    pool_gradcheck(1, 2, 3, 6, 6, 3, 1, 1);
    pool_gradcheck(1, 1, 2, 9, 9, 3, 2, 1);
    pool_gradcheck(2, 3, 4, 5, 5, 0, 0, 0);
}

/* ---- the unrolled paths (2x2 / s2, interior 3x3, avg 2x2) vs the plain rule ---- */

/* PyTorch's scan: row by row, replace when greater or NaN; sum from 0. */
static void naive_pools(const float *x, float *ymax, int32_t *am, float *yavg, int64_t h, int64_t w,
                        int k, int s, int p) {
    const int64_t ho = osz(h, k, s, p), wo = osz(w, k, s, p);
    for (int64_t oh = 0; oh < ho; oh++)
        for (int64_t ow = 0; ow < wo; ow++) {
            float best = -INFINITY, sum = 0.0f;
            int32_t idx = -1;
            for (int64_t ih = oh * s - p; ih < oh * s - p + k; ih++)
                for (int64_t iw = ow * s - p; iw < ow * s - p + k; iw++) {
                    if (ih < 0 || ih >= h || iw < 0 || iw >= w) continue;
                    float v = x[ih * w + iw];
                    if (idx < 0) idx = (int32_t)(ih * w + iw);
                    if (v > best || isnan(v)) { best = v; idx = (int32_t)(ih * w + iw); }
                    sum += v;
                }
            ymax[oh * wo + ow] = best;
            am[oh * wo + ow] = idx;
            yavg[oh * wo + ow] = sum / (float)(k * k);
        }
}

static void test_pool_vs_naive(void) {
    static const int cfg[5][3] = {{2, 2, 0}, {3, 2, 1}, {3, 1, 1}, {2, 1, 0}, {3, 3, 0}};
    static const int64_t sizes[4][2] = {{9, 9}, {8, 11}, {5, 4}, {13, 70}};
    trng r = {77, 0, 0};
    for (int si = 0; si < 4; si++)
        for (int ci = 0; ci < 5; ci++) {
            const int64_t n = 2, c = 3, h = sizes[si][0], w = sizes[si][1], ni = n * c * h * w;
            const int k = cfg[ci][0], s = cfg[ci][1], p = cfg[ci][2];
            const int64_t hw_o = osz(h, k, s, p) * osz(w, k, s, p), no = n * c * hw_o;
            float *x = fbuf(ni), *y = fbuf(no), *ya = fbuf(no), *ym_ref = fbuf(no), *ya_ref = fbuf(no);
            int32_t *am = ibuf(no), *am_ref = ibuf(no);
            for (int64_t i = 0; i < ni; i++) {
                double u = trng_unif(&r);
                /* many ties, some NaNs, -inf and signed zeros */
                x[i] = u < 0.03 ? NAN : u < 0.05 ? -INFINITY : u < 0.1 ? -0.0f : (float)(((int)(trng_unif(&r) * 5) - 2) * 0.3 + 0.1);
            }
            for (int64_t q = 0; q < n * c; q++)
                naive_pools(x + q * h * w, ym_ref + q * hw_o, am_ref + q * hw_o, ya_ref + q * hw_o, h, w, k, s, p);
            octav_maxpool2d_forward(x, y, am, n, c, h, w, k, s, p);
            octav_avgpool2d_forward(x, ya, n, c, h, w, k, s, p);
            CHECK_SAME_BITS(y, ym_ref, no * 4);
            CHECK_SAME_BITS(am, am_ref, no * 4);
            CHECK_SAME_BITS(ya, ya_ref, no * 4);
            octav_maxpool2d_forward(x, ya, NULL, n, c, h, w, k, s, p); /* without argmax */
            CHECK_SAME_BITS(ya, ym_ref, no * 4);
            /* avg backward: 0 + dy/(k k) summed over windows in output order */
            float *g = fbuf(no), *dx = fbuf(ni), *dx_ref = fbuf(ni);
            fill_gauss(&r, g, no, 1.0, 0.0);
            g[0] = -0.0f;
            octav_avgpool2d_backward(g, dx, n, c, h, w, k, s, p);
            for (int64_t q = 0; q < n * c; q++)
                for (int64_t oh = 0; oh < osz(h, k, s, p); oh++)
                    for (int64_t ow = 0; ow < osz(w, k, s, p); ow++)
                        for (int64_t ih = oh * s - p; ih < oh * s - p + k; ih++)
                            for (int64_t iw = ow * s - p; iw < ow * s - p + k; iw++)
                                if (ih >= 0 && ih < h && iw >= 0 && iw < w)
                                    dx_ref[q * h * w + ih * w + iw] +=
                                        g[q * hw_o + oh * osz(w, k, s, p) + ow] / (float)(k * k);
            CHECK_SAME_BITS(dx, dx_ref, ni * 4);
            free(x); free(y); free(ya); free(ym_ref); free(ya_ref); free(am); free(am_ref);
            free(g); free(dx); free(dx_ref);
        }
}

/* An all-padding window (p > k/2, which PyTorch rejects) gives -inf, argmax
 * -1 and no gradient. */
static void test_maxpool_empty_window(void) {
    float x[4] = {1, 2, 3, 4}, y[9], dy[9], dx[4];
    int32_t am[9];
    /* h = w = 2, k = 2, s = 2, p = 2: h_out = (2 + 4 - 2) / 2 + 1 = 3 */
    octav_maxpool2d_forward(x, y, am, 1, 1, 2, 2, 2, 2, 2);
    CHECK(isinf(y[0]) && y[0] < 0 && am[0] == -1);
    CHECK(y[4] == 4.0f && am[4] == 3);
    for (int i = 0; i < 9; i++) dy[i] = 1.0f;
    octav_maxpool2d_backward(am, dy, dx, 1, 1, 2, 2, 2, 2, 2);
    CHECK(dx[0] == 0.0f && dx[1] == 0.0f && dx[2] == 0.0f && dx[3] == 1.0f);
}

static void test_threads(void) {
    const int64_t n = 8, c = 16, h = 28, w = 28, ni = n * c * h * w;
    trng r = {21, 0, 0};
    float *x = fbuf(ni), *g = fbuf(ni), *y[2], *dx[2];
    int32_t *am[2];
    fill_gauss(&r, x, ni, 1.0, 0.0);
    fill_gauss(&r, g, ni, 1.0, 0.0);
    for (int t = 0; t < 2; t++) {
        y[t] = fbuf(ni); dx[t] = fbuf(ni); am[t] = ibuf(ni);
    }
    static const int cfg[3][3] = {{3, 2, 1}, {2, 2, 0}, {3, 1, 1}};
    for (int i = 0; i < 3; i++) {
        const int k = cfg[i][0], s = cfg[i][1], p = cfg[i][2];
        const int64_t no = n * c * osz(h, k, s, p) * osz(w, k, s, p);
        for (int t = 0; t < 2; t++) {
            octav_set_threads(t + 1);
            octav_maxpool2d_forward(x, y[t], am[t], n, c, h, w, k, s, p);
            octav_maxpool2d_backward(am[t], g, dx[t], n, c, h, w, k, s, p);
        }
        CHECK_SAME_BITS(y[0], y[1], no * 4);
        CHECK_SAME_BITS(am[0], am[1], no * 4);
        CHECK_SAME_BITS(dx[0], dx[1], ni * 4);
        for (int t = 0; t < 2; t++) {
            octav_set_threads(t + 1);
            octav_avgpool2d_forward(x, y[t], n, c, h, w, k, s, p);
            octav_avgpool2d_backward(g, dx[t], n, c, h, w, k, s, p);
        }
        CHECK_SAME_BITS(y[0], y[1], no * 4);
        CHECK_SAME_BITS(dx[0], dx[1], ni * 4);
    }
    for (int t = 0; t < 2; t++) {
        octav_set_threads(t + 1);
        octav_gap_forward(x, y[t], n, c, h * w);
        octav_gap_backward(g, dx[t], n, c, h * w);
    }
    octav_set_threads(0);
    CHECK_SAME_BITS(y[0], y[1], n * c * 4);
    CHECK_SAME_BITS(dx[0], dx[1], ni * 4);
    for (int t = 0; t < 2; t++) { free(y[t]); free(dx[t]); free(am[t]); }
    free(x); free(g);
}

int main(void) {
    RUN(test_maxpool_fixture);
    RUN(test_avgpool_fixture);
    RUN(test_gap_fixture);
    RUN(test_gradcheck);
    RUN(test_pool_vs_naive);
    RUN(test_maxpool_empty_window);
    RUN(test_threads);
    return TEST_SUMMARY();
}
