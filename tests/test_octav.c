/* test_octav.c -- the OCTAV solver: fixed points against the published
 * expectation values (paper-notes §3), brute-force minimisation of the model
 * cost on the data, the fast solver against the scalar reference for every
 * kernel set and thread count, grids' constants, zeros, warm starts,
 * degenerate groups and non-finite input. */
#include "octav/quant.h"
#include "quant/internal.h"
#include "test.h"

static const octav_grid FULL4 = {4, OCTAV_GRID_FULL};

static float *laplace(int64_t n, uint64_t seed, double b) {
    trng r = {seed, 0, 0};
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(b * trng_laplace(&r));
    return x;
}

static float *gauss(int64_t n, uint64_t seed, double sigma) {
    trng r = {seed, 0, 0};
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++) x[i] = (float)(sigma * trng_gauss(&r));
    return x;
}

static float solve1(const float *x, int64_t n, octav_grid g, const float *warm, int max_iter,
                    int32_t *it, uint8_t *cv) {
    octav_shape shp = {1, {n}};
    octav_layout lay;
    CHECK(octav_layout_make(&shp, (octav_group_spec){OCTAV_GRAN_TENSOR, 0, 0}, &lay) == OCTAV_OK);
    octav_solver *sv;
    CHECK(octav_solver_create(&sv) == OCTAV_OK);
    octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
    cfg.warm_start = warm;
    if (max_iter) cfg.max_iter = max_iter;
    float s = -1;
    octav_clip_info info = {it, cv};
    CHECK(octav_clip(sv, &cfg, g, &lay, x, &s, &info) == OCTAV_OK);
    octav_solver_destroy(sv);
    return s;
}

/* Published fixed points of the exact-expectation recursion (paper-notes §3). */
static const double LAPLACE_FP[7] = {2.874, 3.913, 5.034, 6.207, 7.414, 8.646, 9.897};
static const double GAUSS_FP[7] = {1.739, 2.161, 2.562, 2.937, 3.287, 3.615, 3.924};
static const double ACIQ_LAPLACE[5] = {5.03, 6.20, 7.41, 8.64, 9.89}; /* B = 4..8 */
static const double ACIQ_GAUSS[5] = {2.55, 2.93, 3.28, 3.61, 3.92};

static void test_analytic_fixed_points(void) {
    for (int b = 2; b <= 8; b++) {
        octav_grid g = {b, OCTAV_GRID_FULL};
        CHECK_NEAR(octav_fixed_point_laplace(g), LAPLACE_FP[b - 2], 6e-4, 0);
        CHECK_NEAR(octav_fixed_point_gauss(g), GAUSS_FP[b - 2], 6e-4, 0);
        if (b >= 4) { /* Banner et al. print two decimals */
            CHECK_NEAR(octav_aciq_ratio_laplace(g), ACIQ_LAPLACE[b - 4], 0.01, 0);
            CHECK_NEAR(octav_aciq_ratio_gauss(g), ACIQ_GAUSS[b - 4], 0.01, 0);
        }
    }
    /* ACIQ drops P(|X|<=s): it clips harder at 2-3 bits, the same from 4 bits on */
    octav_grid g2 = {2, OCTAV_GRID_FULL};
    CHECK(octav_fixed_point_gauss(g2) - octav_aciq_ratio_gauss(g2) > 0.02);
}

/* On large samples the data's fixed point approaches the expectation's. */
static void test_sample_fixed_points(void) {
    const int64_t n = 1 << 21;
    float *xl = laplace(n, 11, 1.0), *xg = gauss(n, 12, 1.0);
    for (int b = 2; b <= 8; b++) {
        octav_grid g = {b, OCTAV_GRID_FULL};
        uint8_t cv = 0;
        float sl = solve1(xl, n, g, NULL, 0, NULL, &cv);
        CHECK(cv == 1);
        CHECK_NEAR(sl, LAPLACE_FP[b - 2], 0, 0.01);
        float sg = solve1(xg, n, g, NULL, 0, NULL, &cv);
        CHECK(cv == 1);
        CHECK_NEAR(sg, GAUSS_FP[b - 2], 0, 0.01);
    }
    free(xl);
    free(xg);
}

/* Brute force: sort the magnitudes; on each interval between consecutive
 * data values Jt is a quadratic; take the best clamped stationary point. */
static int cmp_f(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static double brute_force_min(const float *x, int64_t n, octav_grid g) {
    const double c = octav_grid_noise_c(g);
    const int uns = g.kind == OCTAV_GRID_UNSIGNED;
    float *m = malloc((size_t)n * sizeof *m);
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++) {
        float a = mag_of(x[i], uns);
        if (a > 0) m[k++] = a;
    }
    qsort(m, (size_t)k, sizeof *m, cmp_f);
    double tail = 0, tail2 = 0, head2 = 0;
    for (int64_t i = 0; i < k; i++) { tail += m[i]; tail2 += (double)m[i] * m[i]; }
    double best = INFINITY, best_s = 0;
    /* interval j: s in [m[j-1], m[j]): m[0..j) inside, the rest clipped */
    for (int64_t j = 0; j <= k; j++) {
        double lo = j ? m[j - 1] : 0.0, hi = j < k ? m[j] : INFINITY;
        double N0 = (double)j, N1 = (double)(k - j);
        double s = tail / (c * N0 + N1);
        if (s < lo) s = lo;
        if (s > hi) s = hi;
        double J = c * (s * s * N0 - head2) + tail2 - 2 * s * tail + N1 * s * s;
        if (J < best) { best = J; best_s = s; }
        if (j < k) { tail -= m[j]; tail2 -= (double)m[j] * m[j]; head2 += (double)m[j] * m[j]; }
    }
    free(m);
    return best_s;
}

