/* test_nn_gemm.c -- GEMM (BLIS wrapper, reference, batched) and the linear
 * layer.
 *
 * References: octav_gemm_ref (double accumulation) for octav_gemm and the
 * batched version, with an error bound computed per element from |A||B|;
 * plain loops here for the BLAS edge cases (k == 0, alpha == 0, beta == 0
 * not reading C); PyTorch (float64 on float32 inputs, fixtures made by
 * tests/fixtures/gen_nn_gemm.py) and finite differences (gradcheck.h) for
 * the linear layer.
 *
 * Thread counts: BLIS's small-matrix ("sup") kernels split the work by
 * thread count, and for some shapes (e.g. 37x53x500 with op(B) = B^T) a
 * 2-thread product differs from a 1-thread one in the last bits; a fixed
 * thread count always gives the same bits. So across thread counts the
 * GEMM parts (y, dx, dW) are compared with the GEMM tolerance and only
 * octav's own parts (db, the batched path for small products) must be
 * bit-identical. */
#include "octav/io.h"
#include "octav/nn.h"
#include "gradcheck.h"
#include "test.h"

#include <float.h>

#ifndef OCTAV_FIXTURES
#error "OCTAV_FIXTURES must name tests/fixtures"
#endif
#define GEMM_DIR OCTAV_FIXTURES "/nn_gemm/"

/* Named tolerances. */
#define GEMM_EPS_PER_K FLT_EPSILON /* |fast - ref| <= (k + 2) eps (|alpha||A||B| + |beta C|) */
#define LIN_RTOL 1e-5              /* linear vs PyTorch (float64), relative ... */
#define LIN_ATOL 1e-5              /* ... plus absolute (values are O(1) to O(10)) */
#define GC_H 1e-2                  /* finite-difference step (the ops are linear) */

static float *fbuf(int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof *p);
    if (!p) abort();
    return p;
}

static void fill(trng *r, float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)trng_gauss(r);
}

static int same_bits(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, (size_t)n * sizeof *a) == 0;
}

/* ---- GEMM against the reference ------------------------------------------ */

/* Checks got against ref for C[m,n] (row stride ldc), with the bound
 * (k + 2) eps mag, mag = |alpha||op(A)||op(B)| + |beta||C0| (computed with
 * the reference on absolute values). Entries past n in each row (the
 * leading-dimension padding) must be untouched (equal to c0). */
static int check_gemm(const char *what, int ta, int tb, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                      float beta, const float *c0, const float *got, const float *ref, int64_t ldc) {
    int64_t na = ta ? k * lda : m * lda, nb = tb ? n * ldb : k * ldb;
    float *aa = fbuf(na), *ab = fbuf(nb), *mag = fbuf(m * ldc);
    for (int64_t i = 0; i < na; i++) aa[i] = fabsf(a[i]);
    for (int64_t i = 0; i < nb; i++) ab[i] = fabsf(b[i]);
    for (int64_t i = 0; i < m * ldc; i++) mag[i] = fabsf(c0[i]);
    octav_gemm_ref(ta, tb, m, n, k, fabsf(alpha), aa, lda, ab, ldb, beta != 0.0f ? fabsf(beta) : 0.0f,
                   mag, ldc);
    int64_t bad = -1, nbad = 0;
    double maxerr = 0;
    for (int64_t i = 0; i < m; i++) {
        for (int64_t j = 0; j < ldc; j++) {
            int64_t e = i * ldc + j;
            int ok;
            if (j >= n) {
                ok = same_bits(&got[e], &c0[e], 1);
            } else {
                double err = fabs((double)got[e] - (double)ref[e]);
                if (err > maxerr) maxerr = err;
                ok = err <= (double)(k + 2) * GEMM_EPS_PER_K * (double)mag[e];
            }
            if (!ok) { if (bad < 0) bad = e; nbad++; }
        }
    }
    if (bad >= 0) {
        fprintf(stderr, "  %s: ta %d tb %d m %lld n %lld k %lld alpha %g beta %g: %lld bad, "
                        "max err %.3g, first at (%lld, %lld): %.9g vs %.9g\n",
                what, ta, tb, (long long)m, (long long)n, (long long)k, alpha, beta, (long long)nbad,
                maxerr, (long long)(bad / ldc), (long long)(bad % ldc), got[bad], ref[bad]);
        t_failed_checks_++;
    }
    free(aa); free(ab); free(mag);
    return bad < 0;
}

