/* test_nn_conv.c -- conv2d: the reference against finite differences and
 * PyTorch, every backend against the reference, descriptor errors, and
 * allocation failures.
 *
 * Tolerances. A float result that sums terms t_k may be off by a few
 * FLT_EPSILON times sum |t_k| (more terms, more roundings). That scale is
 * computed per element by running the double-accumulating reference on
 * |x|, |w|, |b|, |dy|, and a result passes when
 *     |got - ref| <= TOL_EPS * FLT_EPSILON * scale.
 * The reference itself rounds once (it sums in double), so it is held to
 * REF_TOL_EPS against PyTorch (whose fixtures are float64 results rounded
 * once). */
#include "nn/conv_impl.h"
#include "octav/io.h"
#include "gradcheck.h"
#include "test_io.h"

#include <float.h>

#ifndef OCTAV_FIXTURES
#error "OCTAV_FIXTURES must name tests/fixtures"
#endif
#define FIX OCTAV_FIXTURES "/nn_conv/"

#define TOL_EPS 64.0    /* backends vs reference / PyTorch, in eps * sum|terms| */
#define REF_TOL_EPS 4.0 /* reference vs PyTorch (both round once, plus 1/2 ulp) */
#define GC_STEP 1e-2    /* the op is linear in each of x, w, b: any step works */

/* ---- helpers ------------------------------------------------------------------ */

static octav_conv2d_desc mk(int64_t n, int64_t ci, int64_t h, int64_t w, int64_t co, int64_t kh,
                            int64_t kw, int sh, int sw, int ph, int pw, int g) {
    octav_conv2d_desc d = {.n = n, .c_in = ci, .h_in = h, .w_in = w, .c_out = co, .kh = kh,
                           .kw = kw, .stride_h = sh, .stride_w = sw, .pad_h = ph, .pad_w = pw,
                           .groups = g};
    return d;
}

static float *alloc_f(int64_t n) { return malloc((size_t)(n > 0 ? n : 1) * sizeof(float)); }

static float *randn(int64_t n, trng *r, double scale) {
    float *p = alloc_f(n);
    for (int64_t i = 0; i < n; i++) p[i] = (float)(scale * trng_gauss(r));
    return p;
}

static float *abs_of(const float *a, int64_t n) {
    float *p = alloc_f(n);
    for (int64_t i = 0; i < n; i++) p[i] = fabsf(a[i]);
    return p;
}

static void fill(float *p, int64_t n, float v) {
    for (int64_t i = 0; i < n; i++) p[i] = v;
}

static int check_scaled_(const char *file, int line, const char *what, const float *got,
                         const float *ref, const float *scale, int64_t n, double tol_eps) {
    int64_t bad = -1, nbad = 0;
    double maxr = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - (double)ref[i]);
        double lim = tol_eps * FLT_EPSILON * (double)scale[i] + FLT_MIN;
        if (e / lim > maxr || isnan(e)) maxr = isnan(e) ? INFINITY : e / lim;
        if (!(e <= lim)) {
            if (bad < 0) bad = i;
            nbad++;
        }
    }
    if (bad >= 0) {
        fprintf(stderr, "  %s:%d: %s: %lld of %lld differ, max err %.3g x tolerance, first at "
                "%lld: %.9g vs %.9g (scale %.3g)\n", file, line, what, (long long)nbad,
                (long long)n, maxr, (long long)bad, got[bad], ref[bad], scale[bad]);
        t_failed_checks_++;
        return 0;
    }
    return 1;
}
#define CHECK_SCALED(what, got, ref, scale, n, tol) \
    check_scaled_(__FILE__, __LINE__, what, got, ref, scale, n, tol)

/* Backend variants under test. */
typedef struct {
    const char *name;
    octav_backend be;
    int layout; /* DNNL only */
} variant;

static const variant variants[] = {
    {"ref", OCTAV_BACKEND_REF, 0},
    {"gemm", OCTAV_BACKEND_GEMM, 0},
    {"dnnl", OCTAV_BACKEND_DNNL, CONV_DNNL_AUTO},
    {"dnnl-plain", OCTAV_BACKEND_DNNL, CONV_DNNL_PLAIN},
    {"dnnl-blocked", OCTAV_BACKEND_DNNL, CONV_DNNL_BLOCKED},
    {"auto", OCTAV_BACKEND_AUTO, 0},
};
#define NVARIANTS ((int)(sizeof variants / sizeof *variants))

static octav_status make_plan(const variant *v, const octav_conv2d_desc *d, octav_conv2d **c) {
    if (v->be == OCTAV_BACKEND_DNNL && v->layout != CONV_DNNL_AUTO)
        return octav_conv2d_create_dnnl(d, v->layout, c);
    return octav_conv2d_create(d, v->be, c);
}

