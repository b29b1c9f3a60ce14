/* nn.h -- the training engine's operators: plain functions on float
 * buffers, forward and backward side by side (llm.c / kann style).
 *
 * Conventions
 *  - Tensors are dense, row-major float32; images are NCHW. Shapes are in
 *    the comments beside each argument.
 *  - Backward functions OVERWRITE their outputs (dx, dw, db, ...): they never
 *    accumulate. The graph (model.h) sums gradients where a value feeds
 *    several consumers. Any gradient output may be NULL to skip it.
 *  - Reductions accumulate in double where the result feeds a statistic
 *    (batchnorm/layernorm means and variances, losses). Results depend only
 *    on the inputs and the thread count, never on timing.
 *  - Randomness takes an explicit seed / counter (octav_rng, octav_hash_*):
 *    no hidden global state.
 *  - `_ref` functions are plain C, single-threaded, and are the
 *    specification the fast paths are tested against.
 *
 *   octav_conv2d_desc d = {.n = 128, .c_in = 1, .h_in = 28, .w_in = 28,
 *                          .c_out = 32, .kh = 3, .kw = 3, .stride_h = 1,
 *                          .stride_w = 1, .pad_h = 1, .pad_w = 1, .groups = 1};
 *   octav_conv2d *conv;
 *   if (octav_conv2d_create(&d, OCTAV_BACKEND_AUTO, &conv) == OCTAV_OK) {
 *       octav_conv2d_forward(conv, x, w, b, y);
 *       octav_conv2d_backward(conv, x, w, dy, dx, dw, db);
 *       octav_conv2d_destroy(conv);
 *   }
 */
#ifndef OCTAV_NN_H
#define OCTAV_NN_H

#include "octav/octav.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- randomness ------------------------------------------------------------
 * xoshiro256** seeded through splitmix64: a sequential generator for
 * initialisation and shuffling. */
typedef struct {
    uint64_t s[4];
} octav_rng;

void octav_rng_seed(octav_rng *r, uint64_t seed);
uint64_t octav_rng_next(octav_rng *r);
double octav_rng_uniform(octav_rng *r);            /* [0, 1), 53 bits         */
double octav_rng_normal(octav_rng *r);             /* N(0, 1), Box-Muller     */
uint64_t octav_rng_below(octav_rng *r, uint64_t n); /* uniform in [0, n), n>0  */
/* Counter-based: the same (seed, counter) always gives the same value, so
 * that parallel loops (dropout masks) are independent of the thread count. */
uint64_t octav_hash_u64(uint64_t seed, uint64_t counter);
double octav_hash_uniform(uint64_t seed, uint64_t counter); /* [0, 1) */

/* ---- GEMM (row-major) ------------------------------------------------------
 * C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, op(X) = X or X^T
 * (trans != 0). lda/ldb/ldc are row strides of A, B, C as stored. The fast
 * version calls the BLAS (BLIS); the _ref version is the triple loop with
 * double accumulation. */
void octav_gemm(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                float alpha, const float *a, int64_t lda, const float *b,
                int64_t ldb, float beta, float *c, int64_t ldc);
void octav_gemm_ref(int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                    float alpha, const float *a, int64_t lda, const float *b,
                    int64_t ldb, float beta, float *c, int64_t ldc);
/* Batched: for i < batch, C_i = alpha op(A_i) op(B_i) + beta C_i with
 * A_i = a + i * stride_a etc. (attention's Q K^T and P V). */
void octav_gemm_batched(int trans_a, int trans_b, int64_t batch, int64_t m,
                        int64_t n, int64_t k, float alpha, const float *a,
                        int64_t lda, int64_t stride_a, const float *b,
                        int64_t ldb, int64_t stride_b, float beta, float *c,
                        int64_t ldc, int64_t stride_c);

/* ---- linear ----------------------------------------------------------------
 * y[n,out] = x[n,in] W^T + b,  W [out,in], b [out] or NULL.
 * Backward: dx = dy W, dW = dy^T x, db = sum_rows dy. */
