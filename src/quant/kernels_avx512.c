/* kernels_avx512.c -- AVX-512 versions of the OCTAV solver kernels (see
 * internal.h for their contracts; kernels.c holds the scalar reference).
 * Main loops take 32 floats per iteration with independent accumulators;
 * sums are in double lanes, counts in int32 lanes (inputs are split so no
 * lane can overflow), and compaction keeps element order. */
#include "internal.h"
#include "kernels_lanes.h"

#include <immintrin.h>

static inline __m512 mag16(__m512 v, int is_unsigned) {
    /* max(0, v) keeps a NaN (the second operand is returned on NaN) */
    if (is_unsigned == OCTAV_MAGS) return v;
    return is_unsigned ? _mm512_max_ps(_mm512_setzero_ps(), v) : _mm512_abs_ps(v);
}

/* The passes' bodies are compiled once per magnitude kind (a constant), so
 * the loops carry no test of it and skip the transform on compact copies. */
#define SPECIALISE(call_with_kind) \
    (is_unsigned == OCTAV_MAGS ? call_with_kind(OCTAV_MAGS) : is_unsigned ? call_with_kind(1) : call_with_kind(0))

static inline __mmask16 tail_mask(int64_t r) { return (__mmask16)((1u << r) - 1u); }
static inline __mmask16 load_mask(int64_t i, int64_t n) { return n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i); }

static inline __m512d lo8(__m512 m) { return _mm512_cvtps_pd(_mm512_castps512_ps256(m)); }
static inline __m512d hi8(__m512 m) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(m, 1)); }

static inline int64_t count_lanes(__m512i c) { return (int64_t)_mm512_reduce_add_epi32(c); }

#define KCHUNK ((int64_t)1 << 30)

/* Software prefetch 4 KB ahead: the passes do enough work per cache line
 * that the out-of-order window alone keeps too few lines in flight (the
 * load stalls dominated the first pass before prefetching; 16.5 -> 12.5 ms
 * on 16M floats, one thread, with 1 KB). 4 KB rather than 1 KB since the
 * solver takes consecutive channels in batches (octav.c), so a pass's
 * prefetches past the end of its row fetch the next row it reads: the first
 * pass over rows of 4096 went from 1.3-1.5 to 1.1-1.25 read passes, one
 * thread, and the whole solve is in docs/BENCHMARKS.md. Prefetching past
 * the end of the data is harmless. */
#define PREFETCH_AHEAD 1024 /* floats */
/* always_inline and the builtin: with _mm_prefetch in a plain inline
 * function GCC 12 left no prefetch in above/above_compact once their bodies
 * were specialised (it judges such calls free of side effects and deletes
 * them; seen in the disassembly, and the per-tensor steps ran about 25%
 * slower). */
static inline __attribute__((always_inline)) void prefetch_line(const float *p) {
    __builtin_prefetch(p + PREFETCH_AHEAD, 0, 3);
}

/* COMPACTION STORES. On 16 full input lanes the compressed vector is
 * stored whole (no mask; the lanes past the kept ones are garbage that the
 * next store or the end of the copy covers): the output index k never
 * exceeds the input index i, so the store stays inside the n floats the
 * caller gave, and when the copy is made in place (out == x) it only
 * overwrites input that this iteration has already loaded. Tails use a
 * masked store. */

/* Stores the lanes of m selected by kk at p, packed: whole (see COMPACTION
 * STORES). */
static inline void store_kept(float *p, __mmask16 kk, __m512 m) { _mm512_storeu_ps(p, _mm512_maskz_compress_ps(kk, m)); }

/* Accumulators of one pass: sums of all / selected magnitudes and counts. */
typedef struct {
    __m512d s0, s1, s2, s3;
    __m512i c0, c1;
} acc_t;

static inline acc_t acc_zero(void) {
    acc_t a;
    a.s0 = a.s1 = a.s2 = a.s3 = _mm512_setzero_pd();
    a.c0 = a.c1 = _mm512_setzero_si512();
    return a;
}

static inline double acc_sum(const acc_t *a) {
    return _mm512_reduce_add_pd(_mm512_add_pd(_mm512_add_pd(a->s0, a->s1), _mm512_add_pd(a->s2, a->s3)));
}

/* Sum in double lanes straight from memory (no shuffles): the magnitudes
 * of 8 floats at p. */
