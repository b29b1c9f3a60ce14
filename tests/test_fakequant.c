/* test_fakequant.c -- fake quantization (forward, STE / PWL / MAD backward,
 * LSQ / PACT scale gradients), integer export (int8, packed int4) and the
 * quantization error statistics.
 *
 * References: PyTorch's fake_quantize_per_tensor_affine / _per_channel_affine
 * and the learnable variants' backward (fixtures made by
 * tests/fixtures/gen_fakequant.py, read with the small '<f4' .npy loader
 * below so this test does not depend on src/io), analytic masks, hand-packed
 * nibbles and sums recomputed here in double.
 *
 * Two known, deliberate differences from PyTorch are measured, not hidden:
 *  - PyTorch rounds fl32(x * fl32(1/d)), octav rounds fl32(x / d); on a tie
 *    the two can land one step apart. Such elements are counted (< 0.5 %)
 *    and must be exactly one step apart.
 *  - Both call an element clipped when its rounded integer is outside
 *    [qmin, qmax]; where x*(1/d) and x/d round apart across an edge the
 *    clip decision may differ too, and dx / dscale follow octav's rounding
 *    (octav_clipped below); everywhere else octav must equal PyTorch. */
#include "octav/quant.h"
#include "test.h"

#include <float.h>

#ifndef OCTAV_FIXTURES
#error "OCTAV_FIXTURES must name tests/fixtures"
#endif
#define FQ_DIR OCTAV_FIXTURES "/fakequant/"

/* Named tolerances. */
#define FORMULA_DISAGREE_MAX 0.005 /* fraction of elements where x*(1/d) and x/d round apart */
#define LSQ_RTOL 1e-5              /* dscale vs PyTorch, relative to sum |term| */
#define SUM_RTOL 1e-12             /* double sums recomputed here, relative to sum |term| */
#define MAD_RTOL 2.5e-7            /* one float rounding of dy * |edge| / |x| */

/* octav, PyTorch and the integer dequantizers all give +0 where rne(x/d)
 * is zero: results must have identical bits. -DFQ_STRICT_SIGNED_ZERO=0
 * relaxes that to equal values (for diagnosing). */
#ifndef FQ_STRICT_SIGNED_ZERO
#define FQ_STRICT_SIGNED_ZERO 1
#endif

/* ---- minimal .npy reader: '<f4', C order, versions 1-3 ------------------- */
typedef struct {
    float *data;
    int ndim;
    int64_t dim[8];
    int64_t n;
} npy_arr;

static int npy_load(const char *name, npy_arr *a) {
    char path[1024];
    snprintf(path, sizeof path, "%s%s", FQ_DIR, name);
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) { CHECK_MSG(0, "cannot open %s", path); return 0; }
    unsigned char *buf = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0) len = ftell(f);
    if (len > 0 && fseek(f, 0, SEEK_SET) == 0) {
        buf = malloc((size_t)len + 1);
        if (buf && fread(buf, 1, (size_t)len, f) != (size_t)len) { free(buf); buf = NULL; }
    }
    fclose(f);
    if (!buf) { CHECK_MSG(0, "cannot read %s", path); return 0; }
    int ok = 0;
    size_t off = 0, hlen = 0;
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) goto done;
    if (buf[6] == 1) { hlen = buf[8] | (size_t)buf[9] << 8; off = 10; }
    else if (len >= 12) { hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24; off = 12; }
    else goto done;
    if (off + hlen > (size_t)len) goto done;
    char *h = (char *)buf + off;
    char save = h[hlen];
    h[hlen] = '\0';
    const char *sh = strstr(h, "'shape': (");
    int good = strstr(h, "'descr': '<f4'") && strstr(h, "'fortran_order': False") && sh;
    a->n = 1;
    if (good) {
        const char *p = sh + 10;
        while (*p && *p != ')') {
            while (*p == ' ' || *p == ',') p++;
            if (*p == ')') break;
            char *e;
            long long v = strtoll(p, &e, 10);
            if (e == p || a->ndim == 8 || v < 0) { good = 0; break; }
            a->dim[a->ndim++] = v;
            a->n *= v;
            p = e;
        }
    }
    h[hlen] = save;
    if (!good || off + hlen + (size_t)a->n * 4 > (size_t)len) goto done;
    a->data = malloc((size_t)a->n * sizeof(float) + 1);
    if (!a->data) goto done;
    memcpy(a->data, buf + off + hlen, (size_t)a->n * sizeof(float)); /* little-endian host */
    ok = 1;
done:
    free(buf);
    if (!ok) CHECK_MSG(0, "%s is not a '<f4' C-order .npy file", path);
    return ok;
}

/* ---- references written from quant.h -------------------------------------- */
static const int ROW_BITS[4] = {2, 3, 4, 8};
#define NROWS 12
static octav_grid row_grid(int r) { return (octav_grid){ROW_BITS[r % 4], (octav_grid_kind)(r / 4)}; }

static float step_of(octav_grid g, float s) { return s / (float)octav_grid_levels(g); }
static float fqmin(octav_grid g) { return (float)octav_grid_qmin(g); }
static float fqmax(octav_grid g) { return (float)octav_grid_qmax(g); }
static float clampq(float q, octav_grid g) { return q < fqmin(g) ? fqmin(g) : (q > fqmax(g) ? fqmax(g) : q); }
/* octav's integer: clamp(rne(x / d)); PyTorch's: clamp(rne(x * (1/d))). */
static float q_octav(float x, float d, octav_grid g) { return clampq(rintf(x / d), g); }
static float q_torch_raw(float x, float d) { float inv = 1.0f / d; return rintf(x * inv); }
/* quant.h: clipped when rne(x/d) is outside [qmin, qmax]. */
static int octav_clipped(float x, float d, octav_grid g) {
    float q = rintf(x / d);
    return q < fqmin(g) || q > fqmax(g);
}

static octav_layout make_layout(int ndim, const int64_t *dim, octav_granularity k, int axis, int64_t block) {
    octav_shape shp = {ndim, {0}};
    for (int i = 0; i < ndim; i++) shp.dim[i] = dim[i];
    octav_layout lay;
    memset(&lay, 0, sizeof lay);
    CHECK(octav_layout_make(&shp, (octav_group_spec){k, axis, block}, &lay) == OCTAV_OK);
    return lay;
}

static float *fbuf(int64_t n) { float *p = calloc((size_t)n, sizeof *p); if (!p) abort(); return p; }