static void test_brute_force(void) {
    const int64_t ns[3] = {257, 5000, 40000};
    for (int t = 0; t < 3; t++)
        for (int b = 2; b <= 8; b += 2)
            for (int kind = 0; kind < 3; kind++) {
                octav_grid g = {b, (octav_grid_kind)kind};
                float *x = t == 1 ? gauss(ns[t], 100 + b, 0.5) : laplace(ns[t], 200 + b + t, 2.0);
                float sb = (float)brute_force_min(x, ns[t], g);
                float s = solve1(x, ns[t], g, NULL, 0, NULL, NULL);
                CHECK_MSG(s == sb, "n=%lld b=%d grid=%d: solver %.9g, brute force %.9g",
                          (long long)ns[t], b, kind, s, sb);
                free(x);
            }
}

/* The fast solver equals the scalar reference for every kernel set, thread
 * count, granularity and grid. */
static void compare_with_ref(const char *kname, int threads) {
    const octav_kernels *K = octav_kernels_by_name(kname);
    if (!K) { fprintf(stderr, "  (kernels %s not supported on this CPU: compared scalar only)\n", kname); return; }
    octav_set_threads(threads);
    const int64_t C = 24, R = 3, D = 20001; /* odd sizes: tails and pieces */
    float *x = laplace(C * R * D, 77, 0.1);
    for (int64_t i = 0; i < C * R * D; i += 13) x[i] = 0.0f; /* exact zeros */
    octav_shape shp = {3, {C, R, D}};
    /* channels along the last axis (groups of 72 one-element segments) and
     * blocks of 300 (with a last block of 1) take the batched path for small
     * groups, on a smaller view of the data (C x R x 301); blocks of 37 the
     * lane-parallel one */
    octav_shape small = {3, {C, R, 301}};
    octav_group_spec specs[6] = {{OCTAV_GRAN_TENSOR, 0, 0}, {OCTAV_GRAN_CHANNEL, 0, 0}, {OCTAV_GRAN_CHANNEL, 1, 0},
                                 {OCTAV_GRAN_BLOCK, 0, 37},  {OCTAV_GRAN_CHANNEL, 2, 0}, {OCTAV_GRAN_BLOCK, 0, 300}};
    octav_solver *sv;
    octav_solver_create(&sv);
    /* force the kernel set under test */
    extern void octav_solver_set_kernels_(octav_solver *, const octav_kernels *);
    octav_solver_set_kernels_(sv, K);
    for (int sp = 0; sp < 6; sp++)
        for (int kind = 0; kind < 3; kind++) {
            octav_grid g = {3 + kind, (octav_grid_kind)kind};
            octav_layout lay;
            CHECK(octav_layout_make(sp < 4 ? &shp : &small, specs[sp], &lay) == OCTAV_OK);
            float *s = malloc((size_t)lay.ngroups * sizeof *s);
            int32_t *it = malloc((size_t)lay.ngroups * sizeof *it);
            uint8_t *cv = malloc((size_t)lay.ngroups);
            octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
            octav_clip_info info = {it, cv};
            CHECK(octav_clip(sv, &cfg, g, &lay, x, s, &info) == OCTAV_OK);
            float *gbuf = malloc((size_t)lay.numel * sizeof *gbuf);
            int64_t nbad = 0;
            for (int64_t gi = 0; gi < lay.ngroups; gi++) {
                octav_span span = layout_span(&lay, gi);
                int64_t n = 0;
                for (int64_t j = 0; j < span.nseg; j++)
                    for (int64_t i = 0; i < span.seglen; i++) gbuf[n++] = x[span.base + j * span.stride + i];
                int32_t rit;
                int rcv;
                float rs = (float)octav_solve_ref(gbuf, n, g, 0.0, 100, &rit, &rcv);
                if (rs != s[gi] || rit != it[gi] || rcv != cv[gi]) {
                    if (nbad++ < 3)
                        fprintf(stderr, "  %s/%d spec %d grid %d group %lld: %.9g (%d it) vs ref %.9g (%d it)\n",
                                kname, threads, sp, kind, (long long)gi, s[gi], it[gi], rs, rit);
                }
            }
            CHECK_EQ_INT(nbad, 0);
            free(gbuf); free(s); free(it); free(cv);
        }
    octav_solver_destroy(sv);
    free(x);
    octav_set_threads(0);
}

static void test_fast_equals_ref_scalar(void) { compare_with_ref("scalar", 1); }
static void test_fast_equals_ref_avx2(void) { compare_with_ref("avx2", 2); }
static void test_fast_equals_ref_avx512_1t(void) { compare_with_ref("avx512", 1); }
static void test_fast_equals_ref_avx512_2t(void) { compare_with_ref("avx512", 2); }

