/* clip.c -- `octav clip`: the best clipping scalar for each tensor given,
 * per tensor, channel or block, and how every clipping method compares on
 * the real quantizer's MSE, SQNR and clipped fraction. Human table or one
 * JSON document ({"results": [...]}) that is printed only when every tensor
 * succeeded. */
#define _POSIX_C_SOURCE 200809L
#include "cli/cli.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void cli_clip_usage(FILE *f) {
    fprintf(f,
            "usage: octav clip [options] FILE...\n"
            "\n"
            "Finds the clipping scalar of every tensor in each FILE with OCTAV (the\n"
            "MSE-optimal Newton recursion of Sakr et al., ICML 2022) and compares it\n"
            "with the baseline methods on the real quantizer.\n"
            "\n"
            "FILE is a NumPy .npy file (float16/32/64, C or Fortran order), a\n"
            ".safetensors file (every floating tensor in it), or FILE:NAME for one\n"
            "tensor of a .safetensors file.\n"
            "\n"
            "options:\n"
            "  -b, --bits B           bit width, 2..16 (default 4)\n"
            "  -u, --unsigned         unsigned grid [0, 2^B-1] (post-ReLU data)\n"
            "  -g, --grid G           signed grid: full [-2^(B-1), 2^(B-1)-1] (default)\n"
            "                         or narrow [-(2^(B-1)-1), 2^(B-1)-1] (ONNX/TensorRT)\n"
            "  -G, --granularity K    tensor (default), channel or block\n"
            "  -a, --axis A           channel axis (default 0; negative counts from the end)\n"
            "  -k, --block V          block length along the last axis (default 32)\n"
            "  -m, --method LIST      comma-separated methods or 'all' (default all):\n"
            "                         octav, max, percentile[-P] (99.99), sigma[-K] (3),\n"
            "                         aciq-laplace, aciq-gauss, mse-sweep, entropy;\n"
            "                         'all' = octav, max, percentile-99.9, -99.99, -99.999,\n"
            "                         sigma-3, aciq-laplace, aciq-gauss, mse-sweep, entropy\n"
            "  -i, --iterations N     cap on OCTAV's Newton steps (default 100; the paper\n"
            "                         uses 10). OCTAV stops earlier at its exact fixed point.\n"
            "  -j, --json             print one JSON document instead of tables\n"
            "  -t, --threads N        threads (default: all cores)\n"
            "  -h, --help             show this help\n"
            "\n"
            "Columns: scale = clipping scalar s (min/median/max over groups), s/max|x|,\n"
            "MSE = mean (Q(x)-x)^2 over all elements, SQNR = 10 log10(sum x^2 / sum\n"
            "(Q(x)-x)^2), clipped = fraction of elements outside the grid's range,\n"
            "iters = OCTAV Newton steps. '*' marks the lowest MSE.\n"
            "\n"
            "Exit status: 0 success, 1 bad file or data (NaN/Inf, ...), 2 usage error.\n");
}

static const char *const ALL_METHODS[] = {"octav", "max", "percentile-99.9", "percentile-99.99",
                                          "percentile-99.999", "sigma-3", "aciq-laplace", "aciq-gauss",
                                          "mse-sweep", "entropy"};
#define NALL ((int)(sizeof ALL_METHODS / sizeof *ALL_METHODS))

typedef struct {
    octav_clip_config cfg;
    char name[48];
} method_t;

typedef struct {
    float *scales;
    int32_t *iters;
    uint8_t *conv;
    octav_quant_error err;
} result_t;

