/* test_nn_optim.c -- SGD and AdamW steps, the gradient norm, scaling and
 * the learning-rate schedules.
 *
 * References: torch.optim.SGD / AdamW trajectories and torch's lr
 * schedulers (fixtures made by tests/fixtures/gen_nn_optim.py, which also
 * checks that torch's schedules equal nn.h's formulas), sums recomputed
 * here in double, and nn.h's formulas for the schedule edge cases torch
 * does not define the same way (steps past total).
 *
 * Thread counts: every optimizer loop is elementwise and the norm sums
 * fixed chunks in a fixed order, so 1 and 2 threads must give identical
 * bits on vectors large enough to run in parallel. */
#include "octav/io.h"
#include "octav/nn.h"
#include "test.h"

#ifndef OCTAV_FIXTURES
#error "OCTAV_FIXTURES must name tests/fixtures"
#endif
#define OPT_DIR OCTAV_FIXTURES "/nn_optim/"

/* Named tolerances. */
#define OPT_RTOL 1e-6    /* parameters and state vs torch after 5 steps, relative ... */
#define OPT_ATOL 1e-7    /* ... plus absolute (values are O(0.01) to O(10))           */
#define SCHED_RTOL 1.2e-7 /* octav's double vs torch's value stored as float32        */
#define NORM_RTOL 1e-12  /* chunked double sum vs a compensated sum: <= (n/256) eps / 2 */

enum { N = 37, T = 5, MAXT = 64 };

static float *fbuf(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p) abort();
    return p;
}

