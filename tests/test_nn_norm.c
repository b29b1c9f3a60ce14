/* test_nn_norm.c -- batch normalisation and layer normalisation.
 *
 * References: PyTorch fixtures (tests/fixtures/gen_nn_ops.py: native_batch_norm
 * in training and eval mode with its saved mean / invstd and running
 * statistics, native_layer_norm, autograd backward), a double-precision
 * reference written here from nn.h's formulas on larger shapes (both
 * summation paths of batchnorm: hw = 1, 3 and hw = 49, 784, data far from
 * zero), finite-difference gradient checks, and bitwise equality of runs
 * with 1 and 2 threads. */
#include "test_nn_ops.h"

/* Named tolerances (atol + rtol * |ref|). */
#define NORM_ATOL 2e-6     /* float outputs of order 1 vs PyTorch             */
#define NORM_RTOL 2e-6
#define OFFSET_ATOL 1e-5   /* y of a channel with mean 30, std 0.5 (mean rounded to float) */
#define STAT_RTOL 1e-6     /* saved mean / rstd, running statistics           */
#define GRAD_ATOL 1e-5     /* dx, dgamma, dbeta vs PyTorch (sums over <= 100) */
#define GRAD_RTOL 1e-5
#define REF_ATOL 1e-5      /* vs the double reference, outputs of order 1     */
#define REF_RTOL 1e-5
#define MOMENTUM 0.1f
#define EPS 1e-5f
#define GC_H 1e-2          /* finite-difference step                          */

/* ---- PyTorch fixtures ------------------------------------------------------- */

static void bn_fixture(const char *pre, int64_t n, int64_t c, int64_t hw, double y_atol) {
    char nm[64];
    const long long tot = n * c * hw;
#define L(name, cnt) (snprintf(nm, sizeof nm, "%s%s", pre, name), FIX(nm, cnt))
    float *x = L("x", tot), *gamma = L("gamma", c), *beta = L("beta", c), *rm = L("rm0", c),
          *rv = L("rv0", c), *y_ref = L("y", tot), *mean_ref = L("mean", c), *rstd_ref = L("rstd", c),
          *rm_ref = L("rm1", c), *rv_ref = L("rv1", c), *dy = L("dy", tot), *dx_ref = L("dx", tot),
          *dg_ref = L("dgamma", c), *db_ref = L("dbeta", c);
#undef L
    float *y = fbuf(tot), *mean = fbuf(c), *rstd = fbuf(c), *dx = fbuf(tot), *dg = fbuf(c), *db = fbuf(c);
    if (x && gamma && beta && rm && rv && y_ref && mean_ref && rstd_ref && rm_ref && rv_ref && dy &&
        dx_ref && dg_ref && db_ref) {
        octav_batchnorm_forward_train(x, gamma, beta, y, mean, rstd, rm, rv, n, c, hw, MOMENTUM, EPS);
        CHECK_ARRAYS(y, y_ref, tot, y_atol, NORM_RTOL);
        CHECK_ARRAYS(mean, mean_ref, c, NORM_ATOL, STAT_RTOL);
        CHECK_ARRAYS(rstd, rstd_ref, c, 0, STAT_RTOL);
        CHECK_ARRAYS(rm, rm_ref, c, NORM_ATOL, STAT_RTOL);
        CHECK_ARRAYS(rv, rv_ref, c, 0, STAT_RTOL);
        /* backward from PyTorch's saved statistics, so only backward is tested */
        octav_batchnorm_backward(x, gamma, mean_ref, rstd_ref, dy, dx, dg, db, n, c, hw);
        CHECK_ARRAYS(dx, dx_ref, tot, GRAD_ATOL, GRAD_RTOL);
        CHECK_ARRAYS(dg, dg_ref, c, GRAD_ATOL, GRAD_RTOL);
        CHECK_ARRAYS(db, db_ref, c, GRAD_ATOL, GRAD_RTOL);
    }
    free(x); free(gamma); free(beta); free(rm); free(rv); free(y_ref); free(mean_ref);
    free(rstd_ref); free(rm_ref); free(rv_ref); free(dy); free(dx_ref); free(dg_ref); free(db_ref);
    free(y); free(mean); free(rstd); free(dx); free(dg); free(db);
}

