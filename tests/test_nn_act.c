/* test_nn_act.c -- ReLU, ReLU6, exact GELU, inverted dropout and the
 * residual add.
 *
 * References: PyTorch fixtures (F.gelu, F.relu6, F.relu with autograd, made
 * by tests/fixtures/gen_nn_ops.py; ReLU6 inputs include the kinks 0 and 6
 * exactly), finite-difference gradient checks away from the kinks, the
 * dropout rule of nn.h evaluated here (octav_hash_uniform(seed, i) >= p),
 * its keep fraction on 2^20 elements, and bitwise equality of runs with 1
 * and 2 threads. */
#include "test_nn_ops.h"

#define GELU_ATOL 1e-6     /* PyTorch's vectorised erf is good to ~1e-7 absolute */
#define GELU_RTOL 1e-6
#define GELU_EXACT_FRAC 0.999 /* GELU vs libm: fraction of bitwise-equal results (the rest 1 ulp) */
#define GC_H 1e-2          /* finite-difference step, smooth ops */
#define GC_H_KINK 1e-3     /* step for ReLU / ReLU6 (inputs >= 0.1 from a kink) */
#define KEEP_SIGMAS 6.0    /* keep fraction within 6 binomial standard deviations */

static void test_gelu_fixture(void) {
    const int64_t n = 512;
    float *x = FIX("gelu_x", n), *y_ref = FIX("gelu_y", n), *dy = FIX("gelu_dy", n),
          *dx_ref = FIX("gelu_dx", n);
    float *y = fbuf(n), *dx = fbuf(n);
    if (x && y_ref && dy && dx_ref) {
        octav_gelu_forward(x, y, n);
        CHECK_ARRAYS(y, y_ref, n, GELU_ATOL, GELU_RTOL);
        octav_gelu_backward(x, dy, dx, n);
        CHECK_ARRAYS(dx, dx_ref, n, GELU_ATOL, GELU_RTOL);
        /* dx may alias dy */
        memcpy(dx, dy, (size_t)n * sizeof *dx);
        octav_gelu_backward(x, dx, dx, n);
        CHECK_ARRAYS(dx, dx_ref, n, GELU_ATOL, GELU_RTOL);
    }
    free(x); free(y_ref); free(dy); free(dx_ref); free(y); free(dx);
}

/* GELU against libm's double erfc / exp: x/2 erfc(-x/sqrt 2) and
 * erfc(-x/sqrt 2)/2 + x exp(-x^2/2)/sqrt(2 pi), rounded to float. */
static float ulp_of(float v) {
    float a = fabsf(v);
    return nextafterf(a, INFINITY) - a;
}

static void test_gelu_reference(void) {
    const int64_t n = 400000;
    float *x = fbuf(n), *y = fbuf(n), *dy = fbuf(n), *dx = fbuf(n);
    trng r = {15, 0, 0};
    for (int64_t i = 0; i < n; i++) x[i] = (float)(-40.0 + 80.0 * (double)i / (double)(n - 1));
    static const float special[] = {0.0f, -0.0f, 15.0f, -15.0f, 15.000001f, -15.000001f, 1e-30f,
                                    -1e-30f, 1e-45f, 3.0e38f, -3.0e38f, 37.0f, -37.0f, 40.0f, -40.0f};
    for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) x[i] = special[i];
    fill_gauss(&r, dy, n, 1.0, 0.0);
    octav_gelu_forward(x, y, n);
    octav_gelu_backward(x, dy, dx, n);
    /* bitwise equality is counted for |x| <= 37 only: further out both
     * give +-0, and the sign of the reference's zero depends on where its
     * double exp / erfc underflow */
    int64_t bad_y = 0, bad_dx = 0, exact_y = 0, exact_dx = 0, first = -1, counted = 0;
    for (int64_t i = 0; i < n; i++) {
        const int count = fabsf(x[i]) <= 37.0f;
        counted += count;
        const double v = x[i];
        const double cdf = 0.5 * erfc(-v * 0.70710678118654752440);
        const float yr = (float)(v * cdf);
        const float dr = (float)((double)dy[i] * (cdf + v * 0.39894228040143267794 * exp(-0.5 * v * v)));
        if (memcmp(&y[i], &yr, 4) == 0) exact_y += count;
        else if (!(fabsf(y[i] - yr) <= ulp_of(yr))) { bad_y++; if (first < 0) first = i; }
        if (memcmp(&dx[i], &dr, 4) == 0) exact_dx += count;
        else if (!(fabsf(dx[i] - dr) <= ulp_of(dr))) { bad_dx++; if (first < 0) first = i; }
    }
    CHECK_MSG(bad_y == 0 && bad_dx == 0, "%lld y and %lld dx off by more than 1 ulp (first x = %.9g)",
              (long long)bad_y, (long long)bad_dx, first < 0 ? 0.0 : (double)x[first]);
    CHECK_MSG((double)exact_y >= GELU_EXACT_FRAC * (double)counted &&
                  (double)exact_dx >= GELU_EXACT_FRAC * (double)counted,
              "bitwise equal: y %lld, dx %lld of %lld", (long long)exact_y, (long long)exact_dx,
              (long long)counted);
    /* infinities and NaN as PyTorch: gelu(inf) = inf, gelu(-inf) = NaN (-inf * 0) */
    float xs[3] = {INFINITY, -INFINITY, NAN}, ys[3];
    octav_gelu_forward(xs, ys, 3);
    CHECK(isinf(ys[0]) && ys[0] > 0 && isnan(ys[1]) && isnan(ys[2]));
    free(x); free(y); free(dy); free(dx);
}

