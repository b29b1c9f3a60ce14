/* conv_gemm.c -- the GEMM backend of conv2d: im2col / col2im + BLIS sgemm;
 * depthwise convolutions go to conv_dw.c's direct kernels.
 *
 * Per image n and group g (K = c_in/groups * kh * kw, P = h_out * w_out,
 * col [K, P] the im2col matrix of the image's group):
 *   forward        Y_ng [c_out/groups, P] = W_g [cog, K] col
 *   backward data  dcol [K, P] = W_g^T dY_ng, then col2im into dx
 *   backward wts   dW_g [cog, K] += dY_ng col^T
 * A 1x1, stride-1, unpadded convolution uses x as its own col and writes dx
 * directly. Two ways to run it:
 *   per image (n >= threads, the usual case): each thread takes a static
 *     share of the images with its own col, and calls sgemm from inside the
 *     OpenMP region, where BLIS runs on one thread (nested parallelism is
 *     off, OpenMP's default; were it on, BLIS would add threads, with the
 *     same results). dW: each thread sums its images into its own partial,
 *     and the partials are added in thread order.
 *   chunks (fewer images than threads): nb images side by side, col
 *     [K, nb*P], one multithreaded GEMM per chunk and group; y / dy pass
 *     through obuf [cog, nb*P] when nb > 1; chunks add into dW in order.
 * db is a double sum per channel. Workspace is allocated with the plan.
 *
 * Determinism: every output (a plane, a row of col, a partial of dW) is
 * summed by one thread in a fixed order; BLIS does not split the k
 * dimension. No atomics. Results depend on the thread count only through
 * dW's partials.
 * Left out: a Winograd / FFT path (oneDNN's job), int64 BLAS dimensions. */
#define _POSIX_C_SOURCE 200809L
#include "nn/blas.h"
#include "nn/conv_impl.h"

#include <limits.h>
#include <omp.h>
#include <string.h>

#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define OCTAV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define OCTAV_CLONES
#endif

/* Columns of a chunk's im2col matrix the chunk size aims at. */
#define CHUNK_COLS 3136
/* At most this many floats in col (a chunk never goes below one image). */
#define CHUNK_MAX_COL_FLOATS ((int64_t)1 << 22)

typedef struct {
    int per_image;       /* the per-image mode (else chunks) */
    int threads_made;    /* per-image: workspace slices */
    int64_t nb;          /* chunks: images per chunk */
    float *col;          /* chunks: [K, nb*P]; per image: [threads][K, P] */
    float *obuf;         /* chunks: [cog, nb*P], nb > 1 only */
    float *pdw;          /* per image: [threads][c_out, K] partial dw */
    int *pused;          /* per image: [threads] thread had images */
    conv_dw_plan *dwp;   /* depthwise: conv_dw.c's plan */
    float *ws;           /* depthwise: its workspace, ws_threads slices */
    int ws_threads;
    int depthwise;       /* groups == c_in: the plane kernels */
    int pointwise;       /* 1x1, stride 1, no padding */
} gemm_state;

static int64_t chunk_cols = CHUNK_COLS;
static int gemm_mode; /* 0 the rule in gemm_create, 1 chunks, 2 per image */

void octav_conv_gemm_set_chunk_cols(int64_t cols) { chunk_cols = cols > 0 ? cols : CHUNK_COLS; }
void octav_conv_gemm_set_mode(int mode) { gemm_mode = mode >= 0 && mode <= 2 ? mode : 0; }

/* Output positions o in [*lo, *hi) whose input index o*s - p + k is inside
 * [0, n_in), clipped to [0, n_out). */
static void valid_range(int64_t k, int s, int p, int64_t n_in, int64_t n_out,
                        int64_t *lo, int64_t *hi) {
    int64_t a = p - k, b = n_in - 1 + p - k;
    int64_t l = a > 0 ? (a + s - 1) / s : 0;
    int64_t h = b >= 0 ? b / s + 1 : 0;
    if (h > n_out) h = n_out;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

static double sum_row(const float *a, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i];
    return s;
}

/* ---- im2col / col2im ------------------------------------------------------------ */

/* Row k of one image's im2col matrix: row [P] from the group's input
 * planes xg [cig, H, W]. */
