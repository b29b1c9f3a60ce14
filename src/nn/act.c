/* act.c -- elementwise activations (ReLU, ReLU6, exact GELU), inverted
 * dropout and the residual add, forward and backward.
 *
 * Every op is a pure function of the element (and, for dropout, of
 * (seed, index)), so chunking the range over threads cannot change a
 * result. NaN follows PyTorch in the forward passes (relu(NaN) = NaN,
 * relu(-0) = -0). GELU is evaluated as x/2 erfc(-x/sqrt 2) in double: the
 * same function as PyTorch's x/2 (1 + erf(x/sqrt 2)), without its
 * cancellation for negative x. Left out: the tanh-approximated GELU, SiLU
 * and the other activations (added when a model needs them). */
#include <math.h>

#include "octav/nn.h"

#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define OCTAV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OCTAV_CLONES
#endif

#define PAR_MIN 65536     /* elements below which loops stay serial */
#define GELU_PAR_MIN 4096 /* GELU costs an erfc (and an exp) per element */
#define CHUNK 16384       /* elements per parallel chunk */

#define SQRT1_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

/* Runs body over [i0, i0 + len) chunks of [0, n), in parallel when n >= min. */
#define FOR_CHUNKS(n, min, body)                                                               \
    do {                                                                                       \
        const int64_t nchunk_ = ((n) + CHUNK - 1) / CHUNK;                                     \
        const int par_ = (n) >= (min) && nchunk_ > 1;                                          \
        _Pragma("omp parallel for schedule(static) num_threads(octav_get_threads()) if (par_)") \
        for (int64_t k_ = 0; k_ < nchunk_; k_++) {                                             \
            const int64_t i0 = k_ * CHUNK;                                                     \
            const int64_t len = (n) - i0 < CHUNK ? (n) - i0 : CHUNK;                           \
            body;                                                                              \
        }                                                                                      \
    } while (0)

OCTAV_CLONES
static void relu_run(const float *x, float *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

OCTAV_CLONES
static void relu_back_run(const float *x, const float *dy, float *dx, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

OCTAV_CLONES
static void relu6_run(const float *x, float *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : (x[i] > 6.0f ? 6.0f : x[i]);
}

OCTAV_CLONES
static void relu6_back_run(const float *x, const float *dy, float *dx, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] = ((x[i] > 0.0f) & (x[i] < 6.0f)) ? dy[i] : 0.0f;
}

OCTAV_CLONES
static void add_run(const float *a, const float *b, float *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void octav_relu_forward(const float *x, float *y, int64_t n) {
    FOR_CHUNKS(n, PAR_MIN, relu_run(x + i0, y + i0, len));
}

void octav_relu_backward(const float *x, const float *dy, float *dx, int64_t n) {
    FOR_CHUNKS(n, PAR_MIN, relu_back_run(x + i0, dy + i0, dx + i0, len));
}

void octav_relu6_forward(const float *x, float *y, int64_t n) {
    FOR_CHUNKS(n, PAR_MIN, relu6_run(x + i0, y + i0, len));
}

void octav_relu6_backward(const float *x, const float *dy, float *dx, int64_t n) {
    FOR_CHUNKS(n, PAR_MIN, relu6_back_run(x + i0, dy + i0, dx + i0, len));
}

void octav_add_forward(const float *a, const float *b, float *y, int64_t n) {
    FOR_CHUNKS(n, PAR_MIN, add_run(a + i0, b + i0, y + i0, len));
}

/* ---- GELU: y = x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2;
 * dy/dx = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi). */
static void gelu_run(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = (double)x[i];
        y[i] = (float)(0.5 * v * erfc(-v * SQRT1_2));
    }
}

static void gelu_back_run(const float *x, const float *dy, float *dx, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        double v = (double)x[i];
        double d = 0.5 * erfc(-v * SQRT1_2) + v * INV_SQRT_2PI * exp(-0.5 * v * v);
        dx[i] = (float)((double)dy[i] * d);
    }
}

void octav_gelu_forward(const float *x, float *y, int64_t n) {
    FOR_CHUNKS(n, GELU_PAR_MIN, gelu_run(x + i0, y + i0, len));
}

void octav_gelu_backward(const float *x, const float *dy, float *dx, int64_t n) {
    FOR_CHUNKS(n, GELU_PAR_MIN, gelu_back_run(x + i0, dy + i0, dx + i0, len));
}

/* ---- dropout: keep i iff octav_hash_uniform(seed, i) >= p; y = x * f with
 * f = 1/(1-p) (rounded to float once) where kept, 0 where dropped -- a
 * product, as PyTorch's x * mask / (1-p): a dropped negative value gives -0,
 * a dropped Inf or NaN gives NaN. p = 0 keeps everything with f = 1, so
 * y == x exactly. */
static float dropout_scale(float p) { return (float)(1.0 / (1.0 - (double)p)); }

/* octav_hash_u64 (rng.c), inlined so that the loop pipelines; test_nn_act
 * checks every mask bit against octav_hash_uniform. */
static inline uint64_t mix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t hash_u64(uint64_t seed, uint64_t counter) {
    uint64_t x = seed ^ (counter * 0xD1B54A32D192ED03ull);
    uint64_t a = mix64(&x);
    return a ^ mix64(&x);
}

/* octav_hash_uniform(seed, i) = (h >> 11) 2^-53 >= p  <=>  (h >> 11) >= thr,
 * thr = ceil(p 2^53) (exact: p 2^53 only rescales the exponent). */
static uint64_t keep_threshold(double p) {
    if (!(p > 0.0)) return 0;
    if (p >= 1.0) return 9007199254740992ull; /* nothing is kept */
    return (uint64_t)ceil(p * 9007199254740992.0);
}

OCTAV_CLONES
static void dropout_run(const float *x, float *y, uint8_t *mask, int64_t i0, int64_t n, uint64_t thr,
                        float scale, uint64_t seed) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const int keep = (hash_u64(seed, (uint64_t)(i0 + i)) >> 11) >= thr;
        mask[i] = (uint8_t)keep;
        y[i] = x[i] * (keep ? scale : 0.0f);
    }
}

OCTAV_CLONES
static void dropout_back_run(const uint8_t *mask, const float *dy, float *dx, int64_t n, float scale) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * (mask[i] ? scale : 0.0f);
}

void octav_dropout_forward(const float *x, float *y, uint8_t *mask, int64_t n, float p,
                           uint64_t seed) {
    const float scale = dropout_scale(p);
    const uint64_t thr = keep_threshold((double)p);
    FOR_CHUNKS(n, GELU_PAR_MIN, dropout_run(x + i0, y + i0, mask + i0, i0, len, thr, scale, seed));
}

void octav_dropout_backward(const uint8_t *mask, const float *dy, float *dx, int64_t n, float p) {
    const float scale = dropout_scale(p);
    FOR_CHUNKS(n, PAR_MIN, dropout_back_run(mask + i0, dy + i0, dx + i0, len, scale));
}