/* A problem with its reference results and tolerance scales. */
typedef struct {
    octav_conv2d_desc d;
    int64_t nx, ny, nw;
    float *x, *w, *b, *dy;
    float *y, *y_nob, *dx, *dw, *db;     /* reference results */
    float *sy, *sy_nob, *sdx, *sdw, *sdb; /* scales */
} problem;

static void problem_free(problem *p) {
    float *all[] = {p->x, p->w, p->b, p->dy, p->y, p->y_nob, p->dx, p->dw, p->db,
                    p->sy, p->sy_nob, p->sdx, p->sdw, p->sdb};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
    memset(p, 0, sizeof *p);
}

static void problem_refs(problem *p) {
    const octav_conv2d_desc *d = &p->d;
    p->y = alloc_f(p->ny); p->y_nob = alloc_f(p->ny);
    p->dx = alloc_f(p->nx); p->dw = alloc_f(p->nw); p->db = alloc_f(d->c_out);
    p->sy = alloc_f(p->ny); p->sy_nob = alloc_f(p->ny);
    p->sdx = alloc_f(p->nx); p->sdw = alloc_f(p->nw); p->sdb = alloc_f(d->c_out);
    octav_conv2d_forward_ref(d, p->x, p->w, p->b, p->y);
    octav_conv2d_forward_ref(d, p->x, p->w, NULL, p->y_nob);
    octav_conv2d_backward_ref(d, p->x, p->w, p->dy, p->dx, p->dw, p->db);
    float *ax = abs_of(p->x, p->nx), *aw = abs_of(p->w, p->nw), *ab = abs_of(p->b, d->c_out);
    float *ady = abs_of(p->dy, p->ny);
    octav_conv2d_forward_ref(d, ax, aw, ab, p->sy);
    octav_conv2d_forward_ref(d, ax, aw, NULL, p->sy_nob);
    octav_conv2d_backward_ref(d, ax, aw, ady, p->sdx, p->sdw, p->sdb);
    free(ax); free(aw); free(ab); free(ady);
}

static int problem_init(problem *p, octav_conv2d_desc d, uint64_t seed) {
    memset(p, 0, sizeof *p);
    if (octav_conv2d_desc_check(&d) != OCTAV_OK) {
        CHECK_MSG(0, "bad test shape: %s", octav_last_error());
        return 0;
    }
    p->d = d;
    p->nx = conv_x_numel(&d); p->ny = conv_y_numel(&d); p->nw = conv_w_numel(&d);
    trng r = {seed, 0, 0};
    p->x = randn(p->nx, &r, 1.0);
    p->w = randn(p->nw, &r, 1.0 / sqrt((double)(d.c_in / d.groups * d.kh * d.kw)));
    p->b = randn(d.c_out, &r, 1.0);
    p->dy = randn(p->ny, &r, 1.0);
    problem_refs(p);
    return 1;
}

static void shape_str(const octav_conv2d_desc *d, char *buf, size_t len) {
    snprintf(buf, len, "n%lld c%lld->%lld %lldx%lld k%lldx%lld s%d,%d p%d,%d g%d",
             (long long)d->n, (long long)d->c_in, (long long)d->c_out, (long long)d->h_in,
             (long long)d->w_in, (long long)d->kh, (long long)d->kw, d->stride_h, d->stride_w,
             d->pad_h, d->pad_w, d->groups);
}

/* Runs variant v on p: forward with and without bias, backward with every
 * subset of (dx, dw, db); outputs not asked for must stay untouched, asked
 * ones are overwritten (they start as NaN); a second run gives the same
 * bits. */