static void im2col_row(const octav_conv2d_desc *d, const float *xg, int64_t k, float *row) {
    const int64_t KK = d->kh * d->kw, ci = k / KK, ki = (k % KK) / d->kw, kj = k % d->kw;
    const int64_t H = d->h_in, W = d->w_in, HO = d->h_out, WO = d->w_out;
    const int sh = d->stride_h, sw = d->stride_w, ph = d->pad_h, pw = d->pad_w;
    const float *xp = xg + ci * H * W;
    int64_t lo, hi, off = kj - pw;
    valid_range(kj, sw, pw, W, WO, &lo, &hi);
    for (int64_t oh = 0; oh < HO; oh++) {
        float *o = row + oh * WO;
        int64_t ih = oh * sh - ph + ki;
        if (ih < 0 || ih >= H) {
            memset(o, 0, (size_t)WO * sizeof *o);
            continue;
        }
        const float *xr = xp + ih * W;
        for (int64_t ow = 0; ow < lo; ow++) o[ow] = 0.0f;
        if (sw == 1)
            memcpy(o + lo, xr + lo + off, (size_t)(hi - lo) * sizeof *o);
        else
            for (int64_t ow = lo; ow < hi; ow++) o[ow] = xr[ow * sw + off];
        for (int64_t ow = hi; ow < WO; ow++) o[ow] = 0.0f;
    }
}

/* col [K, nb*P] of images n0 .. n0+nb-1, group g (all threads). */
static void im2col(const octav_conv2d_desc *d, const float *x, int64_t n0, int64_t nb,
                   int64_t g, float *col) {
    const int64_t cig = d->c_in / d->groups, K = cig * d->kh * d->kw;
    const int64_t P = d->h_out * d->w_out, HW = d->h_in * d->w_in;
#pragma omp parallel for num_threads(octav_get_threads()) schedule(static)
    for (int64_t r = 0; r < nb * K; r++) {
        const int64_t i = r / K, k = r % K;
        im2col_row(d, x + ((n0 + i) * d->c_in + g * cig) * HW, k, col + k * nb * P + i * P);
    }
}

OCTAV_CLONES
static void col2im_plane(const octav_conv2d_desc *d, const float *col, int64_t ld,
                         float *dxp) {
    const int64_t H = d->h_in, W = d->w_in, HO = d->h_out, WO = d->w_out, KK = d->kh * d->kw;
    const int sh = d->stride_h, sw = d->stride_w, ph = d->pad_h, pw = d->pad_w;
    memset(dxp, 0, (size_t)(H * W) * sizeof *dxp);
    for (int64_t k = 0; k < KK; k++) {
        const int64_t ki = k / d->kw, kj = k % d->kw;
        const float *row = col + k * ld;
        int64_t lo, hi, off = kj - pw;
        valid_range(kj, sw, pw, W, WO, &lo, &hi);
        for (int64_t oh = 0; oh < HO; oh++) {
            int64_t ih = oh * sh - ph + ki;
            if (ih < 0 || ih >= H) continue;
            float *dxr = dxp + ih * W;
            const float *o = row + oh * WO;
            if (sw == 1) {
#pragma omp simd
                for (int64_t ow = lo; ow < hi; ow++) dxr[ow + off] += o[ow];
            } else {
#pragma omp simd
                for (int64_t ow = lo; ow < hi; ow++) dxr[ow * sw + off] += o[ow];
            }
        }
    }
}

/* dx planes of images n0 .. n0+nb-1, group g, from dcol [K, nb*P]. */
static void col2im(const octav_conv2d_desc *d, const float *col, int64_t n0, int64_t nb,
                   int64_t g, float *dx) {
    const int64_t cig = d->c_in / d->groups, KK = d->kh * d->kw;
    const int64_t P = d->h_out * d->w_out, HW = d->h_in * d->w_in;
#pragma omp parallel for num_threads(octav_get_threads()) schedule(static)
    for (int64_t r = 0; r < nb * cig; r++) {
        const int64_t i = r / cig, ci = r % cig;
        col2im_plane(d, col + ci * KK * nb * P + i * P, nb * P,
                     dx + ((n0 + i) * d->c_in + g * cig + ci) * HW);
    }
}

/* obuf [cog, nb*P] <-> the chunk's rows of y / dy [n, c_out, P], group g. */
static void gather_rows(const octav_conv2d_desc *d, const float *y, int64_t n0, int64_t nb,
                        int64_t g, float *obuf) {
    const int64_t cog = d->c_out / d->groups, P = d->h_out * d->w_out;
#pragma omp parallel for num_threads(octav_get_threads()) schedule(static)
    for (int64_t r = 0; r < nb * cog; r++) {
        const int64_t i = r / cog, co = r % cog;
        memcpy(obuf + co * nb * P + i * P, y + ((n0 + i) * d->c_out + g * cog + co) * P,
               (size_t)P * sizeof *obuf);
    }
}

