/* run.c -- what `octav train` and `octav eval` share: the run
 * configuration (with per-model defaults, and its JSON form stored in
 * checkpoints), loading the dataset, building the model with its
 * quantization, and the progress line. */
#define _POSIX_C_SOURCE 200809L
#include "cli/run.h"

#include "octav/langid.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

void run_config_defaults(run_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->model, sizeof c->model, "cnn");
    snprintf(c->data, sizeof c->data, "%s", FASHION_DIR);
    c->optimizer = OCTAV_OPTIM_SGD;
    c->sched = OCTAV_SCHED_COSINE;
    c->momentum = 0.9;
    c->nesterov = 1;
    c->seed = 1;
    c->bits = 32;
    c->first_last_bits = 8;
    snprintf(c->clip, sizeof c->clip, "octav");
    snprintf(c->grad, sizeof c->grad, "mad-pwl");
    snprintf(c->weight_gran, sizeof c->weight_gran, "channel");
    c->calib_batches = 10;
    c->val = 5000;
    c->width = 1.0;
    c->dropout = -1;
    c->epochs = -1;
    c->batch = 128;
    c->lr = -1;
    c->weight_decay = -1;
    c->warmup = -1;
    snprintf(c->task, sizeof c->task, "classify");
    c->dim = 128;
    c->heads = 4;
    c->layers = 4;
    c->words_per_lang = 20000;
    c->max_len = 24;
}

int run_is_langid(const run_config *c) { return strcmp(c->data, "langid") == 0 || strncmp(c->data, "langid:", 7) == 0; }
int run_is_transformer(const run_config *c) { return strncmp(c->model, "transformer", 11) == 0; }
const char *run_zoo_name(const run_config *c) {
    return run_is_transformer(c) && strcmp(c->task, "mlm") == 0 ? "transformer-mlm" : c->model;
}

/* Fills the options left at -1 with the defaults of the model and mode. */
void run_config_finish(run_config *c) {
    int retrain = c->init[0] != 0;
    int mnv2 = strcmp(c->model, "mobilenetv2") == 0;
    if (c->epochs < 0) c->epochs = retrain ? 2 : (mnv2 ? 15 : 10);
    if (c->lr < 0) {
        double base = c->optimizer == OCTAV_OPTIM_ADAMW ? 1e-3 : (mnv2 ? 0.05 : 0.05);
        c->lr = retrain ? base * 0.1 : base;
    }
    if (c->weight_decay < 0) c->weight_decay = c->optimizer == OCTAV_OPTIM_ADAMW ? 0.01 : (mnv2 ? 4e-5 : 5e-4);
    if (c->warmup < 0) c->warmup = 0;
    if (c->dropout < 0)
        c->dropout = strcmp(c->model, "cnn") == 0 || strcmp(c->model, "mlp") == 0 ? 0.25 : run_is_transformer(c) ? 0.1 : 0.0;
}