static void run_variant(const problem *p, const variant *v, double tol) {
    const octav_conv2d_desc *d = &p->d;
    char sh[160], what[256];
    shape_str(d, sh, sizeof sh);
    octav_conv2d *c = NULL;
    octav_status st = make_plan(v, d, &c);
    CHECK_MSG(st == OCTAV_OK, "%s %s: create: %s", v->name, sh, octav_last_error());
    if (st != OCTAV_OK) return;
    const float sentinel = 12345.0f;
    float *y = alloc_f(p->ny), *y2 = alloc_f(p->ny);
    float *dx = alloc_f(p->nx), *dw = alloc_f(p->nw), *db = alloc_f(d->c_out);
    float *dx2 = alloc_f(p->nx), *dw2 = alloc_f(p->nw), *db2 = alloc_f(d->c_out);

    fill(y, p->ny, NAN);
    CHECK(octav_conv2d_forward(c, p->x, p->w, p->b, y) == OCTAV_OK);
    snprintf(what, sizeof what, "%s %s y", v->name, sh);
    CHECK_SCALED(what, y, p->y, p->sy, p->ny, tol);
    fill(y2, p->ny, NAN);
    CHECK(octav_conv2d_forward(c, p->x, p->w, p->b, y2) == OCTAV_OK);
    CHECK_MSG(memcmp(y, y2, (size_t)p->ny * sizeof *y) == 0, "%s %s: forward not repeatable",
              v->name, sh);
    fill(y, p->ny, NAN);
    CHECK(octav_conv2d_forward(c, p->x, p->w, NULL, y) == OCTAV_OK);
    snprintf(what, sizeof what, "%s %s y (no bias)", v->name, sh);
    CHECK_SCALED(what, y, p->y_nob, p->sy_nob, p->ny, tol);

    for (int mask = 1; mask < 8; mask++) {
        int want_dx = mask & 1, want_dw = mask & 2, want_db = mask & 4;
        fill(dx, p->nx, want_dx ? NAN : sentinel);
        fill(dw, p->nw, want_dw ? NAN : sentinel);
        fill(db, d->c_out, want_db ? NAN : sentinel);
        st = octav_conv2d_backward(c, p->x, p->w, p->dy, want_dx ? dx : NULL,
                                   want_dw ? dw : NULL, want_db ? db : NULL);
        CHECK_MSG(st == OCTAV_OK, "%s %s backward: %s", v->name, sh, octav_last_error());
        snprintf(what, sizeof what, "%s %s mask %d dx", v->name, sh, mask);
        if (want_dx) CHECK_SCALED(what, dx, p->dx, p->sdx, p->nx, tol);
        snprintf(what, sizeof what, "%s %s mask %d dw", v->name, sh, mask);
        if (want_dw) CHECK_SCALED(what, dw, p->dw, p->sdw, p->nw, tol);
        snprintf(what, sizeof what, "%s %s mask %d db", v->name, sh, mask);
        if (want_db) CHECK_SCALED(what, db, p->db, p->sdb, d->c_out, tol);
        int untouched = 1;
        for (int64_t i = 0; !want_dx && i < p->nx; i++) untouched &= dx[i] == sentinel;
        for (int64_t i = 0; !want_dw && i < p->nw; i++) untouched &= dw[i] == sentinel;
        for (int64_t i = 0; !want_db && i < d->c_out; i++) untouched &= db[i] == sentinel;
        CHECK_MSG(untouched, "%s %s mask %d: wrote a gradient not asked for", v->name, sh, mask);
    }
    /* Repeatable: the same bits from a second full backward. */
    CHECK(octav_conv2d_backward(c, p->x, p->w, p->dy, dx, dw, db) == OCTAV_OK);
    CHECK(octav_conv2d_backward(c, p->x, p->w, p->dy, dx2, dw2, db2) == OCTAV_OK);
    CHECK_MSG(memcmp(dx, dx2, (size_t)p->nx * 4) == 0 && memcmp(dw, dw2, (size_t)p->nw * 4) == 0 &&
                  memcmp(db, db2, (size_t)d->c_out * 4) == 0,
              "%s %s: backward not repeatable", v->name, sh);
    octav_conv2d_destroy(c);
    free(y); free(y2); free(dx); free(dw); free(db); free(dx2); free(dw2); free(db2);
}

/* ---- (a) finite differences on the reference ---------------------------------- */

typedef struct {
    const octav_conv2d_desc *d;
    const float *x, *w, *b, *r;
    float *y;
    int which; /* 0 x, 1 w, 2 b */
    int64_t ny;
} gc_ctx;

static double gc_loss(const float *p, void *vctx) {
    gc_ctx *c = vctx;
    octav_conv2d_forward_ref(c->d, c->which == 0 ? p : c->x, c->which == 1 ? p : c->w,
                             c->which == 2 ? p : c->b, c->y);
    return gc_dot(c->r, c->y, c->ny);
}

static void gradcheck_shape(octav_conv2d_desc d, uint64_t seed) {
    problem p;
    if (!problem_init(&p, d, seed)) return;
    char sh[160], what[200];
    shape_str(&p.d, sh, sizeof sh);
    trng r = {seed ^ 0x5555, 0, 0};
    float *y = alloc_f(p.ny);
    gc_ctx c = {&p.d, p.x, p.w, p.b, p.dy, y, 0, p.ny};
    snprintf(what, sizeof what, "%s dx", sh);
    GC_CHECK(what, gc_loss, &c, p.x, p.dx, p.nx, GC_STEP, &r);
    c.which = 1;
    snprintf(what, sizeof what, "%s dw", sh);
    GC_CHECK(what, gc_loss, &c, p.w, p.dw, p.nw, GC_STEP, &r);
    c.which = 2;
    snprintf(what, sizeof what, "%s db", sh);
    GC_CHECK(what, gc_loss, &c, p.b, p.db, p.d.c_out, GC_STEP, &r);
    free(y);
    problem_free(&p);
}

