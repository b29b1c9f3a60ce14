/* conv_dnnl.c -- the oneDNN (2.6 C API) backend of conv2d.
 *
 * A plan owns a CPU engine and stream and three convolution primitives,
 * created once: forward (training, with bias), backward data, backward
 * weights (with bias). The caller's tensors are NCHW / OIHW (GOIHW for
 * groups > 1) and are wrapped per call with dnnl_memory_set_data_handle.
 * Each primitive has one of two layouts (conv_impl.h):
 *   PLAIN    created on those plain layouts directly (oneDNN then runs its
 *            im2col + GEMM, or a reference kernel for depthwise);
 *   BLOCKED  the primitive picks its layouts (format_tag any: nChw16c and
 *            blocked weights, its JIT direct kernels) and the plan reorders
 *            in and out through its own buffers: one for x-like tensors
 *            (x, dx), one for y-like (y, dy), one for weights; dy is
 *            reordered once per backward when both backward primitives
 *            take the same layout.
 * CONV_DNNL_AUTO picks per primitive (pick_layouts below); tests and
 * benchmarks can force PLAIN or BLOCKED for all three.
 *
 * No allocation per call: the buffers, the zero bias (forward without b),
 * the bias-gradient sink (dw without db) and the scratchpad (user mode: the
 * largest primitive's, shared) are allocated with the plan through
 * octav_malloc. oneDNN's own allocations (primitive descriptors, JIT code)
 * happen in create only.
 * db without dw is a plain double-accumulated sum here, not a primitive.
 * Results depend on the thread count at plan creation (oneDNN partitions
 * work by it) but not on timing. */
#include "nn/conv_impl.h"

#include <oneapi/dnnl/dnnl.h>
#include <string.h>

/* A tensor as the caller holds it (user) and as a primitive wants it (prim),
 * with the reorder between them when they differ. */
typedef struct {
    dnnl_memory_desc_t user_md, prim_md;
    dnnl_memory_t user, prim;   /* prim == user when no reorder is needed */
    dnnl_primitive_t reorder;   /* user -> prim (inputs) or prim -> user (outputs) */
    int is_output;
} slot;

typedef struct {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_t fwd, bwd_data, bwd_w;
    /* forward */
    slot f_x, f_w, f_y;
    /* backward data */
    slot d_dy, d_w, d_dx;
    /* backward weights */
    slot w_x, w_dy, w_dw;
    dnnl_memory_t bias, dbias;  /* user layout (x) */
    float *zero_bias, *db_sink;
    float *buf_x, *buf_y, *buf_w;
    void *scratch;
    dnnl_memory_t scratch_mem;
    int dy_shared;              /* w_dy and d_dy have the same prim layout */
} dnnl_state;

static octav_status dnnl_err(dnnl_status_t s, const char *what) {
    if (s == dnnl_out_of_memory)
        return octav_set_error(OCTAV_ENOMEM, "conv2d dnnl: out of memory in %s", what);
    if (s == dnnl_unimplemented)
        return octav_set_error(OCTAV_EUNSUPPORTED, "conv2d dnnl: %s: not implemented by oneDNN",
                               what);
    return octav_set_error(OCTAV_EUNSUPPORTED, "conv2d dnnl: %s failed (oneDNN status %d)", what,
                           (int)s);
}

#define DN(call, what) do { dnnl_status_t s_ = (call); \
    if (s_ != dnnl_success) return dnnl_err(s_, what); } while (0)

/* The per-primitive rule of CONV_DNNL_AUTO, from bench/conv_timing.c
 * (batch 128; see conv.c's top comment for the numbers):
 *  - 1x1 without padding (any stride): PLAIN for all three (oneDNN runs them
 *    as GEMMs on NCHW; reorders would cost more than the convolution);
 *  - fewer than 16 input channels per group: forward and backward weights
 *    BLOCKED (the JIT kernels read plain NCHW src there), backward data
 *    PLAIN (the blocked one pads c_in to 16: 3-4x slower for c_in = 1);
 *  - everything else: BLOCKED. */
static void pick_layouts(const octav_conv2d_desc *d, int lay[3]) {
    int pointwise = d->kh == 1 && d->kw == 1 && d->pad_h == 0 && d->pad_w == 0;
    lay[0] = lay[1] = lay[2] = pointwise ? CONV_DNNL_PLAIN : CONV_DNNL_BLOCKED;
    if (!pointwise && d->c_in / d->groups < 16) lay[1] = CONV_DNNL_PLAIN;
}