/* (4,3,5,5): the lane path; channel 2 has mean 30 */
static void test_bn_fixture_4d(void) { bn_fixture("bn_a_", 4, 3, 25, OFFSET_ATOL); }
/* (16,6): BatchNorm1d, hw = 1 */
static void test_bn_fixture_1d(void) { bn_fixture("bn_b_", 16, 6, 1, NORM_ATOL); }
/* (5,4,2,2): the small-hw block path */
static void test_bn_fixture_small_hw(void) { bn_fixture("bn_c_", 5, 4, 4, NORM_ATOL); }

static void test_bn_fixture_eval(void) {
    const int64_t n = 4, c = 3, hw = 25, tot = n * c * hw;
    float *x = FIX("bneval_x", tot), *g = FIX("bneval_gamma", c), *b = FIX("bneval_beta", c),
          *rm = FIX("bneval_rm", c), *rv = FIX("bneval_rv", c), *y_ref = FIX("bneval_y", tot);
    float *y = fbuf(tot);
    if (x && g && b && rm && rv && y_ref) {
        octav_batchnorm_forward_eval(x, g, b, rm, rv, y, n, c, hw, EPS);
        CHECK_ARRAYS(y, y_ref, tot, NORM_ATOL, NORM_RTOL);
    }
    free(x); free(g); free(b); free(rm); free(rv); free(y_ref); free(y);
}

static void test_ln_fixture(void) {
    const int64_t rows = 6, d = 20, tot = rows * d;
    float *x = FIX("ln_x", tot), *g = FIX("ln_gamma", d), *b = FIX("ln_beta", d),
          *y_ref = FIX("ln_y", tot), *mean_ref = FIX("ln_mean", rows), *rstd_ref = FIX("ln_rstd", rows),
          *dy = FIX("ln_dy", tot), *dx_ref = FIX("ln_dx", tot), *dg_ref = FIX("ln_dgamma", d),
          *db_ref = FIX("ln_dbeta", d);
    float *y = fbuf(tot), *mean = fbuf(rows), *rstd = fbuf(rows), *dx = fbuf(tot), *dg = fbuf(d),
          *db = fbuf(d);
    if (x && g && b && y_ref && mean_ref && rstd_ref && dy && dx_ref && dg_ref && db_ref) {
        octav_layernorm_forward(x, g, b, y, mean, rstd, rows, d, EPS);
        CHECK_ARRAYS(y, y_ref, tot, NORM_ATOL, NORM_RTOL);
        CHECK_ARRAYS(mean, mean_ref, rows, NORM_ATOL, STAT_RTOL);
        CHECK_ARRAYS(rstd, rstd_ref, rows, 0, STAT_RTOL);
        octav_layernorm_backward(x, g, mean_ref, rstd_ref, dy, dx, dg, db, rows, d);
        CHECK_ARRAYS(dx, dx_ref, tot, GRAD_ATOL, GRAD_RTOL);
        CHECK_ARRAYS(dg, dg_ref, d, GRAD_ATOL, GRAD_RTOL);
        CHECK_ARRAYS(db, db_ref, d, GRAD_ATOL, GRAD_RTOL);
    }
    free(x); free(g); free(b); free(y_ref); free(mean_ref); free(rstd_ref); free(dy); free(dx_ref);
    free(dg_ref); free(db_ref); free(y); free(mean); free(rstd); free(dx); free(dg); free(db);
}

/* ---- double reference ---------------------------------------------------------- */

typedef struct {
    int64_t n, c, hw;
    double mu, sd; /* data: N(mu_c, sd) with mu_c = mu * (c + 1) */
} bn_shape;