static int parse_methods(const char *list, method_t **out, int *n) {
    char *copy = strdup(list);
    if (!copy) return 0;
    int cap = 16, cnt = 0;
    method_t *m = calloc((size_t)cap, sizeof *m);
    int ok = m != NULL;
    for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
        int is_all = strcmp(tok, "all") == 0;
        int k = is_all ? NALL : 1;
        for (int j = 0; j < k && ok; j++) {
            const char *name = is_all ? ALL_METHODS[j] : tok;
            if (cnt == cap) {
                method_t *nm = realloc(m, (size_t)(cap *= 2) * sizeof *m);
                if (!nm) { ok = 0; break; }
                m = nm;
            }
            if (octav_clip_parse(name, &m[cnt].cfg) != OCTAV_OK) {
                cli_errorf("--method: %s", octav_last_error());
                ok = 0;
                break;
            }
            snprintf(m[cnt].name, sizeof m[cnt].name, "%s", octav_clip_name(&m[cnt].cfg));
            cnt++;
        }
    }
    free(copy);
    if (ok && cnt == 0) { cli_errorf("--method: empty list"); ok = 0; }
    if (!ok) { free(m); return 0; }
    *out = m;
    *n = cnt;
    return 1;
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* min, median, max of v[0..n) */
static void summary3(const float *v, int64_t n, float out[3]) {
    float *c = malloc((size_t)n * sizeof *c);
    if (!c) { out[0] = out[1] = out[2] = NAN; return; }
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_float);
    out[0] = c[0];
    out[1] = c[n / 2];
    out[2] = c[n - 1];
    free(c);
}

static void print_shape(FILE *f, const octav_shape *s) {
    fputc('[', f);
    for (int i = 0; i < s->ndim; i++) fprintf(f, "%s%lld", i ? ", " : "", (long long)s->dim[i]);
    fputc(']', f);
}

static void print_table(const cli_tensor *ct, const octav_layout *lay, octav_grid g, const method_t *m, int nm,
                        const result_t *r, const float *gmax) {
    int best = 0;
    for (int k = 1; k < nm; k++)
        if (r[k].err.mse < r[best].err.mse) best = k;
    float mx[3];
    summary3(gmax, lay->ngroups, mx);
    printf("%s  ", ct->label);
    print_shape(stdout, &ct->t.shape);
    printf(" %s, %lld values\n", octav_dtype_name(ct->t.dtype), (long long)lay->numel);
    printf("  %d-bit %s grid, ", g.bits, octav_grid_name(g.kind));
    if (lay->kind == OCTAV_GRAN_TENSOR) printf("per tensor, max|x| %.6g\n", mx[2]);
    else if (lay->kind == OCTAV_GRAN_CHANNEL)
        printf("per channel (axis %d): %lld scales, max|x| %.6g\n", lay->axis, (long long)lay->ngroups, mx[2]);
    else printf("per block of %lld: %lld scales, max|x| %.6g\n", (long long)lay->block, (long long)lay->ngroups, mx[2]);
    const int multi = lay->ngroups > 1;
    printf("  %-19s %-32s %9s %12s %8s %8s %7s\n", "method", multi ? "scale (min / median / max)" : "scale",
           "s/max|x|", "MSE", "SQNR dB", "clipped", "iters");
    float *ratio = malloc((size_t)lay->ngroups * sizeof *ratio);
    for (int k = 0; k < nm; k++) {
        float s3[3];
        summary3(r[k].scales, lay->ngroups, s3);
        char sc[64];
        if (multi) snprintf(sc, sizeof sc, "%.5g / %.5g / %.5g", s3[0], s3[1], s3[2]);
        else snprintf(sc, sizeof sc, "%.7g", s3[0]);
        float rmed = NAN;
        if (ratio) {
            for (int64_t i = 0; i < lay->ngroups; i++)
                ratio[i] = gmax[i] > 0 ? r[k].scales[i] / gmax[i] : 0.0f;
            float r3[3];
            summary3(ratio, lay->ngroups, r3);
            rmed = r3[1];
        }
        char it[32] = "-";
        if (m[k].cfg.method == OCTAV_CLIP_OCTAV) {
            int32_t lo = r[k].iters[0], hi = r[k].iters[0];
            int64_t notconv = 0;
            for (int64_t i = 0; i < lay->ngroups; i++) {
                lo = r[k].iters[i] < lo ? r[k].iters[i] : lo;
                hi = r[k].iters[i] > hi ? r[k].iters[i] : hi;
                notconv += !r[k].conv[i];
            }
            if (lo == hi) snprintf(it, sizeof it, "%d%s", lo, notconv ? "!" : "");
            else snprintf(it, sizeof it, "%d-%d%s", lo, hi, notconv ? "!" : "");
        }
        printf("%c %-19s %-32s %9.4f %12.5g %8.2f %7.3f%% %7s\n", k == best ? '*' : ' ', m[k].name, sc, rmed,
               r[k].err.mse, r[k].err.sqnr_db, 100.0 * r[k].err.clipped_fraction, it);
    }
    free(ratio);
    for (int k = 0; k < nm; k++) {
        if (m[k].cfg.method != OCTAV_CLIP_OCTAV) continue;
        int64_t notconv = 0;
        for (int64_t i = 0; i < lay->ngroups; i++) notconv += !r[k].conv[i];
        if (notconv)
            printf("  ! OCTAV did not reach its fixed point within %d steps in %lld group(s)\n",
                   m[k].cfg.max_iter, (long long)notconv);
    }
    printf("\n");
}

