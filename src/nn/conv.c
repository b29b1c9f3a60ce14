/* conv.c -- 2-D convolution: descriptor checks, plans, the dispatch to a
 * backend, and the reference kernels (the specification every backend is
 * tested against).
 *
 * Backends (one table of functions each, conv_impl.h):
 *   REF   this file: plain loops, one thread, every output element one sum
 *         accumulated in double (gather form, also for dx and dw), rounded
 *         to float once.
 *   GEMM  conv_gemm.c: im2col / col2im + BLIS sgemm, images in parallel
 *         (chunks of images with multithreaded GEMMs when there are fewer
 *         images than threads); depthwise convolutions (groups == c_in) use
 *         the direct NCHW kernels of conv_dw.c instead.
 *   DNNL  conv_dnnl.c: oneDNN forward, backward-data and backward-weights
 *         primitives, created once per plan, each on plain NCHW or on
 *         oneDNN's blocked layouts with reorders (a per-primitive rule).
 *
 * AUTO rule, from bench/conv_timing.c and bench/conv_timing_torch.py at
 * batch 128 on the conv shapes of the cnn / resnet20 / mobilenetv2 models:
 *   - depthwise (groups == c_in == c_out)   -> GEMM (conv_dw.c's kernels)
 *   - everything else                      -> DNNL, layouts per primitive:
 *       1x1 without padding: plain; fewer than 16 input channels per
 *       group: forward / backward-weights blocked, backward-data plain;
 *       otherwise blocked (conv_dnnl.c's pick_layouts)
 *   - DNNL has no primitive for the shape   -> GEMM.
 * Measured (ms per call, CPU time at one thread -- the machine was shared,
 * and CPU time was the statistic that held still; fwd / bwd-data / bwd-wts):
 *   3x3 32->32 at 28x28   gemm 34 / 33 / 43  dnnl-plain 32 / 59 / 54
 *                         dnnl-blocked 16 / 20 / 21  (PyTorch 13 / 14 / 25)
 *   3x3 64->64 at 8x8     gemm 12.6 / 11.5 / 15.8  plain 7.5 / 9.0 / 8.3
 *                         blocked 3.6 / 3.4 / 4.2  (PyTorch 3.5 / 3.6 / 4.3)
 *   3x3 1->32 at 28x28    gemm 2.6 / 1.3 / 3.7  plain 1.9 / 1.5 / 3.6
 *                         blocked 1.9 / 7.9 / 1.8
 *   1x1 16->96 at 16x16   gemm 3.1 / 1.7 / 3.7  plain 1.35 / 0.93 / 2.65
 *                         blocked 2.1 / 2.0 / 2.9  (PyTorch 2.1 / 2.2 / 2.8)
 *   dw 3x3 96 at 16x16    gemm 2.5 / 2.9 / 2.9  plain 24 / 39 / 40
 *                         blocked 3.4 / 3.8 / 3.4  (PyTorch 4.4 / 3.2 / 3.1)
 *   dw 3x3 s2 96 at 16x16 gemm 1.7 / 3.0 / 2.0  plain 11 / 17 / 13
 *                         blocked 1.9 / 2.8 / 1.9  (PyTorch 1.9 / 2.3 / 1.9)
 * Timing at plan creation was not used: on a shared machine a few calls
 * decide wrongly as often as not, and a rule is reproducible.
 *
 * A plan's calls must not overlap (its workspace is shared); different
 * plans may run concurrently. oneDNN partitions work by the thread count
 * at plan creation; the other backends use octav_get_threads() per call
 * (capped by the count at creation where they keep per-thread workspace).
 *
 * Non-finite values: the reference skips padding taps; the fast backends
 * multiply explicit zeros (im2col padding, oneDNN's, conv_dw.c's padding and
 * scratch columns), so with an Inf in x, w or dy they may give NaN where
 * the reference does not. Finite inputs agree to rounding.
 *
 * Deliberately left out: dilation, asymmetric padding, other layouts than
 * NCHW, transposed convolution (its forward is this op's backward-data). */
#include "nn/conv_impl.h"

#include <stdlib.h>

static int mul_ok(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0 || (b && a > INT64_MAX / b)) return 0;
    *out = a * b;
    return 1;
}

