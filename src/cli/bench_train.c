/* bench_train.c -- `octav bench train`: the time of one training step
 * (forward, loss, backward, SGD update) of the built-in models, in float
 * and with 4-bit quantization-aware training, on random data.
 *
 * Cases train/<model>/<mode>: model cnn, resnet20, mobilenetv2; mode
 *   float  no quantization;
 *   max    QAT, clipping scalars = max |x| recomputed every step;
 *   octav  QAT, dynamic OCTAV (re-solved every step, warm-started).
 * QAT is the library's default recipe (4 bits, first conv and last linear
 * at 8, conv weights per output channel, MAD weight / PWL input gradients).
 * Optimiser: SGD, momentum 0.9, Nesterov, weight decay 5e-4, lr 0.01.
 * Batch 128 of N(0,1) images with uniform labels over 10 classes, fixed
 * seed, the same batch every step; inputs 1x28x28 (Fashion-MNIST shape)
 * unless --input cifar (3x32x32). Dropout as `octav train` uses it (0.25
 * for cnn, none for resnet20 and mobilenetv2).
 *
 * Each case builds a fresh model, runs W untimed steps, then R timed ones
 * and reports their median. The floor of a QAT row is the float row of
 * the same model measured just before in the same process (so
 * ratio_to_floor is QAT time / float time); a float row is its own floor
 * (ratio 1). Memory: octav_model_memory() of the model after the steps,
 * and the process's peak RSS (getrusage), which is per case only when each
 * case runs in its own process (--case), as bench/train_compare.py does.
 * Model transformer (--model transformer, or with the others unless
 * --quick): the encoder of `octav train --model transformer` at width 128,
 * 4 heads, 4 blocks, MLP 512, dropout 0.1, on 128 sequences of 24 token
 * ids (vocabulary 200; [CLS], 1..23 random ids, padding) and 12 classes,
 * with AdamW (lr 1e-3, weight decay 0.01, gradient clipping at 1), as
 * bench/peers/train_peer_transformer.py does in PyTorch.
 * Left out: data loading and augmentation (timed by `octav train`). */
#define _POSIX_C_SOURCE 200809L
#include "cli/bench.h"
#include "cli/cli.h"
#include "octav/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define TRAIN_CLASSES 10

static const char *const train_models[] = {"cnn", "resnet20", "mobilenetv2", "transformer"};
#define TF_VOCAB 200
#define TF_LEN 24
#define TF_CLASSES 12
static const char *const train_modes[] = {"float", "max", "octav"};

/* Current and peak resident set size of this process, in bytes. */
static int64_t rss_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, res = 0;
    if (!f) return 0;
    int ok = fscanf(f, "%lld %lld", &size, &res) == 2;
    fclose(f);
    return ok ? res * (int64_t)sysconf(_SC_PAGESIZE) : 0;
}

static int64_t rss_peak(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (int64_t)ru.ru_maxrss * 1024; /* Linux: kilobytes */
}

typedef struct {
    const char *model;
    int mode;              /* index into train_modes */
    int64_t batch;
    int c, h, w;
    double width;
    int warmup;
} train_spec;

/* Builds the model of spec s (float, or QAT with the mode's clipping). */
static int build(const train_spec *s, octav_model **out) {
    octav_model_options mo = octav_model_options_default();
    mo.width = (float)s->width;
    mo.dropout = strcmp(s->model, "cnn") == 0 ? 0.25f : 0.0f;
    mo.vocab = TF_VOCAB;
    mo.dim = 128; mo.heads = 4; mo.layers = 4; mo.mlp = 512; mo.tf_dropout = 0.1f;
    int tf = strcmp(s->model, "transformer") == 0;
    if (octav_model_zoo(s->model, tf ? 1 : s->c, tf ? 1 : s->h, tf ? TF_LEN : s->w, tf ? TF_CLASSES : TRAIN_CLASSES,
                        &mo, out))
        return 1;
    if (s->mode > 0) {
        octav_qat_config q = octav_qat_default();
        if (octav_qat_parse_clip(train_modes[s->mode], &q) || octav_model_set_qat(*out, &q)) {
            octav_model_destroy(*out);
            *out = NULL;
            return 1;
        }
    }
    return octav_model_init(*out, 1) != OCTAV_OK;
}

/* Runs one case; *float_ms is the float median of this model (set by a
 * float row, read by QAT rows; NAN when not measured). */