/* The saved-Phi pair gives the same bits as the plain pair, special
 * values included, with 1 and 2 threads. */
static void test_gelu_saved(void) {
    const long long n = 70001;
    float *x = fbuf(n), *y1 = fbuf(n), *y2 = fbuf(n), *dy = fbuf(n), *d1 = fbuf(n), *d2 = fbuf(n);
    double *cdf = (double *)calloc((size_t)n, sizeof *cdf);
    trng r = {.s = 41};
    fill_gauss(&r, x, n, 4.0, 0.0);
    fill_gauss(&r, dy, n, 1.0, 0.0);
    const float special[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 37.5f, -40.0f, 1e-30f, -1e-30f, 8.0f};
    for (int i = 0; i < (int)(sizeof special / sizeof *special); i++) x[i * 7] = special[i];
    for (int t = 1; t <= 2; t++) {
        octav_set_threads(t);
        octav_gelu_forward(x, y1, n);
        octav_gelu_backward(x, dy, d1, n);
        octav_gelu_forward_save(x, y2, cdf, n);
        octav_gelu_backward_saved(x, cdf, dy, d2, n);
        CHECK_SAME_BITS(y1, y2, (size_t)n * sizeof *y1);
        CHECK_SAME_BITS(d1, d2, (size_t)n * sizeof *d1);
    }
    octav_set_threads(1);
    free(x); free(y1); free(y2); free(dy); free(d1); free(d2); free(cdf);
}

static void test_relu_fixture(void) {
    const int64_t n = 256;
    float *x = FIX("relu6_x", n), *y6_ref = FIX("relu6_y", n), *dy = FIX("relu6_dy", n),
          *dx6_ref = FIX("relu6_dx", n), *y_ref = FIX("relu_y", n), *dx_ref = FIX("relu_dx", n);
    float *y = fbuf(n), *dx = fbuf(n);
    if (x && y6_ref && dy && dx6_ref && y_ref && dx_ref) {
        /* exact: these are selections, no arithmetic (bits, so -0 stays -0) */
        octav_relu6_forward(x, y, n);
        CHECK_SAME_BITS(y, y6_ref, n * 4);
        octav_relu6_backward(x, dy, dx, n);
        CHECK_SAME_BITS(dx, dx6_ref, n * 4);
        octav_relu_forward(x, y, n);
        CHECK_SAME_BITS(y, y_ref, n * 4);
        octav_relu_backward(x, dy, dx, n);
        CHECK_SAME_BITS(dx, dx_ref, n * 4);
        memcpy(dx, dy, (size_t)n * sizeof *dx);
        octav_relu_backward(x, dx, dx, n);
        CHECK_SAME_BITS(dx, dx_ref, n * 4);
    }
    /* NaN propagates in the forward pass, as in PyTorch */
    float xn[3] = {NAN, -1.0f, 7.0f}, yn[3];
    octav_relu_forward(xn, yn, 3);
    CHECK(isnan(yn[0]) && yn[1] == 0.0f && yn[2] == 7.0f);
    octav_relu6_forward(xn, yn, 3);
    CHECK(isnan(yn[0]) && yn[1] == 0.0f && yn[2] == 6.0f);
    free(x); free(y6_ref); free(dy); free(dx6_ref); free(y_ref); free(dx_ref); free(y); free(dx);
}