int octav_conv_dnnl_pick_layout(const octav_conv2d_desc *d) {
    int lay[3];
    pick_layouts(d, lay);
    return lay[0];
}

static void slot_free(slot *t) {
    if (t->prim && t->prim != t->user) dnnl_memory_destroy(t->prim);
    if (t->user) dnnl_memory_destroy(t->user);
    if (t->reorder) dnnl_primitive_destroy(t->reorder);
    memset(t, 0, sizeof *t);
}

/* Sets up a slot from the user's md and the primitive's. */
static octav_status slot_init(dnnl_state *s, slot *t, const dnnl_memory_desc_t *user_md,
                              const dnnl_memory_desc_t *prim_md, int is_output,
                              const_dnnl_primitive_attr_t attr, size_t *scratch_max) {
    t->user_md = *user_md;
    t->prim_md = *prim_md;
    t->is_output = is_output;
    DN(dnnl_memory_create(&t->user, user_md, s->eng, DNNL_MEMORY_NONE), "memory");
    if (dnnl_memory_desc_equal(user_md, prim_md)) {
        t->prim = t->user;
        return OCTAV_OK;
    }
    DN(dnnl_memory_create(&t->prim, prim_md, s->eng, DNNL_MEMORY_NONE), "memory");
    dnnl_primitive_desc_t pd;
    if (is_output)
        DN(dnnl_reorder_primitive_desc_create(&pd, prim_md, s->eng, user_md, s->eng, attr),
           "reorder");
    else
        DN(dnnl_reorder_primitive_desc_create(&pd, user_md, s->eng, prim_md, s->eng, attr),
           "reorder");
    const dnnl_memory_desc_t *sm = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t ss = sm ? dnnl_memory_desc_get_size(sm) : 0;
    if (ss > *scratch_max) *scratch_max = ss;
    dnnl_status_t st = dnnl_primitive_create(&t->reorder, pd);
    dnnl_primitive_desc_destroy(pd);
    DN(st, "reorder");
    return OCTAV_OK;
}

static size_t md_size(const slot *t) {
    return t->prim != t->user ? dnnl_memory_desc_get_size(&t->prim_md) : 0;
}

static void dnnl_destroy_(octav_conv2d *c) {
    dnnl_state *s = c->impl;
    if (!s) return;
    slot *slots[] = {&s->f_x, &s->f_w, &s->f_y, &s->d_dy, &s->d_w,
                     &s->d_dx, &s->w_x, &s->w_dy, &s->w_dw};
    for (size_t i = 0; i < sizeof slots / sizeof *slots; i++) slot_free(slots[i]);
    if (s->fwd) dnnl_primitive_destroy(s->fwd);
    if (s->bwd_data) dnnl_primitive_destroy(s->bwd_data);
    if (s->bwd_w) dnnl_primitive_destroy(s->bwd_w);
    if (s->bias) dnnl_memory_destroy(s->bias);
    if (s->dbias) dnnl_memory_destroy(s->dbias);
    if (s->scratch_mem) dnnl_memory_destroy(s->scratch_mem);
    if (s->strm) dnnl_stream_destroy(s->strm);
    if (s->eng) dnnl_engine_destroy(s->eng);
    octav_free(s->zero_bias);
    octav_free(s->db_sink);
    octav_free(s->buf_x);
    octav_free(s->buf_y);
    octav_free(s->buf_w);
    octav_free(s->scratch);
    octav_free(s);
    c->impl = NULL;
}