static void test_ref_gradcheck(void) {
    gradcheck_shape(mk(2, 3, 7, 6, 4, 3, 3, 1, 1, 1, 1, 1), 11);  /* padding */
    gradcheck_shape(mk(2, 3, 9, 8, 5, 3, 3, 2, 2, 1, 1, 1), 12);  /* stride 2 */
    gradcheck_shape(mk(2, 4, 6, 7, 6, 3, 3, 1, 1, 1, 1, 2), 13);  /* groups 2 */
    gradcheck_shape(mk(2, 5, 7, 7, 5, 3, 3, 2, 2, 1, 1, 5), 14);  /* depthwise s2 */
    gradcheck_shape(mk(2, 6, 5, 5, 4, 1, 1, 1, 1, 0, 0, 1), 15);  /* 1x1 */
    gradcheck_shape(mk(1, 2, 6, 9, 3, 2, 3, 1, 2, 1, 0, 1), 16);  /* non-square */
    gradcheck_shape(mk(2, 1, 5, 5, 3, 5, 5, 3, 3, 2, 2, 1), 17);  /* c_in 1, 5x5 stride 3 */
}

/* Spot check of the reference against a hand-made case: a 3x3 all-ones
 * kernel on a 3x3 ramp with padding 1 sums each neighbourhood. */
static void test_ref_small(void) {
    octav_conv2d_desc d = mk(1, 1, 3, 3, 1, 3, 3, 1, 1, 1, 1, 1);
    CHECK(octav_conv2d_desc_check(&d) == OCTAV_OK);
    CHECK_EQ_INT(d.h_out, 3);
    CHECK_EQ_INT(d.w_out, 3);
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9], b = 0.5f, y[9];
    fill(w, 9, 1.0f);
    octav_conv2d_forward_ref(&d, x, w, &b, y);
    const float expect[9] = {12.5f, 21.5f, 16.5f, 27.5f, 45.5f, 33.5f, 24.5f, 39.5f, 28.5f};
    CHECK_ARRAYS(y, expect, 9, 0.0, 0.0);
}

/* ---- (b) backends against the reference ---------------------------------------- */

static octav_conv2d_desc shapes[64];
static size_t nshapes;

static void init_shapes(void) {
    const octav_conv2d_desc list[] = {
        mk(2, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1),
        mk(1, 5, 7, 9, 6, 3, 3, 1, 1, 1, 1, 1),     /* batch 1, odd sizes */
        mk(3, 1, 11, 10, 8, 3, 3, 1, 1, 1, 1, 1),   /* c_in 1 (the first layer) */
        mk(2, 1, 9, 9, 4, 5, 5, 2, 2, 2, 2, 1),     /* c_in 1, 5x5, stride 2 */
        mk(2, 16, 10, 10, 16, 3, 3, 1, 1, 1, 1, 1),
        mk(2, 17, 9, 9, 20, 3, 3, 2, 2, 1, 1, 1),   /* channels not multiples of 16 */
        mk(2, 8, 9, 8, 12, 3, 3, 2, 2, 1, 1, 1),    /* stride 2, floor drops a row */
        mk(2, 6, 10, 9, 9, 3, 3, 2, 2, 0, 0, 1),    /* stride 2 no padding */
        mk(2, 6, 8, 8, 4, 3, 3, 3, 3, 1, 1, 1),     /* stride 3 */
        mk(3, 8, 9, 9, 12, 1, 1, 2, 2, 0, 0, 1),    /* 1x1 stride 2 (projection) */
        mk(2, 16, 6, 6, 24, 1, 1, 1, 1, 0, 0, 1),   /* 1x1 expand */
        mk(2, 24, 5, 5, 8, 1, 1, 1, 1, 0, 0, 1),    /* 1x1 project */
        mk(2, 8, 7, 7, 8, 3, 3, 1, 1, 1, 1, 8),     /* depthwise */
        mk(3, 24, 9, 9, 24, 3, 3, 2, 2, 1, 1, 24),  /* depthwise stride 2, 24 channels */
        mk(1, 4, 6, 7, 8, 3, 3, 1, 1, 1, 1, 4),     /* depthwise, multiplier 2 */
        mk(2, 3, 11, 11, 3, 5, 5, 1, 1, 2, 2, 3),   /* depthwise 5x5 */
        mk(2, 5, 9, 12, 5, 3, 2, 2, 3, 0, 1, 5),    /* depthwise, per-axis strides/pads */
        mk(2, 3, 7, 21, 3, 3, 5, 1, 2, 1, 2, 3),    /* depthwise, column stride 2 only */
        mk(1, 2, 11, 35, 4, 4, 3, 3, 2, 2, 0, 2),   /* depthwise x2, strides 3 and 2, wide */
        mk(2, 4, 8, 8, 4, 2, 2, 2, 2, 0, 0, 4),     /* depthwise 2x2 stride 2 */
        mk(1, 3, 10, 7, 6, 3, 3, 2, 2, 1, 1, 3),    /* depthwise multiplier 2, stride 2 */
        mk(2, 4, 5, 6, 4, 3, 3, 3, 2, 2, 2, 4),     /* depthwise, pad 2 with 3x3, stride 3 */
        mk(1, 2, 1, 9, 2, 1, 3, 1, 1, 0, 1, 2),     /* depthwise on 1-row images */
        mk(2, 4, 7, 7, 6, 3, 3, 1, 1, 1, 1, 2),     /* groups 2 */
        mk(2, 12, 6, 6, 12, 3, 3, 1, 1, 0, 0, 3),   /* groups 3 */
        mk(1, 3, 6, 10, 5, 2, 3, 1, 2, 1, 0, 1),    /* non-square kernel, stride, pad */
        mk(2, 3, 4, 4, 5, 4, 4, 1, 1, 0, 0, 1),     /* kernel = input: 1x1 output */
        mk(2, 3, 3, 3, 4, 3, 3, 1, 1, 2, 2, 1),     /* padding larger than half the kernel */
        mk(2, 2, 1, 1, 3, 1, 1, 1, 1, 0, 0, 1),     /* 1x1 images */
        mk(5, 4, 6, 6, 5, 3, 3, 1, 1, 1, 1, 1),     /* odd batch (GEMM chunks, threads) */
        mk(7, 6, 4, 4, 7, 1, 1, 1, 1, 0, 0, 1),     /* odd batch, 1x1 */
    };
    _Static_assert(sizeof list <= sizeof shapes, "enlarge shapes[]");
    nshapes = sizeof list / sizeof *list;
    memcpy(shapes, list, sizeof list);
}

