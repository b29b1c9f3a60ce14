/* test_model.c -- the graph, QAT, training step and checkpoints:
 * whole-model gradient checks (finite differences through every op of
 * each built-in model), scales of dynamic OCTAV equal to the solver's
 * fixed point, learned/static modes, bit-for-bit resume from a checkpoint,
 * corrupt/mismatched checkpoints, NaN input, builder errors, allocation
 * failures, and that training actually learns. */
#define _POSIX_C_SOURCE 200809L
#include "octav/model.h"
#include "model_gradcheck.h"
#include "test_io.h"

#include <unistd.h>

static void fill_batch(trng *r, float *x, int32_t *y, int64_t n, int64_t per, int nclasses) {
    for (int64_t i = 0; i < n * per; i++) x[i] = (float)trng_gauss(r);
    for (int64_t i = 0; i < n; i++) y[i] = (int32_t)(trng_u64(r) % (uint64_t)nclasses);
}

static void model_gradcheck_built(const char *name, octav_model *m, int ch, int h, int w) {
    int64_t n = 6, per = (int64_t)ch * h * w;
    float *x = malloc((size_t)(n * per) * sizeof(float));
    int32_t y[6];
    trng r = {.s = 11};
    fill_batch(&r, x, y, n, per, 5);
    model_gradcheck_batch(name, m, x, y, n);
    free(x);
}

static void model_gradcheck(const char *name, int ch, int h, int w) {
    octav_model_options o = octav_model_options_default();
    o.dropout = 0;
    o.hidden = 16;
    octav_model *m;
    CHECK_EQ_INT(octav_model_zoo(name, ch, h, w, 5, &o, &m), OCTAV_OK);
    if (!m) return;
    model_gradcheck_built(name, m, ch, h, w);
    octav_model_destroy(m);
}

static void test_gradcheck_mlp(void) { model_gradcheck("mlp", 1, 6, 6); }
static void test_gradcheck_cnn(void) { model_gradcheck("cnn", 1, 8, 8); }

/* The routing of a residual graph, with smooth ops only so that finite
 * differences are exact to float precision: a node feeding three consumers
 * (gradients summed), a residual add, a projection shortcut with stride,
 * a depthwise conv, avg pool, GAP, flatten and linear layers. (resnet20 and
 * mobilenetv2 are these pieces plus ReLU / ReLU6, whose kinks make whole-
 * model differences at this size too noisy; their ops are checked one by
 * one in test_nn_*.) */
static void test_gradcheck_residual_graph(void) {
    octav_model *m;
    CHECK_EQ_INT(octav_model_create(2, 8, 8, &m), OCTAV_OK);
    int a = octav_add_conv2d(m, "a", 0, 6, 3, 1, 1, 1, 1);
    a = octav_add_batchnorm(m, "a.bn", a);
    int b = octav_add_conv2d(m, "b", a, 6, 3, 1, 1, 2, 0);
    b = octav_add_batchnorm(m, "b.bn", b);
    int r = octav_add_add(m, a, b);                            /* a: 3 consumers */
    int p = octav_add_conv2d(m, "proj", a, 6, 1, 2, 0, 1, 0);  /* 8x8 -> 4x4 */
    int d = octav_add_conv2d(m, "dw", r, 6, 3, 2, 1, 6, 0);    /* depthwise, stride 2 */
    int s = octav_add_add(m, d, p);
    int q = octav_add_avgpool(m, s, 2, 2, 0);
    int g = octav_add_gap(m, s);
    int f = octav_add_linear(m, "fq", octav_add_flatten(m, q), 5, 1);
    int l = octav_add_linear(m, "fg", g, 5, 0);
    octav_add_add(m, f, l);
    CHECK_EQ_INT(octav_model_finalize(m), OCTAV_OK);
    model_gradcheck_built("residual graph", m, 2, 8, 8);
    octav_model_destroy(m);
}

/* ---- QAT ----------------------------------------------------------------- */
static octav_model *small_cnn(int bits, const char *clip, const char *grad) {
    octav_model_options o = octav_model_options_default();
    o.dropout = 0;
    octav_model *m = NULL;
    if (octav_model_zoo("cnn", 1, 12, 12, 4, &o, &m) != OCTAV_OK) return NULL;
    octav_model_init(m, 5);
    if (bits) {
        octav_qat_config q = octav_qat_default();
        q.bits = bits;
        q.calib_batches = 2;
        if (octav_qat_parse_clip(clip, &q) || octav_qat_parse_grad(grad, &q) || octav_model_set_qat(m, &q)) {
            octav_model_destroy(m);
            return NULL;
        }
    }
    return m;
}

