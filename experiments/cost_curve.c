/* cost_curve.c -- data for the first figures of docs/RESULTS.md (issue 5,
 * paper Figure 1): the OCTAV model cost J(s), the convex cost Jt(s) that
 * the recursion minimises, and the true quantization MSE against the
 * clipping scalar s, with every clipping method's answer marked; OCTAV's
 * trajectories s_n from several starts; and the clipping ratios of OCTAV
 * and ACIQ under exact expectations.
 *
 *   octav_exp_curve OUTDIR [EXAMPLE.safetensors]
 *
 * Writes OUTDIR/ratios.tsv, curve_SRC_B.tsv, marks_SRC_B.tsv and
 * traj_SRC_B.tsv for SRC in gauss, laplace (1M samples, fixed seed) and the
 * example's conv3.weight / conv3.input tensors, B in 2, 4, 8. */
#define _POSIX_C_SOURCE 200809L
#include "octav/io.h"
#include "octav/quant.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static double unif(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}

/* Convex cost the recursion minimises (docs/METHOD.md), per element. */
static double cost_jt(const float *x, int64_t n, octav_grid g, double s) {
    const double c = octav_grid_noise_c(g);
    const int uns = g.kind == OCTAV_GRID_UNSIGNED;
    double J = 0;
    for (int64_t i = 0; i < n; i++) {
        double m = uns ? (x[i] > 0 ? x[i] : 0) : fabs(x[i]);
        if (m == 0) continue;
        J += m <= s ? c * (s * s - m * m) : (m - s) * (m - s);
    }
    return J / (double)n;
}

static int fail(const char *what) {
    fprintf(stderr, "octav_exp_curve: %s: %s\n", what, octav_last_error());
    return 1;
}

static FILE *open_out(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) perror(path);
    return f;
}