static void test_backends_vs_ref(void) {
    for (size_t i = 0; i < nshapes; i++) {
        problem p;
        if (!problem_init(&p, shapes[i], 100 + i)) continue;
        for (int v = 0; v < NVARIANTS; v++) run_variant(&p, &variants[v], TOL_EPS);
        problem_free(&p);
    }
}

/* The GEMM backend's two modes (chunks of images, several of them with the
 * last one short; images in parallel) at one thread, and at two threads on
 * every sixth shape (two-thread runs are slow on a loaded machine, where
 * OpenMP threads spin while waiting for a descheduled one). */
static void test_gemm_modes(void) {
    const variant gemm = {"gemm-mode", OCTAV_BACKEND_GEMM, 0};
    int threads = octav_get_threads();
    for (size_t i = 0; i < nshapes; i++) {
        problem p;
        if (!problem_init(&p, shapes[i], 200 + i)) continue;
        octav_conv_gemm_set_chunk_cols(2 * p.d.h_out * p.d.w_out); /* 2 images per chunk */
        for (int mode = 1; mode <= 2; mode++) {
            octav_conv_gemm_set_mode(mode);
            for (int t = 1; t <= (i % 6 == 0 ? 2 : 1); t++) {
                octav_set_threads(t);
                run_variant(&p, &gemm, TOL_EPS);
            }
        }
        octav_conv_gemm_set_chunk_cols(0);
        octav_conv_gemm_set_mode(0);
        octav_set_threads(threads);
        problem_free(&p);
    }
}

/* Every backend at two threads (one thread is what the other tests use) on
 * a depthwise and a plain shape. */
static void test_threads(void) {
    const octav_conv2d_desc shapes[] = {
        mk(4, 16, 8, 8, 16, 3, 3, 1, 1, 1, 1, 16),
        mk(4, 8, 8, 8, 16, 3, 3, 1, 1, 1, 1, 1),
    };
    int threads = octav_get_threads();
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        problem p;
        if (!problem_init(&p, shapes[i], 300 + i)) continue;
        octav_set_threads(2);
        for (int v = 1; v < NVARIANTS; v++) run_variant(&p, &variants[v], TOL_EPS);
        octav_set_threads(threads);
        problem_free(&p);
    }
}

/* ---- (c) PyTorch fixtures --------------------------------------------------------- */

static int load(const char *cas, const char *t, octav_tensor *out, int64_t expect) {
    char path[512];
    snprintf(path, sizeof path, FIX "%s_%s.npy", cas, t);
    octav_status st = octav_npy_read(path, out);
    CHECK_MSG(st == OCTAV_OK, "%s: %s", path, octav_last_error());
    if (st != OCTAV_OK) return 0;
    int64_t n = octav_shape_numel(&out->shape);
    CHECK_MSG(expect < 0 || n == expect, "%s: %lld elements, expected %lld", path, (long long)n,
              (long long)expect);
    return expect < 0 || n == expect;
}