/* One case: random A, B (stored with the given padding), C; octav_gemm and
 * octav_gemm_ref from the same C0 (NaN when beta == 0: C must not be read). */
static void gemm_case(trng *r, int ta, int tb, int64_t m, int64_t n, int64_t k, int64_t pad,
                      float alpha, float beta) {
    int64_t lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
    int64_t na = (ta ? k : m) * lda, nb = (tb ? n : k) * ldb, nc = m * ldc;
    float *a = fbuf(na), *b = fbuf(nb), *c0 = fbuf(nc), *c = fbuf(nc), *cr = fbuf(nc);
    fill(r, a, na); fill(r, b, nb); fill(r, c0, nc);
    if (beta == 0.0f)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c0[i * ldc + j] = NAN;
    memcpy(c, c0, (size_t)nc * sizeof *c);
    memcpy(cr, c0, (size_t)nc * sizeof *c);
    octav_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    octav_gemm_ref(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, cr, ldc);
    check_gemm("octav_gemm vs ref", ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c0, c, cr, ldc);
    free(a); free(b); free(c0); free(c); free(cr);
}

static void test_gemm_vs_ref(void) {
    static const int64_t SHAPES[][3] = {
        {1, 1, 1}, {1, 17, 5}, {13, 1, 7}, {1, 1, 300}, {7, 5, 1}, {3, 4, 5},
        {17, 23, 31}, {64, 48, 33}, {37, 53, 500}, {129, 65, 70}, {200, 7, 301},
    };
    static const float ALPHA[] = {1.0f, -1.5f};
    static const float BETA[] = {0.0f, 1.0f, 0.5f};
    trng r = {101, 0, 0};
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int ia = 0; ia < 2; ia++)
                    for (int ib = 0; ib < 3; ib++) {
                        int64_t pad = (s + (size_t)ta + 2 * (size_t)tb + (size_t)ib) % 3 == 0 ? 0 : 3;
                        gemm_case(&r, ta, tb, SHAPES[s][0], SHAPES[s][1], SHAPES[s][2], pad,
                                  ALPHA[ia], BETA[ib]);
                    }
}

/* k == 0 and alpha == 0: C = beta C without reading A or B (NaN there);
 * beta == 0 writes zeros over NaN; m == 0 or n == 0 touches nothing. */
static void test_gemm_degenerate(void) {
    enum { M = 5, N = 7, LDC = 9 };
    float a[64], b[64], c[M * LDC], cr[M * LDC], c0[M * LDC];
    for (int i = 0; i < 64; i++) a[i] = b[i] = NAN;
    trng r = {7, 0, 0};
    fill(&r, c0, M * LDC);
    static const float BETA[] = {0.0f, 1.0f, 0.5f, -2.0f};
    for (int ib = 0; ib < 4; ib++) {
        float beta = BETA[ib];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int kind = 0; kind < 2; kind++) { /* 0: k == 0, 1: alpha == 0 */
                    int64_t k = kind == 0 ? 0 : 3;
                    float alpha = kind == 0 ? 1.0f : 0.0f;
                    for (int ref = 0; ref < 2; ref++) {
                        float *cc = ref ? cr : c;
                        memcpy(cc, c0, sizeof c0);
                        if (beta == 0.0f) cc[0] = NAN;
                        (ref ? octav_gemm_ref : octav_gemm)(ta, tb, M, N, k, alpha, a, 8, b, 8, beta, cc, LDC);
                        int ok = 1;
                        for (int i = 0; i < M; i++)
                            for (int j = 0; j < LDC; j++) {
                                float want = j < N ? beta * c0[i * LDC + j] : c0[i * LDC + j];
                                if (j < N && beta == 0.0f) want = 0.0f;
                                if (!same_bits(&cc[i * LDC + j], &want, 1)) ok = 0;
                            }
                        CHECK_MSG(ok, "%s: k %lld alpha %g beta %g ta %d tb %d",
                                  ref ? "octav_gemm_ref" : "octav_gemm", (long long)k, alpha, beta, ta, tb);
                    }
                }
    }
    /* m == 0, n == 0: nothing written. */
    memcpy(c, c0, sizeof c0);
    octav_gemm(0, 0, 0, N, 3, 1.0f, a, 3, b, N, 0.0f, c, LDC);
    octav_gemm(0, 0, M, 0, 3, 1.0f, a, 3, b, 1, 0.0f, c, LDC);
    octav_gemm_ref(0, 0, 0, N, 3, 1.0f, a, 3, b, N, 0.0f, c, LDC);
    octav_gemm_ref(0, 0, M, 0, 3, 1.0f, a, 3, b, 1, 0.0f, c, LDC);
    CHECK(same_bits(c, c0, M * LDC));
}

