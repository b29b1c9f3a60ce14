/* conv_dw.c -- direct depthwise convolution on NCHW planes (one input
 * channel per group: groups == c_in, c_out a multiple of it), used by the
 * GEMM backend, whose GEMMs would have a single row here.
 *
 * Every plane is first copied into stride phases: for strides (sh, sw) the
 * zero-padded input plane xpad [H + 2 ph, W + 2 pw] is split into sh*sw
 * planes phase[a][b][r][c] = xpad[sh r + a][sw c + b], each [Hq, Wq] with
 * pitch Wq (for stride 1 this is just the padded plane). Tap (i, j) then
 * reads phase[i % sh][j % sw] shifted by (i / sh, j / sw), so that an
 * output plane, laid out with pitch Wq (columns >= w_out are scratch), is
 *     out[t] = b + sum_k w_k * phase_k[t + off_k],  t = oh * Wq + ow,
 * one long vectorised loop per tap block instead of short rows.
 *   forward         the loop above, then the w_out valid columns of each row
 *   backward data   the same on the output side: dx's phases [Hq, Wd] are
 *                   sums over the taps of that phase of w * dy (zero-padded
 *                   by (kh-1)/sh rows and (kw-1)/sw columns, pitch Wd)
 *   backward wts    dw_k = sum_t dy[t] * phase_k[t + off_k] with dy in the
 *                   pitch-Wq layout (zeros in the scratch columns), in 16
 *                   float lanes per plane, added per plane into 16 double
 *                   lanes, which are summed at the end.
 * Tap offsets are fixed per plan (dw_plan). Sums run in a fixed order: the
 * results do not depend on the thread count or the instruction set. Each
 * thread has its own slice of the workspace.
 * Left out: dilation; the phases are rebuilt for every output channel of
 * a group (multiplier > 1 is rare). */
#include "nn/conv_impl.h"

#include <omp.h>
#include <string.h>

/* The per-plane functions are compiled for AVX-512, AVX2 and plain x86-64
 * (picked at load time); the helpers are inlined into each. */
#if OCTAV_HAVE_X86_SIMD && defined(__GNUC__) && !defined(__clang__)
#define OCTAV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define INLINE static inline __attribute__((always_inline))
#else
#define OCTAV_CLONES
#define INLINE static inline
#endif

#define LANES 16  /* backward-weights partial sums per tap */
#define BLOCK 32  /* outputs kept in registers across the taps */

struct conv_dw_plan {
    int64_t H, W, HO, WO, KH, KW, KK;
    int sh, sw, ph, pw, nph;      /* nph = sh * sw phases */
    int64_t Hq, Wq, psz;          /* phase rows, pitch, phase size Hq * Wq */
    int64_t Ph, Pw, Wd, dsz;      /* dy padding (rows, cols), pitch, dxq phase size:
                                     Hq * Wd rounded up to BLOCK */
    int64_t lenfw;                /* HO * Wq rounded up to BLOCK */
    int64_t slack;
    int64_t lenf;                 /* HO * Wq rounded up to LANES */
    /* offsets within the per-thread workspace (floats) */
    int64_t o_dacc, o_phase, o_flat, o_dyf, o_dyq, o_dxq, o_wk, o_pad, o_row, per_thread;
    int cols2;                    /* sw == 2: column phases by vector shuffles */
    int64_t Wp2;                  /* cols2: padded plane pitch 2 Wq */
    int64_t *off_f;               /* [KK] tap k = i*KW + j: phase offset + shift */
    int64_t *off_d, *widx_d;      /* [KK] backward data taps grouped by phase */
    int64_t *start_d;             /* [nph + 1] */
};

void octav_conv_dw_plan_free(conv_dw_plan *p) {
    if (!p) return;
    octav_free(p->off_f);
    octav_free(p->off_d);
    octav_free(p->widx_d);
    octav_free(p->start_d);
    octav_free(p);
}