/* Random test data around a clip scalar s: Gaussian, clipped, ties, zeros. */
static void fill_data(trng *r, float *x, int64_t n, float s) {
    for (int64_t i = 0; i < n; i++) {
        double u = trng_unif(r);
        if (u < 0.70) x[i] = (float)(trng_gauss(r) * s / 2.5);
        else if (u < 0.85) x[i] = (float)((trng_unif(r) < 0.5 ? -1 : 1) * s * (1.0 + 3.0 * trng_unif(r)));
        else if (u < 0.95) x[i] = (float)((floor(trng_unif(r) * 16.0) - 8.0 + 0.5) * s / 8.0);
        else x[i] = 0.0f;
    }
}

/* ---- forward against PyTorch ---------------------------------------------- */
typedef struct {
    int64_t n, disagree, signed_zero, bad;
    int64_t first_bad;
} fwd_count;

/* Compares octav's forward with PyTorch's y for one tensor (layout lay). */
static void cmp_forward(octav_grid g, const octav_layout *lay, const float *x, const float *s,
                        const float *yt, fwd_count *c) {
    float *y = fbuf(lay->numel);
    CHECK(octav_fq_forward(g, lay, x, s, y) == OCTAV_OK);
    for (int64_t i = 0; i < lay->numel; i++) {
        float d = step_of(g, s[octav_layout_group_of(lay, i)]);
        float qa = q_octav(x[i], d, g), qb = clampq(q_torch_raw(x[i], d), g);
        int ok;
        if (qa == qb) {
            ok = y[i] == yt[i];
            if (ok && memcmp(&y[i], &yt[i], sizeof(float)) != 0) { c->signed_zero++; ok = !FQ_STRICT_SIGNED_ZERO; }
        } else {
            c->disagree++;
            /* one step apart: the integers differ by one and each side is its own q * d */
            ok = y[i] == qa * d && yt[i] == qb * d && fabsf(qa - qb) == 1.0f &&
                 fabs((double)y[i] - yt[i]) <= d * (1.0 + 1e-6) + 2 * FLT_EPSILON * fabs((double)yt[i]);
        }
        if (!ok && c->bad++ == 0) {
            c->first_bad = c->n + i;
            fprintf(stderr, "  forward %s %d-bit: x=%.9g d=%.9g octav %.9g torch %.9g\n",
                    octav_grid_name(g.kind), g.bits, x[i], d, y[i], yt[i]);
        }
    }
    c->n += lay->numel;
    free(y);
}

static void report_forward(const char *what, const fwd_count *c) {
    CHECK_MSG(c->bad == 0, "%s: %lld of %lld elements differ from PyTorch, first at %lld", what,
              (long long)c->bad, (long long)c->n, (long long)c->first_bad);
    CHECK_MSG(c->disagree < FORMULA_DISAGREE_MAX * (double)c->n,
              "%s: x*(1/d) and x/d round apart on %lld of %lld elements", what,
              (long long)c->disagree, (long long)c->n);
    fprintf(stderr, "     %s: %lld elements, %lld round apart (x*(1/d) vs x/d), %lld differ in the sign of zero\n",
            what, (long long)c->n, (long long)c->disagree, (long long)c->signed_zero);
}

static void test_forward_tensor_vs_torch(void) {
    npy_arr X, S, Y;
    int ok = npy_load("tensor_x.npy", &X);
    ok &= npy_load("tensor_s.npy", &S);
    ok &= npy_load("tensor_y.npy", &Y);
    if (!ok) goto out;
    CHECK(X.ndim == 2 && X.dim[0] == NROWS && S.n == NROWS && Y.n == X.n);
    if (X.ndim != 2 || X.dim[0] != NROWS || S.n != NROWS || Y.n != X.n) goto out;
    int64_t N = X.dim[1];
    octav_layout lay = make_layout(1, &N, OCTAV_GRAN_TENSOR, 0, 0);
    fwd_count total = {0, 0, 0, 0, -1};
    for (int r = 0; r < NROWS; r++) {
        fwd_count c = {0, 0, 0, 0, -1};
        cmp_forward(row_grid(r), &lay, X.data + r * N, S.data + r, Y.data + r * N, &c);
        CHECK_MSG(c.bad == 0 && c.disagree < FORMULA_DISAGREE_MAX * (double)N, "row %d: %lld bad, %lld apart",
                  r, (long long)c.bad, (long long)c.disagree);
        if (c.bad && total.first_bad < 0) total.first_bad = total.n + c.first_bad;
        total.n += c.n; total.disagree += c.disagree; total.signed_zero += c.signed_zero; total.bad += c.bad;
    }
    report_forward("per-tensor", &total);
out:
    free(X.data); free(S.data); free(Y.data);
}

/* Per channel along axis 0, 1, 2 (= -1) of a (3, 5, 8) tensor. */
static void test_forward_channel_vs_torch(void) {
    for (int a = 0; a < 3; a++) {
        char nx[64], ns[64], ny[64];
        snprintf(nx, sizeof nx, "channel_ax%d_x.npy", a);
        snprintf(ns, sizeof ns, "channel_ax%d_s.npy", a);
        snprintf(ny, sizeof ny, "channel_ax%d_y.npy", a);
        npy_arr X, S, Y;
        if (npy_load(nx, &X) & npy_load(ns, &S) & npy_load(ny, &Y) && X.ndim == 4 && X.dim[0] == NROWS &&
            S.ndim == 2 && S.dim[0] == NROWS && Y.n == X.n) {
            const int64_t *dim = X.dim + 1, n = X.n / NROWS, C = S.dim[1];
            CHECK(C == dim[a]);
            fwd_count c = {0, 0, 0, 0, -1};
            for (int r = 0; r < NROWS; r++) {
                octav_layout lay = make_layout(3, dim, OCTAV_GRAN_CHANNEL, a, 0);
                cmp_forward(row_grid(r), &lay, X.data + r * n, S.data + r * C, Y.data + r * n, &c);
                if (a == 2) { /* the last axis by a negative index: identical */
                    octav_layout l1 = make_layout(3, dim, OCTAV_GRAN_CHANNEL, -1, 0);
                    float *y0 = fbuf(n), *y1 = fbuf(n);
                    CHECK(octav_fq_forward(row_grid(r), &lay, X.data + r * n, S.data + r * C, y0) == OCTAV_OK);
                    CHECK(octav_fq_forward(row_grid(r), &l1, X.data + r * n, S.data + r * C, y1) == OCTAV_OK);
                    CHECK(memcmp(y0, y1, (size_t)n * sizeof(float)) == 0);
                    free(y0); free(y1);
                }
            }
            char what[64];
            snprintf(what, sizeof what, "per-channel axis %d", a);
            report_forward(what, &c);
        } else {
            CHECK_MSG(0, "bad shapes in %s / %s / %s", nx, ns, ny);
        }
        free(X.data); free(S.data); free(Y.data);
    }
}

/* ---- backward against PyTorch's learnable fake quant ---------------------- */
/* One element's contribution to dL/dd (PyTorch) and octav's to dL/ds times L
 * (both with respect to d), in double. */
