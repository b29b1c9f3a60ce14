/* blas.h -- the one include of BLIS's CBLAS interface for the engine.
 * A file including it must start with
 *     #define _POSIX_C_SOURCE 200809L
 * before any other #include (BLIS's header uses pthread barriers). */
#ifndef OCTAV_NN_BLAS_H
#define OCTAV_NN_BLAS_H
#include <cblas.h>
#endif
