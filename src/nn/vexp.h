/* vexp.h -- exp() without a libm call, so that loops over it vectorise
 * (softmax, cross-entropy, GELU).
 *
 * octav_vexp_d: x = n ln2 + r with n = round(x / ln2), |r| <= ln2/2,
 * exp(r) by its Taylor polynomial of degree 11 (truncation < 1e-14
 * relative), times 2^n built in the exponent bits: within about 1e-14
 * relative of exp(x) for x in [-708, 709] (the caller keeps x there; NaN
 * gives NaN). octav_vexpf: the float version, computed through it and
 * rounded once, so nearly always the correctly rounded float; inputs are
 * clamped to [-104, 89] first, which still gives 0 below -103.97 and +inf
 * above 88.73; NaN stays NaN.
 * No branches, no integer conversion of a possible NaN. Loops over these
 * need `#pragma omp simd` to vectorise at -O2. */
#ifndef OCTAV_NN_VEXP_H
#define OCTAV_NN_VEXP_H
#include <stdint.h>

static inline double octav_vexp_d(double xd) {
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52: adding it rounds to an integer */
    union { double d; uint64_t u; } k, scale;
    k.d = xd * 1.4426950408889634074 + shifter;
    const double n = k.d - shifter;
    const double r = xd - n * 0.69314718055994530942;
    double p = 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    /* the low bits of k.u hold n + 2^51; 2^n has exponent field n + 1023 */
    scale.u = (k.u - 0x4338000000000000ull + 1023u) << 52;
    return p * scale.d;
}

static inline float octav_vexpf(float x) {
    /* the clamp on the bits (float compares would stop the vectoriser:
     * with -ftrapping-math it will not if-convert them) */
    union { float f; uint32_t u; } b = {x};
    const uint32_t mag = b.u & 0x7fffffffu, neg = b.u >> 31, num = mag <= 0x7f800000u;
    const uint32_t lo = 0u - (neg & num & (mag > 0x42d00000u));        /* x < -104 */
    const uint32_t hi = 0u - ((neg ^ 1u) & num & (mag > 0x42b20000u)); /* x > 89   */
    b.u = (b.u & ~lo) | (0xc2d00000u & lo);
    b.u = (b.u & ~hi) | (0x42b20000u & hi);
    return (float)octav_vexp_d((double)b.f);
}
#endif
