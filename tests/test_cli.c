/* test_cli.c -- `octav clip` end to end: help and exit codes, the JSON
 * document (parsed with cJSON) against the library called directly, errors
 * for every kind of bad input with nothing on stdout. */
#define _POSIX_C_SOURCE 200809L
#include "octav/io.h"
#include "octav/quant.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_cli.h"

#define EXAMPLE OCTAV_FIXTURES "/../../examples/fashion_cnn.safetensors"

static void test_help_and_usage(void) {
    char *o, *e;
    CHECK_EQ_INT(run("--help", &o, &e), 0);
    CHECK(strstr(o, "usage: octav") != NULL);
    free(o); free(e);
    CHECK_EQ_INT(run("clip --help", &o, &e), 0);
    CHECK(strstr(o, "--granularity") && strstr(o, "--iterations"));
    free(o); free(e);
    CHECK_EQ_INT(run("--version", &o, &e), 0);
    CHECK(strstr(o, OCTAV_VERSION_STRING) != NULL);
    free(o); free(e);
    const char *bad[] = {"", "frobnicate", "clip", "clip --bits 1 x.npy", "clip --bits 17 x.npy",
                         "clip --bits four x.npy", "clip --grid wide x.npy", "clip --method magic x.npy",
                         "clip --unsigned --grid narrow x.npy", "clip --axis 1 x.npy",
                         "clip --granularity block --block 0 x.npy", "clip --iterations 0 x.npy",
                         "clip --bogus x.npy", "clip --bits", "bench --reps 0", "bench frobnicate",
                         "bench --threads x", "bench solver fakequant", "bench train solver",
                         "bench train --batch 0", "bench train --warmup -1", "bench train --input imagenet",
                         "bench train --width 0", "bench train --width 1x",
                         "bench fakequant --uncached", "bench train --uncached", "bench solver --batch 16",
                         "bench kernels --width=2"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = run(bad[i], &o, &e);
        CHECK_MSG(rc == 2, "'%s' -> %d", bad[i], rc);
        CHECK_MSG(o[0] == 0, "'%s' printed to stdout", bad[i]);
        CHECK_MSG(strncmp(e, "octav: ", 7) == 0 || strstr(e, "usage:"), "'%s' stderr: %s", bad[i], e);
        free(o); free(e);
    }
}

/* The JSON equals the library's own answer for the same tensor. */
static void test_json_matches_library(void) {
    char *o, *e;
    char args[1024];
    snprintf(args, sizeof args, "clip --json --bits 3 --granularity channel --method octav,max,mse-sweep %s:conv2.weight",
             EXAMPLE);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    cJSON *doc = cJSON_Parse(o);
    CHECK(doc != NULL);
    cJSON *res = cJSON_GetObjectItem(doc, "results");
    CHECK(cJSON_IsArray(res) && cJSON_GetArraySize(res) == 3);
    octav_safetensors st;
    CHECK(octav_safetensors_read(EXAMPLE, &st) == OCTAV_OK);
    const octav_tensor *w = octav_safetensors_find(&st, "conv2.weight");
    CHECK(w != NULL);
    octav_layout lay;
    octav_layout_make(&w->shape, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, &lay);
    octav_grid g = {3, OCTAV_GRID_FULL};
    octav_solver *sv;
    octav_solver_create(&sv);
    const char *names[3] = {"octav", "max", "mse-sweep"};
    for (int k = 0; k < 3 && doc && w; k++) {
        cJSON *r = cJSON_GetArrayItem(res, k);
        CHECK(strcmp(cJSON_GetObjectItem(r, "method")->valuestring, names[k]) == 0);
        CHECK(cJSON_IsTrue(cJSON_GetObjectItem(r, "signed")));
        CHECK(strcmp(cJSON_GetObjectItem(r, "grid")->valuestring, "full") == 0);
        CHECK(strcmp(cJSON_GetObjectItem(r, "granularity")->valuestring, "channel") == 0);
        CHECK(cJSON_GetObjectItem(r, "axis")->valuedouble == 0);
        CHECK(cJSON_GetObjectItem(r, "bits")->valuedouble == 3);
        CHECK(strstr(cJSON_GetObjectItem(r, "tensor")->valuestring, ":conv2.weight") != NULL);
        octav_clip_config cfg;
        octav_clip_parse(names[k], &cfg);
        float s[64];
        int32_t it[64];
        uint8_t cv[64];
        octav_clip_info info = {it, cv};
        CHECK(octav_clip(sv, &cfg, g, &lay, w->data, s, &info) == OCTAV_OK);
        cJSON *sc = cJSON_GetObjectItem(r, "scales");
        CHECK(cJSON_GetArraySize(sc) == lay.ngroups);
        for (int i = 0; i < lay.ngroups; i++)
            CHECK((float)cJSON_GetArrayItem(sc, i)->valuedouble == s[i]);
        octav_quant_error qe;
        octav_quant_error_eval(g, &lay, w->data, s, &qe);
        CHECK_NEAR(cJSON_GetObjectItem(r, "mse")->valuedouble, qe.mse, 0, 1e-12);
        CHECK_NEAR(cJSON_GetObjectItem(r, "sqnr_db")->valuedouble, qe.sqnr_db, 0, 1e-12);
        CHECK_NEAR(cJSON_GetObjectItem(r, "clipped_fraction")->valuedouble, qe.clipped_fraction, 0, 1e-12);
        cJSON *its = cJSON_GetObjectItem(r, "iterations");
        if (k == 0) {
            CHECK(cJSON_GetArraySize(its) == lay.ngroups);
            for (int i = 0; i < lay.ngroups; i++) CHECK(cJSON_GetArrayItem(its, i)->valuedouble == it[i]);
        } else {
            CHECK(its == NULL);
        }
    }
    octav_solver_destroy(sv);
    octav_safetensors_free(&st);
    cJSON_Delete(doc);
    free(o); free(e);
    /* human output: a table per tensor, best MSE marked */
    snprintf(args, sizeof args, "clip -u %s:conv3.input", EXAMPLE);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    CHECK(strstr(o, "unsigned grid") && strstr(o, "\n* ") && strstr(o, "percentile-99.999"));
    free(o); free(e);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(p, 1, n, f);
    fclose(f);
}