static inline __m512d mag8_pd(const float *p, int is_unsigned) {
    __m512d d = _mm512_cvtps_pd(_mm256_loadu_ps(p));
    return is_unsigned ? _mm512_max_pd(_mm512_setzero_pd(), d) : _mm512_abs_pd(d);
}

static void stats_avx512(const float *x, int64_t n, int is_unsigned, octav_stats *out) {
    if (n > KCHUNK) {
        octav_stats a, b;
        stats_avx512(x, KCHUNK, is_unsigned, &a);
        stats_avx512(x + KCHUNK, n - KCHUNK, is_unsigned, &b);
        out->sum = a.sum + b.sum; out->nnz = a.nnz + b.nnz;
        out->maxv = 0.0f; out->nonfinite = a.nonfinite | b.nonfinite;
        return;
    }
    const __m512 zero = _mm512_setzero_ps();
    const __m512i absbits = _mm512_set1_epi32(0x7fffffff), minus1 = _mm512_set1_epi32(-1);
    acc_t a = acc_zero();
    __m512i b0 = _mm512_setzero_si512();
    int64_t i = 0;
    /* signed: a NaN/Inf makes the double sum of |x| non-finite; unsigned
     * data also tracks the largest |x| bit pattern (max(0, -inf) is 0) */
    for (; i + 32 <= n; i += 32) {
        prefetch_line(x + i);
        prefetch_line(x + i + 16);
        __m512 v0 = _mm512_loadu_ps(x + i), v1 = _mm512_loadu_ps(x + i + 16);
        if (is_unsigned) {
            b0 = _mm512_max_epu32(b0, _mm512_and_si512(_mm512_castps_si512(v0), absbits));
            b0 = _mm512_max_epu32(b0, _mm512_and_si512(_mm512_castps_si512(v1), absbits));
            a.c0 = _mm512_mask_sub_epi32(a.c0, _mm512_cmp_ps_mask(v0, zero, _CMP_GT_OQ), a.c0, minus1);
            a.c1 = _mm512_mask_sub_epi32(a.c1, _mm512_cmp_ps_mask(v1, zero, _CMP_GT_OQ), a.c1, minus1);
        } else {
            a.c0 = _mm512_mask_sub_epi32(a.c0, _mm512_cmp_ps_mask(v0, zero, _CMP_NEQ_OQ), a.c0, minus1);
            a.c1 = _mm512_mask_sub_epi32(a.c1, _mm512_cmp_ps_mask(v1, zero, _CMP_NEQ_OQ), a.c1, minus1);
        }
        a.s0 = _mm512_add_pd(a.s0, mag8_pd(x + i, is_unsigned));
        a.s1 = _mm512_add_pd(a.s1, mag8_pd(x + i + 8, is_unsigned));
        a.s2 = _mm512_add_pd(a.s2, mag8_pd(x + i + 16, is_unsigned));
        a.s3 = _mm512_add_pd(a.s3, mag8_pd(x + i + 24, is_unsigned));
    }
    for (; i < n; i += 16) {
        __mmask16 lm = load_mask(i, n);
        __m512 v = _mm512_maskz_loadu_ps(lm, x + i);
        b0 = _mm512_max_epu32(b0, _mm512_and_si512(_mm512_castps_si512(v), absbits));
        __m512 m = mag16(v, is_unsigned);
        a.c0 = _mm512_mask_sub_epi32(a.c0, _mm512_cmp_ps_mask(m, zero, _CMP_GT_OQ), a.c0, minus1);
        a.s0 = _mm512_add_pd(a.s0, lo8(m));
        a.s1 = _mm512_add_pd(a.s1, hi8(m));
    }
    out->sum = acc_sum(&a);
    out->nnz = count_lanes(a.c0) + count_lanes(a.c1);
    out->maxv = 0.0f;
    out->nonfinite = (uint32_t)_mm512_reduce_max_epu32(b0) >= 0x7f800000u || !isfinite(out->sum);
}

/* Counts the lanes of k and adds lo and hi to the sums of half h (0/1). */
static inline __attribute__((always_inline)) void acc_half(acc_t *a, __mmask16 k, __m512d lo, __m512d hi, int h) {
    const __m512i minus1 = _mm512_set1_epi32(-1);
    if (h) {
        a->c1 = _mm512_mask_sub_epi32(a->c1, k, a->c1, minus1);
        a->s2 = _mm512_add_pd(a->s2, lo);
        a->s3 = _mm512_add_pd(a->s3, hi);
    } else {
        a->c0 = _mm512_mask_sub_epi32(a->c0, k, a->c0, minus1);
        a->s0 = _mm512_add_pd(a->s0, lo);
        a->s1 = _mm512_add_pd(a->s1, hi);
    }
}

