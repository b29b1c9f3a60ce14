/* loss.c -- row softmax, softmax cross-entropy with label smoothing, and
 * the embedding lookup, forward and backward.
 *
 * Rows are independent and run in parallel. exp(x - max) is vexp.h's
 * (within 1 ulp of the correctly rounded float, vectorised); the softmax
 * normaliser is summed in double in 8 lanes (element j into lane j % 8),
 * and each row's loss in double. The mean loss
 * sums the rows in at most XENT_BLOCKS fixed blocks (block b covers rows
 * [b n / nb, (b+1) n / nb)), then the blocks in order, so it depends on n
 * only, never on the thread count. The embedding backward sums rows of dy
 * into dtable in row order (float, as PyTorch); threads split the columns.
 *
 * Cross-entropy per row, with q = (1 - eps) onehot(label) + eps / k:
 *   loss = -sum_j q_j log p_j = lse - (1 - eps) x_label - (eps / k) sum_j x_j,
 *   lse = max + log sum_j exp(x_j - max),
 * which is PyTorch's (1 - eps) nll + eps * mean_j(-log p_j). Labels are in
 * [0, k), or negative for a row that is ignored (PyTorch's ignore_index,
 * used by masked-token pretraining): it adds no loss, no hit and no
 * gradient, and the mean is over the other rows. Left out: class weights,
 * reductions other than the mean, soft targets. */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "octav/nn.h"
#include "vexp.h"

#define PAR_MIN 32768    /* elements below which loops stay serial */
#define XENT_BLOCKS 256  /* partial sums of the mean loss          */
#define EMB_COLS_MIN 64  /* columns per thread in the embedding backward */

#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define OCTAV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OCTAV_CLONES
#endif
#define LANES 8

/* y = exp(x - m) */
OCTAV_CLONES
static void exp_shifted(const float *x, float *y, int64_t d, float m) {
#pragma omp simd
    for (int64_t j = 0; j < d; j++) y[j] = octav_vexpf(x[j] - m);
}

/* sum of y in double: element j into lane j % LANES, lanes added in order */
OCTAV_CLONES
static double sum_lanes(const float *y, int64_t d) {
    double a[LANES] = {0};
    int64_t j = 0;
    for (; j + LANES <= d; j += LANES)
        for (int l = 0; l < LANES; l++) a[l] += (double)y[j + l];
    for (int l = 0; j < d; j++, l++) a[l] += (double)y[j];
    double t = 0;
    for (int l = 0; l < LANES; l++) t += a[l];
    return t;
}

OCTAV_CLONES
static void scale_run(float *y, int64_t d, double inv) {
#pragma omp simd
    for (int64_t j = 0; j < d; j++) y[j] = (float)((double)y[j] * inv);
}

/* y = exp(x - max) / sum for one row (sum in double); lse = log sum exp x. */
/* max of a row: exact in any order (a NaN anywhere makes the whole softmax
 * NaN through exp(NaN - m) either way; the sign of a zero maximum does not
 * change x - m), so the reduction may vectorise */
OCTAV_CLONES
static float row_max(const float *x, int64_t d) {
    float m = x[0];
#pragma omp simd reduction(max : m)
    for (int64_t j = 1; j < d; j++) m = x[j] > m ? x[j] : m;
    return m;
}

static void softmax_row(const float *x, float *y, int64_t d, double *lse_out) {
    const float m = row_max(x, d);
    exp_shifted(x, y, d, m);
    const double sum = sum_lanes(y, d);
    scale_run(y, d, 1.0 / sum);
    if (lse_out) *lse_out = (double)m + log(sum);
}

void octav_softmax_forward(const float *x, float *y, int64_t rows, int64_t d) {
    if (rows <= 0 || d <= 0) return;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (rows * d >= PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) softmax_row(x + r * d, y + r * d, d, NULL);
}

void octav_softmax_backward(const float *y, const float *dy, float *dx, int64_t rows, int64_t d) {
    if (rows <= 0 || d <= 0) return;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (rows * d >= PAR_MIN && rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const float *yr = y + r * d, *gr = dy + r * d;
        float *xr = dx + r * d;
        double s = 0;
        for (int64_t j = 0; j < d; j++) s += (double)gr[j] * (double)yr[j];
        const float sf = (float)s;
        for (int64_t j = 0; j < d; j++) xr[j] = yr[j] * (gr[j] - sf);
    }
}