static void test_bad_inputs(void) {
    char p1[300], p2[300], p3[300], p4[300], args[2048];
    snprintf(p1, sizeof p1, "%s/ok.npy", tmpdir);
    snprintf(p2, sizeof p2, "%s/nan.npy", tmpdir);
    snprintf(p3, sizeof p3, "%s/trunc.npy", tmpdir);
    snprintf(p4, sizeof p4, "%s/garbage.bin", tmpdir);
    float v[6] = {1, -2, 3, 0.5f, -0.25f, 4};
    octav_shape shp = {2, {2, 3}};
    CHECK(octav_npy_write(p1, &shp, v) == OCTAV_OK);
    v[4] = NAN;
    CHECK(octav_npy_write(p2, &shp, v) == OCTAV_OK);
    unsigned char *buf;
    size_t len;
    CHECK(octav_read_file(p1, &buf, &len) == OCTAV_OK);
    write_bytes(p3, buf, len - 5);
    octav_free(buf);
    write_bytes(p4, "hello world, not a tensor", 25);
    char *o, *e;
    struct { const char *args; const char *msg; } cases[] = {
        {"clip --json %s/missing.npy", "No such file"},
        {"clip --json %s/nan.npy", "index 4"},
        {"clip --json %s/trunc.npy", "trunc.npy"},
        {"clip --json %s/garbage.bin", "garbage.bin"},
        {"clip --json --granularity channel --axis 2 %s/ok.npy", "axis"},
        {"clip --json %s/ok.npy:name", "name"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char a[600];
        snprintf(a, sizeof a, cases[i].args, tmpdir);
        /* a good file first: still no partial JSON */
        snprintf(args, sizeof args, "%s %s", a, p1);
        int rc = run(args, &o, &e);
        CHECK_MSG(rc == 1, "'%s' -> %d", a, rc);
        CHECK_MSG(o[0] == 0, "'%s' printed: %.80s", a, o);
        CHECK_MSG(strstr(e, cases[i].msg) != NULL, "'%s' stderr lacks '%s': %s", a, cases[i].msg, e);
        CHECK_MSG(strchr(e, '\n') == e + strlen(e) - 1, "'%s': not one line: %s", a, e);
        free(o); free(e);
    }
    snprintf(args, sizeof args, "clip --json --granularity block --block 2 %s", p1);
    CHECK_EQ_INT(run(args, &o, &e), 0);
    cJSON *doc = cJSON_Parse(o);
    CHECK(doc && cJSON_GetArraySize(cJSON_GetObjectItem(doc, "results")) == 10);
    cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(doc, "results"), 0);
    CHECK(r0 && cJSON_GetArraySize(cJSON_GetObjectItem(r0, "scales")) == 4);
    CHECK(r0 && cJSON_GetObjectItem(r0, "block")->valuedouble == 2);
    cJSON_Delete(doc);
    free(o); free(e);
}