/* Kernels agree with the scalar ones on awkward lengths and thresholds. */
static void test_kernels_match(void) {
    const char *names[2] = {"avx2", "avx512"};
    float *x = gauss(1000, 5, 1.0);
    /* zeros, negative zeros and subnormals among the values: the non-zero
     * counts and the sums must treat them as the reference does */
    for (int i = 0; i < 1000; i++) {
        if (i % 7 == 0) x[i] = 0.0f;
        else if (i % 11 == 0) x[i] = -0.0f;
        else if (i % 13 == 0) x[i] = i % 2 ? 1e-40f : -3e-39f;
    }
    float *o1 = malloc(1000 * sizeof(float)), *o2 = malloc(1000 * sizeof(float));
    for (int k = 0; k < 2; k++) {
        const octav_kernels *K = octav_kernels_by_name(names[k]), *S = &octav_kernels_scalar;
        if (!K) continue;
        for (int n = 0; n < 70; n++)
            for (int uns = 0; uns < 2; uns++) {
                double t = 0.3 + 0.01 * n;
                octav_stats a, b;
                K->stats(x + 3, n, uns, &a);
                S->stats(x + 3, n, uns, &b);
                CHECK_NEAR(a.sum, b.sum, 1e-12, 1e-12);
                CHECK_EQ_INT(a.nnz, b.nnz);
                CHECK(a.maxv == b.maxv);
                double s1, s2;
                int64_t c1, c2;
                K->above(x + 1, n, uns, t, &s1, &c1);
                S->above(x + 1, n, uns, t, &s2, &c2);
                CHECK_EQ_INT(c1, c2);
                CHECK_NEAR(s1, s2, 1e-12, 1e-12);
                for (int tcase = 0; tcase < 3; tcase++) {
                    double tc = tcase == 1 ? t * 1.3 : t * 0.9; /* bound above or below t */
                    if (tcase == 2) t = 0.0;                    /* the cold first pass */
                    int64_t k1 = K->above_compact(x + 2, n, uns, t, tc, &s1, &c1, o1);
                    int64_t k2 = S->above_compact(x + 2, n, uns, t, tc, &s2, &c2, o2);
                    CHECK_EQ_INT(k1, k2);
                    CHECK_EQ_INT(c1, c2);
                    CHECK_NEAR(s1, s2, 1e-12, 1e-12);
                    CHECK(memcmp(o1, o2, (size_t)k1 * sizeof(float)) == 0);
                    octav_stats f1, f2;
                    k1 = K->first(x + 2, n, uns, t, tc, &f1, &s1, &c1, o1);
                    k2 = S->first(x + 2, n, uns, t, tc, &f2, &s2, &c2, o2);
                    CHECK_EQ_INT(k1, k2);
                    CHECK_EQ_INT(c1, c2);
                    CHECK_EQ_INT(f1.nnz, f2.nnz);
                    CHECK(f1.nonfinite == f2.nonfinite);
                    CHECK_NEAR(s1, s2, 1e-12, 1e-12);
                    CHECK(memcmp(o1, o2, (size_t)k1 * sizeof(float)) == 0);
                    /* in place, on magnitudes */
                    memcpy(o1, o2, (size_t)k2 * sizeof(float));
                    int64_t k3 = K->above_compact(o1, k2, 0, t * 1.1, t * 1.05, &s1, &c1, o1);
                    int64_t k4 = S->above_compact(o2, k2, 0, t * 1.1, t * 1.05, &s2, &c2, o2);
                    CHECK_EQ_INT(k3, k4);
                    CHECK(memcmp(o1, o2, (size_t)k3 * sizeof(float)) == 0);
                    /* the same on a copy of magnitudes passed as one (the
                     * kernels' own path for compact copies) */
                    memcpy(o1, o2, (size_t)k4 * sizeof(float));
                    k3 = K->above_compact(o1, k4, OCTAV_MAGS, t * 1.2, t * 1.15, &s1, &c1, o1);
                    k4 = S->above_compact(o2, k4, OCTAV_MAGS, t * 1.2, t * 1.15, &s2, &c2, o2);
                    CHECK_EQ_INT(k3, k4);
                    CHECK_EQ_INT(c1, c2);
                    CHECK_NEAR(s1, s2, 1e-12, 1e-12);
                    CHECK(memcmp(o1, o2, (size_t)k3 * sizeof(float)) == 0);
                    K->above(o1, k3, OCTAV_MAGS, t * 1.3, &s1, &c1);
                    S->above(o2, k3, OCTAV_MAGS, t * 1.3, &s2, &c2);
                    CHECK_EQ_INT(c1, c2);
                    CHECK_NEAR(s1, s2, 1e-12, 1e-12);
                }
            }
        /* non-finite detection in every lane position */
        for (int pos = 0; pos < 40; pos++) {
            float y[40];
            for (int i = 0; i < 40; i++) y[i] = 1.0f;
            y[pos] = pos & 1 ? NAN : -INFINITY;
            octav_stats a;
            K->stats(y, 40, pos % 3 == 0, &a);
            CHECK(a.nonfinite == 1);
            double sm;
            int64_t cn;
            float o[40];
            K->first(y, 40, pos % 3 == 0, 0.5, 0.4, &a, &sm, &cn, o);
            CHECK(a.nonfinite == 1);
            a.nonfinite = 0;
            K->first(y, 40, pos % 3 == 0, 0.0, 0.4, &a, &sm, &cn, o);
            CHECK(a.nonfinite == 1);
        }
    }
    free(x); free(o1); free(o2);
}