/* Adds the lanes of m selected by k to the sums and counts of half h. */
static inline __attribute__((always_inline)) void acc_selected(acc_t *a, __mmask16 k, __m512 m, int h) {
    const __m512 sel = _mm512_maskz_mov_ps(k, m);
    acc_half(a, k, lo8(sel), hi8(sel), h);
}

/* acc_selected() for 16 magnitudes m loaded from p: on a compact copy
 * (OCTAV_MAGS, memory holds the magnitudes) the conversions take the mask
 * themselves and the high half converts from memory (no shuffle, no
 * masked move). */
static inline __attribute__((always_inline)) void acc_selected_at(acc_t *a, __mmask16 k, __m512 m, const float *p,
                                                                  int kind, int h) {
    if (kind == OCTAV_MAGS)
        acc_half(a, k, _mm512_maskz_cvtps_pd((__mmask8)k, _mm512_castps512_ps256(m)),
                 _mm512_maskz_cvtps_pd((__mmask8)_kshiftri_mask16(k, 8), _mm256_loadu_ps(p + 8)), h);
    else
        acc_selected(a, k, m, h);
}

/* above() for one magnitude kind; returns 0 (SPECIALISE takes expressions). */
static inline __attribute__((always_inline)) int above_body(const float *x, int64_t n, int is_unsigned, double t,
                                                            double *sum, int64_t *cnt) {
    const __m512 tf = _mm512_set1_ps(float_floor_of(t));
    acc_t a = acc_zero();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        prefetch_line(x + i);
        prefetch_line(x + i + 16);
        __m512 m0 = mag16(_mm512_loadu_ps(x + i), is_unsigned), m1 = mag16(_mm512_loadu_ps(x + i + 16), is_unsigned);
        acc_selected_at(&a, _mm512_cmp_ps_mask(m0, tf, _CMP_GT_OQ), m0, x + i, is_unsigned, 0);
        acc_selected_at(&a, _mm512_cmp_ps_mask(m1, tf, _CMP_GT_OQ), m1, x + i + 16, is_unsigned, 1);
    }
    for (; i < n; i += 16) {
        __mmask16 lm = load_mask(i, n);
        __m512 m = mag16(_mm512_maskz_loadu_ps(lm, x + i), is_unsigned);
        acc_selected(&a, _mm512_mask_cmp_ps_mask(lm, m, tf, _CMP_GT_OQ), m, 0);
    }
    *sum = acc_sum(&a);
    *cnt = count_lanes(a.c0) + count_lanes(a.c1);
    return 0;
}

static void above_avx512(const float *x, int64_t n, int is_unsigned, double t, double *sum, int64_t *cnt) {
    if (n > KCHUNK) {
        double a, b;
        int64_t ca, cb;
        above_avx512(x, KCHUNK, is_unsigned, t, &a, &ca);
        above_avx512(x + KCHUNK, n - KCHUNK, is_unsigned, t, &b, &cb);
        *sum = a + b; *cnt = ca + cb;
        return;
    }
#define ABOVE_(kind) above_body(x, n, kind, t, sum, cnt)
    (void)SPECIALISE(ABOVE_);
#undef ABOVE_
}

