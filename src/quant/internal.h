/* internal.h -- private helpers of src/quant: walking the groups of a layout
 * as runs of contiguous elements, the per-element quantizer, and the kernel
 * dispatch table of the solver. */
#ifndef OCTAV_QUANT_INTERNAL_H
#define OCTAV_QUANT_INTERNAL_H

#include "octav/quant.h"

#include <math.h>

/* A run: contiguous elements [base, base+len) all in group `group`. Memory
 * order: run j of CHANNEL is (o, c) = (j / C, j % C); of BLOCK is block j. */
typedef struct {
    int64_t base, len, group;
} octav_run;

static inline int64_t layout_nruns(const octav_layout *lay) {
    switch (lay->kind) {
    case OCTAV_GRAN_TENSOR: return 1;
    case OCTAV_GRAN_CHANNEL: return lay->outer * lay->channels;
    default: return lay->outer * lay->nblocks;
    }
}

static inline octav_run layout_run(const octav_layout *lay, int64_t j) {
    octav_run r;
    switch (lay->kind) {
    case OCTAV_GRAN_TENSOR:
        r.base = 0; r.len = lay->numel; r.group = 0;
        break;
    case OCTAV_GRAN_CHANNEL:
        r.base = j * lay->inner; r.len = lay->inner; r.group = j % lay->channels;
        break;
    default: {
        int64_t row = j / lay->nblocks, b = j % lay->nblocks;
        r.base = row * lay->inner + b * lay->block;
        r.len = lay->inner - b * lay->block;
        if (r.len > lay->block) r.len = lay->block;
        r.group = j;
    }
    }
    return r;
}

/* Segments of one group: nseg runs of seglen elements, stride apart. */
typedef struct {
    int64_t base, nseg, stride, seglen;
} octav_span;

static inline octav_span layout_span(const octav_layout *lay, int64_t g) {
    octav_span s;
    switch (lay->kind) {
    case OCTAV_GRAN_TENSOR:
        s.base = 0; s.nseg = 1; s.stride = 0; s.seglen = lay->numel;
        break;
    case OCTAV_GRAN_CHANNEL:
        s.base = g * lay->inner; s.nseg = lay->outer;
        s.stride = lay->channels * lay->inner; s.seglen = lay->inner;
        break;
    default: {
        octav_run r = layout_run(lay, g);
        s.base = r.base; s.nseg = 1; s.stride = 0; s.seglen = r.len;
    }
    }
    return s;
}

/* Elementwise work is split into pieces of at most this many elements. */
#define OCTAV_PIECE 65536

/* Step of the grid for scale s: d = fl32(s / L). */
static inline float grid_step(octav_grid g, float s) {
    return s / (float)octav_grid_levels(g);
}

/* Unclamped integer rne(x/d) as float (NaN propagates; -0 becomes +0 so
 * that fake quantization and dequantized integers agree bit for bit). */
static inline float q_round(float x, float d) { return rintf(x / d) + 0.0f; }

static inline float q_clamp(float q, float qmin, float qmax) {
    return q < qmin ? qmin : (q > qmax ? qmax : q);
}

/* Magnitude transform of the clipping methods: |x| (signed grids) or
 * max(x, 0) (unsigned grid; negatives take no part). */
static inline float mag_of(float x, int is_unsigned) {
    return is_unsigned ? (x > 0.0f ? x : 0.0f) : fabsf(x);
}

/* ---- OCTAV kernels (scalar reference in kernels.c, SIMD in kernels_*.c) --
 * All sums are in double. `is_unsigned` selects the magnitude: |x| (0),
 * max(x,0) (1), or OCTAV_MAGS: x already holds magnitudes (non-negative, as
 * the solver's compact copies and samples do), so both transforms are the
 * identity and a kernel may skip them. */
#define OCTAV_MAGS 2
typedef struct {
    double sum;        /* sum of magnitudes                      */
    int64_t nnz;       /* magnitudes > 0                         */
    float maxv;        /* unused by the solver kernels (set to 0) */
    int nonfinite;     /* 1 if a NaN or Inf was seen             */
} octav_stats;

typedef struct {
    /* Stats of x[0..n) (magnitudes). */
    void (*stats)(const float *x, int64_t n, int is_unsigned, octav_stats *out);
    /* Sum and count of magnitudes > t over x[0..n). */
    void (*above)(const float *x, int64_t n, int is_unsigned, double t, double *sum, int64_t *cnt);
    /* above() at t, and writes the magnitudes > tc (any tc) to out, order
     * kept; returns how many. out may equal x when x already holds
     * magnitudes (pass OCTAV_MAGS then). */
    int64_t (*above_compact)(const float *x, int64_t n, int is_unsigned, double t, double tc,
                             double *sum, int64_t *cnt, float *out);
    /* above_compact() plus the nnz and nonfinite fields of stats() in one
     * pass (a warm-started solve; st->sum and st->maxv are set to 0). */
    int64_t (*first)(const float *x, int64_t n, int is_unsigned, double t, double tc, octav_stats *st,
                     double *sum, int64_t *cnt, float *out);
    /* Many small groups side by side, OCTAV_LANES at a time (octav.c):
     * lanes_load writes M, whose row i (OCTAV_LANES doubles) holds the
     * magnitude of element i of each lane's run x[base[j] .. base[j] +
     * len[j]) (len[j] <= V; lanes past the groups have len 0), 0 past the
     * run's end, for rows 0 .. V rounded up to 16 (M is 64-byte aligned);
     * and each lane's sum of magnitudes (in element order) and count of
     * non-zero ones. Returns 1 if a NaN or Inf was read. */
    int (*lanes_load)(const float *x, const int64_t *base, const int64_t *len, int64_t V, int is_unsigned,
                      double *M, double *sum, int64_t *nnz);
    /* The recursion (rec_advance in recursion.h) of every lane j with nnz[j] > 0
     * on the first V rows of M, from s[j], at most max_iter steps: s[j]
     * becomes its result, it[j] the steps taken, conv[j] 1 if it
     * converged. Lanes with nnz[j] == 0 keep s[j] and get it 0, conv 1.
     * Each lane sums in element order, as the reference does, so the
     * results are bit-identical to octav_solve_ref. */
    void (*lanes_solve)(const double *M, int64_t V, const int64_t *nnz, double c, int max_iter, double *s,
                        int32_t *it, int32_t *conv);
    const char *name;
} octav_kernels;

#define OCTAV_LANES 16

extern const octav_kernels octav_kernels_scalar;

#if OCTAV_HAVE_X86_SIMD
extern const octav_kernels octav_kernels_avx2;
extern const octav_kernels octav_kernels_avx512;
#endif

/* The fastest kernels this CPU supports (OCTAV_KERNELS=scalar|avx2|avx512
 * in the environment overrides, for tests and benchmarks). */
const octav_kernels *octav_kernels_best(void);
/* Kernels by name, NULL when unknown or unsupported here. */
const octav_kernels *octav_kernels_by_name(const char *name);



/* Largest float f <= t: for any float m, (m > t) == (m > f). */
static inline float float_floor_of(double t) {
    float f = (float)t;
    if ((double)f > t) f = nextafterf(f, -INFINITY);
    return f;
}
#endif