static double torch_dd_term(float x, float d, float dy, octav_grid g) {
    float qr = q_torch_raw(x, d), inv = 1.0f / d;
    if (qr < fqmin(g)) return (double)dy * fqmin(g);
    if (qr > fqmax(g)) return (double)dy * fqmax(g);
    return (double)dy * ((double)(qr * d) - (double)x) * (double)inv;
}
static double octav_dd_term(float x, float d, float dy, octav_grid g) {
    float q = rintf(x / d);
    if (q < fqmin(g)) return (double)dy * fqmin(g);
    if (q > fqmax(g)) return (double)dy * fqmax(g);
    return (double)dy * ((double)q - (double)(x / d));
}

typedef struct {
    int64_t n, rule_differs, round_apart, bad;
} bwd_count;

/* Checks octav's PWL dx and LSQ / PACT dscale for one tensor against
 * PyTorch's dX and dScale (w.r.t. d, one per group). */
static void cmp_backward(octav_grid g, const octav_layout *lay, const float *x, const float *s,
                         const float *dy, const float *dxt, const float *dst, bwd_count *c) {
    const int64_t n = lay->numel, ng = lay->ngroups;
    const double L = octav_grid_levels(g);
    float *dx = fbuf(n), *dx2 = fbuf(n);
    double *ds = calloc((size_t)ng, sizeof *ds), *dsp = calloc((size_t)ng, sizeof *dsp);
    double *adj = calloc((size_t)ng, sizeof *adj), *mag = calloc((size_t)ng, sizeof *mag);
    double *pact = calloc((size_t)ng, sizeof *pact), *pmag = calloc((size_t)ng, sizeof *pmag);
    CHECK(octav_fq_backward(g, lay, x, s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ, dx, ds) == OCTAV_OK);
    CHECK(octav_fq_backward(g, lay, x, s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_PACT, dx2, dsp) == OCTAV_OK);
    CHECK(memcmp(dx, dx2, (size_t)n * sizeof(float)) == 0);
    for (int64_t i = 0; i < n; i++) {
        int64_t gi = octav_layout_group_of(lay, i);
        float d = step_of(g, s[gi]);
        float qr = q_torch_raw(x[i], d);
        int t_in = qr >= fqmin(g) && qr <= fqmax(g), o_in = !octav_clipped(x[i], d, g);
        int ok = dx[i] == (o_in ? dy[i] : 0.0f); /* octav's documented PWL rule */
        if (t_in == o_in) {
            ok = ok && dx[i] == dxt[i];
            if (rintf(x[i] / d) != qr) { /* a tie that x*(1/d) and x/d round apart: LSQ terms differ */
                c->round_apart++;
                adj[gi] += octav_dd_term(x[i], d, dy[i], g) - torch_dd_term(x[i], d, dy[i], g);
            }
        } else {
            /* only where x*(1/d) and x/d round apart across an edge */
            c->rule_differs++;
            ok = ok && rintf(x[i] / d) != qr && fabsf(rintf(x[i] / d) - qr) == 1.0f;
            adj[gi] += octav_dd_term(x[i], d, dy[i], g) - torch_dd_term(x[i], d, dy[i], g);
        }
        if (!ok && c->bad++ == 0)
            fprintf(stderr, "  backward %s %d-bit: index %lld x=%.9g d=%.9g dy=%.9g octav dx %.9g torch dX %.9g\n",
                    octav_grid_name(g.kind), g.bits, (long long)i, x[i], d, dy[i], dx[i], dxt[i]);
        mag[gi] += fabs((double)dy[i]) * (o_in ? 0.5 : fmax(fabs(fqmin(g)), fqmax(g)));
        if (!o_in) {
            double e = rintf(x[i] / d) < fqmin(g) ? fqmin(g) : fqmax(g);
            pact[gi] += (double)dy[i] * e / L;
            pmag[gi] += fabs((double)dy[i] * e / L);
        }
    }
    for (int64_t gi = 0; gi < ng; gi++) {
        double want = ((double)dst[gi] + adj[gi]) / L;
        CHECK_NEAR(ds[gi], want, LSQ_RTOL * mag[gi] / L + 1e-30, 0);
        CHECK_NEAR(dsp[gi], pact[gi], SUM_RTOL * pmag[gi] + 1e-300, 0);
    }
    c->n += n;
    free(dx); free(dx2); free(ds); free(dsp); free(adj); free(mag); free(pact); free(pmag);
}

static void report_backward(const char *what, const bwd_count *c) {
    CHECK_MSG(c->bad == 0, "%s: %lld of %lld elements wrong", what, (long long)c->bad, (long long)c->n);
    CHECK_MSG(c->round_apart < FORMULA_DISAGREE_MAX * (double)c->n, "%s: %lld of %lld round apart", what,
              (long long)c->round_apart, (long long)c->n);
    fprintf(stderr, "     %s: %lld elements, %lld clipped differently (x*(1/d) and x/d round apart at an edge), "
            "%lld round apart (x*(1/d) vs x/d)\n", what, (long long)c->n, (long long)c->rule_differs,
            (long long)c->round_apart);
}

static void test_backward_tensor_vs_torch(void) {
    npy_arr X, DY, DX, S, DS;
    int ok = npy_load("lsq_tensor_x.npy", &X) & npy_load("lsq_tensor_dy.npy", &DY) &
             npy_load("lsq_tensor_dx.npy", &DX) & npy_load("lsq_tensor_s.npy", &S) &
             npy_load("lsq_tensor_dscale.npy", &DS);
    if (ok && X.ndim == 2 && X.dim[0] == NROWS && DY.n == X.n && DX.n == X.n && S.n == NROWS && DS.n == NROWS) {
        int64_t N = X.dim[1];
        octav_layout lay = make_layout(1, &N, OCTAV_GRAN_TENSOR, 0, 0);
        bwd_count c = {0, 0, 0, 0};
        for (int r = 0; r < NROWS; r++)
            cmp_backward(row_grid(r), &lay, X.data + r * N, S.data + r, DY.data + r * N, DX.data + r * N,
                         DS.data + r, &c);
        report_backward("learnable per-tensor", &c);
    } else {
        CHECK_MSG(0, "bad lsq_tensor fixtures");
    }
    free(X.data); free(DY.data); free(DX.data); free(S.data); free(DS.data);
}