/* After a forward, each weight quantizer's scales equal octav_clip's answer
 * with `method` on the current weights (4 bits; 8 for the first conv and the
 * last linear). Returns how many quantizers were checked. */
static int check_weight_scales(octav_model *m, octav_clip_method method) {
    octav_solver *sv;
    octav_solver_create(&sv);
    int checked = 0;
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        const char *suf = strstr(t.name, ".weight_scale");
        if (!suf) continue;
        char wname[128];
        snprintf(wname, sizeof wname, "%.*s.weight", (int)(suf - t.name), t.name);
        const float *w = NULL;
        octav_shape ws = {0};
        for (int j = 0; j < octav_model_num_tensors(m); j++) {
            octav_tensor_ref u = octav_model_tensor(m, j);
            if (strcmp(u.name, wname) == 0) { w = u.data; ws = u.shape; }
        }
        CHECK(w != NULL);
        if (!w) continue;
        octav_group_spec spec = {.kind = ws.ndim == 4 ? OCTAV_GRAN_CHANNEL : OCTAV_GRAN_TENSOR, .axis = 0};
        octav_layout lay;
        octav_layout_make(&ws, spec, &lay);
        float ref[256];
        octav_clip_config cc = octav_clip_default(method);
        octav_grid g = {.bits = (int)t.shape.dim[0] > 0 ? 0 : 0, .kind = OCTAV_GRID_FULL};
        /* bits: 8 for the first conv and the last linear, 4 otherwise */
        int first = strstr(t.name, "features.0") != NULL, last = strstr(t.name, "classifier.2") != NULL;
        g.bits = first || last ? 8 : 4;
        CHECK_EQ_INT(octav_clip(sv, &cc, g, &lay, w, ref, NULL), OCTAV_OK);
        CHECK_ARRAYS(t.data, ref, lay.ngroups, 0, 0);
        CHECK_MSG(!t.trainable && !t.grad, "%s: weight scales are not trained", t.name);
        checked++;
    }
    octav_solver_destroy(sv);
    return checked;
}

/* Steps [from, to) of default SGD training of m on one batch x, y of 8. */
static void train_steps(octav_model *m, const float *x, const int32_t *y, int from, int to) {
    octav_train_config tc = octav_train_default();
    octav_step_result res;
    for (int s = from; s < to; s++) CHECK_EQ_INT(octav_model_train_step(m, &tc, s, x, y, 8, &res), OCTAV_OK);
}

/* small_cnn at 4 bits with clip and MAD/PWL gradients, and one batch of 8
 * drawn with seed into x, y. */
static octav_model *cnn_and_batch(const char *clip, uint64_t seed, float *x, int32_t *y) {
    octav_model *m = small_cnn(4, clip, "mad-pwl");
    CHECK(m != NULL);
    trng r = {.s = seed};
    fill_batch(&r, x, y, 8, 144, 4);
    return m;
}

static void test_qat_octav_scales_are_fixed_points(void) {
    float x[8 * 144];
    int32_t y[8];
    octav_model *m = cnn_and_batch("octav", 2, x, y);
    if (!m) return;
    train_steps(m, x, y, 0, 3);
    /* warm start or not: the same fixed point */
    CHECK_EQ_INT(octav_model_forward(m, x, 8, NULL), OCTAV_OK);
    CHECK_EQ_INT(check_weight_scales(m, OCTAV_CLIP_OCTAV), 6);
    /* report: every quantizer has a positive scale, inputs after ReLU use
     * the unsigned grid */
    int nq = octav_model_num_quantizers(m);
    CHECK_EQ_INT(nq, 12);
    for (int i = 0; i < nq; i++) {
        octav_quant_report q;
        CHECK_EQ_INT(octav_model_quantizer(m, i, 1, &q), OCTAV_OK);
        CHECK(q.scale > 0);
        CHECK(q.sqnr_db > 0);
        CHECK(q.clipped_fraction >= 0 && q.clipped_fraction < 0.5);
        if (!q.is_weight && strcmp(q.node, "features.0.conv") != 0) CHECK_EQ_INT(q.grid, OCTAV_GRID_UNSIGNED);
        if (!q.is_weight && strcmp(q.node, "features.0.conv") == 0) CHECK_EQ_INT(q.grid, OCTAV_GRID_FULL);
    }
    octav_model_destroy(m);
}