static const dnnl_memory_desc_t *q(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

static size_t pd_scratch(const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *sm = q(pd, dnnl_query_scratchpad_md);
    return sm ? dnnl_memory_desc_get_size(sm) : 0;
}

static octav_status set_handle(dnnl_memory_t m, const void *p) {
    DN(dnnl_memory_set_data_handle(m, (void *)(uintptr_t)p), "set_data_handle");
    return OCTAV_OK;
}

/* Creates the three primitives and everything they need. The three pds are
 * destroyed on every path; primitives and memories end up in s. */
static octav_status build(octav_conv2d *c, dnnl_state *s, const int lay[3]) {
    const octav_conv2d_desc *d = &c->d;
    const int64_t G = d->groups;
    dnnl_dims_t xd = {d->n, d->c_in, d->h_in, d->w_in};
    dnnl_dims_t yd = {d->n, d->c_out, d->h_out, d->w_out};
    dnnl_dims_t bd = {d->c_out};
    dnnl_dims_t wd4 = {d->c_out, d->c_in, d->kh, d->kw};
    dnnl_dims_t wd5 = {G, d->c_out / G, d->c_in / G, d->kh, d->kw};
    dnnl_dims_t strides = {d->stride_h, d->stride_w};
    dnnl_dims_t pl = {d->pad_h, d->pad_w};
    dnnl_dims_t pr = {(d->h_out - 1) * d->stride_h + d->kh - d->h_in - d->pad_h,
                      (d->w_out - 1) * d->stride_w + d->kw - d->w_in - d->pad_w};
    dnnl_memory_desc_t x_md, y_md, w_md, b_md, xa, ya, wa;
    const dnnl_memory_desc_t *px[3], *py[3], *pw[3]; /* per primitive: fwd, bwd data, bwd wts */
    const int wnd = G > 1 ? 5 : 4;
    const dnnl_dim_t *wdims = G > 1 ? wd5 : wd4;
    DN(dnnl_memory_desc_init_by_tag(&x_md, 4, xd, dnnl_f32, dnnl_nchw), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&y_md, 4, yd, dnnl_f32, dnnl_nchw), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&w_md, wnd, wdims, dnnl_f32, G > 1 ? dnnl_goihw : dnnl_oihw),
       "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&xa, 4, xd, dnnl_f32, dnnl_format_tag_any), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&ya, 4, yd, dnnl_f32, dnnl_format_tag_any), "memory desc");
    DN(dnnl_memory_desc_init_by_tag(&wa, wnd, wdims, dnnl_f32, dnnl_format_tag_any),
       "memory desc");
    for (int i = 0; i < 3; i++) {
        int blk = lay[i] == CONV_DNNL_BLOCKED;
        px[i] = blk ? &xa : &x_md;
        py[i] = blk ? &ya : &y_md;
        pw[i] = blk ? &wa : &w_md;
    }
    dnnl_primitive_attr_t attr;
    DN(dnnl_primitive_attr_create(&attr), "attr");
    dnnl_status_t e = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_convolution_desc_t fd, dd, wdsc;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    if (e == dnnl_success)
        e = dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct,
                                               px[0], pw[0], &b_md, py[0], strides, pl, pr);
    if (e == dnnl_success) e = dnnl_primitive_desc_create(&fpd, &fd, attr, s->eng, NULL);
    if (e == dnnl_success)
        e = dnnl_convolution_backward_data_desc_init(&dd, dnnl_convolution_direct, px[1], pw[1],
                                                     py[1], strides, pl, pr);
    if (e == dnnl_success) e = dnnl_primitive_desc_create(&dpd, &dd, attr, s->eng, fpd);
    if (e == dnnl_success)
        e = dnnl_convolution_backward_weights_desc_init(&wdsc, dnnl_convolution_direct, px[2],
                                                        pw[2], &b_md, py[2], strides, pl, pr);
    if (e == dnnl_success) e = dnnl_primitive_desc_create(&wpd, &wdsc, attr, s->eng, fpd);
    octav_status st = e == dnnl_success ? OCTAV_OK : dnnl_err(e, "convolution primitive");
    size_t scratch = 0;
    if (!st) st = slot_init(s, &s->f_x, &x_md, q(fpd, dnnl_query_src_md), 0, attr, &scratch);
    if (!st) st = slot_init(s, &s->f_w, &w_md, q(fpd, dnnl_query_weights_md), 0, attr, &scratch);
    if (!st) st = slot_init(s, &s->f_y, &y_md, q(fpd, dnnl_query_dst_md), 1, attr, &scratch);
    if (!st) st = slot_init(s, &s->d_dy, &y_md, q(dpd, dnnl_query_diff_dst_md), 0, attr, &scratch);
    if (!st) st = slot_init(s, &s->d_w, &w_md, q(dpd, dnnl_query_weights_md), 0, attr, &scratch);
    if (!st) st = slot_init(s, &s->d_dx, &x_md, q(dpd, dnnl_query_diff_src_md), 1, attr, &scratch);
    if (!st) st = slot_init(s, &s->w_x, &x_md, q(wpd, dnnl_query_src_md), 0, attr, &scratch);
    if (!st) st = slot_init(s, &s->w_dy, &y_md, q(wpd, dnnl_query_diff_dst_md), 0, attr, &scratch);
    if (!st)
        st = slot_init(s, &s->w_dw, &w_md, q(wpd, dnnl_query_diff_weights_md), 1, attr, &scratch);
    if (!st) {
        size_t sc[3] = {pd_scratch(fpd), pd_scratch(dpd), pd_scratch(wpd)};
        for (int i = 0; i < 3; i++)
            if (sc[i] > scratch) scratch = sc[i];
    }
    if (!st) {
        e = dnnl_primitive_create(&s->fwd, fpd);
        if (e == dnnl_success) e = dnnl_primitive_create(&s->bwd_data, dpd);
        if (e == dnnl_success) e = dnnl_primitive_create(&s->bwd_w, wpd);
        if (e != dnnl_success) st = dnnl_err(e, "convolution primitive");
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    dnnl_primitive_attr_destroy(attr);
    if (st) return st;

    /* Buffers: x-like, y-like, weights; zero bias, db sink, scratchpad. */
    size_t sx = md_size(&s->f_x), sy = md_size(&s->f_y), sw = md_size(&s->f_w);
    size_t t;
    if ((t = md_size(&s->d_dx)) > sx) sx = t;
    if ((t = md_size(&s->w_x)) > sx) sx = t;
    if ((t = md_size(&s->d_dy)) > sy) sy = t;
    if ((t = md_size(&s->w_dy)) > sy) sy = t;
    if ((t = md_size(&s->d_w)) > sw) sw = t;
    if ((t = md_size(&s->w_dw)) > sw) sw = t;
    s->dy_shared = s->w_dy.prim != s->w_dy.user && s->d_dy.prim != s->d_dy.user &&
                   dnnl_memory_desc_equal(&s->w_dy.prim_md, &s->d_dy.prim_md);
    s->zero_bias = octav_calloc((size_t)d->c_out, sizeof(float));
    s->db_sink = octav_malloc((size_t)d->c_out * sizeof(float));
    if (sx) s->buf_x = octav_malloc(sx);
    if (sy) s->buf_y = octav_malloc(sy);
    if (sw) s->buf_w = octav_malloc(sw);
    if (scratch) s->scratch = octav_malloc(scratch);
    if (!s->zero_bias || !s->db_sink || (sx && !s->buf_x) || (sy && !s->buf_y) ||
        (sw && !s->buf_w) || (scratch && !s->scratch))
        return octav_set_error(OCTAV_ENOMEM, "conv2d dnnl: out of memory for the workspace");
    DN(dnnl_memory_create(&s->bias, &b_md, s->eng, DNNL_MEMORY_NONE), "memory");
    DN(dnnl_memory_create(&s->dbias, &b_md, s->eng, DNNL_MEMORY_NONE), "memory");
    if (scratch) {
        dnnl_memory_desc_t smd;
        dnnl_dims_t sd = {(dnnl_dim_t)scratch};
        DN(dnnl_memory_desc_init_by_tag(&smd, 1, sd, dnnl_u8, dnnl_x), "memory desc");
        DN(dnnl_memory_create(&s->scratch_mem, &smd, s->eng, s->scratch), "memory");
    }
    struct { slot *t; void *buf; } bind[] = {
        {&s->f_x, s->buf_x}, {&s->d_dx, s->buf_x}, {&s->w_x, s->buf_x},
        {&s->f_y, s->buf_y}, {&s->d_dy, s->buf_y}, {&s->w_dy, s->buf_y},
        {&s->f_w, s->buf_w}, {&s->d_w, s->buf_w}, {&s->w_dw, s->buf_w}};
    for (size_t i = 0; i < sizeof bind / sizeof *bind; i++)
        if (bind[i].t->prim != bind[i].t->user) {
            st = set_handle(bind[i].t->prim, bind[i].buf);
            if (st) return st;
        }
    return OCTAV_OK;
}