/* The lane kernels (many small groups) of every kernel set equal the scalar
 * ones bit for bit, and each lane equals octav_solve_ref on its run: runs of
 * awkward and unequal lengths (empty ones too) with zeros, negative zeros
 * and subnormals, both magnitude kinds, iteration caps, warm starts; a
 * NaN/Inf in any lane position is found. Short runs end in two-cycles often
 * (the result is then a data value): the test makes sure some did. */
static void test_lanes_match(void) {
    const char *names[3] = {"scalar", "avx2", "avx512"};
    const int64_t Vs[6] = {1, 5, 16, 17, 37, 256};
    float *x = laplace(16 * 256 * 6, 41, 1.0);
    for (int i = 0; i < 16 * 256 * 6; i++) {
        if (i % 7 == 0) x[i] = 0.0f;
        else if (i % 11 == 0) x[i] = -0.0f;
        else if (i % 97 == 0) x[i] = i % 2 ? 1e-40f : -3e-39f;
    }
    double *M1 = aligned_alloc(64, 256 * 16 * sizeof(double)), *M2 = aligned_alloc(64, 256 * 16 * sizeof(double));
    int cycles = 0;
    for (int k = 1; k < 3; k++) {
        const octav_kernels *K = octav_kernels_by_name(names[k]), *S = &octav_kernels_scalar;
        if (!K) continue;
        for (int v = 0; v < 6; v++)
            for (int uns = 0; uns < 2; uns++) {
                const int64_t V = Vs[v], rows = (V + 15) / 16 * 16;
                int64_t base[16], len[16];
                for (int j = 0; j < 16; j++) {
                    base[j] = (int64_t)j * 256 * 6 + v * 3;
                    len[j] = j == 3 ? 0 : j % 5 == 1 ? V - j / 5 : V; /* some shorter, one empty */
                    if (len[j] < 0) len[j] = 0;
                }
                double sum1[16], sum2[16];
                int64_t nnz1[16], nnz2[16];
                memset(M1, 0xff, 256 * 16 * sizeof(double)); /* every row read must be written */
                CHECK(K->lanes_load(x, base, len, V, uns, M1, sum1, nnz1) == 0);
                CHECK(S->lanes_load(x, base, len, V, uns, M2, sum2, nnz2) == 0);
                CHECK(memcmp(M1, M2, (size_t)rows * 16 * sizeof(double)) == 0);
                CHECK(memcmp(sum1, sum2, sizeof sum1) == 0);
                CHECK(memcmp(nnz1, nnz2, sizeof nnz1) == 0);
                const int caps[4] = {0, 1, 3, 100};
                const octav_grid g = {3, uns ? OCTAV_GRID_UNSIGNED : OCTAV_GRID_FULL};
                const double c = octav_grid_noise_c(g);
                for (int cp = 0; cp < 4; cp++)
                    for (int warm = 0; warm < 2; warm++) {
                        double s1[16], s2[16];
                        int32_t it1[16], it2[16], cv1[16], cv2[16];
                        for (int j = 0; j < 16; j++)
                            s1[j] = s2[j] = nnz2[j] == 0 ? 0.0 : warm ? 0.5 + 0.3 * j : sum2[j] / (double)nnz2[j];
                        K->lanes_solve(M1, V, nnz1, c, caps[cp], s1, it1, cv1);
                        S->lanes_solve(M2, V, nnz2, c, caps[cp], s2, it2, cv2);
                        CHECK(memcmp(s1, s2, sizeof s1) == 0);
                        CHECK(memcmp(it1, it2, sizeof it1) == 0);
                        CHECK(memcmp(cv1, cv2, sizeof cv1) == 0);
                        if (cp != 3 || warm) continue;
                        for (int j = 0; j < 16; j++) {
                            int32_t rit;
                            int rcv;
                            double rs = octav_solve_ref(x + base[j], len[j], g, 0.0, 100, &rit, &rcv);
                            if (nnz2[j] == 0) { CHECK(it1[j] == 0 && cv1[j] == 1); continue; }
                            CHECK(rs == s1[j] && rit == it1[j] && rcv == cv1[j]);
                            for (int64_t i = 0; i < len[j]; i++) cycles += s1[j] == (double)mag_of(x[base[j] + i], uns);
                        }
                    }
            }
        /* non-finite detection in every lane and position */
        for (int lane = 0; lane < 16; lane++)
            for (int pos = 0; pos < 37; pos += 6) {
                float y[16 * 37];
                int64_t base[16], len[16];
                for (int i = 0; i < 16 * 37; i++) y[i] = 1.0f;
                for (int j = 0; j < 16; j++) { base[j] = j * 37; len[j] = 37; }
                y[lane * 37 + pos] = pos & 1 ? NAN : -INFINITY;
                double sm[16];
                int64_t nz[16];
                CHECK(K->lanes_load(y, base, len, 37, lane % 3 == 0, M1, sm, nz) == 1);
            }
    }
    if (octav_kernels_by_name("avx2")) CHECK(cycles > 0);
    free(M1); free(M2); free(x);
}