cJSON *run_config_json(const run_config *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "model", c->model);
    cJSON_AddStringToObject(o, "data", c->data);
    cJSON_AddNumberToObject(o, "epochs", c->epochs);
    cJSON_AddNumberToObject(o, "batch", c->batch);
    cJSON_AddNumberToObject(o, "lr", c->lr);
    cJSON_AddStringToObject(o, "optimizer", c->optimizer == OCTAV_OPTIM_ADAMW ? "adamw" : "sgd");
    cJSON_AddStringToObject(o, "schedule", octav_sched_name(c->sched));
    cJSON_AddNumberToObject(o, "warmup_epochs", c->warmup);
    cJSON_AddNumberToObject(o, "momentum", c->momentum);
    cJSON_AddBoolToObject(o, "nesterov", c->nesterov);
    cJSON_AddNumberToObject(o, "weight_decay", c->weight_decay);
    cJSON_AddNumberToObject(o, "label_smoothing", c->label_smoothing);
    cJSON_AddNumberToObject(o, "grad_clip", c->grad_clip);
    cJSON_AddNumberToObject(o, "seed", (double)c->seed);
    cJSON_AddNumberToObject(o, "bits", c->bits);
    cJSON_AddNumberToObject(o, "first_last_bits", c->first_last_bits);
    cJSON_AddStringToObject(o, "clip", c->clip);
    cJSON_AddStringToObject(o, "grad", c->grad);
    cJSON_AddStringToObject(o, "weight_granularity", c->weight_gran);
    cJSON_AddNumberToObject(o, "calib_batches", c->calib_batches);
    cJSON_AddNumberToObject(o, "val", (double)c->val);
    cJSON_AddNumberToObject(o, "limit", (double)c->limit);
    cJSON_AddNumberToObject(o, "augment_pad", c->aug_pad);
    cJSON_AddBoolToObject(o, "augment_flip", c->aug_flip);
    cJSON_AddNumberToObject(o, "width", c->width);
    cJSON_AddNumberToObject(o, "dropout", c->dropout);
    cJSON_AddStringToObject(o, "init", c->init);
    cJSON_AddStringToObject(o, "task", c->task);
    cJSON_AddNumberToObject(o, "dim", c->dim);
    cJSON_AddNumberToObject(o, "heads", c->heads);
    cJSON_AddNumberToObject(o, "layers", c->layers);
    cJSON_AddNumberToObject(o, "mlp", c->mlp);
    cJSON_AddStringToObject(o, "langs", c->langs);
    cJSON_AddNumberToObject(o, "words_per_lang", (double)c->words_per_lang);
    cJSON_AddNumberToObject(o, "max_len", c->max_len);
    cJSON_AddNumberToObject(o, "vocab", c->vocab);
    return o;
}

static int get_num(const cJSON *o, const char *k, double *v) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(it)) return 0;
    *v = it->valuedouble;
    return 1;
}

static int get_str(const cJSON *o, const char *k, char *dst, size_t cap) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= cap) return 0;
    snprintf(dst, cap, "%s", it->valuestring);
    return 1;
}

int run_config_from_json(const char *text, run_config *c) {
    cJSON *o = cJSON_Parse(text);
    if (!o) return 0;
    run_config_defaults(c);
    double v;
    char buf[32];
    int ok = get_str(o, "model", c->model, sizeof c->model) && get_str(o, "data", c->data, sizeof c->data);
#define NUM(key, field, type) if (ok && (ok = get_num(o, key, &v))) c->field = (type)v
    NUM("epochs", epochs, int);
    NUM("batch", batch, int64_t);
    NUM("lr", lr, double);
    NUM("warmup_epochs", warmup, double);
    NUM("momentum", momentum, double);
    NUM("weight_decay", weight_decay, double);
    NUM("label_smoothing", label_smoothing, double);
    NUM("grad_clip", grad_clip, double);
    NUM("seed", seed, uint64_t);
    NUM("bits", bits, int);
    NUM("first_last_bits", first_last_bits, int);
    NUM("calib_batches", calib_batches, int);
    NUM("val", val, int64_t);
    NUM("limit", limit, int64_t);
    NUM("augment_pad", aug_pad, int);
    NUM("width", width, double);
    NUM("dropout", dropout, double);
#undef NUM
    const cJSON *nv = cJSON_GetObjectItemCaseSensitive(o, "nesterov");
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(o, "augment_flip");
    ok = ok && cJSON_IsBool(nv) && cJSON_IsBool(fl);
    if (ok) { c->nesterov = cJSON_IsTrue(nv); c->aug_flip = cJSON_IsTrue(fl); }
    ok = ok && get_str(o, "clip", c->clip, sizeof c->clip) && get_str(o, "grad", c->grad, sizeof c->grad) &&
         get_str(o, "weight_granularity", c->weight_gran, sizeof c->weight_gran) &&
         get_str(o, "init", c->init, sizeof c->init);
    ok = ok && get_str(o, "optimizer", buf, sizeof buf);
    if (ok) c->optimizer = strcmp(buf, "adamw") == 0 ? OCTAV_OPTIM_ADAMW : OCTAV_OPTIM_SGD;
    ok = ok && get_str(o, "schedule", buf, sizeof buf) && octav_sched_parse(buf, &c->sched) == OCTAV_OK;
    /* transformer / corpus fields: absent in checkpoints of image models
     * written before they existed (the defaults then apply) */
    get_str(o, "task", c->task, sizeof c->task);
    get_str(o, "langs", c->langs, sizeof c->langs);
#define OPT(key, field, type) if (get_num(o, key, &v)) c->field = (type)v
    OPT("dim", dim, int);
    OPT("heads", heads, int);
    OPT("layers", layers, int);
    OPT("mlp", mlp, int);
    OPT("words_per_lang", words_per_lang, int64_t);
    OPT("max_len", max_len, int);
    OPT("vocab", vocab, int);
#undef OPT
    cJSON_Delete(o);
    return ok;
}

