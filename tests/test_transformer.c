/* test_transformer.c -- the sequence nodes and the built-in transformers:
 * whole-model finite-difference gradient checks (classifier and masked-
 * token model), 8-bit QAT close to float,
 * padding invisibility, the attention quantizers and OCTAV's scales, per-position labels with ignored positions, token-id
 * validation, builder errors, and that a tiny transformer learns a toy
 * sequence task; and the PyTorch reference (tests/fixtures/nn_transformer,
 * gen_nn_transformer.py): logits, loss and every parameter's gradient of
 * both models on the same weights and padded batch. */
#define _POSIX_C_SOURCE 200809L
#define NN_FIX_DIR OCTAV_FIXTURES "/nn_transformer/"
#include "model_gradcheck.h"
#include "test_io.h"
#include "test_nn_ops.h"

#define V 11
#define L 7

static octav_model_options tiny(void) {
    octav_model_options o = octav_model_options_default();
    o.vocab = V;
    o.dim = 8;
    o.heads = 2;
    o.layers = 2;
    o.mlp = 12;
    o.tf_dropout = 0;
    return o;
}

/* n sequences: [CLS]=1, 1..L-1 random ids in [4, V), then padding 0 */
static void fill_tokens(trng *r, float *x, int32_t *len, int64_t n) {
    for (int64_t s = 0; s < n; s++) {
        int l = 1 + (int)(trng_u64(r) % (L - 1));
        if (s == 0) l = L - 1;   /* one full sequence */
        if (s == 1) l = 1;       /* one of a single token */
        x[s * L] = 1.0f;
        for (int t = 1; t < L; t++) x[s * L + t] = t <= l ? (float)(4 + trng_u64(r) % (V - 4)) : 0.0f;
        if (len) len[s] = l + 1;
    }
}

static octav_model *build(const char *name, int classes) {
    octav_model_options o = tiny();
    octav_model *m = NULL;
    CHECK_EQ_INT(octav_model_zoo(name, 1, 1, L, classes, &o, &m), OCTAV_OK);
    return m;
}

static void test_gradcheck_classifier(void) {
    octav_model *m = build("transformer", 5);
    if (!m) return;
    float x[6 * L];
    int32_t y[6];
    trng r = {.s = 5};
    fill_tokens(&r, x, NULL, 6);
    for (int i = 0; i < 6; i++) y[i] = (int32_t)(trng_u64(&r) % 5);
    model_gradcheck_batch("transformer", m, x, y, 6);
    octav_model_destroy(m);
}

static void test_gradcheck_mlm(void) {
    octav_model *m = build("transformer-mlm", 0);
    if (!m) return;
    CHECK_EQ_INT(octav_model_label_positions(m), L);
    CHECK_EQ_INT(octav_model_num_classes(m), V);
    float x[4 * L];
    int32_t y[4 * L], len[4];
    trng r = {.s = 6};
    fill_tokens(&r, x, len, 4);
    for (int s = 0; s < 4; s++)
        for (int t = 0; t < L; t++)   /* some positions labelled, the rest ignored */
            y[s * L + t] = t > 0 && t < len[s] && trng_u64(&r) % 2 ? (int32_t)(4 + trng_u64(&r) % (V - 4)) : -1;
    y[1] = 5;   /* at least one label */
    model_gradcheck_batch("transformer-mlm", m, x, y, 4);
    octav_model_destroy(m);
}

/* Fake quantization is piecewise constant, so a quantized model has no
 * finite-difference check; instead: with every operand at 8 bits (16 for
 * the first and last layers) the loss and gradient are close to float's. */