static void test_backward_channel_vs_torch(void) {
    npy_arr X, DY, DX, S, DS;
    int ok = npy_load("lsq_channel_x.npy", &X) & npy_load("lsq_channel_dy.npy", &DY) &
             npy_load("lsq_channel_dx.npy", &DX) & npy_load("lsq_channel_s.npy", &S) &
             npy_load("lsq_channel_dscale.npy", &DS);
    if (ok && X.ndim == 4 && X.dim[0] == NROWS && DY.n == X.n && DX.n == X.n && S.ndim == 2 &&
        S.dim[0] == NROWS && S.dim[1] == X.dim[2] && DS.n == S.n) {
        const int64_t n = X.n / NROWS, C = S.dim[1];
        octav_layout lay = make_layout(3, X.dim + 1, OCTAV_GRAN_CHANNEL, 1, 0);
        bwd_count c = {0, 0, 0, 0};
        for (int r = 0; r < NROWS; r++)
            cmp_backward(row_grid(r), &lay, X.data + r * n, S.data + r * C, DY.data + r * n, DX.data + r * n,
                         DS.data + r * C, &c);
        report_backward("learnable per-channel axis 1", &c);
    } else {
        CHECK_MSG(0, "bad lsq_channel fixtures");
    }
    free(X.data); free(DY.data); free(DX.data); free(S.data); free(DS.data);
}

/* ---- gradient estimators: the masks, analytically -------------------------- */
static void test_estimator_masks(void) {
    const octav_grid_kind kinds[3] = {OCTAV_GRID_FULL, OCTAV_GRID_NARROW, OCTAV_GRID_UNSIGNED};
    const int64_t n = 3001;
    float *x = fbuf(n), *dy = fbuf(n), *dx = fbuf(n), *inplace = fbuf(n);
    trng r = {77, 0, 0};
    for (int k = 0; k < 3; k++)
        for (int b = 2; b <= 8; b += 3) {
            octav_grid g = {b, kinds[k]};
            const float s = 1.7f, d = step_of(g, s), lo = fqmin(g) * d, hi = fqmax(g) * d;
            fill_data(&r, x, n, s);
            x[0] = lo; x[1] = hi; x[2] = nextafterf(hi, INFINITY); x[3] = nextafterf(lo, -INFINITY);
            x[4] = -0.25f * d; x[5] = -3.0f * s;
            for (int64_t i = 0; i < n; i++) dy[i] = (float)trng_gauss(&r);
            octav_layout lay = make_layout(1, &n, OCTAV_GRAN_TENSOR, 0, 0);
            int64_t bad[3] = {0, 0, 0}, nclip = 0, nneg = 0;
            for (int e = OCTAV_GRAD_STE; e <= OCTAV_GRAD_MAD; e++) {
                CHECK(octav_fq_backward(g, &lay, x, &s, dy, (octav_grad_est)e, OCTAV_SGRAD_NONE, dx, NULL) == OCTAV_OK);
                memcpy(inplace, dy, (size_t)n * sizeof(float)); /* dx may alias dy */
                CHECK(octav_fq_backward(g, &lay, x, &s, inplace, (octav_grad_est)e, OCTAV_SGRAD_NONE, inplace, NULL) ==
                      OCTAV_OK);
                CHECK(memcmp(inplace, dx, (size_t)n * sizeof(float)) == 0);
                for (int64_t i = 0; i < n; i++) {
                    const int clipped = octav_clipped(x[i], d, g), low = rintf(x[i] / d) < fqmin(g);
                    int ok;
                    if (e == OCTAV_GRAD_STE || !clipped) ok = dx[i] == dy[i];
                    else if (e == OCTAV_GRAD_PWL) ok = dx[i] == 0.0f;
                    else {
                        double want = (double)dy[i] * fabs(low ? lo : hi) / fabs(x[i]);
                        ok = fabs(dx[i] - want) <= MAD_RTOL * fabs(want) && (want == 0 || (dx[i] > 0) == (want > 0));
                        if (g.kind == OCTAV_GRID_UNSIGNED && low) ok = ok && dx[i] == 0.0f;
                        /* the negative edge of both signed grids is -L*d = -s: MAD gives s/|x| */
                        if (g.kind != OCTAV_GRID_UNSIGNED && low)
                            ok = ok && fabs(dx[i] - (double)dy[i] * (double)s / fabs(x[i])) <= 2 * MAD_RTOL * fabs(want);
                    }
                    if (e == OCTAV_GRAD_PWL && g.kind == OCTAV_GRID_UNSIGNED && low) { ok = ok && dx[i] == 0.0f; nneg++; }
                    if (e == OCTAV_GRAD_STE) nclip += clipped;
                    if (!ok && bad[e]++ == 0)
                        fprintf(stderr, "  %s %s %d-bit index %lld: x=%.9g dy=%.9g dx=%.9g\n", octav_grad_name((octav_grad_est)e),
                                octav_grid_name(g.kind), b, (long long)i, x[i], dy[i], dx[i]);
                }
            }
            CHECK_MSG(bad[0] + bad[1] + bad[2] == 0, "%s %d-bit: ste %lld pwl %lld mad %lld bad",
                      octav_grid_name(g.kind), b, (long long)bad[0], (long long)bad[1], (long long)bad[2]);
            CHECK(nclip > n / 20); /* the data does exercise the clipped region */
            if (g.kind == OCTAV_GRID_UNSIGNED) CHECK(nneg > 0);
        }
    free(x); free(dy); free(dx); free(inplace);
}

/* ---- groups: channel on several axes, blocks, zero scales ----------------- */
/* Each channel of a per-channel call equals a per-tensor call on that
 * channel's gathered elements (forward, dx, dscale). */
