/* conv_impl.h -- what the conv2d backends share: the plan struct and the
 * table of backend functions (the one switch point between them). Private
 * to src/nn/conv*.c and to tests/benches that want a backend's variants. */
#ifndef OCTAV_NN_CONV_IMPL_H
#define OCTAV_NN_CONV_IMPL_H

#include "octav/nn.h"

typedef struct conv_backend conv_backend;

struct octav_conv2d {
    octav_conv2d_desc d;        /* checked: h_out, w_out filled */
    octav_backend kind;         /* resolved, never AUTO */
    const conv_backend *be;
    void *impl;                 /* the backend's state (primitives, workspace) */
    int dnnl_layout;            /* DNNL only: CONV_DNNL_* asked for */
    int dnnl_used[3];           /* DNNL only: layout of forward, backward data,
                                   backward weights (PLAIN or BLOCKED) */
};

/* A backend. create fills c->impl (workspace included: forward and backward
 * then allocate nothing); destroy frees it (c->impl may be NULL). forward and
 * backward get checked, non-NULL x/w/dy/y; b, dx, dw, db may be NULL. */
struct conv_backend {
    const char *name;
    octav_status (*create)(octav_conv2d *c);
    void (*destroy)(octav_conv2d *c);
    octav_status (*forward)(octav_conv2d *c, const float *x, const float *w,
                            const float *b, float *y);
    octav_status (*backward)(octav_conv2d *c, const float *x, const float *w,
                             const float *dy, float *dx, float *dw, float *db);
};

extern const conv_backend octav_conv_ref_backend;
extern const conv_backend octav_conv_gemm_backend;
extern const conv_backend octav_conv_dnnl_backend;

/* oneDNN memory layouts of the DNNL backend. AUTO: the rule in conv_dnnl.c;
 * PLAIN: every primitive works on the caller's NCHW / OIHW buffers (oneDNN
 * then uses its im2col + GEMM or depthwise kernels for plain layouts);
 * BLOCKED: primitives choose their layouts (format_tag any: nChw16c and
 * blocked weights), with reorders from and to NCHW in the plan's buffers. */
enum { CONV_DNNL_AUTO = 0, CONV_DNNL_PLAIN, CONV_DNNL_BLOCKED };

/* octav_conv2d_create with a forced oneDNN layout (benchmarks and tests). */
octav_status octav_conv2d_create_dnnl(const octav_conv2d_desc *d, int layout,
                                      octav_conv2d **out);
/* The layout AUTO picks for a shape (CONV_DNNL_PLAIN or CONV_DNNL_BLOCKED). */
int octav_conv_dnnl_pick_layout(const octav_conv2d_desc *d);
/* GEMM backend: the im2col chunk width (columns) of plans created afterwards;
 * 0 restores the default. Not thread-safe: for tests and benchmarks. */
void octav_conv_gemm_set_chunk_cols(int64_t cols);
/* GEMM backend: the mode of plans created afterwards: 0 the rule, 1 chunks
 * of images with multithreaded GEMMs, 2 images in parallel with
 * single-threaded GEMMs. Not thread-safe: for tests and benchmarks. */
void octav_conv_gemm_set_mode(int mode);

/* Direct depthwise kernels (conv_dw.c) for groups == c_in: a plan of tap
 * offsets, a zeroed workspace of octav_conv_dw_workspace floats per thread
 * (for up to threads_made threads), forward and backward on whole tensors. */
typedef struct conv_dw_plan conv_dw_plan;
octav_status octav_conv_dw_plan_make(const octav_conv2d_desc *d, conv_dw_plan **out);
void octav_conv_dw_plan_free(conv_dw_plan *p);
int64_t octav_conv_dw_workspace(const conv_dw_plan *p);
void octav_conv_dw_forward(const conv_dw_plan *p, const octav_conv2d_desc *d, const float *x,
                           const float *w, const float *b, float *y, float *ws, int threads_made);
void octav_conv_dw_backward(const conv_dw_plan *p, const octav_conv2d_desc *d, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *db,
                            float *ws, int threads_made);

/* Whole-plan sizes as int64 (the desc is checked, so no overflow). */
static inline int64_t conv_x_numel(const octav_conv2d_desc *d) {
    return d->n * d->c_in * d->h_in * d->w_in;
}
static inline int64_t conv_y_numel(const octav_conv2d_desc *d) {
    return d->n * d->c_out * d->h_out * d->w_out;
}
static inline int64_t conv_w_numel(const octav_conv2d_desc *d) {
    return d->c_out * (d->c_in / d->groups) * d->kh * d->kw;
}
static inline int conv_is_depthwise(const octav_conv2d_desc *d) {
    return d->groups > 1 && d->groups == d->c_in && d->groups == d->c_out;
}

#endif
