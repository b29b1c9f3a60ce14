/* test_nn_loss.c -- softmax cross-entropy (label smoothing 0 and 0.1), row
 * softmax and the embedding lookup.
 *
 * References: PyTorch fixtures (F.cross_entropy with label_smoothing, mean
 * reduction, and its autograd dlogits; F.softmax; F.embedding with
 * repeated ids), made by tests/fixtures/gen_nn_ops.py; the loss recomputed
 * here in double from nn.h's formula on a large batch; finite-difference
 * gradient checks; bitwise equality of runs with 1 and 2 threads; the
 * branch-free exp of src/nn/vexp.h against libm's double exp. */
#include "test_nn_ops.h"
#include "nn/vexp.h"

#define LOSS_ATOL 1e-6    /* mean loss vs PyTorch (float log-softmax there)  */
#define LOSS_RTOL 1e-6
#define PROB_ATOL 1e-7    /* probabilities, dlogits (values <= 1)            */
#define PROB_RTOL 1e-6
#define REF_LOSS_RTOL 1e-7 /* vs the double recomputation: exp(x - max) is rounded to float */
#define GC_H 1e-2

static void xent_fixture(const char *pre, float smoothing) {
    const int64_t n = 16, k = 10;
    char nm[64];
#define L(name, cnt) (snprintf(nm, sizeof nm, "%s%s", pre, name), FIX(nm, cnt))
    float *logits = L("logits", n * k), *loss_ref = L("loss", 1), *probs_ref = L("probs", n * k),
          *dl_ref = L("dlogits", n * k), *correct_ref = L("correct", 1);
    snprintf(nm, sizeof nm, "%slabels", pre);
    int32_t *labels = FIX_INTS(nm, n);
#undef L
    float *probs = fbuf(n * k), *dl = fbuf(n * k);
    if (logits && loss_ref && probs_ref && dl_ref && correct_ref && labels) {
        int64_t correct = -1;
        double loss = octav_xent_forward(logits, labels, probs, n, k, smoothing, &correct);
        CHECK_NEAR(loss, loss_ref[0], LOSS_ATOL, LOSS_RTOL);
        CHECK_EQ_INT(correct, (int64_t)correct_ref[0]);
        CHECK_ARRAYS(probs, probs_ref, n * k, PROB_ATOL, PROB_RTOL);
        octav_xent_backward(probs, labels, dl, n, k, smoothing, 1.0f / (float)n);
        CHECK_ARRAYS(dl, dl_ref, n * k, PROB_ATOL, PROB_RTOL);
        /* correct may be NULL */
        double loss2 = octav_xent_forward(logits, labels, probs, n, k, smoothing, NULL);
        CHECK(loss2 == loss);
    }
    free(logits); free(loss_ref); free(probs_ref); free(dl_ref); free(correct_ref); free(labels);
    free(probs); free(dl);
}

static void test_xent_fixture(void) {
    xent_fixture("xent0_", 0.0f);
    xent_fixture("xent1_", 0.1f);
}

static void test_softmax_fixture(void) {
    const int64_t rows = 5, d = 12, n = rows * d;
    float *x = FIX("sm_x", n), *y_ref = FIX("sm_y", n), *dy = FIX("sm_dy", n), *dx_ref = FIX("sm_dx", n);
    float *y = fbuf(n), *dx = fbuf(n);
    if (x && y_ref && dy && dx_ref) {
        octav_softmax_forward(x, y, rows, d);
        CHECK_ARRAYS(y, y_ref, n, PROB_ATOL, PROB_RTOL);
        octav_softmax_backward(y_ref, dy, dx, rows, d);
        CHECK_ARRAYS(dx, dx_ref, n, PROB_ATOL, PROB_RTOL);
    }
    free(x); free(y_ref); free(dy); free(dx_ref); free(y); free(dx);
}

static void test_embedding_fixture(void) {
    const int64_t vocab = 10, d = 4, n = 15;
    float *table = FIX("emb_table", vocab * d), *y_ref = FIX("emb_y", n * d), *dy = FIX("emb_dy", n * d),
          *dt_ref = FIX("emb_dtable", vocab * d);
    int32_t *ids = FIX_INTS("emb_ids", n);
    float *y = fbuf(n * d), *dt = fbuf(vocab * d);
    if (table && y_ref && dy && dt_ref && ids) {
        octav_embedding_forward(ids, table, y, n, d);
        CHECK_SAME_BITS(y, y_ref, n * d * 4);
        for (int64_t i = 0; i < vocab * d; i++) dt[i] = 123.0f; /* overwritten, not accumulated */
        octav_embedding_backward(ids, dy, dt, n, vocab, d);
        /* row sums in row order, as PyTorch: identical */
        CHECK_SAME_BITS(dt, dt_ref, vocab * d * 4);
    }
    free(table); free(y_ref); free(dy); free(dt_ref); free(ids); free(y); free(dt);
}

/* ---- vexp.h ----------------------------------------------------------------------------- */

static double ulp_of(float v) {
    float a = fabsf(v);
    return (double)nextafterf(a, INFINITY) - (double)a;
}