static void test_qat16_matches_float(void) {
    octav_model *a = build("transformer", 5), *b = build("transformer", 5);
    if (!a || !b) { octav_model_destroy(a); octav_model_destroy(b); return; }
    octav_model_init(a, 9);
    octav_model_init(b, 9);
    octav_qat_config q = octav_qat_default();
    q.bits = 8;   /* set_qat caps bits at 8; first/last at 16 */
    q.first_last_bits = 16;
    CHECK_EQ_INT(octav_model_set_qat(b, &q), OCTAV_OK);
    /* 2 per dense/linear (2 blocks x 4 + head = 9) and 4 per attention */
    CHECK_EQ_INT(octav_model_num_quantizers(b), 9 * 2 + 2 * 4);
    float x[6 * L];
    int32_t y[6];
    trng r = {.s = 7};
    fill_tokens(&r, x, NULL, 6);
    for (int i = 0; i < 6; i++) y[i] = i % 5;
    octav_train_config tc = zero_lr();
    octav_step_result ra, rb;
    CHECK_EQ_INT(octav_model_train_step(a, &tc, 0, x, y, 6, &ra), OCTAV_OK);
    CHECK_EQ_INT(octav_model_train_step(b, &tc, 0, x, y, 6, &rb), OCTAV_OK);
    CHECK_NEAR(ra.loss, rb.loss, 0, 0.02);
    CHECK(fabs(ra.grad_norm - rb.grad_norm) <= 0.1 * ra.grad_norm);
    /* every attention operand has a quantizer with a positive scale */
    int seen[4] = {0};
    for (int i = 0; i < octav_model_num_quantizers(b); i++) {
        octav_quant_report rep;
        CHECK_EQ_INT(octav_model_quantizer(b, i, 1, &rep), OCTAV_OK);
        CHECK_MSG(rep.scale > 0, "%s %s scale %g", rep.node, rep.operand, rep.scale);
        const char *ops[4] = {"q", "k", "probs", "v"};
        for (int k = 0; k < 4; k++)
            if (strcmp(rep.operand, ops[k]) == 0) {
                seen[k]++;
                CHECK_EQ_INT(rep.grid, k == 2 ? OCTAV_GRID_UNSIGNED : OCTAV_GRID_FULL);
                CHECK(rep.sqnr_db > 20);
            }
    }
    for (int k = 0; k < 4; k++) CHECK_EQ_INT(seen[k], 2);
    octav_model_destroy(a);
    octav_model_destroy(b);
}

/* The id-0 embedding row never reaches the [CLS] output: padded keys are
 * masked and padded queries feed only their own position. */
static void test_padding_is_invisible(void) {
    octav_model *m = build("transformer", 5);
    if (!m) return;
    octav_model_init(m, 4);
    float x[6 * L];
    trng r = {.s = 8};
    fill_tokens(&r, x, NULL, 6);
    const float *lg;
    float before[6 * 5];
    CHECK_EQ_INT(octav_model_forward(m, x, 6, &lg), OCTAV_OK);
    memcpy(before, lg, sizeof before);
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        if (strcmp(t.name, "embed.token") == 0)
            for (int e = 0; e < 8; e++) t.data[e] += 3.0f;   /* row of id 0 */
    }
    CHECK_EQ_INT(octav_model_forward(m, x, 6, &lg), OCTAV_OK);
    for (int i = 0; i < 6 * 5; i++) CHECK_NEAR(lg[i], before[i], 1e-5, 0);
    octav_model_destroy(m);
}

/* Dynamic OCTAV with per-output-feature weight scales (the paper's BERT
 * recipe): every dense weight's scales are the solver's fixed points on the
 * current weights, and every activation quantizer (inputs and the four
 * attention operands) ran the Newton recursion and clips a small fraction. */