static void test_qat_all_modes_train(void) {
    const char *clips[] = {"octav", "static-octav", "max", "percentile-99.9", "mse-sweep", "pact", "lsq"};
    const char *grads[] = {"ste", "pwl", "mad", "mad-pwl"};
    float x[8 * 144];
    int32_t y[8];
    trng r = {.s = 4};
    fill_batch(&r, x, y, 8, 144, 4);
    /* every clipping method with the default estimators, every estimator
     * with dynamic OCTAV */
    for (int c = 0; c < 7; c++)
        for (int g = 0; g < 4; g++) {
            if (c != 0 && g != 3) continue;
            octav_model *m = small_cnn(3, clips[c], grads[g]);
            CHECK_MSG(m != NULL, "%s/%s", clips[c], grads[g]);
            if (!m) continue;
            octav_train_config tc = octav_train_default();
            octav_step_result res;
            for (int s = 0; s < 3; s++) {
                octav_status st = octav_model_train_step(m, &tc, s, x, y, 8, &res);
                CHECK_MSG(st == OCTAV_OK, "%s/%s: %s", clips[c], grads[g], octav_last_error());
            }
            double acc, loss;
            CHECK_EQ_INT(octav_model_evaluate(m, x, y, 8, 3, &acc, &loss), OCTAV_OK);
            CHECK(isfinite(loss));
            CHECK_EQ_INT(octav_model_calibrated(m), 1);   /* static: calibrated by the first steps */
            octav_model_destroy(m);
        }
}

/* PACT (Choi et al.) learns the clipping scalar of activations only: input
 * scales are trainable, decayed and move with training; weights are
 * max-scaled on every step, untrained. */
static void test_pact_learns_activations_only(void) {
    float x[8 * 144];
    int32_t y[8];
    octav_model *m = cnn_and_batch("pact", 3, x, y);
    if (!m) return;
    train_steps(m, x, y, 0, 1);
    float first[6];
    int ni = 0;
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        if (!strstr(t.name, ".input_scale")) continue;
        CHECK_MSG(t.trainable && t.decay && t.grad, "%s: PACT's alpha is trained, with decay", t.name);
        if (ni < 6) first[ni] = t.data[0];
        ni++;
    }
    CHECK_EQ_INT(ni, 6);
    train_steps(m, x, y, 1, 4);
    int moved = 0, k = 0;
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref t = octav_model_tensor(m, i);
        if (strstr(t.name, ".input_scale") && k < 6) moved += t.data[0] != first[k++];
    }
    CHECK_MSG(moved > 0, "no PACT alpha moved in 3 steps");
    CHECK_EQ_INT(octav_model_forward(m, x, 8, NULL), OCTAV_OK);
    CHECK_EQ_INT(check_weight_scales(m, OCTAV_CLIP_MAX), 6);
    octav_model_destroy(m);
}

static void test_static_calibration_fixed(void) {
    float x[8 * 144];
    int32_t y[8];
    octav_model *m = cnn_and_batch("static-octav", 6, x, y);
    if (!m) return;
    CHECK_EQ_INT(octav_model_calibrated(m), 0);
    CHECK_EQ_INT(octav_model_calibrate(m, x, 8), OCTAV_OK);
    CHECK_EQ_INT(octav_model_calibrated(m), 0);
    CHECK_EQ_INT(octav_model_calibrate(m, x + 4 * 144, 4), OCTAV_OK);
    CHECK_EQ_INT(octav_model_calibrated(m), 1);
    octav_quant_report q0[12], q1[12];
    for (int i = 0; i < 12; i++) octav_model_quantizer(m, i, 0, &q0[i]);
    octav_train_config tc = octav_train_default();
    octav_step_result res;
    for (int s = 0; s < 3; s++) CHECK_EQ_INT(octav_model_train_step(m, &tc, s, x, y, 8, &res), OCTAV_OK);
    for (int i = 0; i < 12; i++) {
        octav_model_quantizer(m, i, 0, &q1[i]);
        CHECK(q0[i].scale == q1[i].scale);   /* frozen after calibration */
    }
    octav_model_destroy(m);
}

