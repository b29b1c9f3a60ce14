/* kernels.c -- scalar reference kernels of the OCTAV solver and the run-time
 * choice between them and the AVX2 / AVX-512 versions. The scalar versions
 * are the specification: SIMD versions are tested against them. */
#include "internal.h"
#include "kernels_lanes.h"
#include "recursion.h"

#include <stdlib.h>
#include <string.h>

static void stats_scalar(const float *x, int64_t n, int is_unsigned, octav_stats *out) {
    double sum = 0;
    int64_t nnz = 0;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        bad |= !isfinite(x[i]);
        float m = mag_of(x[i], is_unsigned);
        sum += m;
        nnz += m > 0.0f;
    }
    out->sum = sum; out->nnz = nnz; out->maxv = 0.0f; out->nonfinite = bad;
}

static void above_scalar(const float *x, int64_t n, int is_unsigned, double t, double *sum, int64_t *cnt) {
    const float tf = float_floor_of(t);
    double s = 0;
    int64_t c = 0;
    for (int64_t i = 0; i < n; i++) {
        float m = mag_of(x[i], is_unsigned);
        if (m > tf) { s += m; c++; }
    }
    *sum = s; *cnt = c;
}

/* Branch-free: every magnitude is written, the index advances on keep. */
static int64_t above_compact_scalar(const float *x, int64_t n, int is_unsigned, double t, double tc,
                                    double *sum, int64_t *cnt, float *out) {
    const float tf = float_floor_of(t), cf = float_floor_of(tc);
    double s = 0;
    int64_t c = 0, k = 0;
    for (int64_t i = 0; i < n; i++) {
        float m = mag_of(x[i], is_unsigned);
        int a = m > tf;
        s += a ? m : 0.0f;
        c += a;
        out[k] = m;
        k += m > cf;
    }
    *sum = s; *cnt = c;
    return k;
}

static int64_t first_scalar(const float *x, int64_t n, int is_unsigned, double t, double tc, octav_stats *st,
                            double *sum, int64_t *cnt, float *out) {
    stats_scalar(x, n, is_unsigned, st);
    st->sum = 0.0; /* not part of this kernel's contract */
    st->maxv = 0.0f;
    return above_compact_scalar(x, n, is_unsigned, t, tc, sum, cnt, out);
}

/* ---- lane kernels (many small groups; octav.c) ------------------------- */

static int lanes_load_scalar(const float *x, const int64_t *base, const int64_t *len, int64_t V,
                             int is_unsigned, double *M, double *sum, int64_t *nnz) {
    const int64_t rows = (V + 15) / 16 * 16;
    uint32_t bits_max = 0;
    /* lane by lane: contiguous reads; the largest |x| bit pattern finds a NaN/Inf */
    for (int j = 0; j < OCTAV_LANES; j++) {
        const float *p = x + base[j];
        for (int64_t i = 0; i < len[j]; i++) {
            uint32_t b;
            memcpy(&b, &p[i], sizeof b);
            b &= 0x7fffffffu;
            bits_max = b > bits_max ? b : bits_max;
            M[i * OCTAV_LANES + j] = mag_of(p[i], is_unsigned);
        }
        for (int64_t i = len[j]; i < rows; i++) M[i * OCTAV_LANES + j] = 0.0;
    }
    for (int j = 0; j < OCTAV_LANES; j++) { sum[j] = 0.0; nnz[j] = 0; }
    for (int64_t i = 0; i < V; i++) {
        const double *row = M + i * OCTAV_LANES;
        for (int j = 0; j < OCTAV_LANES; j++) {
            sum[j] += row[j];
            nnz[j] += row[j] > 0.0;
        }
    }
    return bits_max >= 0x7f800000u;
}

typedef struct {
    const double *M;
    int64_t V;
    int j;
} lane_ref;

static double lane_min_above(void *ctx, double lo) {
    const lane_ref *l = ctx;
    return lanes_min_above(l->M, l->V, l->j, lo);
}

/* rec_advance (recursion.h) on every lane with a nonzero magnitude, each
 * step's sums and counts taken row by row (the order the SIMD kernels keep) */
static void lanes_solve_scalar(const double *M, int64_t V, const int64_t *nnz, double c, int max_iter,
                               double *s, int32_t *it, int32_t *conv) {
    rec_state r[OCTAV_LANES];
    int nactive = 0;
    for (int j = 0; j < OCTAV_LANES; j++) {
        rec_init(&r[j], nnz[j], c, s[j], nnz[j] > 0 ? max_iter : 0);
        nactive += !r[j].done;
    }
    while (nactive > 0) {
        double S[OCTAV_LANES] = {0};
        int64_t N[OCTAV_LANES] = {0};
        for (int64_t i = 0; i < V; i++) {
            const double *row = M + i * OCTAV_LANES;
            for (int j = 0; j < OCTAV_LANES; j++) {
                const int a = row[j] > r[j].s;
                S[j] += a ? row[j] : 0.0;
                N[j] += a;
            }
        }
        nactive = 0;
        for (int j = 0; j < OCTAV_LANES; j++) {
            if (r[j].done) continue;
            lane_ref l = {M, V, j};
            nactive += !rec_advance(&r[j], (step_stats){S[j], N[j]}, lane_min_above, &l);
        }
    }
    for (int j = 0; j < OCTAV_LANES; j++) {
        s[j] = r[j].s;
        it[j] = r[j].it;
        conv[j] = r[j].conv | (nnz[j] == 0);
    }
}

const octav_kernels octav_kernels_scalar = {stats_scalar,      above_scalar,       above_compact_scalar, first_scalar,
                                            lanes_load_scalar, lanes_solve_scalar, "scalar"};

const octav_kernels *octav_kernels_by_name(const char *name) {
    if (!name) return NULL;
    if (strcmp(name, "scalar") == 0) return &octav_kernels_scalar;
#if OCTAV_HAVE_X86_SIMD
    __builtin_cpu_init();
    if (strcmp(name, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2"))
        return &octav_kernels_avx2;
    if (strcmp(name, "avx512") == 0 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq"))
        return &octav_kernels_avx512;
#endif
    return NULL;
}

const octav_kernels *octav_kernels_best(void) {
    const octav_kernels *k = octav_kernels_by_name(getenv("OCTAV_KERNELS"));
    if (!k) k = octav_kernels_by_name("avx512");
    if (!k) k = octav_kernels_by_name("avx2");
    if (!k) k = &octav_kernels_scalar;
    return k;
}