static void bn_vs_reference(bn_shape s) {
    const int64_t n = s.n, c = s.c, hw = s.hw, tot = n * c * hw, cnt = n * hw;
    trng r = {(uint64_t)(tot * 31 + hw), 0, 0};
    float *x = fbuf(tot), *dy = fbuf(tot), *g = fbuf(c), *b = fbuf(c), *y = fbuf(tot), *mean = fbuf(c),
          *rstd = fbuf(c), *rm = fbuf(c), *rv = fbuf(c), *dx = fbuf(tot), *dg = fbuf(c), *db = fbuf(c);
    float *y_ref = fbuf(tot), *dx_ref = fbuf(tot), *dg_ref = fbuf(c), *db_ref = fbuf(c),
          *mean_ref = fbuf(c), *rstd_ref = fbuf(c), *rm_ref = fbuf(c), *rv_ref = fbuf(c);
    for (int64_t i = 0; i < n; i++)
        for (int64_t ch = 0; ch < c; ch++)
            fill_gauss(&r, x + (i * c + ch) * hw, hw, s.sd, s.mu * (double)(ch + 1));
    fill_gauss(&r, dy, tot, 1.0, 0.0);
    for (int64_t ch = 0; ch < c; ch++) {
        g[ch] = (float)(0.5 + trng_unif(&r));
        b[ch] = (float)(trng_unif(&r) - 0.5);
        rm[ch] = (float)(trng_unif(&r) - 0.5);
        rv[ch] = (float)(0.5 + trng_unif(&r));
    }
    for (int64_t ch = 0; ch < c; ch++) {
        double m = 0, v = 0, s1 = 0, s2 = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) m += x[(i * c + ch) * hw + j];
        m /= (double)cnt;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                double d = x[(i * c + ch) * hw + j] - m;
                v += d * d;
            }
        v /= (double)cnt;
        double rs = 1.0 / sqrt(v + (double)EPS);
        mean_ref[ch] = (float)m;
        rstd_ref[ch] = (float)rs;
        rm_ref[ch] = (float)(0.9 * (double)rm[ch] + 0.1 * m);
        rv_ref[ch] = (float)(0.9 * (double)rv[ch] + 0.1 * v * (double)cnt / (double)(cnt - 1));
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                int64_t o = (i * c + ch) * hw + j;
                y_ref[o] = (float)((x[o] - m) * rs * g[ch] + b[ch]);
                s1 += dy[o];
                s2 += dy[o] * (x[o] - m) * rs;
            }
        db_ref[ch] = (float)s1;
        dg_ref[ch] = (float)s2;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                int64_t o = (i * c + ch) * hw + j;
                double xh = (x[o] - m) * rs;
                dx_ref[o] = (float)(g[ch] * rs * (dy[o] - s1 / (double)cnt - xh * s2 / (double)cnt));
            }
    }
    octav_batchnorm_forward_train(x, g, b, y, mean, rstd, rm, rv, n, c, hw, MOMENTUM, EPS);
    /* the saved float mean differs from the exact one by half an ulp of mu:
     * y may differ by that much times gamma * rstd */
    double y_atol = REF_ATOL + 2 * fabs(s.mu * (double)c) * FLT_EPSILON / s.sd;
    CHECK_ARRAYS(y, y_ref, tot, y_atol, REF_RTOL);
    CHECK_ARRAYS(mean, mean_ref, c, REF_ATOL, REF_RTOL);
    CHECK_ARRAYS(rstd, rstd_ref, c, 0, REF_RTOL);
    CHECK_ARRAYS(rm, rm_ref, c, REF_ATOL, REF_RTOL);
    CHECK_ARRAYS(rv, rv_ref, c, 0, REF_RTOL);
    octav_batchnorm_backward(x, g, mean, rstd, dy, dx, dg, db, n, c, hw);
    /* sums over cnt terms of order 1: absolute error grows like sqrt(cnt) */
    double sum_atol = REF_ATOL * sqrt((double)cnt);
    CHECK_ARRAYS(db, db_ref, c, sum_atol, REF_RTOL);
    CHECK_ARRAYS(dg, dg_ref, c, sum_atol, REF_RTOL);
    CHECK_ARRAYS(dx, dx_ref, tot, REF_ATOL + y_atol / 4, 1e-4);
    /* NULL outputs are skipped; the others are unchanged */
    float *dx2 = fbuf(tot), *dg2 = fbuf(c);
    octav_batchnorm_backward(x, g, mean, rstd, dy, dx2, NULL, NULL, n, c, hw);
    CHECK_SAME_BITS(dx2, dx, tot * 4);
    octav_batchnorm_backward(x, g, mean, rstd, dy, NULL, dg2, NULL, n, c, hw);
    CHECK_SAME_BITS(dg2, dg, c * 4);
    free(dx2); free(dg2);
    free(x); free(dy); free(g); free(b); free(y); free(mean); free(rstd); free(rm); free(rv);
    free(dx); free(dg); free(db); free(y_ref); free(dx_ref); free(dg_ref); free(db_ref);
    free(mean_ref); free(rstd_ref); free(rm_ref); free(rv_ref);
}