static void test_channel_axes(void) {
    const int64_t dim[4] = {3, 4, 5, 6}, n = 360;
    const octav_grid g = {4, OCTAV_GRID_NARROW};
    float *x = fbuf(n), *dy = fbuf(n), *y = fbuf(n), *dx = fbuf(n);
    float *xs = fbuf(n), *dys = fbuf(n), *ys = fbuf(n), *dxs = fbuf(n);
    trng r = {5, 0, 0};
    fill_data(&r, x, n, 1.0f);
    for (int64_t i = 0; i < n; i++) dy[i] = (float)trng_gauss(&r);
    const int axes[5] = {0, 1, 2, 3, -1};
    for (int t = 0; t < 5; t++) {
        octav_layout lay = make_layout(4, dim, OCTAV_GRAN_CHANNEL, axes[t], 0);
        const int64_t C = lay.channels;
        CHECK(C == dim[axes[t] < 0 ? 3 : axes[t]] && lay.ngroups == C);
        float s[6];
        double ds[6];
        for (int64_t c = 0; c < C; c++) s[c] = (float)(0.5 + trng_unif(&r));
        s[C / 2] = 0.0f; /* a zero-scale channel maps to zero */
        CHECK(octav_fq_forward(g, &lay, x, s, y) == OCTAV_OK);
        CHECK(octav_fq_backward(g, &lay, x, s, dy, OCTAV_GRAD_MAD, OCTAV_SGRAD_LSQ, dx, ds) == OCTAV_OK);
        for (int64_t c = 0; c < C; c++) {
            int64_t m = 0;
            for (int64_t i = 0; i < n; i++)
                if (octav_layout_group_of(&lay, i) == c) { xs[m] = x[i]; dys[m] = dy[i]; m++; }
            CHECK(m == octav_layout_group_size(&lay, c) && m == n / C);
            octav_layout l1 = make_layout(1, &m, OCTAV_GRAN_TENSOR, 0, 0);
            double ds1 = 0;
            CHECK(octav_fq_forward(g, &l1, xs, &s[c], ys) == OCTAV_OK);
            CHECK(octav_fq_backward(g, &l1, xs, &s[c], dys, OCTAV_GRAD_MAD, OCTAV_SGRAD_LSQ, dxs, &ds1) == OCTAV_OK);
            int64_t j = 0, bad = 0;
            for (int64_t i = 0; i < n; i++)
                if (octav_layout_group_of(&lay, i) == c) {
                    bad += memcmp(&y[i], &ys[j], sizeof(float)) != 0 || memcmp(&dx[i], &dxs[j], sizeof(float)) != 0;
                    if (s[c] == 0.0f) bad += y[i] != 0.0f;
                    j++;
                }
            CHECK_MSG(bad == 0, "axis %d channel %lld: %lld elements differ", axes[t], (long long)c, (long long)bad);
            CHECK_NEAR(ds[c], ds1, 1e-12, 1e-12);
            if (s[c] == 0.0f) CHECK(ds[c] == 0.0);
        }
    }
    free(x); free(dy); free(y); free(dx); free(xs); free(dys); free(ys); free(dxs);
}

/* Blocks of V = 4 on rows of 10 (blocks 4, 4, 2), one block with scale 0. */
static void test_blocks(void) {
    const int64_t dim[3] = {2, 3, 10}, n = 60;
    octav_layout lay = make_layout(3, dim, OCTAV_GRAN_BLOCK, 0, 4);
    CHECK(lay.nblocks == 3 && lay.ngroups == 18);
    CHECK(octav_layout_group_size(&lay, 2) == 2 && octav_layout_group_size(&lay, 3) == 4);
    const octav_grid grids[3] = {{3, OCTAV_GRID_FULL}, {4, OCTAV_GRID_NARROW}, {5, OCTAV_GRID_UNSIGNED}};
    float x[60], dy[60], y[60], dx[60], s[18];
    double ds[18], want[18];
    trng r = {9, 0, 0};
    for (int t = 0; t < 3; t++) {
        octav_grid g = grids[t];
        for (int k = 0; k < 18; k++) s[k] = (float)(0.3 + 2.0 * trng_unif(&r));
        s[5] = 0.0f; /* the short block of row 1 */
        s[7] = 0.0f; /* a full block */
        fill_data(&r, x, n, 1.0f);
        x[17] = 0.0f; /* zero inside a zero-scale block */
        for (int i = 0; i < n; i++) dy[i] = (float)trng_gauss(&r);
        for (int k = 0; k < 18; k++) ds[k] = NAN; /* dscale is overwritten, not accumulated */
        CHECK(octav_fq_forward(g, &lay, x, s, y) == OCTAV_OK);
        CHECK(octav_fq_backward(g, &lay, x, s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ, dx, ds) == OCTAV_OK);
        memset(want, 0, sizeof want);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            int64_t gi = (i / 10) * 3 + (i % 10) / 4;
            CHECK(octav_layout_group_of(&lay, i) == gi);
            if (s[gi] == 0.0f) {
                bad += y[i] != 0.0f;
                bad += dx[i] != (x[i] == 0.0f ? dy[i] : 0.0f); /* range [0, 0]: non-zeros are clipped */
                continue;
            }
            float d = step_of(g, s[gi]);
            bad += y[i] != q_octav(x[i], d, g) * d;
            bad += dx[i] != (octav_clipped(x[i], d, g) ? 0.0f : dy[i]);
            want[gi] += octav_dd_term(x[i], d, dy[i], g) / octav_grid_levels(g);
        }
        CHECK_MSG(bad == 0, "%s %d-bit: %d wrong", octav_grid_name(g.kind), g.bits, bad);
        for (int k = 0; k < 18; k++) CHECK_NEAR(ds[k], want[k], 1e-12, 1e-12);
        CHECK(ds[5] == 0.0 && ds[7] == 0.0);
    }
    /* one tensor-wide zero scale: all zeros, y aliasing x */
    float s0 = 0.0f;
    octav_layout lt = make_layout(1, &n, OCTAV_GRAN_TENSOR, 0, 0);
    CHECK(octav_fq_forward(grids[0], &lt, x, &s0, x) == OCTAV_OK);
    int nz = 0;
    for (int i = 0; i < n; i++) nz += x[i] != 0.0f;
    CHECK(nz == 0);
}

/* ---- integer export -------------------------------------------------------- */
static void check_int_roundtrip(octav_grid g, const octav_layout *lay, const float *x, const float *s, int four) {
    const int64_t n = lay->numel, nb = four ? (n + 1) / 2 : n;
    uint8_t *q = malloc((size_t)nb + 1);
    float *yq = fbuf(n), *yf = fbuf(n);
    memset(q, 0xA5, (size_t)nb + 1);
    CHECK((four ? octav_quantize_int4(g, lay, x, s, q) : octav_quantize_int8(g, lay, x, s, q)) == OCTAV_OK);
    CHECK(q[nb] == 0xA5); /* nothing written past the end */
    CHECK((four ? octav_dequantize_int4(g, lay, q, s, yq) : octav_dequantize_int8(g, lay, q, s, yq)) == OCTAV_OK);
    CHECK(octav_fq_forward(g, lay, x, s, yf) == OCTAV_OK);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++) {
        float sg = s[octav_layout_group_of(lay, i)];
        int32_t want = sg > 0.0f ? (int32_t)q_octav(x[i], step_of(g, sg), g) : 0;
        int32_t code;
        if (four) {
            int nib = (q[i >> 1] >> (4 * (i & 1))) & 0xf;
            code = g.kind == OCTAV_GRID_UNSIGNED ? nib : (nib >= 8 ? nib - 16 : nib);
        } else {
            code = g.kind == OCTAV_GRID_UNSIGNED ? (int32_t)q[i] : (int32_t)(int8_t)q[i];
        }
        /* equal in value to the fake quantizer (which may give -0 where q = 0 gives +0) */
        if (code != want || yq[i] != yf[i] || (FQ_STRICT_SIGNED_ZERO && memcmp(&yq[i], &yf[i], sizeof(float))))
            { if (first < 0) first = i; bad++; }
    }
    if (four && (n & 1)) CHECK((q[n >> 1] & 0xf0) == 0); /* padding nibble */
    CHECK_MSG(bad == 0, "int%d %s %d-bit: %lld bad, first at %lld", four ? 4 : 8, octav_grid_name(g.kind), g.bits,
              (long long)bad, (long long)first);
    free(q); free(yq); free(yf);
}