octav_status octav_conv_dw_plan_make(const octav_conv2d_desc *d, conv_dw_plan **out) {
    conv_dw_plan *p = octav_calloc(1, sizeof *p);
    *out = p;
    if (!p) return octav_set_error(OCTAV_ENOMEM, "conv2d depthwise: out of memory for the plan");
    p->H = d->h_in; p->W = d->w_in; p->HO = d->h_out; p->WO = d->w_out;
    p->KH = d->kh; p->KW = d->kw; p->KK = d->kh * d->kw;
    p->sh = d->stride_h; p->sw = d->stride_w; p->ph = d->pad_h; p->pw = d->pad_w;
    p->nph = p->sh * p->sw;
    int64_t Hp = p->H + 2 * p->ph, Wp = p->W + 2 * p->pw;
    p->Hq = (Hp + p->sh - 1) / p->sh;
    p->Wq = (Wp + p->sw - 1) / p->sw;
    /* A phase is followed by a 16-float gap (whole-vector stores of its last
     * row land there with cols2). */
    p->psz = p->Hq * p->Wq + LANES;
    p->cols2 = p->sw == 2;
    p->Wp2 = 2 * p->Wq;
    p->Ph = (p->KH - 1) / p->sh;
    p->Pw = (p->KW - 1) / p->sw;
    p->Wd = p->Wq + p->Pw;
    p->dsz = (p->Hq * p->Wd + BLOCK - 1) / BLOCK * BLOCK;
    /* Flat loops run over whole blocks: they read up to BLOCK + (kw-1)/sw
     * floats past the last phase / dy row, which the slack (zeroed) holds. */
    p->slack = LANES + p->KW + BLOCK;
    p->lenf = (p->HO * p->Wq + LANES - 1) / LANES * LANES;
    p->lenfw = (p->HO * p->Wq + BLOCK - 1) / BLOCK * BLOCK;

    p->o_dacc = 0;                   /* (KK + 1) x LANES doubles: dw taps, then db */
    p->o_phase = p->o_dacc + 2 * (p->KK + 1) * LANES;
    p->o_flat = p->o_phase + p->nph * p->psz + p->slack;
    p->o_dyf = p->o_flat + p->lenfw + p->slack;
    p->o_dyq = p->o_dyf + p->lenf + p->slack;
    p->o_dxq = p->o_dyq + (p->Hq + p->Ph) * p->Wd + p->slack;
    p->o_wk = p->o_dxq + p->nph * p->dsz + p->slack;
    p->o_pad = p->o_wk + p->KK;
    p->o_row = p->o_pad + (p->cols2 ? p->sh * p->Hq * p->Wp2 + 2 * LANES : 0);
    p->per_thread = (p->o_row + (p->cols2 ? 2 * p->Wd + 4 * LANES : 0) + 15) / 16 * 16;
    p->off_f = octav_malloc((size_t)p->KK * sizeof *p->off_f);
    p->off_d = octav_malloc((size_t)p->KK * sizeof *p->off_d);
    p->widx_d = octav_malloc((size_t)p->KK * sizeof *p->widx_d);
    p->start_d = octav_malloc((size_t)(p->nph + 1) * sizeof *p->start_d);
    if (!p->off_f || !p->off_d || !p->widx_d || !p->start_d)
        return octav_set_error(OCTAV_ENOMEM, "conv2d depthwise: out of memory for the plan");
    for (int64_t i = 0; i < p->KH; i++)
        for (int64_t j = 0; j < p->KW; j++)
            p->off_f[i * p->KW + j] = ((i % p->sh) * p->sw + j % p->sw) * p->psz +
                                      (i / p->sh) * p->Wq + j / p->sw;
    int64_t k = 0;
    for (int a = 0; a < p->sh; a++)
        for (int b = 0; b < p->sw; b++) {
            p->start_d[a * p->sw + b] = k;
            for (int64_t i = a; i < p->KH; i += p->sh)
                for (int64_t j = b; j < p->KW; j += p->sw) {
                    p->widx_d[k] = i * p->KW + j;
                    p->off_d[k] = (p->Ph - i / p->sh) * p->Wd + (p->Pw - j / p->sw);
                    k++;
                }
        }
    p->start_d[p->nph] = k;
    return OCTAV_OK;
}

