/* optim.c -- optimizers (SGD with momentum / Nesterov, AdamW), the gradient
 * L2 norm, scaling, and the learning-rate schedules.
 *
 * The steps follow torch.optim.SGD and torch.optim.AdamW (PyTorch 1.13,
 * single-tensor path) operation by operation: scalars derived from the
 * hyperparameters (1 - lr wd, lr / (1 - b1^t), sqrt(1 - b2^t)) are computed
 * in double and rounded to float once, as PyTorch does with Python floats
 * applied to float tensors; the per-element arithmetic is float in
 * PyTorch's order. PyTorch's vectorised kernels may fuse a multiply-add
 * where octav (built with -ffp-contract=off) rounds twice, so agreement is
 * to a few ulp, not bitwise.
 *
 * Every loop is elementwise (results independent of the thread count);
 * the norm is summed in fixed chunks whose bounds depend only on n, then
 * the chunk sums in order, so it too is independent of the thread count.
 *
 * Left out: dampening, maximize, amsgrad, per-parameter-group state (the
 * caller keeps one buffer set per tensor). */
#include "octav/nn.h"

#include <assert.h>

#include <math.h>
#include <omp.h>
#include <string.h>

/* Elements per OpenMP task, and the least n worth a parallel region. */
#define OPT_CHUNK 16384
#define OPT_PAR_MIN 32768
/* The norm: at most NORM_CHUNKS chunks of at least NORM_CHUNK_MIN elements,
 * each summed in NORM_LANES interleaved double accumulators. */
#define NORM_CHUNKS 256
#define NORM_CHUNK_MIN 4096
#define NORM_LANES 8
#define OPT_PI 3.14159265358979323846

/* The per-element loops are built for AVX-512, AVX2 and plain x86-64 and
 * picked at load time. Each element's arithmetic is the same scalar float
 * sequence in every version (no contraction: -ffp-contract=off; sqrt and
 * division are correctly rounded), so the result does not depend on which
 * runs. Options are constants of separate loops (with the default
 * -ftrapping-math GCC will not vectorise a loop with a float operation
 * under a condition). */
#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define OPT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OPT_CLONES
#endif
#if defined(__GNUC__)
#define OPT_INLINE static inline __attribute__((always_inline))
#else
#define OPT_INLINE static inline
#endif

static int64_t nchunks_of(int64_t n) { return (n + OPT_CHUNK - 1) / OPT_CHUNK; }
static int64_t chunk_len(int64_t n, int64_t c) {
    return n - c * OPT_CHUNK < OPT_CHUNK ? n - c * OPT_CHUNK : OPT_CHUNK;
}

/* torch's order: d = g + wd p (only when wd != 0); with momentum, buf = d
 * on the first step, else buf mom + d, and u = nesterov ? d + mom buf : buf;
 * p = p + (-lr) u. WD, MOM, FIRST, NEST are constants at every call. */
OPT_INLINE void sgd_loop(float *restrict p, const float *restrict g, float *restrict buf,
                         int64_t n, float neg_lr, float mom, float wd, const int WD,
                         const int MOM, const int FIRST, const int NEST) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (WD) d = d + wd * p[i];
        float u = d;
        if (MOM) {
            const float b = FIRST ? d : buf[i] * mom + d;
            buf[i] = b;
            u = NEST ? d + mom * b : b;
        }
        p[i] = p[i] + neg_lr * u;
    }
}

