/* quant.h -- the method of Sakr et al. (ICML 2022): quantization grids,
 * MSE-optimal clipping with the OCTAV Newton recursion, baseline clipping
 * methods, fake quantization with STE / PWL / MAD gradients, and integer
 * quantization for export.
 *
 * Example: per-output-channel 4-bit OCTAV scales for a conv weight.
 *
 *   octav_shape shp = {4, {64, 32, 3, 3}};
 *   octav_layout lay;
 *   octav_layout_make(&shp, (octav_group_spec){OCTAV_GRAN_CHANNEL, 0, 0}, &lay);
 *   octav_grid g = {4, OCTAV_GRID_FULL};
 *   octav_clip_config cfg = octav_clip_default(OCTAV_CLIP_OCTAV);
 *   octav_solver *sv; octav_solver_create(&sv);
 *   float scales[64];
 *   if (octav_clip(sv, &cfg, g, &lay, w, scales, NULL) != OCTAV_OK) ...;
 *   octav_fq_forward(g, &lay, w, scales, wq);        // wq = Q(w; scales)
 *   octav_solver_destroy(sv);
 *
 * Notation: s is the clipping scalar (the "scale" of this API), B the bit
 * width, L the number of grid steps per s, d = s / L the step, and
 * Q(x; s) = d * clamp(rne(x / d), qmin, qmax) with rne = round half to even.
 */
#ifndef OCTAV_QUANT_H
#define OCTAV_QUANT_H

#include "octav/octav.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- grids ---------------------------------------------------------------
 *   FULL     signed, q in [-2^(B-1), 2^(B-1)-1],      L = 2^(B-1)   (paper)
 *   NARROW   signed, q in [-(2^(B-1)-1), 2^(B-1)-1],  L = 2^(B-1)-1 (ONNX/TRT)
 *   UNSIGNED q in [0, 2^B - 1],                       L = 2^B
 * B = 2 .. 16. */
typedef enum { OCTAV_GRID_FULL = 0, OCTAV_GRID_NARROW, OCTAV_GRID_UNSIGNED } octav_grid_kind;

typedef struct {
    int bits;
    octav_grid_kind kind;
} octav_grid;

#define OCTAV_MIN_BITS 2
#define OCTAV_MAX_BITS 16

octav_status octav_grid_check(octav_grid g);
int32_t octav_grid_qmin(octav_grid g);
int32_t octav_grid_qmax(octav_grid g);
double octav_grid_levels(octav_grid g);   /* L */
/* Noise constant of the OCTAV cost: c = (d/s)^2 / 12 = 1 / (12 L^2).
 * FULL: 4^-B/3, UNSIGNED: 4^-B/12, NARROW: 1/(12 (2^(B-1)-1)^2). */
double octav_grid_noise_c(octav_grid g);
const char *octav_grid_name(octav_grid_kind k);          /* "full" ... */
octav_status octav_grid_parse(const char *name, octav_grid_kind *out);

/* ---- groups: which elements share one scale ------------------------------
 *   TENSOR  one group.
 *   CHANNEL one group per index along `axis` (any axis of an N-d tensor);
 *           group c = { x[o, c, i] } viewing the shape as (outer, C, inner).
 *   BLOCK   groups of `block` consecutive elements along the innermost axis
 *           (the last block of each row may be shorter); groups are numbered
 *           row-major: g = row * ceil(D / block) + b. */
typedef enum { OCTAV_GRAN_TENSOR = 0, OCTAV_GRAN_CHANNEL, OCTAV_GRAN_BLOCK } octav_granularity;

typedef struct {
    octav_granularity kind;
    int axis;        /* CHANNEL: 0 .. ndim-1 (negative counts from the end) */
    int64_t block;   /* BLOCK: V >= 1                                       */
} octav_group_spec;

/* Derived description of the groups of one tensor (plain data). */
typedef struct {
    octav_granularity kind;
    int64_t numel;
    int64_t ngroups;
    int axis;         /* normalised axis (CHANNEL), -1 otherwise */
    int64_t outer;    /* CHANNEL: prod(shape[:axis]); BLOCK: number of rows */
    int64_t channels; /* CHANNEL: shape[axis]                               */
    int64_t inner;    /* CHANNEL: prod(shape[axis+1:]); BLOCK: row length D */
    int64_t block;    /* BLOCK: V                                          */
    int64_t nblocks;  /* BLOCK: blocks per row, ceil(D / V)                */
} octav_layout;

octav_status octav_layout_make(const octav_shape *shape, octav_group_spec spec,
                               octav_layout *out);
/* Number of elements of group g. */
int64_t octav_layout_group_size(const octav_layout *lay, int64_t g);
/* Group of the element at flat C-order index i. */
int64_t octav_layout_group_of(const octav_layout *lay, int64_t i);
const char *octav_granularity_name(octav_granularity k);
octav_status octav_granularity_parse(const char *name, octav_granularity *out);

