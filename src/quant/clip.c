/* clip.c -- the clipping methods behind one interface (octav_clip): OCTAV
 * (octav.c) and the baselines the paper compares against: max, percentile,
 * k-sigma, ACIQ (Laplace / Gaussian), the 100-point MSE sweep and KL
 * (entropy) calibration; plus static calibration over several batches.
 * Baselines gather each group into a per-thread workspace and run there. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

octav_status octav_solve_octav_(octav_solver *sv, octav_grid g, const octav_layout *lay, const float *x,
                                int max_iter, const float *warm, float *scales, octav_clip_info *info,
                                const char *name);

static const char *const method_names[OCTAV_CLIP_COUNT_] = {
    "octav", "max", "percentile", "sigma", "aciq-laplace", "aciq-gauss", "mse-sweep", "entropy"};

static double default_param(octav_clip_method m) {
    switch (m) {
    case OCTAV_CLIP_PERCENTILE: return 99.99;
    case OCTAV_CLIP_SIGMA: return 3.0;
    case OCTAV_CLIP_MSE_SWEEP: return 100.0;
    case OCTAV_CLIP_ENTROPY: return 2048.0;
    default: return 0.0;
    }
}

octav_clip_config octav_clip_default(octav_clip_method m) {
    octav_clip_config c;
    memset(&c, 0, sizeof c);
    c.method = m;
    c.param = default_param(m);
    c.max_iter = 100;
    return c;
}

const char *octav_clip_name(const octav_clip_config *cfg) {
    static _Thread_local char buf[64];
    if (!cfg || (unsigned)cfg->method >= OCTAV_CLIP_COUNT_) return "?";
    const char *base = method_names[cfg->method];
    if (cfg->method == OCTAV_CLIP_PERCENTILE || cfg->method == OCTAV_CLIP_SIGMA) {
        const double p = cfg->param > 0 ? cfg->param : default_param(cfg->method);
        for (int prec = 6; prec <= 17; prec++) { /* shortest text that parses back to p */
            snprintf(buf, sizeof buf, "%s-%.*g", base, prec, p);
            if (strtod(buf + strlen(base) + 1, NULL) == p) break;
        }
        return buf;
    }
    return base;
}

octav_status octav_clip_parse(const char *name, octav_clip_config *out) {
    if (!name || !out) return octav_set_error(OCTAV_EINVAL, "NULL argument");
    for (int m = 0; m < OCTAV_CLIP_COUNT_; m++) {
        size_t L = strlen(method_names[m]);
        if (strncmp(name, method_names[m], L) != 0) continue;
        if (name[L] == '\0') { *out = octav_clip_default((octav_clip_method)m); return OCTAV_OK; }
        if (name[L] == '-' && (m == OCTAV_CLIP_PERCENTILE || m == OCTAV_CLIP_SIGMA)) {
            char *end;
            const char *num = name + L + 1;
            double v = strtod(num, &end);
            if (*end || end == num || !(*num >= '0' && *num <= '9') || !isfinite(v))
                return octav_set_error(OCTAV_EINVAL, "bad number in clipping method '%s'", name);
            *out = octav_clip_default((octav_clip_method)m);
            out->param = v;
            return OCTAV_OK;
        }
    }
    return octav_set_error(OCTAV_EINVAL,
                           "unknown clipping method '%s' (expected octav, max, percentile[-P], sigma[-K], "
                           "aciq-laplace, aciq-gauss, mse-sweep or entropy)", name);
}