static void test_bn_reference(void) {
    static const bn_shape shapes[] = {
        {64, 5, 1, 0.0, 1.0},        /* BatchNorm1d                       */
        {256, 300, 1, 0.5, 2.0},     /* several channel blocks, parallel  */
        {9, 4, 3, 0.0, 1.0},         /* small hw                          */
        {7, 3, 15, 2.0, 1.0},        /* small-hw path, just below lanes   */
        {5, 6, 49, 1.0, 0.5},        /* 7x7: lanes with a tail            */
        {3, 4, 784, 100.0, 1.0},     /* far from zero: the shifted sums   */
        {16, 32, 196, 0.0, 3.0},     /* parallel over channels            */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) bn_vs_reference(shapes[i]);
}

/* Eval with the batch's own biased statistics reproduces training's y; NULL
 * gamma / beta act as 1 / 0 (affine=False), in both modes and in backward. */
static void bn_eval_vs_train(int64_t n, int64_t c, int64_t hw) {
    const int64_t tot = n * c * hw;
    trng r = {(uint64_t)(7 + tot), 0, 0};
    float *x = fbuf(tot), *g = fbuf(c), *b = fbuf(c), *y = fbuf(tot), *y2 = fbuf(tot), *mean = fbuf(c),
          *rstd = fbuf(c), *var = fbuf(c), *ones = fbuf(c), *zeros = fbuf(c), *dy = fbuf(tot),
          *dx = fbuf(tot), *dx2 = fbuf(tot), *dg = fbuf(c), *dg2 = fbuf(c);
    fill_gauss(&r, x, tot, 2.0, 1.0);
    fill_gauss(&r, g, c, 0.3, 1.0);
    fill_gauss(&r, b, c, 0.3, 0.0);
    fill_gauss(&r, dy, tot, 1.0, 0.0);
    octav_batchnorm_forward_train(x, g, b, y, mean, rstd, NULL, NULL, n, c, hw, MOMENTUM, 0.0f);
    for (int64_t ch = 0; ch < c; ch++) var[ch] = (float)(1.0 / ((double)rstd[ch] * rstd[ch]));
    octav_batchnorm_forward_eval(x, g, b, mean, var, y2, n, c, hw, 0.0f);
    CHECK_ARRAYS(y2, y, tot, 1e-5, 1e-5);
    for (int64_t ch = 0; ch < c; ch++) ones[ch] = 1.0f;
    octav_batchnorm_forward_train(x, ones, zeros, y, mean, rstd, NULL, NULL, n, c, hw, MOMENTUM, EPS);
    octav_batchnorm_forward_train(x, NULL, NULL, y2, mean, rstd, NULL, NULL, n, c, hw, MOMENTUM, EPS);
    CHECK_SAME_BITS(y2, y, tot * 4);
    octav_batchnorm_forward_eval(x, ones, zeros, mean, var, y, n, c, hw, EPS);
    octav_batchnorm_forward_eval(x, NULL, NULL, mean, var, y2, n, c, hw, EPS);
    CHECK_SAME_BITS(y2, y, tot * 4);
    octav_batchnorm_backward(x, ones, mean, rstd, dy, dx, dg, NULL, n, c, hw);
    octav_batchnorm_backward(x, NULL, mean, rstd, dy, dx2, dg2, NULL, n, c, hw);
    CHECK_SAME_BITS(dx2, dx, tot * 4);
    CHECK_SAME_BITS(dg2, dg, c * 4);
    free(x); free(g); free(b); free(y); free(y2); free(mean); free(rstd); free(var); free(ones);
    free(zeros); free(dy); free(dx); free(dx2); free(dg); free(dg2);
}