static inline __attribute__((always_inline)) int64_t above_compact_body(const float *x, int64_t n, int is_unsigned,
                                                                        double t, double tc, double *sum,
                                                                        int64_t *cnt, float *out) {
    const __m512 tf = _mm512_set1_ps(float_floor_of(t)), cf = _mm512_set1_ps(float_floor_of(tc));
    acc_t a = acc_zero();
    int64_t i = 0, k = 0;
    for (; i + 32 <= n; i += 32) {
        prefetch_line(x + i);
        prefetch_line(x + i + 16);
        __m512 m0 = mag16(_mm512_loadu_ps(x + i), is_unsigned), m1 = mag16(_mm512_loadu_ps(x + i + 16), is_unsigned);
        __mmask16 k0 = _mm512_cmp_ps_mask(m0, cf, _CMP_GT_OQ), k1 = _mm512_cmp_ps_mask(m1, cf, _CMP_GT_OQ);
        acc_selected_at(&a, _mm512_cmp_ps_mask(m0, tf, _CMP_GT_OQ), m0, x + i, is_unsigned, 0);
        acc_selected_at(&a, _mm512_cmp_ps_mask(m1, tf, _CMP_GT_OQ), m1, x + i + 16, is_unsigned, 1);
        int n0 = __builtin_popcount(k0), n1 = __builtin_popcount(k1);
        store_kept(out + k, k0, m0);
        k += n0;
        store_kept(out + k, k1, m1);
        k += n1;
    }
    for (; i < n; i += 16) {
        __mmask16 lm = load_mask(i, n);
        __m512 m = mag16(_mm512_maskz_loadu_ps(lm, x + i), is_unsigned);
        __mmask16 kc = _mm512_mask_cmp_ps_mask(lm, m, cf, _CMP_GT_OQ);
        acc_selected(&a, _mm512_mask_cmp_ps_mask(lm, m, tf, _CMP_GT_OQ), m, 0);
        int nk = __builtin_popcount(kc);
        _mm512_mask_storeu_ps(out + k, tail_mask(nk), _mm512_maskz_compress_ps(kc, m));
        k += nk;
    }
    *sum = acc_sum(&a);
    *cnt = count_lanes(a.c0) + count_lanes(a.c1);
    return k;
}

static int64_t above_compact_avx512(const float *x, int64_t n, int is_unsigned, double t, double tc,
                                    double *sum, int64_t *cnt, float *out) {
    if (n > KCHUNK) {
        double a, b;
        int64_t ca, cb;
        int64_t k = above_compact_avx512(x, KCHUNK, is_unsigned, t, tc, &a, &ca, out);
        k += above_compact_avx512(x + KCHUNK, n - KCHUNK, is_unsigned, t, tc, &b, &cb, out + k);
        *sum = a + b; *cnt = ca + cb;
        return k;
    }
#define ABOVE_COMPACT_(kind) above_compact_body(x, n, kind, t, tc, sum, cnt, out)
    return SPECIALISE(ABOVE_COMPACT_);
#undef ABOVE_COMPACT_
}

/* The first pass of a cold solve (t = 0) on 16 full lanes: the sum of all
 * magnitudes (converted from the register that the compaction uses too),
 * the non-zero count, and the compact copy; signed data finds NaN/Inf
 * through the sum's finiteness. */
static inline void first16_cold(const float *p, __m512 cf, int is_unsigned, int h, acc_t *a, __m512i *bm,
                                float *out, int64_t *k) {
    const __m512i absbits = _mm512_set1_epi32(0x7fffffff), one = _mm512_set1_epi32(1);
    const __m512 v = _mm512_loadu_ps(p);
    const __m512 m = mag16(v, is_unsigned);
    __m512i nz;
    if (is_unsigned) {
        *bm = _mm512_max_epu32(*bm, _mm512_and_si512(_mm512_castps_si512(v), absbits));
        nz = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), one);
    } else {
        /* non-zero count without a compare (compares use the shuffle port,
         * the busiest here): min(bits of |x|, 1) is 1 for |x| > 0 (a NaN
         * counts too, but makes the solve an error anyway). Not for max(0,
         * x): that can be -0, whose bits are not 0. */
        nz = _mm512_min_epu32(_mm512_castps_si512(m), one);
    }
    /* the high half's sum converts from memory (no shuffle) */
    const __m512d hi = is_unsigned ? _mm512_max_pd(_mm512_setzero_pd(), _mm512_cvtps_pd(_mm256_loadu_ps(p + 8)))
                                   : _mm512_abs_pd(_mm512_cvtps_pd(_mm256_loadu_ps(p + 8)));
    if (h) {
        a->c1 = _mm512_add_epi32(a->c1, nz);
        a->s2 = _mm512_add_pd(a->s2, lo8(m));
        a->s3 = _mm512_add_pd(a->s3, hi);
    } else {
        a->c0 = _mm512_add_epi32(a->c0, nz);
        a->s0 = _mm512_add_pd(a->s0, lo8(m));
        a->s1 = _mm512_add_pd(a->s1, hi);
    }
    const __mmask16 kc = _mm512_cmp_ps_mask(m, cf, _CMP_GT_OQ);
    const int nk = __builtin_popcount(kc);
    store_kept(out + *k, kc, m);
    *k += nk;
}

