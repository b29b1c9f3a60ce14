/* parallel.c -- the thread count used by liboctav's OpenMP loops. */
#include "octav/octav.h"

#include <omp.h>

static int g_threads;

int octav_set_threads(int n) {
    g_threads = n > 0 ? n : 0;
    return octav_get_threads();
}

int octav_get_threads(void) { return g_threads > 0 ? g_threads : omp_get_max_threads(); }