static octav_status dnnl_create_(octav_conv2d *c) {
    dnnl_state *s = octav_calloc(1, sizeof *s);
    if (!s) return octav_set_error(OCTAV_ENOMEM, "conv2d dnnl: out of memory for the plan");
    c->impl = s;
    DN(dnnl_engine_create(&s->eng, dnnl_cpu, 0), "engine");
    DN(dnnl_stream_create(&s->strm, s->eng, dnnl_stream_default_flags), "stream");
    int lay[3] = {c->dnnl_layout, c->dnnl_layout, c->dnnl_layout};
    if (c->dnnl_layout == CONV_DNNL_AUTO) pick_layouts(&c->d, lay);
    memcpy(c->dnnl_used, lay, sizeof lay);
    return build(c, s, lay);
}

/* Runs prim with args plus the scratchpad. */
static octav_status exec(dnnl_state *s, dnnl_primitive_t prim, int nargs, dnnl_exec_arg_t *args,
                         const char *what) {
    if (s->scratch_mem) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratch_mem};
    DN(dnnl_primitive_execute(prim, s->strm, nargs, args), what);
    return OCTAV_OK;
}

/* Points the slot's user memory at p and, for an input, reorders it in. */
static octav_status slot_in(dnnl_state *s, slot *t, const float *p) {
    octav_status st = set_handle(t->user, p);
    if (st || !t->reorder) return st;
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, t->user}, {DNNL_ARG_TO, t->prim}};
    return exec(s, t->reorder, 2, a, "reorder");
}