/* ---- gradient checks ---------------------------------------------------------------- */

typedef struct {
    void (*fwd)(const float *, float *, int64_t);
    const float *r;
    float *y;
    int64_t n;
} elt_ctx;

static double elt_loss(const float *x, void *p) {
    elt_ctx *k = p;
    k->fwd(x, k->y, k->n);
    return gc_dot(k->r, k->y, k->n);
}

static void elt_gradcheck(const char *what, void (*fwd)(const float *, float *, int64_t),
                          void (*bwd)(const float *, const float *, float *, int64_t),
                          const float *x, int64_t n, double h, trng *r) {
    float *dy = fbuf(n), *y = fbuf(n), *dx = fbuf(n);
    fill_gauss(r, dy, n, 1.0, 0.0);
    bwd(x, dy, dx, n);
    elt_ctx k = {fwd, dy, y, n};
    GC_CHECK(what, elt_loss, &k, x, dx, n, h, r);
    free(dy); free(y); free(dx);
}

static void test_gradcheck(void) {
    const int64_t n = 400;
    trng r = {11, 0, 0};
    float *x = fbuf(n);
    fill_gauss(&r, x, n, 2.0, 0.0);
    elt_gradcheck("gelu", octav_gelu_forward, octav_gelu_backward, x, n, GC_H, &r);
    /* away from the kinks: |x| >= 0.1 and |x - 6| >= 0.1 */
    for (int64_t i = 0; i < n; i++) {
        double v = -4.0 + 12.0 * trng_unif(&r);
        if (fabs(v) < 0.1) v = v < 0 ? -0.1 - fabs(v) : 0.1 + v;
        if (fabs(v - 6.0) < 0.1) v = v < 6.0 ? 5.9 - fabs(v - 6.0) : 6.1 + (v - 6.0);
        x[i] = (float)v;
    }
    elt_gradcheck("relu", octav_relu_forward, octav_relu_backward, x, n, GC_H_KINK, &r);
    elt_gradcheck("relu6", octav_relu6_forward, octav_relu6_backward, x, n, GC_H_KINK, &r);
    free(x);
}

typedef struct {
    const float *r;
    float *y;
    uint8_t *mask;
    int64_t n;
    float p;
    uint64_t seed;
} drop_ctx;

static double drop_loss(const float *x, void *pv) {
    drop_ctx *k = pv;
    octav_dropout_forward(x, k->y, k->mask, k->n, k->p, k->seed);
    return gc_dot(k->r, k->y, k->n);
}

static void test_dropout_gradcheck(void) {
    const int64_t n = 300;
    trng r = {12, 0, 0};
    float *x = fbuf(n), *dy = fbuf(n), *y = fbuf(n), *dx = fbuf(n);
    uint8_t *mask = calloc((size_t)n, 1);
    fill_gauss(&r, x, n, 1.0, 0.0);
    fill_gauss(&r, dy, n, 1.0, 0.0);
    octav_dropout_forward(x, y, mask, n, 0.3f, 42);
    octav_dropout_backward(mask, dy, dx, n, 0.3f);
    drop_ctx k = {dy, y, mask, n, 0.3f, 42};
    GC_CHECK("dropout", drop_loss, &k, x, dx, n, GC_H, &r);
    free(x); free(dy); free(y); free(dx); free(mask);
}

/* ---- dropout ------------------------------------------------------------------------- */