static void test_int_export(void) {
    const octav_grid_kind kinds[3] = {OCTAV_GRID_FULL, OCTAV_GRID_NARROW, OCTAV_GRID_UNSIGNED};
    const int64_t dim[2] = {6, 7}, n = 42;
    float x[42], s[42];
    trng r = {31, 0, 0};
    for (int k = 0; k < 3; k++)
        for (int b = 2; b <= 8; b++) {
            octav_grid g = {b, kinds[k]};
            const octav_layout lays[4] = {
                make_layout(2, dim, OCTAV_GRAN_TENSOR, 0, 0), make_layout(2, dim, OCTAV_GRAN_CHANNEL, 0, 0),
                make_layout(2, dim, OCTAV_GRAN_CHANNEL, 1, 0), make_layout(2, dim, OCTAV_GRAN_BLOCK, 0, 3)};
            for (int l = 0; l < 4; l++) {
                for (int j = 0; j < 42; j++) s[j] = (float)(0.5 + trng_unif(&r));
                if (lays[l].ngroups > 1) s[1] = 0.0f;
                fill_data(&r, x, n, 1.0f);
                check_int_roundtrip(g, &lays[l], x, s, 0);
                if (b <= 4) {
                    check_int_roundtrip(g, &lays[l], x, s, 1);
                    /* odd element count: the first 41 elements */
                    const int64_t odd = 41;
                    octav_layout lo = make_layout(1, &odd, OCTAV_GRAN_BLOCK, 0, 5);
                    check_int_roundtrip(g, &lo, x, s, 1);
                }
            }
        }
}

/* Hand-checkable bytes: d = 1 so the integers are the rounded values. */
static void test_int_hand_cases(void) {
    {   /* 4-bit full, s = 8: 1, -2 | 7, -8 | 3, 0 | 9->7, pad */
        const float x[7] = {1.0f, -2.0f, 7.0f, -8.0f, 2.5f, -0.5f, 9.0f}, s = 8.0f;
        const uint8_t want[4] = {0xE1, 0x87, 0x02, 0x07};
        const int64_t n = 7;
        octav_layout lay = make_layout(1, &n, OCTAV_GRAN_TENSOR, 0, 0);
        uint8_t q[5] = {0xFF, 0xFF, 0xFF, 0xFF, 0x5A};
        float y[7];
        CHECK(octav_quantize_int4((octav_grid){4, OCTAV_GRID_FULL}, &lay, x, &s, q) == OCTAV_OK);
        CHECK_MSG(memcmp(q, want, 4) == 0 && q[4] == 0x5A, "got %02x %02x %02x %02x %02x", q[0], q[1], q[2], q[3], q[4]);
        CHECK(octav_dequantize_int4((octav_grid){4, OCTAV_GRID_FULL}, &lay, q, &s, y) == OCTAV_OK);
        const float back[7] = {1, -2, 7, -8, 2, 0, 7};
        CHECK_ARRAYS(y, back, 7, 0, 0);
    }
    {   /* 4-bit unsigned, s = 16: 15, 0.5->0 | 2.5->2, 17->15 | -3->0, pad */
        const float x[5] = {15.0f, 0.5f, 2.5f, 17.0f, -3.0f}, s = 16.0f;
        const uint8_t want[3] = {0x0F, 0xF2, 0x00};
        const int64_t n = 5;
        octav_layout lay = make_layout(1, &n, OCTAV_GRAN_TENSOR, 0, 0);
        uint8_t q[3] = {0xFF, 0xFF, 0xFF};
        CHECK(octav_quantize_int4((octav_grid){4, OCTAV_GRID_UNSIGNED}, &lay, x, &s, q) == OCTAV_OK);
        CHECK_MSG(memcmp(q, want, 3) == 0, "got %02x %02x %02x", q[0], q[1], q[2]);
    }
    {   /* 3-bit narrow in 4-bit storage, s = 3: -3, 3 -> 0xD, 0x3 */
        const float x[2] = {-5.0f, 3.5f}, s = 3.0f;
        const int64_t n = 2;
        octav_layout lay = make_layout(1, &n, OCTAV_GRAN_TENSOR, 0, 0);
        uint8_t q[1] = {0};
        CHECK(octav_quantize_int4((octav_grid){3, OCTAV_GRID_NARROW}, &lay, x, &s, q) == OCTAV_OK);
        CHECK(q[0] == 0x3D);
    }
    {   /* 8-bit full, s = 128: -128, 127, 200->127, -1.5->-2, 2.5->2 */
        const float x[5] = {-128.0f, 127.0f, 200.0f, -1.5f, 2.5f}, s = 128.0f;
        const uint8_t want[5] = {0x80, 0x7F, 0x7F, 0xFE, 0x02};
        const int64_t n = 5;
        octav_layout lay = make_layout(1, &n, OCTAV_GRAN_TENSOR, 0, 0);
        uint8_t q[5];
        CHECK(octav_quantize_int8((octav_grid){8, OCTAV_GRID_FULL}, &lay, x, &s, q) == OCTAV_OK);
        CHECK(memcmp(q, want, 5) == 0);
        /* 8-bit unsigned, s = 256: 255 stays 0xFF, negatives 0 */
        const float xu[5] = {255.0f, 300.0f, -4.0f, 0.5f, 1.5f};
        const uint8_t wu[5] = {0xFF, 0xFF, 0x00, 0x00, 0x02};
        const float su = 256.0f;
        float y[5];
        CHECK(octav_quantize_int8((octav_grid){8, OCTAV_GRID_UNSIGNED}, &lay, xu, &su, q) == OCTAV_OK);
        CHECK(memcmp(q, wu, 5) == 0);
        CHECK(octav_dequantize_int8((octav_grid){8, OCTAV_GRID_UNSIGNED}, &lay, q, &su, y) == OCTAV_OK);
        CHECK(y[0] == 255.0f && y[1] == 255.0f && y[2] == 0.0f && y[4] == 2.0f);
    }
    {   /* bits too large for the storage */
        const int64_t n = 4;
        octav_layout lay = make_layout(1, &n, OCTAV_GRAN_TENSOR, 0, 0);
        float x[4] = {0}, s = 1.0f;
        uint8_t q[4];
        const octav_grid_kind kinds[3] = {OCTAV_GRID_FULL, OCTAV_GRID_NARROW, OCTAV_GRID_UNSIGNED};
        for (int k = 0; k < 3; k++) {
            octav_clear_error();
            CHECK(octav_quantize_int8((octav_grid){9, kinds[k]}, &lay, x, &s, q) == OCTAV_EINVAL);
            CHECK(octav_last_error()[0] != '\0');
            CHECK(octav_dequantize_int8((octav_grid){16, kinds[k]}, &lay, q, &s, x) == OCTAV_EINVAL);
            octav_clear_error();
            CHECK(octav_quantize_int4((octav_grid){5, kinds[k]}, &lay, x, &s, q) == OCTAV_EINVAL);
            CHECK(octav_last_error()[0] != '\0');
            CHECK(octav_dequantize_int4((octav_grid){8, kinds[k]}, &lay, q, &s, x) == OCTAV_EINVAL);
        }
    }
}