/* ---- checkpoints and resume ---------------------------------------------- */
static void tmpname(char *buf, size_t cap, const char *tag) {
    snprintf(buf, cap, "/tmp/octav_test_model_%d_%s.safetensors", (int)getpid(), tag);
}

static int same_tensors(octav_model *a, octav_model *b) {
    if (octav_model_num_tensors(a) != octav_model_num_tensors(b)) return 0;
    for (int i = 0; i < octav_model_num_tensors(a); i++) {
        octav_tensor_ref x = octav_model_tensor(a, i), y = octav_model_tensor(b, i);
        int64_t k = octav_shape_numel(&x.shape);
        if (strcmp(x.name, y.name) || memcmp(x.data, y.data, (size_t)k * sizeof(float))) {
            fprintf(stderr, "  tensor %s differs\n", x.name);
            return 0;
        }
    }
    return 1;
}

static void test_resume_bit_for_bit(void) {
    const char *clips[] = {"octav", "lsq", "static-octav"};
    for (int c = 0; c < 3; c++) {
        octav_model *a = small_cnn(4, clips[c], "mad-pwl"), *b = small_cnn(4, clips[c], "mad-pwl");
        CHECK(a && b);
        if (!a || !b) { octav_model_destroy(a); octav_model_destroy(b); continue; }
        float x[4][8 * 144];
        int32_t y[4][8];
        trng r = {.s = 8};
        for (int s = 0; s < 4; s++) fill_batch(&r, x[s], y[s], 8, 144, 4);
        octav_train_config tc = octav_train_default();
        tc.optim = c == 1 ? OCTAV_OPTIM_ADAMW : OCTAV_OPTIM_SGD;
        tc.lr = c == 1 ? 1e-3 : 0.05;
        tc.sched.kind = OCTAV_SCHED_COSINE;
        tc.sched.total_steps = 4;
        octav_step_result res;
        for (int s = 0; s < 4; s++) CHECK_EQ_INT(octav_model_train_step(a, &tc, s, x[s], y[s], 8, &res), OCTAV_OK);
        for (int s = 0; s < 2; s++) CHECK_EQ_INT(octav_model_train_step(b, &tc, s, x[s], y[s], 8, &res), OCTAV_OK);
        char path[256];
        tmpname(path, sizeof path, "resume");
        octav_kv kv = {"run", "test"};
        CHECK_EQ_INT(octav_model_save(b, path, &kv, 1), OCTAV_OK);
        octav_model_destroy(b);
        octav_model *b2 = small_cnn(4, clips[c], "mad-pwl");
        octav_model_init(b2, 999);   /* different init: everything must come from the file */
        octav_safetensors meta;
        CHECK_EQ_INT(octav_model_load(b2, path, 1, &meta), OCTAV_OK);
        CHECK_EQ_INT(octav_model_step(b2), 2);
        int found = 0;
        for (int i = 0; i < meta.nmeta; i++) found |= strcmp(meta.meta[i].key, "run") == 0 && strcmp(meta.meta[i].value, "test") == 0;
        CHECK(found);
        octav_safetensors_free(&meta);
        for (int s = 2; s < 4; s++) CHECK_EQ_INT(octav_model_train_step(b2, &tc, s, x[s], y[s], 8, &res), OCTAV_OK);
        CHECK_MSG(same_tensors(a, b2), "%s: resumed run differs", clips[c]);
        unlink(path);
        octav_model_destroy(a);
        octav_model_destroy(b2);
    }
}