static void scatter_rows_bias(const octav_conv2d_desc *d, const float *obuf, const float *b,
                              int64_t n0, int64_t nb, int64_t g, float *y) {
    const int64_t cog = d->c_out / d->groups, P = d->h_out * d->w_out;
#pragma omp parallel for num_threads(octav_get_threads()) schedule(static)
    for (int64_t r = 0; r < nb * cog; r++) {
        const int64_t i = r / cog, co = r % cog;
        const float *src = obuf + co * nb * P + i * P;
        float *dst = y + ((n0 + i) * d->c_out + g * cog + co) * P;
        const float bv = b ? b[g * cog + co] : 0.0f;
        if (b)
            for (int64_t p = 0; p < P; p++) dst[p] = src[p] + bv;
        else
            memcpy(dst, src, (size_t)P * sizeof *dst);
    }
}

/* ---- the backend ---------------------------------------------------------------- */

static octav_status gemm_create(octav_conv2d *c) {
    const octav_conv2d_desc *d = &c->d;
    gemm_state *s = octav_calloc(1, sizeof *s);
    if (!s) return octav_set_error(OCTAV_ENOMEM, "conv2d gemm: out of memory for the plan");
    c->impl = s;
    const int64_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    const int64_t K = cig * d->kh * d->kw, P = d->h_out * d->w_out;
    s->depthwise = d->groups > 1 && cig == 1;
    s->pointwise = d->kh == 1 && d->kw == 1 && d->stride_h == 1 && d->stride_w == 1 &&
                   d->pad_h == 0 && d->pad_w == 0;
    if (s->depthwise) {
        octav_status st = octav_conv_dw_plan_make(d, &s->dwp);
        if (st != OCTAV_OK) return st;
        int nt = octav_get_threads();
        s->ws_threads = nt > 0 ? nt : 1;
        s->ws = octav_calloc((size_t)(s->ws_threads * octav_conv_dw_workspace(s->dwp)),
                             sizeof(float));
        if (!s->ws)
            return octav_set_error(OCTAV_ENOMEM, "conv2d gemm: out of memory for the workspace");
        return OCTAV_OK;
    }
    if (K > INT_MAX || cog > INT_MAX || P > INT_MAX)
        return octav_set_error(OCTAV_EUNSUPPORTED,
                               "conv2d gemm: a GEMM dimension exceeds the BLAS's int");
    int nt = octav_get_threads();
    s->threads_made = nt > 0 ? nt : 1;
    s->per_image = gemm_mode == 2 || (gemm_mode == 0 && d->n >= s->threads_made);
    if (s->per_image) {
        if (!s->pointwise) s->col = octav_malloc((size_t)(s->threads_made * K * P) * sizeof(float));
        s->pdw = octav_malloc((size_t)(s->threads_made * d->c_out * K) * sizeof(float));
        s->pused = octav_calloc((size_t)s->threads_made, sizeof(int));
        if ((!s->pointwise && !s->col) || !s->pdw || !s->pused)
            return octav_set_error(OCTAV_ENOMEM, "conv2d gemm: out of memory for the workspace");
        return OCTAV_OK;
    }
    int64_t nb = (chunk_cols + P - 1) / P;
    if (nb > d->n) nb = d->n;
    while (nb > 1 && K * nb * P > CHUNK_MAX_COL_FLOATS) nb--;
    if (nb < 1) nb = 1;
    if (nb * P > INT_MAX)
        return octav_set_error(OCTAV_EUNSUPPORTED,
                               "conv2d gemm: a GEMM dimension exceeds the BLAS's int");
    s->nb = nb;
    s->col = octav_malloc((size_t)(K * nb * P) * sizeof(float));
    if (nb > 1) s->obuf = octav_malloc((size_t)(cog * nb * P) * sizeof(float));
    if (!s->col || (nb > 1 && !s->obuf))
        return octav_set_error(OCTAV_ENOMEM, "conv2d gemm: out of memory for the workspace");
    return OCTAV_OK;
}

static void gemm_destroy(octav_conv2d *c) {
    gemm_state *s = c->impl;
    if (!s) return;
    octav_free(s->col);
    octav_free(s->obuf);
    octav_free(s->pdw);
    octav_free(s->pused);
    octav_conv_dw_plan_free(s->dwp);
    octav_free(s->ws);
    octav_free(s);
    c->impl = NULL;
}