static void test_octav_scales(void) {
    octav_model *m = build("transformer", 5);
    if (!m) return;
    octav_model_init(m, 2);
    octav_qat_config q = octav_qat_default();
    q.bits = 4;
    q.first_last_bits = 4;
    q.linear_weight_gran = OCTAV_GRAN_CHANNEL;
    CHECK_EQ_INT(octav_model_set_qat(m, &q), OCTAV_OK);
    float x[6 * L];
    int32_t y[6] = {0, 1, 2, 3, 4, 0};
    trng r = {.s = 9};
    fill_tokens(&r, x, NULL, 6);
    octav_train_config tc = octav_train_default();
    tc.optim = OCTAV_OPTIM_ADAMW;
    tc.lr = 1e-3;
    octav_step_result res;
    for (int s = 0; s < 3; s++) CHECK_EQ_INT(octav_model_train_step(m, &tc, s, x, y, 6, &res), OCTAV_OK);
    CHECK_EQ_INT(octav_model_forward(m, x, 6, NULL), OCTAV_OK);
    octav_solver *sv;
    CHECK_EQ_INT(octav_solver_create(&sv), OCTAV_OK);
    int weights = 0;
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        const char *suf = strstr(t.name, ".weight_scale");
        if (!suf) continue;
        char wname[128];
        snprintf(wname, sizeof wname, "%.*s.weight", (int)(suf - t.name), t.name);
        for (int j = 0; j < octav_model_num_tensors(m); j++) {
            octav_tensor_ref u = octav_model_tensor(m, j);
            if (strcmp(u.name, wname) != 0) continue;
            octav_group_spec spec = {.kind = OCTAV_GRAN_CHANNEL, .axis = 0};
            octav_layout lay;
            CHECK_EQ_INT(octav_layout_make(&u.shape, spec, &lay), OCTAV_OK);
            float ref[64];
            CHECK(lay.ngroups <= 64 && lay.ngroups == t.shape.dim[0]);
            octav_clip_config cc = octav_clip_default(OCTAV_CLIP_OCTAV);
            octav_grid g = {.bits = 4, .kind = OCTAV_GRID_FULL};
            CHECK_EQ_INT(octav_clip(sv, &cc, g, &lay, u.data, ref, NULL), OCTAV_OK);
            CHECK_ARRAYS(t.data, ref, lay.ngroups, 0, 0);
            weights++;
        }
    }
    CHECK_EQ_INT(weights, 9);
    octav_solver_destroy(sv);
    int acts = 0;
    for (int i = 0; i < octav_model_num_quantizers(m); i++) {
        octav_quant_report rep;
        CHECK_EQ_INT(octav_model_quantizer(m, i, 1, &rep), OCTAV_OK);
        if (rep.is_weight) continue;
        CHECK(rep.mean_iterations >= 1);
        CHECK_MSG(rep.clipped_fraction >= 0 && rep.clipped_fraction < 0.5, "%s %s clipped %g", rep.node, rep.operand, rep.clipped_fraction);
        CHECK(rep.sqnr_db > 5);
        acts++;
    }
    CHECK_EQ_INT(acts, 9 + 2 * 4);
    octav_model_destroy(m);
}

/* Every clipping mode and gradient estimator trains the transformer
 * (attention operands included): finite losses, scales set, learned
 * scales moving. */
static void test_all_modes(void) {
    const char *clips[] = {"octav", "static-octav", "max", "percentile", "mse-sweep", "pact", "lsq"};
    const char *grads[] = {"mad-pwl", "ste", "pwl", "mad"};
    float x[6 * L];
    int32_t y[6] = {0, 1, 2, 3, 4, 0};
    trng r = {.s = 12};
    fill_tokens(&r, x, NULL, 6);
    for (size_t c = 0; c < sizeof clips / sizeof *clips; c++) {
        octav_model *m = build("transformer", 5);
        if (!m) return;
        octav_model_init(m, 3);
        octav_qat_config q = octav_qat_default();
        q.bits = 4;
        CHECK_EQ_INT(octav_qat_parse_clip(clips[c], &q), OCTAV_OK);
        CHECK_EQ_INT(octav_qat_parse_grad(grads[c % 4], &q), OCTAV_OK);
        q.calib_batches = 2;
        CHECK_EQ_INT(octav_model_set_qat(m, &q), OCTAV_OK);
        for (int b = 0; b < 2; b++) CHECK_EQ_INT(octav_model_calibrate(m, x, 6), OCTAV_OK);
        CHECK(octav_model_calibrated(m));
        octav_train_config tc = octav_train_default();
        tc.optim = OCTAV_OPTIM_ADAMW;
        tc.lr = 1e-3;
        octav_step_result res;
        for (int s = 0; s < 3; s++) {
            CHECK_EQ_INT(octav_model_train_step(m, &tc, s, x, y, 6, &res), OCTAV_OK);
            CHECK_MSG(isfinite(res.loss) && isfinite(res.grad_norm), "%s: loss %g", clips[c], res.loss);
        }
        for (int i = 0; i < octav_model_num_quantizers(m); i++) {
            octav_quant_report rep;
            CHECK_EQ_INT(octav_model_quantizer(m, i, 0, &rep), OCTAV_OK);
            CHECK_MSG(rep.scale > 0, "%s: %s %s scale %g", clips[c], rep.node, rep.operand, rep.scale);
        }
        double acc;
        CHECK_EQ_INT(octav_model_evaluate(m, x, y, 6, 6, &acc, NULL), OCTAV_OK);
        octav_model_destroy(m);
    }
}