/* The reference itself on a product small enough to write out: C = alpha A B
 * + beta C with exact integers. */
static void test_gemm_ref_exact(void) {
    const float a[2 * 3] = {1, 2, 3, 4, 5, 6};       /* A [2,3] */
    const float b[3 * 2] = {7, 8, 9, 10, 11, 12};    /* B [3,2] */
    const float at[3 * 2] = {1, 4, 2, 5, 3, 6};      /* A^T stored */
    const float bt[2 * 3] = {7, 9, 11, 8, 10, 12};   /* B^T stored */
    const float want[4] = {2 * 58 + 1, 2 * 64 + 1, 2 * 139 + 1, 2 * 154 + 1};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int fast = 0; fast < 2; fast++) {
                float c[4] = {2, 2, 2, 2};
                (fast ? octav_gemm : octav_gemm_ref)(ta, tb, 2, 2, 3, 2.0f, ta ? at : a, ta ? 2 : 3,
                                                     tb ? bt : b, tb ? 3 : 2, 0.5f, c, 2);
                CHECK_MSG(same_bits(c, want, 4), "ta %d tb %d fast %d: %g %g %g %g", ta, tb, fast,
                          c[0], c[1], c[2], c[3]);
            }
}

/* ---- batched ----------------------------------------------------------------- */

static void batched_case(trng *r, int ta, int tb, int64_t batch, int64_t m, int64_t n, int64_t k,
                         float alpha, float beta) {
    int64_t lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 1;
    int64_t sa = (ta ? k : m) * lda + 5, sb = (tb ? n : k) * ldb + 3, sc = m * ldc + 4;
    float *a = fbuf(batch * sa), *b = fbuf(batch * sb), *c0 = fbuf(batch * sc);
    float *c = fbuf(batch * sc), *cr = fbuf(batch * sc);
    fill(r, a, batch * sa); fill(r, b, batch * sb); fill(r, c0, batch * sc);
    memcpy(c, c0, (size_t)(batch * sc) * sizeof *c);
    memcpy(cr, c0, (size_t)(batch * sc) * sizeof *c);
    octav_gemm_batched(ta, tb, batch, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc);
    for (int64_t i = 0; i < batch; i++)
        octav_gemm_ref(ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, cr + i * sc, ldc);
    int ok = 1;
    for (int64_t i = 0; i < batch && ok; i++) {
        ok = check_gemm("batched vs ref", ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta,
                        c0 + i * sc, c + i * sc, cr + i * sc, ldc);
        /* the gap between matrices is untouched */
        if (ok) ok = same_bits(c + i * sc + m * ldc, c0 + i * sc + m * ldc, sc - m * ldc);
        CHECK_MSG(ok, "batched: matrix %lld (or the gap after it)", (long long)i);
    }
    free(a); free(b); free(c0); free(c); free(cr);
}

static void test_batched_vs_ref(void) {
    trng r = {202, 0, 0};
    int saved = octav_get_threads();
    for (int nt = 1; nt <= 2; nt++) {
        octav_set_threads(nt);
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                batched_case(&r, ta, tb, 9, 13, 11, 7, 1.0f, 0.0f);       /* small: OpenMP over the batch */
                batched_case(&r, ta, tb, 3, 1, 5, 16, -0.5f, 0.5f);
                batched_case(&r, ta, tb, 2, 130, 120, 80, 1.0f, 1.0f);    /* m n k > 2^20: BLIS threads */
            }
    }
    octav_set_threads(saved);
}

/* Small products in a batch are computed by single-threaded BLIS whatever
 * the thread count: bit-identical to a loop of 1-thread octav_gemm calls,
 * on shapes where a 2-thread call differs. */