/* ---- clipping methods -------------------------------------------------- */
typedef enum {
    OCTAV_CLIP_OCTAV = 0,     /* Newton recursion on the OCTAV cost (paper §3) */
    OCTAV_CLIP_MAX,           /* s = max|x|                                     */
    OCTAV_CLIP_PERCENTILE,    /* s = p-th percentile of |x| (param = p)         */
    OCTAV_CLIP_SIGMA,         /* s = k * RMS of x about 0 (of x > 0 for the unsigned grid) (param = k) */
    OCTAV_CLIP_ACIQ_LAPLACE,  /* ACIQ (Banner et al.): Laplace fit, analytic s  */
    OCTAV_CLIP_ACIQ_GAUSS,    /* ACIQ: Gaussian fit, analytic s                 */
    OCTAV_CLIP_MSE_SWEEP,     /* min true MSE over s = k/N * max, k=1..N (N = param) */
    OCTAV_CLIP_ENTROPY,       /* KL-divergence calibration (TensorRT); param = most histogram
                                 bins (2048), fewer for small groups (about 4 values per bin) */
    OCTAV_CLIP_COUNT_
} octav_clip_method;

typedef struct {
    octav_clip_method method;
    double param;            /* percentile p, sigma k, sweep points N, entropy bins
                                (octav_clip_default() fills the defaults)            */
    int max_iter;            /* OCTAV: cap on Newton steps (default 100)           */
    const float *warm_start; /* OCTAV: one start per group, or NULL for the paper's
                                start (mean of the non-zero |x| of the group)       */
    const char *name;        /* tensor name used in error messages (may be NULL)   */
} octav_clip_config;

/* Per-group diagnostics (any pointer may be NULL). */
typedef struct {
    int32_t *iterations;   /* OCTAV: Newton steps taken (incl. the one that confirmed the fixed point) */
    uint8_t *converged;    /* OCTAV: 1 if a fixed point was reached within max_iter */
} octav_clip_info;

octav_clip_config octav_clip_default(octav_clip_method m);
const char *octav_clip_name(const octav_clip_config *cfg); /* "octav", "percentile-99.99" */
/* Parses "octav", "max", "percentile" (99.99), "percentile-99.9", "sigma" (3),
 * "sigma-4", "aciq-laplace", "aciq-gauss", "mse-sweep", "entropy". */
octav_status octav_clip_parse(const char *name, octav_clip_config *out);

/* A solver context: holds the workspace reused across calls so that per-step
 * use in training allocates nothing after the first call. Not thread safe:
 * use one per thread. */
typedef struct octav_solver octav_solver;
octav_status octav_solver_create(octav_solver **out);
void octav_solver_destroy(octav_solver *sv);

/* Computes one scale per group of x (numel = lay->numel floats, C order).
 * Signed grids clip |x|; the unsigned grid clips x and negatives go to zero
 * (they take no part in any method). An all-zero group gets scale 0.
 * Errors: OCTAV_ENONFINITE (message names the tensor and index),
 * OCTAV_EEMPTY (numel == 0), OCTAV_EINVAL (bad grid, method or param). */
octav_status octav_clip(octav_solver *sv, const octav_clip_config *cfg,
                        octav_grid g, const octav_layout *lay, const float *x,
                        float *scales, octav_clip_info *info);

/* OCTAV, scalar reference: the specification the fast solver is tested
 * against. One group given as a contiguous array (already a group's values).
 *   s_{n+1} = sum_{|x|>s_n} |x| / ( c * #{0<|x|<=s_n} + #{|x|>s_n} )
 * iterated from s_0 (s0 <= 0: mean of the non-zero |x|) until s_{n+1} == s_n.
 * The fixed point is the exact minimiser of the convex cost
 *   Jt(s) = c * sum_{0<|x|<=s} (s^2 - x^2) + sum_{|x|>s} (|x| - s)^2
 * whose derivative is the recursion's stationarity condition. When that
 * minimiser is a data value a (Jt has a kink there), the recursion alternates
 * between two values around a; octav detects the two-cycle and returns a.
 * Returns the scale in double. */
double octav_solve_ref(const float *x, int64_t n, octav_grid g, double s0,
                       int max_iter, int32_t *iterations, int *converged);

/* OCTAV's fixed point under exact expectations (the model of paper §2) for a
 * Laplace(b = 1) or Gaussian(sigma = 1) variable: the clipping ratio s / b or
 * s / sigma. Used for docs and tests. */
double octav_fixed_point_laplace(octav_grid g);
double octav_fixed_point_gauss(octav_grid g);
/* ACIQ's analytic clipping ratio (Banner et al.), minimising
 * c*a^2 + E[(|X|-a)^2; |X|>a] for unit Laplace / Gaussian. */