static char data_summary[1024];
const char *run_data_summary(void) { return data_summary[0] ? data_summary : NULL; }

/* One split of the corpus as a dataset of token ids stored as floats. */
static int langid_split(const octav_langid *d, int s, octav_dataset *out) {
    int64_t n = d->count[s], L = d->max_len;
    out->images = octav_malloc((size_t)(n * L) * sizeof(float));
    out->labels = octav_malloc((size_t)n * sizeof(int32_t));
    if (!out->images || !out->labels) return 0;
    for (int64_t i = 0; i < n * L; i++) out->images[i] = (float)d->tokens[s][i];
    memcpy(out->labels, d->labels[s], (size_t)n * sizeof(int32_t));
    out->n = n;
    out->c = 1; out->h = 1; out->w = L;
    out->nclasses = d->nlang;
    return 1;
}

static int load_langid(run_config *c, octav_dataset *train, octav_dataset *val, octav_dataset *test) {
    octav_langid_config lc = octav_langid_default();
    if (c->data[6] == ':') lc.dir = c->data + 7;
    lc.languages = c->langs[0] ? c->langs : NULL;
    lc.words_per_lang = c->words_per_lang;
    lc.max_len = c->max_len;
    octav_langid d;
    if (octav_langid_load(&lc, &d)) { cli_error("data"); return 0; }
    int ok = langid_split(&d, OCTAV_SPLIT_TRAIN, train) && langid_split(&d, OCTAV_SPLIT_VAL, val) &&
             langid_split(&d, OCTAV_SPLIT_TEST, test);
    if (ok && c->vocab && c->vocab != d.vocab) {
        cli_errorf("data: the corpus has %d token ids, the checkpoint's model %d (different --langs/--words-per-lang?)",
                   d.vocab, c->vocab);
        ok = 0;
    } else if (!ok) {
        cli_errorf("out of memory");
    }
    c->vocab = d.vocab;
    size_t o = (size_t)snprintf(data_summary, sizeof data_summary,
                                "%d languages (", d.nlang);
    for (int l = 0; l < d.nlang && o < sizeof data_summary; l++)
        o += (size_t)snprintf(data_summary + o, sizeof data_summary - o, "%s%s %lld%s", l ? ", " : "", d.lang[l],
                              (long long)d.kept[l], strcmp(d.encoding[l], "utf-8") ? " latin-1" : "");
    if (o < sizeof data_summary)
        snprintf(data_summary + o, sizeof data_summary - o,
                 "), %lld/%lld/%lld words train/val/test, vocabulary %d, %lld cross-list duplicates dropped, "
                 "%lld truncated to %d tokens",
                 (long long)d.count[0], (long long)d.count[1], (long long)d.count[2], d.vocab,
                 (long long)d.duplicates, (long long)d.truncated, d.max_len);
    octav_langid_free(&d);
    if (!ok) { octav_dataset_free(train); octav_dataset_free(val); octav_dataset_free(test); }
    return ok;
}

void run_mlm_mask(const run_config *c, float *xb, int32_t *labels, const int64_t *ids, int64_t n, uint64_t seed,
                  int32_t *tmp) {
    int64_t cnt = n * c->max_len;
    for (int64_t i = 0; i < cnt; i++) tmp[i] = (int32_t)xb[i];
    octav_langid_mask(tmp, ids, n, c->max_len, c->vocab, 0.15, seed, tmp, labels);
    for (int64_t i = 0; i < cnt; i++) xb[i] = (float)tmp[i];
}