static octav_status check_config(const octav_clip_config *cfg) {
    if (!cfg || (unsigned)cfg->method >= OCTAV_CLIP_COUNT_)
        return octav_set_error(OCTAV_EINVAL, "unknown clipping method");
    double p = cfg->param;
    switch (cfg->method) {
    case OCTAV_CLIP_OCTAV:
        if (cfg->max_iter < 1 || cfg->max_iter > 1000000)
            return octav_set_error(OCTAV_EINVAL, "iterations must be in 1..1000000 (got %d)", cfg->max_iter);
        break;
    case OCTAV_CLIP_PERCENTILE:
        if (!(p > 0 && p <= 100)) return octav_set_error(OCTAV_EINVAL, "percentile must be in (0, 100] (got %g)", p);
        break;
    case OCTAV_CLIP_SIGMA:
        if (!(p > 0 && p <= 1000)) return octav_set_error(OCTAV_EINVAL, "sigma multiple must be in (0, 1000] (got %g)", p);
        break;
    case OCTAV_CLIP_MSE_SWEEP:
        if (!(p >= 1 && p <= 100000) || p != floor(p))
            return octav_set_error(OCTAV_EINVAL, "sweep points must be an integer in 1..100000 (got %g)", p);
        break;
    case OCTAV_CLIP_ENTROPY:
        if (!(p >= 16 && p <= 65536) || p != floor(p))
            return octav_set_error(OCTAV_EINVAL, "entropy histogram bins must be an integer in 16..65536 (got %g)", p);
        break;
    default: break;
    }
    return OCTAV_OK;
}

/* ---- helpers on one gathered group ------------------------------------- */

