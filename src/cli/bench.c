/* bench.c -- `octav bench`: speed of the OCTAV solver and of fake
 * quantization, always as a ratio to a floor measured in the same process
 * with the same threads right before each repetition:
 *   solver     one plain read pass over the same tensor;
 *   fakequant  a plain copy with the same traffic (forward: read x, write y;
 *              backward: read x and dy, write dx).
 * Each case runs once to warm up, then R times; the median and the range
 * are reported. Data: Laplace(1) floats from a fixed seed. With
 * --uncached the solver's tensor is flushed from every cache level before
 * each timed floor and each timed solve, so both read it from DRAM. 
 * The training-step cases (`octav bench train`) are in bench_train.c. */
#define _POSIX_C_SOURCE 200809L
#include "cli/bench.h"
#include "cli/cli.h"
#include "quant/internal.h"

#ifndef OCTAV_BENCH_CFLAGS
#define OCTAV_BENCH_CFLAGS "?"
#endif

#include <getopt.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_CLFLUSH 1
#else
#define HAVE_CLFLUSH 0
#endif

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* The floor: one read of every float (vectorised sum, OpenMP like the solver). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static float read_pass_piece(const float *x, int64_t n) {
    float acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        /* the solver's passes prefetch 1 KB ahead; so does the floor, which
         * is a little faster for it on this machine */
        __builtin_prefetch(x + i + 256, 0, 3);
        for (int j = 0; j < 16; j++) acc[j] += x[i + j];
    }
    for (; i < n; i++) acc[0] += x[i];
    float s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

static volatile float sink;

#define PIECE ((int64_t)1 << 16)

static void read_pass(const float *x, int64_t n) {
    const int64_t np = (n + PIECE - 1) / PIECE;
    float tot = 0;
#pragma omp parallel for schedule(static) reduction(+ : tot) if (np > 1)
    for (int64_t k = 0; k < np; k++) tot += read_pass_piece(x + k * PIECE, (k + 1) * PIECE <= n ? PIECE : n - k * PIECE);
    sink = tot;
}

/* The fake-quant floors: a copy (1 in, 1 out) and a sum (2 in, 1 out). */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void stream_piece(const float *restrict a, const float *restrict b, float *restrict y, int64_t n) {
    if (b)
        for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
    else
        memcpy(y, a, (size_t)n * sizeof *y);
}