int32_t *run_mlm_mask_set(const run_config *c, octav_dataset *ds, uint64_t seed) {
    int64_t cnt = ds->n * c->max_len;
    int32_t *lab = malloc((size_t)(cnt ? cnt : 1) * sizeof(int32_t)), *tmp = malloc((size_t)(cnt ? cnt : 1) * sizeof(int32_t));
    int64_t *ids = malloc((size_t)(ds->n ? ds->n : 1) * sizeof(int64_t));
    if (lab && tmp && ids) {
        for (int64_t i = 0; i < ds->n; i++) ids[i] = i;
        run_mlm_mask(c, ds->images, lab, ids, ds->n, seed, tmp);
    } else {
        free(lab);
        lab = NULL;
    }
    free(tmp);
    free(ids);
    return lab;
}

/* "cifar10:DIR" reads the CIFAR-10 binary batches of DIR, "langid[:DIR]"
 * the word lists; anything else is an MNIST-layout IDX directory. */
int run_load_data(run_config *c, octav_dataset *train, octav_dataset *val, octav_dataset *test) {
    octav_status st;
    memset(train, 0, sizeof *train);
    memset(val, 0, sizeof *val);
    memset(test, 0, sizeof *test);
    if (run_is_langid(c)) return load_langid(c, train, val, test);
    if (strncmp(c->data, "cifar10:", 8) == 0) {
        const char *dir = c->data + 8;
        char paths[6][4200];
        const char *files[5];
        for (int i = 0; i < 5; i++) {
            snprintf(paths[i], sizeof paths[i], "%s/data_batch_%d.bin", dir, i + 1);
            files[i] = paths[i];
        }
        snprintf(paths[5], sizeof paths[5], "%s/test_batch.bin", dir);
        const char *tf[1] = {paths[5]};
        st = octav_dataset_load_cifar10(files, 5, train);
        if (!st) st = octav_dataset_load_cifar10(tf, 1, test);
    } else {
        st = octav_dataset_load_mnist_dir(c->data, 1, train);
        if (!st) st = octav_dataset_load_mnist_dir(c->data, 0, test);
    }
    if (st) {
        octav_dataset_free(train);
        octav_dataset_free(test);
        if (st == OCTAV_ENOTFOUND && strcmp(c->data, FASHION_DIR) == 0)
            cli_errorf("%s (install it with: apt-get install dataset-fashion-mnist)", octav_last_error());
        else
            cli_error("data");
        return 0;
    }
    return 1;
}

int run_build_model(const run_config *c, int ch, int h, int w, int nclasses, octav_model **out) {
    octav_model_options mo = octav_model_options_default();
    mo.width = (float)c->width;
    mo.dropout = (float)c->dropout;
    mo.tf_dropout = (float)c->dropout;
    mo.vocab = c->vocab;
    mo.dim = c->dim;
    mo.heads = c->heads;
    mo.layers = c->layers;
    mo.mlp = c->mlp;
    if (octav_model_zoo(run_zoo_name(c), ch, h, w, nclasses, &mo, out)) { cli_error("model"); return 0; }
    if (c->bits > 0 && c->bits < 32) {
        octav_qat_config q = octav_qat_default();
        q.bits = c->bits;
        q.first_last_bits = c->first_last_bits;
        q.calib_batches = c->calib_batches;
        octav_granularity g = OCTAV_GRAN_TENSOR;
        /* "channel": conv weights per output channel; transformer linear
         * weights per output feature (the paper's BERT recipe) */
        if (octav_granularity_parse(c->weight_gran, &g) == OCTAV_OK && g == OCTAV_GRAN_TENSOR)
            q.conv_weight_gran = OCTAV_GRAN_TENSOR;
        if (run_is_transformer(c) && g == OCTAV_GRAN_CHANNEL) q.linear_weight_gran = OCTAV_GRAN_CHANNEL;
        if (octav_qat_parse_clip(c->clip, &q) || octav_qat_parse_grad(c->grad, &q) ||
            octav_granularity_parse(c->weight_gran, &g) || g == OCTAV_GRAN_BLOCK ||
            octav_model_set_qat(*out, &q)) {
            if (octav_granularity_parse(c->weight_gran, &g) == OCTAV_OK && g == OCTAV_GRAN_BLOCK)
                cli_errorf("--weight-granularity: expected channel or tensor");
            else
                cli_error("quantization");
            octav_model_destroy(*out);
            *out = NULL;
            return 0;
        }
        (void)g;
    }
    return 1;
}

