/* recursion.h -- OCTAV's recursion s <- F(s), one step at a time: the single
 * definition of its control (fixed point, two-cycle, iteration cap), shared
 * by the reference and fast solvers (octav.c) and the scalar lane kernel
 * (kernels.c). The AVX2 / AVX-512 lane kernels mirror it with vector masks
 * and are tested bit for bit against the scalar one. */
#ifndef OCTAV_RECURSION_H
#define OCTAV_RECURSION_H

#include <stdint.h>

typedef struct {
    double sum;   /* sum of magnitudes > s */
    int64_t n1;   /* count of magnitudes > s */
} step_stats;

typedef double (*min_above_fn)(void *ctx, double s); /* smallest magnitude > s */

/* Iterates s <- F(s) from s0. Stops at s_{n+1} == s_n (fixed point) or
 * s_{n+1} == s_{n-1}: a two-cycle f_lo < a <= f_hi around a data value a
 * where the convex cost the recursion minimises,
 *   Jt(s) = c * sum_{0<|x|<=s} (s^2 - x^2) + sum_{|x|>s} (|x| - s)^2,
 * has its kink minimum; a (the smallest magnitude above f_lo) is the result.
 * The state advances one step at a time, so that a caller can interleave
 * the recursions of several groups. */
typedef struct {
    double prev2, s;  /* s_{n-1} and s_n: the result once done */
    int64_t nnz;
    double c;
    int it, max_iter;
    int conv, done;
} rec_state;

static inline void rec_init(rec_state *r, int64_t nnz, double c, double s0, int max_iter) {
    r->prev2 = -1.0;
    r->s = s0;
    r->nnz = nnz;
    r->c = c;
    r->it = 0;
    r->max_iter = max_iter;
    r->conv = 0;
    r->done = max_iter <= 0;
}

/* Takes the sum and count above r->s; returns 1 when the recursion is done. */
static inline int rec_advance(rec_state *r, step_stats st, min_above_fn min_above, void *ctx) {
    const double den = r->c * (double)(r->nnz - st.n1) + (double)st.n1;
    const double next = st.sum / den;
    r->it++;
    if (next == r->s) {
        r->conv = r->done = 1;
    } else if (next == r->prev2) {
        r->conv = r->done = 1;
        r->s = min_above(ctx, next < r->s ? next : r->s);
    } else {
        r->prev2 = r->s;
        r->s = next;
        r->done = r->it >= r->max_iter;
    }
    return r->done;
}

#endif