static void test_bn_eval_vs_train(void) {
    bn_eval_vs_train(6, 5, 20);
    bn_eval_vs_train(40, 70, 1);
    bn_eval_vs_train(9, 3, 3);
}

static void ln_vs_reference(int64_t rows, int64_t d, double mu) {
    const int64_t tot = rows * d;
    trng r = {(uint64_t)(rows * 1000 + d), 0, 0};
    float *x = fbuf(tot), *dy = fbuf(tot), *g = fbuf(d), *b = fbuf(d), *y = fbuf(tot),
          *mean = fbuf(rows), *rstd = fbuf(rows), *dx = fbuf(tot), *dg = fbuf(d), *db = fbuf(d);
    float *y_ref = fbuf(tot), *dx_ref = fbuf(tot), *dg_ref = fbuf(d), *db_ref = fbuf(d);
    double *sg = calloc((size_t)d, sizeof *sg), *sb = calloc((size_t)d, sizeof *sb);
    fill_gauss(&r, x, tot, 1.5, mu);
    fill_gauss(&r, dy, tot, 1.0, 0.0);
    fill_gauss(&r, g, d, 0.3, 1.0);
    fill_gauss(&r, b, d, 0.3, 0.0);
    for (int64_t i = 0; i < rows; i++) {
        const float *xr = x + i * d, *gr = dy + i * d;
        double m = 0, v = 0, a = 0, bb = 0;
        for (int64_t j = 0; j < d; j++) m += xr[j];
        m /= (double)d;
        for (int64_t j = 0; j < d; j++) v += (xr[j] - m) * (xr[j] - m);
        v /= (double)d;
        double rs = 1.0 / sqrt(v + (double)EPS);
        for (int64_t j = 0; j < d; j++) {
            double xh = (xr[j] - m) * rs;
            y_ref[i * d + j] = (float)(xh * g[j] + b[j]);
            a += (double)gr[j] * g[j];
            bb += (double)gr[j] * g[j] * xh;
            sg[j] += gr[j] * xh;
            sb[j] += gr[j];
        }
        for (int64_t j = 0; j < d; j++) {
            double xh = (xr[j] - m) * rs;
            dx_ref[i * d + j] = (float)(rs * ((double)gr[j] * g[j] - a / (double)d - xh * bb / (double)d));
        }
    }
    for (int64_t j = 0; j < d; j++) {
        dg_ref[j] = (float)sg[j];
        db_ref[j] = (float)sb[j];
    }
    octav_layernorm_forward(x, g, b, y, mean, rstd, rows, d, EPS);
    double y_atol = REF_ATOL + 4 * fabs(mu) * FLT_EPSILON;
    CHECK_ARRAYS(y, y_ref, tot, y_atol, REF_RTOL);
    octav_layernorm_backward(x, g, mean, rstd, dy, dx, dg, db, rows, d);
    CHECK_ARRAYS(dx, dx_ref, tot, y_atol, 1e-4);
    CHECK_ARRAYS(dg, dg_ref, d, REF_ATOL * sqrt((double)rows) + y_atol, REF_RTOL);
    CHECK_ARRAYS(db, db_ref, d, REF_ATOL * sqrt((double)rows), REF_RTOL);
    free(x); free(dy); free(g); free(b); free(y); free(mean); free(rstd); free(dx); free(dg);
    free(db); free(y_ref); free(dx_ref); free(dg_ref); free(db_ref); free(sg); free(sb);
}

