/* test.h -- the tiny test harness of octav's unit tests.
 * Each test file defines test functions and calls RUN(fn) from main; the
 * binary prints "N passed, N failed" and exits non-zero on any failure.
 * Checks print the file, line, and for arrays the max error and first bad
 * index. Tolerances are named at the call site (atol + rtol * |ref|). */
#ifndef OCTAV_TEST_H
#define OCTAV_TEST_H
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

static int t_failed_checks_;
static int t_passed_, t_failed_;

#define CHECK(cond) do { if (!(cond)) { \
    fprintf(stderr, "  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
    t_failed_checks_++; } } while (0)
#define CHECK_MSG(cond, ...) do { if (!(cond)) { \
    fprintf(stderr, "  %s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); t_failed_checks_++; } } while (0)
#define CHECK_EQ_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
    if (a_ != b_) { fprintf(stderr, "  %s:%d: %s == %s failed: %lld vs %lld\n", \
    __FILE__, __LINE__, #a, #b, a_, b_); t_failed_checks_++; } } while (0)
#define CHECK_NEAR(a, b, atol, rtol) do { double a_ = (double)(a), b_ = (double)(b); \
    if (!(fabs(a_ - b_) <= (atol) + (rtol) * fabs(b_))) { \
    fprintf(stderr, "  %s:%d: %s ~ %s failed: %.17g vs %.17g (diff %.3g)\n", \
    __FILE__, __LINE__, #a, #b, a_, b_, fabs(a_ - b_)); t_failed_checks_++; } } while (0)

/* Compares arrays; reports max abs error and first bad index. */
static inline int check_arrays_(const char *file, int line, const char *what,
                                const float *got, const float *ref, long long n,
                                double atol, double rtol) {
    long long bad = -1, nbad = 0; double maxerr = 0;
    for (long long i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)ref[i]);
        int same_nan = isnan(got[i]) && isnan(ref[i]);
        if (e > maxerr) maxerr = e;
        if (!same_nan && !(e <= atol + rtol * fabs((double)ref[i]))) { if (bad < 0) bad = i; nbad++; }
    }
    if (bad >= 0) {
        fprintf(stderr, "  %s:%d: %s: %lld of %lld differ, max err %.3g, first at %lld: %.9g vs %.9g\n",
                file, line, what, nbad, n, maxerr, bad, got[bad], ref[bad]);
        t_failed_checks_++;
        return 0;
    }
    return 1;
}
#define CHECK_ARRAYS(got, ref, n, atol, rtol) \
    check_arrays_(__FILE__, __LINE__, #got " vs " #ref, got, ref, n, atol, rtol)

#define RUN(fn) do { int before_ = t_failed_checks_; fn(); \
    if (t_failed_checks_ == before_) { t_passed_++; fprintf(stderr, "ok   %s\n", #fn); } \
    else { t_failed_++; fprintf(stderr, "FAIL %s\n", #fn); } } while (0)
#define TEST_SUMMARY() (printf("%d passed, %d failed\n", t_passed_, t_failed_), \
    (t_failed_ ? 1 : 0))

/* Deterministic generator for test data (splitmix64 + Box-Muller). */
typedef struct { uint64_t s; int have; double spare; } trng;
static inline uint64_t trng_u64(trng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double trng_unif(trng *r) { return ((trng_u64(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
static inline double trng_gauss(trng *r) {
    if (r->have) { r->have = 0; return r->spare; }
    double u = trng_unif(r), v = trng_unif(r);
    double m = sqrt(-2.0 * log(u));
    r->spare = m * sin(6.283185307179586 * v); r->have = 1;
    return m * cos(6.283185307179586 * v);
}
static inline double trng_laplace(trng *r) {
    double u = trng_unif(r) - 0.5;
    return u < 0 ? log(1.0 + 2.0 * u) : -log(1.0 - 2.0 * u);
}
#endif