static int cmp_float(const void *a, const void *b) {
    float u = *(const float *)a, v = *(const float *)b;
    return (u > v) - (u < v);
}

/* A large group whose sample misleads the solver's predicted bounds (the
 * sampled blocks are ten times larger, or smaller, than the rest): the
 * solve still equals the reference, through a pass over the tensor where a
 * step falls below the compact copy. Also sorted data, where every sampled
 * block sits in one part of the distribution. */
static void test_sample_misprediction(void) {
    const int64_t n = 1 << 20;
    for (int variant = 0; variant < 3; variant++) {
        float *x = laplace(n, 31 + variant, 1.0);
        if (variant == 0) {
            for (int j = 0; j < 16; j++)
                for (int64_t i = 0; i < 1024; i++) x[j * (n / 16) + i] *= 10.0f;
        } else if (variant == 1) {
            for (int j = 0; j < 16; j++)
                for (int64_t i = 0; i < 1024; i++) x[j * (n / 16) + i] *= 0.1f;
        } else {
            /* ascending magnitudes */
            for (int64_t i = 0; i < n; i++) x[i] = fabsf(x[i]);
            qsort(x, (size_t)n, sizeof *x, cmp_float);
        }
        for (int b = 2; b <= 8; b += 3) {
            octav_grid g = {b, OCTAV_GRID_FULL};
            int32_t it, rit;
            uint8_t cv;
            int rcv;
            float s = solve1(x, n, g, NULL, 0, &it, &cv);
            float rs = (float)octav_solve_ref(x, n, g, 0.0, 100, &rit, &rcv);
            CHECK_MSG(s == rs && it == rit && cv == rcv, "variant %d bits %d: %.9g (%d it) vs ref %.9g (%d it)",
                      variant, b, s, it, rs, rit);
        }
        free(x);
    }
}

/* Per-channel groups whose scales jump from row to row (x0.1, x1, x10): the
 * previous group's start is a poor guess of the next one's, so the first
 * step often goes back to the group; every scale and iteration count still
 * equals the reference, on one and two threads. */
static void test_channel_start_hint(void) {
    const int64_t R = 48, D = 5003;
    float *x = laplace(R * D, 41, 1.0);
    for (int64_t r = 0; r < R; r++) {
        const float k = r % 3 == 0 ? 0.1f : (r % 3 == 1 ? 1.0f : 10.0f);
        for (int64_t i = 0; i < D; i++) x[r * D + i] *= k;
    }
    octav_shape shp = {2, {R, D}};
    octav_layout lay;
    CHECK(octav_layout_make(&shp, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, &lay) == OCTAV_OK);
    octav_solver *sv;
    CHECK(octav_solver_create(&sv) == OCTAV_OK);
    octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
    float s[48];
    int32_t it[48];
    uint8_t cv[48];
    octav_clip_info info = {it, cv};
    for (int threads = 1; threads <= 2; threads++) {
        octav_set_threads(threads);
        for (int rep = 0; rep < 2; rep++) { /* the second call starts from the first call's hints */
            CHECK(octav_clip(sv, &cfg, FULL4, &lay, x, s, &info) == OCTAV_OK);
            for (int64_t r = 0; r < R; r++) {
                int32_t rit;
                int rcv;
                float rs = (float)octav_solve_ref(x + r * D, D, FULL4, 0.0, 100, &rit, &rcv);
                CHECK_MSG(rs == s[r] && rit == it[r] && rcv == cv[r], "threads %d row %lld: %.9g (%d it) vs %.9g (%d it)",
                          threads, (long long)r, s[r], it[r], rs, rit);
            }
        }
    }
    octav_set_threads(0);
    octav_solver_destroy(sv);
    free(x);
}

/* Per-channel rows whose shapes change from row to row (Laplace, uniform,
 * Gaussian with a few large outliers, mostly zeros): the ratios of the
 * previous row's iterates are then a poor guess of how far the next row's
 * iterates move, so compact copies are often too small and steps go back to
 * the row. Cold and warm calls alternate on one solver (the guesses of one
 * kind must not be used for the other); every scale, iteration count and
 * convergence flag equals the reference's, on one and two threads. */