/* k-th smallest of a[0..n) (0-based); reorders a. */
static float select_kth(float *a, int64_t n, int64_t k) {
    int64_t lo = 0, hi = n - 1;
    uint64_t r = 0x9E3779B97F4A7C15ull;
    while (hi > lo) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        float pivot = a[lo + (int64_t)((r >> 33) % (uint64_t)(hi - lo + 1))];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) { float t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

static float percentile_of(float *m, int64_t n, double p) {
    double rank = p / 100.0 * (double)(n - 1);
    int64_t k = (int64_t)floor(rank);
    double frac = rank - (double)k;
    float a = select_kth(m, n, k);
    if (frac == 0.0 || k + 1 >= n) return a;
    /* after selection, the (k+1)-th smallest is the minimum of m[k+1..n) */
    float b = m[k + 1];
    for (int64_t i = k + 2; i < n; i++) b = m[i] < b ? m[i] : b;
    return (float)((double)a + frac * ((double)b - (double)a));
}

/* True quantization MSE of the raw values v[0..n) at scale s. */
/* (8 double lanes in a fixed order, so every build and thread count agrees) */
#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
static double true_mse(const float *v, int64_t n, octav_grid g, float s) {
    const float qmin = (float)octav_grid_qmin(g), qmax = (float)octav_grid_qmax(g);
    const float d = grid_step(g, s);
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
#pragma omp simd
        for (int j = 0; j < 8; j++) {
            float y = q_clamp(q_round(v[i + j], d), qmin, qmax) * d;
            double e = (double)y - (double)v[i + j];
            acc[j] += e * e;
        }
    }
    for (int j = 0; i < n; i++, j++) {
        float y = q_clamp(q_round(v[i], d), qmin, qmax) * d;
        double e = (double)y - (double)v[i];
        acc[j] += e * e;
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* KL-divergence calibration (TensorRT / MXNet): histogram of magnitudes over
 * [0, max] with `nbins` bins (fewer for small groups, see below); for each candidate i >= nq, P = first i bins
 * with the outliers folded into the last, Q = P merged into nq bins and
 * expanded back over P's non-empty bins; the threshold minimising KL(P||Q)
 * (both smoothed with eps = 1e-4) is i * width. */
static float entropy_threshold(const float *m, int64_t n, float maxv, int nbins, int nq, double *work) {
    double *hist = work, *P = work + nbins, *Q = work + 2 * nbins;
    const double width = (double)maxv / nbins;
    for (int i = 0; i < nbins; i++) hist[i] = 0;
    for (int64_t i = 0; i < n; i++) {
        if (m[i] <= 0.0f) continue;
        int b = (int)((double)m[i] / width);
        hist[b < nbins ? b : nbins - 1] += 1.0;
    }
    if (nq >= nbins) return maxv;
    double best = INFINITY;
    int best_i = nbins;
    double outliers_total = 0;
    for (int i = 0; i < nbins; i++) outliers_total += hist[i];
    double inside = 0;
    for (int i = 0; i < nq; i++) inside += hist[i];
    for (int i = nq; i <= nbins; i++) {
        if (i > nq) inside += hist[i - 1];
        double outl = outliers_total - inside;
        for (int j = 0; j < i; j++) P[j] = hist[j];
        P[i - 1] += outl;
        /* merge into nq bins of i/nq source bins each (the last takes the rest),
         * spread over P's non-empty bins */
        const int merged = i / nq;
        for (int j = 0; j < nq; j++) {
            int b0 = j * merged, b1 = j == nq - 1 ? i : b0 + merged;
            double tot = 0, nz = 0;
            for (int b = b0; b < b1; b++) { tot += hist[b]; nz += P[b] != 0; }
            for (int b = b0; b < b1; b++) Q[b] = (P[b] != 0 && nz > 0) ? tot / nz : 0;
        }
        /* smooth the counts (every entry must stay positive), then KL of the
         * normalised distributions */
        double kl = 0, tots[2] = {0, 0};
        for (int pass = 0; pass < 2 && isfinite(kl); pass++) {
            double *D = pass ? Q : P;
            int nzero = 0, nnon = 0;
            for (int j = 0; j < i; j++) { nzero += D[j] == 0; nnon += D[j] != 0; }
            if (nnon == 0) { kl = INFINITY; break; }
            const double eps = 1e-4, eps1 = eps * nzero / nnon;
            for (int j = 0; j < i; j++) {
                D[j] = D[j] == 0 ? eps : D[j] - eps1;
                if (!(D[j] > 0)) kl = INFINITY;
                tots[pass] += D[j];
            }
        }
        if (isfinite(kl))
            for (int j = 0; j < i; j++) {
                double p = P[j] / tots[0], q = Q[j] / tots[1];
                kl += p * log(p / q);
            }
        if (kl < best) { best = kl; best_i = i; }
    }
    return (float)(best_i * width);
}

/* Scale of one group for the baseline methods. v: raw values (may be
 * reordered), m: scratch of n floats; work: entropy scratch. */
static float baseline_scale(const octav_clip_config *cfg, octav_grid g, float *v, int64_t n, float *m,
                            double *work) {
    const int uns = g.kind == OCTAV_GRID_UNSIGNED;
    float maxv = 0.0f;
    double sum = 0, sum2 = 0, psum = 0, psum2 = 0;
    int64_t npos = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = mag_of(v[i], uns);
        m[i] = a;
        maxv = a > maxv ? a : maxv;
        sum += a;
        sum2 += (double)a * a;
        if (a > 0) { npos++; psum += a; psum2 += (double)a * a; }
    }
    if (maxv == 0.0f) return 0.0f;
    switch (cfg->method) {
    case OCTAV_CLIP_MAX: return maxv;
    case OCTAV_CLIP_PERCENTILE: return percentile_of(m, n, cfg->param);
    case OCTAV_CLIP_SIGMA: {
        double rms = uns ? sqrt(psum2 / (double)npos) : sqrt(sum2 / (double)n);
        return (float)(cfg->param * rms);
    }
    case OCTAV_CLIP_ACIQ_LAPLACE: {
        double b = uns ? psum / (double)npos : sum / (double)n;
        return (float)(octav_aciq_ratio_laplace(g) * b);
    }
    case OCTAV_CLIP_ACIQ_GAUSS: {
        double sigma = uns ? sqrt(psum2 / (double)npos) : sqrt(sum2 / (double)n);
        return (float)(octav_aciq_ratio_gauss(g) * sigma);
    }
    case OCTAV_CLIP_MSE_SWEEP: {
        /* candidates in parallel when this is the only group (inside the
         * per-group loop the region is inactive and runs serially) */
        const int N = (int)cfg->param;
        double best = INFINITY;
        float bs = maxv;
#pragma omp parallel for schedule(dynamic, 1) num_threads(octav_get_threads()) if (n >= 65536)
        for (int k = 1; k <= N; k++) work[k - 1] = true_mse(v, n, g, (float)((double)k / N * (double)maxv));
        for (int k = 1; k <= N; k++)
            if (work[k - 1] < best) { best = work[k - 1]; bs = (float)((double)k / N * (double)maxv); }
        return bs;
    }
    case OCTAV_CLIP_ENTROPY: {
        /* at most the configured bins, and about 4 values per bin for
         * small groups (per channel or block), but never below 2 nq */
        int nq = uns ? (1 << g.bits) : (1 << (g.bits - 1));
        int64_t want = n / 4 > 2 * (int64_t)nq ? n / 4 : 2 * (int64_t)nq;
        int nbins = want < (int64_t)cfg->param ? (int)want : (int)cfg->param;
        return entropy_threshold(m, n, maxv, nbins, nq, work);
    }
    default: return maxv;
    }
}

/* Largest magnitude of one segment; *bad gets set by any NaN / Inf. One
 * vectorisable pass (the max is exact in any order). */
static float seg_max(const float *x, int64_t n, int uns, int *bad) {
    float mx = 0.0f;
    int b = 0;
#pragma omp simd reduction(max : mx) reduction(| : b)
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        b |= !(a <= FLT_MAX);
        float m = uns ? (x[i] > 0.0f ? x[i] : 0.0f) : a;
        mx = m > mx ? m : mx;
    }
    *bad |= b;
    return mx;
}