static void test_ln_reference(void) {
    ln_vs_reference(3, 5, 0.0);
    ln_vs_reference(17, 64, 2.0);
    ln_vs_reference(128, 300, 0.5);  /* parallel; two column blocks */
    ln_vs_reference(4, 1000, 50.0);
}

static void test_ln_no_affine(void) {
    const int64_t rows = 9, d = 37, tot = rows * d;
    trng r = {17, 0, 0};
    float *x = fbuf(tot), *dy = fbuf(tot), *ones = fbuf(d), *zeros = fbuf(d), *y = fbuf(tot),
          *y2 = fbuf(tot), *mean = fbuf(rows), *rstd = fbuf(rows), *dx = fbuf(tot), *dx2 = fbuf(tot),
          *dg = fbuf(d), *dg2 = fbuf(d), *db = fbuf(d), *db2 = fbuf(d);
    fill_gauss(&r, x, tot, 1.0, 0.5);
    fill_gauss(&r, dy, tot, 1.0, 0.0);
    for (int64_t j = 0; j < d; j++) ones[j] = 1.0f;
    octav_layernorm_forward(x, ones, zeros, y, mean, rstd, rows, d, EPS);
    octav_layernorm_forward(x, NULL, NULL, y2, NULL, NULL, rows, d, EPS);
    CHECK_SAME_BITS(y2, y, tot * 4);
    octav_layernorm_backward(x, ones, mean, rstd, dy, dx, dg, db, rows, d);
    octav_layernorm_backward(x, NULL, mean, rstd, dy, dx2, dg2, db2, rows, d);
    CHECK_SAME_BITS(dx2, dx, tot * 4);
    CHECK_SAME_BITS(dg2, dg, d * 4);
    CHECK_SAME_BITS(db2, db, d * 4);
    octav_layernorm_backward(x, NULL, mean, rstd, dy, NULL, NULL, db2, rows, d);
    CHECK_SAME_BITS(db2, db, d * 4);
    free(x); free(dy); free(ones); free(zeros); free(y); free(y2); free(mean); free(rstd);
    free(dx); free(dx2); free(dg); free(dg2); free(db); free(db2);
}

/* ---- gradient checks ---------------------------------------------------------- */

typedef struct {
    int64_t n, c, hw;
    const float *x, *gamma, *beta, *r; /* r: the cotangent */
    int wrt;                           /* 0 x, 1 gamma, 2 beta */
    float *y;
} bn_ctx;

static double bn_loss(const float *v, void *p) {
    bn_ctx *k = p;
    const float *x = k->wrt == 0 ? v : k->x, *g = k->wrt == 1 ? v : k->gamma,
                *b = k->wrt == 2 ? v : k->beta;
    octav_batchnorm_forward_train(x, g, b, k->y, NULL, NULL, NULL, NULL, k->n, k->c, k->hw, MOMENTUM, EPS);
    return gc_dot(k->r, k->y, k->n * k->c * k->hw);
}

static void bn_gradcheck(int64_t n, int64_t c, int64_t hw) {
    const int64_t tot = n * c * hw;
    trng r = {(uint64_t)(tot + 5), 0, 0};
    float *x = fbuf(tot), *g = fbuf(c), *b = fbuf(c), *dy = fbuf(tot), *y = fbuf(tot), *mean = fbuf(c),
          *rstd = fbuf(c), *dx = fbuf(tot), *dg = fbuf(c), *db = fbuf(c);
    fill_gauss(&r, x, tot, 1.0, 0.5);
    fill_gauss(&r, g, c, 0.3, 1.0);
    fill_gauss(&r, b, c, 0.3, 0.0);
    fill_gauss(&r, dy, tot, 1.0, 0.0);
    octav_batchnorm_forward_train(x, g, b, y, mean, rstd, NULL, NULL, n, c, hw, MOMENTUM, EPS);
    octav_batchnorm_backward(x, g, mean, rstd, dy, dx, dg, db, n, c, hw);
    bn_ctx k = {n, c, hw, x, g, b, dy, 0, y};
    GC_CHECK("batchnorm dx", bn_loss, &k, x, dx, tot, GC_H, &r);
    k.wrt = 1;
    GC_CHECK("batchnorm dgamma", bn_loss, &k, g, dg, c, GC_H, &r);
    k.wrt = 2;
    GC_CHECK("batchnorm dbeta", bn_loss, &k, b, db, c, GC_H, &r);
    free(x); free(g); free(b); free(dy); free(y); free(mean); free(rstd); free(dx); free(dg); free(db);
}