static void test_dropout(void) {
    const int64_t n = 1 << 20;
    const float p = 0.3f;
    const uint64_t seed = 0x5eed;
    trng r = {13, 0, 0};
    float *x = fbuf(n), *y1 = fbuf(n), *y2 = fbuf(n), *dy = fbuf(n), *dx = fbuf(n);
    uint8_t *m1 = calloc((size_t)n, 1), *m2 = calloc((size_t)n, 1);
    fill_gauss(&r, x, n, 1.0, 0.0);
    fill_gauss(&r, dy, n, 1.0, 0.0);
    octav_set_threads(1);
    octav_dropout_forward(x, y1, m1, n, p, seed);
    octav_set_threads(2);
    octav_dropout_forward(x, y2, m2, n, p, seed);
    octav_set_threads(0);
    CHECK_SAME_BITS(y1, y2, n * 4);
    CHECK_SAME_BITS(m1, m2, n);
    /* the mask is a function of (seed, index) only, and y follows it */
    const float scale = (float)(1.0 / (1.0 - (double)p));
    int64_t kept = 0, bad_mask = -1, bad_y = -1;
    for (int64_t i = 0; i < n; i++) {
        int keep = octav_hash_uniform(seed, (uint64_t)i) >= (double)p;
        kept += keep;
        if (m1[i] != keep && bad_mask < 0) bad_mask = i;
        float want = x[i] * (keep ? scale : 0.0f); /* a product: -0 where a negative x is dropped */
        if (memcmp(&y1[i], &want, 4) != 0 && bad_y < 0) bad_y = i;
    }
    CHECK_MSG(bad_mask < 0, "mask differs from the hash rule at %lld", (long long)bad_mask);
    CHECK_MSG(bad_y < 0, "y differs at %lld", (long long)bad_y);
    double frac = (double)kept / (double)n, sd = sqrt((double)p * (1.0 - p) / (double)n);
    CHECK_MSG(fabs(frac - (1.0 - p)) <= KEEP_SIGMAS * sd, "keep fraction %.6f, expected %.6f", frac, 1.0 - p);
    /* a prefix of the tensor gets the same mask: index, not position in a chunk */
    uint8_t *m3 = calloc(1000, 1);
    octav_dropout_forward(x + 0, y2, m3, 1000, p, seed);
    CHECK_SAME_BITS(m3, m1, 1000);
    /* another seed gives another mask */
    octav_dropout_forward(x, y2, m2, n, p, seed + 1);
    CHECK(memcmp(m1, m2, (size_t)n) != 0);
    /* backward: dy * mask / (1 - p) */
    octav_dropout_backward(m1, dy, dx, n, p);
    int64_t bad_dx = -1;
    for (int64_t i = 0; i < n && bad_dx < 0; i++) {
        float want = dy[i] * (m1[i] ? scale : 0.0f);
        if (memcmp(&dx[i], &want, 4) != 0) bad_dx = i;
    }
    CHECK_MSG(bad_dx < 0, "dx differs at %lld", (long long)bad_dx);
    /* p = 0 is the identity */
    octav_dropout_forward(x, y2, m2, n, 0.0f, seed);
    CHECK_SAME_BITS(y2, x, n * 4);
    int64_t all = 0;
    for (int64_t i = 0; i < n; i++) all += m2[i];
    CHECK_EQ_INT(all, n);
    octav_dropout_backward(m2, dy, dx, n, 0.0f);
    CHECK_SAME_BITS(dx, dy, n * 4);
    free(x); free(y1); free(y2); free(dy); free(dx); free(m1); free(m2); free(m3);
}

static void test_add_and_threads(void) {
    const int64_t n = 300000;
    trng r = {14, 0, 0};
    float *a = fbuf(n), *b = fbuf(n), *y = fbuf(n), *y1 = fbuf(n), *y2 = fbuf(n);
    fill_gauss(&r, a, n, 3.0, 0.0);
    fill_gauss(&r, b, n, 1.0, 0.0);
    octav_add_forward(a, b, y, n);
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i++)
        if (y[i] != a[i] + b[i]) bad = i;
    CHECK_MSG(bad < 0, "add differs at %lld", (long long)bad);
    octav_set_threads(1);
    octav_gelu_forward(a, y1, n);
    octav_set_threads(2);
    octav_gelu_forward(a, y2, n);
    CHECK_SAME_BITS(y1, y2, n * 4);
    octav_set_threads(1);
    octav_gelu_backward(a, b, y1, n);
    octav_set_threads(2);
    octav_gelu_backward(a, b, y2, n);
    CHECK_SAME_BITS(y1, y2, n * 4);
    octav_set_threads(0);
    free(a); free(b); free(y); free(y1); free(y2);
}

int main(void) {
    RUN(test_gelu_fixture);
    RUN(test_gelu_reference);
    RUN(test_gelu_saved);
    RUN(test_relu_fixture);
    RUN(test_gradcheck);
    RUN(test_dropout_gradcheck);
    RUN(test_dropout);
    RUN(test_add_and_threads);
    return TEST_SUMMARY();
}