double octav_xent_forward(const float *logits, const int32_t *labels, float *probs, int64_t n,
                          int64_t k, float smoothing, int64_t *correct) {
    if (correct) *correct = 0;
    if (n <= 0 || k <= 0) return 0.0;
    const int64_t nb = n < XENT_BLOCKS ? n : XENT_BLOCKS;
    const double eps = (double)smoothing;
    double part[XENT_BLOCKS];
    int64_t hits = 0, used = 0;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n * k >= PAR_MIN && nb > 1) reduction(+ : hits, used)
    for (int64_t b = 0; b < nb; b++) {
        const int64_t r0 = b * n / nb, r1 = (b + 1) * n / nb;
        double acc = 0;
        for (int64_t r = r0; r < r1; r++) {
            const float *x = logits + r * k;
            const int32_t lab = labels[r];
            assert(lab < k);
            double lse, sx = 0;
            softmax_row(x, probs + r * k, k, &lse);
            if (lab < 0) continue;
            used++;
            int64_t am = 0;
            for (int64_t j = 0; j < k; j++) {
                sx += (double)x[j];
                if (x[j] > x[am]) am = j;
            }
            hits += am == lab;
            double loss = lse - (1.0 - eps) * (double)x[lab];
            if (eps != 0.0) loss -= eps / (double)k * sx;
            acc += loss;
        }
        part[b] = acc;
    }
    double total = 0;
    for (int64_t b = 0; b < nb; b++) total += part[b];
    if (correct) *correct = hits;
    return used ? total / (double)used : 0.0;
}

void octav_xent_backward(const float *probs, const int32_t *labels, float *dlogits, int64_t n,
                         int64_t k, float smoothing, float scale) {
    if (n <= 0 || k <= 0) return;
    const float off = (float)((double)smoothing / (double)k);
    const float on = (float)(1.0 - (double)smoothing + (double)smoothing / (double)k);
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n * k >= PAR_MIN && n > 1)
    for (int64_t r = 0; r < n; r++) {
        const float *p = probs + r * k;
        float *g = dlogits + r * k;
        const int32_t lab = labels[r];
        assert(lab < k);
        if (lab < 0) { memset(g, 0, (size_t)k * sizeof *g); continue; }
        for (int64_t j = 0; j < k; j++) g[j] = (p[j] - off) * scale;
        g[lab] = (p[lab] - on) * scale;
    }
}

void octav_embedding_forward(const int32_t *ids, const float *table, float *y, int64_t n, int64_t d) {
    if (n <= 0 || d <= 0) return;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n * d >= PAR_MIN && n > 1)
    for (int64_t i = 0; i < n; i++) {
        assert(ids[i] >= 0);
        memcpy(y + i * d, table + (int64_t)ids[i] * d, (size_t)d * sizeof *y);
    }
}

void octav_embedding_backward(const int32_t *ids, const float *dy, float *dtable, int64_t n,
                              int64_t vocab, int64_t d) {
    if (vocab <= 0 || d <= 0) return;
    const int nt = octav_get_threads();
    const int par = (n + vocab) * d >= PAR_MIN;
#pragma omp parallel for schedule(static) num_threads(nt) if (par && vocab > 1)
    for (int64_t v = 0; v < vocab; v++) memset(dtable + v * d, 0, (size_t)d * sizeof *dtable);
    if (n <= 0) return;
    /* column ranges per thread; each column sums its rows in order */
    int64_t nparts = par ? d / EMB_COLS_MIN : 1;
    if (nparts > nt) nparts = nt;
    if (nparts < 1) nparts = 1;
#pragma omp parallel for schedule(static) num_threads(nt) if (nparts > 1)
    for (int64_t t = 0; t < nparts; t++) {
        const int64_t j0 = t * d / nparts, j1 = (t + 1) * d / nparts;
        for (int64_t i = 0; i < n; i++) {
            assert(ids[i] >= 0 && ids[i] < vocab);
            float *dst = dtable + (int64_t)ids[i] * d;
            const float *src = dy + i * d;
            for (int64_t j = j0; j < j1; j++) dst[j] += src[j];
        }
    }
}