static void fixture_case(const char *cas) {
    octav_tensor prm = {0}, t[8] = {{0}};
    const char *names[8] = {"x", "w", "b", "dy", "y", "dx", "dw", "db"};
    if (!load(cas, "params", &prm, 12)) return;
    const float *q = prm.data;
    octav_conv2d_desc d = mk((int64_t)q[0], (int64_t)q[1], (int64_t)q[2], (int64_t)q[3],
                             (int64_t)q[4], (int64_t)q[5], (int64_t)q[6], (int)q[7], (int)q[8],
                             (int)q[9], (int)q[10], (int)q[11]);
    octav_tensor_free(&prm);
    if (octav_conv2d_desc_check(&d) != OCTAV_OK) {
        CHECK_MSG(0, "%s: bad params: %s", cas, octav_last_error());
        return;
    }
    int64_t nx = conv_x_numel(&d), ny = conv_y_numel(&d), nw = conv_w_numel(&d);
    const int64_t sizes[8] = {nx, nw, d.c_out, ny, ny, nx, nw, d.c_out};
    int ok = 1;
    for (int i = 0; i < 8; i++) ok &= load(cas, names[i], &t[i], sizes[i]);
    if (ok) {
        /* Reference results: the test's problem built on the fixture inputs. */
        problem p;
        memset(&p, 0, sizeof p);
        p.d = d; p.nx = nx; p.ny = ny; p.nw = nw;
        p.x = t[0].data; p.w = t[1].data; p.b = t[2].data; p.dy = t[3].data;
        problem_refs(&p);
        char what[200];
        /* octav's reference vs PyTorch. */
        snprintf(what, sizeof what, "%s: ref y vs torch", cas);
        CHECK_SCALED(what, p.y, t[4].data, p.sy, ny, REF_TOL_EPS);
        snprintf(what, sizeof what, "%s: ref dx vs torch", cas);
        CHECK_SCALED(what, p.dx, t[5].data, p.sdx, nx, REF_TOL_EPS);
        snprintf(what, sizeof what, "%s: ref dw vs torch", cas);
        CHECK_SCALED(what, p.dw, t[6].data, p.sdw, nw, REF_TOL_EPS);
        snprintf(what, sizeof what, "%s: ref db vs torch", cas);
        CHECK_SCALED(what, p.db, t[7].data, p.sdb, d.c_out, REF_TOL_EPS);
        /* Every backend vs PyTorch. */
        for (int v = 0; v < NVARIANTS; v++) {
            octav_conv2d *c = NULL;
            octav_status st = make_plan(&variants[v], &d, &c);
            CHECK_MSG(st == OCTAV_OK, "%s %s: %s", cas, variants[v].name, octav_last_error());
            if (st != OCTAV_OK) continue;
            float *y = alloc_f(ny), *dx = alloc_f(nx), *dw = alloc_f(nw), *db = alloc_f(d.c_out);
            fill(y, ny, NAN); fill(dx, nx, NAN); fill(dw, nw, NAN); fill(db, d.c_out, NAN);
            CHECK(octav_conv2d_forward(c, p.x, p.w, p.b, y) == OCTAV_OK);
            CHECK(octav_conv2d_backward(c, p.x, p.w, p.dy, dx, dw, db) == OCTAV_OK);
            snprintf(what, sizeof what, "%s: %s y vs torch", cas, variants[v].name);
            CHECK_SCALED(what, y, t[4].data, p.sy, ny, TOL_EPS);
            snprintf(what, sizeof what, "%s: %s dx vs torch", cas, variants[v].name);
            CHECK_SCALED(what, dx, t[5].data, p.sdx, nx, TOL_EPS);
            snprintf(what, sizeof what, "%s: %s dw vs torch", cas, variants[v].name);
            CHECK_SCALED(what, dw, t[6].data, p.sdw, nw, TOL_EPS);
            snprintf(what, sizeof what, "%s: %s db vs torch", cas, variants[v].name);
            CHECK_SCALED(what, db, t[7].data, p.sdb, d.c_out, TOL_EPS);
            octav_conv2d_destroy(c);
            free(y); free(dx); free(dw); free(db);
        }
        p.x = p.w = p.b = p.dy = NULL; /* owned by the tensors */
        problem_free(&p);
    }
    for (int i = 0; i < 8; i++) octav_tensor_free(&t[i]);
}

static void test_torch_fixtures(void) {
    const char *cases[] = {"basic", "stride2", "groups2", "depthwise", "depthwise_s2",
                           "pointwise_s2", "nonsquare", "cin1_k5"};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) fixture_case(cases[i]);
}

/* ---- (d) invalid descriptors and arguments ------------------------------------------ */