static void test_batched_threads(void) {
    static const int64_t SH[][3] = {{37, 53, 500}, {29, 31, 700}, {16, 16, 16}};
    trng r = {303, 0, 0};
    int saved = octav_get_threads();
    for (size_t s = 0; s < 3; s++) {
        const int64_t B = 6, m = SH[s][0], n = SH[s][1], k = SH[s][2];
        float *a = fbuf(B * m * k), *b = fbuf(B * n * k), *c1 = fbuf(B * m * n), *c2 = fbuf(B * m * n);
        fill(&r, a, B * m * k); fill(&r, b, B * n * k);
        octav_set_threads(1);
        for (int64_t i = 0; i < B; i++)
            octav_gemm(0, 1, m, n, k, 1.0f, a + i * m * k, k, b + i * n * k, k, 0.0f, c1 + i * m * n, n);
        octav_set_threads(2);
        octav_gemm_batched(0, 1, B, m, n, k, 1.0f, a, k, m * k, b, k, n * k, 0.0f, c2, n, m * n);
        CHECK_MSG(same_bits(c1, c2, B * m * n), "batched (2 threads) vs 1-thread loop, %lldx%lldx%lld",
                  (long long)m, (long long)n, (long long)k);
        free(a); free(b); free(c1); free(c2);
    }
    /* batch 0 and m == 0 write nothing */
    float c[4] = {1, 2, 3, 4}, c0[4] = {1, 2, 3, 4}, a[4] = {NAN}, b[4] = {NAN};
    octav_gemm_batched(0, 0, 0, 2, 2, 2, 1.0f, a, 2, 4, b, 2, 4, 0.0f, c, 2, 4);
    octav_gemm_batched(0, 0, 1, 0, 2, 2, 1.0f, a, 2, 4, b, 2, 4, 0.0f, c, 2, 4);
    CHECK(same_bits(c, c0, 4));
    octav_set_threads(saved);
}

/* ---- linear ---------------------------------------------------------------------- */

typedef struct {
    const float *x, *w, *b, *r; /* r: the fixed cotangent */
    int64_t n, in, out;
    int which;                  /* 0: perturb x, 1: w, 2: b */
    float *y;
} lin_ctx;

static double lin_loss(const float *v, void *vctx) {
    lin_ctx *c = vctx;
    octav_linear_forward(c->which == 0 ? v : c->x, c->which == 1 ? v : c->w, c->which == 2 ? v : c->b,
                         c->y, c->n, c->in, c->out);
    return gc_dot(c->r, c->y, c->n * c->out);
}

static void test_linear_gradcheck(void) {
    const int64_t n = 6, in = 11, out = 5;
    trng r = {404, 0, 0};
    float *x = fbuf(n * in), *w = fbuf(out * in), *b = fbuf(out), *dy = fbuf(n * out), *y = fbuf(n * out);
    float *dx = fbuf(n * in), *dw = fbuf(out * in), *db = fbuf(out);
    fill(&r, x, n * in); fill(&r, w, out * in); fill(&r, b, out); fill(&r, dy, n * out);
    octav_linear_backward(x, w, dy, dx, dw, db, n, in, out);
    lin_ctx c = {x, w, b, dy, n, in, out, 0, y};
    c.which = 0; GC_CHECK("linear dx", lin_loss, &c, x, dx, n * in, GC_H, &r);
    c.which = 1; GC_CHECK("linear dW", lin_loss, &c, w, dw, out * in, GC_H, &r);
    c.which = 2; GC_CHECK("linear db", lin_loss, &c, b, db, out, GC_H, &r);
    /* without bias */
    c.b = NULL;
    c.which = 0; GC_CHECK("linear dx (no bias)", lin_loss, &c, x, dx, n * in, GC_H, &r);
    c.which = 1; GC_CHECK("linear dW (no bias)", lin_loss, &c, w, dw, out * in, GC_H, &r);
    free(x); free(w); free(b); free(dy); free(y); free(dx); free(dw); free(db);
}

static float *load(const char *name, int64_t want, octav_tensor *t) {
    char path[1024];
    snprintf(path, sizeof path, "%s%s.npy", GEMM_DIR, name);
    octav_status st = octav_npy_read(path, t);
    if (st != OCTAV_OK) {
        CHECK_MSG(0, "%s: %s", path, octav_last_error());
        return NULL;
    }
    if (octav_shape_numel(&t->shape) != want) {
        CHECK_MSG(0, "%s: %lld elements, want %lld", path, (long long)octav_shape_numel(&t->shape),
                  (long long)want);
        octav_tensor_free(t);
        return NULL;
    }
    return t->data;
}