static void test_bad_tokens_and_labels(void) {
    octav_model *m = build("transformer", 5), *mm = build("transformer-mlm", 0);
    if (!m || !mm) { octav_model_destroy(m); octav_model_destroy(mm); return; }
    float x[2 * L] = {1, 4, 5, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0, 0};
    int32_t y[2] = {0, 1};
    octav_train_config tc = zero_lr();
    octav_step_result res;
    x[2] = 4.5f;
    CHECK_EQ_INT(octav_model_train_step(m, &tc, 0, x, y, 2, &res), OCTAV_EINVAL);
    CHECK(strstr(octav_last_error(), "position 2") != NULL);
    x[2] = (float)V;
    CHECK_EQ_INT(octav_model_train_step(m, &tc, 0, x, y, 2, &res), OCTAV_EINVAL);
    x[2] = NAN;
    CHECK_EQ_INT(octav_model_train_step(m, &tc, 0, x, y, 2, &res), OCTAV_EINVAL);
    x[2] = 5;
    y[1] = -1;   /* classifiers take no ignored labels */
    CHECK_EQ_INT(octav_model_train_step(m, &tc, 0, x, y, 2, &res), OCTAV_EINVAL);
    int32_t ym[2 * L];
    for (int i = 0; i < 2 * L; i++) ym[i] = -1;
    ym[3] = V;   /* out of range */
    CHECK_EQ_INT(octav_model_train_step(mm, &tc, 0, x, ym, 2, &res), OCTAV_EINVAL);
    CHECK(strstr(octav_last_error(), "position 3") != NULL);
    ym[3] = 6;
    CHECK_EQ_INT(octav_model_train_step(mm, &tc, 0, x, ym, 2, &res), OCTAV_OK);
    CHECK_EQ_INT(res.labelled, 1);
    double acc = -1, loss = -1;
    CHECK_EQ_INT(octav_model_evaluate(mm, x, ym, 2, 2, &acc, &loss), OCTAV_OK);
    CHECK_NEAR(loss, res.loss, 1e-6, 0);
    octav_model_destroy(m);
    octav_model_destroy(mm);
}

static void test_builder_errors(void) {
    octav_model_options o = tiny();
    octav_model *m = NULL;
    o.heads = 3;   /* does not divide 8 */
    CHECK_EQ_INT(octav_model_zoo("transformer", 1, 1, L, 5, &o, &m), OCTAV_EINVAL);
    o = tiny();
    CHECK_EQ_INT(octav_model_zoo("transformer", 1, 4, L, 5, &o, &m), OCTAV_EINVAL);   /* not a token input */
    o.vocab = 0;
    CHECK_EQ_INT(octav_model_zoo("transformer", 1, 1, L, 5, &o, &m), OCTAV_EINVAL);
    CHECK(m == NULL);
    /* graph-level: attention over a non-(1, L, 3d) input, embedding not on the input */
    CHECK_EQ_INT(octav_model_create(1, 1, L, &m), OCTAV_OK);
    int e = octav_add_embedding(m, "e", 0, V, 6);
    CHECK(e > 0);
    CHECK(octav_add_attention(m, "a", e, 0, 4) < 0);   /* d = 2 not divisible by 4 heads */
    CHECK_EQ_INT(octav_model_finalize(m), OCTAV_EINVAL);
    octav_model_destroy(m);
    CHECK_EQ_INT(octav_model_create(1, 1, L, &m), OCTAV_OK);
    e = octav_add_embedding(m, "e", 0, V, 6);
    CHECK(octav_add_embedding(m, "e2", e, V, 6) < 0);
    octav_model_destroy(m);
}

/* Learns "is token 5 anywhere in the sequence": needs attention (the
 * answer is at a random position, read from [CLS]). */
static void test_learns_attention_task(void) {
    octav_model_options o = tiny();
    o.dim = 16;
    o.mlp = 32;
    octav_model *m;
    CHECK_EQ_INT(octav_model_zoo("transformer", 1, 1, L, 2, &o, &m), OCTAV_OK);
    if (!m) return;
    octav_model_init(m, 1);
    enum { N = 64 };
    float x[N * L];
    int32_t y[N];
    trng r = {.s = 21};
    octav_train_config tc = octav_train_default();
    tc.optim = OCTAV_OPTIM_ADAMW;
    tc.lr = 3e-3;
    tc.weight_decay = 0;
    octav_step_result res;
    double first = 0, last = 0;
    for (int step = 0; step < 300; step++) {
        fill_tokens(&r, x, NULL, N);
        for (int s = 0; s < N; s++) {
            y[s] = 0;
            for (int t = 1; t < L; t++) y[s] |= x[s * L + t] == 5.0f;
        }
        CHECK_EQ_INT(octav_model_train_step(m, &tc, step, x, y, N, &res), OCTAV_OK);
        if (step < 10) first += res.loss / 10;
        if (step >= 290) last += res.loss / 10;
    }
    double acc;
    fill_tokens(&r, x, NULL, N);
    for (int s = 0; s < N; s++) {
        y[s] = 0;
        for (int t = 1; t < L; t++) y[s] |= x[s * L + t] == 5.0f;
    }
    CHECK_EQ_INT(octav_model_evaluate(m, x, y, N, N, &acc, NULL), OCTAV_OK);
    CHECK_MSG(last < 0.5 * first && acc >= 0.9, "loss %.3f -> %.3f, accuracy %.3f", first, last, acc);
    octav_model_destroy(m);
}

