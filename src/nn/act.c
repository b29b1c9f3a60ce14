/* act.c -- elementwise activations (ReLU, ReLU6, exact GELU), inverted
 * dropout and the residual add, forward and backward.
 *
 * Every op is a pure function of the element (and, for dropout, of
 * (seed, index)), so chunking the range over threads cannot change a
 * result. NaN follows PyTorch in the forward passes (relu(NaN) = NaN,
 * relu(-0) = -0); the backward masks are nn.h's dy * (x > 0) and
 * dy * (0 < x < 6), so a NaN x gets 0 where PyTorch passes dy on. GELU is x Phi(x) with Phi from erfc (see below) in
 * double: the same function as PyTorch's x/2 (1 + erf(x/sqrt 2)), without
 * its cancellation for negative x. Left out: the tanh-approximated GELU, SiLU
 * and the other activations (added when a model needs them). */
#include <math.h>

#include "octav/nn.h"
#include "vexp.h"

#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define OCTAV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OCTAV_CLONES
#endif

#define PAR_MIN 65536     /* elements below which loops stay serial */
#define GELU_PAR_MIN 16384 /* GELU and dropout cost ~40 flops per element */
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

/* ---- GELU: y = x Phi(x), dy/dx = Phi(x) + x phi(x), with
 * phi(x) = exp(-x^2/2) / sqrt(2 pi) and, for t = |x|, z = t / sqrt 2,
 *   Q(t) = erfc(z) / 2 = exp(-z^2) erfcx(z) / 2,  Phi(x) = x < 0 ? Q : 1 - Q.
 * erfcx (the scaled complementary error function) by Weideman's rational
 * expansion (SIAM J. Numer. Anal. 31, 1994), N = 24:
 *   erfcx(z) = 2 p(Z) / (L + z)^2 + 1 / (sqrt(pi) (L + z)),  Z = (L - z) / (L + z),
 * p of degree 23 with the coefficients below, L = sqrt(N / sqrt 2); they
 * are Weideman's FFT of exp(-s^2) (L^2 + s^2) at s = L tan(k pi / 2M)
 * (M = 2N), made with numpy:
 *   M = 2*N; k = arange(-M+1, M); s = L*tan(k*pi/M/2)
 *   f = r_[0, exp(-s**2)*(L**2+s**2)]
 *   a = real(fft(fftshift(f)))/(2*M); a = a[1:N+1][::-1]
 * Relative error < 1e-10 on [0, 10.7] (checked against mpmath), so with
 * the double exp of vexp.h the float results are the correctly rounded
 * ones but for rare 1-ulp cases (test_nn_act measures it against libm's
 * erfc). |x| is clamped to 37 (exp(-37^2/2) = 3e-298 stays a normal
 * double; what the clamp changes is below 1e-290 and rounds away), and
 * Q = phi = 0 at |x| = inf, so gelu(inf) = inf, gelu(-inf) = -inf * 0 = NaN
 * and both derivatives NaN (inf * 0), as PyTorch. Written without
 * branches or libm calls, so the loops vectorise. */
#define WEID_L 4.119534287814235
#define INV_SQRT_PI 0.56418958354775628695

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