/* ---- error statistics --------------------------------------------------------- */
static void test_quant_error(void) {
    const int64_t dim[2] = {8, 250}, n = 2000;
    float *x = fbuf(n);
    trng r = {3, 0, 0};
    fill_data(&r, x, n, 1.0f);
    const octav_grid grids[3] = {{4, OCTAV_GRID_FULL}, {3, OCTAV_GRID_NARROW}, {6, OCTAV_GRID_UNSIGNED}};
    for (int t = 0; t < 3; t++) {
        octav_grid g = grids[t];
        octav_layout lay = make_layout(2, dim, OCTAV_GRAN_CHANNEL, 0, 0);
        float s[8];
        for (int c = 0; c < 8; c++) s[c] = (float)(0.4 + 2.0 * trng_unif(&r));
        s[3] = 0.0f;
        octav_quant_error e;
        CHECK(octav_quant_error_eval(g, &lay, x, s, &e) == OCTAV_OK);
        double se = 0, sx = 0;
        int64_t nclip = 0;
        for (int64_t i = 0; i < n; i++) {
            float sg = s[octav_layout_group_of(&lay, i)];
            float y = 0.0f;
            int clipped = x[i] != 0.0f;
            if (sg > 0.0f) {
                float d = step_of(g, sg);
                y = q_octav(x[i], d, g) * d;
                clipped = octav_clipped(x[i], d, g);
            }
            se += ((double)y - x[i]) * ((double)y - x[i]);
            sx += (double)x[i] * x[i];
            nclip += clipped;
        }
        CHECK_NEAR(e.mse, se / (double)n, 0, 1e-12);
        CHECK_NEAR(e.sqnr_db, 10.0 * log10(sx / se), 1e-9, 0);
        CHECK(e.clipped_fraction == (double)nclip / (double)n);
        CHECK(nclip > 0);
    }
    /* values on the grid: exact, sqnr +inf */
    const int64_t m = 5;
    const float xg[5] = {0.0f, 0.25f, -1.0f, 0.75f, -0.5f}, s1 = 1.0f;
    octav_layout l1 = make_layout(1, &m, OCTAV_GRAN_TENSOR, 0, 0);
    octav_quant_error e;
    CHECK(octav_quant_error_eval((octav_grid){3, OCTAV_GRID_FULL}, &l1, xg, &s1, &e) == OCTAV_OK);
    CHECK(e.mse == 0.0 && isinf(e.sqnr_db) && e.sqnr_db > 0 && e.clipped_fraction == 0.0);
    free(x);
}

/* ---- thread-count independence (tensors above one 65536-element piece) -------- */
typedef struct {
    float *y, *dx1, *dx2;
    double ds1[8], ds2[8];
    octav_quant_error e;
} thread_out;

static void run_all(octav_grid g, const octav_layout *lay, const float *x, const float *s, const float *dy,
                    thread_out *o) {
    CHECK(octav_fq_forward(g, lay, x, s, o->y) == OCTAV_OK);
    CHECK(octav_fq_backward(g, lay, x, s, dy, OCTAV_GRAD_MAD, OCTAV_SGRAD_LSQ, o->dx1, o->ds1) == OCTAV_OK);
    CHECK(octav_fq_backward(g, lay, x, s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_PACT, o->dx2, o->ds2) == OCTAV_OK);
    CHECK(octav_quant_error_eval(g, lay, x, s, &o->e) == OCTAV_OK);
}

static void test_thread_independence(void) {
    const int64_t dim[3] = {2, 3, 35001}, n = 210006;
    float *x = fbuf(n), *dy = fbuf(n);
    trng r = {123, 0, 0};
    fill_data(&r, x, n, 1.5f);
    for (int64_t i = 0; i < n; i++) dy[i] = (float)trng_gauss(&r);
    const octav_layout lays[3] = {make_layout(3, dim, OCTAV_GRAN_TENSOR, 0, 0),
                                  make_layout(3, dim, OCTAV_GRAN_CHANNEL, 1, 0),
                                  make_layout(1, &n, OCTAV_GRAN_BLOCK, 0, 70000)};
    const float s[4] = {1.5f, 1.1f, 2.0f, 0.9f};
    const octav_grid g = {4, OCTAV_GRID_FULL};
    const int threads[3] = {1, 2, 3};
    for (int l = 0; l < 3; l++) {
        thread_out o[3];
        for (int t = 0; t < 3; t++) {
            o[t].y = fbuf(n); o[t].dx1 = fbuf(n); o[t].dx2 = fbuf(n);
            octav_set_threads(threads[t]);
            run_all(g, &lays[l], x, s, dy, &o[t]);
        }
        const size_t ng = (size_t)lays[l].ngroups, fb = (size_t)n * sizeof(float);
        for (int t = 1; t < 3; t++) {
            CHECK_MSG(memcmp(o[0].y, o[t].y, fb) == 0, "layout %d: forward differs at %d threads", l, threads[t]);
            CHECK_MSG(memcmp(o[0].dx1, o[t].dx1, fb) == 0 && memcmp(o[0].dx2, o[t].dx2, fb) == 0,
                      "layout %d: dx differs at %d threads", l, threads[t]);
            CHECK_MSG(memcmp(o[0].ds1, o[t].ds1, ng * sizeof(double)) == 0 &&
                          memcmp(o[0].ds2, o[t].ds2, ng * sizeof(double)) == 0,
                      "layout %d: dscale differs at %d threads", l, threads[t]);
            CHECK(memcmp(&o[0].e, &o[t].e, sizeof o[0].e) == 0);
        }
        for (int t = 0; t < 3; t++) { free(o[t].y); free(o[t].dx1); free(o[t].dx2); }
    }
    octav_set_threads(0);
    free(x); free(dy);
}

/* ---- bad arguments ------------------------------------------------------------ */
#define EXPECT_EINVAL(call) do { octav_clear_error(); octav_status st_ = (call); \
    CHECK_MSG(st_ == OCTAV_EINVAL && octav_last_error()[0] != '\0', "%s -> %d '%s'", #call, (int)st_, \
              octav_last_error()); } while (0)