static void test_load_errors_leave_model_unchanged(void) {
    octav_model *m = small_cnn(0, NULL, NULL), *ref = small_cnn(0, NULL, NULL);
    CHECK(m && ref);
    if (!m || !ref) { octav_model_destroy(m); octav_model_destroy(ref); return; }
    char path[256];
    tmpname(path, sizeof path, "bad");
    /* a different model: shapes differ */
    octav_model_options o = octav_model_options_default();
    octav_model *other;
    CHECK_EQ_INT(octav_model_zoo("cnn", 1, 16, 16, 4, &o, &other), OCTAV_OK);
    CHECK_EQ_INT(octav_model_save(other, path, NULL, 0), OCTAV_OK);
    CHECK_EQ_INT(octav_model_load(m, path, 0, NULL), OCTAV_EFORMAT);
    CHECK(strstr(octav_last_error(), "classifier.0.weight") != NULL);
    CHECK(same_tensors(m, ref));
    octav_model_destroy(other);
    /* float checkpoint for a full (resume) load: no optimizer/step metadata */
    CHECK_EQ_INT(octav_model_save(ref, path, NULL, 0), OCTAV_OK);
    octav_status st = octav_model_load(m, path, 1, NULL);
    CHECK(st == OCTAV_OK || st == OCTAV_EFORMAT);
    /* truncated file */
    unsigned char *buf;
    size_t len;
    CHECK_EQ_INT(octav_read_file(path, &buf, &len), OCTAV_OK);
    CHECK_EQ_INT(octav_write_file_atomic(path, buf, len / 2), OCTAV_OK);
    free(buf);
    CHECK_EQ_INT(octav_model_load(m, path, 0, NULL), OCTAV_EFORMAT);
    CHECK(same_tensors(m, ref));
    CHECK_EQ_INT(octav_model_load(m, "/nonexistent/x.safetensors", 0, NULL), OCTAV_EIO);
    unlink(path);
    octav_model_destroy(m);
    octav_model_destroy(ref);
}

static void test_nan_input_stops_step(void) {
    octav_model *m = small_cnn(4, "octav", "mad-pwl"), *ref = small_cnn(4, "octav", "mad-pwl");
    CHECK(m && ref);
    if (!m || !ref) { octav_model_destroy(m); octav_model_destroy(ref); return; }
    float x[8 * 144];
    int32_t y[8];
    trng r = {.s = 9};
    fill_batch(&r, x, y, 8, 144, 4);
    x[100] = NAN;
    octav_train_config tc = octav_train_default();
    octav_step_result res;
    CHECK_EQ_INT(octav_model_train_step(m, &tc, 0, x, y, 8, &res), OCTAV_ENONFINITE);
    CHECK(same_tensors(m, ref) || 1);   /* scales may be set; parameters: */
    for (int i = 0; i < octav_model_num_tensors(m); i++) {
        octav_tensor_ref a = octav_model_tensor(m, i), b = octav_model_tensor(ref, i);
        if (!a.trainable) continue;
        CHECK(memcmp(a.data, b.data, (size_t)octav_shape_numel(&a.shape) * sizeof(float)) == 0);
    }
    /* float model: the loss becomes NaN */
    octav_model *f = small_cnn(0, NULL, NULL);
    CHECK_EQ_INT(octav_model_train_step(f, &tc, 0, x, y, 8, &res), OCTAV_ENONFINITE);
    y[0] = 7;   /* label out of range */
    x[100] = 0;
    CHECK_EQ_INT(octav_model_train_step(f, &tc, 0, x, y, 8, &res), OCTAV_EINVAL);
    octav_model_destroy(f);
    octav_model_destroy(m);
    octav_model_destroy(ref);
}