static void linear_fixture(const char *cs, int64_t n, int64_t in, int64_t out) {
    enum { X, W, B, DY, Y, DX, DW, DB, NT };
    static const char *const NAMES[NT] = {"x", "w", "b", "dy", "y", "dx", "dw", "db"};
    const int64_t sizes[NT] = {n * in, out * in, out, n * out, n * out, n * in, out * in, out};
    octav_tensor t[NT];
    memset(t, 0, sizeof t);
    float *f[NT];
    int ok = 1;
    for (int i = 0; i < NT; i++) {
        char name[64];
        snprintf(name, sizeof name, "lin_%s_%s", cs, NAMES[i]);
        f[i] = load(name, sizes[i], &t[i]);
        if (!f[i]) ok = 0;
    }
    if (ok) {
        float *y = fbuf(n * out), *dx = fbuf(n * in), *dw = fbuf(out * in), *db = fbuf(out);
        for (int64_t i = 0; i < n * out; i++) y[i] = NAN;  /* outputs are overwritten */
        for (int64_t i = 0; i < n * in; i++) dx[i] = NAN;
        for (int64_t i = 0; i < out * in; i++) dw[i] = NAN;
        for (int64_t i = 0; i < out; i++) db[i] = NAN;
        octav_linear_forward(f[X], f[W], f[B], y, n, in, out);
        octav_linear_backward(f[X], f[W], f[DY], dx, dw, db, n, in, out);
        if (!CHECK_ARRAYS(y, f[Y], n * out, LIN_ATOL, LIN_RTOL)) fprintf(stderr, "  case %s y\n", cs);
        if (!CHECK_ARRAYS(dx, f[DX], n * in, LIN_ATOL, LIN_RTOL)) fprintf(stderr, "  case %s dx\n", cs);
        if (!CHECK_ARRAYS(dw, f[DW], out * in, LIN_ATOL, LIN_RTOL)) fprintf(stderr, "  case %s dw\n", cs);
        if (!CHECK_ARRAYS(db, f[DB], out, LIN_ATOL, LIN_RTOL)) fprintf(stderr, "  case %s db\n", cs);
        /* without bias: y - b (in double) */
        octav_linear_forward(f[X], f[W], NULL, y, n, in, out);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < out; j++) y[i * out + j] = (float)((double)y[i * out + j] + f[B][j]);
        if (!CHECK_ARRAYS(y, f[Y], n * out, LIN_ATOL, LIN_RTOL)) fprintf(stderr, "  case %s y, no bias\n", cs);
        free(y); free(dx); free(dw); free(db);
    }
    for (int i = 0; i < NT; i++) octav_tensor_free(&t[i]);
}

static void test_linear_vs_torch(void) {
    linear_fixture("a", 33, 70, 17);
    linear_fixture("b", 1, 9, 5);
    linear_fixture("c", 48, 96, 10);
}

/* NULL outputs are skipped; n == 0 gives zero dW and db. */
static void test_linear_edges(void) {
    const int64_t n = 4, in = 3, out = 2;
    trng r = {505, 0, 0};
    float x[12], w[6], dy[8], dx[12], dw[6], db[2], dx2[12], dw2[6], db2[2];
    fill(&r, x, 12); fill(&r, w, 6); fill(&r, dy, 8);
    octav_linear_backward(x, w, dy, dx, dw, db, n, in, out);
    for (int i = 0; i < 12; i++) dx2[i] = 7.0f;
    for (int i = 0; i < 6; i++) dw2[i] = 7.0f;
    for (int i = 0; i < 2; i++) db2[i] = 7.0f;
    octav_linear_backward(x, w, dy, dx2, NULL, NULL, n, in, out);
    CHECK(same_bits(dx, dx2, 12));
    octav_linear_backward(x, w, dy, NULL, dw2, NULL, n, in, out);
    CHECK(same_bits(dw, dw2, 6));
    octav_linear_backward(x, w, dy, NULL, NULL, db2, n, in, out);
    CHECK(same_bits(db, db2, 2));
    /* db is exact here: column sums in double of 4 floats, rounded once */
    for (int j = 0; j < 2; j++) {
        double s = 0;
        for (int i = 0; i < 4; i++) s += dy[i * 2 + j];
        CHECK(db[j] == (float)s);
    }
    for (int i = 0; i < 6; i++) dw2[i] = NAN;
    db2[0] = db2[1] = NAN;
    octav_linear_backward(x, w, dy, NULL, dw2, db2, 0, in, out);
    for (int i = 0; i < 6; i++) CHECK(dw2[i] == 0.0f && !signbit(dw2[i]));
    CHECK(db2[0] == 0.0f && db2[1] == 0.0f);
    /* in == 0: y = b */
    float y[8], b[2] = {1.5f, -2.0f};
    octav_linear_forward(x, w, b, y, n, 0, out);
    for (int i = 0; i < 8; i++) CHECK(y[i] == b[i % 2]);
}