/* The same weights and batch as PyTorch: logits, loss, every gradient. */
static void torch_case(const char *prefix, int mlm) {
    enum { FV = 13, FL = 7 };
    const int batch = mlm ? 4 : 6, classes = 5;
    octav_model_options o = octav_model_options_default();
    o.vocab = FV; o.dim = 16; o.heads = 4; o.layers = 2; o.mlp = 32; o.tf_dropout = 0;
    octav_model *m;
    CHECK_EQ_INT(octav_model_zoo(mlm ? "transformer-mlm" : "transformer", 1, 1, FL, classes, &o, &m), OCTAV_OK);
    if (!m) return;
    char name[160];
    int nparams = 0;
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        if (!t.trainable) continue;
        snprintf(name, sizeof name, "%s_param_%s", prefix, t.name);
        long long k = (long long)octav_shape_numel(&t.shape);
        float *p = FIX(name, k);
        if (p) memcpy(t.data, p, (size_t)k * sizeof(float));
        free(p);
        nparams++;
    }
    CHECK_EQ_INT(nparams, 30);
    snprintf(name, sizeof name, "%s_tokens", prefix);
    float *x = FIX(name, batch * FL);
    snprintf(name, sizeof name, "%s_labels", prefix);
    int32_t *y = FIX_INTS(name, mlm ? batch * FL : batch);
    const long long nlog = mlm ? (long long)batch * FL * FV : batch * classes;
    snprintf(name, sizeof name, "%s_logits", prefix);
    float *ref = FIX(name, nlog);
    snprintf(name, sizeof name, "%s_loss", prefix);
    float *loss = FIX(name, 1);
    if (!x || !y || !ref || !loss) goto out;
    const float *lg;
    CHECK_EQ_INT(octav_model_forward(m, x, batch, &lg), OCTAV_OK);
    CHECK_ARRAYS(lg, ref, nlog, 2e-5, 2e-4);
    octav_train_config tc = zero_lr();
    octav_step_result res;
    CHECK_EQ_INT(octav_model_train_step(m, &tc, 0, x, y, batch, &res), OCTAV_OK);
    CHECK_NEAR(res.loss, loss[0], 1e-5, 1e-5);
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        if (!t.trainable) continue;
        snprintf(name, sizeof name, "%s_grad_%s", prefix, t.name);
        long long k = (long long)octav_shape_numel(&t.shape);
        float *g = FIX(name, k);
        if (!g) continue;
        double gmax = 0;
        for (long long j = 0; j < k; j++) gmax = fmax(gmax, fabs(g[j]));
        if (!check_arrays_(__FILE__, __LINE__, t.name, t.grad, g, k, 1e-5 + 1e-4 * gmax, 1e-3))
            fprintf(stderr, "  (%s gradient)\n", t.name);
        free(g);
    }
out:
    free(x); free(y); free(ref); free(loss);
    octav_model_destroy(m);
}

static void test_torch_classifier(void) { torch_case("cls", 0); }
static void test_torch_mlm(void) { torch_case("mlm", 1); }

int main(void) {
    octav_set_threads(1);
    RUN(test_torch_classifier);
    RUN(test_torch_mlm);
    RUN(test_gradcheck_classifier);
    RUN(test_gradcheck_mlm);
    RUN(test_qat16_matches_float);
    RUN(test_padding_is_invisible);
    RUN(test_octav_scales);
    RUN(test_all_modes);
    RUN(test_bad_tokens_and_labels);
    RUN(test_builder_errors);
    RUN(test_learns_attention_task);
    return TEST_SUMMARY();
}