static int same_bits(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* Loads OPT_DIR/name.npy, which must hold want floats (any number for
 * want < 0); t owns them. */
static float *load(const char *name, int64_t want, octav_tensor *t) {
    char path[1024];
    snprintf(path, sizeof path, "%s%s.npy", OPT_DIR, name);
    memset(t, 0, sizeof *t);
    if (octav_npy_read(path, t) != OCTAV_OK) {
        CHECK_MSG(0, "%s: %s", path, octav_last_error());
        return NULL;
    }
    if (want >= 0 && octav_shape_numel(&t->shape) != want) {
        CHECK_MSG(0, "%s: %lld elements, want %lld", path, (long long)octav_shape_numel(&t->shape),
                  (long long)want);
        octav_tensor_free(t);
        return NULL;
    }
    return t->data;
}

/* ---- optimizers against torch -------------------------------------------------- */

static void sgd_fixture(const char *cfg) {
    char name[64];
    octav_tensor tp0, tg, thp, tp, ts;
    const float *p0 = load("opt_p0", N, &tp0), *g = load("opt_g", T * N, &tg);
    snprintf(name, sizeof name, "%s_hp", cfg);
    const float *hp = load(name, 4, &thp);
    snprintf(name, sizeof name, "%s_p", cfg);
    const float *wp = load(name, T * N, &tp);
    snprintf(name, sizeof name, "%s_s1", cfg);
    const float *wb = load(name, T * N, &ts);
    if (p0 && g && hp && wp && wb) {
        float p[N], buf[N];
        memcpy(p, p0, sizeof p);
        for (int i = 0; i < N; i++) buf[i] = NAN; /* step 1 must not read it */
        const float lr = hp[0], mom = hp[1], wd = hp[2];
        const int nest = hp[3] != 0.0f;
        for (int t = 1; t <= T; t++) {
            octav_sgd_step(p, g + (t - 1) * N, mom != 0.0f ? buf : NULL, N, lr, mom, wd, nest, t);
            if (!check_arrays_(__FILE__, __LINE__, cfg, p, wp + (t - 1) * N, N, OPT_ATOL, OPT_RTOL))
                fprintf(stderr, "  %s: parameters after step %d\n", cfg, t);
            if (mom != 0.0f &&
                !check_arrays_(__FILE__, __LINE__, cfg, buf, wb + (t - 1) * N, N, OPT_ATOL, OPT_RTOL))
                fprintf(stderr, "  %s: momentum buffer after step %d\n", cfg, t);
        }
    }
    octav_tensor_free(&tp0); octav_tensor_free(&tg); octav_tensor_free(&thp);
    octav_tensor_free(&tp); octav_tensor_free(&ts);
}

static void test_sgd_vs_torch(void) {
    sgd_fixture("sgd_plain");
    sgd_fixture("sgd_momentum");
    sgd_fixture("sgd_nesterov");
}

static void adamw_fixture(const char *cfg) {
    char name[64];
    octav_tensor tp0, tg, thp, tp, tm, tv;
    const float *p0 = load("opt_p0", N, &tp0), *g = load("opt_g", T * N, &tg);
    snprintf(name, sizeof name, "%s_hp", cfg);
    const float *hp = load(name, 5, &thp);
    snprintf(name, sizeof name, "%s_p", cfg);
    const float *wp = load(name, T * N, &tp);
    snprintf(name, sizeof name, "%s_s1", cfg);
    const float *wm = load(name, T * N, &tm);
    snprintf(name, sizeof name, "%s_s2", cfg);
    const float *wv = load(name, T * N, &tv);
    if (p0 && g && hp && wp && wm && wv) {
        float p[N], m[N], v[N];
        memcpy(p, p0, sizeof p);
        memset(m, 0, sizeof m);
        memset(v, 0, sizeof v);
        for (int t = 1; t <= T; t++) {
            octav_adamw_step(p, g + (t - 1) * N, m, v, N, hp[0], hp[1], hp[2], hp[3], hp[4], t);
            int ok = check_arrays_(__FILE__, __LINE__, cfg, p, wp + (t - 1) * N, N, OPT_ATOL, OPT_RTOL);
            ok &= check_arrays_(__FILE__, __LINE__, cfg, m, wm + (t - 1) * N, N, OPT_ATOL, OPT_RTOL);
            ok &= check_arrays_(__FILE__, __LINE__, cfg, v, wv + (t - 1) * N, N, OPT_ATOL, OPT_RTOL);
            if (!ok) fprintf(stderr, "  %s: after step %d (p, m, v)\n", cfg, t);
        }
        /* element 3 has had only zero gradients: v == 0, denominator eps */
        CHECK(v[3] == 0.0f && m[3] == 0.0f);
    }
    octav_tensor_free(&tp0); octav_tensor_free(&tg); octav_tensor_free(&thp);
    octav_tensor_free(&tp); octav_tensor_free(&tm); octav_tensor_free(&tv);
}

static void test_adamw_vs_torch(void) {
    adamw_fixture("adamw");
    adamw_fixture("adamw_b");
}

/* Hand-checkable single steps. */
static void test_optim_exact(void) {
    /* SGD without momentum: p - lr (g + wd p); momentum 0 ignores buf */
    float p[2] = {1.0f, -2.0f}, g[2] = {0.5f, 0.25f};
    octav_sgd_step(p, g, NULL, 2, 0.5f, 0.0f, 0.5f, 1, 1);
    CHECK(p[0] == 1.0f - 0.5f * (0.5f + 0.5f) && p[1] == -2.0f - 0.5f * (0.25f - 1.0f));
    /* momentum: buf = g at t == 1 (whatever it held), then m buf + g */
    float q[1] = {0.0f}, gq[1] = {1.0f}, buf[1] = {100.0f};
    octav_sgd_step(q, gq, buf, 1, 1.0f, 0.5f, 0.0f, 0, 1);
    CHECK(buf[0] == 1.0f && q[0] == -1.0f);
    octav_sgd_step(q, gq, buf, 1, 1.0f, 0.5f, 0.0f, 0, 2);
    CHECK(buf[0] == 1.5f && q[0] == -2.5f);
    octav_sgd_step(q, gq, buf, 1, 1.0f, 0.5f, 0.0f, 1, 3); /* nesterov: g + m buf */
    CHECK(buf[0] == 1.75f && q[0] == -2.5f - (1.0f + 0.875f));
    /* AdamW at t == 1: m_hat = g, v_hat = g^2, so the step is lr g / (|g| + eps) */
    float a[1] = {1.0f}, ga[1] = {-0.5f}, m[1] = {0.0f}, v[1] = {0.0f};
    octav_adamw_step(a, ga, m, v, 1, 0.25f, 0.5f, 0.75f, 0.0f, 0.0f, 1);
    CHECK(m[0] == -0.25f && v[0] == 0.0625f);
    CHECK_NEAR(a[0], 1.25, 0.0, 1e-7);
}

/* The step sequence of the thread tests: 3 SGD steps (momentum, weight
 * decay, Nesterov on the last), 3 AdamW steps, a scale. */
static void optim_sequence(float *p, const float *g, float *s1, float *s2, int64_t n) {
    for (int t = 1; t <= 3; t++) octav_sgd_step(p, g, s1, n, 0.05f, 0.9f, 5e-4f, t == 3, t);
    memset(s1, 0, (size_t)n * sizeof *s1);
    memset(s2, 0, (size_t)n * sizeof *s2);
    for (int t = 1; t <= 3; t++) octav_adamw_step(p, g, s1, s2, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, t);
    octav_scale(p, n, 0.75f);
}

/* 1 vs 2 threads on vectors big enough for the parallel loops: identical.
 * And the vectorised loops give the bits of one element at a time (n = 1). */
static void test_optim_threads(void) {
    const int64_t n = (1 << 20) + 3;
    trng r = {71, 0, 0};
    float *g = fbuf(n), *p0 = fbuf(n);
    for (int64_t i = 0; i < n; i++) { g[i] = (float)trng_gauss(&r); p0[i] = (float)trng_gauss(&r); }
    float *p[2], *s1[2], *s2[2];
    double norm[2];
    int saved = octav_get_threads();
    for (int v = 0; v < 2; v++) {
        octav_set_threads(v + 1);
        p[v] = fbuf(n); s1[v] = fbuf(n); s2[v] = fbuf(n);
        memcpy(p[v], p0, (size_t)n * sizeof *p0);
        optim_sequence(p[v], g, s1[v], s2[v], n);
        norm[v] = octav_grad_norm(p[v], n);
    }
    octav_set_threads(saved);
    CHECK_MSG(same_bits(p[0], p[1], n), "parameters differ between 1 and 2 threads");
    CHECK_MSG(same_bits(s1[0], s1[1], n) && same_bits(s2[0], s2[1], n), "AdamW state differs");
    CHECK_MSG(memcmp(&norm[0], &norm[1], sizeof norm[0]) == 0, "norm %.17g vs %.17g", norm[0], norm[1]);
    int64_t bad = -1;
    for (int64_t i = 0; i < n && bad < 0; i += (i < 100 || i > n - 100) ? 1 : 997) {
        float pi = p0[i], a = 0.0f, b = 0.0f;
        optim_sequence(&pi, &g[i], &a, &b, 1);
        if (!same_bits(&pi, &p[1][i], 1) || !same_bits(&a, &s1[1][i], 1) || !same_bits(&b, &s2[1][i], 1)) bad = i;
    }
    CHECK_MSG(bad < 0, "element %lld: one-element call differs from the vector call", (long long)bad);
    for (int v = 0; v < 2; v++) { free(p[v]); free(s1[v]); free(s2[v]); }
    free(g); free(p0);
}

/* ---- norm and scale ------------------------------------------------------------- */

static void test_norm_scale(void) {
    static const int64_t SIZES[] = {0, 1, 5, 4095, 4096, 100003, (1 << 20) + 7, 3000000};
    trng r = {81, 0, 0};
    for (size_t s = 0; s < sizeof SIZES / sizeof SIZES[0]; s++) {
        const int64_t n = SIZES[s];
        float *g = fbuf(n), *h = fbuf(n);
        double ref = 0.0, comp = 0.0; /* Neumaier summation */
        for (int64_t i = 0; i < n; i++) {
            g[i] = (float)(trng_gauss(&r) * 1e-3);
            double x = (double)g[i] * (double)g[i], t = ref + x;
            comp += fabs(ref) >= fabs(x) ? (ref - t) + x : (x - t) + ref;
            ref = t;
        }
        ref = sqrt(ref + comp);
        double got = octav_grad_norm(g, n);
        CHECK_MSG(fabs(got - ref) <= NORM_RTOL * ref, "n %lld: %.17g vs %.17g", (long long)n, got, ref);
        memcpy(h, g, (size_t)n * sizeof *g);
        octav_scale(h, n, -0.3f);
        int ok = 1;
        for (int64_t i = 0; i < n; i++) if (h[i] != g[i] * -0.3f) { ok = 0; break; }
        CHECK_MSG(ok, "scale, n %lld", (long long)n);
        free(g); free(h);
    }
    float e[3] = {3.0f, 0.0f, -4.0f};
    CHECK(octav_grad_norm(e, 3) == 5.0);
    octav_scale(e, 3, 1.0f);
    CHECK(e[0] == 3.0f && e[2] == -4.0f);
}

/* ---- schedules ---------------------------------------------------------------------- */

static void test_sched_vs_torch(void) {
    octav_tensor tc, tl;
    const float *cfg = load("sched_cfg", -1, &tc);
    if (!cfg || tc.shape.ndim != 2 || tc.shape.dim[1] != 7) {
        CHECK_MSG(cfg == NULL, "sched_cfg: want shape (K, 7)");
        octav_tensor_free(&tc);
        return;
    }
    const int64_t K = tc.shape.dim[0];
    const float *lr = load("sched_lr", K * MAXT, &tl);
    for (int64_t i = 0; lr && i < K; i++) {
        const float *c = cfg + i * 7;
        octav_schedule s = {(octav_sched_kind)c[0], (int64_t)c[1], (int64_t)c[2], (int64_t)c[3], c[4], c[5]};
        const double base = c[6];
        int64_t bad = -1;
        double got_bad = 0;
        for (int64_t step = 0; step < s.total_steps; step++) {
            double got = octav_schedule_lr(&s, base, step), want = lr[i * MAXT + step];
            if (!(fabs(got - want) <= SCHED_RTOL * fabs(want))) { bad = step; got_bad = got; break; }
        }
        CHECK_MSG(bad < 0, "schedule %lld (%s, total %lld, warmup %lld): step %lld: %.9g vs torch %.9g",
                  (long long)i, octav_sched_name(s.kind), (long long)s.total_steps, (long long)s.warmup_steps,
                  (long long)bad, got_bad, bad >= 0 ? lr[i * MAXT + bad] : 0.0);
    }
    octav_tensor_free(&tc);
    octav_tensor_free(&tl);
}

/* The edges nn.h's formulas leave open, as optim.c defines them. */
static void test_sched_edges(void) {
    const double lr = 0.1;
    octav_schedule cs = {OCTAV_SCHED_COSINE, 10, 2, 0, 0.0, 0.2};
    CHECK(octav_schedule_lr(&cs, lr, 0) == lr * 1.0 / 2.0);
    CHECK(octav_schedule_lr(&cs, lr, 1) == lr);
    CHECK(octav_schedule_lr(&cs, lr, 2) == lr);                  /* t = 0 */
    CHECK_NEAR(octav_schedule_lr(&cs, lr, 6), 0.02 + 0.08 * 0.5, 0, 1e-15); /* t = 1/2 */
    CHECK_NEAR(octav_schedule_lr(&cs, lr, 10), 0.02, 0, 1e-15);  /* step == total: t = 1, min */
    CHECK_NEAR(octav_schedule_lr(&cs, lr, 1000), 0.02, 0, 1e-15); /* past total: stays at min */
    CHECK(octav_schedule_lr(&cs, lr, -5) == octav_schedule_lr(&cs, lr, 0));
    octav_schedule ls = {OCTAV_SCHED_LINEAR, 4, 0, 0, 0.0, 0.0};
    CHECK(octav_schedule_lr(&ls, lr, 0) == lr);
    CHECK_NEAR(octav_schedule_lr(&ls, lr, 2), 0.05, 0, 1e-15);
    CHECK(octav_schedule_lr(&ls, lr, 4) == 0.0);
    CHECK(octav_schedule_lr(&ls, lr, 9) == 0.0);
    octav_schedule ss = {OCTAV_SCHED_STEP, 100, 0, 0, 0.5, 0.0}; /* step_size 0: no decay */
    CHECK(octav_schedule_lr(&ss, lr, 50) == lr);
    ss.step_size = 10;
    CHECK(octav_schedule_lr(&ss, lr, 9) == lr && octav_schedule_lr(&ss, lr, 10) == lr * 0.5 &&
          octav_schedule_lr(&ss, lr, 35) == lr * 0.125);
    octav_schedule ws = {OCTAV_SCHED_COSINE, 3, 5, 0, 0.0, 0.0}; /* warmup longer than total */
    CHECK(octav_schedule_lr(&ws, lr, 2) == lr * 3.0 / 5.0);
    CHECK(octav_schedule_lr(&ws, lr, 5) == 0.0);
    octav_schedule k0 = {OCTAV_SCHED_CONSTANT, 10, 0, 0, 0.0, 0.0};
    for (int64_t s = 0; s < 12; s++) CHECK(octav_schedule_lr(&k0, lr, s) == lr);
}

static void test_sched_names(void) {
    static const octav_sched_kind KINDS[] = {OCTAV_SCHED_CONSTANT, OCTAV_SCHED_STEP, OCTAV_SCHED_COSINE,
                                             OCTAV_SCHED_LINEAR};
    static const char *const NAMES[] = {"constant", "step", "cosine", "linear"};
    for (int i = 0; i < 4; i++) {
        octav_sched_kind k = (octav_sched_kind)99;
        CHECK(strcmp(octav_sched_name(KINDS[i]), NAMES[i]) == 0);
        CHECK(octav_sched_parse(NAMES[i], &k) == OCTAV_OK && k == KINDS[i]);
    }
    CHECK(strcmp(octav_sched_name((octav_sched_kind)42), "unknown") == 0);
    octav_sched_kind k = OCTAV_SCHED_STEP;
    CHECK(octav_sched_parse("cosine_restarts", &k) == OCTAV_EINVAL);
    CHECK(k == OCTAV_SCHED_STEP);
    const char *msg = octav_last_error();
    CHECK_MSG(strstr(msg, "cosine_restarts") && strstr(msg, "constant, step, cosine, linear"), "message: %s", msg);
    CHECK(octav_sched_parse("Cosine", &k) == OCTAV_EINVAL);
    CHECK(octav_sched_parse("", &k) == OCTAV_EINVAL);
    CHECK(octav_sched_parse(NULL, &k) == OCTAV_EINVAL);
    CHECK(octav_sched_parse("step", NULL) == OCTAV_EINVAL);
}

int main(void) {
    RUN(test_sgd_vs_torch);
    RUN(test_adamw_vs_torch);
    RUN(test_optim_exact);
    RUN(test_optim_threads);
    RUN(test_norm_scale);
    RUN(test_sched_vs_torch);
    RUN(test_sched_edges);
    RUN(test_sched_names);
    return TEST_SUMMARY();
}