/* One step of the first pass on 16 lanes (lm: valid lanes). zero_t: t is 0,
 * so the count above t is the non-zero count. */
static inline void first16(__m512 v, __mmask16 lm, __m512 tf, __m512 cf, int is_unsigned, int zero_t, int h,
                           acc_t *a, __m512i *bm, __m512i *nz, float *out, int64_t *k) {
    const __m512i absbits = _mm512_set1_epi32(0x7fffffff), minus1 = _mm512_set1_epi32(-1);
    *bm = _mm512_max_epu32(*bm, _mm512_and_si512(_mm512_castps_si512(v), absbits));
    __m512 m = mag16(v, is_unsigned);
    __mmask16 ka = _mm512_mask_cmp_ps_mask(lm, m, tf, _CMP_GT_OQ);
    if (!zero_t) *nz = _mm512_mask_sub_epi32(*nz, _mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ), *nz, minus1);
    acc_selected(a, ka, m, h);
    __mmask16 kc = _mm512_mask_cmp_ps_mask(lm, m, cf, _CMP_GT_OQ);
    int nk = __builtin_popcount(kc);
    if (lm == 0xffff) store_kept(out + *k, kc, m);
    else _mm512_mask_storeu_ps(out + *k, tail_mask(nk), _mm512_maskz_compress_ps(kc, m));
    *k += nk;
}

static inline int64_t first_body(const float *x, int64_t n, int is_unsigned, double t, double tc, octav_stats *st,
                                 double *sum, int64_t *cnt, float *out, int zero_t) {
    const __m512 tf = _mm512_set1_ps(float_floor_of(t)), cf = _mm512_set1_ps(float_floor_of(tc));
    acc_t a = acc_zero();
    __m512i bm = _mm512_setzero_si512(), nz = bm;
    int64_t k = 0, i = 0;
    if (zero_t) {
        for (; i + 32 <= n; i += 32) {
            prefetch_line(x + i);
            prefetch_line(x + i + 16);
            first16_cold(x + i, cf, is_unsigned, 0, &a, &bm, out, &k);
            first16_cold(x + i + 16, cf, is_unsigned, 1, &a, &bm, out, &k);
        }
    }
    for (; i + 32 <= n; i += 32) {
        prefetch_line(x + i);
        prefetch_line(x + i + 16);
        first16(_mm512_loadu_ps(x + i), 0xffff, tf, cf, is_unsigned, zero_t, 0, &a, &bm, &nz, out, &k);
        first16(_mm512_loadu_ps(x + i + 16), 0xffff, tf, cf, is_unsigned, zero_t, 1, &a, &bm, &nz, out, &k);
    }
    for (; i < n; i += 16) {
        __mmask16 lm = load_mask(i, n);
        first16(_mm512_maskz_loadu_ps(lm, x + i), lm, tf, cf, is_unsigned, zero_t, 0, &a, &bm, &nz, out, &k);
    }
    *sum = acc_sum(&a);
    *cnt = count_lanes(a.c0) + count_lanes(a.c1);
    st->sum = 0.0; /* not part of this kernel's contract */
    st->maxv = 0.0f;
    st->nnz = zero_t ? *cnt : count_lanes(nz);
    st->nonfinite = (uint32_t)_mm512_reduce_max_epu32(bm) >= 0x7f800000u || !isfinite(*sum);
    return k;
}

static int64_t first_avx512(const float *x, int64_t n, int is_unsigned, double t, double tc, octav_stats *st,
                            double *sum, int64_t *cnt, float *out) {
    if (n > KCHUNK) {
        stats_avx512(x, n, is_unsigned, st);
        st->sum = 0.0;
        st->maxv = 0.0f;
        return above_compact_avx512(x, n, is_unsigned, t, tc, sum, cnt, out);
    }
    if (t <= 0.0) return first_body(x, n, is_unsigned, 0.0, tc, st, sum, cnt, out, 1);
    return first_body(x, n, is_unsigned, t, tc, st, sum, cnt, out, 0);
}

/* ---- lane kernels (many small groups; octav.c) ------------------------- */