static int count_of(const char *hay, const char *needle) {
    int c = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) c++;
    return c;
}

/* A pipe (/dev/stdin) gives the same results as the file; FILE:NAME picks one
 * tensor from it; a bad file's message names it once. */
static void test_stdin_and_messages(void) {
    char pn[300], ps[300], pt[300], args[1024];
    snprintf(pn, sizeof pn, "%s/s.npy", tmpdir);
    snprintf(ps, sizeof ps, "%s/two.safetensors", tmpdir);
    snprintf(pt, sizeof pt, "%s/cut.safetensors", tmpdir);
    float v[6] = {1, -2, 3, 0.5f, -0.25f, 4}, w[4] = {0.1f, -0.7f, 0.3f, 2.0f};
    octav_shape shp = {2, {2, 3}};
    CHECK(octav_npy_write(pn, &shp, v) == OCTAV_OK);
    octav_tensor ts[2] = {{"a", {2, {2, 3}}, OCTAV_DTYPE_F32, v}, {"b", {1, {4}}, OCTAV_DTYPE_F32, w}};
    CHECK(octav_safetensors_write(ps, ts, 2, NULL, 0) == OCTAV_OK);
    char *o1, *e1, *o2, *e2;
    /* .npy from a file and through a pipe: the same JSON but for the label */
    snprintf(args, sizeof args, "clip --json --method octav,max %s", pn);
    CHECK_EQ_INT(run(args, &o1, &e1), 0);
    snprintf(args, sizeof args, "clip --json --method octav,max /dev/stdin < %s", pn);
    CHECK_EQ_INT(run(args, &o2, &e2), 0);
    cJSON *d1 = cJSON_Parse(o1), *d2 = cJSON_Parse(o2);
    cJSON *r1 = d1 ? cJSON_GetObjectItem(d1, "results") : NULL, *r2 = d2 ? cJSON_GetObjectItem(d2, "results") : NULL;
    CHECK(r1 && r2 && cJSON_GetArraySize(r1) == 2 && cJSON_GetArraySize(r2) == 2);
    for (int i = 0; r1 && r2 && i < 2; i++) {
        cJSON *a = cJSON_GetArrayItem(r1, i), *b = cJSON_GetArrayItem(r2, i);
        CHECK(!strcmp(cJSON_GetObjectItem(b, "tensor")->valuestring, "/dev/stdin"));
        CHECK(cJSON_Compare(cJSON_GetObjectItem(a, "scales"), cJSON_GetObjectItem(b, "scales"), 1));
        CHECK(cJSON_GetObjectItem(a, "mse")->valuedouble == cJSON_GetObjectItem(b, "mse")->valuedouble);
    }
    cJSON_Delete(d1); cJSON_Delete(d2);
    free(o1); free(e1); free(o2); free(e2);
    /* one tensor of a safetensors file through a pipe */
    snprintf(args, sizeof args, "clip --json --method max /dev/stdin:b < %s", ps);
    CHECK_EQ_INT(run(args, &o1, &e1), 0);
    d1 = cJSON_Parse(o1);
    r1 = d1 ? cJSON_GetObjectItem(d1, "results") : NULL;
    CHECK(r1 && cJSON_GetArraySize(r1) == 1);
    if (r1 && cJSON_GetArraySize(r1) == 1) {
        cJSON *a = cJSON_GetArrayItem(r1, 0);
        CHECK(!strcmp(cJSON_GetObjectItem(a, "tensor")->valuestring, "/dev/stdin:b"));
        CHECK(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "scales"), 0)->valuedouble == 2.0);
    }
    cJSON_Delete(d1);
    free(o1); free(e1);
    /* a cut file: one line that names it once */
    unsigned char *buf;
    size_t len;
    CHECK(octav_read_file(ps, &buf, &len) == OCTAV_OK);
    write_bytes(pt, buf, len - 3);
    octav_free(buf);
    const char *forms[2] = {"clip --json %s", "clip --json %s:a"};
    for (int i = 0; i < 2; i++) {
        char a[400];
        snprintf(a, sizeof a, forms[i], pt);
        CHECK_EQ_INT(run(a, &o1, &e1), 1);
        CHECK_MSG(count_of(e1, "cut.safetensors") == 1, "'%s': %s", a, e1);
        free(o1); free(e1);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/octav_test_cli_XXXXXX");
    if (!mkdtemp(tmpdir)) { perror("mkdtemp"); return 1; }
    RUN(test_help_and_usage);
    RUN(test_json_matches_library);
    RUN(test_bad_inputs);
    RUN(test_stdin_and_messages);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return TEST_SUMMARY();
}