static void test_vexp(void) {
    /* within one ulp of the correctly rounded exp over the whole range,
     * including the denormal results below -87.3 */
    long long bad = 0, first = -1, n = 0, exact = 0;
    for (double v = -106.0; v <= 90.0; v += 0.00137, n++) {
        float x = (float)v, got = octav_vexpf(x), ref = (float)exp((double)x);
        if (got == ref) exact++;
        else if (!(fabs((double)got - (double)ref) <= ulp_of(ref))) {
            if (first < 0) first = n;
            bad++;
        }
    }
    CHECK_MSG(bad == 0, "%lld of %lld exp values off by more than 1 ulp (first at step %lld)", bad, n, first);
    CHECK_MSG((double)exact >= 0.999 * (double)n, "only %lld of %lld correctly rounded", exact, n);
    CHECK(octav_vexpf(0.0f) == 1.0f && octav_vexpf(-0.0f) == 1.0f);
    CHECK(octav_vexpf(-INFINITY) == 0.0f && octav_vexpf(-1000.0f) == 0.0f);
    CHECK(isinf(octav_vexpf(INFINITY)) && isinf(octav_vexpf(89.0f)) && octav_vexpf(88.7f) < INFINITY);
    CHECK(isnan(octav_vexpf(NAN)));
    CHECK(octav_vexpf(-103.0f) > 0.0f); /* a denormal */
}

/* ---- the loss on a large batch vs a double recomputation ----------------------------- */

static void test_xent_reference(void) {
    const int64_t n = 3000, k = 37;
    trng r = {31, 0, 0};
    float *logits = fbuf(n * k), *probs = fbuf(n * k);
    int32_t *labels = ibuf(n);
    fill_gauss(&r, logits, n * k, 4.0, 1.0);
    for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)(trng_u64(&r) % (uint64_t)k);
    for (int64_t i = 0; i < 50; i++) logits[i * k + labels[i]] += 20.0f; /* some confident rows */
    static const float eps_list[2] = {0.0f, 0.1f};
    for (int e = 0; e < 2; e++) {
        const double eps = eps_list[e];
        double sum = 0;
        int64_t correct_ref = 0;
        for (int64_t i = 0; i < n; i++) {
            const float *x = logits + i * k;
            double m = x[0], s = 0;
            int64_t am = 0;
            for (int64_t j = 1; j < k; j++)
                if (x[j] > x[am]) am = j;
            m = x[am];
            for (int64_t j = 0; j < k; j++) s += exp((double)x[j] - m);
            double lse = m + log(s), row = 0;
            for (int64_t j = 0; j < k; j++) {
                double q = eps / (double)k + (j == labels[i] ? 1.0 - eps : 0.0);
                row -= q * ((double)x[j] - lse);
            }
            sum += row;
            correct_ref += am == labels[i];
        }
        int64_t correct = -1;
        double loss = octav_xent_forward(logits, labels, probs, n, k, (float)eps, &correct);
        CHECK_NEAR(loss, sum / (double)n, 0, REF_LOSS_RTOL);
        CHECK_EQ_INT(correct, correct_ref);
        double rowsum_err = 0;
        for (int64_t i = 0; i < n; i++) {
            double t = 0;
            for (int64_t j = 0; j < k; j++) t += probs[i * k + j];
            if (fabs(t - 1.0) > rowsum_err) rowsum_err = fabs(t - 1.0);
        }
        CHECK_MSG(rowsum_err < 1e-5, "probability rows sum to 1 +- %.3g", rowsum_err);
    }
    free(logits); free(probs); free(labels);
}

/* ---- gradient checks --------------------------------------------------------------------- */

typedef struct {
    const int32_t *labels;
    float *probs;
    int64_t n, k;
    float smoothing;
} xent_ctx;

static double xent_loss(const float *x, void *p) {
    xent_ctx *c = p;
    return octav_xent_forward(x, c->labels, c->probs, c->n, c->k, c->smoothing, NULL);
}

static void xent_gradcheck(float smoothing) {
    const int64_t n = 12, k = 7;
    trng r = {(uint64_t)(41 + smoothing * 100), 0, 0};
    float *x = fbuf(n * k), *probs = fbuf(n * k), *dl = fbuf(n * k);
    int32_t *labels = ibuf(n);
    fill_gauss(&r, x, n * k, 2.0, 0.0);
    for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)(trng_u64(&r) % (uint64_t)k);
    octav_xent_forward(x, labels, probs, n, k, smoothing, NULL);
    octav_xent_backward(probs, labels, dl, n, k, smoothing, 1.0f / (float)n);
    xent_ctx c = {labels, probs, n, k, smoothing};
    GC_CHECK(smoothing == 0 ? "xent" : "xent smoothing", xent_loss, &c, x, dl, n * k, GC_H, &r);
    free(x); free(probs); free(dl); free(labels);
}

typedef struct {
    const float *r;
    float *y;
    int64_t rows, d;
    const int32_t *ids;
} row_ctx;

static double softmax_loss(const float *x, void *p) {
    row_ctx *c = p;
    octav_softmax_forward(x, c->y, c->rows, c->d);
    return gc_dot(c->r, c->y, c->rows * c->d);
}

