/* fakequant.c -- fake quantization forward and backward (STE / PWL / MAD,
 * with LSQ / PACT scale gradients), quantization error statistics, and the
 * finiteness check. Elementwise work runs over the layout's runs (split into
 * pieces for one big group) in parallel; per-group reductions are summed in
 * a fixed order so results do not depend on the thread count. */
#include "internal.h"

#include <float.h>
#include <omp.h>

typedef struct {
    int64_t base, len, group, slot; /* slot: index of the partial-sum entry */
} piece;

/* Pieces covering the tensor in memory order. */
static int64_t npieces_of(const octav_layout *lay) {
    int64_t nr = layout_nruns(lay);
    if (nr == 1) return (lay->numel + OCTAV_PIECE - 1) / OCTAV_PIECE;
    return nr;
}

static piece piece_at(const octav_layout *lay, int64_t k) {
    piece p;
    if (layout_nruns(lay) == 1) {
        p.base = k * OCTAV_PIECE;
        p.len = lay->numel - p.base < OCTAV_PIECE ? lay->numel - p.base : OCTAV_PIECE;
        p.group = 0;
    } else {
        octav_run r = layout_run(lay, k);
        p.base = r.base; p.len = r.len; p.group = r.group;
    }
    p.slot = k;
    return p;
}

static octav_status check_args(octav_grid g, const octav_layout *lay, const void *a, const void *b) {
    octav_status st = octav_grid_check(g);
    if (st) return st;
    if (!lay || !a || !b) return octav_set_error(OCTAV_EINVAL, "NULL argument");
    if (lay->numel <= 0) return octav_set_error(OCTAV_EEMPTY, "empty tensor");
    return OCTAV_OK;
}

/* ---- vectorised inner loops (the compiler builds AVX-512 / AVX2 / plain
 * versions, picked at load time; the arithmetic is the same in all) ---- */
#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define OCTAV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OCTAV_CLONES
#endif

OCTAV_CLONES
static void fq_forward_run(const float *x, float *y, int64_t n, float d, float qmin, float qmax) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) y[i] = q_clamp(q_round(x[i], d), qmin, qmax) * d;
}

/* One element of the backward pass; est and sg are constants at each call
 * site below, so every combination compiles to its own branch-free loop. */
static inline float bwd_elem(float xi, float gi, float d, float qmin, float qmax, octav_grad_est est,
                             octav_scale_grad sg, double *acc) {
    const float t = xi / d, q = rintf(t) + 0.0f;
    const int below = q < qmin, above = q > qmax, clipped = below | above;
    float g = gi;
    if (est == OCTAV_GRAD_PWL) g = clipped ? 0.0f : gi;
    else if (est == OCTAV_GRAD_MAD) g = clipped ? gi * (fabsf((below ? qmin : qmax) * d) / fabsf(xi)) : gi;
    if (sg == OCTAV_SGRAD_LSQ) *acc += (double)gi * (clipped ? (double)(below ? qmin : qmax) : (double)q - (double)t);
    else if (sg == OCTAV_SGRAD_PACT) *acc += clipped ? (double)gi * (double)(below ? qmin : qmax) : 0.0;
    return g;
}

/* dx for one run; returns the run's sum of dy * dy/ds * L (LSQ / PACT),
 * accumulated in 8 lanes in a fixed order so every build gives the same bits. */
static inline double bwd_run(const float *x, const float *dy, float *dx, int64_t n, float d, float qmin,
                             float qmax, octav_grad_est est, octav_scale_grad sg) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    if (sg == OCTAV_SGRAD_NONE) {
        double unused = 0;
#pragma omp simd
        for (i = 0; i < n; i++) dx[i] = bwd_elem(x[i], dy[i], d, qmin, qmax, est, sg, &unused);
        return 0.0;
    }
    for (; i + 8 <= n; i += 8) {
#pragma omp simd
        for (int j = 0; j < 8; j++) dx[i + j] = bwd_elem(x[i + j], dy[i + j], d, qmin, qmax, est, sg, &acc[j]);
    }
    for (int j = 0; i < n; i++, j++) dx[i] = bwd_elem(x[i], dy[i], d, qmin, qmax, est, sg, &acc[j]);
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