void octav_linear_forward(const float *x, const float *w, const float *b,
                          float *y, int64_t n, int64_t in, int64_t out);
void octav_linear_backward(const float *x, const float *w, const float *dy,
                           float *dx, float *dw, float *db, int64_t n,
                           int64_t in, int64_t out);

/* ---- conv2d ----------------------------------------------------------------
 * y[n,c_out,h_out,w_out] = sum over the group's input channels and the
 * kernel window of x[n,c_in,h_in,w_in] * W[c_out, c_in/groups, kh, kw]
 * (+ b[c_out]), zero padding, dilation 1. h_out = (h_in + 2 pad_h - kh) /
 * stride_h + 1 (floor), likewise w_out. groups divides c_in and c_out;
 * groups == c_in == c_out is a depthwise convolution. */
typedef struct {
    int64_t n, c_in, h_in, w_in;
    int64_t c_out, kh, kw;
    int stride_h, stride_w, pad_h, pad_w, groups;
    int64_t h_out, w_out;   /* filled by octav_conv2d_desc_check */
} octav_conv2d_desc;

/* Validates d (positive sizes, groups dividing both channel counts, an
 * output of at least 1x1) and fills h_out, w_out. */
octav_status octav_conv2d_desc_check(octav_conv2d_desc *d);

typedef enum {
    OCTAV_BACKEND_AUTO = 0,  /* the fastest available for the shape */
    OCTAV_BACKEND_REF,       /* the plain C reference               */
    OCTAV_BACKEND_GEMM,      /* im2col / col2im + BLAS              */
    OCTAV_BACKEND_DNNL       /* oneDNN                              */
} octav_backend;

/* A convolution plan: the shape, the chosen backend, its primitives and
 * workspace. Created once per layer and batch size, reused every step. */
typedef struct octav_conv2d octav_conv2d;
octav_status octav_conv2d_create(const octav_conv2d_desc *d, octav_backend be,
                                 octav_conv2d **out);
void octav_conv2d_destroy(octav_conv2d *c);
const octav_conv2d_desc *octav_conv2d_get_desc(const octav_conv2d *c);
const char *octav_conv2d_backend_name(const octav_conv2d *c);
octav_status octav_conv2d_forward(octav_conv2d *c, const float *x,
                                  const float *w, const float *b, float *y);
octav_status octav_conv2d_backward(octav_conv2d *c, const float *x,
                                   const float *w, const float *dy, float *dx,
                                   float *dw, float *db);
/* Reference implementations (desc already checked). */
void octav_conv2d_forward_ref(const octav_conv2d_desc *d, const float *x,
                              const float *w, const float *b, float *y);
void octav_conv2d_backward_ref(const octav_conv2d_desc *d, const float *x,
                               const float *w, const float *dy, float *dx,
                               float *dw, float *db);

/* ---- normalisation -----------------------------------------------------------
 * BatchNorm over x[n, c, hw] (hw = H*W; 1 for a linear layer's output).
 * Training: mu_c, var_c = mean and biased variance over (n, hw);
 *   y = gamma (x - mu) / sqrt(var + eps) + beta; saves mean[c] and
 *   rstd[c] = 1/sqrt(var + eps) for backward; updates running statistics
 *   as PyTorch does: run = (1 - momentum) run + momentum * stat, with the
 *   unbiased variance (count / (count - 1)) for run_var.
 * Eval: the running statistics instead. */
void octav_batchnorm_forward_train(const float *x, const float *gamma,
                                   const float *beta, float *y, float *mean,
                                   float *rstd, float *run_mean, float *run_var,
                                   int64_t n, int64_t c, int64_t hw,
                                   float momentum, float eps);
void octav_batchnorm_forward_eval(const float *x, const float *gamma,
                                  const float *beta, const float *run_mean,
                                  const float *run_var, float *y, int64_t n,
                                  int64_t c, int64_t hw, float eps);
void octav_batchnorm_backward(const float *x, const float *gamma,
                              const float *mean, const float *rstd,
                              const float *dy, float *dx, float *dgamma,
                              float *dbeta, int64_t n, int64_t c, int64_t hw);