static int one_source(const char *dir, const char *src, const float *x, int64_t n, int is_unsigned, octav_solver *sv) {
    static const int bits[3] = {2, 4, 8};
    static const char *methods[] = {"octav", "max", "percentile-99.9", "percentile-99.99", "sigma-3",
                                    "aciq-laplace", "aciq-gauss", "mse-sweep", "entropy"};
    octav_shape shp = {1, {n}};
    octav_layout lay;
    if (octav_layout_make(&shp, (octav_group_spec){OCTAV_GRAN_TENSOR, 0, 0}, &lay)) return fail(src);
    for (int bi = 0; bi < 3; bi++) {
        octav_grid g = {bits[bi], is_unsigned ? OCTAV_GRID_UNSIGNED : OCTAV_GRID_FULL};
        char name[128];
        float smax;
        octav_clip_config mc = octav_clip_default(OCTAV_CLIP_MAX);
        if (octav_clip(sv, &mc, g, &lay, x, &smax, NULL)) return fail(src);
        /* curve: 400 points of s / max|x| in (0, 1] */
        snprintf(name, sizeof name, "curve_%s_%d.tsv", src, g.bits);
        FILE *f = open_out(dir, name);
        if (!f) return 1;
        fprintf(f, "# s\ts_over_max\tJ_model\tJt_convex\tmse_true\n");
        for (int k = 1; k <= 400; k++) {
            float s = (float)(smax * k / 400.0);
            octav_quant_error qe;
            if (octav_quant_error_eval(g, &lay, x, &s, &qe)) return fail(src);
            fprintf(f, "%.9g\t%.6f\t%.9g\t%.9g\t%.9g\n", s, k / 400.0, octav_model_cost(x, n, g, s),
                    cost_jt(x, n, g, s), qe.mse);
        }
        fclose(f);
        /* every method's answer on the true MSE */
        snprintf(name, sizeof name, "marks_%s_%d.tsv", src, g.bits);
        if (!(f = open_out(dir, name))) return 1;
        fprintf(f, "# method\ts\ts_over_max\tmse_true\tsqnr_db\n");
        for (size_t m = 0; m < sizeof methods / sizeof *methods; m++) {
            octav_clip_config cfg;
            float s;
            octav_quant_error qe;
            if (octav_clip_parse(methods[m], &cfg) || octav_clip(sv, &cfg, g, &lay, x, &s, NULL) ||
                octav_quant_error_eval(g, &lay, x, &s, &qe))
                return fail(methods[m]);
            fprintf(f, "%s\t%.9g\t%.6f\t%.9g\t%.4f\n", methods[m], s, s / smax, qe.mse, qe.sqnr_db);
        }
        fclose(f);
        /* trajectories s_n (n = 0..15) from four starts */
        snprintf(name, sizeof name, "traj_%s_%d.tsv", src, g.bits);
        if (!(f = open_out(dir, name))) return 1;
        double starts[4] = {0.0 /* paper: mean of non-zero |x| */, smax, 0.01 * smax, 0.0};
        double sum2 = 0;
        for (int64_t i = 0; i < n; i++) sum2 += (double)x[i] * x[i];
        starts[3] = 5.0 * sqrt(sum2 / n);
        fprintf(f, "# n\tfrom_mean\tfrom_max\tfrom_0.01max\tfrom_5sigma\n");
        for (int it = 0; it <= 15; it++) {
            fprintf(f, "%d", it);
            for (int k = 0; k < 4; k++) {
                double s = it == 0 ? starts[k] : octav_solve_ref(x, n, g, starts[k], it, NULL, NULL);
                if (it == 0 && k == 0) s = octav_solve_ref(x, n, g, 0.0, 0, NULL, NULL);
                fprintf(f, "\t%.9g", s);
            }
            fprintf(f, "\n");
        }
        fclose(f);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: octav_exp_curve OUTDIR [EXAMPLE.safetensors]\n"); return 2; }
    const char *dir = argv[1];
    FILE *f = open_out(dir, "ratios.tsv");
    if (!f) return 1;
    fprintf(f, "# bits\toctav_laplace\taciq_laplace\toctav_gauss\taciq_gauss\n");
    for (int b = 2; b <= 8; b++) {
        octav_grid g = {b, OCTAV_GRID_FULL};
        fprintf(f, "%d\t%.4f\t%.4f\t%.4f\t%.4f\n", b, octav_fixed_point_laplace(g), octav_aciq_ratio_laplace(g),
                octav_fixed_point_gauss(g), octav_aciq_ratio_gauss(g));
    }
    fclose(f);
    octav_solver *sv;
    if (octav_solver_create(&sv)) return fail("solver");
    const int64_t n = 1 << 20;
    float *x = malloc((size_t)n * sizeof *x);
    if (!x) return 1;
    for (int64_t i = 0; i < n; i++) {
        double u = unif(), v = unif();
        x[i] = (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
    }
    if (one_source(dir, "gauss", x, n, 0, sv)) return 1;
    for (int64_t i = 0; i < n; i++) {
        double u = unif() - 0.5;
        x[i] = (float)(u < 0 ? log(1 + 2 * u) : -log(1 - 2 * u));
    }
    if (one_source(dir, "laplace", x, n, 0, sv)) return 1;
    free(x);
    if (argc > 2) {
        octav_safetensors st;
        if (octav_safetensors_read(argv[2], &st)) return fail(argv[2]);
        const char *names[2] = {"conv3.weight", "conv3.input"};
        const char *labels[2] = {"cnn_conv3_weight", "cnn_conv3_input"};
        for (int k = 0; k < 2; k++) {
            const octav_tensor *t = octav_safetensors_find(&st, names[k]);
            if (!t) { fprintf(stderr, "octav_exp_curve: %s has no %s\n", argv[2], names[k]); return 1; }
            if (one_source(dir, labels[k], t->data, octav_shape_numel(&t->shape), k == 1, sv)) return 1;
        }
        octav_safetensors_free(&st);
    }
    octav_solver_destroy(sv);
    return 0;
}