static octav_status slot_out(dnnl_state *s, slot *t, float *p) {
    octav_status st = set_handle(t->user, p);
    if (st || !t->reorder) return st;
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, t->prim}, {DNNL_ARG_TO, t->user}};
    return exec(s, t->reorder, 2, a, "reorder");
}

static octav_status dnnl_forward_(octav_conv2d *c, const float *x, const float *w,
                                  const float *b, float *y) {
    dnnl_state *s = c->impl;
    octav_status st;
    if ((st = slot_in(s, &s->f_x, x)) || (st = slot_in(s, &s->f_w, w)) ||
        (st = set_handle(s->f_y.user, y)) || (st = set_handle(s->bias, b ? b : s->zero_bias)))
        return st;
    dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, s->f_x.prim}, {DNNL_ARG_WEIGHTS, s->f_w.prim},
                            {DNNL_ARG_BIAS, s->bias}, {DNNL_ARG_DST, s->f_y.prim}};
    if ((st = exec(s, s->fwd, 4, a, "forward"))) return st;
    if ((st = slot_out(s, &s->f_y, y))) return st;
    DN(dnnl_stream_wait(s->strm), "stream wait");
    return OCTAV_OK;
}

static void bias_grad(const octav_conv2d_desc *d, const float *dy, float *db) {
    const int64_t P = d->h_out * d->w_out;
#pragma omp parallel for num_threads(octav_get_threads()) schedule(static)
    for (int64_t co = 0; co < d->c_out; co++) {
        double t = 0;
        for (int64_t n = 0; n < d->n; n++) {
            const float *r = dy + (n * d->c_out + co) * P;
            for (int64_t p = 0; p < P; p++) t += (double)r[p];
        }
        db[co] = (float)t;
    }
}

static octav_status dnnl_backward_(octav_conv2d *c, const float *x, const float *w,
                                   const float *dy, float *dx, float *dw, float *db) {
    dnnl_state *s = c->impl;
    octav_status st;
    if (dw) {
        if ((st = slot_in(s, &s->w_dy, dy)) || (st = slot_in(s, &s->w_x, x)) ||
            (st = set_handle(s->w_dw.user, dw)) ||
            (st = set_handle(s->dbias, db ? db : s->db_sink)))
            return st;
        dnnl_exec_arg_t a[5] = {{DNNL_ARG_SRC, s->w_x.prim}, {DNNL_ARG_DIFF_DST, s->w_dy.prim},
                                {DNNL_ARG_DIFF_WEIGHTS, s->w_dw.prim},
                                {DNNL_ARG_DIFF_BIAS, s->dbias}};
        if ((st = exec(s, s->bwd_w, 4, a, "backward weights"))) return st;
        if ((st = slot_out(s, &s->w_dw, dw))) return st;
    } else if (db) {
        bias_grad(&c->d, dy, db);
    }
    if (dx) {
        /* w_dy's buffer still holds dy in the layout d_dy wants. */
        if (dw && s->dy_shared) st = set_handle(s->d_dy.user, dy);
        else st = slot_in(s, &s->d_dy, dy);
        if (st || (st = slot_in(s, &s->d_w, w)) || (st = set_handle(s->d_dx.user, dx))) return st;
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_DIFF_DST, s->d_dy.prim}, {DNNL_ARG_WEIGHTS, s->d_w.prim},
                                {DNNL_ARG_DIFF_SRC, s->d_dx.prim}};
        if ((st = exec(s, s->bwd_data, 3, a, "backward data"))) return st;
        if ((st = slot_out(s, &s->d_dx, dx))) return st;
    }
    DN(dnnl_stream_wait(s->strm), "stream wait");
    return OCTAV_OK;
}

const conv_backend octav_conv_dnnl_backend = {
    .name = "dnnl",
    .create = dnnl_create_,
    .destroy = dnnl_destroy_,
    .forward = dnnl_forward_,
    .backward = dnnl_backward_,
};