static cJSON *json_result(const cli_tensor *ct, const octav_layout *lay, octav_grid g, const method_t *m,
                          const result_t *r, octav_group_spec spec) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "tensor", ct->label);
    cJSON *shape = cJSON_AddArrayToObject(o, "shape");
    for (int i = 0; i < ct->t.shape.ndim; i++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)ct->t.shape.dim[i]));
    cJSON_AddStringToObject(o, "dtype", octav_dtype_name(ct->t.dtype));
    cJSON_AddStringToObject(o, "method", m->name);
    cJSON_AddNumberToObject(o, "bits", g.bits);
    cJSON_AddBoolToObject(o, "signed", g.kind != OCTAV_GRID_UNSIGNED);
    cJSON_AddStringToObject(o, "grid", octav_grid_name(g.kind));
    cJSON_AddStringToObject(o, "granularity", octav_granularity_name(lay->kind));
    if (lay->kind == OCTAV_GRAN_CHANNEL) cJSON_AddNumberToObject(o, "axis", lay->axis);
    else cJSON_AddNullToObject(o, "axis");
    if (lay->kind == OCTAV_GRAN_BLOCK) cJSON_AddNumberToObject(o, "block", (double)spec.block);
    else cJSON_AddNullToObject(o, "block");
    cJSON *sc = cJSON_AddArrayToObject(o, "scales");
    for (int64_t i = 0; i < lay->ngroups; i++) cJSON_AddItemToArray(sc, cJSON_CreateNumber((double)r->scales[i]));
    cJSON_AddNumberToObject(o, "mse", r->err.mse);
    if (isfinite(r->err.sqnr_db)) cJSON_AddNumberToObject(o, "sqnr_db", r->err.sqnr_db);
    else cJSON_AddNullToObject(o, "sqnr_db");
    cJSON_AddNumberToObject(o, "clipped_fraction", r->err.clipped_fraction);
    if (m->cfg.method == OCTAV_CLIP_OCTAV) {
        cJSON *it = cJSON_AddArrayToObject(o, "iterations");
        cJSON *cv = cJSON_AddArrayToObject(o, "converged");
        for (int64_t i = 0; i < lay->ngroups; i++) {
            cJSON_AddItemToArray(it, cJSON_CreateNumber(r->iters[i]));
            cJSON_AddItemToArray(cv, cJSON_CreateBool(r->conv[i]));
        }
    }
    return o;
}