static void test_channel_trajectory_guess(void) {
    const int64_t R = 43, D = 4099; /* 43: the last batch of groups is partial */
    float *lap = laplace(R * D, 43, 1.0), *gau = gauss(R * D, 44, 2.0);
    float *x = malloc((size_t)(R * D) * sizeof *x);
    CHECK(x != NULL);
    uint64_t st = 45;
    for (int64_t r = 0; r < R; r++)
        for (int64_t i = 0; i < D; i++) {
            const int64_t j = r * D + i;
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            const double u = (double)(st >> 11) / 9007199254740992.0;
            switch (r % 4) {
            case 0: x[j] = lap[j]; break;
            case 1: x[j] = (float)(2.0 * u - 1.0); break;
            case 2: x[j] = i % 500 == 7 ? 40.0f * gau[j] : gau[j]; break;
            default: x[j] = u < 0.9 ? 0.0f : lap[j] * 3.0f; break;
            }
        }
    octav_shape shp = {2, {R, D}};
    octav_layout lay;
    CHECK(octav_layout_make(&shp, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, &lay) == OCTAV_OK);
    octav_solver *sv;
    CHECK(octav_solver_create(&sv) == OCTAV_OK);
    float s[43], ws[43], rs[43];
    int32_t it[43], rit[43];
    uint8_t cv[43];
    int rcv[43];
    for (int64_t r = 0; r < R; r++) rs[r] = (float)octav_solve_ref(x + r * D, D, FULL4, 0.0, 100, &rit[r], &rcv[r]);
    octav_clip_info info = {it, cv};
    for (int threads = 1; threads <= 2; threads++) {
        octav_set_threads(threads);
        for (int rep = 0; rep < 4; rep++) {
            octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
            const int warm = rep % 2;
            for (int64_t r = 0; r < R; r++) ws[r] = rs[r] * (r % 2 ? 0.7f : 1.3f);
            if (warm) cfg.warm_start = ws;
            CHECK(octav_clip(sv, &cfg, FULL4, &lay, x, s, &info) == OCTAV_OK);
            for (int64_t r = 0; r < R; r++) {
                int32_t eit = rit[r];
                int ecv = rcv[r];
                float e = warm ? (float)octav_solve_ref(x + r * D, D, FULL4, ws[r], 100, &eit, &ecv) : rs[r];
                CHECK_MSG(e == s[r] && eit == it[r] && ecv == cv[r],
                          "threads %d call %d row %lld: %.9g (%d it) vs %.9g (%d it)", threads, rep, (long long)r,
                          s[r], it[r], e, eit);
            }
        }
    }
    octav_set_threads(0);
    octav_solver_destroy(sv);
    free(x); free(lap); free(gau);
}

static void test_grid_constants_and_zeros(void) {
    /* each grid uses its own c: the fixed point on the same data differs and
     * equals the reference with that grid's c */
    const int64_t n = 100000;
    float *x = laplace(n, 9, 1.0);
    octav_grid gf = {4, OCTAV_GRID_FULL}, gn = {4, OCTAV_GRID_NARROW}, gu = {4, OCTAV_GRID_UNSIGNED};
    CHECK_NEAR(octav_grid_noise_c(gf), 1.0 / (3.0 * 256), 0, 1e-15);
    CHECK_NEAR(octav_grid_noise_c(gu), 1.0 / (12.0 * 256), 0, 1e-15);
    CHECK_NEAR(octav_grid_noise_c(gn), 1.0 / (12.0 * 49), 0, 1e-15);
    float sf = solve1(x, n, gf, NULL, 0, NULL, NULL), sn = solve1(x, n, gn, NULL, 0, NULL, NULL);
    CHECK(sn < sf); /* coarser narrow grid clips harder */
    CHECK(sf == (float)octav_solve_ref(x, n, gf, 0, 100, NULL, NULL));
    CHECK(sn == (float)octav_solve_ref(x, n, gn, 0, 100, NULL, NULL));
    /* unsigned: negatives take no part -> same as the positive half alone */
    float *pos = malloc((size_t)n * sizeof *pos);
    int64_t np = 0;
    for (int64_t i = 0; i < n; i++) if (x[i] > 0) pos[np++] = x[i];
    float su = solve1(x, n, gu, NULL, 0, NULL, NULL), sp = solve1(pos, np, gu, NULL, 0, NULL, NULL);
    CHECK(su == sp);
    /* zeros are excluded: padding with zeros changes nothing */
    float *z = calloc((size_t)(2 * n), sizeof *z);
    for (int64_t i = 0; i < n; i++) z[2 * i + 1] = x[i];
    CHECK(solve1(z, 2 * n, gf, NULL, 0, NULL, NULL) == sf);
    free(x); free(pos); free(z);
}

static void test_warm_start_and_cap(void) {
    const int64_t n = 200000;
    float *x = gauss(n, 21, 3.0);
    int32_t it0, it1, it2;
    uint8_t c0, c1, c2;
    float s0 = solve1(x, n, FULL4, NULL, 0, &it0, &c0);
    float w = 100.0f, w2 = 0.01f;
    float s1 = solve1(x, n, FULL4, &w, 0, &it1, &c1);
    float s2 = solve1(x, n, FULL4, &w2, 0, &it2, &c2);
    CHECK(c0 && c1 && c2);
    CHECK(s0 == s1 && s0 == s2);
    /* warm start at the answer converges in one confirming step */
    int32_t it3;
    float s3 = solve1(x, n, FULL4, &s0, 0, &it3, NULL);
    CHECK(s3 == s0);
    CHECK(it3 <= 2);
    /* a cap of 2 stops early, reports not converged, and equals the reference's 2nd iterate */
    int32_t itc;
    uint8_t cc;
    float sc = solve1(x, n, FULL4, NULL, 2, &itc, &cc);
    int32_t rit;
    int rcv;
    float rs = (float)octav_solve_ref(x, n, FULL4, 0, 2, &rit, &rcv);
    CHECK_EQ_INT(itc, 2);
    CHECK(cc == 0 && rcv == 0);
    CHECK(sc == rs);
    CHECK(sc != s0);
    free(x);
}

/* Small groups (the lane path: blocks of 37, a last block of 4 per row)
 * with warm starts on some groups and cold starts on the others, under an
 * iteration cap and without: each group equals octav_solve_ref. */