/* Transposes r[0..15] (row j: 16 floats) in place: r[i] lane j = old r[j]
 * lane i. Unpacks of 32- and 64-bit elements transpose the 4x4 blocks in
 * each 128-bit lane, then two 128-bit shuffles transpose the lanes. */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int k = 0; k < 8; k++) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    /* u[4k+q], 128-bit lane L: column 4L+q of rows 4k..4k+3 */
    for (int k = 0; k < 4; k++) {
        const __m512d a = _mm512_castps_pd(t[4 * k]), b = _mm512_castps_pd(t[4 * k + 1]);
        const __m512d c = _mm512_castps_pd(t[4 * k + 2]), d = _mm512_castps_pd(t[4 * k + 3]);
        u[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* row 4L+q gathers lane L of u[q], u[4+q], u[8+q], u[12+q] */
    for (int q = 0; q < 4; q++) {
        const __m512 v0 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0x44), v1 = _mm512_shuffle_f32x4(u[q], u[4 + q], 0xee);
        const __m512 w0 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0x44);
        const __m512 w1 = _mm512_shuffle_f32x4(u[8 + q], u[12 + q], 0xee);
        r[q] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[4 + q] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
        r[8 + q] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[12 + q] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
    }
}

/* 16 elements of each lane at a time: masked loads of the 16 runs, one
 * transpose, rows converted to double; the sums add the rows in order. */
static int lanes_load_avx512(const float *x, const int64_t *base, const int64_t *len, int64_t V, int is_unsigned,
                             double *M, double *sum, int64_t *nnz) {
    const __m512i absbits = _mm512_set1_epi32(0x7fffffff), minus1 = _mm512_set1_epi64(-1);
    const __m512d zero = _mm512_setzero_pd();
    __m512i bm = _mm512_setzero_si512(), n0 = bm, n1 = bm;
    __m512d s0 = zero, s1 = zero;
    for (int64_t i0 = 0; i0 < V; i0 += 16) {
        __m512 r[16];
        for (int j = 0; j < 16; j++) {
            /* the same line of the next batch (16 runs on: the next 16
             * groups when the runs are as long as this lane's) */
            __builtin_prefetch(x + base[j] + i0 + 16 * V, 0, 3);
            const int64_t rest = len[j] - i0; /* masked-out lanes load nothing */
            const __m512 v = rest > 0 ? _mm512_maskz_loadu_ps(load_mask(0, rest), x + base[j] + i0) : _mm512_setzero_ps();
            bm = _mm512_max_epu32(bm, _mm512_and_si512(_mm512_castps_si512(v), absbits));
            /* max(v, 0) is +0 for -0 (as mag_of; a NaN was seen in bm) */
            r[j] = is_unsigned ? _mm512_max_ps(v, _mm512_setzero_ps()) : _mm512_abs_ps(v);
        }
        transpose16(r);
        for (int i = 0; i < 16; i++) {
            const __m512d lo = lo8(r[i]), hi = hi8(r[i]);
            _mm512_store_pd(M + (i0 + i) * 16, lo);
            _mm512_store_pd(M + (i0 + i) * 16 + 8, hi);
            s0 = _mm512_add_pd(s0, lo);
            s1 = _mm512_add_pd(s1, hi);
            n0 = _mm512_mask_sub_epi64(n0, _mm512_cmp_pd_mask(lo, zero, _CMP_GT_OQ), n0, minus1);
            n1 = _mm512_mask_sub_epi64(n1, _mm512_cmp_pd_mask(hi, zero, _CMP_GT_OQ), n1, minus1);
        }
    }
    _mm512_storeu_pd(sum, s0);
    _mm512_storeu_pd(sum + 8, s1);
    _mm512_storeu_si512(nnz, n0);
    _mm512_storeu_si512(nnz + 8, n1);
    return (uint32_t)_mm512_reduce_max_epu32(bm) >= 0x7f800000u;
}

/* One half (8 lanes) of the recursions' state. */
typedef struct {
    __m512d s, prev2, next;
    __m512i it, nnz;
    __mmask8 active, conv, cyc;
} lanes8;

static inline void lanes8_init(lanes8 *h, const double *s, const int64_t *nnz, int max_iter) {
    h->s = _mm512_loadu_pd(s);
    h->prev2 = _mm512_set1_pd(-1.0);
    h->next = h->s;
    h->it = _mm512_setzero_si512();
    h->nnz = _mm512_loadu_si512(nnz);
    const __mmask8 has = _mm512_cmpgt_epi64_mask(h->nnz, _mm512_setzero_si512());
    h->active = max_iter > 0 ? has : 0;
    h->conv = (__mmask8)~has;
    h->cyc = 0;
}