int cli_clip(int argc, char **argv) {
    static const struct option opts[] = {
        {"bits", required_argument, 0, 'b'},       {"unsigned", no_argument, 0, 'u'},
        {"grid", required_argument, 0, 'g'},       {"granularity", required_argument, 0, 'G'},
        {"axis", required_argument, 0, 'a'},       {"block", required_argument, 0, 'k'},
        {"method", required_argument, 0, 'm'},     {"iterations", required_argument, 0, 'i'},
        {"json", no_argument, 0, 'j'},             {"threads", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    long bits = 4, axis = 0, block = 32, iters = 100, threads = 0;
    int is_unsigned = 0, json = 0, axis_set = 0, block_set = 0;
    octav_grid_kind gk = OCTAV_GRID_FULL;
    octav_granularity gran = OCTAV_GRAN_TENSOR;
    const char *methods = "all";
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":b:ug:G:a:k:m:i:jt:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            if (!cli_parse_int(optarg, OCTAV_MIN_BITS, OCTAV_MAX_BITS, &bits)) {
                cli_errorf("--bits must be an integer in %d..%d (got '%s')", OCTAV_MIN_BITS, OCTAV_MAX_BITS, optarg);
                return EXIT_USAGE;
            }
            break;
        case 'u': is_unsigned = 1; break;
        case 'g':
            if (octav_grid_parse(optarg, &gk) != OCTAV_OK) { cli_errorf("--grid: %s", octav_last_error()); return EXIT_USAGE; }
            break;
        case 'G':
            if (octav_granularity_parse(optarg, &gran) != OCTAV_OK) {
                cli_errorf("--granularity: %s", octav_last_error());
                return EXIT_USAGE;
            }
            break;
        case 'a':
            if (!cli_parse_int(optarg, -OCTAV_MAX_DIMS, OCTAV_MAX_DIMS - 1, &axis)) {
                cli_errorf("--axis must be an integer in %d..%d (got '%s')", -OCTAV_MAX_DIMS, OCTAV_MAX_DIMS - 1, optarg);
                return EXIT_USAGE;
            }
            axis_set = 1;
            break;
        case 'k':
            if (!cli_parse_int(optarg, 1, 1L << 30, &block)) {
                cli_errorf("--block must be a positive integer (got '%s')", optarg);
                return EXIT_USAGE;
            }
            block_set = 1;
            break;
        case 'm': methods = optarg; break;
        case 'i':
            if (!cli_parse_int(optarg, 1, 1000000, &iters)) {
                cli_errorf("--iterations must be an integer in 1..1000000 (got '%s')", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'j': json = 1; break;
        case 't':
            if (!cli_parse_int(optarg, 1, 1024, &threads)) {
                cli_errorf("--threads must be an integer in 1..1024 (got '%s')", optarg);
                return EXIT_USAGE;
            }
            break;
        case 'h': cli_clip_usage(stdout); return EXIT_OK;
        case ':': cli_errorf("option '%s' needs a value", argv[optind - 1]); return EXIT_USAGE;
        default: cli_errorf("unknown option '%s' (try 'octav clip --help')", argv[optind - 1]); return EXIT_USAGE;
        }
    }
    if (is_unsigned) {
        if (gk == OCTAV_GRID_NARROW) { cli_errorf("--unsigned and --grid narrow exclude each other"); return EXIT_USAGE; }
        gk = OCTAV_GRID_UNSIGNED;
    }
    if (axis_set && gran != OCTAV_GRAN_CHANNEL) { cli_errorf("--axis needs --granularity channel"); return EXIT_USAGE; }
    if (block_set && gran != OCTAV_GRAN_BLOCK) { cli_errorf("--block needs --granularity block"); return EXIT_USAGE; }
    if (optind >= argc) { cli_errorf("no input files (try 'octav clip --help')"); return EXIT_USAGE; }
    method_t *m;
    int nm;
    if (!parse_methods(methods, &m, &nm)) return EXIT_USAGE;
    for (int k = 0; k < nm; k++) m[k].cfg.max_iter = (int)iters;
    if (threads) octav_set_threads((int)threads);

    octav_grid g = {(int)bits, gk};
    octav_group_spec spec = {gran, (int)axis, block};
    cli_tensor *tensors = NULL;
    int nt = 0, rc = EXIT_OK;
    for (int i = optind; i < argc && rc == EXIT_OK; i++)
        if (!cli_load_tensors(argv[i], &tensors, &nt)) rc = EXIT_FAIL;

    octav_solver *sv = NULL;
    cJSON *doc = NULL, *results = NULL;
    if (rc == EXIT_OK && octav_solver_create(&sv) != OCTAV_OK) { cli_error("solver"); rc = EXIT_FAIL; }
    if (rc == EXIT_OK && json) {
        doc = cJSON_CreateObject();
        results = doc ? cJSON_AddArrayToObject(doc, "results") : NULL;
        if (!results) { cli_errorf("out of memory"); rc = EXIT_FAIL; }
    }
    const int progress = !json && isatty(STDERR_FILENO) && nt > 1;
    for (int ti = 0; ti < nt && rc == EXIT_OK; ti++) {
        cli_tensor *ct = &tensors[ti];
        octav_layout lay;
        if (progress) fprintf(stderr, "\r[%d/%d] %s\033[K", ti + 1, nt, ct->label);
        if (octav_layout_make(&ct->t.shape, spec, &lay) != OCTAV_OK) { cli_error(ct->label); rc = EXIT_FAIL; break; }
        result_t *r = calloc((size_t)nm, sizeof *r);
        float *gmax = malloc((size_t)lay.ngroups * sizeof *gmax);
        int ok = r && gmax;
        for (int k = 0; k < nm && ok; k++) {
            r[k].scales = malloc((size_t)lay.ngroups * sizeof(float));
            r[k].iters = malloc((size_t)lay.ngroups * sizeof(int32_t));
            r[k].conv = malloc((size_t)lay.ngroups);
            ok = r[k].scales && r[k].iters && r[k].conv;
        }
        if (!ok) { cli_errorf("out of memory"); rc = EXIT_FAIL; }
        octav_clip_config maxcfg = octav_clip_default(OCTAV_CLIP_MAX);
        maxcfg.name = ct->label;
        if (ok && octav_clip(sv, &maxcfg, g, &lay, ct->t.data, gmax, NULL) != OCTAV_OK) {
            cli_error("clip");
            rc = EXIT_FAIL;
            ok = 0;
        }
        for (int k = 0; k < nm && ok; k++) {
            m[k].cfg.name = ct->label;
            octav_clip_info info = {r[k].iters, r[k].conv};
            if (octav_clip(sv, &m[k].cfg, g, &lay, ct->t.data, r[k].scales, &info) != OCTAV_OK ||
                octav_quant_error_eval(g, &lay, ct->t.data, r[k].scales, &r[k].err) != OCTAV_OK) {
                cli_error(m[k].name);
                rc = EXIT_FAIL;
                ok = 0;
            }
        }
        if (ok && progress) fprintf(stderr, "\r\033[K");
        if (ok && json) {
            for (int k = 0; k < nm && ok; k++) {
                cJSON *o = json_result(ct, &lay, g, &m[k], &r[k], spec);
                if (!o) { cli_errorf("out of memory"); rc = EXIT_FAIL; ok = 0; }
                else cJSON_AddItemToArray(results, o);
            }
        } else if (ok) {
            print_table(ct, &lay, g, m, nm, r, gmax);
        }
        for (int k = 0; r && k < nm; k++) { free(r[k].scales); free(r[k].iters); free(r[k].conv); }
        free(r);
        free(gmax);
    }
    if (progress && rc != EXIT_OK) fprintf(stderr, "\r\033[K");
    if (rc == EXIT_OK && json) {
        char *txt = cJSON_Print(doc);
        if (!txt) { cli_errorf("out of memory"); rc = EXIT_FAIL; }
        else { puts(txt); free(txt); }
    }
    if (fflush(stdout) != 0 && rc == EXIT_OK) { cli_errorf("writing output failed"); rc = EXIT_FAIL; }
    cJSON_Delete(doc);
    octav_solver_destroy(sv);
    cli_free_tensors(tensors, nt);
    free(m);
    return rc;
}