static void test_small_groups_warm_and_cap(void) {
    const int64_t R = 40, D = 300;
    float *x = laplace(R * D, 93, 0.5);
    octav_shape shp = {2, {R, D}};
    octav_layout lay;
    CHECK(octav_layout_make(&shp, (octav_group_spec){OCTAV_GRAN_BLOCK, 0, 37}, &lay) == OCTAV_OK);
    octav_solver *sv;
    CHECK(octav_solver_create(&sv) == OCTAV_OK);
    float *warm = malloc((size_t)lay.ngroups * sizeof *warm), *s = malloc((size_t)lay.ngroups * sizeof *s);
    int32_t *it = malloc((size_t)lay.ngroups * sizeof *it);
    uint8_t *cv = malloc((size_t)lay.ngroups);
    for (int64_t gi = 0; gi < lay.ngroups; gi++) warm[gi] = gi % 3 == 0 ? 0.0f : 0.2f + 0.05f * (float)(gi % 40);
    const int caps[2] = {3, 100};
    for (int kind = 0; kind < 2; kind++)
        for (int c = 0; c < 2; c++) {
            octav_grid g = {4, kind ? OCTAV_GRID_UNSIGNED : OCTAV_GRID_FULL};
            octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
            cfg.warm_start = warm;
            cfg.max_iter = caps[c];
            octav_clip_info info = {it, cv};
            CHECK(octav_clip(sv, &cfg, g, &lay, x, s, &info) == OCTAV_OK);
            int64_t nbad = 0;
            for (int64_t gi = 0; gi < lay.ngroups; gi++) {
                octav_run r = layout_run(&lay, gi);
                int32_t rit;
                int rcv;
                float rs = (float)octav_solve_ref(x + r.base, r.len, g, warm[gi], caps[c], &rit, &rcv);
                nbad += rs != s[gi] || rit != it[gi] || rcv != cv[gi];
            }
            CHECK_EQ_INT(nbad, 0);
        }
    octav_solver_destroy(sv);
    free(warm); free(s); free(it); free(cv); free(x);
}

static void test_degenerate(void) {
    octav_shape shp = {2, {3, 4}};
    octav_layout lay;
    octav_layout_make(&shp, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, &lay);
    float x[12] = {0, 0, 0, 0, 2, 2, 2, 2, -1, 0, 0, 0};
    float s[3];
    int32_t it[3];
    uint8_t cv[3];
    octav_solver *sv;
    octav_solver_create(&sv);
    octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
    octav_clip_info info = {it, cv};
    CHECK(octav_clip(sv, &cfg, FULL4, &lay, x, s, &info) == OCTAV_OK);
    CHECK(s[0] == 0.0f && it[0] == 0 && cv[0] == 1);  /* all-zero group */
    CHECK(s[1] == 2.0f && cv[1] == 1);                 /* constant group: two-cycle {0, 2} -> the kink at 2 */
    CHECK(s[2] == 1.0f && cv[2] == 1);
    float y[12];
    CHECK(octav_fq_forward(FULL4, &lay, x, s, y) == OCTAV_OK);
    for (int i = 0; i < 4; i++) CHECK(y[i] == 0.0f);
    /* non-finite values: error naming tensor and index */
    x[6] = NAN;
    cfg.name = "layer1.weight";
    CHECK(octav_clip(sv, &cfg, FULL4, &lay, x, s, NULL) == OCTAV_ENONFINITE);
    CHECK(strstr(octav_last_error(), "layer1.weight") && strstr(octav_last_error(), "index 6"));
    x[6] = 2;
    x[11] = -INFINITY;
    CHECK(octav_clip(sv, &cfg, FULL4, &lay, x, s, NULL) == OCTAV_ENONFINITE);
    CHECK(strstr(octav_last_error(), "index 11") != NULL);
    x[11] = 0;
    /* bad arguments */
    CHECK(octav_clip(sv, &cfg, (octav_grid){1, OCTAV_GRID_FULL}, &lay, x, s, NULL) == OCTAV_EINVAL);
    CHECK(octav_clip(sv, &cfg, (octav_grid){17, OCTAV_GRID_FULL}, &lay, x, s, NULL) == OCTAV_EINVAL);
    cfg.max_iter = 0;
    CHECK(octav_clip(sv, &cfg, FULL4, &lay, x, s, NULL) == OCTAV_EINVAL);
    octav_shape empty = {1, {0}};
    CHECK(octav_layout_make(&empty, (octav_group_spec){OCTAV_GRAN_TENSOR, 0, 0}, &lay) == OCTAV_EEMPTY);
    octav_shape s2 = {2, {3, 4}};
    CHECK(octav_layout_make(&s2, (octav_group_spec){OCTAV_GRAN_CHANNEL, 2, 0}, &lay) == OCTAV_EINVAL);
    CHECK(octav_layout_make(&s2, (octav_group_spec){OCTAV_GRAN_CHANNEL, -3, 0}, &lay) == OCTAV_EINVAL);
    CHECK(octav_layout_make(&s2, (octav_group_spec){OCTAV_GRAN_BLOCK, 0, 0}, &lay) == OCTAV_EINVAL);
    octav_solver_destroy(sv);
}