octav_status octav_conv2d_desc_check(octav_conv2d_desc *d) {
    if (!d) return octav_set_error(OCTAV_EINVAL, "conv2d: NULL descriptor");
    if (d->n <= 0 || d->c_in <= 0 || d->h_in <= 0 || d->w_in <= 0 ||
        d->c_out <= 0 || d->kh <= 0 || d->kw <= 0)
        return octav_set_error(OCTAV_EINVAL,
                               "conv2d: sizes must be positive (n %lld, c_in %lld, "
                               "h_in %lld, w_in %lld, c_out %lld, kernel %lldx%lld)",
                               (long long)d->n, (long long)d->c_in, (long long)d->h_in,
                               (long long)d->w_in, (long long)d->c_out,
                               (long long)d->kh, (long long)d->kw);
    if (d->stride_h <= 0 || d->stride_w <= 0)
        return octav_set_error(OCTAV_EINVAL, "conv2d: strides must be positive (%d, %d)",
                               d->stride_h, d->stride_w);
    if (d->pad_h < 0 || d->pad_w < 0)
        return octav_set_error(OCTAV_EINVAL, "conv2d: negative padding (%d, %d)",
                               d->pad_h, d->pad_w);
    if (d->groups <= 0 || d->c_in % d->groups || d->c_out % d->groups)
        return octav_set_error(OCTAV_EINVAL,
                               "conv2d: groups %d must be positive and divide c_in %lld "
                               "and c_out %lld", d->groups, (long long)d->c_in,
                               (long long)d->c_out);
    /* Bound every size so that the products below cannot overflow. */
    const int64_t lim = (int64_t)1 << 31;
    if (d->h_in >= lim || d->w_in >= lim || d->kh >= lim || d->kw >= lim ||
        d->c_in >= lim || d->c_out >= lim || d->n >= lim)
        return octav_set_error(OCTAV_EINVAL, "conv2d: a size exceeds 2^31");
    int64_t hp = d->h_in + 2 * (int64_t)d->pad_h, wp = d->w_in + 2 * (int64_t)d->pad_w;
    if (hp < d->kh || wp < d->kw)
        return octav_set_error(OCTAV_EINVAL,
                               "conv2d: kernel %lldx%lld larger than the padded input "
                               "%lldx%lld (output smaller than 1x1)",
                               (long long)d->kh, (long long)d->kw, (long long)hp,
                               (long long)wp);
    int64_t ho = (hp - d->kh) / d->stride_h + 1, wo = (wp - d->kw) / d->stride_w + 1;
    int64_t t, sx, sy, sw;
    if (!mul_ok(d->n, d->c_in, &t) || !mul_ok(t, d->h_in, &t) || !mul_ok(t, d->w_in, &sx) ||
        !mul_ok(d->n, d->c_out, &t) || !mul_ok(t, ho, &t) || !mul_ok(t, wo, &sy) ||
        !mul_ok(d->c_out, d->c_in / d->groups, &t) || !mul_ok(t, d->kh, &t) ||
        !mul_ok(t, d->kw, &sw) || !mul_ok(sx, (int64_t)sizeof(float), &t) ||
        !mul_ok(sy, (int64_t)sizeof(float), &t) || !mul_ok(sw, (int64_t)sizeof(float), &t) ||
        !mul_ok(d->c_in / d->groups * d->kh, d->kw * ho, &t) || !mul_ok(t, wo, &t))
        return octav_set_error(OCTAV_EINVAL, "conv2d: tensor sizes overflow");
    d->h_out = ho;
    d->w_out = wo;
    return OCTAV_OK;
}

/* ---- reference kernels ------------------------------------------------------
 * x [n, c_in, h_in, w_in], w [c_out, c_in/groups, kh, kw], b [c_out],
 * y and dy [n, c_out, h_out, w_out]. */

void octav_conv2d_forward_ref(const octav_conv2d_desc *d, const float *x,
                              const float *w, const float *b, float *y) {
    const int64_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    const int64_t H = d->h_in, W = d->w_in, HO = d->h_out, WO = d->w_out;
    for (int64_t n = 0; n < d->n; n++)
        for (int64_t co = 0; co < d->c_out; co++) {
            const int64_t g = co / cog;
            const float *wc = w + co * cig * d->kh * d->kw;
            float *yp = y + (n * d->c_out + co) * HO * WO;
            for (int64_t oh = 0; oh < HO; oh++)
                for (int64_t ow = 0; ow < WO; ow++) {
                    double s = b ? (double)b[co] : 0.0;
                    for (int64_t ci = 0; ci < cig; ci++) {
                        const float *xp = x + (n * d->c_in + g * cig + ci) * H * W;
                        const float *wp = wc + ci * d->kh * d->kw;
                        for (int64_t i = 0; i < d->kh; i++) {
                            int64_t ih = oh * d->stride_h - d->pad_h + i;
                            if (ih < 0 || ih >= H) continue;
                            for (int64_t j = 0; j < d->kw; j++) {
                                int64_t iw = ow * d->stride_w - d->pad_w + j;
                                if (iw < 0 || iw >= W) continue;
                                s += (double)xp[ih * W + iw] * (double)wp[i * d->kw + j];
                            }
                        }
                    }
                    yp[oh * WO + ow] = (float)s;
                }
        }
}

