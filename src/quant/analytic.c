/* analytic.c -- OCTAV's fixed point and ACIQ's clipping ratio under exact
 * expectations for unit Laplace and unit Gaussian variables. Both solve
 *   s * den(s) = E[|X| ; |X| > s]
 * with den = c * P(0 < |X| <= s) + P(|X| > s)   (OCTAV, paper §2-3)
 *  or  den = c + P(|X| > s)                      (ACIQ, Banner et al.)
 * by bisection: s*den(s) - E[..] is increasing in s for both. */
#include "internal.h"

typedef struct {
    double tail_p;    /* P(|X| > s)         */
    double tail_mean; /* E[|X| ; |X| > s]   */
} tail_stats;

static tail_stats laplace_tail(double s) {
    double e = exp(-s);
    return (tail_stats){e, (s + 1.0) * e};
}

static tail_stats gauss_tail(double s) {
    const double phi = exp(-0.5 * s * s) / sqrt(2.0 * 3.14159265358979323846);
    return (tail_stats){erfc(s / sqrt(2.0)), 2.0 * phi};
}

static double solve_ratio(tail_stats (*tail)(double), double c, int aciq) {
    double lo = 1e-9, hi = 200.0;
    for (int i = 0; i < 200; i++) {
        double s = 0.5 * (lo + hi);
        tail_stats t = tail(s);
        double den = aciq ? c + t.tail_p : c * (1.0 - t.tail_p) + t.tail_p;
        if (s * den - t.tail_mean > 0) hi = s;
        else lo = s;
    }
    return 0.5 * (lo + hi);
}

double octav_fixed_point_laplace(octav_grid g) { return solve_ratio(laplace_tail, octav_grid_noise_c(g), 0); }
double octav_fixed_point_gauss(octav_grid g) { return solve_ratio(gauss_tail, octav_grid_noise_c(g), 0); }
double octav_aciq_ratio_laplace(octav_grid g) { return solve_ratio(laplace_tail, octav_grid_noise_c(g), 1); }
double octav_aciq_ratio_gauss(octav_grid g) { return solve_ratio(gauss_tail, octav_grid_noise_c(g), 1); }