/* Floats per thread; the workspace must start zeroed (octav_calloc). */
int64_t octav_conv_dw_workspace(const conv_dw_plan *p) { return p->per_thread; }

/* ---- kernels ------------------------------------------------------------------ */

/* 16 float lanes (GCC / Clang vector extension): one AVX-512 register, two
 * AVX2 ones, four SSE ones; the same lane arithmetic in every clone. V(p)
 * is the 16 floats at p (any alignment). Vectors never cross a function
 * boundary (no ABI dependence on the clone's instruction set). */
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4), may_alias));
#define V(p) (*(v16u *)(void *)(p))
#define VC(p) (*(const v16u *)(const void *)(p))

/* Even / odd lanes of the 32 floats a:b, and their inverse (interleave). */
typedef int i16 __attribute__((vector_size(64)));
#if defined(__clang__)
#define EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
#define ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31)
#define ZIPLO(a, b) __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23)
#define ZIPHI(a, b) __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31)
#else
#define EVENS(a, b) __builtin_shuffle(a, b, (i16){0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30})
#define ODDS(a, b) __builtin_shuffle(a, b, (i16){1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31})
#define ZIPLO(a, b) __builtin_shuffle(a, b, (i16){0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23})
#define ZIPHI(a, b) __builtin_shuffle(a, b, (i16){8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31})
#endif

/* out[t] = (accumulate ? out[t] : init) + sum_k wk[k] * base[off[k] + t],
 * t < len (a multiple of BLOCK = 2 x 16). The sum of each element runs over
 * k in order. */
INLINE void taps(float *out, const float *base, const int64_t *off, const float *wk,
                 int64_t ntaps, float init, int accumulate, int64_t len) {
    const v16 vinit = {init, init, init, init, init, init, init, init,
                       init, init, init, init, init, init, init, init};
    for (int64_t t0 = 0; t0 < len; t0 += BLOCK) {
        v16 a0 = vinit, a1 = vinit;
        if (accumulate) {
            a0 = VC(out + t0);
            a1 = VC(out + t0 + 16);
        }
        for (int64_t k = 0; k < ntaps; k++) {
            const float *s = base + off[k] + t0;
            const float wv = wk[k];
            a0 += wv * VC(s);
            a1 += wv * VC(s + 16);
        }
        V(out + t0) = a0;
        V(out + t0 + 16) = a1;
    }
}

/* n floats (short rows: an inlined loop rather than a memcpy call). */
INLINE void copy_row(float *dst, const float *src, int64_t n) {
#pragma omp simd
    for (int64_t i = 0; i < n; i++) dst[i] = src[i];
}


/* dl[l] += a[l], l < LANES (double lanes: no float rounding across planes). */
INLINE void add_lanes(double *dl, const v16 *a) {
    float f[LANES];
    memcpy(f, a, sizeof f);
#pragma omp simd
    for (int l = 0; l < LANES; l++) dl[l] += (double)f[l];
}

/* dacc[k][l] += sum over t = l (mod LANES) of dyf[t] * base[off[k] + t],
 * t < len (a multiple of LANES), summed first in float lanes over the plane;
 * four taps at a time (four independent dependency chains). */
INLINE void tap_dots(const float *dyf, const float *base, const int64_t *off, int64_t ntaps,
                     int64_t len, double *dacc) {
    int64_t k = 0;
    for (; k + 4 <= ntaps; k += 4) {
        const float *s0 = base + off[k], *s1 = base + off[k + 1];
        const float *s2 = base + off[k + 2], *s3 = base + off[k + 3];
        v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        for (int64_t t = 0; t < len; t += LANES) {
            const v16 g = VC(dyf + t);
            a0 += g * VC(s0 + t);
            a1 += g * VC(s1 + t);
            a2 += g * VC(s2 + t);
            a3 += g * VC(s3 + t);
        }
        add_lanes(dacc + k * LANES, &a0);
        add_lanes(dacc + (k + 1) * LANES, &a1);
        add_lanes(dacc + (k + 2) * LANES, &a2);
        add_lanes(dacc + (k + 3) * LANES, &a3);
    }
    for (; k < ntaps; k++) {
        const float *s0 = base + off[k];
        v16 a0 = {0};
        for (int64_t t = 0; t < len; t += LANES) a0 += VC(dyf + t) * VC(s0 + t);
        add_lanes(dacc + k * LANES, &a0);
    }
}

