/* test_cli_train.c -- `octav train` and `octav eval` end to end on a tiny
 * IDX dataset the test writes (4 classes of 12x12 images, a bright block
 * whose position is the class, plus noise): help and exit codes, a float
 * run whose JSONL log ends with the final event, --resume continuing bit
 * for bit, QAT retraining from the float checkpoint, `octav eval` agreeing
 * with the run's own test accuracy, and a diverging run stopping on NaN. */
#define _POSIX_C_SOURCE 200809L
#include "octav/io.h"
#include "test_cli.h"

#include <cjson/cJSON.h>

static char datadir[300];

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24); p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8); p[3] = (unsigned char)v;
}

static int write_idx_pair(const char *prefix, int n, uint64_t seed) {
    int H = 12, W = 12;
    size_t ilen = 16 + (size_t)n * H * W, llen = 8 + (size_t)n;
    unsigned char *img = calloc(ilen, 1), *lab = calloc(llen, 1);
    if (!img || !lab) return 0;
    put_be32(img, 0x803); put_be32(img + 4, (uint32_t)n); put_be32(img + 8, (uint32_t)H); put_be32(img + 12, (uint32_t)W);
    put_be32(lab, 0x801); put_be32(lab + 4, (uint32_t)n);
    trng r = {.s = seed};
    for (int i = 0; i < n; i++) {
        int c = (int)(trng_u64(&r) % 4);
        lab[8 + i] = (unsigned char)c;
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int in = (y / 6) * 2 + (x / 6) == c;
                double v = (in ? 170 : 40) + 35 * trng_gauss(&r);
                img[16 + (size_t)i * H * W + (size_t)y * W + (size_t)x] = (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    }
    char p[400];
    snprintf(p, sizeof p, "%s/%s-images-idx3-ubyte", datadir, prefix);
    int ok = octav_write_file_atomic(p, img, ilen) == OCTAV_OK;
    snprintf(p, sizeof p, "%s/%s-labels-idx1-ubyte", datadir, prefix);
    ok = ok && octav_write_file_atomic(p, lab, llen) == OCTAV_OK;
    free(img);
    free(lab);
    return ok;
}

/* The last line of a file, parsed. */
static cJSON *last_json_line(const char *path) {
    unsigned char *buf;
    size_t len;
    if (octav_read_file(path, &buf, &len) != OCTAV_OK || len == 0) return NULL;
    char *s = malloc(len + 1);
    memcpy(s, buf, len);
    s[len] = 0;
    octav_free(buf);
    while (len > 0 && s[len - 1] == '\n') s[--len] = 0;
    char *nl = strrchr(s, '\n');
    cJSON *o = cJSON_Parse(nl ? nl + 1 : s);
    free(s);
    return o;
}

static double jnum(const cJSON *o, const char *k) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(it) ? it->valuedouble : NAN;
}

static void test_help_and_usage(void) {
    char *o, *e, args[600];
    CHECK_EQ_INT(run("train --help", &o, &e), 0);
    CHECK(strstr(o, "--clip") && strstr(o, "--resume") && strstr(o, "--first-last-bits"));
    free(o); free(e);
    CHECK_EQ_INT(run("eval --help", &o, &e), 0);
    CHECK(strstr(o, "usage: octav eval"));
    free(o); free(e);
    const char *bad[] = {"train --bits 1", "train --clip bogus", "train --grad nope", "train --epochs 0",
                         "train --lr -1", "train --model vgg", "train --optimizer adam", "train --augment 9",
                         "train --resume x --bits 4", "train extra", "eval", "eval a b"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(args, sizeof args, "%s --data %s", bad[i], datadir);
        int rc = run(args, &o, &e);
        CHECK_MSG(rc == 2, "'%s' exited %d", bad[i], rc);
        CHECK_MSG(o[0] == 0 && strncmp(e, "octav: ", 7) == 0, "'%s': stdout '%s' stderr '%s'", bad[i], o, e);
        free(o); free(e);
    }
    CHECK_EQ_INT(run("train --data /nonexistent/dir", &o, &e), 1);
    CHECK(strstr(e, "/nonexistent/dir") != NULL);
    free(o); free(e);
    CHECK_EQ_INT(run("eval /nonexistent/x.safetensors", &o, &e), 1);
    free(o); free(e);
}