static double emb_loss(const float *table, void *p) {
    row_ctx *c = p;
    octav_embedding_forward(c->ids, table, c->y, c->rows, c->d);
    return gc_dot(c->r, c->y, c->rows * c->d);
}

static void test_gradcheck(void) {
    xent_gradcheck(0.0f);
    xent_gradcheck(0.1f);
    trng r = {51, 0, 0};
    const int64_t rows = 6, d = 9, n = rows * d;
    float *x = fbuf(n), *y = fbuf(n), *dy = fbuf(n), *dx = fbuf(n);
    fill_gauss(&r, x, n, 1.5, 0.0);
    fill_gauss(&r, dy, n, 1.0, 0.0);
    octav_softmax_forward(x, y, rows, d);
    octav_softmax_backward(y, dy, dx, rows, d);
    row_ctx c = {dy, y, rows, d, NULL};
    GC_CHECK("softmax", softmax_loss, &c, x, dx, n, GC_H, &r);
    free(x); free(y); free(dy); free(dx);
    /* embedding: the gradient with respect to the table */
    const int64_t vocab = 8, de = 5, ni = 20;
    int32_t *ids = ibuf(ni);
    float *table = fbuf(vocab * de), *ye = fbuf(ni * de), *dye = fbuf(ni * de), *dt = fbuf(vocab * de);
    for (int64_t i = 0; i < ni; i++) ids[i] = (int32_t)(trng_u64(&r) % (uint64_t)(vocab - 1)); /* last row unused */
    fill_gauss(&r, table, vocab * de, 1.0, 0.0);
    fill_gauss(&r, dye, ni * de, 1.0, 0.0);
    octav_embedding_backward(ids, dye, dt, ni, vocab, de);
    row_ctx ce = {dye, ye, ni, de, ids};
    GC_CHECK("embedding dtable", emb_loss, &ce, table, dt, vocab * de, GC_H, &r);
    for (int64_t j = 0; j < de; j++) CHECK(dt[(vocab - 1) * de + j] == 0.0f);
    free(ids); free(table); free(ye); free(dye); free(dt);
}

/* ---- thread-count independence ------------------------------------------------------------ */

static void test_threads(void) {
    const int64_t n = 4096, k = 100;
    trng r = {61, 0, 0};
    float *x = fbuf(n * k), *p[2], *dl[2], *sy[2], *sdx[2];
    int32_t *labels = ibuf(n);
    fill_gauss(&r, x, n * k, 3.0, 0.0);
    for (int64_t i = 0; i < n; i++) labels[i] = (int32_t)(trng_u64(&r) % (uint64_t)k);
    double loss[2];
    int64_t correct[2];
    for (int t = 0; t < 2; t++) {
        p[t] = fbuf(n * k); dl[t] = fbuf(n * k); sy[t] = fbuf(n * k); sdx[t] = fbuf(n * k);
        octav_set_threads(t + 1);
        loss[t] = octav_xent_forward(x, labels, p[t], n, k, 0.1f, &correct[t]);
        octav_xent_backward(p[t], labels, dl[t], n, k, 0.1f, 1.0f / (float)n);
        octav_softmax_forward(x, sy[t], n, k);
        octav_softmax_backward(sy[t], x, sdx[t], n, k);
    }
    CHECK_SAME_BITS(&loss[0], &loss[1], sizeof loss[0]);
    CHECK_EQ_INT(correct[0], correct[1]);
    CHECK_SAME_BITS(p[0], p[1], n * k * 4);
    CHECK_SAME_BITS(dl[0], dl[1], n * k * 4);
    CHECK_SAME_BITS(sy[0], sy[1], n * k * 4);
    CHECK_SAME_BITS(sdx[0], sdx[1], n * k * 4);
    /* embedding backward with repeated ids, columns split across threads */
    const int64_t vocab = 50, d = 256, ni = 2000;
    int32_t *ids = ibuf(ni);
    for (int64_t i = 0; i < ni; i++) ids[i] = (int32_t)(trng_u64(&r) % (uint64_t)vocab);
    float *dy = fbuf(ni * d), *dt[2];
    fill_gauss(&r, dy, ni * d, 1.0, 0.0);
    for (int t = 0; t < 2; t++) {
        dt[t] = fbuf(vocab * d);
        octav_set_threads(t + 1);
        octav_embedding_backward(ids, dy, dt[t], ni, vocab, d);
    }
    octav_set_threads(0);
    CHECK_SAME_BITS(dt[0], dt[1], vocab * d * 4);
    for (int t = 0; t < 2; t++) { free(p[t]); free(dl[t]); free(sy[t]); free(sdx[t]); free(dt[t]); }
    free(x); free(labels); free(ids); free(dy);
}

int main(void) {
    RUN(test_xent_fixture);
    RUN(test_softmax_fixture);
    RUN(test_embedding_fixture);
    RUN(test_vexp);
    RUN(test_xent_reference);
    RUN(test_gradcheck);
    RUN(test_threads);
    return TEST_SUMMARY();
}
