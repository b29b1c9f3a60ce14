/* kernels_lanes.h -- the generic lane kernels of the OCTAV solver (see
 * octav_kernels in internal.h): included by kernels.c, where they are the
 * scalar reference, and by kernels_avx2.c, where the compiler vectorises
 * the same loops over the 16 lanes. kernels_avx512.c has its own. */
#ifndef OCTAV_KERNELS_LANES_H
#define OCTAV_KERNELS_LANES_H

#include "internal.h"

#include <string.h>

static inline int lanes_load_generic(const float *x, const int64_t *base, const int64_t *len, int64_t V,
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

/* The smallest of the first V rows of lane j above lo (a two-cycle's result). */
static inline double lanes_min_above(const double *M, int64_t V, int j, double lo) {
    double best = INFINITY;
    for (int64_t i = 0; i < V; i++) {
        const double m = M[i * OCTAV_LANES + j];
        if (m > lo && m < best) best = m;
    }
    return best;
}

static inline void lanes_solve_generic(const double *M, int64_t V, const int64_t *nnz, double c, int max_iter,
                                       double *s, int32_t *it, int32_t *conv) {
    double prev2[OCTAV_LANES], nxt[OCTAV_LANES], S[OCTAV_LANES];
    int64_t N[OCTAV_LANES];
    int32_t active[OCTAV_LANES], cyc[OCTAV_LANES];
    int nactive = 0;
    for (int j = 0; j < OCTAV_LANES; j++) {
        it[j] = 0;
        conv[j] = nnz[j] == 0;
        prev2[j] = -1.0;
        active[j] = nnz[j] > 0 && max_iter > 0;
        nactive += active[j];
    }
    while (nactive > 0) {
        for (int j = 0; j < OCTAV_LANES; j++) { S[j] = 0.0; N[j] = 0; }
        for (int64_t i = 0; i < V; i++) {
            const double *row = M + i * OCTAV_LANES;
            for (int j = 0; j < OCTAV_LANES; j++) {
                const int a = row[j] > s[j];
                S[j] += a ? row[j] : 0.0;
                N[j] += a;
            }
        }
        /* rec_advance (octav.c) on every active lane */
        int ncyc = 0;
        nactive = 0;
        for (int j = 0; j < OCTAV_LANES; j++) {
            const double next = S[j] / (c * (double)(nnz[j] - N[j]) + (double)N[j]);
            const int32_t act = active[j];
            const int32_t fixed = act & (next == s[j]);
            const int32_t cy = act & !fixed & (next == prev2[j]);
            const int32_t go = act & !fixed & !cy;
            nxt[j] = next;
            cyc[j] = cy;
            it[j] += act;
            conv[j] |= fixed | cy;
            prev2[j] = go ? s[j] : prev2[j];
            s[j] = go ? next : s[j];
            active[j] = go & (it[j] < max_iter);
            nactive += active[j];
            ncyc += cy;
        }
        for (int j = 0; ncyc > 0 && j < OCTAV_LANES; j++)
            if (cyc[j]) {
                s[j] = lanes_min_above(M, V, j, nxt[j] < s[j] ? nxt[j] : s[j]);
                ncyc--;
            }
    }
}

#endif