OPT_CLONES static void sgd_run(float *restrict p, const float *restrict g, float *restrict buf,
                               int64_t n, float neg_lr, float mom, float wd, int use_mom,
                               int first, int nesterov) {
    const int wd_on = wd != 0.0f;
    if (!use_mom) {
        if (wd_on) sgd_loop(p, g, buf, n, neg_lr, mom, wd, 1, 0, 0, 0);
        else sgd_loop(p, g, buf, n, neg_lr, mom, wd, 0, 0, 0, 0);
        return;
    }
    switch ((wd_on ? 1 : 0) | (first ? 2 : 0) | (nesterov ? 4 : 0)) {
    case 0: sgd_loop(p, g, buf, n, neg_lr, mom, wd, 0, 1, 0, 0); break;
    case 1: sgd_loop(p, g, buf, n, neg_lr, mom, wd, 1, 1, 0, 0); break;
    case 2: sgd_loop(p, g, buf, n, neg_lr, mom, wd, 0, 1, 1, 0); break;
    case 3: sgd_loop(p, g, buf, n, neg_lr, mom, wd, 1, 1, 1, 0); break;
    case 4: sgd_loop(p, g, buf, n, neg_lr, mom, wd, 0, 1, 0, 1); break;
    case 5: sgd_loop(p, g, buf, n, neg_lr, mom, wd, 1, 1, 0, 1); break;
    case 6: sgd_loop(p, g, buf, n, neg_lr, mom, wd, 0, 1, 1, 1); break;
    default: sgd_loop(p, g, buf, n, neg_lr, mom, wd, 1, 1, 1, 1); break;
    }
}

/* A momentum != 0 with buf == NULL runs as plain SGD; t <= 1 is the first
 * step (buf is written, not read). */
void octav_sgd_step(float *p, const float *g, float *buf, int64_t n, float lr,
                    float momentum, float weight_decay, int nesterov, int64_t t) {
    if (n <= 0) return;
    assert(momentum == 0.0f || buf);   /* the contract (nn.h); NDEBUG: plain SGD */
    const int use_mom = momentum != 0.0f && buf, first = t <= 1;
    const int64_t nc = nchunks_of(n);
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n >= OPT_PAR_MIN)
    for (int64_t c = 0; c < nc; c++) {
        const int64_t o = c * OPT_CHUNK;
        sgd_run(p + o, g + o, use_mom ? buf + o : NULL, chunk_len(n, c), -lr, momentum,
                weight_decay, use_mom, first, nesterov);
    }
}

typedef struct {
    float decay, beta1, omb1, beta2, omb2, neg_step, bc2_sqrt, eps;
} adamw_consts;

/* torch's order: p = p decay; m = m b1 + (1-b1) g; v = v b2 + ((1-b2) g) g;
 * p = p + ((-step) m) / (sqrt(v) / sqrt(bc2) + eps). */
OPT_CLONES static void adamw_run(float *restrict p, const float *restrict g, float *restrict m,
                                 float *restrict v, int64_t n, adamw_consts k) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i];
        const float pi = p[i] * k.decay; /* decay is exactly 1 when wd == 0 */
        const float mi = m[i] * k.beta1 + k.omb1 * gi;
        const float vi = v[i] * k.beta2 + k.omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) / k.bc2_sqrt + k.eps;
        p[i] = pi + k.neg_step * mi / denom;
    }
}

void octav_adamw_step(float *p, const float *g, float *m, float *v, int64_t n,
                      float lr, float beta1, float beta2, float eps,
                      float weight_decay, int64_t t) {
    if (n <= 0) return;
    if (t < 1) t = 1;
    const double td = (double)t;
    const double bc1 = 1.0 - pow((double)beta1, td);
    const double bc2 = 1.0 - pow((double)beta2, td);
    const adamw_consts k = {
        .decay = (float)(1.0 - (double)lr * (double)weight_decay),
        .beta1 = beta1,
        .omb1 = (float)(1.0 - (double)beta1),
        .beta2 = beta2,
        .omb2 = (float)(1.0 - (double)beta2),
        .neg_step = (float)(-((double)lr / bc1)),
        .bc2_sqrt = (float)sqrt(bc2),
        .eps = eps,
    };
    const int64_t nc = nchunks_of(n);
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n >= OPT_PAR_MIN)
    for (int64_t c = 0; c < nc; c++) {
        const int64_t o = c * OPT_CHUNK;
        adamw_run(p + o, g + o, m + o, v + o, chunk_len(n, c), k);
    }
}

/* Sum of squares of g[0, n) in double: element i goes to lane i % NORM_LANES,
 * the lanes are added in order at the end (the same bits whether or not the
 * compiler vectorises the lanes). */