/* Static calibration averages per-batch scales. */
static void test_static(void) {
    const int64_t n = 5000;
    float *a = laplace(n, 1, 1.0), *b = laplace(n, 2, 2.0);
    const float *batches[2] = {a, b};
    octav_shape shp = {1, {n}};
    octav_layout lay;
    octav_layout_make(&shp, (octav_group_spec){OCTAV_GRAN_TENSOR, 0, 0}, &lay);
    octav_solver *sv;
    octav_solver_create(&sv);
    octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
    float s, sa, sb;
    CHECK(octav_clip_static(sv, &cfg, FULL4, &lay, batches, 2, &s) == OCTAV_OK);
    octav_clip(sv, &cfg, FULL4, &lay, a, &sa, NULL);
    octav_clip(sv, &cfg, FULL4, &lay, b, &sb, NULL);
    CHECK(s == (float)(((double)sa + (double)sb) / 2));
    CHECK(octav_clip_static(sv, &cfg, FULL4, &lay, batches, 0, &s) == OCTAV_EINVAL);
    octav_solver_destroy(sv);
    free(a); free(b);
}

/* Allocation failures surface as OCTAV_ENOMEM, never a crash. */
static int fail_after;
static void *failing_alloc(size_t n, void *u) { (void)u; return fail_after-- > 0 ? malloc(n) : NULL; }
static void plain_free(void *p, void *u) { (void)u; free(p); }

static void test_alloc_failure(void) {
    const int64_t n = 300000;
    float *x = laplace(n, 3, 1.0);
    octav_shape shp = {2, {300, 1000}};
    /* channels (the batched path) and blocks of 32 (the lane path) */
    const octav_group_spec specs[2] = {{OCTAV_GRAN_CHANNEL, 0, 0}, {OCTAV_GRAN_BLOCK, 0, 32}};
    float *s = malloc(300 * 32 * sizeof *s);
    for (int sp = 0; sp < 2; sp++) {
        octav_layout lay;
        octav_layout_make(&shp, specs[sp], &lay);
        int failed_in_clip = 0;
        for (int k = 0; k < 6; k++) {
            fail_after = k;
            octav_set_allocator(failing_alloc, plain_free, NULL);
            octav_solver *sv = NULL;
            octav_status st = octav_solver_create(&sv);
            if (st == OCTAV_OK) {
                octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
                st = octav_clip(sv, &cfg, FULL4, &lay, x, s, NULL);
                failed_in_clip |= st == OCTAV_ENOMEM;
                octav_solver_destroy(sv);
            }
            octav_set_allocator(NULL, NULL, NULL);
            CHECK(st == OCTAV_OK || st == OCTAV_ENOMEM);
            if (k == 0) CHECK(st == OCTAV_ENOMEM);
        }
        CHECK(failed_in_clip); /* the solve's own workspace can fail too */
    }
    free(s);
    free(x);
}

/* A solver reused for the same layout allocates nothing after its first
 * call (per-step use in training), cold or warm, any granularity. */
static int nallocs;
static void *counting_alloc(size_t n, void *u) { (void)u; nallocs++; return malloc(n); }

static void test_no_allocation_per_call(void) {
    const int64_t R = 64, D = 70000;
    float *x = laplace(R * D, 31, 1.0);
    octav_shape shp = {2, {R, D}};
    octav_group_spec specs[3] = {{OCTAV_GRAN_TENSOR, 0, 0}, {OCTAV_GRAN_CHANNEL, 0, 0}, {OCTAV_GRAN_BLOCK, 0, 32}};
    for (int sp = 0; sp < 3; sp++) {
        octav_layout lay;
        octav_layout_make(&shp, specs[sp], &lay);
        float *s = malloc((size_t)lay.ngroups * sizeof *s);
        octav_solver *sv;
        octav_solver_create(&sv);
        octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
        CHECK(octav_clip(sv, &cfg, FULL4, &lay, x, s, NULL) == OCTAV_OK);
        octav_set_allocator(counting_alloc, plain_free, NULL);
        nallocs = 0;
        CHECK(octav_clip(sv, &cfg, FULL4, &lay, x, s, NULL) == OCTAV_OK); /* cold again */
        cfg.warm_start = s;
        CHECK(octav_clip(sv, &cfg, FULL4, &lay, x, s, NULL) == OCTAV_OK); /* warm */
        octav_set_allocator(NULL, NULL, NULL);
        CHECK_MSG(nallocs == 0, "granularity %d: %d allocations", sp, nallocs);
        octav_solver_destroy(sv);
        free(s);
    }
    free(x);
}

int main(void) {
    RUN(test_analytic_fixed_points);
    RUN(test_sample_fixed_points);
    RUN(test_brute_force);
    RUN(test_kernels_match);
    RUN(test_lanes_match);
    RUN(test_sample_misprediction);
    RUN(test_channel_start_hint);
    RUN(test_channel_trajectory_guess);
    RUN(test_fast_equals_ref_scalar);
    RUN(test_fast_equals_ref_avx2);
    RUN(test_fast_equals_ref_avx512_1t);
    RUN(test_fast_equals_ref_avx512_2t);
    RUN(test_grid_constants_and_zeros);
    RUN(test_warm_start_and_cap);
    RUN(test_small_groups_warm_and_cap);
    RUN(test_degenerate);
    RUN(test_static);
    RUN(test_alloc_failure);
    RUN(test_no_allocation_per_call);
    return TEST_SUMMARY();
}