/* max-scaling without the copy of the generic path: one read of x,
 * parallel over pieces (one group) or over groups. Training calls it on
 * every quantizer at every step. */
static octav_status clip_max(const octav_layout *lay, octav_grid g, const float *x, float *scales,
                             octav_clip_info *info, const char *name) {
    const int uns = g.kind == OCTAV_GRID_UNSIGNED, T = octav_get_threads();
    const int64_t G = lay->ngroups;
    int bad = 0;
    if (G == 1) {
        const int64_t np = (lay->numel + OCTAV_PIECE - 1) / OCTAV_PIECE;
        float mx = 0.0f;
#pragma omp parallel for schedule(static) num_threads(T) reduction(max : mx) reduction(| : bad) if (np > 1)
        for (int64_t k = 0; k < np; k++) {
            int64_t n = (k + 1) * OCTAV_PIECE <= lay->numel ? OCTAV_PIECE : lay->numel - k * OCTAV_PIECE;
            float m = seg_max(x + k * OCTAV_PIECE, n, uns, &bad);
            mx = m > mx ? m : mx;
        }
        scales[0] = mx;
    } else {
#pragma omp parallel for schedule(static) num_threads(T) reduction(| : bad) if (lay->numel >= OCTAV_PIECE)
        for (int64_t gi = 0; gi < G; gi++) {
            octav_span sp = layout_span(lay, gi);
            float mx = 0.0f;
            for (int64_t j = 0; j < sp.nseg; j++) {
                float m = seg_max(x + sp.base + j * sp.stride, sp.seglen, uns, &bad);
                mx = m > mx ? m : mx;
            }
            scales[gi] = mx;
        }
    }
    if (bad) return octav_check_finite(x, lay->numel, name);   /* names the index */
    for (int64_t gi = 0; info && gi < G; gi++) {
        if (info->iterations) info->iterations[gi] = 0;
        if (info->converged) info->converged[gi] = 1;
    }
    return OCTAV_OK;
}