static void test_bn_gradcheck(void) {
    bn_gradcheck(4, 3, 25);  /* lanes */
    bn_gradcheck(10, 4, 1);  /* BatchNorm1d */
    bn_gradcheck(3, 5, 6);   /* small hw */
}

typedef struct {
    int64_t rows, d;
    const float *x, *gamma, *beta, *r;
    int wrt;
    float *y;
} ln_ctx;

static double ln_loss(const float *v, void *p) {
    ln_ctx *k = p;
    const float *x = k->wrt == 0 ? v : k->x, *g = k->wrt == 1 ? v : k->gamma,
                *b = k->wrt == 2 ? v : k->beta;
    octav_layernorm_forward(x, g, b, k->y, NULL, NULL, k->rows, k->d, EPS);
    return gc_dot(k->r, k->y, k->rows * k->d);
}

static void test_ln_gradcheck(void) {
    const int64_t rows = 7, d = 19, tot = rows * d;
    trng r = {99, 0, 0};
    float *x = fbuf(tot), *g = fbuf(d), *b = fbuf(d), *dy = fbuf(tot), *y = fbuf(tot),
          *mean = fbuf(rows), *rstd = fbuf(rows), *dx = fbuf(tot), *dg = fbuf(d), *db = fbuf(d);
    fill_gauss(&r, x, tot, 1.0, -0.5);
    fill_gauss(&r, g, d, 0.3, 1.0);
    fill_gauss(&r, b, d, 0.3, 0.0);
    fill_gauss(&r, dy, tot, 1.0, 0.0);
    octav_layernorm_forward(x, g, b, y, mean, rstd, rows, d, EPS);
    octav_layernorm_backward(x, g, mean, rstd, dy, dx, dg, db, rows, d);
    ln_ctx k = {rows, d, x, g, b, dy, 0, y};
    GC_CHECK("layernorm dx", ln_loss, &k, x, dx, tot, GC_H, &r);
    k.wrt = 1;
    GC_CHECK("layernorm dgamma", ln_loss, &k, g, dg, d, GC_H, &r);
    k.wrt = 2;
    GC_CHECK("layernorm dbeta", ln_loss, &k, b, db, d, GC_H, &r);
    free(x); free(g); free(b); free(dy); free(y); free(mean); free(rstd); free(dx); free(dg); free(db);
}

/* ---- thread-count independence ---------------------------------------------------- */