/* ---- building ------------------------------------------------------------ */
static void test_builder_errors(void) {
    octav_model *m;
    CHECK_EQ_INT(octav_model_create(1, 8, 8, &m), OCTAV_OK);
    int a = octav_add_conv2d(m, "c", 0, 6, 3, 1, 1, 4, 0);   /* groups 4 does not divide 1 */
    CHECK_EQ_INT(a, -1);
    CHECK_EQ_INT(octav_add_relu(m, 0), -1);                   /* sticky error */
    CHECK_EQ_INT(octav_model_finalize(m), OCTAV_EINVAL);
    CHECK(strstr(octav_last_error(), "conv2d 'c'") != NULL);
    octav_model_destroy(m);
    CHECK_EQ_INT(octav_model_create(1, 8, 8, &m), OCTAV_OK);
    a = octav_add_conv2d(m, "c", 0, 4, 3, 1, 1, 1, 0);
    int b = octav_add_conv2d(m, "d", 0, 4, 3, 2, 1, 1, 0);
    CHECK_EQ_INT(octav_add_add(m, a, b), -1);                 /* 8x8 + 4x4 */
    octav_model_destroy(m);
    CHECK_EQ_INT(octav_model_create(1, 8, 8, &m), OCTAV_OK);
    octav_add_conv2d(m, "c", 0, 4, 3, 1, 1, 1, 0);
    CHECK_EQ_INT(octav_model_finalize(m), OCTAV_EINVAL);      /* logits must be a vector */
    octav_model_destroy(m);
    CHECK_EQ_INT(octav_model_zoo("vgg", 1, 28, 28, 10, NULL, &m), OCTAV_EINVAL);
    CHECK_EQ_INT(octav_model_zoo("cnn", 1, 4, 4, 10, NULL, &m), OCTAV_EINVAL);
    /* shapes of the zoo at 28x28 and 32x32 */
    const char *names[] = {"mlp", "cnn", "resnet20", "mobilenetv2"};
    for (int i = 0; i < 4; i++)
        for (int s = 28; s <= 32; s += 4) {
            CHECK_MSG(octav_model_zoo(names[i], s == 28 ? 1 : 3, s, s, 10, NULL, &m) == OCTAV_OK, "%s %d: %s",
                      names[i], s, octav_last_error());
            CHECK_EQ_INT(octav_model_num_classes(m), 10);
            octav_model_destroy(m);
        }
    /* resnet20: 0.27M parameters as in He et al. */
    CHECK_EQ_INT(octav_model_zoo("resnet20", 3, 32, 32, 10, NULL, &m), OCTAV_OK);
    int64_t np = octav_model_num_params(m);
    CHECK_MSG(np > 260000 && np < 280000, "resnet20 has %lld parameters", (long long)np);
    octav_model_destroy(m);
    octav_qat_config q = octav_qat_default();
    CHECK_EQ_INT(octav_qat_parse_clip("bogus", &q), OCTAV_EINVAL);
    CHECK_EQ_INT(octav_qat_parse_grad("bogus", &q), OCTAV_EINVAL);
    CHECK_EQ_INT(octav_qat_parse_clip("mse-sweep", &q), OCTAV_OK);
    CHECK_EQ_INT(q.mode, OCTAV_QCLIP_STATIC);
    CHECK_EQ_INT(octav_qat_parse_clip("percentile-99.9", &q), OCTAV_OK);
    CHECK_EQ_INT(q.mode, OCTAV_QCLIP_DYNAMIC);
    CHECK(strcmp(octav_qat_clip_name(&q), "percentile-99.9") == 0);
}

static void test_alloc_failures(void) {
    for (g_fail_at = 0; g_fail_at < 400; g_fail_at++) {
        g_count = 0;
        g_live = 0;
        octav_set_allocator(failing_alloc, counting_free, NULL);
        octav_model *m = NULL;
        octav_status st = octav_model_zoo("cnn", 1, 8, 8, 3, NULL, &m);
        if (st == OCTAV_OK) {
            octav_qat_config q = octav_qat_default();
            st = octav_model_set_qat(m, &q);
            if (st == OCTAV_OK) {
                float x[2 * 64] = {0};
                int32_t y[2] = {0, 1};
                octav_train_config tc = octav_train_default();
                octav_step_result res;
                st = octav_model_train_step(m, &tc, 0, x, y, 2, &res);
            }
            octav_model_destroy(m);
        }
        octav_set_allocator(NULL, NULL, NULL);
        CHECK_MSG(g_live == 0, "fail at %d: %lld blocks leaked", g_fail_at, (long long)g_live);
        if (st == OCTAV_OK) break;
        CHECK_MSG(st == OCTAV_ENOMEM, "fail at %d: status %d (%s)", g_fail_at, (int)st, octav_last_error());
    }
    g_fail_at = 0;
}

/* ---- it learns --------------------------------------------------------------
 * Two Gaussian blobs per class in 16 dimensions: the mlp must fit them. */
static void test_learns(void) {
    octav_model_options o = octav_model_options_default();
    o.hidden = 32;
    o.dropout = 0;
    for (int quant = 0; quant < 2; quant++) {
        octav_model *m;
        CHECK_EQ_INT(octav_model_zoo("mlp", 1, 4, 4, 3, &o, &m), OCTAV_OK);
        octav_model_init(m, 1);
        if (quant) {
            octav_qat_config q = octav_qat_default();
            q.bits = 4;
            octav_model_set_qat(m, &q);
        }
        trng r = {.s = 12};
        float centers[3][16];
        for (int c = 0; c < 3; c++)
            for (int k = 0; k < 16; k++) centers[c][k] = (float)trng_gauss(&r);
        float x[64 * 16];
        int32_t y[64];
        octav_train_config tc = octav_train_default();
        tc.lr = 0.05;
        octav_step_result res;
        double first = 0, last = 0;
        for (int s = 0; s < 60; s++) {
            for (int i = 0; i < 64; i++) {
                y[i] = (int32_t)(trng_u64(&r) % 3);
                for (int k = 0; k < 16; k++) x[i * 16 + k] = centers[y[i]][k] + 0.5f * (float)trng_gauss(&r);
            }
            CHECK_EQ_INT(octav_model_train_step(m, &tc, s, x, y, 64, &res), OCTAV_OK);
            if (s == 0) first = res.loss;
            last = res.loss;
        }
        double acc;
        CHECK_EQ_INT(octav_model_evaluate(m, x, y, 64, 64, &acc, NULL), OCTAV_OK);
        CHECK_MSG(last < 0.25 * first && acc > 0.95, "quant %d: loss %g -> %g, accuracy %g", quant, first, last, acc);
        octav_model_destroy(m);
    }
}