static int train_case(bench_out *o, const train_spec *s, const float *x, const int32_t *y, double *float_ms) {
    char cas[96];
    snprintf(cas, sizeof cas, "train/%s/%s", s->model, train_modes[s->mode]);
    if (o->only && !strstr(cas, o->only)) return 0;
    int64_t base = rss_now();
    octav_model *m = NULL;
    if (build(s, &m)) { cli_error(cas); return 1; }
    octav_train_config tc = octav_train_default();
    tc.lr = 0.01;
    tc.momentum = 0.9;
    tc.nesterov = 1;
    tc.weight_decay = 5e-4;
    tc.seed = 1;
    if (strcmp(s->model, "transformer") == 0) {
        tc.optim = OCTAV_OPTIM_ADAMW;
        tc.lr = 1e-3;
        tc.weight_decay = 0.01;
        tc.grad_clip = 1.0;
    }
    double ts[64];
    octav_step_result res = {0};
    int rc = 0;
    for (int i = -s->warmup; i < o->reps && !rc; i++) {
        double t0 = bench_now_ms();
        if (octav_model_train_step(m, &tc, i + s->warmup, x, y, s->batch, &res) != OCTAV_OK) rc = 1;
        double t1 = bench_now_ms();
        if (i >= 0) ts[i] = t1 - t0;
    }
    if (rc) {
        cli_error(cas);
        octav_model_destroy(m);
        return 1;
    }
    bench_timing t = bench_summarize(ts, o->reps);
    if (s->mode == 0) *float_ms = t.med;
    double floor = *float_ms;
    size_t mbytes = octav_model_memory(m);
    int64_t peak = rss_peak();
    int64_t nparams = octav_model_num_params(m);
    int nq = octav_model_num_quantizers(m);
    octav_model_destroy(m);
    double ips = (double)s->batch * 1e3 / t.med;
    if (o->json) {
        printf("%s    {\"case\": \"%s\", \"n\": %lld, \"batch\": %lld, \"input\": \"%dx%dx%d\", \"threads\": %d, "
               "\"ms\": %.4f, \"ms_min\": %.4f, \"ms_max\": %.4f, \"images_per_second\": %.2f",
               o->first ? "" : ",\n", cas, (long long)s->batch, (long long)s->batch, s->c, s->h, s->w,
               octav_get_threads(), t.med, t.lo, t.hi, ips);
        if (isfinite(floor)) printf(", \"floor_ms\": %.4f, \"ratio_to_floor\": %.3f", floor, t.med / floor);
        printf(", \"model\": \"%s\", \"mode\": \"%s\", \"bits\": %d, \"quantizers\": %d, \"params\": %lld, "
               "\"warmup\": %d, \"steps\": %d, \"loss\": %.5g, \"model_bytes\": %zu, \"rss_base_bytes\": %lld, "
               "\"rss_peak_bytes\": %lld}",
               s->model, train_modes[s->mode], s->mode ? octav_qat_default().bits : 32, nq, (long long)nparams,
               s->warmup, o->reps, res.loss, mbytes, (long long)base, (long long)peak);
    } else {
        char fl[32] = "       -", ratio[16] = "     -";
        if (isfinite(floor)) {
            snprintf(fl, sizeof fl, "%8.2f", floor);
            snprintf(ratio, sizeof ratio, "%6.2fx", t.med / floor);
        }
        printf("%-26s %5lld %3d %10.2f (%8.2f..%8.2f) %9.1f %s %s %9.1f %9.1f\n", cas, (long long)s->batch,
               octav_get_threads(), t.med, t.lo, t.hi, ips, fl, ratio, (double)mbytes / 1048576.0,
               (double)peak / 1048576.0);
    }
    o->first = 0;
    fflush(stdout);
    return 0;
}

/* [CLS], 1..TF_LEN-1 random ids, padding; uniform labels */
static void token_batch(int64_t n, float *x, int32_t *y) {
    octav_rng r;
    octav_rng_seed(&r, 0x5eed);
    for (int64_t i = 0; i < n; i++) {
        int len = 1 + (int)octav_rng_below(&r, TF_LEN - 1);
        x[i * TF_LEN] = 1.0f;
        for (int p = 1; p < TF_LEN; p++) x[i * TF_LEN + p] = p <= len ? (float)(4 + octav_rng_below(&r, TF_VOCAB - 4)) : 0.0f;
        y[i] = (int32_t)octav_rng_below(&r, TF_CLASSES);
    }
}

int bench_train(bench_out *o, const bench_train_opts *t) {
    train_spec s = {.batch = t->batch > 0 ? t->batch : (t->quick ? 16 : 128),
                    .c = t->cifar ? 3 : 1,
                    .h = t->cifar ? 32 : 28,
                    .w = t->cifar ? 32 : 28,
                    .width = t->width > 0 ? t->width : 1.0,
                    .warmup = t->warmup >= 0 ? t->warmup : (t->quick ? 1 : 3)};
    const int64_t per = (int64_t)s.c * s.h * s.w;
    float *x = malloc((size_t)(s.batch * per) * sizeof *x);
    int32_t *y = malloc((size_t)s.batch * sizeof *y);
    if (!x || !y) {
        free(x); free(y);
        cli_errorf("bench: out of memory");
        return 1;
    }
    octav_rng r;
    octav_rng_seed(&r, 0x5eed);
    for (int64_t i = 0; i < s.batch * per; i++) x[i] = (float)octav_rng_normal(&r);
    for (int64_t i = 0; i < s.batch; i++) y[i] = (int32_t)octav_rng_below(&r, TRAIN_CLASSES);
    if (!o->json)
        printf("%-26s %5s %3s %10s %20s %9s %8s %7s %9s %9s\n", "case", "batch", "thr", "ms/step", "(min..max)",
               "images/s", "float_ms", "ratio", "model MB", "peak RSS");
    int rc = 0;
    const int nmodels = t->quick ? 1 : 3;
    for (int k = 0; k < nmodels && !rc; k++) {
        s.model = train_models[k];
        double float_ms = NAN;
        for (s.mode = 0; s.mode < 3 && !rc; s.mode++) rc = train_case(o, &s, x, y, &float_ms);
    }
    if (!t->quick && !rc) {   /* the transformer on token batches */
        float *xt = malloc((size_t)(s.batch * TF_LEN) * sizeof *xt);
        int32_t *yt = malloc((size_t)s.batch * sizeof *yt);
        if (!xt || !yt) { cli_errorf("bench: out of memory"); rc = 1; }
        if (!rc) {
            token_batch(s.batch, xt, yt);
            s.model = "transformer";
            s.c = 1; s.h = 1; s.w = TF_LEN;
            double float_ms = NAN;
            for (s.mode = 0; s.mode < 3 && !rc; s.mode++) rc = train_case(o, &s, xt, yt, &float_ms);
        }
        free(xt);
        free(yt);
    }
    free(x);
    free(y);
    return rc;
}
