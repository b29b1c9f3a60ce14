/* bench_solver.c -- speed of the OCTAV solver against the memory-bandwidth
 * floor (one plain read pass over the same data, same process, same thread
 * count), plus the paper's 100-point MSE sweep for scale.
 *
 *   octav_bench_solver [--quick] [--json] [--threads N] [--reps R] [--case SUBSTRING]
 *
 * Each case: one warm-up, then R timed repetitions; the median is reported
 * with the spread (min..max). Data: Laplace(1) floats from a fixed seed. */
#include "octav/quant.h"
#include "quant/internal.h"

#ifndef OCTAV_BENCH_CFLAGS
#define OCTAV_BENCH_CFLAGS "?"
#endif

static const char *octav_kernels_name_(void) { return octav_kernels_best()->name; }

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[i + j];
    for (; i < n; i++) acc[0] += x[i];
    float s = 0;
    for (int j = 0; j < 16; j++) s += acc[j];
    return s;
}

static volatile float sink;

static void read_pass(const float *x, int64_t n) {
    const int64_t P = 1 << 16, np = (n + P - 1) / P;
    float tot = 0;
#pragma omp parallel for schedule(static) reduction(+ : tot) if (np > 1)
    for (int64_t k = 0; k < np; k++) tot += read_pass_piece(x + k * P, (k + 1) * P <= n ? P : n - k * P);
    sink = tot;
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

static int g_json, g_first = 1, g_reps = 7;
static const char *g_only; /* --case SUBSTRING: run only matching cases */

static void report(const char *cas, int64_t n, int64_t groups, timing t, timing f, int32_t iters) {
    int threads = omp_get_max_threads();
    if (g_json) {
        printf("%s    {\"case\": \"%s\", \"n\": %lld, \"groups\": %lld, \"threads\": %d, \"ms\": %.4f, "
               "\"ms_min\": %.4f, \"ms_max\": %.4f, \"floor_ms\": %.4f, \"ratio_to_floor\": %.3f, \"iterations\": %d}",
               g_first ? "" : ",\n", cas, (long long)n, (long long)groups, threads, t.med, t.lo, t.hi, f.med,
               t.med / f.med, iters);
    } else {
        printf("%-24s %10lld %8lld %3d %10.3f (%8.3f..%8.3f) %9.3f %7.2fx %5d\n", cas, (long long)n,
               (long long)groups, threads, t.med, t.lo, t.hi, f.med, t.med / f.med, iters);
    }
    g_first = 0;
    fflush(stdout);
}

/* warm: start every group from 1.02x its converged scale, as in training
 * where the previous step's scale seeds the next solve. */
static void run_case_w(const char *cas, const float *x, octav_shape shp, octav_group_spec spec,
                       octav_clip_method method, octav_solver *sv, int warm) {
    octav_layout lay;
    if (g_only && !strstr(cas, g_only)) return;
    if (octav_layout_make(&shp, spec, &lay) != OCTAV_OK) { fprintf(stderr, "%s\n", octav_last_error()); exit(1); }
    octav_grid g = {4, OCTAV_GRID_FULL};
    octav_clip_config cfg = octav_clip_default(method);
    float *s = malloc((size_t)lay.ngroups * sizeof *s);
    int32_t *it = calloc((size_t)lay.ngroups, sizeof *it);
    octav_clip_info info = {it, NULL};
    double ts[64], tf[64];
    int reps = method == OCTAV_CLIP_MSE_SWEEP ? 3 : g_reps;
    octav_clip(sv, &cfg, g, &lay, x, s, &info); /* warm-up (and workspace) */
    float *w = NULL;
    if (warm) {
        w = malloc((size_t)lay.ngroups * sizeof *w);
        for (int64_t i = 0; i < lay.ngroups; i++) w[i] = s[i] * 1.02f;
        cfg.warm_start = w;
    }
    read_pass(x, lay.numel);
    for (int r = 0; r < reps; r++) {
        double t0 = now_ms();
        read_pass(x, lay.numel);
        double t1 = now_ms();
        if (octav_clip(sv, &cfg, g, &lay, x, s, &info) != OCTAV_OK) { fprintf(stderr, "%s\n", octav_last_error()); exit(1); }
        double t2 = now_ms();
        tf[r] = t1 - t0;
        ts[r] = t2 - t1;
    }
    int32_t maxit = 0;
    for (int64_t i = 0; i < lay.ngroups; i++) maxit = it[i] > maxit ? it[i] : maxit;
    report(cas, lay.numel, lay.ngroups, summarize(ts, reps), summarize(tf, reps), maxit);
    free(s);
    free(it);
    free(w);
}

static void run_case(const char *cas, const float *x, octav_shape shp, octav_group_spec spec,
                     octav_clip_method method, octav_solver *sv) {
    run_case_w(cas, x, shp, spec, method, sv, 0);
}

int main(int argc, char **argv) {
    int quick = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--json")) g_json = 1;
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) omp_set_num_threads(atoi(argv[++i]));
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) g_reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--case") && i + 1 < argc) g_only = argv[++i];
        else { fprintf(stderr, "usage: %s [--quick] [--json] [--threads N] [--reps R] [--case SUBSTRING]\n", argv[0]); return 2; }
    }
    if (g_reps < 1 || g_reps > 64) g_reps = 7;
    octav_set_threads(omp_get_max_threads());
    const int64_t nmax = quick ? (1 << 20) : (int64_t)1 << 26;
    float *x = malloc((size_t)nmax * sizeof *x);
    uint64_t st = 0x1234;
    for (int64_t i = 0; i < nmax; i++) {
        st = st * 6364136223846793005ull + 1442695040888963407ull;
        double u = ((st >> 11) + 0.5) / 9007199254740992.0 - 0.5;
        x[i] = (float)(u < 0 ? log(1 + 2 * u) : -log(1 - 2 * u));
    }
    octav_solver *sv;
    octav_solver_create(&sv);
    if (g_json) {
        char date[32];
        time_t now = time(NULL);
        strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
        printf("{\"date\": \"%s\", \"kernels\": \"%s\", \"cflags\": \"%s\",\n\"cases\": [\n", date,
               octav_kernels_name_(), OCTAV_BENCH_CFLAGS);
    }
    else printf("%-24s %10s %8s %3s %10s %20s %9s %8s %5s\n", "case", "n", "groups", "thr", "ms(median)",
                "(min..max)", "floor_ms", "ratio", "iters");
    char name[64];
    for (int64_t n = 4096; n <= nmax; n *= 4) {
        snprintf(name, sizeof name, "solver/per-tensor");
        run_case(name, x, (octav_shape){1, {n}}, (octav_group_spec){OCTAV_GRAN_TENSOR, 0, 0}, OCTAV_CLIP_OCTAV, sv);
    }
    run_case_w("solver/per-tensor-warm", x, (octav_shape){1, {quick ? 1 << 20 : 1 << 24}},
               (octav_group_spec){OCTAV_GRAN_TENSOR, 0, 0}, OCTAV_CLIP_OCTAV, sv, 1);
    if (quick) {
        run_case("solver/per-channel", x, (octav_shape){2, {256, 4096}}, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, OCTAV_CLIP_OCTAV, sv);
        run_case("solver/per-block-32", x, (octav_shape){2, {256, 4096}}, (octav_group_spec){OCTAV_GRAN_BLOCK, 0, 32}, OCTAV_CLIP_OCTAV, sv);
    } else {
        run_case("solver/per-channel", x, (octav_shape){2, {4096, 4096}}, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, OCTAV_CLIP_OCTAV, sv);
        run_case_w("solver/per-channel-warm", x, (octav_shape){2, {4096, 4096}}, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, OCTAV_CLIP_OCTAV, sv, 1);
        run_case("solver/per-channel", x, (octav_shape){4, {512, 512, 3, 3}}, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, OCTAV_CLIP_OCTAV, sv);
        static const int64_t V[3] = {16, 32, 128};
        for (int k = 0; k < 3; k++) {
            snprintf(name, sizeof name, "solver/per-block-%lld", (long long)V[k]);
            run_case(name, x, (octav_shape){2, {4096, 4096}}, (octav_group_spec){OCTAV_GRAN_BLOCK, 0, V[k]}, OCTAV_CLIP_OCTAV, sv);
        }
    }
    run_case("sweep/mse-100", x, (octav_shape){1, {quick ? 65536 : 1 << 20}}, (octav_group_spec){OCTAV_GRAN_TENSOR, 0, 0}, OCTAV_CLIP_MSE_SWEEP, sv);
    if (g_json) printf("\n]}\n");
    octav_solver_destroy(sv);
    free(x);
    return 0;
}