static void bn_threads(int64_t n, int64_t c, int64_t hw) {
    const int64_t tot = n * c * hw;
    trng r = {(uint64_t)tot, 0, 0};
    float *x = fbuf(tot), *g = fbuf(c), *b = fbuf(c), *dy = fbuf(tot);
    float *y[2], *mean[2], *rstd[2], *rm[2], *rv[2], *dx[2], *dg[2], *db[2];
    fill_gauss(&r, x, tot, 2.0, 0.3);
    fill_gauss(&r, g, c, 0.3, 1.0);
    fill_gauss(&r, b, c, 0.3, 0.0);
    fill_gauss(&r, dy, tot, 1.0, 0.0);
    for (int t = 0; t < 2; t++) {
        y[t] = fbuf(tot); mean[t] = fbuf(c); rstd[t] = fbuf(c); rm[t] = fbuf(c); rv[t] = fbuf(c);
        dx[t] = fbuf(tot); dg[t] = fbuf(c); db[t] = fbuf(c);
        for (int64_t ch = 0; ch < c; ch++) rv[t][ch] = 1.0f;
        octav_set_threads(t + 1);
        octav_batchnorm_forward_train(x, g, b, y[t], mean[t], rstd[t], rm[t], rv[t], n, c, hw, MOMENTUM, EPS);
        octav_batchnorm_backward(x, g, mean[t], rstd[t], dy, dx[t], dg[t], db[t], n, c, hw);
    }
    octav_set_threads(0);
    CHECK_SAME_BITS(y[0], y[1], tot * 4);
    CHECK_SAME_BITS(mean[0], mean[1], c * 4);
    CHECK_SAME_BITS(rstd[0], rstd[1], c * 4);
    CHECK_SAME_BITS(rm[0], rm[1], c * 4);
    CHECK_SAME_BITS(rv[0], rv[1], c * 4);
    CHECK_SAME_BITS(dx[0], dx[1], tot * 4);
    CHECK_SAME_BITS(dg[0], dg[1], c * 4);
    CHECK_SAME_BITS(db[0], db[1], c * 4);
    for (int t = 0; t < 2; t++) {
        free(y[t]); free(mean[t]); free(rstd[t]); free(rm[t]); free(rv[t]); free(dx[t]); free(dg[t]); free(db[t]);
    }
    free(x); free(g); free(b); free(dy);
}

static void test_threads(void) {
    bn_threads(16, 32, 196);  /* lanes, channels in parallel */
    bn_threads(512, 200, 1);  /* channel blocks in parallel  */
    const int64_t rows = 256, d = 600, tot = rows * d;
    trng r = {3, 0, 0};
    float *x = fbuf(tot), *g = fbuf(d), *b = fbuf(d), *dy = fbuf(tot);
    float *y[2], *mean[2], *rstd[2], *dx[2], *dg[2], *db[2];
    fill_gauss(&r, x, tot, 1.0, 0.2);
    fill_gauss(&r, g, d, 0.3, 1.0);
    fill_gauss(&r, b, d, 0.3, 0.0);
    fill_gauss(&r, dy, tot, 1.0, 0.0);
    for (int t = 0; t < 2; t++) {
        y[t] = fbuf(tot); mean[t] = fbuf(rows); rstd[t] = fbuf(rows); dx[t] = fbuf(tot);
        dg[t] = fbuf(d); db[t] = fbuf(d);
        octav_set_threads(t + 1);
        octav_layernorm_forward(x, g, b, y[t], mean[t], rstd[t], rows, d, EPS);
        octav_layernorm_backward(x, g, mean[t], rstd[t], dy, dx[t], dg[t], db[t], rows, d);
    }
    octav_set_threads(0);
    CHECK_SAME_BITS(y[0], y[1], tot * 4);
    CHECK_SAME_BITS(mean[0], mean[1], rows * 4);
    CHECK_SAME_BITS(rstd[0], rstd[1], rows * 4);
    CHECK_SAME_BITS(dx[0], dx[1], tot * 4);
    CHECK_SAME_BITS(dg[0], dg[1], d * 4);
    CHECK_SAME_BITS(db[0], db[1], d * 4);
    for (int t = 0; t < 2; t++) { free(y[t]); free(mean[t]); free(rstd[t]); free(dx[t]); free(dg[t]); free(db[t]); }
    free(x); free(g); free(b); free(dy);
}

int main(void) {
    RUN(test_bn_fixture_4d);
    RUN(test_bn_fixture_1d);
    RUN(test_bn_fixture_small_hw);
    RUN(test_bn_fixture_eval);
    RUN(test_ln_fixture);
    RUN(test_bn_reference);
    RUN(test_bn_eval_vs_train);
    RUN(test_ln_reference);
    RUN(test_ln_no_affine);
    RUN(test_bn_gradcheck);
    RUN(test_ln_gradcheck);
    RUN(test_threads);
    return TEST_SUMMARY();
}