static void expect_einval(octav_conv2d_desc d, const char *why) {
    octav_clear_error();
    octav_status st = octav_conv2d_desc_check(&d);
    CHECK_MSG(st == OCTAV_EINVAL, "%s: status %d", why, (int)st);
    CHECK_MSG(octav_last_error()[0] != '\0', "%s: no message", why);
    octav_conv2d *c = (octav_conv2d *)&d; /* must be reset to NULL */
    st = octav_conv2d_create(&d, OCTAV_BACKEND_AUTO, &c);
    CHECK_MSG(st == OCTAV_EINVAL && c == NULL, "%s: create status %d", why, (int)st);
}

static void test_errors(void) {
    expect_einval(mk(2, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 2), "groups does not divide c_in");
    expect_einval(mk(2, 4, 8, 8, 5, 3, 3, 1, 1, 1, 1, 2), "groups does not divide c_out");
    expect_einval(mk(2, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, 0), "groups 0");
    expect_einval(mk(2, 4, 8, 8, 4, 3, 3, 1, 1, 1, 1, -1), "groups < 0");
    expect_einval(mk(0, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1), "n 0");
    expect_einval(mk(2, 0, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1), "c_in 0");
    expect_einval(mk(2, 3, 0, 8, 4, 3, 3, 1, 1, 1, 1, 1), "h_in 0");
    expect_einval(mk(2, 3, 8, 0, 4, 3, 3, 1, 1, 1, 1, 1), "w_in 0");
    expect_einval(mk(2, 3, 8, 8, 0, 3, 3, 1, 1, 1, 1, 1), "c_out 0");
    expect_einval(mk(2, 3, 8, 8, 4, 0, 3, 1, 1, 1, 1, 1), "kh 0");
    expect_einval(mk(2, 3, 8, 8, 4, 3, -3, 1, 1, 1, 1, 1), "kw < 0");
    expect_einval(mk(2, 3, 8, 8, 4, 3, 3, 0, 1, 1, 1, 1), "stride_h 0");
    expect_einval(mk(2, 3, 8, 8, 4, 3, 3, 1, -1, 1, 1, 1), "stride_w < 0");
    expect_einval(mk(2, 3, 8, 8, 4, 3, 3, 1, 1, -1, 1, 1), "pad_h < 0");
    expect_einval(mk(2, 3, 2, 8, 4, 5, 3, 1, 1, 1, 1, 1), "output height < 1");
    expect_einval(mk(2, 3, 8, 1, 4, 3, 4, 1, 1, 1, 1, 1), "output width < 1");
    expect_einval(mk((int64_t)1 << 40, 3, 8, 8, 4, 3, 3, 1, 1, 1, 1, 1), "n too large");
    expect_einval(mk(1 << 20, 1 << 20, 1 << 20, 1 << 20, 4, 3, 3, 1, 1, 1, 1, 1), "overflow");
    CHECK(octav_conv2d_desc_check(NULL) == OCTAV_EINVAL);

    /* The smallest valid output: 1x1. */
    octav_conv2d_desc d = mk(1, 1, 1, 1, 1, 3, 3, 1, 1, 1, 1, 1);
    CHECK(octav_conv2d_desc_check(&d) == OCTAV_OK);
    CHECK_EQ_INT(d.h_out, 1);
    CHECK_EQ_INT(d.w_out, 1);

    octav_conv2d *c = NULL;
    d = mk(1, 2, 4, 4, 2, 3, 3, 1, 1, 1, 1, 1);
    CHECK(octav_conv2d_create(&d, (octav_backend)99, &c) == OCTAV_EINVAL && c == NULL);
    CHECK(octav_conv2d_create(NULL, OCTAV_BACKEND_REF, &c) == OCTAV_EINVAL);
    CHECK(octav_conv2d_create(&d, OCTAV_BACKEND_REF, NULL) == OCTAV_EINVAL);
    CHECK(octav_conv2d_create_dnnl(&d, 7, &c) == OCTAV_EINVAL && c == NULL);
    CHECK(octav_conv2d_create(&d, OCTAV_BACKEND_AUTO, &c) == OCTAV_OK);
    if (c) {
        float x[32] = {0}, w[36] = {0}, y[32], dy[32] = {0}, dx[32], dw[36];
        CHECK(octav_conv2d_get_desc(c)->h_out == 4);
        CHECK(octav_conv2d_forward(c, NULL, w, NULL, y) == OCTAV_EINVAL);
        CHECK(octav_conv2d_forward(c, x, NULL, NULL, y) == OCTAV_EINVAL);
        CHECK(octav_conv2d_forward(c, x, w, NULL, NULL) == OCTAV_EINVAL);
        CHECK(octav_conv2d_forward(NULL, x, w, NULL, y) == OCTAV_EINVAL);
        CHECK(octav_conv2d_backward(c, x, w, NULL, dx, dw, NULL) == OCTAV_EINVAL);
        CHECK(octav_conv2d_backward(c, x, NULL, dy, dx, NULL, NULL) == OCTAV_EINVAL);
        CHECK(octav_conv2d_backward(c, NULL, w, dy, NULL, dw, NULL) == OCTAV_EINVAL);
        CHECK(octav_conv2d_backward(c, x, w, dy, NULL, NULL, NULL) == OCTAV_OK);
        const char *name = octav_conv2d_backend_name(c);
        CHECK_MSG(!strcmp(name, "gemm") || !strcmp(name, "dnnl"), "auto picked %s", name);
    }
    octav_conv2d_destroy(c);
    octav_conv2d_destroy(NULL);
    CHECK(octav_conv2d_get_desc(NULL) == NULL);
}

