/* model_gradcheck.h -- finite-difference gradient check of a whole model
 * (every trainable tensor, through every node) on a given batch; shared by
 * test_model.c and test_transformer.c. */
#ifndef OCTAV_MODEL_GRADCHECK_H
#define OCTAV_MODEL_GRADCHECK_H
#include "octav/model.h"
#include "gradcheck.h"

static octav_train_config zero_lr(void) {
    octav_train_config tc = octav_train_default();
    tc.lr = 0;
    tc.momentum = 0;
    tc.weight_decay = 0;
    return tc;
}

/* ---- whole-model gradient check ------------------------------------------- */
typedef struct {
    octav_model *m;
    float *flat;       /* concatenated trainable params (the FD variable) */
    const float *x;
    const int32_t *y;
    int64_t n;
} gm_ctx;

static void scatter(octav_model *m, const float *flat) {
    int64_t o = 0;
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        if (!t.trainable) continue;
        int64_t k = octav_shape_numel(&t.shape);
        memcpy(t.data, flat + o, (size_t)k * sizeof(float));
        o += k;
    }
}

static double gm_loss(const float *p, void *vctx) {
    gm_ctx *c = vctx;
    scatter(c->m, p);
    octav_train_config tc = zero_lr();
    octav_step_result r;
    if (octav_model_train_step(c->m, &tc, 0, c->x, c->y, c->n, &r) != OCTAV_OK) return NAN;
    return r.loss;
}

/* Per trainable tensor: the directional derivative along a random
 * direction against central differences. ReLU / max-pool switches and
 * batchnorm over a handful of values make these tiny models non-smooth, so
 * the difference is taken at several steps and the best agreement counts:
 * a wrong backward (a missing term, a transposed weight) is off at every
 * step, a kink only at some. */
#define MODEL_GC_RTOL 0.05
static void model_gradcheck_batch(const char *name, octav_model *m, const float *x, const int32_t *y,
                                  int64_t n) {
    octav_model_init(m, 3);
    int64_t np = octav_model_num_params(m);
    float *flat = malloc((size_t)np * sizeof(float)), *grad = malloc((size_t)np * sizeof(float));
    float *p = malloc((size_t)np * sizeof(float));
    double *v = malloc((size_t)np * sizeof(double));
    trng r = {.s = 11};
    int64_t off = 0;
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        if (!t.trainable) continue;
        int64_t k = octav_shape_numel(&t.shape);
        memcpy(flat + off, t.data, (size_t)k * sizeof(float));
        off += k;
    }
    gm_ctx c = {m, flat, x, y, n};
    CHECK(isfinite(gm_loss(flat, &c)));
    off = 0;
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        if (!t.trainable) continue;
        int64_t k = octav_shape_numel(&t.shape);
        memcpy(grad + off, t.grad, (size_t)k * sizeof(float));
        off += k;
    }
    double gmax = 0;
    for (int64_t i = 0; i < np; i++) gmax = fmax(gmax, fabs(grad[i]));
    off = 0;
    int checked = 0;
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        if (!t.trainable) continue;
        int64_t k = octav_shape_numel(&t.shape);
        double an = 0, best = INFINITY, best_num = 0;
        for (int64_t j = 0; j < k; j++) { v[j] = trng_gauss(&r); an += v[j] * grad[off + j]; }
        static const double H[4] = {1e-3, 3e-4, 1e-4, 3e-5};
        for (int hi = 0; hi < 4; hi++) {
            memcpy(p, flat, (size_t)np * sizeof(float));
            for (int64_t j = 0; j < k; j++) p[off + j] = flat[off + j] + (float)(H[hi] * v[j]);
            double lp = gm_loss(p, &c);
            for (int64_t j = 0; j < k; j++) p[off + j] = flat[off + j] - (float)(H[hi] * v[j]);
            double lm = gm_loss(p, &c);
            double num = (lp - lm) / (2 * H[hi]);
            double err = fabs(num - an) / (1e-3 * gmax * sqrt((double)k) + fabs(an));
            if (err < best) { best = err; best_num = num; }
        }
        CHECK_MSG(best <= MODEL_GC_RTOL, "%s %s: analytic %.7g, closest difference quotient %.7g", name, t.name, an,
                  best_num);
        checked++;
        off += k;
    }
    CHECK(checked > 3);
    free(flat); free(grad); free(p); free(v);
}
#endif