static void test_bad_arguments(void) {
    const int64_t n = 4;
    octav_layout lay = make_layout(1, &n, OCTAV_GRAN_TENSOR, 0, 0);
    float x[4] = {0.1f, -0.2f, 0.3f, 2.0f}, y[4], dy[4] = {1, 1, 1, 1}, dx[4], s = 1.0f;
    double ds[1];
    uint8_t q[4];
    octav_quant_error e;
    const octav_grid ok = {4, OCTAV_GRID_FULL};
    const int badbits[4] = {1, 17, 0, -3};
    for (int k = 0; k < 4; k++) {
        octav_grid g = {badbits[k], OCTAV_GRID_FULL};
        EXPECT_EINVAL(octav_fq_forward(g, &lay, x, &s, y));
        EXPECT_EINVAL(octav_fq_backward(g, &lay, x, &s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ, dx, ds));
        EXPECT_EINVAL(octav_quant_error_eval(g, &lay, x, &s, &e));
        EXPECT_EINVAL(octav_quantize_int8(g, &lay, x, &s, q));
        EXPECT_EINVAL(octav_dequantize_int4(g, &lay, q, &s, y));
    }
    EXPECT_EINVAL(octav_fq_forward((octav_grid){4, (octav_grid_kind)7}, &lay, x, &s, y));
    EXPECT_EINVAL(octav_fq_forward(ok, NULL, x, &s, y));
    EXPECT_EINVAL(octav_fq_forward(ok, &lay, NULL, &s, y));
    EXPECT_EINVAL(octav_fq_forward(ok, &lay, x, NULL, y));
    EXPECT_EINVAL(octav_fq_forward(ok, &lay, x, &s, NULL));
    EXPECT_EINVAL(octav_fq_backward(ok, &lay, NULL, &s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_NONE, dx, NULL));
    EXPECT_EINVAL(octav_fq_backward(ok, &lay, x, NULL, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_NONE, dx, NULL));
    EXPECT_EINVAL(octav_fq_backward(ok, &lay, x, &s, NULL, OCTAV_GRAD_PWL, OCTAV_SGRAD_NONE, dx, NULL));
    EXPECT_EINVAL(octav_fq_backward(ok, &lay, x, &s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_NONE, NULL, NULL));
    EXPECT_EINVAL(octav_fq_backward(ok, &lay, x, &s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ, dx, NULL));
    EXPECT_EINVAL(octav_fq_backward(ok, &lay, x, &s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_PACT, dx, NULL));
    EXPECT_EINVAL(octav_fq_backward(ok, &lay, x, &s, dy, (octav_grad_est)3, OCTAV_SGRAD_NONE, dx, NULL));
    EXPECT_EINVAL(octav_fq_backward(ok, &lay, x, &s, dy, OCTAV_GRAD_PWL, (octav_scale_grad)3, dx, ds));
    EXPECT_EINVAL(octav_quant_error_eval(ok, &lay, x, &s, NULL));
    EXPECT_EINVAL(octav_quant_error_eval(ok, &lay, NULL, &s, &e));
    EXPECT_EINVAL(octav_quantize_int8(ok, &lay, x, &s, NULL));
    EXPECT_EINVAL(octav_quantize_int4(ok, &lay, NULL, &s, q));
    EXPECT_EINVAL(octav_dequantize_int8(ok, &lay, q, NULL, y));
    EXPECT_EINVAL(octav_dequantize_int4(ok, &lay, NULL, &s, y));
    /* dscale may be NULL when no scale gradient is asked for */
    CHECK(octav_fq_backward(ok, &lay, x, &s, dy, OCTAV_GRAD_MAD, OCTAV_SGRAD_NONE, dx, NULL) == OCTAV_OK);
}

/* The backward pass of a few runs allocates nothing (training calls it every
 * step); with many runs its partial sums are allocated, and a failure there
 * is reported, not crashed on. */
static void *fail_alloc(size_t size, void *user) { (void)size; (void)user; return NULL; }
static void std_free(void *p, void *user) { (void)user; free(p); }

static void test_alloc_failure(void) {
    const int64_t n = 4;
    octav_layout lay = make_layout(1, &n, OCTAV_GRAN_TENSOR, 0, 0);
    float x[4] = {0.1f, -0.2f, 0.3f, 2.0f}, dy[4] = {1, 1, 1, 1}, dx[4], s = 1.0f;
    double ds[1], ds_ok[1];
    octav_quant_error e;
    const octav_grid g4 = {4, OCTAV_GRID_FULL};
    CHECK(octav_fq_backward(g4, &lay, x, &s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ, dx, ds_ok) == OCTAV_OK);
    octav_set_allocator(fail_alloc, std_free, NULL);
    CHECK(octav_fq_backward(g4, &lay, x, &s, dy, OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ, dx, ds) == OCTAV_OK);
    CHECK(ds[0] == ds_ok[0]);
    CHECK(octav_quant_error_eval(g4, &lay, x, &s, &e) == OCTAV_ENOMEM);
    /* 1000 channels of 2 on the last axis: 1000 runs, more than fit the stack */
    const int64_t dims[2] = {2, 1000};
    octav_layout big = make_layout(2, dims, OCTAV_GRAN_CHANNEL, 1, 0);
    float *bx = fbuf(2000), *bdy = fbuf(2000), *bdx = fbuf(2000), *bs = fbuf(1000);
    double *bds = calloc(1000, sizeof *bds);
    for (int i = 0; i < 2000; i++) { bx[i] = 0.001f * (float)(i - 1000); bdy[i] = 1.0f; }
    for (int i = 0; i < 1000; i++) bs[i] = 1.0f;
    CHECK(octav_fq_backward(g4, &big, bx, bs, bdy, OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ, bdx, bds) == OCTAV_ENOMEM);
    CHECK(octav_last_error()[0] != 0);
    octav_set_allocator(NULL, NULL, NULL);
    CHECK(octav_fq_backward(g4, &big, bx, bs, bdy, OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ, bdx, bds) == OCTAV_OK);
    free(bx); free(bdy); free(bdx); free(bs); free(bds);
}

int main(void) {
    RUN(test_forward_tensor_vs_torch);
    RUN(test_forward_channel_vs_torch);
    RUN(test_backward_tensor_vs_torch);
    RUN(test_backward_channel_vs_torch);
    RUN(test_estimator_masks);
    RUN(test_channel_axes);
    RUN(test_blocks);
    RUN(test_int_export);
    RUN(test_int_hand_cases);
    RUN(test_quant_error);
    RUN(test_thread_independence);
    RUN(test_bad_arguments);
    RUN(test_alloc_failure);
    return TEST_SUMMARY();
}