int run_config_check(const run_config *c) {
    int known = 0;
    for (int i = 0; octav_model_names[i]; i++) known |= strcmp(c->model, octav_model_names[i]) == 0;
    if (!known || strcmp(c->model, "transformer-mlm") == 0) {
        cli_errorf("--model '%s': expected mlp, cnn, resnet20, mobilenetv2 or transformer", c->model);
        return 0;
    }
    if (run_is_transformer(c) != run_is_langid(c)) {
        cli_errorf(run_is_transformer(c) ? "--model transformer: needs --data langid (token data)"
                                         : "--data langid: token data needs --model transformer");
        return 0;
    }
    if (strcmp(c->task, "classify") != 0 && strcmp(c->task, "mlm") != 0) {
        cli_errorf("--task '%s': expected classify or mlm", c->task);
        return 0;
    }
    if (strcmp(c->task, "mlm") == 0 && !run_is_transformer(c)) { cli_errorf("--task mlm: needs --model transformer"); return 0; }
    if (c->dim < 1 || c->dim > 4096 || c->heads < 1 || c->dim % c->heads || c->layers < 1 || c->layers > 64 ||
        c->mlp < 0 || c->mlp > 65536) {
        cli_errorf("--dim %d / --heads %d / --layers %d / --mlp %d: need dim 1..4096 divisible by heads, 1..64 layers",
                   c->dim, c->heads, c->layers, c->mlp);
        return 0;
    }
    if (c->max_len < 2 || c->max_len > 512) { cli_errorf("--max-len %d: expected 2..512", c->max_len); return 0; }
    if (c->words_per_lang < 0) { cli_errorf("--words-per-lang: expected >= 0"); return 0; }
    if (c->bits != 32 && (c->bits < 2 || c->bits > 8)) { cli_errorf("--bits %d: expected 2..8, or 32 for float", c->bits); return 0; }
    if (c->first_last_bits < 2 || c->first_last_bits > 16) { cli_errorf("--first-last-bits %d: expected 2..16", c->first_last_bits); return 0; }
    if (c->batch < 1 || c->batch > 65536) { cli_errorf("--batch %lld: expected 1..65536", (long long)c->batch); return 0; }
    if (!(c->lr > 0 && c->lr < 100)) { cli_errorf("--lr %g: expected a positive number below 100", c->lr); return 0; }
    if (!(c->momentum >= 0 && c->momentum < 1)) { cli_errorf("--momentum %g: expected [0, 1)", c->momentum); return 0; }
    if (!(c->weight_decay >= 0 && c->weight_decay < 1)) { cli_errorf("--weight-decay %g: expected [0, 1)", c->weight_decay); return 0; }
    if (!(c->label_smoothing >= 0 && c->label_smoothing < 1)) { cli_errorf("--label-smoothing %g: expected [0, 1)", c->label_smoothing); return 0; }
    if (!(c->grad_clip >= 0)) { cli_errorf("--grad-clip %g: expected >= 0", c->grad_clip); return 0; }
    if (!(c->width > 0 && c->width <= 4)) { cli_errorf("--width %g: expected (0, 4]", c->width); return 0; }
    if (!(c->dropout >= 0 && c->dropout < 1)) { cli_errorf("--dropout %g: expected [0, 1)", c->dropout); return 0; }
    if (!(c->warmup >= 0) || c->warmup > c->epochs) { cli_errorf("--warmup %g: expected 0..epochs", c->warmup); return 0; }
    if (c->epochs < 1) { cli_errorf("--epochs %d: expected at least 1", c->epochs); return 0; }
    if (c->aug_pad < 0 || c->aug_pad > 8) { cli_errorf("--augment pad %d: expected 0..8", c->aug_pad); return 0; }
    if (c->calib_batches < 1) { cli_errorf("--calib-batches %d: expected at least 1", c->calib_batches); return 0; }
    octav_qat_config q = octav_qat_default();
    if (octav_qat_parse_clip(c->clip, &q) || octav_qat_parse_grad(c->grad, &q)) { cli_error("option"); return 0; }
    octav_granularity g;
    if (octav_granularity_parse(c->weight_gran, &g) || g == OCTAV_GRAN_BLOCK) {
        cli_errorf("--weight-granularity '%s': expected channel or tensor", c->weight_gran);
        return 0;
    }
    return 1;
}