static void stream_pass(const float *a, const float *b, float *y, int64_t n) {
    const int64_t np = (n + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(static) if (np > 1)
    for (int64_t k = 0; k < np; k++)
        stream_piece(a + k * PIECE, b ? b + k * PIECE : NULL, y + k * PIECE,
                     (k + 1) * PIECE <= n ? PIECE : n - k * PIECE);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double med, lo, hi;
} timing;

static timing summarize(double *t, int r) {
    qsort(t, (size_t)r, sizeof *t, cmp_d);
    return (timing){t[r / 2], t[0], t[r - 1]};
}

static int g_json, g_first = 1, g_reps = 7, g_uncached;

/* Writes back and evicts x[0..n) from every cache level (--uncached). The
 * caller checked HAVE_CLFLUSH. */
static void flush_cache(const float *x, int64_t n) {
#if HAVE_CLFLUSH
    const int64_t np = (n + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(static) if (np > 1)
    for (int64_t k = 0; k < np; k++) {
        const int64_t end = (k + 1) * PIECE <= n ? (k + 1) * PIECE : n;
        for (int64_t i = k * PIECE; i < end; i += 16) _mm_clflush(x + i);
        _mm_clflush(x + end - 1); /* the last line when x is not 64-byte aligned */
    }
    _mm_mfence();
#else
    (void)x; (void)n;
#endif
}
static const char *g_only; /* --case SUBSTRING: run only matching cases */

/* for bench_train.c */
double bench_now_ms(void) { return now_ms(); }
bench_timing bench_summarize(double *t, int r) {
    timing s = summarize(t, r);
    return (bench_timing){s.med, s.lo, s.hi};
}

/* One result line; bytes > 0 adds the throughput in GB/s. */
static void report(const char *cas, int64_t n, int64_t groups, timing t, timing f, int32_t iters, double bytes) {
    int threads = octav_get_threads();
    double gbps = bytes > 0 ? bytes / (t.med * 1e6) : 0;
    if (g_json) {
        printf("%s    {\"case\": \"%s\", \"n\": %lld, \"groups\": %lld, \"threads\": %d, \"ms\": %.4f, "
               "\"ms_min\": %.4f, \"ms_max\": %.4f, \"floor_ms\": %.4f, \"ratio_to_floor\": %.3f",
               g_first ? "" : ",\n", cas, (long long)n, (long long)groups, threads, t.med, t.lo, t.hi, f.med,
               t.med / f.med);
        if (iters >= 0) printf(", \"iterations\": %d", iters);
        if (bytes > 0) printf(", \"gb_per_s\": %.2f, \"floor_gb_per_s\": %.2f", gbps, bytes / (f.med * 1e6));
        printf("}");
    } else {
        char extra[48] = "";
        if (iters >= 0) snprintf(extra, sizeof extra, "%5d", iters);
        else if (bytes > 0) snprintf(extra, sizeof extra, "%6.1f GB/s", gbps);
        printf("%-30s %10lld %8lld %3d %10.3f (%8.3f..%8.3f) %9.3f %7.2fx  %s\n", cas, (long long)n,
               (long long)groups, threads, t.med, t.lo, t.hi, f.med, t.med / f.med, extra);
    }
    g_first = 0;
    fflush(stdout);
}

/* ---- solver cases ------------------------------------------------------- */

/* warm: start every group from 1.02x its converged scale, as in training
 * where the previous step's scale seeds the next solve. */
static int solver_case(const char *cas, const float *x, octav_shape shp, octav_group_spec spec,
                       octav_clip_method method, octav_solver *sv, int warm) {
    octav_layout lay;
    if (g_only && !strstr(cas, g_only)) return 0;
    if (octav_layout_make(&shp, spec, &lay) != OCTAV_OK) { cli_error(cas); return 1; }
    octav_grid g = {4, OCTAV_GRID_FULL};
    octav_clip_config cfg = octav_clip_default(method);
    float *s = malloc((size_t)lay.ngroups * sizeof *s), *w = NULL;
    int32_t *it = calloc((size_t)lay.ngroups, sizeof *it);
    double ts[64], tf[64];
    const int reps = method == OCTAV_CLIP_MSE_SWEEP ? (g_reps < 3 ? g_reps : 3) : g_reps;
    octav_clip_info info = {it, NULL};
    int rc = !s || !it;
    if (!rc && octav_clip(sv, &cfg, g, &lay, x, s, &info) != OCTAV_OK) rc = 1; /* warm-up, workspace */
    if (!rc && warm) {
        w = malloc((size_t)lay.ngroups * sizeof *w);
        if (!w) rc = 1;
        for (int64_t i = 0; !rc && i < lay.ngroups; i++) w[i] = s[i] * 1.02f;
        cfg.warm_start = w;
    }
    read_pass(x, lay.numel);
    for (int r = 0; r < reps && !rc; r++) {
        if (g_uncached) flush_cache(x, lay.numel);
        double t0 = now_ms();
        read_pass(x, lay.numel);
        double t1 = now_ms();
        if (g_uncached) flush_cache(x, lay.numel);
        double t2 = now_ms();
        if (octav_clip(sv, &cfg, g, &lay, x, s, &info) != OCTAV_OK) rc = 1;
        double t3 = now_ms();
        tf[r] = t1 - t0;
        ts[r] = t3 - t2;
    }
    if (rc) cli_error(cas);
    else {
        int32_t maxit = 0;
        for (int64_t i = 0; i < lay.ngroups; i++) maxit = it[i] > maxit ? it[i] : maxit;
        report(cas, lay.numel, lay.ngroups, summarize(ts, reps), summarize(tf, reps), maxit, 0);
    }
    free(s);
    free(it);
    free(w);
    return rc;
}

static int bench_solver(const float *x, int64_t nmax, int quick) {
    octav_solver *sv;
    if (octav_solver_create(&sv) != OCTAV_OK) { cli_error("solver"); return 1; }
    const octav_group_spec T = {OCTAV_GRAN_TENSOR, 0, 0}, C = {OCTAV_GRAN_CHANNEL, 0, 0};
    int rc = 0;
    for (int64_t n = 4096; n <= nmax && !rc; n *= 4)
        rc |= solver_case("solver/per-tensor", x, (octav_shape){1, {n}}, T, OCTAV_CLIP_OCTAV, sv, 0);
    rc |= solver_case("solver/per-tensor-warm", x, (octav_shape){1, {quick ? 1 << 20 : 1 << 24}}, T, OCTAV_CLIP_OCTAV,
                      sv, 1);
    const int64_t rows = quick ? 256 : 4096;
    rc |= solver_case("solver/per-channel", x, (octav_shape){2, {rows, 4096}}, C, OCTAV_CLIP_OCTAV, sv, 0);
    rc |= solver_case("solver/per-channel-warm", x, (octav_shape){2, {rows, 4096}}, C, OCTAV_CLIP_OCTAV, sv, 1);
    if (!quick)
        rc |= solver_case("solver/per-channel", x, (octav_shape){4, {512, 512, 3, 3}}, C, OCTAV_CLIP_OCTAV, sv, 0);
    static const int64_t V[3] = {16, 32, 128};
    char name[64];
    for (int k = 0; k < 3 && !rc; k++) {
        snprintf(name, sizeof name, "solver/per-block-%lld", (long long)V[k]);
        rc |= solver_case(name, x, (octav_shape){2, {rows, 4096}}, (octav_group_spec){OCTAV_GRAN_BLOCK, 0, V[k]},
                          OCTAV_CLIP_OCTAV, sv, 0);
    }
    rc |= solver_case("sweep/mse-100", x, (octav_shape){1, {quick ? 65536 : 1 << 20}}, T, OCTAV_CLIP_MSE_SWEEP, sv, 0);
    octav_solver_destroy(sv);
    return rc;
}

/* ---- fake quantization cases --------------------------------------------- */

typedef struct {
    const char *name;
    int backward;
    octav_grad_est est;
    octav_scale_grad sg;
} fq_kind;

static int fakequant_case(const char *cas, const fq_kind *k, const float *x, const float *dy, float *out,
                          octav_shape shp, octav_group_spec spec, octav_solver *sv) {
    octav_layout lay;
    if (g_only && !strstr(cas, g_only)) return 0;
    if (octav_layout_make(&shp, spec, &lay) != OCTAV_OK) { cli_error(cas); return 1; }
    octav_grid g = {4, OCTAV_GRID_FULL};
    octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
    float *s = malloc((size_t)lay.ngroups * sizeof *s);
    double *ds = malloc((size_t)lay.ngroups * sizeof *ds);
    int rc = !s || !ds || octav_clip(sv, &cfg, g, &lay, x, s, NULL) != OCTAV_OK;
    double ts[64], tf[64];
    for (int r = -1; r < g_reps && !rc; r++) { /* r = -1: warm-up */
        double t0 = now_ms();
        stream_pass(x, k->backward ? dy : NULL, out, lay.numel);
        double t1 = now_ms();
        if (k->backward) rc = octav_fq_backward(g, &lay, x, s, dy, k->est, k->sg, out, ds) != OCTAV_OK;
        else rc = octav_fq_forward(g, &lay, x, s, out) != OCTAV_OK;
        double t2 = now_ms();
        if (r >= 0) { tf[r] = t1 - t0; ts[r] = t2 - t1; }
    }
    if (rc) cli_error(cas);
    else report(cas, lay.numel, lay.ngroups, summarize(ts, g_reps), summarize(tf, g_reps), -1,
                (double)lay.numel * sizeof(float) * (k->backward ? 3 : 2));
    free(s);
    free(ds);
    return rc;
}

static int bench_fakequant(const float *x, int64_t nmax, int quick) {
    const int64_t n = quick ? 1 << 20 : 1 << 24;
    (void)nmax;
    float *dy = malloc((size_t)n * sizeof *dy), *out = malloc((size_t)n * sizeof *out);
    octav_solver *sv = NULL;
    if (!dy || !out || octav_solver_create(&sv) != OCTAV_OK) {
        free(dy); free(out);
        cli_errorf("bench: out of memory");
        return 1;
    }
    for (int64_t i = 0; i < n; i++) dy[i] = x[(i * 7 + 3) % n] * 0.01f;
    static const fq_kind kinds[] = {{"forward", 0, OCTAV_GRAD_STE, OCTAV_SGRAD_NONE},
                                    {"ste", 1, OCTAV_GRAD_STE, OCTAV_SGRAD_NONE},
                                    {"pwl", 1, OCTAV_GRAD_PWL, OCTAV_SGRAD_NONE},
                                    {"mad", 1, OCTAV_GRAD_MAD, OCTAV_SGRAD_NONE},
                                    {"pwl+lsq", 1, OCTAV_GRAD_PWL, OCTAV_SGRAD_LSQ}};
    int rc = 0;
    char name[64];
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds && !rc; k++) {
        snprintf(name, sizeof name, "fakequant/%s/per-tensor", kinds[k].name);
        rc |= fakequant_case(name, &kinds[k], x, dy, out, (octav_shape){1, {n}}, (octav_group_spec){OCTAV_GRAN_TENSOR, 0, 0}, sv);
        snprintf(name, sizeof name, "fakequant/%s/per-channel", kinds[k].name);
        rc |= fakequant_case(name, &kinds[k], x, dy, out, (octav_shape){2, {n / 4096, 4096}},
                             (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, sv);
    }
    octav_solver_destroy(sv);
    free(dy);
    free(out);
    return rc;
}

void cli_bench_usage(FILE *f) {
    fprintf(f,
            "usage: octav bench [solver|fakequant|kernels|train|all] [options]\n"
            "\n"
            "Times the OCTAV solver and fake quantization against the memory floor\n"
            "measured in the same run (a plain read pass, or a copy with the same\n"
            "traffic), and reports the median of R runs after a warm-up.\n"
            "`train` times training steps (forward, loss, backward, SGD update) of\n"
            "cnn, resnet20 and mobilenetv2 on random data: float, and 4-bit QAT with\n"
            "max-scaling and with dynamic OCTAV (cases train/MODEL/float|max|octav);\n"
            "the floor of a QAT case is the float step of the same model.\n"
            "`kernels` is solver and fakequant; `all` (the default) adds train.\n"
            "\n"
            "options:\n"
            "  -q, --quick       small sizes (seconds; what `make test` runs); train:\n"
            "                    cnn only, batch 16, 1 warm-up step\n"
            "  -j, --json        one JSON document: {\"cases\": [{\"case\", \"n\", \"threads\",\n"
            "                    \"ms\", \"floor_ms\", \"ratio_to_floor\", ...}, ...]}\n"
            "  -t, --threads N   threads (default: all cores)\n"
            "  -r, --reps R      timed repetitions (train: timed steps) per case, 1..64\n"
            "                    (default 7)\n"
            "  -c, --case TEXT   only the cases whose name contains TEXT\n"
            "  --uncached        solver: flush the tensor from every cache level before\n"
            "                    each timed floor and solve, so both read from DRAM\n"
            "                    (x86 only)\n"
            "  -h, --help        show this help\n"
            "train only:\n"
            "  --batch N         images per step (default 128)\n"
            "  --warmup W        untimed steps before the timed ones (default 3)\n"
            "  --input SHAPE     fmnist (1x28x28, default) or cifar (3x32x32)\n"
            "  --width X         mobilenetv2 width multiplier (default 1.0)\n");
}

int cli_bench(int argc, char **argv) {
    static const struct option opts[] = {{"quick", no_argument, 0, 'q'},     {"json", no_argument, 0, 'j'},
                                         {"threads", required_argument, 0, 't'}, {"reps", required_argument, 0, 'r'},
                                         {"case", required_argument, 0, 'c'},    {"help", no_argument, 0, 'h'},
                                         {"batch", required_argument, 0, 'B'},   {"warmup", required_argument, 0, 'W'},
                                         {"input", required_argument, 0, 'I'},   {"width", required_argument, 0, 'X'},
                                         {"uncached", no_argument, 0, 'U'},      {0, 0, 0, 0}};
    int quick = 0, c;
    long v;
    bench_train_opts to = {.warmup = -1};
    const char *train_opt = NULL; /* the last train-only option given */
    char *end;
    optind = 1;
    opterr = 0;
    g_uncached = 0;
    while ((c = getopt_long(argc, argv, ":qjt:r:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'q': quick = 1; break;
        case 'j': g_json = 1; break;
        case 't':
            if (!cli_parse_int(optarg, 1, 1024, &v)) { cli_errorf("--threads must be in 1..1024"); return EXIT_USAGE; }
            octav_set_threads((int)v);
            omp_set_num_threads((int)v);
            break;
        case 'r':
            if (!cli_parse_int(optarg, 1, 64, &v)) { cli_errorf("--reps must be in 1..64"); return EXIT_USAGE; }
            g_reps = (int)v;
            break;
        case 'c': g_only = optarg; break;
        case 'B':
            train_opt = "--batch";
            if (!cli_parse_int(optarg, 1, 65536, &v)) { cli_errorf("--batch must be in 1..65536"); return EXIT_USAGE; }
            to.batch = v;
            break;
        case 'W':
            train_opt = "--warmup";
            if (!cli_parse_int(optarg, 0, 1000, &v)) { cli_errorf("--warmup must be in 0..1000"); return EXIT_USAGE; }
            to.warmup = (int)v;
            break;
        case 'I':
            train_opt = "--input";
            if (!strcmp(optarg, "cifar")) to.cifar = 1;
            else if (!strcmp(optarg, "fmnist")) to.cifar = 0;
            else { cli_errorf("--input '%s': expected fmnist or cifar", optarg); return EXIT_USAGE; }
            break;
        case 'X':
            train_opt = "--width";
            to.width = strtod(optarg, &end);
            if (end == optarg || *end || !(to.width > 0 && to.width <= 4)) {
                cli_errorf("--width must be in (0, 4]");
                return EXIT_USAGE;
            }
            break;
        case 'U':
            if (!HAVE_CLFLUSH) { cli_errorf("--uncached needs an x86 CPU (clflush)"); return EXIT_USAGE; }
            g_uncached = 1;
            break;
        case 'h': cli_bench_usage(stdout); return EXIT_OK;
        case ':': cli_errorf("option '%s' needs a value", argv[optind - 1]); return EXIT_USAGE;
        default: cli_errorf("unknown option '%s' (try 'octav bench --help')", argv[optind - 1]); return EXIT_USAGE;
        }
    }
    int do_solver = 1, do_fq = 1, do_train = 1;
    for (int i = optind; i < argc; i++) {
        if (!strcmp(argv[i], "solver")) { do_fq = do_train = 0; }
        else if (!strcmp(argv[i], "fakequant")) { do_solver = do_train = 0; }
        else if (!strcmp(argv[i], "train")) { do_solver = do_fq = 0; }
        else if (!strcmp(argv[i], "kernels")) { do_train = 0; }
        else if (strcmp(argv[i], "all") != 0) {
            cli_errorf("unknown benchmark '%s' (expected solver, fakequant, kernels, train or all)", argv[i]);
            return EXIT_USAGE;
        }
    }
    if (optind + 1 < argc) {
        cli_errorf("name one benchmark (solver, fakequant, kernels, train or all)");
        return EXIT_USAGE;
    }
    /* options that would be ignored by the chosen benchmark are errors */
    if (g_uncached && !do_solver) {
        cli_errorf("--uncached applies to the solver cases only (bench solver, kernels or all)");
        return EXIT_USAGE;
    }
    if (train_opt && !do_train) {
        cli_errorf("%s applies to the train cases only (bench train or all)", train_opt);
        return EXIT_USAGE;
    }
    to.quick = quick;
    /* the solver / fake-quant data; not made for train alone, whose peak
     * RSS it would inflate */
    const int64_t nmax = !(do_solver || do_fq) ? 1 : quick ? (1 << 20) : (int64_t)1 << 26;
    float *x = malloc((size_t)nmax * sizeof *x);
    if (!x) { cli_errorf("bench: out of memory"); return EXIT_FAIL; }
    uint64_t st = 0x1234;
    for (int64_t i = 0; i < nmax; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u = ((st >> 11) + 0.5) / 9007199254740992.0 - 0.5;
        x[i] = (float)(u < 0 ? log(1 + 2 * u) : -log(1 - 2 * u));
    }
    if (g_json) {
        char date[32];
        time_t now = time(NULL);
        strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
        printf("{\"date\": \"%s\", \"kernels\": \"%s\", \"cflags\": \"%s\", \"uncached\": %s,\n\"cases\": [\n",
               date, octav_kernels_best()->name, OCTAV_BENCH_CFLAGS, g_uncached ? "true" : "false");
    } else if (do_solver || do_fq) {
        printf("%-30s %10s %8s %3s %10s %20s %9s %8s  %s\n", "case", "n", "groups", "thr", "ms(median)", "(min..max)",
               "floor_ms", "ratio", "steps / rate");
    }
    int rc = 0;
    if (do_solver) rc |= bench_solver(x, nmax, quick);
    if (do_fq && !rc) rc |= bench_fakequant(x, nmax, quick);
    if (do_train && !rc) {
        bench_out o = {g_json, g_first, g_reps, g_only};
        rc |= bench_train(&o, &to);
        g_first = o.first;
    }
    if (g_json) printf("\n]}\n");
    free(x);
    return rc ? EXIT_FAIL : EXIT_OK;
}