static ALWAYS_INLINE void gauss_cdf_pdf(float x, double *cdf, double *pdf) {
    static const double A[24] = {
        -1.513746165452782e-10,  4.9048204450498805e-09, 1.3310453392690463e-09,
        -3.0082823451622422e-08, -1.9122258938858813e-08, 1.8738343450541828e-07,
        2.5682641332714452e-07,  -1.0856475796444251e-06, -3.0388931843520575e-06,
        4.1394617243263088e-06,  3.0471066083016531e-05, 2.4331415462318416e-05,
        -0.00020748431511422339, -0.00078166429956238407, -0.00049364269012861222,
        0.0062150063629491459,   0.033723366855315955,   0.1083872348456672,
        0.26549639598807701,     0.53611395357291147,    0.92570871385886733,
        1.3948196733791187,      1.8562864992055399,     2.1978589365315417};
    union { float f; uint32_t u; } b = {x}, t;
    const uint32_t mag = b.u & 0x7fffffffu;
    const uint64_t inf = 0ull - (uint64_t)(mag == 0x7f800000u); /* |x| = inf         */
    t.u = mag > 0x42140000u ? 0x42140000u : mag;                  /* min(|x|, 37), NaN */
    const double z = (double)t.f * SQRT1_2;
    const double inv = 1.0 / (WEID_L + z), Z = (WEID_L - z) * inv;
    double p = A[0];
    p = p * Z + A[1];  p = p * Z + A[2];  p = p * Z + A[3];  p = p * Z + A[4];
    p = p * Z + A[5];  p = p * Z + A[6];  p = p * Z + A[7];  p = p * Z + A[8];
    p = p * Z + A[9];  p = p * Z + A[10]; p = p * Z + A[11]; p = p * Z + A[12];
    p = p * Z + A[13]; p = p * Z + A[14]; p = p * Z + A[15]; p = p * Z + A[16];
    p = p * Z + A[17]; p = p * Z + A[18]; p = p * Z + A[19]; p = p * Z + A[20];
    p = p * Z + A[21]; p = p * Z + A[22]; p = p * Z + A[23];
    union { double d; uint64_t u; } e, q, one_q, c;
    e.d = octav_vexp_d(-(z * z));
    q.d = 0.5 * e.d * ((2.0 * p * inv) * inv + INV_SQRT_PI * inv);
    e.u &= ~inf;
    q.u &= ~inf;
    one_q.d = 1.0 - q.d;
    const uint64_t neg = 0ull - (uint64_t)(b.u >> 31);
    c.u = (q.u & neg) | (one_q.u & ~neg);
    *cdf = c.d;
    *pdf = e.d * INV_SQRT_2PI;
}

/* exp(-x^2/2) exactly as gauss_cdf_pdf computes it (same clamp, same
 * zero at |x| = inf), so a backward from a saved Phi gives the same bits. */
static ALWAYS_INLINE double gauss_e(float x) {
    union { float f; uint32_t u; } b = {x}, t;
    const uint32_t mag = b.u & 0x7fffffffu;
    const uint64_t inf = 0ull - (uint64_t)(mag == 0x7f800000u);
    t.u = mag > 0x42140000u ? 0x42140000u : mag;
    const double z = (double)t.f * SQRT1_2;
    union { double d; uint64_t u; } e;
    e.d = octav_vexp_d(-(z * z));
    e.u &= ~inf;
    return e.d;
}

OCTAV_CLONES
static void gelu_save_run(const float *x, float *y, double *cdf, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        double c, pdf;
        gauss_cdf_pdf(x[i], &c, &pdf);
        y[i] = (float)((double)x[i] * c);
        cdf[i] = c;
    }
}

OCTAV_CLONES
static void gelu_back_saved_run(const float *x, const double *cdf, const float *dy, float *dx, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const double pdf = gauss_e(x[i]) * INV_SQRT_2PI;
        dx[i] = (float)((double)dy[i] * (cdf[i] + (double)x[i] * pdf));
    }
}

void octav_gelu_forward_save(const float *x, float *y, double *cdf, int64_t n) {
    FOR_CHUNKS(n, GELU_PAR_MIN, gelu_save_run(x + i0, y + i0, cdf + i0, len));
}

void octav_gelu_backward_saved(const float *x, const double *cdf, const float *dy, float *dx, int64_t n) {
    FOR_CHUNKS(n, GELU_PAR_MIN, gelu_back_saved_run(x + i0, cdf + i0, dy + i0, dx + i0, len));
}

OCTAV_CLONES
static void gelu_run(const float *x, float *y, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        double cdf, pdf;
        gauss_cdf_pdf(x[i], &cdf, &pdf);
        y[i] = (float)((double)x[i] * cdf);
    }
}

OCTAV_CLONES
static void gelu_back_run(const float *x, const float *dy, float *dx, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        double cdf, pdf;
        gauss_cdf_pdf(x[i], &cdf, &pdf);
        dx[i] = (float)((double)dy[i] * (cdf + (double)x[i] * pdf));
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
