/* parallel.c -- the thread count used by liboctav's OpenMP loops, by BLIS
 * (GEMM) and by oneDNN (convolution, which uses the OpenMP runtime's
 * default team size). */
#define _POSIX_C_SOURCE 200809L /* BLIS's header uses pthread barriers */
#include "octav/octav.h"

#include <blis.h>
#include <omp.h>

static int g_threads;

int octav_set_threads(int n) {
    g_threads = n > 0 ? n : 0;
    int t = octav_get_threads();
    if (n > 0) omp_set_num_threads(t);
    bli_thread_set_num_threads((dim_t)t);
    return t;
}

int octav_get_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }
