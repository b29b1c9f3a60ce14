/* kernels_lanes.h -- shared by the lane kernels of the OCTAV solver (see
 * octav_kernels in internal.h; the scalar reference is in kernels.c, the
 * AVX2 and AVX-512 versions in kernels_avx2.c and kernels_avx512.c). */
#ifndef OCTAV_KERNELS_LANES_H
#define OCTAV_KERNELS_LANES_H

#include "internal.h"

/* The smallest of the first V rows of lane j above lo (a two-cycle's result). */
static inline double lanes_min_above(const double *M, int64_t V, int j, double lo) {
    double best = INFINITY;
    for (int64_t i = 0; i < V; i++) {
        const double m = M[i * OCTAV_LANES + j];
        if (m > lo && m < best) best = m;
    }
    return best;
}

#endif
