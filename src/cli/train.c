/* train.c -- `octav train`: float training or quantization-aware training
 * (OCTAV or a baseline clipping method, STE/PWL/MAD gradients) of a
 * built-in model on an image dataset, with a progress bar on stderr, a
 * JSONL log, atomic safetensors checkpoints every epoch, --resume that
 * continues bit for bit (same thread count), and a summary on stdout. */
#define _POSIX_C_SOURCE 200809L
#include "cli/run.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cli_train_usage(FILE *f) {
    fprintf(f,
            "usage: octav train [options]\n"
            "\n"
            "Trains a built-in model on an image dataset, in float or with\n"
            "quantization-aware training (every conv/linear weight and input fake-\n"
            "quantized, clipping scalars from OCTAV re-solved at every step by default).\n"
            "\n"
            "model and data:\n"
            "  --model NAME          mlp, cnn (default), resnet20, mobilenetv2, transformer\n"
            "  --width X             mobilenetv2 width multiplier (default 1.0)\n"
            "  --dropout P           dropout before the classifier (cnn/mlp 0.25,\n"
            "                        transformer 0.1 on embeddings and residual branches)\n"
            "  --data DIR            MNIST-layout IDX directory (default: Fashion-MNIST,\n"
            "                        /usr/share/datasets/fashion-mnist), cifar10:DIR\n"
            "                        (CIFAR-10 binary batches), or langid[:DIR] (language\n"
            "                        of a word, Debian's word lists in /usr/share/dict)\n"
            "  --val N               validation images split off the training set (5000;\n"
            "                        langid has its own validation split)\n"
            "  --limit N             train on the first N images of the split only\n"
            "  --augment PAD[,flip]  random shifts up to PAD pixels (+ horizontal flips)\n"
            "\n"
            "transformer (--model transformer --data langid):\n"
            "  --task T              classify (default) or mlm: masked-character\n"
            "                        pretraining (also `octav pretrain`); fine-tune with\n"
            "                        --init on the mlm checkpoint\n"
            "  --dim D --heads H     width (128) and attention heads (4)\n"
            "  --layers N --mlp F    blocks (4) and MLP hidden units (4 * dim)\n"
            "  --langs LIST          languages (default all 12: english, french, german,\n"
            "                        italian, spanish, portuguese, dutch, swedish, polish,\n"
            "                        danish, norwegian, catalan)\n"
            "  --words-per-lang N    words sampled per language (20000; 0 = all)\n"
            "  --max-len L           tokens per word incl. [CLS] (24; longer truncated)\n"
            "  Transformer defaults: adamw, linear schedule, warmup 0.1 epoch, grad clip\n"
            "  1, linear weights per output feature, every layer at --bits.\n"
            "\n");
    fprintf(f,
            "optimisation:\n"
            "  --epochs N            default 10 (mobilenetv2 15; with --init 2)\n"
            "  --batch N             default 128\n"
            "  --optimizer O         sgd (default; momentum 0.9, Nesterov) or adamw\n"
            "  --lr X                default 0.05 (sgd) / 1e-3 (adamw); x0.1 with --init\n"
            "  --schedule S          cosine (default), step (x0.1 at 1/2 and 3/4... every\n"
            "                        third of the run), linear, constant\n"
            "  --warmup E            epochs of linear warmup (default 0)\n"
            "  --momentum X          SGD momentum (0.9); --no-nesterov for plain momentum\n"
            "  --weight-decay X      on conv/linear weights (sgd 5e-4, mobilenetv2 4e-5,\n"
            "                        adamw 0.01)\n"
            "  --label-smoothing X   default 0\n"
            "  --grad-clip X         clip the global gradient norm (default off)\n"
            "  --seed N              initialisation, data order, dropout (default 1)\n"
            "  --threads N           threads (default: all cores); results depend on it\n"
            "\n"
            "quantization:\n"
            "  --bits B              2..8 for QAT, 32 for float (default 32)\n"
            "  --first-last-bits B   first conv and last linear layer (default 8)\n"
            "  --clip METHOD         octav (dynamic, default), static-octav, max,\n"
            "                        percentile[-P], mse-sweep (static), static-<method>,\n"
            "                        pact, lsq\n"
            "  --grad EST            mad-pwl (default: MAD weights, PWL inputs), mad, pwl, ste\n"
            "  --weight-granularity  channel (default; conv weights per output channel,\n"
            "                        linear per tensor) or tensor\n"
            "  --calib-batches N     batches averaged by static calibration (default 10)\n"
            "\n"
            "files:\n"
            "  --init CKPT           start from a (float) checkpoint: QAT retraining\n"
            "  --out CKPT            checkpoint written at the end of every epoch\n"
            "  --log FILE            JSONL log: per-step loss, per-epoch metrics and\n"
            "                        per-layer clipping scalars; last line {\"event\": \"final\"}\n"
            "  --log-quant-every N   also log every quantizer's scalar, clipped fraction\n"
            "                        and SQNR every N steps (scalar trajectories)\n"
            "  --resume CKPT         continue a run from its checkpoint, bit for bit with the\n"
            "                        same --threads (a larger --epochs extends it, and\n"
            "                        changes the learning-rate schedule from there on)\n"
            "  --stop-after E        stop after E epochs of this invocation (the schedule\n"
            "                        still spans --epochs); continue with --resume\n"
            "  -q, --quiet           no progress bar\n"
            "  -h, --help            show this help\n"
            "\n"
            "Exit status: 0 success, 1 runtime error (missing data, NaN loss, I/O), 2 usage.\n");
}