OCTAV_CLONES
static double fq_backward_run(const float *x, const float *dy, float *dx, int64_t n, float d, float qmin,
                              float qmax, octav_grad_est est, octav_scale_grad sg) {
#define BWD(E, S) if (est == E && sg == S) return bwd_run(x, dy, dx, n, d, qmin, qmax, E, S)
    BWD(OCTAV_GRAD_STE, OCTAV_SGRAD_NONE); BWD(OCTAV_GRAD_PWL, OCTAV_SGRAD_NONE); BWD(OCTAV_GRAD_MAD, OCTAV_SGRAD_NONE);
    BWD(OCTAV_GRAD_STE, OCTAV_SGRAD_LSQ); BWD(OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ); BWD(OCTAV_GRAD_MAD, OCTAV_SGRAD_LSQ);
    BWD(OCTAV_GRAD_STE, OCTAV_SGRAD_PACT); BWD(OCTAV_GRAD_PWL, OCTAV_SGRAD_PACT);
#undef BWD
    return bwd_run(x, dy, dx, n, d, qmin, qmax, OCTAV_GRAD_MAD, OCTAV_SGRAD_PACT);
}

octav_status octav_fq_forward(octav_grid g, const octav_layout *lay, const float *x,
                              const float *scales, float *y) {
    octav_status st = check_args(g, lay, x, scales);
    if (st) return st;
    if (!y) return octav_set_error(OCTAV_EINVAL, "NULL output");
    const float qmin = (float)octav_grid_qmin(g), qmax = (float)octav_grid_qmax(g);
    const int64_t np = npieces_of(lay);
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (np > 1)
    for (int64_t k = 0; k < np; k++) {
        piece p = piece_at(lay, k);
        const float s = scales[p.group];
        const float *xp = x + p.base;
        float *yp = y + p.base;
        if (!(s > 0.0f)) {
            for (int64_t i = 0; i < p.len; i++) yp[i] = 0.0f;
            continue;
        }
        fq_forward_run(xp, yp, p.len, grid_step(g, s), qmin, qmax);
    }
    return OCTAV_OK;
}

octav_status octav_fq_backward(octav_grid g, const octav_layout *lay, const float *x,
                               const float *scales, const float *dy, octav_grad_est est,
                               octav_scale_grad sg, float *dx, double *dscale) {
    octav_status st = check_args(g, lay, x, scales);
    if (st) return st;
    if (!dy || !dx) return octav_set_error(OCTAV_EINVAL, "NULL gradient buffer");
    if ((unsigned)est > OCTAV_GRAD_MAD) return octav_set_error(OCTAV_EINVAL, "unknown gradient estimator %d", (int)est);
    if ((unsigned)sg > OCTAV_SGRAD_PACT) return octav_set_error(OCTAV_EINVAL, "unknown scale gradient %d", (int)sg);
    if (sg != OCTAV_SGRAD_NONE && !dscale) return octav_set_error(OCTAV_EINVAL, "dscale is NULL");
    const float qmin = (float)octav_grid_qmin(g), qmax = (float)octav_grid_qmax(g);
    const double L = octav_grid_levels(g);
    const int64_t np = npieces_of(lay);
    /* per-piece partial sums: on the stack for the usual sizes, so that
     * per-step use in training allocates nothing */
    double stack_part[512], *part = NULL;
    if (sg != OCTAV_SGRAD_NONE) {
        part = np <= 512 ? stack_part : octav_malloc((size_t)np * sizeof *part);
        if (!part) return octav_set_error(OCTAV_ENOMEM, "out of memory (%lld partial sums)", (long long)np);
    }
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (np > 1)
    for (int64_t k = 0; k < np; k++) {
        piece p = piece_at(lay, k);
        const float s = scales[p.group];
        const float *xp = x + p.base, *gp = dy + p.base;
        float *dp = dx + p.base;
        double acc = 0.0;
        if (!(s > 0.0f)) {
            /* zero scale: every non-zero value is flushed to 0 (clipped) */
            for (int64_t i = 0; i < p.len; i++)
                dp[i] = (est == OCTAV_GRAD_STE || xp[i] == 0.0f) ? gp[i] : 0.0f;
        } else {
            acc = fq_backward_run(xp, gp, dp, p.len, grid_step(g, s), qmin, qmax, est, sg);
        }
        if (part) part[k] = acc / L;
    }
    if (part) {
        for (int64_t gi = 0; gi < lay->ngroups; gi++) dscale[gi] = 0.0;
        for (int64_t k = 0; k < np; k++) dscale[piece_at(lay, k).group] += part[k];
        if (part != stack_part) octav_free(part);
    }
    return OCTAV_OK;
}