/* LayerNorm over the last axis of x[rows, d]: y = gamma (x - mu)/sqrt(var +
 * eps) + beta per row (biased variance); saves mean[rows], rstd[rows]. */
void octav_layernorm_forward(const float *x, const float *gamma,
                             const float *beta, float *y, float *mean,
                             float *rstd, int64_t rows, int64_t d, float eps);
void octav_layernorm_backward(const float *x, const float *gamma,
                              const float *mean, const float *rstd,
                              const float *dy, float *dx, float *dgamma,
                              float *dbeta, int64_t rows, int64_t d);

/* ---- elementwise activations (n elements; dx may alias dy) ---------------- */
void octav_relu_forward(const float *x, float *y, int64_t n);
void octav_relu_backward(const float *x, const float *dy, float *dx, int64_t n); /* dy * (x > 0) */
void octav_relu6_forward(const float *x, float *y, int64_t n);
void octav_relu6_backward(const float *x, const float *dy, float *dx, int64_t n); /* dy * (0 < x < 6) */
/* GELU, exact (erf) form as PyTorch's default: y = x Phi(x). */
void octav_gelu_forward(const float *x, float *y, int64_t n);
void octav_gelu_backward(const float *x, const float *dy, float *dx, int64_t n);
/* The same pair with Phi(x) saved by the forward (cdf, n doubles): the
 * backward then needs only exp(-x^2/2); bit-identical results. */
void octav_gelu_forward_save(const float *x, float *y, double *cdf, int64_t n);
void octav_gelu_backward_saved(const float *x, const double *cdf, const float *dy, float *dx, int64_t n);

/* Inverted dropout: element i is kept with probability 1 - p, decided by
 * octav_hash_uniform(seed, i) >= p, and kept values are scaled by 1/(1-p).
 * mask[n] (1 kept, 0 dropped) is written for backward. p in [0, 1). */
void octav_dropout_forward(const float *x, float *y, uint8_t *mask, int64_t n,
                           float p, uint64_t seed);
void octav_dropout_backward(const uint8_t *mask, const float *dy, float *dx,
                            int64_t n, float p);

/* Residual add: y = a + b (n elements). Backward is the identity to both. */
void octav_add_forward(const float *a, const float *b, float *y, int64_t n);

/* ---- pooling (NCHW) ----------------------------------------------------------
 * Windows k x k, stride s, zero/neg-inf padding p; h_out = (h + 2p - k)/s + 1.
 * Max pool saves argmax[n,c,h_out,w_out] (flat index within the input plane;
 * the first maximum wins, as PyTorch). Avg pool divides by k*k, padding
 * included (PyTorch's count_include_pad=True). Global average pool:
 * y[n,c] = mean over h*w. */
void octav_maxpool2d_forward(const float *x, float *y, int32_t *argmax,
                             int64_t n, int64_t c, int64_t h, int64_t w,
                             int k, int s, int p);
void octav_maxpool2d_backward(const int32_t *argmax, const float *dy, float *dx,
                              int64_t n, int64_t c, int64_t h, int64_t w,
                              int k, int s, int p);
void octav_avgpool2d_forward(const float *x, float *y, int64_t n, int64_t c,
                             int64_t h, int64_t w, int k, int s, int p);
void octav_avgpool2d_backward(const float *dy, float *dx, int64_t n, int64_t c,
                              int64_t h, int64_t w, int k, int s, int p);
void octav_gap_forward(const float *x, float *y, int64_t n, int64_t c, int64_t hw);
void octav_gap_backward(const float *dy, float *dx, int64_t n, int64_t c, int64_t hw);

/* ---- softmax, embedding ------------------------------------------------------
 * Row softmax of x[rows, d] (max-subtracted); backward from y:
 * dx = y * (dy - sum(dy * y)). */
void octav_softmax_forward(const float *x, float *y, int64_t rows, int64_t d);
void octav_softmax_backward(const float *y, const float *dy, float *dx,
                            int64_t rows, int64_t d);
