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

#include <math.h>
#include <omp.h>
#include <string.h>

/* Least number of elements worth an OpenMP region. */
#define OPT_PAR_MIN 32768
/* The norm: at most NORM_CHUNKS chunks of at least NORM_CHUNK_MIN elements. */
#define NORM_CHUNKS 256
#define NORM_CHUNK_MIN 4096
#define OPT_PI 3.14159265358979323846

void octav_sgd_step(float *p, const float *g, float *buf, int64_t n, float lr,
                    float momentum, float weight_decay, int nesterov, int64_t t) {
    const float neg_lr = -lr;
    const int first = t <= 1 || !buf;
    if (momentum == 0.0f || !buf) {
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n >= OPT_PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            float d = g[i];
            if (weight_decay != 0.0f) d = d + weight_decay * p[i];
            p[i] = p[i] + neg_lr * d;
        }
        return;
    }
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n >= OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = g[i];
        if (weight_decay != 0.0f) d = d + weight_decay * p[i];
        float bi = first ? d : buf[i] * momentum + d;
        buf[i] = bi;
        float u = nesterov ? d + momentum * bi : bi;
        p[i] = p[i] + neg_lr * u;
    }
}

void octav_adamw_step(float *p, const float *g, float *m, float *v, int64_t n,
                      float lr, float beta1, float beta2, float eps,
                      float weight_decay, int64_t t) {
    if (t < 1) t = 1;
    const double td = (double)t;
    const float decay = (float)(1.0 - (double)lr * (double)weight_decay);
    const float omb1 = (float)(1.0 - (double)beta1);
    const float omb2 = (float)(1.0 - (double)beta2);
    const double bc1 = 1.0 - pow((double)beta1, td);
    const double bc2 = 1.0 - pow((double)beta2, td);
    const float neg_step = (float)(-((double)lr / bc1));
    const float bc2_sqrt = (float)sqrt(bc2);
    const int do_decay = weight_decay != 0.0f;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n >= OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float gi = g[i];
        float pi = do_decay ? p[i] * decay : p[i];
        const float mi = m[i] * beta1 + omb1 * gi;
        const float vi = v[i] * beta2 + omb2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) / bc2_sqrt + eps;
        p[i] = pi + neg_step * mi / denom;
    }
}

double octav_grad_norm(const float *g, int64_t n) {
    if (n <= 0) return 0.0;
    int64_t nchunks = n / NORM_CHUNK_MIN;
    if (nchunks < 1) nchunks = 1;
    if (nchunks > NORM_CHUNKS) nchunks = NORM_CHUNKS;
    const int64_t len = (n + nchunks - 1) / nchunks;
    double part[NORM_CHUNKS];
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (nchunks > 1 && n >= OPT_PAR_MIN)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t lo = c * len, hi = lo + len < n ? lo + len : n;
        double s = 0.0;
        for (int64_t i = lo; i < hi; i++) s += (double)g[i] * (double)g[i];
        part[c] = s;
    }
    double s = 0.0;
    for (int64_t c = 0; c < nchunks; c++) s += part[c];
    return sqrt(s);
}

void octav_scale(float *x, int64_t n, float alpha) {
    if (alpha == 1.0f) return;
#pragma omp parallel for schedule(static) num_threads(octav_get_threads()) if (n >= OPT_PAR_MIN)
    for (int64_t i = 0; i < n; i++) x[i] *= alpha;
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
