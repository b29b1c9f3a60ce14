/* test_nn_ops.h -- helpers shared by the operator tests (test_nn_norm.c,
 * test_nn_act.c, test_nn_pool.c, test_nn_loss.c): PyTorch fixtures of
 * tests/fixtures/nn_ops (made by gen_nn_ops.py) read with octav_npy_read,
 * buffers, and bitwise comparison of runs with 1 and 2 threads. */
#ifndef OCTAV_TEST_NN_OPS_H
#define OCTAV_TEST_NN_OPS_H
#include "octav/io.h"
#include "octav/nn.h"
#include "gradcheck.h"

#include <float.h>

#ifndef OCTAV_FIXTURES
#error "OCTAV_FIXTURES must name tests/fixtures"
#endif
#ifndef NN_FIX_DIR
#define NN_FIX_DIR OCTAV_FIXTURES "/nn_ops/"
#endif

static inline float *fbuf(long long n) {
    float *p = (float *)calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

static inline int32_t *ibuf(long long n) {
    int32_t *p = (int32_t *)calloc((size_t)(n > 0 ? n : 1), sizeof *p);
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* Reads NN_FIX_DIR name.npy; checks it holds n floats (n < 0: any). Returns
 * a malloc'ed copy (NULL, with a failed check, on error). */
static inline float *fix_load_(const char *file, int line, const char *name, long long n) {
    char path[1024];
    snprintf(path, sizeof path, "%s%s.npy", NN_FIX_DIR, name);
    octav_tensor t;
    if (octav_npy_read(path, &t) != OCTAV_OK) {
        fprintf(stderr, "  %s:%d: cannot read %s: %s\n", file, line, path, octav_last_error());
        t_failed_checks_++;
        return NULL;
    }
    long long got = (long long)octav_shape_numel(&t.shape);
    if (n >= 0 && got != n) {
        fprintf(stderr, "  %s:%d: %s has %lld values, expected %lld\n", file, line, path, got, n);
        t_failed_checks_++;
        octav_tensor_free(&t);
        return NULL;
    }
    float *p = fbuf(got);
    memcpy(p, t.data, (size_t)got * sizeof *p);
    octav_tensor_free(&t);
    return p;
}
#define FIX(name, n) fix_load_(__FILE__, __LINE__, name, n)

/* Integer data stored as float32 (labels, ids, indices). */
static inline int32_t *fix_ints_(const char *file, int line, const char *name, long long n) {
    float *f = fix_load_(file, line, name, n);
    if (!f) return NULL;
    int32_t *p = ibuf(n);
    for (long long i = 0; i < n; i++) p[i] = (int32_t)f[i];
    free(f);
    return p;
}
#define FIX_INTS(name, n) fix_ints_(__FILE__, __LINE__, name, n)

/* Bitwise equality (runs with different thread counts). */
#define CHECK_SAME_BITS(a, b, nbytes) \
    CHECK_MSG(memcmp((a), (b), (size_t)(nbytes)) == 0, "%s and %s differ bitwise", #a, #b)

static inline void fill_gauss(trng *r, float *x, long long n, double sd, double mu) {
    for (long long i = 0; i < n; i++) x[i] = (float)(mu + sd * trng_gauss(r));
}
#endif