/* ---- data helpers ---------------------------------------------------------- */
static void test_data_helpers(void) {
    int64_t perm[100];
    octav_permutation(perm, 100, 7);
    int seen[100] = {0};
    for (int i = 0; i < 100; i++) seen[perm[i]]++;
    for (int i = 0; i < 100; i++) CHECK_EQ_INT(seen[i], 1);
    int64_t perm2[100];
    octav_permutation(perm2, 100, 7);
    CHECK(memcmp(perm, perm2, sizeof perm) == 0);
    octav_dataset ds = {.n = 10, .c = 1, .h = 3, .w = 3, .nclasses = 10};
    float img[90];
    int32_t lab[10];
    for (int i = 0; i < 90; i++) img[i] = (float)i;
    for (int i = 0; i < 10; i++) lab[i] = i;
    ds.images = img;
    ds.labels = lab;
    octav_dataset tr, va;
    CHECK_EQ_INT(octav_dataset_split(&ds, 3, 5, &tr, &va), OCTAV_OK);
    CHECK_EQ_INT(tr.n, 7);
    CHECK_EQ_INT(va.n, 3);
    int cnt[10] = {0};
    for (int i = 0; i < 7; i++) { cnt[tr.labels[i]]++; CHECK(tr.images[i * 9] == (float)(tr.labels[i] * 9)); }
    for (int i = 0; i < 3; i++) cnt[va.labels[i]]++;
    for (int i = 0; i < 10; i++) CHECK_EQ_INT(cnt[i], 1);
    float mean, sd;
    octav_dataset_stats(&tr, &mean, &sd);
    octav_dataset_normalize(&tr, &mean, &sd);
    float m2, s2;
    octav_dataset_stats(&tr, &m2, &s2);
    CHECK_NEAR(m2, 0, 1e-5, 0);
    CHECK_NEAR(s2, 1, 1e-5, 0);
    octav_dataset_free(&tr);
    octav_dataset_free(&va);
    CHECK_EQ_INT(octav_dataset_split(&ds, 10, 5, &tr, &va), OCTAV_EINVAL);
    /* gather: a shift by the pad moves pixels and fills zeros; flips mirror */
    int64_t idx[2] = {4, 4};
    float xb[18];
    int32_t yb[2];
    octav_batch_gather(&ds, idx, 2, 0, 0, 0, xb, yb);
    CHECK(memcmp(xb, img + 36, 9 * sizeof(float)) == 0);
    CHECK_EQ_INT(yb[1], 4);
    int varied = 0;
    for (uint64_t seed = 0; seed < 20; seed++) {
        octav_batch_gather(&ds, idx, 2, 1, 1, seed, xb, yb);
        varied |= memcmp(xb, img + 36, 9 * sizeof(float)) != 0;
        for (int k = 0; k < 9; k++) CHECK(xb[k] == 0 || (xb[k] >= 36 && xb[k] <= 44));
    }
    CHECK(varied);
}

int main(void) {
    octav_set_threads(1);   /* ctest runs tests side by side on few cores */
    RUN(test_gradcheck_mlp);
    RUN(test_gradcheck_cnn);
    RUN(test_gradcheck_residual_graph);
    RUN(test_qat_octav_scales_are_fixed_points);
    RUN(test_qat_all_modes_train);
    RUN(test_pact_learns_activations_only);
    RUN(test_static_calibration_fixed);
    RUN(test_resume_bit_for_bit);
    RUN(test_load_errors_leave_model_unchanged);
    RUN(test_nan_input_stops_step);
    RUN(test_builder_errors);
    RUN(test_alloc_failures);
    RUN(test_learns);
    RUN(test_data_helpers);
    return TEST_SUMMARY();
}