static double sumsq_run(const float *g, int64_t n) {
    double lane[NORM_LANES] = {0};
    int64_t i = 0;
    for (; i + NORM_LANES <= n; i += NORM_LANES)
        for (int l = 0; l < NORM_LANES; l++) lane[l] += (double)g[i + l] * (double)g[i + l];
    for (int l = 0; i < n; i++, l++) lane[l] += (double)g[i] * (double)g[i];
    double s = 0.0;
    for (int l = 0; l < NORM_LANES; l++) s += lane[l];
    return s;
}

double octav_grad_norm(const float *g, int64_t n) {
    if (n <= 0) return 0.0;
    int64_t nchunks = n / NORM_CHUNK_MIN;
    if (nchunks < 1) nchunks = 1;
    if (nchunks > NORM_CHUNKS) nchunks = NORM_CHUNKS;
    const int64_t len = (n + nchunks - 1) / nchunks; /* every chunk starts below n */
    double part[NORM_CHUNKS];
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (nchunks > 1 && n >= OPT_PAR_MIN)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t lo = c * len, hi = lo + len < n ? lo + len : n;
        part[c] = sumsq_run(g + lo, hi - lo);
    }
    double s = 0.0;
    for (int64_t c = 0; c < nchunks; c++) s += part[c];
    return sqrt(s);
}

OPT_CLONES static void scale_run(float *x, int64_t n, float alpha) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) x[i] *= alpha;
}

void octav_scale(float *x, int64_t n, float alpha) {
    if (n <= 0 || alpha == 1.0f) return;
    const int64_t nc = nchunks_of(n);
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n >= OPT_PAR_MIN)
    for (int64_t c = 0; c < nc; c++) scale_run(x + c * OPT_CHUNK, chunk_len(n, c), alpha);
}

/* ---- learning-rate schedules ------------------------------------------------
 * Beyond nn.h's formulas: a negative step counts as 0; t is clamped to
 * [0, 1] (steps at or past total give the final value, min); step_size < 1
 * means no decay; warmup_steps < 1 means no warmup. */
static const char *const SCHED_NAMES[] = {
    [OCTAV_SCHED_CONSTANT] = "constant",
    [OCTAV_SCHED_STEP] = "step",
    [OCTAV_SCHED_COSINE] = "cosine",
    [OCTAV_SCHED_LINEAR] = "linear",
};
#define NSCHED ((int)(sizeof SCHED_NAMES / sizeof SCHED_NAMES[0]))

double octav_schedule_lr(const octav_schedule *s, double base_lr, int64_t step) {
    const int64_t warmup = s->warmup_steps > 0 ? s->warmup_steps : 0;
    if (step < 0) step = 0;
    if (step < warmup) return base_lr * (double)(step + 1) / (double)warmup;
    const int64_t e = step - warmup, span = s->total_steps - warmup;
    const double min = base_lr * s->min_ratio;
    double t = span > 0 ? (double)e / (double)span : 1.0;
    if (t > 1.0) t = 1.0;
    switch (s->kind) {
    case OCTAV_SCHED_STEP:
        return s->step_size > 0 ? base_lr * pow(s->gamma, (double)(e / s->step_size)) : base_lr;
    case OCTAV_SCHED_COSINE:
        return min + (base_lr - min) * (1.0 + cos(OPT_PI * t)) / 2.0;
    case OCTAV_SCHED_LINEAR:
        return min + (base_lr - min) * (1.0 - t);
    case OCTAV_SCHED_CONSTANT:
    default:
        return base_lr;
    }
}

const char *octav_sched_name(octav_sched_kind k) {
    if ((int)k < 0 || (int)k >= NSCHED) return "unknown";
    return SCHED_NAMES[k];
}

octav_status octav_sched_parse(const char *name, octav_sched_kind *out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "NULL output");
    if (name) {
        for (int k = 0; k < NSCHED; k++) {
            if (strcmp(name, SCHED_NAMES[k]) == 0) {
                *out = (octav_sched_kind)k;
                return OCTAV_OK;
            }
        }
    }
    return octav_set_error(OCTAV_EINVAL,
                           "unknown learning-rate schedule '%s' (valid: constant, step, cosine, linear)",
                           name ? name : "(null)");
}