/* ---- checkpoint metadata ------------------------------------------------------ */
const char *run_meta_get(const octav_safetensors *st, const char *key) {
    for (int i = 0; i < st->nmeta; i++)
        if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value;
    return NULL;
}

void run_norm_format(const float *mean, const float *std, int c, char *buf, size_t cap) {
    size_t o = 0;
    for (int i = 0; i < c && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%s%.9g", i ? "," : "", (double)mean[i]);
    if (o < cap) o += (size_t)snprintf(buf + o, cap - o, ";");
    for (int i = 0; i < c && o < cap; i++) o += (size_t)snprintf(buf + o, cap - o, "%s%.9g", i ? "," : "", (double)std[i]);
}

int run_norm_parse(const char *s, float *mean, float *std, int c) {
    const char *p = s;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < c; i++) {
            char *end;
            double v = strtod(p, &end);
            if (end == p || !isfinite(v) || (k == 1 && !(v > 0))) return 0;
            (k ? std : mean)[i] = (float)v;
            char want = i < c - 1 ? ',' : (k == 0 ? ';' : 0);
            if (*end != want) return 0;
            p = end + (want ? 1 : 0);
        }
    return 1;
}

/* ---- per-layer quantization --------------------------------------------------- */
cJSON *run_quant_json(octav_model *m) {
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < octav_model_num_quantizers(m); i++) {
        octav_quant_report r;
        cJSON *q = cJSON_CreateObject();
        if (!q || octav_model_quantizer(m, i, 1, &r)) {
            cJSON_Delete(q);
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddStringToObject(q, "layer", r.node);
        cJSON_AddStringToObject(q, "tensor", r.operand);
        cJSON_AddNumberToObject(q, "bits", r.bits);
        cJSON_AddStringToObject(q, "grid", octav_grid_name(r.grid));
        cJSON_AddNumberToObject(q, "groups", (double)r.ngroups);
        cJSON_AddNumberToObject(q, "scale", r.scale);
        if (isfinite(r.clipped_fraction)) cJSON_AddNumberToObject(q, "clipped_fraction", r.clipped_fraction);
        if (isfinite(r.sqnr_db)) cJSON_AddNumberToObject(q, "sqnr_db", r.sqnr_db);
        if (isfinite(r.mean_iterations)) cJSON_AddNumberToObject(q, "octav_iterations", r.mean_iterations);
        cJSON_AddItemToArray(arr, q);
    }
    return arr;
}

/* ---- progress ---------------------------------------------------------------- */
double run_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(double s, char *buf, size_t cap) {
    if (!(s >= 0) || s > 360000) { snprintf(buf, cap, "--:--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(buf, cap, "%ld:%02ld", t / 60, t % 60);
}

void progress_init(progress *p, int quiet) {
    memset(p, 0, sizeof *p);
    p->tty = isatty(STDERR_FILENO);
    p->quiet = quiet;
    p->unit = "img";
}

void progress_update(progress *p, int epoch, int epochs, int64_t step, int64_t steps, double loss,
                     double acc, double ips, double eta, int final) {
    if (p->quiet) return;
    double now = run_now();
    char e[32];
    fmt_time(eta, e, sizeof e);
    if (p->tty) {
        if (!final && now - p->last < 0.1) return;
        p->last = now;
        int width = 24, fill = steps > 0 ? (int)(width * step / steps) : width;
        char bar[32];
        for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
        bar[width] = 0;
        fprintf(stderr, "\repoch %d/%d [%s] %lld/%lld loss %.4f acc %5.2f%% %6.0f %s/s ETA %s\033[K",
                epoch, epochs, bar, (long long)step, (long long)steps, loss, 100 * acc, ips, p->unit, e);
        if (final) fputc('\n', stderr);
    } else {
        /* plain lines: about every 10% of an epoch, and at its end */
        int64_t every = steps / 10 > 0 ? steps / 10 : 1;
        if (!final && step % every != 0) return;
        fprintf(stderr, "epoch %d/%d step %lld/%lld loss %.4f acc %.2f%% %.0f %s/s ETA %s\n", epoch, epochs,
                (long long)step, (long long)steps, loss, 100 * acc, ips, p->unit, e);
    }
    fflush(stderr);
}