INLINE void lane_sum(const float *dyf, int64_t len, double *dl) {
    v16 a = {0};
    for (int64_t t = 0; t < len; t += LANES) a += VC(dyf + t);
    add_lanes(dl, &a);
}

/* The phases of one input plane x [H, W]. Only the positions that hold
 * input values are written: the padding, the scratch columns and the slack
 * are zero from the workspace's allocation on (no region that holds zeros is
 * ever written with anything else). */
INLINE void build_phases_cols2(const conv_dw_plan *p, const float *x, float *ph, float *pad);

INLINE void build_phases(const conv_dw_plan *p, const float *x, float *ph, float *pad) {
    if (p->cols2) {
        build_phases_cols2(p, x, ph, pad);
        return;
    }
    for (int a = 0; a < p->sh; a++)
        for (int b = 0; b < p->sw; b++) {
            float *q = ph + (a * p->sw + b) * p->psz;
            /* columns c with 0 <= sw c + b - pw < W */
            int64_t s0 = p->pw - b, s1 = p->W - 1 + p->pw - b;
            int64_t lo = s0 > 0 ? (s0 + p->sw - 1) / p->sw : 0;
            int64_t hi = s1 >= 0 ? s1 / p->sw + 1 : 0;
            if (hi > p->Wq) hi = p->Wq;
            if (lo >= hi) continue;
            for (int64_t r = 0; r < p->Hq; r++) {
                int64_t ih = p->sh * r + a - p->ph;
                if (ih < 0 || ih >= p->H) continue;
                float *row = q + r * p->Wq;
                const float *xr = x + ih * p->W + b - p->pw;
                if (p->sw == 1) {
                    copy_row(row + lo, xr + lo, hi - lo);
                } else if (p->sw == 2) { /* a constant stride vectorises */
#pragma omp simd
                    for (int64_t c = lo; c < hi; c++) row[c] = xr[2 * c];
                } else {
                    for (int64_t c = lo; c < hi; c++) row[c] = xr[p->sw * c];
                }
            }
        }
}

/* sw == 2: x goes into the padded plane pad [sh Hq, Wp2] (input positions
 * only: the rest stays zero), whose rows are split into the even and odd
 * column phases 16 outputs at a time. Whole rows of the phases are written
 * (the stores of a row's last vector run into the next row, written after
 * it, or into the phase's gap). */
INLINE void build_phases_cols2(const conv_dw_plan *p, const float *x, float *ph, float *pad) {
    for (int64_t ih = 0; ih < p->H; ih++)
        copy_row(pad + (ih + p->ph) * p->Wp2 + p->pw, x + ih * p->W, p->W);
    for (int a = 0; a < p->sh; a++) {
        float *q0 = ph + (a * 2) * p->psz, *q1 = ph + (a * 2 + 1) * p->psz;
        for (int64_t r = 0; r < p->Hq; r++) {
            const float *src = pad + (p->sh * r + a) * p->Wp2;
            for (int64_t c = 0; c < p->Wq; c += LANES) {
                const v16 lo = VC(src + 2 * c), hi = VC(src + 2 * c + LANES);
                V(q0 + r * p->Wq + c) = EVENS(lo, hi);
                V(q1 + r * p->Wq + c) = ODDS(lo, hi);
            }
        }
    }
}

OCTAV_CLONES
static void plane_forward(const conv_dw_plan *p, const float *x, const float *w, float bias,
                          float *y, float *ws) {
    float *ph = ws + p->o_phase, *flat = ws + p->o_flat;
    build_phases(p, x, ph, ws + p->o_pad);
    taps(flat, ph, p->off_f, w, p->KK, bias, 0, p->lenfw);
    for (int64_t oh = 0; oh < p->HO; oh++) copy_row(y + oh * p->WO, flat + oh * p->Wq, p->WO);
}