static int team(const gemm_state *s) {
    int nt = octav_get_threads();
    return nt < 1 ? 1 : nt > s->threads_made ? s->threads_made : nt;
}

/* Per-image mode: each thread takes whole images (a static share) and calls
 * a single-threaded sgemm per image and group: BLIS, inside the parallel
 * region, gets one thread (nested parallelism is off by default). */
static void forward_per_image(const octav_conv2d_desc *d, gemm_state *s, const float *x,
                              const float *w, const float *b, float *y) {
    const int64_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    const int64_t K = cig * d->kh * d->kw, P = d->h_out * d->w_out, HW = d->h_in * d->w_in;
#pragma omp parallel num_threads(team(s))
    {
        float *col = s->col ? s->col + (int64_t)omp_get_thread_num() * K * P : NULL;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < d->n; n++)
            for (int64_t g = 0; g < d->groups; g++) {
                const float *xg = x + (n * d->c_in + g * cig) * HW, *bm = xg;
                if (!s->pointwise) {
                    for (int64_t k = 0; k < K; k++) im2col_row(d, xg, k, col + k * P);
                    bm = col;
                }
                float *cm = y + (n * d->c_out + g * cog) * P;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cog, (int)P, (int)K,
                            1.0f, w + g * cog * K, (int)K, bm, (int)P, 0.0f, cm, (int)P);
                if (b)
                    for (int64_t co = 0; co < cog; co++) {
                        const float bv = b[g * cog + co];
                        float *r = cm + co * P;
                        for (int64_t p = 0; p < P; p++) r[p] += bv;
                    }
            }
    }
}

/* dw is the sum, in thread order, of each thread's partial over its images. */
static void backward_per_image(const octav_conv2d_desc *d, gemm_state *s, const float *x,
                               const float *w, const float *dy, float *dx, float *dw) {
    const int64_t cig = d->c_in / d->groups, cog = d->c_out / d->groups, KK = d->kh * d->kw;
    const int64_t K = cig * KK, P = d->h_out * d->w_out, HW = d->h_in * d->w_in;
    const int nt = team(s);
#pragma omp parallel num_threads(nt)
    {
        const int tid = omp_get_thread_num();
        float *col = s->col ? s->col + (int64_t)tid * K * P : NULL;
        float *pdw = s->pdw + (int64_t)tid * d->c_out * K;
        int first = 1;
#pragma omp for schedule(static)
        for (int64_t n = 0; n < d->n; n++) {
            for (int64_t g = 0; g < d->groups; g++) {
                const float *dyg = dy + (n * d->c_out + g * cog) * P;
                const float *xg = dw ? x + (n * d->c_in + g * cig) * HW : NULL;
                if (dw) {
                    const float *bm = xg;
                    if (!s->pointwise) {
                        for (int64_t k = 0; k < K; k++) im2col_row(d, xg, k, col + k * P);
                        bm = col;
                    }
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)cog, (int)K, (int)P,
                                1.0f, dyg, (int)P, bm, (int)P, first ? 0.0f : 1.0f,
                                pdw + g * cog * K, (int)K);
                }
                if (dx) {
                    float *dxg = dx + (n * d->c_in + g * cig) * HW;
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)P, (int)cog,
                                1.0f, w + g * cog * K, (int)K, dyg, (int)P, 0.0f,
                                s->pointwise ? dxg : col, (int)P);
                    if (!s->pointwise)
                        for (int64_t ci = 0; ci < cig; ci++)
                            col2im_plane(d, col + ci * KK * P, P, dxg + ci * HW);
                }
            }
            first = 0;
        }
        s->pused[tid] = !first;
    }
    if (!dw) return;
    const int64_t nw = d->c_out * K;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t i = 0; i < nw; i++) {
        float t = 0.0f;
        for (int u = 0; u < nt; u++)
            if (s->pused[u]) t += s->pdw[(int64_t)u * nw + i];
        dw[i] = t;
    }
}