/* Output index o with o * stride - pad + k == i, or -1. */
static int64_t out_index(int64_t i, int64_t k, int stride, int pad, int64_t n_out) {
    int64_t t = i + pad - k;
    if (t < 0 || t % stride) return -1;
    t /= stride;
    return t < n_out ? t : -1;
}

void octav_conv2d_backward_ref(const octav_conv2d_desc *d, const float *x,
                               const float *w, const float *dy, float *dx,
                               float *dw, float *db) {
    const int64_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    const int64_t H = d->h_in, W = d->w_in, HO = d->h_out, WO = d->w_out;
    const int64_t KH = d->kh, KW = d->kw;
    if (dx)
        for (int64_t n = 0; n < d->n; n++)
            for (int64_t c = 0; c < d->c_in; c++) {
                const int64_t g = c / cig, cl = c % cig;
                for (int64_t ih = 0; ih < H; ih++)
                    for (int64_t iw = 0; iw < W; iw++) {
                        double s = 0;
                        for (int64_t co = g * cog; co < (g + 1) * cog; co++) {
                            const float *dyp = dy + (n * d->c_out + co) * HO * WO;
                            const float *wp = w + (co * cig + cl) * KH * KW;
                            for (int64_t i = 0; i < KH; i++) {
                                int64_t oh = out_index(ih, i, d->stride_h, d->pad_h, HO);
                                if (oh < 0) continue;
                                for (int64_t j = 0; j < KW; j++) {
                                    int64_t ow = out_index(iw, j, d->stride_w, d->pad_w, WO);
                                    if (ow < 0) continue;
                                    s += (double)dyp[oh * WO + ow] * (double)wp[i * KW + j];
                                }
                            }
                        }
                        dx[((n * d->c_in + c) * H + ih) * W + iw] = (float)s;
                    }
            }
    if (dw)
        for (int64_t co = 0; co < d->c_out; co++) {
            const int64_t g = co / cog;
            for (int64_t cl = 0; cl < cig; cl++)
                for (int64_t i = 0; i < KH; i++)
                    for (int64_t j = 0; j < KW; j++) {
                        double s = 0;
                        for (int64_t n = 0; n < d->n; n++) {
                            const float *dyp = dy + (n * d->c_out + co) * HO * WO;
                            const float *xp = x + (n * d->c_in + g * cig + cl) * H * W;
                            for (int64_t oh = 0; oh < HO; oh++) {
                                int64_t ih = oh * d->stride_h - d->pad_h + i;
                                if (ih < 0 || ih >= H) continue;
                                for (int64_t ow = 0; ow < WO; ow++) {
                                    int64_t iw = ow * d->stride_w - d->pad_w + j;
                                    if (iw < 0 || iw >= W) continue;
                                    s += (double)dyp[oh * WO + ow] * (double)xp[ih * W + iw];
                                }
                            }
                        }
                        dw[((co * cig + cl) * KH + i) * KW + j] = (float)s;
                    }
        }
    if (db)
        for (int64_t co = 0; co < d->c_out; co++) {
            double s = 0;
            for (int64_t n = 0; n < d->n; n++) {
                const float *dyp = dy + (n * d->c_out + co) * HO * WO;
                for (int64_t p = 0; p < HO * WO; p++) s += (double)dyp[p];
            }
            db[co] = (float)s;
        }
}

static octav_status ref_create(octav_conv2d *c) { (void)c; return OCTAV_OK; }
static void ref_destroy(octav_conv2d *c) { (void)c; }
static octav_status ref_forward(octav_conv2d *c, const float *x, const float *w,
                                const float *b, float *y) {
    octav_conv2d_forward_ref(&c->d, x, w, b, y);
    return OCTAV_OK;
}
static octav_status ref_backward(octav_conv2d *c, const float *x, const float *w,
                                 const float *dy, float *dx, float *dw, float *db) {
    octav_conv2d_backward_ref(&c->d, x, w, dy, dx, dw, db);
    return OCTAV_OK;
}

const conv_backend octav_conv_ref_backend = {
    .name = "ref",
    .create = ref_create,
    .destroy = ref_destroy,
    .forward = ref_forward,
    .backward = ref_backward,
};

/* ---- plans ------------------------------------------------------------------ */