/* y[n, d] = table[ids[i], :]; backward dtable (overwritten, vocab x d) =
 * sum of dy rows per id. ids must be in [0, vocab). */
void octav_embedding_forward(const int32_t *ids, const float *table, float *y,
                             int64_t n, int64_t d);
void octav_embedding_backward(const int32_t *ids, const float *dy, float *dtable,
                              int64_t n, int64_t vocab, int64_t d);

/* ---- loss ----------------------------------------------------------------------
 * Softmax cross-entropy with label smoothing eps: target q = (1 - eps) onehot
 * + eps / k. Returns the mean loss over n rows (double accumulation) and
 * writes probs[n,k] (the softmax) for backward; correct (may be NULL) gets
 * the number of rows whose argmax (first maximum) equals the label.
 * Backward: dlogits = (probs - q) * scale (scale = 1/n for the mean).
 * A negative label ignores its row (PyTorch's ignore_index): no loss, no
 * hit, zero dlogits; the returned mean is over the labelled rows (0 when
 * there are none), so pass scale = 1/(labelled rows). */
double octav_xent_forward(const float *logits, const int32_t *labels,
                          float *probs, int64_t n, int64_t k, float smoothing,
                          int64_t *correct);
void octav_xent_backward(const float *probs, const int32_t *labels,
                         float *dlogits, int64_t n, int64_t k, float smoothing,
                         float scale);

/* ---- optimizers (one parameter tensor of n elements per call) -----------------
 * SGD as torch.optim.SGD: g' = g + wd p; buf = momentum buf + g' (buf = g'
 * at t == 1, the first step); update = nesterov ? g' + momentum buf : buf;
 * p -= lr * update. momentum 0 uses no buffer (buf may be NULL); momentum
 * != 0 needs buf (asserted in debug builds).
 * AdamW as torch.optim.AdamW: p -= lr wd p; m = b1 m + (1-b1) g;
 * v = b2 v + (1-b2) g^2; p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
 * t counts from 1. */
void octav_sgd_step(float *p, const float *g, float *buf, int64_t n, float lr,
                    float momentum, float weight_decay, int nesterov, int64_t t);
void octav_adamw_step(float *p, const float *g, float *m, float *v, int64_t n,
                      float lr, float beta1, float beta2, float eps,
                      float weight_decay, int64_t t);
/* The L2 norm of g[n] (double accumulation, independent of the thread
 * count); x[n] *= alpha. Clipping to max_norm is the caller's
 * octav_scale(g, n, max_norm / norm) when norm > max_norm (over several
 * tensors: norm = sqrt of the sum of their squared norms). */
double octav_grad_norm(const float *g, int64_t n);
void octav_scale(float *x, int64_t n, float alpha);

/* ---- learning-rate schedules ---------------------------------------------------
 * lr(step) for step = 0 .. total-1: linear warmup from 0 over warmup steps
 * (lr * (step+1)/warmup), then
 *   CONSTANT: lr
 *   STEP:     lr * gamma^floor((step - warmup) / step_size)
 *   COSINE:   min + (lr - min) * (1 + cos(pi * t)) / 2,  t = (step-warmup)/(total-warmup)
 *   LINEAR:   min + (lr - min) * (1 - t)
 * with min = lr * min_ratio. */
typedef enum {
    OCTAV_SCHED_CONSTANT = 0,
    OCTAV_SCHED_STEP,
    OCTAV_SCHED_COSINE,
    OCTAV_SCHED_LINEAR
} octav_sched_kind;

typedef struct {
    octav_sched_kind kind;
    int64_t total_steps;
    int64_t warmup_steps;
    int64_t step_size;   /* STEP */
    double gamma;        /* STEP */
    double min_ratio;    /* COSINE, LINEAR */
} octav_schedule;

double octav_schedule_lr(const octav_schedule *s, double base_lr, int64_t step);
const char *octav_sched_name(octav_sched_kind k);
octav_status octav_sched_parse(const char *name, octav_sched_kind *out);

#ifdef __cplusplus
}
#endif
#endif