/* 1 vs 2 threads: db bit-identical (octav's own reduction); y, dx, dW from
 * BLIS within the GEMM tolerance (see the top of the file). The same thread
 * count twice gives identical bits. */
static void test_linear_threads(void) {
    const int64_t n = 128, in = 300, out = 257;
    trng r = {606, 0, 0};
    float *x = fbuf(n * in), *w = fbuf(out * in), *b = fbuf(out), *dy = fbuf(n * out);
    fill(&r, x, n * in); fill(&r, w, out * in); fill(&r, b, out); fill(&r, dy, n * out);
    float *y[3], *dx[3], *dw[3], *db[3];
    int saved = octav_get_threads();
    for (int v = 0; v < 3; v++) {
        y[v] = fbuf(n * out); dx[v] = fbuf(n * in); dw[v] = fbuf(out * in); db[v] = fbuf(out);
        octav_set_threads(v == 0 ? 1 : 2);
        octav_linear_forward(x, w, b, y[v], n, in, out);
        octav_linear_backward(x, w, dy, dx[v], dw[v], db[v], n, in, out);
    }
    octav_set_threads(saved);
    CHECK_MSG(same_bits(db[0], db[1], out), "db differs between 1 and 2 threads");
    CHECK_MSG(same_bits(y[1], y[2], n * out) && same_bits(dx[1], dx[2], n * in) &&
              same_bits(dw[1], dw[2], out * in) && same_bits(db[1], db[2], out),
              "two runs with 2 threads differ");
    /* GEMM parts: 1 thread vs 2 threads against the double reference bound */
    float *yr = fbuf(n * out), *dxr = fbuf(n * in), *dwr = fbuf(out * in), *c0 = fbuf(out * in);
    for (int64_t i = 0; i < n; i++) memcpy(yr + i * out, b, (size_t)out * sizeof *b);
    memcpy(c0, yr, (size_t)(n * out) * sizeof *c0);
    octav_gemm_ref(0, 1, n, out, in, 1.0f, x, in, w, in, 1.0f, yr, out);
    octav_gemm_ref(0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, dxr, in);
    octav_gemm_ref(1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, dwr, in);
    for (int v = 0; v < 2; v++) {
        check_gemm("linear y", 0, 1, n, out, in, 1.0f, x, in, w, in, 1.0f, c0, y[v], yr, out);
        memset(c0, 0, (size_t)(out * in) * sizeof *c0);
        check_gemm("linear dx", 0, 0, n, in, out, 1.0f, dy, out, w, in, 0.0f, c0, dx[v], dxr, in);
        check_gemm("linear dW", 1, 0, out, in, n, 1.0f, dy, out, x, in, 0.0f, c0, dw[v], dwr, in);
        for (int64_t i = 0; i < n; i++) memcpy(c0 + i * out, b, (size_t)out * sizeof *b);
    }
    for (int v = 0; v < 3; v++) { free(y[v]); free(dx[v]); free(dw[v]); free(db[v]); }
    free(x); free(w); free(b); free(dy); free(yr); free(dxr); free(dwr); free(c0);
}

int main(void) {
    RUN(test_gemm_ref_exact);
    RUN(test_gemm_vs_ref);
    RUN(test_gemm_degenerate);
    RUN(test_batched_vs_ref);
    RUN(test_batched_threads);
    RUN(test_linear_gradcheck);
    RUN(test_linear_vs_torch);
    RUN(test_linear_edges);
    RUN(test_linear_threads);
    return TEST_SUMMARY();
}