double octav_aciq_ratio_laplace(octav_grid g);
double octav_aciq_ratio_gauss(octav_grid g);

/* Model cost J(s)/n = (c s^2 #{0<|x|<=s} + sum_{|x|>s} (|x|-s)^2) / n of a
 * contiguous group (for plots and brute-force tests). */
double octav_model_cost(const float *x, int64_t n, octav_grid g, double s);

/* Static calibration: averages the method's scales over several batches
 * (the paper's static OCTAV). batches[k] has lay->numel floats. */
octav_status octav_clip_static(octav_solver *sv, const octav_clip_config *cfg,
                               octav_grid g, const octav_layout *lay,
                               const float *const *batches, int nbatches,
                               float *scales);

/* ---- quantization quality ---------------------------------------------- */
typedef struct {
    double mse;              /* mean over all elements of (Q(x) - x)^2 */
    double sqnr_db;          /* 10 log10(sum x^2 / sum (Q(x)-x)^2); +inf if exact */
    double clipped_fraction; /* fraction of elements whose rne(x/d) is outside [qmin, qmax] */
} octav_quant_error;

octav_status octav_quant_error_eval(octav_grid g, const octav_layout *lay,
                                    const float *x, const float *scales,
                                    octav_quant_error *out);

/* ---- fake quantization -----------------------------------------------
 * Forward: y = Q(x; s_g) for the group g of each element. A scale of 0 maps
 * its group to 0. y may alias x. */
octav_status octav_fq_forward(octav_grid g, const octav_layout *lay,
                              const float *x, const float *scales, float *y);

/* Gradient estimators for dL/dx. Rounding always passes the gradient
 * straight through. An element is "clipped" when its integer rne(x/d) lies
 * outside [qmin, qmax] (PyTorch's fake-quant rule, learnable ops included).
 *   STE: dx = dy everywhere.
 *   PWL: dx = dy if not clipped, else 0.
 *   MAD: dx = dy if not clipped, else dy * |Q(x)| / |x| (the clip bound over
 *        |x|: s/|x| on the symmetric side; for the unsigned grid negatives
 *        get 0 since Q(x) = 0). */
typedef enum { OCTAV_GRAD_STE = 0, OCTAV_GRAD_PWL, OCTAV_GRAD_MAD } octav_grad_est;
const char *octav_grad_name(octav_grad_est e);
octav_status octav_grad_parse(const char *name, octav_grad_est *out);

/* Gradient with respect to the scale s of each group, for learned clipping.
 *   NONE: not computed (OCTAV: s is not learned).
 *   LSQ:  y = d * clamp(rne(x/d)), d = s/L; dy/ds = (rne(x/d) - x/d)/L
 *         inside, qmin/L or qmax/L when clipped (Esser et al.; PyTorch's
 *         _fake_quantize_learnable_* dScale with d as the parameter, divided
 *         by L), without LSQ's gradient scale (apply it yourself).
 *   PACT: dy/ds = 0 inside, qmin/L or qmax/L when clipped (the clip bound
 *         moves with s; Choi et al.). */
typedef enum { OCTAV_SGRAD_NONE = 0, OCTAV_SGRAD_LSQ, OCTAV_SGRAD_PACT } octav_scale_grad;

/* dx (may alias dy) gets dL/dx; dscale (one double per group, may be NULL
 * when sg == NONE) gets sum over the group of dy * dy/ds (overwritten). */
octav_status octav_fq_backward(octav_grid g, const octav_layout *lay,
                               const float *x, const float *scales,
                               const float *dy, octav_grad_est est,
                               octav_scale_grad sg, float *dx, double *dscale);

/* ---- integer quantization for export ----------------------------------
 * q = clamp(rne(x / d), qmin, qmax), x' = q * d. int8 storage needs B <= 8
 * (signed grids store int8, the unsigned grid uint8 in the same bytes);
 * packed 4-bit needs B <= 4: element 2i in the low nibble of byte i, element
 * 2i+1 in the high nibble (ONNX int4 layout), nbytes = ceil(numel/2). */
octav_status octav_quantize_int8(octav_grid g, const octav_layout *lay,
                                 const float *x, const float *scales, uint8_t *q);
octav_status octav_dequantize_int8(octav_grid g, const octav_layout *lay,
                                   const uint8_t *q, const float *scales, float *x);
octav_status octav_quantize_int4(octav_grid g, const octav_layout *lay,
                                 const float *x, const float *scales, uint8_t *q);
octav_status octav_dequantize_int4(octav_grid g, const octav_layout *lay,
                                   const uint8_t *q, const float *scales, float *x);

/* Checks that every value is finite; the message names `name` and the index. */
octav_status octav_check_finite(const float *x, int64_t n, const char *name);

#ifdef __cplusplus
}
#endif
#endif