/* dy [HO, WO] into dyq [(Hq + Ph), Wd] at offset (Ph, Pw); the rest of
 * dyq stays zero (see build_phases). */
INLINE void build_dyq(const conv_dw_plan *p, const float *dy, float *dyq) {
    for (int64_t oh = 0; oh < p->HO; oh++)
        copy_row(dyq + (oh + p->Ph) * p->Wd + p->Pw, dy + oh * p->WO, p->WO);
}

/* dx [H, W] of one input plane from the dy planes of its cog output
 * channels (dy0, stride P apart) and their weights (w0, KK apart). */
OCTAV_CLONES
static void plane_backward_data(const conv_dw_plan *p, const float *dy0, const float *w0,
                                int64_t cog, float *dx, float *ws) {
    float *dyq = ws + p->o_dyq, *dxq = ws + p->o_dxq, *wk = ws + p->o_wk;
    const int64_t P = p->HO * p->WO;
    for (int64_t co = 0; co < cog; co++) {
        build_dyq(p, dy0 + co * P, dyq);
        for (int64_t k = 0; k < p->KK; k++) wk[k] = w0[co * p->KK + p->widx_d[k]];
        for (int ph = 0; ph < p->nph; ph++) {
            int64_t k0 = p->start_d[ph], nk = p->start_d[ph + 1] - k0;
            taps(dxq + ph * p->dsz, dyq, p->off_d + k0, wk + k0, nk, 0.0f, co > 0, p->dsz);
        }
    }
    for (int64_t ih = 0; ih < p->H; ih++) {
        const int64_t a = (ih + p->ph) % p->sh, u = (ih + p->ph) / p->sh;
        float *dxr = dx + ih * p->W;
        if (p->sw == 1) {
            copy_row(dxr, dxq + a * p->dsz + u * p->Wd + p->pw, p->W);
            continue;
        }
        if (p->cols2) { /* interleave the two column phases, then crop */
            const float *e = dxq + (a * 2) * p->dsz + u * p->Wd, *o = e + p->dsz;
            float *row = ws + p->o_row;
            for (int64_t v = 0; v < p->Wd; v += LANES) {
                const v16 ev = VC(e + v), ov = VC(o + v);
                V(row + 2 * v) = ZIPLO(ev, ov);
                V(row + 2 * v + LANES) = ZIPHI(ev, ov);
            }
            copy_row(dxr, row + p->pw, p->W);
            continue;
        }
        /* columns iw = iw0 + sw k come from phase b at v = v0 + k */
        for (int b = 0; b < p->sw; b++) {
            const int64_t iw0 = ((b - p->pw) % p->sw + p->sw) % p->sw;
            const float *src = dxq + (a * p->sw + b) * p->dsz + u * p->Wd + (iw0 + p->pw) / p->sw;
            const int64_t nk = (p->W - iw0 + p->sw - 1) / p->sw;
            if (p->sw == 2) {
#pragma omp simd
                for (int64_t k = 0; k < nk; k++) dxr[iw0 + 2 * k] = src[k];
            } else {
                for (int64_t k = 0; k < nk; k++) dxr[iw0 + p->sw * k] = src[k];
            }
        }
    }
}

/* Adds one plane's dw (dacc [KK][LANES]) and db (dbacc [LANES]) partial sums. */
OCTAV_CLONES
static void plane_backward_weights(const conv_dw_plan *p, const float *x, const float *dy,
                                   double *dacc, double *dbacc, float *ws) {
    float *ph = ws + p->o_phase, *dyf = ws + p->o_dyf;
    /* scratch columns and the tail stay zero */
    for (int64_t oh = 0; oh < p->HO; oh++) copy_row(dyf + oh * p->Wq, dy + oh * p->WO, p->WO);
    if (dbacc) lane_sum(dyf, p->lenf, dbacc);
    if (!dacc) return;
    build_phases(p, x, ph, ws + p->o_pad);
    tap_dots(dyf, ph, p->off_f, p->KK, p->lenf, dacc);
}

/* ---- whole tensors ---------------------------------------------------------------- */