octav_status octav_clip(octav_solver *sv, const octav_clip_config *cfg, octav_grid g, const octav_layout *lay,
                        const float *x, float *scales, octav_clip_info *info) {
    octav_status st = octav_grid_check(g);
    if (st) return st;
    if ((st = check_config(cfg))) return st;
    if (!sv || !lay || !x || !scales) return octav_set_error(OCTAV_EINVAL, "octav_clip: NULL argument");
    if (lay->numel <= 0) return octav_set_error(OCTAV_EEMPTY, "%s%sempty tensor", cfg->name ? cfg->name : "",
                                                cfg->name ? ": " : "");
    if (cfg->method == OCTAV_CLIP_OCTAV)
        return octav_solve_octav_(sv, g, lay, x, cfg->max_iter, cfg->warm_start, scales, info, cfg->name);
    if (cfg->method == OCTAV_CLIP_MAX) return clip_max(lay, g, x, scales, info, cfg->name);

    if ((st = octav_check_finite(x, lay->numel, cfg->name))) return st;
    const int64_t G = lay->ngroups;
    int64_t gsize = 0;
    for (int64_t gi = 0; gi < G && gi < 2; gi++) {
        int64_t s = octav_layout_group_size(lay, gi);
        gsize = s > gsize ? s : gsize;
    }
    const int T = G == 1 ? 1 : (octav_get_threads() < G ? octav_get_threads() : (int)G);
    /* double scratch: 3 histograms (entropy) or one error per candidate (sweep) */
    const int nbins = (int)cfg->param;
    const size_t per = (size_t)gsize * 2;
    const size_t dper = cfg->method == OCTAV_CLIP_ENTROPY ? 3 * (size_t)nbins
                      : cfg->method == OCTAV_CLIP_MSE_SWEEP ? (size_t)nbins : 0;
    float *work = octav_malloc((size_t)T * per * sizeof(float));
    double *ework = dper ? octav_malloc((size_t)T * dper * sizeof(double)) : NULL;
    if (!work || (dper && !ework)) {
        octav_free(work); octav_free(ework);
        return octav_set_error(OCTAV_ENOMEM, "out of memory (clipping workspace)");
    }
#pragma omp parallel for schedule(dynamic, 4) num_threads(T) if (T > 1)
    for (int64_t gi = 0; gi < G; gi++) {
        const int w = T > 1 ? omp_get_thread_num() : 0;
        float *v = work + (size_t)w * per, *m = v + gsize;
        octav_span sp = layout_span(lay, gi);
        int64_t n = 0;
        for (int64_t j = 0; j < sp.nseg; j++) {
            memcpy(v + n, x + sp.base + j * sp.stride, (size_t)sp.seglen * sizeof(float));
            n += sp.seglen;
        }
        scales[gi] = baseline_scale(cfg, g, v, n, m, ework ? ework + (size_t)w * dper : NULL);
        if (info && info->iterations) info->iterations[gi] = 0;
        if (info && info->converged) info->converged[gi] = 1;
    }
    octav_free(work);
    octav_free(ework);
    return OCTAV_OK;
}

octav_status octav_clip_static(octav_solver *sv, const octav_clip_config *cfg, octav_grid g,
                               const octav_layout *lay, const float *const *batches, int nbatches,
                               float *scales) {
    if (!batches || nbatches < 1 || !lay || !scales)
        return octav_set_error(OCTAV_EINVAL, "static calibration needs at least one batch");
    const int64_t G = lay->ngroups;
    double *acc = octav_calloc((size_t)G, sizeof *acc);
    float *tmp = octav_malloc((size_t)G * sizeof *tmp);
    octav_status st = OCTAV_OK;
    if (!acc || !tmp) st = octav_set_error(OCTAV_ENOMEM, "out of memory (static calibration)");
    for (int b = 0; b < nbatches && !st; b++) {
        if (!batches[b]) { st = octav_set_error(OCTAV_EINVAL, "batch %d is NULL", b); break; }
        st = octav_clip(sv, cfg, g, lay, batches[b], tmp, NULL);
        for (int64_t gi = 0; gi < G && !st; gi++) acc[gi] += tmp[gi];
    }
    if (!st)
        for (int64_t gi = 0; gi < G; gi++) scales[gi] = (float)(acc[gi] / nbatches);
    octav_free(acc);
    octav_free(tmp);
    return st;
}