static octav_status gemm_forward(octav_conv2d *c, const float *x, const float *w,
                                 const float *b, float *y) {
    const octav_conv2d_desc *d = &c->d;
    gemm_state *s = c->impl;
    if (s->depthwise) {
        octav_conv_dw_forward(s->dwp, d, x, w, b, y, s->ws, s->ws_threads);
        return OCTAV_OK;
    }
    if (s->per_image) {
        forward_per_image(d, s, x, w, b, y);
        return OCTAV_OK;
    }
    const int64_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    const int64_t K = cig * d->kh * d->kw, P = d->h_out * d->w_out, HW = d->h_in * d->w_in;
    for (int64_t n0 = 0; n0 < d->n; n0 += s->nb) {
        const int64_t nb = d->n - n0 < s->nb ? d->n - n0 : s->nb;
        for (int64_t g = 0; g < d->groups; g++) {
            const float *bm = s->col;
            if (s->pointwise && nb == 1) bm = x + (n0 * d->c_in + g * cig) * HW;
            else im2col(d, x, n0, nb, g, s->col);
            float *cm = nb == 1 ? y + (n0 * d->c_out + g * cog) * P : s->obuf;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)cog, (int)(nb * P),
                        (int)K, 1.0f, w + g * cog * K, (int)K, bm, (int)(nb * P), 0.0f, cm,
                        (int)(nb * P));
            if (nb > 1) {
                scatter_rows_bias(d, s->obuf, b, n0, nb, g, y);
            } else if (b) {
                for (int64_t co = 0; co < cog; co++) {
                    const float bv = b[g * cog + co];
                    float *r = cm + co * P;
                    for (int64_t p = 0; p < P; p++) r[p] += bv;
                }
            }
        }
    }
    return OCTAV_OK;
}

static void bias_grad(const octav_conv2d_desc *d, const float *dy, float *db) {
    const int64_t P = d->h_out * d->w_out;
#pragma omp parallel for num_threads(octav_get_threads()) schedule(static)
    for (int64_t co = 0; co < d->c_out; co++) {
        double t = 0;
        for (int64_t n = 0; n < d->n; n++) t += sum_row(dy + (n * d->c_out + co) * P, P);
        db[co] = (float)t;
    }
}

static octav_status gemm_backward(octav_conv2d *c, const float *x, const float *w,
                                  const float *dy, float *dx, float *dw, float *db) {
    const octav_conv2d_desc *d = &c->d;
    gemm_state *s = c->impl;
    if (s->depthwise) {
        octav_conv_dw_backward(s->dwp, d, x, w, dy, dx, dw, db, s->ws, s->ws_threads);
        return OCTAV_OK;
    }
    const int64_t cig = d->c_in / d->groups, cog = d->c_out / d->groups;
    const int64_t K = cig * d->kh * d->kw, P = d->h_out * d->w_out, HW = d->h_in * d->w_in;
    if (db) bias_grad(d, dy, db);
    if (!dx && !dw) return OCTAV_OK;
    if (s->per_image) {
        backward_per_image(d, s, x, w, dy, dx, dw);
        return OCTAV_OK;
    }
    for (int64_t n0 = 0; n0 < d->n; n0 += s->nb) {
        const int64_t nb = d->n - n0 < s->nb ? d->n - n0 : s->nb;
        const int ld = (int)(nb * P);
        for (int64_t g = 0; g < d->groups; g++) {
            const float *dm = dy + (n0 * d->c_out + g * cog) * P;
            if (nb > 1) {
                gather_rows(d, dy, n0, nb, g, s->obuf);
                dm = s->obuf;
            }
            const float *wg = w ? w + g * cog * K : NULL;
            if (dw) {
                const float *bm = s->col;
                if (s->pointwise && nb == 1) bm = x + (n0 * d->c_in + g * cig) * HW;
                else im2col(d, x, n0, nb, g, s->col);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)cog, (int)K, ld, 1.0f,
                            dm, ld, bm, ld, n0 == 0 ? 0.0f : 1.0f, dw + g * cog * K, (int)K);
            }
            if (dx) {
                if (s->pointwise && nb == 1) {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, ld, (int)cog,
                                1.0f, wg, (int)K, dm, ld, 0.0f,
                                dx + (n0 * d->c_in + g * cig) * HW, ld);
                } else {
                    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, ld, (int)cog,
                                1.0f, wg, (int)K, dm, ld, 0.0f, s->col, ld);
                    col2im(d, s->col, n0, nb, g, dx);
                }
            }
        }
    }
    return OCTAV_OK;
}

const conv_backend octav_conv_gemm_backend = {
    .name = "gemm",
    .create = gemm_create,
    .destroy = gemm_destroy,
    .forward = gemm_forward,
    .backward = gemm_backward,
};