octav_status octav_quant_error_eval(octav_grid g, const octav_layout *lay, const float *x,
                                    const float *scales, octav_quant_error *out) {
    octav_status st = check_args(g, lay, x, scales);
    if (st) return st;
    if (!out) return octav_set_error(OCTAV_EINVAL, "NULL output");
    const float qmin = (float)octav_grid_qmin(g), qmax = (float)octav_grid_qmax(g);
    const int64_t np = npieces_of(lay);
    double *part = octav_malloc((size_t)np * 3 * sizeof *part);
    if (!part) return octav_set_error(OCTAV_ENOMEM, "out of memory");
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (np > 1)
    for (int64_t k = 0; k < np; k++) {
        piece p = piece_at(lay, k);
        const float s = scales[p.group];
        const float *xp = x + p.base;
        double se = 0, sx = 0, nclip = 0;
        const float d = s > 0.0f ? grid_step(g, s) : 0.0f;
        for (int64_t i = 0; i < p.len; i++) {
            const float xi = xp[i];
            const float q = d > 0.0f ? q_round(xi, d) : 0.0f;
            const float yi = q_clamp(q, qmin, qmax) * d;
            const double e = (double)yi - (double)xi;
            se += e * e;
            sx += (double)xi * (double)xi;
            nclip += d > 0.0f ? (q < qmin || q > qmax) : (xi != 0.0f);
        }
        part[3 * k] = se; part[3 * k + 1] = sx; part[3 * k + 2] = nclip;
    }
    double se = 0, sx = 0, nclip = 0;
    for (int64_t k = 0; k < np; k++) { se += part[3 * k]; sx += part[3 * k + 1]; nclip += part[3 * k + 2]; }
    octav_free(part);
    out->mse = se / (double)lay->numel;
    out->sqnr_db = se > 0 ? 10.0 * log10(sx / se) : INFINITY;
    out->clipped_fraction = nclip / (double)lay->numel;
    return OCTAV_OK;
}

octav_status octav_check_finite(const float *x, int64_t n, const char *name) {
    int64_t first = INT64_MAX;
    const int64_t np = (n + OCTAV_PIECE - 1) / OCTAV_PIECE;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (np > 1) reduction(min : first)
    for (int64_t k = 0; k < np; k++) {
        int64_t b = k * OCTAV_PIECE, e = b + OCTAV_PIECE < n ? b + OCTAV_PIECE : n;
        int bad = 0;
        for (int64_t i = b; i < e; i++) bad |= !isfinite(x[i]);
        if (bad)
            for (int64_t i = b; i < e; i++)
                if (!isfinite(x[i])) { if (i < first) first = i; break; }
    }
    if (first == INT64_MAX) return OCTAV_OK;
    return octav_set_error(OCTAV_ENONFINITE, "%s%snon-finite value (%s) at index %lld",
                           name ? name : "", name ? ": " : "",
                           isnan(x[first]) ? "nan" : (x[first] > 0 ? "inf" : "-inf"), (long long)first);
}