/* Asks for the next plane a thread will read (n floats) while it works on
 * this one: planes are small, and in backward weights 2 planes of a
 * channel are a whole image apart, too far for the hardware prefetcher. */
static inline void prefetch(const float *p, int64_t n) {
#if defined(__GNUC__)
    for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i);
#else
    (void)p;
    (void)n;
#endif
}

static int team(const conv_dw_plan *p, int threads_made, int64_t work) {
    (void)p;
    int nt = octav_get_threads();
    if (nt > threads_made) nt = threads_made;
    if (nt < 1) nt = 1;
    return work >= 2 * nt ? nt : 1;
}

void octav_conv_dw_forward(const conv_dw_plan *p, const octav_conv2d_desc *d, const float *x,
                           const float *w, const float *b, float *y, float *ws, int threads_made) {
    const int64_t C = d->c_out, cog = d->c_out / d->groups, HW = p->H * p->W;
    const int64_t P = p->HO * p->WO;
    const int nt = team(p, threads_made, d->n * C);
#pragma omp parallel num_threads(nt)
    {
        float *mine = ws + (int64_t)omp_get_thread_num() * p->per_thread;
#pragma omp for schedule(static)
        for (int64_t r = 0; r < d->n * C; r++) {
            const int64_t n = r / C, co = r % C;
            if (r + 1 < d->n * C)
                prefetch(x + ((r + 1) / C * d->c_in + (r + 1) % C / cog) * HW, HW);
            plane_forward(p, x + (n * d->c_in + co / cog) * HW, w + co * p->KK,
                          b ? b[co] : 0.0f, y + r * P, mine);
        }
    }
}

void octav_conv_dw_backward(const conv_dw_plan *p, const octav_conv2d_desc *d, const float *x,
                            const float *w, const float *dy, float *dx, float *dw, float *db,
                            float *ws, int threads_made) {
    const int64_t C = d->c_out, cog = d->c_out / d->groups, HW = p->H * p->W;
    const int64_t P = p->HO * p->WO;
    if (dx) {
        const int nt = team(p, threads_made, d->n * d->c_in);
#pragma omp parallel num_threads(nt)
        {
            float *mine = ws + (int64_t)omp_get_thread_num() * p->per_thread;
#pragma omp for schedule(static)
            for (int64_t r = 0; r < d->n * d->c_in; r++) {
                const int64_t n = r / d->c_in, ci = r % d->c_in;
                if (r + 1 < d->n * d->c_in) prefetch(dy + (r + 1) * cog * P, cog * P);
                plane_backward_data(p, dy + (n * C + ci * cog) * P, w + ci * cog * p->KK, cog,
                                    dx + r * HW, mine);
            }
        }
    }
    if (!dw && !db) return;
    const int nt = team(p, threads_made, C);
#pragma omp parallel num_threads(nt)
    {
        float *mine = ws + (int64_t)omp_get_thread_num() * p->per_thread;
        double *acc = (double *)(void *)(mine + p->o_dacc), *dbacc = acc + p->KK * LANES;
#pragma omp for schedule(static)
        for (int64_t co = 0; co < C; co++) {
            for (int64_t k = 0; k < (p->KK + 1) * LANES; k++) acc[k] = 0;
            for (int64_t n = 0; n < d->n; n++) {
                if (n + 1 < d->n) {
                    prefetch(dy + ((n + 1) * C + co) * P, P);
                    if (x && dw) prefetch(x + ((n + 1) * d->c_in + co / cog) * HW, HW);
                }
                plane_backward_weights(p, x ? x + (n * d->c_in + co / cog) * HW : NULL,
                                       dy + (n * C + co) * P, dw ? acc : NULL,
                                       db ? dbacc : NULL, mine);
            }
            for (int64_t k = 0; k <= p->KK; k++) {
                double t = 0;
                for (int l = 0; l < LANES; l++) t += acc[k * LANES + l];
                if (k < p->KK && dw) dw[co * p->KK + k] = (float)t;
                if (k == p->KK && db) db[co] = (float)t;
            }
        }
    }
}