/* rec_advance (recursion.h) on the active lanes, given the sums and counts. */
static inline void lanes8_advance(lanes8 *h, __m512d S, __m512i N, __m512d c, __m512i max_iter) {
    const __m512d den = _mm512_add_pd(_mm512_mul_pd(c, _mm512_cvtepi64_pd(_mm512_sub_epi64(h->nnz, N))),
                                      _mm512_cvtepi64_pd(N));
    const __m512d next = _mm512_div_pd(S, den);
    const __mmask8 act = h->active;
    const __mmask8 fixed = _mm512_mask_cmp_pd_mask(act, next, h->s, _CMP_EQ_OQ);
    const __mmask8 cy = _mm512_mask_cmp_pd_mask(act & (__mmask8)~fixed, next, h->prev2, _CMP_EQ_OQ);
    const __mmask8 go = act & (__mmask8)~(fixed | cy);
    h->next = next;
    h->cyc = cy;
    h->it = _mm512_mask_sub_epi64(h->it, act, h->it, _mm512_set1_epi64(-1));
    h->conv |= fixed | cy;
    h->prev2 = _mm512_mask_mov_pd(h->prev2, go, h->s);
    h->s = _mm512_mask_mov_pd(h->s, go, next);
    h->active = _mm512_mask_cmplt_epi64_mask(go, h->it, max_iter);
}

/* A two-cycle's result on the lanes of h->cyc (rare): the smallest
 * magnitude above the lower of the two values. */
static void lanes8_cycles(lanes8 *h, const double *M, int64_t V, int half) {
    double s[8], nx[8];
    _mm512_storeu_pd(s, h->s);
    _mm512_storeu_pd(nx, h->next);
    for (int j = 0; j < 8; j++)
        if (h->cyc >> j & 1) s[j] = lanes_min_above(M, V, 8 * half + j, nx[j] < s[j] ? nx[j] : s[j]);
    h->s = _mm512_loadu_pd(s);
    h->cyc = 0;
}

static void lanes_solve_avx512(const double *M, int64_t V, const int64_t *nnz, double c, int max_iter, double *s,
                               int32_t *it, int32_t *conv) {
    lanes8 h0, h1;
    lanes8_init(&h0, s, nnz, max_iter);
    lanes8_init(&h1, s + 8, nnz + 8, max_iter);
    const __m512d cv = _mm512_set1_pd(c);
    const __m512i mi = _mm512_set1_epi64(max_iter), minus1 = _mm512_set1_epi64(-1);
    while (h0.active | h1.active) {
        __m512d S0 = _mm512_setzero_pd(), S1 = S0;
        __m512i N0 = _mm512_setzero_si512(), N1 = N0;
        for (int64_t i = 0; i < V; i++) {
            const __m512d r0 = _mm512_load_pd(M + i * 16), r1 = _mm512_load_pd(M + i * 16 + 8);
            const __mmask8 k0 = _mm512_cmp_pd_mask(r0, h0.s, _CMP_GT_OQ), k1 = _mm512_cmp_pd_mask(r1, h1.s, _CMP_GT_OQ);
            S0 = _mm512_mask_add_pd(S0, k0, S0, r0);
            S1 = _mm512_mask_add_pd(S1, k1, S1, r1);
            N0 = _mm512_mask_sub_epi64(N0, k0, N0, minus1);
            N1 = _mm512_mask_sub_epi64(N1, k1, N1, minus1);
        }
        lanes8_advance(&h0, S0, N0, cv, mi);
        lanes8_advance(&h1, S1, N1, cv, mi);
        if (h0.cyc) lanes8_cycles(&h0, M, V, 0);
        if (h1.cyc) lanes8_cycles(&h1, M, V, 1);
    }
    _mm512_storeu_pd(s, h0.s);
    _mm512_storeu_pd(s + 8, h1.s);
    _mm256_storeu_si256((__m256i *)it, _mm512_cvtepi64_epi32(h0.it));
    _mm256_storeu_si256((__m256i *)(it + 8), _mm512_cvtepi64_epi32(h1.it));
    for (int j = 0; j < 8; j++) {
        conv[j] = h0.conv >> j & 1;
        conv[8 + j] = h1.conv >> j & 1;
    }
}

const octav_kernels octav_kernels_avx512 = {stats_avx512,      above_avx512,       above_compact_avx512, first_avx512,
                                            lanes_load_avx512, lanes_solve_avx512, "avx512"};