/* The AUTO rule of the top comment. */
static octav_backend auto_kind(const octav_conv2d_desc *d) {
    if (conv_is_depthwise(d)) return OCTAV_BACKEND_GEMM;
    return OCTAV_BACKEND_DNNL;
}

static const conv_backend *backend_of(octav_backend k) {
    switch (k) {
    case OCTAV_BACKEND_REF: return &octav_conv_ref_backend;
    case OCTAV_BACKEND_GEMM: return &octav_conv_gemm_backend;
    case OCTAV_BACKEND_DNNL: return &octav_conv_dnnl_backend;
    case OCTAV_BACKEND_AUTO: break;
    }
    return NULL;
}

static octav_status plan_create(const octav_conv2d_desc *d, octav_backend kind,
                                int dnnl_layout, octav_conv2d **out) {
    octav_conv2d *c = octav_calloc(1, sizeof *c);
    if (!c) return octav_set_error(OCTAV_ENOMEM, "conv2d: out of memory for the plan");
    c->d = *d;
    c->kind = kind;
    c->be = backend_of(kind);
    c->dnnl_layout = dnnl_layout;
    octav_status st = c->be->create(c);
    if (st != OCTAV_OK) {
        c->be->destroy(c);
        octav_free(c);
        return st;
    }
    *out = c;
    return OCTAV_OK;
}

octav_status octav_conv2d_create(const octav_conv2d_desc *d, octav_backend be,
                                 octav_conv2d **out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "conv2d: NULL output plan");
    *out = NULL;
    if (!d) return octav_set_error(OCTAV_EINVAL, "conv2d: NULL descriptor");
    octav_conv2d_desc dc = *d;
    octav_status st = octav_conv2d_desc_check(&dc);
    if (st != OCTAV_OK) return st;
    if (be != OCTAV_BACKEND_AUTO && !backend_of(be))
        return octav_set_error(OCTAV_EINVAL, "conv2d: unknown backend %d", (int)be);
    if (be != OCTAV_BACKEND_AUTO) return plan_create(&dc, be, CONV_DNNL_AUTO, out);
    octav_backend k = auto_kind(&dc);
    st = plan_create(&dc, k, CONV_DNNL_AUTO, out);
    /* oneDNN has no primitive for the shape: the GEMM backend always has. */
    if (st == OCTAV_EUNSUPPORTED && k == OCTAV_BACKEND_DNNL)
        st = plan_create(&dc, OCTAV_BACKEND_GEMM, CONV_DNNL_AUTO, out);
    return st;
}

octav_status octav_conv2d_create_dnnl(const octav_conv2d_desc *d, int layout,
                                      octav_conv2d **out) {
    if (!out) return octav_set_error(OCTAV_EINVAL, "conv2d: NULL output plan");
    *out = NULL;
    if (!d) return octav_set_error(OCTAV_EINVAL, "conv2d: NULL descriptor");
    if (layout != CONV_DNNL_AUTO && layout != CONV_DNNL_PLAIN && layout != CONV_DNNL_BLOCKED)
        return octav_set_error(OCTAV_EINVAL, "conv2d: unknown oneDNN layout %d", layout);
    octav_conv2d_desc dc = *d;
    octav_status st = octav_conv2d_desc_check(&dc);
    if (st != OCTAV_OK) return st;
    return plan_create(&dc, OCTAV_BACKEND_DNNL, layout, out);
}

void octav_conv2d_destroy(octav_conv2d *c) {
    if (!c) return;
    c->be->destroy(c);
    octav_free(c);
}

const octav_conv2d_desc *octav_conv2d_get_desc(const octav_conv2d *c) {
    return c ? &c->d : NULL;
}

const char *octav_conv2d_backend_name(const octav_conv2d *c) {
    return c ? c->be->name : "none";
}

octav_status octav_conv2d_forward(octav_conv2d *c, const float *x, const float *w,
                                  const float *b, float *y) {
    if (!c || !x || !w || !y)
        return octav_set_error(OCTAV_EINVAL, "conv2d forward: NULL plan, x, w or y");
    return c->be->forward(c, x, w, b, y);
}

octav_status octav_conv2d_backward(octav_conv2d *c, const float *x, const float *w,
                                   const float *dy, float *dx, float *dw, float *db) {
    if (!c || !dy)
        return octav_set_error(OCTAV_EINVAL, "conv2d backward: NULL plan or dy");
    if (dx && !w) return octav_set_error(OCTAV_EINVAL, "conv2d backward: dx needs w");
    if (dw && !x) return octav_set_error(OCTAV_EINVAL, "conv2d backward: dw needs x");
    if (!dx && !dw && !db) return OCTAV_OK;
    return c->be->backward(c, x, w, dy, dx, dw, db);
}