/* ---- (e) allocation failures ----------------------------------------------------------- */

/* For every allocation k the plan makes, failing it must return ENOMEM and
 * free everything; a plan that was made allocates nothing in forward and
 * backward. */
static void alloc_fail_case(const variant *v, octav_conv2d_desc d) {
    problem p;
    if (!problem_init(&p, d, 400)) return;
    char sh[160];
    shape_str(&p.d, sh, sizeof sh);
    float *y = alloc_f(p.ny), *dx = alloc_f(p.nx), *dw = alloc_f(p.nw), *db = alloc_f(d.c_out);
    int done = 0, failures = 0;
    for (int k = 0; k < 200 && !done; k++) {
        g_fail_at = k;
        g_count = 0;
        g_live = 0;
        octav_conv2d *c = NULL;
        octav_set_allocator(failing_alloc, counting_free, NULL);
        octav_status st = make_plan(v, &p.d, &c);
        if (st == OCTAV_ENOMEM) {
            octav_set_allocator(NULL, NULL, NULL);
            failures++;
            CHECK_MSG(c == NULL && g_live == 0, "%s %s: failing allocation %d leaks %d blocks",
                      v->name, sh, k, g_live);
            continue;
        }
        CHECK_MSG(st == OCTAV_OK, "%s %s: status %d at %d: %s", v->name, sh, (int)st, k,
                  octav_last_error());
        done = 1;
        if (st != OCTAV_OK) {
            octav_set_allocator(NULL, NULL, NULL);
            break;
        }
        int made = g_count;
        g_fail_at = -1; /* from here on nothing may even try */
        CHECK(octav_conv2d_forward(c, p.x, p.w, p.b, y) == OCTAV_OK);
        CHECK(octav_conv2d_forward(c, p.x, p.w, NULL, y) == OCTAV_OK);
        CHECK(octav_conv2d_backward(c, p.x, p.w, p.dy, dx, dw, db) == OCTAV_OK);
        CHECK(octav_conv2d_backward(c, p.x, p.w, p.dy, NULL, dw, NULL) == OCTAV_OK);
        CHECK(octav_conv2d_backward(c, p.x, p.w, p.dy, dx, NULL, db) == OCTAV_OK);
        CHECK_MSG(g_count == made, "%s %s: %d allocations in forward/backward", v->name, sh,
                  g_count - made);
        octav_conv2d_destroy(c);
        octav_set_allocator(NULL, NULL, NULL);
        CHECK_MSG(g_live == 0, "%s %s: destroy leaves %d blocks", v->name, sh, g_live);
        CHECK_MSG(failures == k && failures > 0, "%s %s: %d failures before success at %d",
                  v->name, sh, failures, k);
    }
    CHECK_MSG(done, "%s %s: never succeeded", v->name, sh);
    free(y); free(dx); free(dw); free(db);
    problem_free(&p);
}

static void test_alloc_failures(void) {
    for (int v = 0; v < NVARIANTS; v++) {
        alloc_fail_case(&variants[v], mk(3, 4, 6, 6, 8, 3, 3, 1, 1, 1, 1, 1));
        alloc_fail_case(&variants[v], mk(2, 8, 6, 6, 8, 3, 3, 2, 2, 1, 1, 8));
        alloc_fail_case(&variants[v], mk(2, 8, 5, 5, 4, 1, 1, 1, 1, 0, 0, 1));
    }
}

int main(void) {
    /* One thread except where a test sets two: the shapes are tiny, and on a
     * shared machine idle OpenMP threads spin-wait for descheduled ones. */
    octav_set_threads(1);
    init_shapes();
    RUN(test_ref_small);
    RUN(test_ref_gradcheck);
    RUN(test_backends_vs_ref);
    RUN(test_gemm_modes);
    RUN(test_threads);
    RUN(test_torch_fixtures);
    RUN(test_errors);
    RUN(test_alloc_failures);
    return TEST_SUMMARY();
}