static int same_checkpoints(const char *a, const char *b) {
    octav_safetensors x, y;
    if (octav_safetensors_read(a, &x) || octav_safetensors_read(b, &y)) return 0;
    int same = x.ntensors == y.ntensors;
    for (int i = 0; same && i < x.ntensors; i++) {
        const octav_tensor *t = octav_safetensors_find(&y, x.tensors[i].name);
        int64_t n = octav_shape_numel(&x.tensors[i].shape);
        same = t && octav_shape_numel(&t->shape) == n && memcmp(t->data, x.tensors[i].data, (size_t)n * 4) == 0;
        if (!same) fprintf(stderr, "  checkpoints differ in %s\n", x.tensors[i].name);
    }
    octav_safetensors_free(&x);
    octav_safetensors_free(&y);
    return same;
}

static void test_train_resume_qat_eval(void) {
    char *o, *e, args[2000];
    const char *common = "--model mlp --val 50 --batch 32 --threads 1 --seed 3";
    /* a float run of 2 epochs */
    snprintf(args, sizeof args, "train %s --data %s --epochs 2 --out %s/f2.safetensors --log %s/f2.jsonl", common,
             datadir, tmpdir, tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    CHECK(strstr(o, "test accuracy") != NULL);
    free(o); free(e);
    snprintf(args, sizeof args, "%s/f2.jsonl", tmpdir);
    cJSON *fin = last_json_line(args);
    CHECK(fin && strcmp(cJSON_GetObjectItem(fin, "event")->valuestring, "final") == 0);
    double acc = jnum(fin, "test_accuracy");
    CHECK_MSG(acc > 0.9, "float accuracy %g", acc);
    CHECK(jnum(fin, "epochs") == 2 && jnum(fin, "images_per_second") > 0 && jnum(fin, "wall_seconds") > 0);
    cJSON_Delete(fin);
    /* 1 epoch, then --resume to 2: the same bits */
    snprintf(args, sizeof args, "train %s --data %s --epochs 2 --stop-after 1 --out %s/f1.safetensors --log %s/f1.jsonl",
             common, datadir, tmpdir, tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    free(o); free(e);
    snprintf(args, sizeof args, "train --resume %s/f1.safetensors --threads 1 --out %s/r2.safetensors --log %s/f1.jsonl",
             tmpdir, tmpdir, tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    free(o); free(e);
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/f2.safetensors", tmpdir);
    snprintf(b, sizeof b, "%s/r2.safetensors", tmpdir);
    CHECK(same_checkpoints(a, b));
    /* resuming a finished run without more epochs is a usage error */
    snprintf(args, sizeof args, "train --resume %s/f2.safetensors", tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 2);
    free(o); free(e);
    /* 4-bit OCTAV QAT retraining from the float checkpoint */
    snprintf(args, sizeof args,
             "train %s --data %s --epochs 1 --bits 4 --init %s/f2.safetensors --out %s/q.safetensors --log %s/q.jsonl",
             common, datadir, tmpdir, tmpdir, tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    CHECK(strstr(o, "4-bit") != NULL);
    free(o); free(e);
    snprintf(args, sizeof args, "%s/q.jsonl", tmpdir);
    fin = last_json_line(args);
    double qacc = fin ? jnum(fin, "test_accuracy") : NAN;
    CHECK_MSG(qacc > 0.85, "QAT accuracy %g", qacc);
    cJSON_Delete(fin);
    /* eval reproduces the run's test accuracy (quantized as trained) */
    snprintf(args, sizeof args, "eval --json --threads 1 %s/q.safetensors", tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    cJSON *doc = cJSON_Parse(o);
    CHECK(doc != NULL);
    if (doc) {
        CHECK_NEAR(jnum(doc, "test_accuracy"), qacc, 1e-12, 0);
        CHECK(jnum(doc, "float_test_accuracy") > 0.5);
        const cJSON *qs = cJSON_GetObjectItem(doc, "quantizers");
        CHECK_EQ_INT(cJSON_GetArraySize(qs), 6);   /* 3 linear layers x (weight, input) */
        const cJSON *q1 = cJSON_GetArrayItem(qs, 2);
        CHECK(q1 && jnum(q1, "bits") == 4 && jnum(q1, "scale") > 0);
        cJSON_Delete(doc);
    }
    free(o); free(e);
    snprintf(args, sizeof args, "eval %s/q.safetensors", tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    CHECK(strstr(o, "quantized") && strstr(o, "SQNR"));
    free(o); free(e);
    /* --dump: each linear layer's weight and float input, for octav clip */
    snprintf(args, sizeof args, "eval --threads 1 --batch 40 --dump %s/dump.safetensors %s/q.safetensors", tmpdir,
             tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    free(o); free(e);
    snprintf(a, sizeof a, "%s/dump.safetensors", tmpdir);
    octav_safetensors d;
    CHECK_EQ_INT(octav_safetensors_read(a, &d), OCTAV_OK);
    if (d.tensors) {
        CHECK_EQ_INT(d.ntensors, 6);   /* 3 linear layers x (weight, input) */
        const octav_tensor *in0 = octav_safetensors_find(&d, "fc1.input");
        CHECK(in0 && in0->shape.dim[0] == 40 && octav_shape_numel(&in0->shape) == 40 * 144);
        const char *u = NULL;
        for (int i = 0; i < d.nmeta; i++)
            if (strcmp(d.meta[i].key, "octav.unsigned") == 0) u = d.meta[i].value;
        CHECK_MSG(u && strstr(u, "fc2.input") && !strstr(u, "fc1.input"), "octav.unsigned '%s'", u ? u : "(none)");
        octav_safetensors_free(&d);
    }
    snprintf(args, sizeof args, "clip --json --threads 1 %s/dump.safetensors:fc2.input --unsigned", tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    CHECK(strstr(o, "\"octav\"") != NULL);
    free(o); free(e);
    /* a checkpoint that is not one of octav's */
    snprintf(args, sizeof args, "eval %s/../../..%s", tmpdir, "/dev/null");
    CHECK_EQ_INT(run(args, &o, &e), 1);
    free(o); free(e);
}

static void test_divergence_stops(void) {
    char *o, *e, args[2000];
    snprintf(args, sizeof args,
             "train --model mlp --val 50 --batch 32 --data %s --epochs 3 --lr 90 --momentum 0.99 --out %s/nan.safetensors",
             datadir, tmpdir);
    int rc = run(args, &o, &e);
    CHECK_MSG(rc == 1, "exit %d, stderr %s", rc, e);
    CHECK_MSG(strstr(e, "stopped") != NULL, "stderr: %s", e);
    free(o); free(e);
}

/* Three word lists of random words over different consonants (names as
 * Debian's lists), 400 words each. */
static int write_dict(const char *dir) {
    const char *files[3] = {"american-english", "french", "ngerman"}, *cons[3] = {"bcdfgh", "jklmnp", "rstvwz"};
    trng r = {.s = 77};
    for (int l = 0; l < 3; l++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s", dir, files[l]);
        FILE *f = fopen(path, "w");
        if (!f) return 0;
        for (int i = 0; i < 400; i++) {
            int len = 2 + (int)(trng_u64(&r) % 4);
            for (int k = 0; k < len; k++) {
                fputc(cons[l][trng_u64(&r) % 6], f);
                fputc("aeiou"[trng_u64(&r) % 5], f);
            }
            fputc('\n', f);
        }
        fclose(f);
    }
    return 1;
}

static void test_transformer_langid(void) {
    char *o, *e, args[2000], dict[320];
    snprintf(dict, sizeof dict, "%s/dict", tmpdir);
    snprintf(args, sizeof args, "mkdir -p %s", dict);
    CHECK(system(args) == 0 && write_dict(dict));
    char common[800];
    snprintf(common, sizeof common, "--data langid:%s --langs english,french,german --words-per-lang 0 --max-len 12 "
             "--batch 32 --threads 1 --seed 2", dict);
    const char *arch = "--dim 16 --heads 2 --layers 1 --mlp 32";
    /* phase one: masked-character pretraining */
    snprintf(args, sizeof args, "pretrain %s %s --epochs 1 --lr 3e-3 --out %s/pre.safetensors --log %s/pre.jsonl",
             common, arch, tmpdir, tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    CHECK_MSG(strstr(o, "masked-token accuracy") != NULL, "stdout: %s stderr: %s", o, e);
    free(o); free(e);
    snprintf(args, sizeof args, "%s/pre.jsonl", tmpdir);
    cJSON *fin = last_json_line(args);
    CHECK(fin && jnum(fin, "test_accuracy") > 0.05);
    cJSON_Delete(fin);
    /* phase two: fine-tuning from the pretrained trunk (architecture taken
     * from it); 2 epochs straight, and 1 + resume 1, give the same bits */
    snprintf(args, sizeof args, "train --model transformer %s --init %s/pre.safetensors --epochs 2 --lr 3e-3 "
             "--out %s/c2.safetensors --log %s/c2.jsonl", common, tmpdir, tmpdir, tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    free(o); free(e);
    snprintf(args, sizeof args, "%s/c2.jsonl", tmpdir);
    fin = last_json_line(args);
    double acc = fin ? jnum(fin, "test_accuracy") : NAN;
    CHECK_MSG(acc > 0.9, "fine-tuned accuracy %g", acc);
    cJSON_Delete(fin);
    snprintf(args, sizeof args, "train --model transformer %s --init %s/pre.safetensors --epochs 2 --lr 3e-3 "
             "--stop-after 1 --out %s/c1.safetensors", common, tmpdir, tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    free(o); free(e);
    snprintf(args, sizeof args, "train --resume %s/c1.safetensors --threads 1 --out %s/cr.safetensors", tmpdir, tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    free(o); free(e);
    char a[400], b[400];
    snprintf(a, sizeof a, "%s/c2.safetensors", tmpdir);
    snprintf(b, sizeof b, "%s/cr.safetensors", tmpdir);
    CHECK(same_checkpoints(a, b));
    /* 4-bit OCTAV QAT retraining; eval reproduces it and lists the
     * attention operands */
    snprintf(args, sizeof args, "train --model transformer %s --init %s/c2.safetensors --bits 4 --epochs 1 "
             "--out %s/q.safetensors --log %s/q.jsonl", common, tmpdir, tmpdir, tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    free(o); free(e);
    snprintf(args, sizeof args, "%s/q.jsonl", tmpdir);
    fin = last_json_line(args);
    double qacc = fin ? jnum(fin, "test_accuracy") : NAN;
    CHECK_MSG(qacc > 0.8, "4-bit accuracy %g", qacc);
    cJSON_Delete(fin);
    snprintf(args, sizeof args, "eval --json --threads 1 %s/q.safetensors", tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    cJSON *doc = cJSON_Parse(o);
    CHECK(doc != NULL);
    if (doc) {
        CHECK_NEAR(jnum(doc, "test_accuracy"), qacc, 1e-12, 0);
        const cJSON *qs = cJSON_GetObjectItem(doc, "quantizers");
        CHECK_EQ_INT(cJSON_GetArraySize(qs), 5 * 2 + 4);   /* qkv proj fc1 fc2 head; q k probs v */
        int probs = 0;
        for (int i = 0; i < cJSON_GetArraySize(qs); i++) {
            const cJSON *t = cJSON_GetObjectItem(cJSON_GetArrayItem(qs, i), "tensor");
            probs += cJSON_IsString(t) && strcmp(t->valuestring, "probs") == 0;
        }
        CHECK_EQ_INT(probs, 1);
        cJSON_Delete(doc);
    }
    free(o); free(e);
    /* errors: token model on images, image model on words, missing lists */
    snprintf(args, sizeof args, "train --model transformer --data %s", datadir);
    CHECK_EQ_INT(run(args, &o, &e), 2);
    free(o); free(e);
    snprintf(args, sizeof args, "train --model mlp %s", common);
    CHECK_EQ_INT(run(args, &o, &e), 2);
    free(o); free(e);
    snprintf(args, sizeof args, "train --model transformer --data langid:%s/none --langs english,italian", tmpdir);
    CHECK_EQ_INT(run(args, &o, &e), 1);
    CHECK_MSG(strstr(e, "apt-get install wamerican") != NULL, "stderr: %s", e);
    free(o); free(e);
    snprintf(args, sizeof args, "pretrain %s --heads 3 --dim 16", common);
    CHECK_EQ_INT(run(args, &o, &e), 2);
    free(o); free(e);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/octav_test_train_XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    snprintf(datadir, sizeof datadir, "%s/data", tmpdir);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", datadir);
    if (system(cmd) != 0 || !write_idx_pair("train", 600, 1) || !write_idx_pair("t10k", 200, 2)) {
        fprintf(stderr, "cannot write the test data\n");
        return 1;
    }
    RUN(test_help_and_usage);
    RUN(test_train_resume_qat_eval);
    RUN(test_divergence_stops);
    RUN(test_transformer_langid);
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_SUMMARY();
}