enum {
    O_MODEL = 256, O_WIDTH, O_DROPOUT, O_DATA, O_VAL, O_LIMIT, O_AUGMENT, O_EPOCHS, O_BATCH, O_OPTIM, O_LR,
    O_SCHED, O_WARMUP, O_MOMENTUM, O_NONESTEROV, O_WD, O_LS, O_GCLIP, O_SEED, O_THREADS, O_BITS, O_FLBITS,
    O_CLIP, O_GRAD, O_WGRAN, O_CALIB, O_INIT, O_OUT, O_LOG, O_RESUME, O_STOP, O_TASK, O_DIM, O_HEADS, O_LAYERS,
    O_MLP, O_LANGS, O_WPL, O_MAXLEN, O_QEVERY
};

static const struct option LONGOPTS[] = {
    {"model", required_argument, 0, O_MODEL},       {"width", required_argument, 0, O_WIDTH},
    {"dropout", required_argument, 0, O_DROPOUT},   {"data", required_argument, 0, O_DATA},
    {"val", required_argument, 0, O_VAL},           {"limit", required_argument, 0, O_LIMIT},
    {"augment", required_argument, 0, O_AUGMENT},   {"epochs", required_argument, 0, O_EPOCHS},
    {"batch", required_argument, 0, O_BATCH},       {"optimizer", required_argument, 0, O_OPTIM},
    {"lr", required_argument, 0, O_LR},             {"schedule", required_argument, 0, O_SCHED},
    {"warmup", required_argument, 0, O_WARMUP},     {"momentum", required_argument, 0, O_MOMENTUM},
    {"no-nesterov", no_argument, 0, O_NONESTEROV},  {"weight-decay", required_argument, 0, O_WD},
    {"label-smoothing", required_argument, 0, O_LS}, {"grad-clip", required_argument, 0, O_GCLIP},
    {"seed", required_argument, 0, O_SEED},         {"threads", required_argument, 0, O_THREADS},
    {"bits", required_argument, 0, O_BITS},         {"first-last-bits", required_argument, 0, O_FLBITS},
    {"clip", required_argument, 0, O_CLIP},         {"grad", required_argument, 0, O_GRAD},
    {"weight-granularity", required_argument, 0, O_WGRAN}, {"calib-batches", required_argument, 0, O_CALIB},
    {"init", required_argument, 0, O_INIT},         {"out", required_argument, 0, O_OUT},
    {"log", required_argument, 0, O_LOG},           {"resume", required_argument, 0, O_RESUME},
    {"stop-after", required_argument, 0, O_STOP},   {"task", required_argument, 0, O_TASK},
    {"dim", required_argument, 0, O_DIM},           {"heads", required_argument, 0, O_HEADS},
    {"layers", required_argument, 0, O_LAYERS},     {"mlp", required_argument, 0, O_MLP},
    {"langs", required_argument, 0, O_LANGS},       {"words-per-lang", required_argument, 0, O_WPL},
    {"max-len", required_argument, 0, O_MAXLEN},   {"log-quant-every", required_argument, 0, O_QEVERY},
    {"quiet", no_argument, 0, 'q'},                 {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

static int parse_double(const char *s, double *out) {
    char *end = NULL;
    double v = strtod(s, &end);
    if (!s[0] || !end || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int set_str(char *dst, size_t cap, const char *src, const char *opt) {
    if (strlen(src) >= cap) { cli_errorf("%s: value too long", opt); return 0; }
    snprintf(dst, cap, "%s", src);
    return 1;
}

typedef struct {
    run_config cfg;
    char out[4096], log[4096], resume[4096];
    int threads, quiet, stop_after, quant_every;
    unsigned char given[64];   /* option ids given on the command line */
} train_args;

/* Parses argv into a; returns -1 ok, else the exit code. */
static int parse_args(int argc, char **argv, train_args *a) {
    run_config *c = &a->cfg;
    long v;
    double d;
    optind = 1;
    int opt;
    while ((opt = getopt_long(argc, argv, "qh", LONGOPTS, NULL)) != -1) {
        if (opt >= O_MODEL && opt - O_MODEL < 64) a->given[opt - O_MODEL] = 1;
        const char *name = NULL;
        for (int i = 0; LONGOPTS[i].name; i++)
            if (LONGOPTS[i].val == opt) name = LONGOPTS[i].name;
        char oname[48];
        snprintf(oname, sizeof oname, "--%s", name ? name : "?");
        switch (opt) {
        case 'h': cli_train_usage(stdout); return EXIT_OK;
        case 'q': a->quiet = 1; break;
        case O_MODEL: if (!set_str(c->model, sizeof c->model, optarg, oname)) return EXIT_USAGE; break;
        case O_DATA: if (!set_str(c->data, sizeof c->data, optarg, oname)) return EXIT_USAGE; break;
        case O_INIT: if (!set_str(c->init, sizeof c->init, optarg, oname)) return EXIT_USAGE; break;
        case O_OUT: if (!set_str(a->out, sizeof a->out, optarg, oname)) return EXIT_USAGE; break;
        case O_LOG: if (!set_str(a->log, sizeof a->log, optarg, oname)) return EXIT_USAGE; break;
        case O_RESUME: if (!set_str(a->resume, sizeof a->resume, optarg, oname)) return EXIT_USAGE; break;
        case O_CLIP: if (!set_str(c->clip, sizeof c->clip, optarg, oname)) return EXIT_USAGE; break;
        case O_GRAD: if (!set_str(c->grad, sizeof c->grad, optarg, oname)) return EXIT_USAGE; break;
        case O_WGRAN: if (!set_str(c->weight_gran, sizeof c->weight_gran, optarg, oname)) return EXIT_USAGE; break;
        case O_TASK: if (!set_str(c->task, sizeof c->task, optarg, oname)) return EXIT_USAGE; break;
        case O_LANGS: if (!set_str(c->langs, sizeof c->langs, optarg, oname)) return EXIT_USAGE; break;
        case O_DIM: case O_HEADS: case O_LAYERS: case O_MLP: case O_MAXLEN:
            if (!cli_parse_int(optarg, opt == O_MLP ? 0 : 1, 65536, &v)) {
                cli_errorf("%s '%s': expected %s..65536", oname, optarg, opt == O_MLP ? "0" : "1");
                return EXIT_USAGE;
            }
            if (opt == O_DIM) c->dim = (int)v;
            else if (opt == O_HEADS) c->heads = (int)v;
            else if (opt == O_LAYERS) c->layers = (int)v;
            else if (opt == O_MLP) c->mlp = (int)v;
            else c->max_len = (int)v;
            break;
        case O_WPL:
            if (!cli_parse_int(optarg, 0, 1000000000, &v)) { cli_errorf("--words-per-lang '%s': expected >= 0", optarg); return EXIT_USAGE; }
            c->words_per_lang = v; break;
        case O_EPOCHS:
            if (!cli_parse_int(optarg, 1, 100000, &v)) { cli_errorf("--epochs '%s': expected 1..100000", optarg); return EXIT_USAGE; }
            c->epochs = (int)v; break;
        case O_BATCH:
            if (!cli_parse_int(optarg, 1, 65536, &v)) { cli_errorf("--batch '%s': expected 1..65536", optarg); return EXIT_USAGE; }
            c->batch = v; break;
        case O_VAL:
            if (!cli_parse_int(optarg, 0, 1000000000, &v)) { cli_errorf("--val '%s': expected a count >= 0", optarg); return EXIT_USAGE; }
            c->val = v; break;
        case O_LIMIT:
            if (!cli_parse_int(optarg, 1, 1000000000, &v)) { cli_errorf("--limit '%s': expected a count >= 1", optarg); return EXIT_USAGE; }
            c->limit = v; break;
        case O_SEED:
            if (!cli_parse_int(optarg, 0, 2147483647L, &v)) { cli_errorf("--seed '%s': expected 0..2^31-1", optarg); return EXIT_USAGE; }
            c->seed = (uint64_t)v; break;
        case O_THREADS:
            if (!cli_parse_int(optarg, 1, 1024, &v)) { cli_errorf("--threads '%s': expected 1..1024", optarg); return EXIT_USAGE; }
            a->threads = (int)v; break;
        case O_BITS:
            if (!cli_parse_int(optarg, 1, 64, &v)) { cli_errorf("--bits '%s': expected 2..8 or 32", optarg); return EXIT_USAGE; }
            c->bits = (int)v; break;
        case O_FLBITS:
            if (!cli_parse_int(optarg, 1, 64, &v)) { cli_errorf("--first-last-bits '%s': expected 2..16", optarg); return EXIT_USAGE; }
            c->first_last_bits = (int)v; break;
        case O_QEVERY:
            if (!cli_parse_int(optarg, 1, 1000000000, &v)) { cli_errorf("--log-quant-every '%s': expected >= 1", optarg); return EXIT_USAGE; }
            a->quant_every = (int)v; break;
        case O_STOP:
            if (!cli_parse_int(optarg, 1, 100000, &v)) { cli_errorf("--stop-after '%s': expected >= 1", optarg); return EXIT_USAGE; }
            a->stop_after = (int)v; break;
        case O_CALIB:
            if (!cli_parse_int(optarg, 1, 100000, &v)) { cli_errorf("--calib-batches '%s': expected >= 1", optarg); return EXIT_USAGE; }
            c->calib_batches = (int)v; break;
        case O_AUGMENT: {
            char *end = NULL;
            long pad = strtol(optarg, &end, 10);
            if (end == optarg || pad < 0 || pad > 8 || (*end && strcmp(end, ",flip") != 0)) {
                cli_errorf("--augment '%s': expected PAD or PAD,flip with PAD in 0..8", optarg);
                return EXIT_USAGE;
            }
            c->aug_pad = (int)pad;
            c->aug_flip = *end != 0;
            break;
        }
        case O_OPTIM:
            if (strcmp(optarg, "sgd") == 0) c->optimizer = OCTAV_OPTIM_SGD;
            else if (strcmp(optarg, "adamw") == 0) c->optimizer = OCTAV_OPTIM_ADAMW;
            else { cli_errorf("--optimizer '%s': expected sgd or adamw", optarg); return EXIT_USAGE; }
            break;
        case O_SCHED:
            if (octav_sched_parse(optarg, &c->sched)) { cli_error("--schedule"); return EXIT_USAGE; }
            break;
        case O_NONESTEROV: c->nesterov = 0; break;
        case O_LR: case O_WARMUP: case O_MOMENTUM: case O_WD: case O_LS: case O_GCLIP: case O_WIDTH: case O_DROPOUT:
            if (!parse_double(optarg, &d)) { cli_errorf("%s '%s': expected a number", oname, optarg); return EXIT_USAGE; }
            /* -1 means "the default" inside run_config: refuse it from users */
            if ((opt == O_LR && !(d > 0)) || (opt != O_LR && d < 0)) {
                cli_errorf("%s '%s': expected a %s number", oname, optarg, opt == O_LR ? "positive" : "non-negative");
                return EXIT_USAGE;
            }
            if (opt == O_LR) c->lr = d;
            else if (opt == O_WARMUP) c->warmup = d;
            else if (opt == O_MOMENTUM) c->momentum = d;
            else if (opt == O_WD) c->weight_decay = d;
            else if (opt == O_LS) c->label_smoothing = d;
            else if (opt == O_GCLIP) c->grad_clip = d;
            else if (opt == O_WIDTH) c->width = d;
            else c->dropout = d;
            break;
        default: cli_train_usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind < argc) { cli_errorf("unexpected argument '%s' (try 'octav train --help')", argv[optind]); return EXIT_USAGE; }
    return -1;
}

/* Appends one JSON object as a line of the log. */
static int log_line(FILE *log, cJSON *o) {
    if (!o) return 0;
    int ok = 1;
    if (log) {
        char *s = cJSON_PrintUnformatted(o);
        ok = s && fprintf(log, "%s\n", s) > 0 && fflush(log) == 0;
        free(s);
    }
    cJSON_Delete(o);
    return ok;
}

typedef struct {
    octav_dataset train, val, test;
    float mean[4], std[4];
    int32_t *val_pos, *test_pos;   /* mlm: per-position labels of the masked sets */
} data_t;

static void data_free(data_t *d) {
    octav_dataset_free(&d->train);
    octav_dataset_free(&d->val);
    octav_dataset_free(&d->test);
    free(d->val_pos);
    free(d->test_pos);
    d->val_pos = d->test_pos = NULL;
}

/* Loads, splits and normalises; normalisation from `norm` (a checkpoint's)
 * when given, else from the training split. */
static int prepare_data(run_config *c, const char *norm, data_t *d) {
    memset(d, 0, sizeof *d);
    octav_dataset all;
    if (run_is_langid(c)) {   /* token ids: no normalisation, the corpus's own splits */
        if (!run_load_data(c, &d->train, &d->val, &d->test)) return 0;
        if (c->limit > 0 && c->limit < d->train.n) d->train.n = c->limit;
        d->mean[0] = 0.0f;
        d->std[0] = 1.0f;
        if (strcmp(c->task, "mlm") == 0) {
            d->val_pos = run_mlm_mask_set(c, &d->val, RUN_MLM_VAL_SEED);
            d->test_pos = run_mlm_mask_set(c, &d->test, RUN_MLM_TEST_SEED);
            if (!d->val_pos || !d->test_pos) { cli_errorf("out of memory"); data_free(d); return 0; }
        }
        return 1;
    }
    octav_dataset unused;
    if (!run_load_data(c, &all, &unused, &d->test)) return 0;
    if (all.c > 4) { cli_errorf("data: %lld channels (at most 4)", (long long)all.c); goto fail; }
    if (c->val >= all.n) { cli_errorf("--val %lld: the training set has only %lld images", (long long)c->val, (long long)all.n); goto fail; }
    if (octav_dataset_split(&all, c->val, c->seed, &d->train, &d->val)) { cli_error("data"); goto fail; }
    octav_dataset_free(&all);
    if (c->limit > 0 && c->limit < d->train.n) d->train.n = c->limit;
    if (norm) {
        if (!run_norm_parse(norm, d->mean, d->std, (int)d->train.c)) {
            cli_errorf("checkpoint: bad octav.normalize metadata '%s'", norm);
            data_free(d);
            return 0;
        }
    } else {
        octav_dataset_stats(&d->train, d->mean, d->std);
    }
    octav_dataset_normalize(&d->train, d->mean, d->std);
    if (d->val.n) octav_dataset_normalize(&d->val, d->mean, d->std);
    octav_dataset_normalize(&d->test, d->mean, d->std);
    return 1;
fail:
    octav_dataset_free(&all);
    octav_dataset_free(&d->test);
    return 0;
}

int cli_train(int argc, char **argv) {
    train_args a;
    memset(&a, 0, sizeof a);
    run_config_defaults(&a.cfg);
    int rc = parse_args(argc, argv, &a);
    if (rc >= 0) return rc;
    run_config *c = &a.cfg;
    int start_epoch = 0;
    char norm_buf[256] = "";
    const char *norm = NULL;

    if (a.resume[0]) {
        /* everything but these comes from the checkpoint */
        static const int may_change[] = {O_EPOCHS, O_OUT, O_LOG, O_THREADS, O_DATA, O_RESUME, O_STOP, O_QEVERY};
        for (int i = 0; i < 64; i++) {
            if (!a.given[i]) continue;
            int ok = 0;
            for (size_t k = 0; k < sizeof may_change / sizeof *may_change; k++) ok |= may_change[k] == O_MODEL + i;
            if (!ok) {
                for (int j = 0; LONGOPTS[j].name; j++)
                    if (LONGOPTS[j].val == O_MODEL + i)
                        cli_errorf("--%s cannot be given with --resume (the run's configuration is in the checkpoint)",
                                   LONGOPTS[j].name);
                return EXIT_USAGE;
            }
        }
        octav_safetensors st;
        if (octav_safetensors_read(a.resume, &st)) { cli_error("--resume"); return EXIT_FAIL; }
        const char *cfg = run_meta_get(&st, "octav.config"), *ep = run_meta_get(&st, "octav.epoch");
        const char *nm = run_meta_get(&st, "octav.normalize");
        run_config saved;
        int ok = cfg && ep && nm && run_config_from_json(cfg, &saved) && strlen(nm) < sizeof norm_buf;
        if (ok) {
            start_epoch = atoi(ep);
            snprintf(norm_buf, sizeof norm_buf, "%s", nm);
            norm = norm_buf;
            if (a.given[O_EPOCHS - O_MODEL]) saved.epochs = c->epochs;
            if (a.given[O_DATA - O_MODEL]) snprintf(saved.data, sizeof saved.data, "%s", c->data);
            *c = saved;
        }
        octav_safetensors_free(&st);
        if (!ok) { cli_errorf("--resume %s: not an octav training checkpoint (config metadata missing)", a.resume); return EXIT_FAIL; }
        if (start_epoch >= c->epochs) {
            cli_errorf("--resume: the run already has %d of %d epochs (give a larger --epochs)", start_epoch, c->epochs);
            return EXIT_USAGE;
        }
    }
    int trunk = 0;   /* --init from a checkpoint of another task: load the shared tensors */
    if (!a.resume[0] && c->init[0]) {
        octav_safetensors st;
        if (octav_safetensors_read(c->init, &st)) { cli_error("--init"); return EXIT_FAIL; }
        const char *nm = run_meta_get(&st, "octav.normalize"), *cfg = run_meta_get(&st, "octav.config");
        if (nm && strlen(nm) < sizeof norm_buf) { snprintf(norm_buf, sizeof norm_buf, "%s", nm); norm = norm_buf; }
        run_config ic;
        if (cfg && run_config_from_json(cfg, &ic) && run_is_transformer(c) && run_is_transformer(&ic)) {
            /* the architecture and corpus of the pretrained model, unless given */
            if (!a.given[O_DIM - O_MODEL]) c->dim = ic.dim;
            if (!a.given[O_HEADS - O_MODEL]) c->heads = ic.heads;
            if (!a.given[O_LAYERS - O_MODEL]) c->layers = ic.layers;
            if (!a.given[O_MLP - O_MODEL]) c->mlp = ic.mlp;
            if (!a.given[O_LANGS - O_MODEL]) snprintf(c->langs, sizeof c->langs, "%s", ic.langs);
            if (!a.given[O_WPL - O_MODEL]) c->words_per_lang = ic.words_per_lang;
            if (!a.given[O_MAXLEN - O_MODEL]) c->max_len = ic.max_len;
            c->vocab = ic.vocab;   /* the loaded corpus must agree */
            trunk = strcmp(ic.task, c->task) != 0;
        }
        octav_safetensors_free(&st);
    }
    if (!a.resume[0] && run_is_transformer(c)) {   /* the transformer recipe's defaults */
        if (!a.given[O_OPTIM - O_MODEL]) c->optimizer = OCTAV_OPTIM_ADAMW;
        if (!a.given[O_SCHED - O_MODEL]) c->sched = OCTAV_SCHED_LINEAR;
        if (!a.given[O_GCLIP - O_MODEL]) c->grad_clip = 1.0;
        if (!a.given[O_WARMUP - O_MODEL]) c->warmup = 0.1;
        if (!a.given[O_FLBITS - O_MODEL]) c->first_last_bits = c->bits < 32 ? c->bits : 8;
        if (!a.given[O_EPOCHS - O_MODEL]) c->epochs = c->init[0] ? 2 : 5;
    }
    run_config_finish(c);
    if (!run_config_check(c)) return EXIT_USAGE;
    if (a.threads) octav_set_threads(a.threads);
    int threads = octav_get_threads();

    data_t d;
    if (!prepare_data(c, run_is_langid(c) ? NULL : norm, &d)) return EXIT_FAIL;
    const int mlm = strcmp(c->task, "mlm") == 0;
    const int64_t pos = mlm ? c->max_len : 1;   /* labels per sample */
    const int32_t *val_labels = mlm ? d.val_pos : d.val.labels, *test_labels = mlm ? d.test_pos : d.test.labels;
    int64_t per = d.train.c * d.train.h * d.train.w;
    if (d.train.n < c->batch) {
        cli_errorf("--batch %lld: larger than the %lld training images", (long long)c->batch, (long long)d.train.n);
        data_free(&d);
        return EXIT_USAGE;
    }
    octav_model *m = NULL;
    if (!run_build_model(c, (int)d.train.c, (int)d.train.h, (int)d.train.w, d.train.nclasses, &m)) {
        data_free(&d);
        return EXIT_FAIL;
    }
    int status = EXIT_FAIL;
    char *cfg_text = NULL;
    FILE *log = NULL;
    float *xb = NULL;
    int32_t *yb = NULL, *ypos = NULL, *tmp = NULL;
    int64_t *perm = NULL;
    octav_model_init(m, c->seed);
    if (a.resume[0]) {
        if (octav_model_load(m, a.resume, 1, NULL)) { cli_error("--resume"); goto done; }
    } else if (c->init[0]) {
        if (octav_model_load(m, c->init, trunk ? 2 : 0, NULL)) { cli_error("--init"); goto done; }
    }
    run_norm_format(d.mean, d.std, (int)d.train.c, norm_buf, sizeof norm_buf);

    int64_t spe = d.train.n / c->batch, total = spe * c->epochs;
    octav_train_config tc = octav_train_default();
    tc.optim = c->optimizer;
    tc.lr = c->lr;
    tc.momentum = c->momentum;
    tc.nesterov = c->nesterov && c->momentum > 0;
    tc.weight_decay = c->weight_decay;
    tc.label_smoothing = c->label_smoothing;
    tc.grad_clip = c->grad_clip;
    tc.seed = octav_hash_u64(c->seed, 0xd40u);
    tc.sched.kind = c->sched;
    tc.sched.total_steps = total;
    tc.sched.warmup_steps = (int64_t)(c->warmup * (double)spe);
    tc.sched.step_size = total / 3 > 0 ? total / 3 : 1;
    tc.sched.gamma = 0.1;
    tc.sched.min_ratio = 0.0;

    xb = malloc((size_t)(c->batch * per) * sizeof(float));
    yb = malloc((size_t)c->batch * sizeof(int32_t));
    ypos = malloc((size_t)(c->batch * pos) * sizeof(int32_t));
    tmp = malloc((size_t)(c->batch * per) * sizeof(int32_t));
    perm = malloc((size_t)d.train.n * sizeof(int64_t));
    if (!xb || !yb || !ypos || !tmp || !perm) { cli_errorf("out of memory"); goto done; }
    if (a.log[0]) {
        log = fopen(a.log, a.resume[0] ? "a" : "w");
        if (!log) { cli_errorf("--log %s: cannot open for writing", a.log); goto done; }
    }
    cJSON *cfgj = run_config_json(c);
    cfg_text = cfgj ? cJSON_PrintUnformatted(cfgj) : NULL;
    if (cfgj) {
        cJSON *start = cJSON_CreateObject();
        cJSON_AddStringToObject(start, "event", a.resume[0] ? "resume" : "start");
        cJSON_AddItemToObject(start, "config", cfgj);
        cJSON_AddNumberToObject(start, "threads", threads);
        cJSON_AddNumberToObject(start, "train_images", (double)d.train.n);
        cJSON_AddNumberToObject(start, "val_images", (double)d.val.n);
        cJSON_AddNumberToObject(start, "test_images", (double)d.test.n);
        cJSON_AddNumberToObject(start, "parameters", (double)octav_model_num_params(m));
        cJSON_AddNumberToObject(start, "start_epoch", start_epoch);
        cJSON_AddStringToObject(start, "qat", octav_model_quantized(m) ? octav_qat_clip_name(octav_model_get_qat(m)) : "float");
        if (run_is_langid(c)) cJSON_AddNumberToObject(start, "vocab", c->vocab);
        if (run_data_summary()) cJSON_AddStringToObject(start, "corpus", run_data_summary());
        if (trunk) cJSON_AddStringToObject(start, "init_trunk", c->init);
        log_line(log, start);
    }
    if (!cfg_text) { cli_errorf("out of memory"); goto done; }

    const char *qname = octav_model_quantized(m) ? octav_qat_clip_name(octav_model_get_qat(m)) : NULL;
    if (!a.quiet)
        fprintf(stderr, "octav: training %s (%lld parameters) on %lld %s (%lld validation), %s, %d epochs, batch %lld, %d threads\n",
                run_zoo_name(c), (long long)octav_model_num_params(m), (long long)d.train.n,
                run_is_langid(c) ? "words" : "images", (long long)d.val.n,
                qname ? "QAT" : "float", c->epochs, (long long)c->batch, threads);
    if (run_data_summary() && !a.quiet) fprintf(stderr, "octav: corpus: %s\n", run_data_summary());
    if (qname && !a.quiet)
        fprintf(stderr, "octav: %d-bit (first/last %d), clipping %s, gradients %s\n", c->bits, c->first_last_bits, qname, c->grad);

    /* static calibration on float activations, before any step */
    if (!octav_model_calibrated(m)) {
        octav_permutation(perm, d.train.n, octav_hash_u64(c->seed, 0xca1bu));
        for (int b = 0; b < c->calib_batches && !octav_model_calibrated(m); b++) {
            int64_t off = (b * c->batch) % (d.train.n - c->batch + 1);
            octav_batch_gather(&d.train, perm + off, c->batch, 0, 0, 0, xb, yb);
            if (mlm) run_mlm_mask(c, xb, ypos, perm + off, c->batch, octav_hash_u64(c->seed, 0xca1bu), tmp);
            if (octav_model_calibrate(m, xb, c->batch)) { cli_error("calibration"); goto done; }
        }
    }

    progress pr;
    progress_init(&pr, a.quiet);
    if (run_is_langid(c)) pr.unit = "words";
    double t_run = run_now(), t_train = 0;
    int64_t images = 0;
    int end_epoch = a.stop_after && start_epoch + a.stop_after < c->epochs ? start_epoch + a.stop_after : c->epochs;
    for (int epoch = start_epoch; epoch < end_epoch; epoch++) {
        octav_permutation(perm, d.train.n, octav_hash_u64(c->seed, 0xe90c0000u + (uint64_t)epoch));
        double t0 = run_now(), lsum = 0;
        int64_t corr = 0, seen = 0, labelled = 0;
        for (int64_t s = 0; s < spe; s++) {
            int64_t step = (int64_t)epoch * spe + s;
            octav_batch_gather(&d.train, perm + s * c->batch, c->batch, c->aug_pad, c->aug_flip,
                               octav_hash_u64(c->seed ^ 0xa06u, (uint64_t)step), xb, yb);
            if (mlm)   /* fresh masks every epoch (RoBERTa's dynamic masking) */
                run_mlm_mask(c, xb, ypos, perm + s * c->batch, c->batch,
                             octav_hash_u64(c->seed ^ 0x31au, (uint64_t)epoch), tmp);
            octav_step_result res;
            octav_status st = octav_model_train_step(m, &tc, step, xb, mlm ? ypos : yb, c->batch, &res);
            if (st) {
                if (!pr.quiet && pr.tty) fputc('\n', stderr);
                cli_errorf("epoch %d step %lld: %s", epoch + 1, (long long)s + 1, octav_last_error());
                if (st == OCTAV_ENONFINITE)
                    fprintf(stderr, "octav: stopped; %s\n",
                            a.out[0] && epoch > start_epoch ? "the last good checkpoint is kept" : "no checkpoint written");
                cJSON *e = cJSON_CreateObject();
                cJSON_AddStringToObject(e, "event", "error");
                cJSON_AddStringToObject(e, "message", octav_last_error());
                cJSON_AddNumberToObject(e, "epoch", epoch + 1);
                cJSON_AddNumberToObject(e, "step", (double)step);
                log_line(log, e);
                goto done;
            }
            lsum += res.loss * (double)res.labelled;
            corr += res.correct;
            labelled += res.labelled;
            seen += c->batch;
            images += c->batch;
            double el = run_now() - t0;
            double ips = (double)seen / (el > 1e-9 ? el : 1e-9);
            double eta = (double)((spe - s - 1) + (int64_t)(c->epochs - epoch - 1) * spe) * c->batch / ips;
            progress_update(&pr, epoch + 1, c->epochs, s + 1, spe, lsum / (double)labelled,
                            (double)corr / (double)labelled, ips, eta, 0);
            if (log) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "event", "step");
                cJSON_AddNumberToObject(o, "epoch", epoch + 1);
                cJSON_AddNumberToObject(o, "step", (double)step + 1);
                cJSON_AddNumberToObject(o, "loss", res.loss);
                cJSON_AddNumberToObject(o, "accuracy", res.labelled ? (double)res.correct / (double)res.labelled : 0.0);
                cJSON_AddNumberToObject(o, "lr", res.lr);
                cJSON_AddNumberToObject(o, "grad_norm", res.grad_norm);
                if (a.quant_every && octav_model_quantized(m) && (step + 1) % a.quant_every == 0) {
                    cJSON *qj = run_quant_json(m);
                    if (!qj) { cli_errorf("out of memory"); cJSON_Delete(o); goto done; }
                    cJSON_AddItemToObject(o, "quantizers", qj);
                }
                if (!log_line(log, o)) { cli_errorf("--log %s: write failed", a.log); goto done; }
            }
        }
        double el = run_now() - t0;
        t_train += el;
        double vacc = NAN, vloss = NAN;
        if (d.val.n && octav_model_evaluate(m, d.val.images, val_labels, d.val.n, c->batch, &vacc, &vloss)) {
            cli_error("validation");
            goto done;
        }
        progress_update(&pr, epoch + 1, c->epochs, spe, spe, lsum / (double)labelled,
                        (double)corr / (double)labelled, (double)seen / el, (double)(c->epochs - epoch - 1) * el, 1);
        if (!a.quiet && d.val.n) fprintf(stderr, "        validation accuracy %.2f%% loss %.4f\n", 100 * vacc, vloss);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "event", "epoch");
        cJSON_AddNumberToObject(o, "epoch", epoch + 1);
        cJSON_AddNumberToObject(o, "train_loss", lsum / (double)labelled);
        cJSON_AddNumberToObject(o, "train_accuracy", (double)corr / (double)labelled);
        if (d.val.n) {
            cJSON_AddNumberToObject(o, "val_accuracy", vacc);
            cJSON_AddNumberToObject(o, "val_loss", vloss);
        }
        cJSON_AddNumberToObject(o, "seconds", el);
        cJSON_AddNumberToObject(o, "images_per_second", (double)seen / el);
        cJSON *qj = octav_model_quantized(m) ? run_quant_json(m) : NULL;
        if (qj) cJSON_AddItemToObject(o, "quantizers", qj);
        if (!log_line(log, o)) { cli_errorf("--log %s: write failed", a.log); goto done; }
        if (a.out[0]) {
            char ep[32];
            snprintf(ep, sizeof ep, "%d", epoch + 1);
            octav_kv kv[4] = {{"octav.config", cfg_text}, {"octav.epoch", ep}, {"octav.normalize", norm_buf},
                              {"octav.model", c->model}};
            if (octav_model_save(m, a.out, kv, 4)) { cli_error("--out"); goto done; }
        }
    }
    if (end_epoch < c->epochs) {
        printf("%s: stopped after epoch %d of %d (--stop-after); continue with --resume %s\n", c->model, end_epoch,
               c->epochs, a.out[0] ? a.out : "CKPT");
        status = EXIT_OK;
        goto done;
    }
    {
        double tacc = 0, tloss = 0;
        if (octav_model_evaluate(m, d.test.images, test_labels, d.test.n, c->batch, &tacc, &tloss)) {
            cli_error("test");
            goto done;
        }
        double wall = run_now() - t_run, ips = t_train > 0 ? (double)images / t_train : 0;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "event", "final");
        cJSON_AddStringToObject(o, "model", run_zoo_name(c));
        if (mlm) cJSON_AddStringToObject(o, "task", "mlm");
        cJSON_AddNumberToObject(o, "bits", c->bits);
        cJSON_AddStringToObject(o, "clip", qname ? qname : "float");
        cJSON_AddStringToObject(o, "grad", qname ? c->grad : "float");
        cJSON_AddNumberToObject(o, "test_accuracy", tacc);
        cJSON_AddNumberToObject(o, "test_loss", tloss);
        cJSON_AddNumberToObject(o, "epochs", c->epochs);
        cJSON_AddNumberToObject(o, "wall_seconds", wall);
        cJSON_AddNumberToObject(o, "images_per_second", ips);
        cJSON_AddNumberToObject(o, "threads", threads);
        cJSON_AddNumberToObject(o, "seed", (double)c->seed);
        cJSON_AddNumberToObject(o, "memory_bytes", (double)octav_model_memory(m));
        if (a.out[0]) cJSON_AddStringToObject(o, "checkpoint", a.out);
        if (!log_line(log, o)) { cli_errorf("--log %s: write failed", a.log); goto done; }
        printf("%s %s: test %saccuracy %.2f%% (loss %.4f) after %d epochs, %.0f %s/s, %.0f s\n", run_zoo_name(c),
               qname ? "QAT" : "float", mlm ? "masked-token " : "", 100 * tacc, tloss, c->epochs, ips,
               run_is_langid(c) ? "words" : "images", wall);
        if (qname) printf("  %d-bit (first/last %d), clipping %s, gradients %s\n", c->bits, c->first_last_bits, qname, c->grad);
        if (a.out[0]) printf("  checkpoint: %s\n", a.out);
        if (a.log[0]) printf("  log: %s\n", a.log);
        status = EXIT_OK;
    }
done:
    free(cfg_text);
    if (log && fclose(log) != 0 && status == EXIT_OK) { cli_errorf("--log %s: write failed", a.log); status = EXIT_FAIL; }
    free(xb); free(yb); free(ypos); free(tmp); free(perm);
    octav_model_destroy(m);
    data_free(&d);
    return status;
}
