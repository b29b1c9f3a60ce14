/* gradcheck.h -- finite-difference gradient checks for the engine's ops.
 *
 * For an op y = f(x) (float kernels) and a fixed random cotangent r, the
 * scalar L(x) = sum_i r_i y_i (summed in double) has gradient g = J^T r,
 * which is what the op's backward computes from dy = r. Along a random
 * direction v, the central difference
 *     (L(x + h v) - L(x - h v)) / (2 h)
 * must match <g, v> (a double dot product). Float kernels limit the
 * agreement to about 1e-3 relative, so GC_RTOL is loose by design; a wrong
 * backward is off by O(1).
 *
 *   static double my_loss(const float *x, void *ctx) { ... run forward,
 *       return gc_dot(r, y, ny); }
 *   gc_check("relu", my_loss, ctx, x, grad, n, 1e-3, &rng);
 */
#ifndef OCTAV_GRADCHECK_H
#define OCTAV_GRADCHECK_H
#include "test.h"

#define GC_RTOL 2e-2
#define GC_ATOL 1e-4

typedef double (*gc_loss_fn)(const float *x, void *ctx);

static inline double gc_dot(const float *a, const float *b, long long n) {
    double s = 0;
    for (long long i = 0; i < n; i++) s += (double)a[i] * (double)b[i];
    return s;
}

/* Checks grad (from backward) against central differences of loss at x
 * along 3 random directions; h is the step. Returns 1 when all agree. */
static inline int gc_check_(const char *file, int line, const char *what,
                            gc_loss_fn loss, void *ctx, const float *x,
                            const float *grad, long long n, double h, trng *r) {
    float *xp = (float *)malloc((size_t)n * sizeof *xp);
    float *v = (float *)malloc((size_t)n * sizeof *v);
    int ok = 1;
    for (int dir = 0; dir < 3 && xp && v; dir++) {
        for (long long i = 0; i < n; i++) v[i] = (float)trng_gauss(r);
        double analytic = gc_dot(grad, v, n);
        for (long long i = 0; i < n; i++) xp[i] = x[i] + (float)(h * v[i]);
        double lp = loss(xp, ctx);
        for (long long i = 0; i < n; i++) xp[i] = x[i] - (float)(h * v[i]);
        double lm = loss(xp, ctx);
        double numeric = (lp - lm) / (2 * h);
        if (!(fabs(analytic - numeric) <= GC_ATOL * sqrt((double)n) + GC_RTOL * fabs(numeric))) {
            fprintf(stderr, "  %s:%d: gradient check %s dir %d: analytic %.9g vs numeric %.9g\n",
                    file, line, what, dir, analytic, numeric);
            t_failed_checks_++;
            ok = 0;
            break;
        }
    }
    if (!xp || !v) { fprintf(stderr, "  %s:%d: out of memory\n", file, line); t_failed_checks_++; ok = 0; }
    free(xp);
    free(v);
    return ok;
}
#define GC_CHECK(what, loss, ctx, x, grad, n, h, rng) \
    gc_check_(__FILE__, __LINE__, what, loss, ctx, x, grad, n, h, rng)
#endif
