/* kernels_avx2.c -- AVX2 versions of the OCTAV solver kernels (see
 * internal.h for their contracts; kernels.c holds the scalar reference).
 * Compaction uses the pdep/pext permutation idiom (BMI2). */
#include "internal.h"
#include "kernels_lanes.h"

#include <immintrin.h>

static inline __m256 mag8(__m256 v, int is_unsigned) {
    return is_unsigned ? _mm256_max_ps(_mm256_setzero_ps(), v)
                       : _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

/* Lanes 0..r-1 set. */
static inline __m256i lanes_below(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r < 8 ? r : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Software prefetch 1 KB ahead, once per 64-byte line (see kernels_avx512.c).
 * always_inline: GCC 12 otherwise splits the test into a separate function
 * (partial inlining), judges it free of side effects and deletes its calls,
 * so no prefetch was left in the binary. */
static inline __attribute__((always_inline)) void prefetch_ahead(const float *x, int64_t i) {
    if (!(i & 15)) __builtin_prefetch(x + i + 256, 0, 3);
}

static inline __m256 load_part(const float *p, int64_t r) {
    return r >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes_below(r));
}

/* Compare mask restricted to the valid lanes of a partial vector. */
static inline __m256 gt_mask(__m256 m, __m256 t, int64_t r) {
    __m256 k = _mm256_cmp_ps(m, t, _CMP_GT_OQ);
    return r < 8 ? _mm256_and_ps(k, _mm256_castsi256_ps(lanes_below(r))) : k;
}

static inline __m256d lo_pd(__m256 m) { return _mm256_cvtps_pd(_mm256_castps256_ps128(m)); }
static inline __m256d hi_pd(__m256 m) { return _mm256_cvtps_pd(_mm256_extractf128_ps(m, 1)); }

static inline double hsum_pd(__m256d a, __m256d b) {
    double v[4];
    _mm256_storeu_pd(v, _mm256_add_pd(a, b));
    return (v[0] + v[1]) + (v[2] + v[3]);
}

/* Stores the lanes of m selected by the 8-bit mask, in order, at out. */
static inline int store_compressed(float *out, __m256 m, unsigned mask) {
    int nk = __builtin_popcount(mask);
    uint64_t expanded = _pdep_u64(mask, 0x0101010101010101ull) * 0xffu;
    uint64_t idx = _pext_u64(0x0706050403020100ull, expanded);
    __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)idx));
    _mm256_maskstore_ps(out, lanes_below(nk), _mm256_permutevar8x32_ps(m, perm));
    return nk;
}

static void stats_avx2(const float *x, int64_t n, int is_unsigned, octav_stats *out) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256 mx = _mm256_setzero_ps();
    __m256i bmax = _mm256_setzero_si256();
    const __m256i absbits = _mm256_set1_epi32(0x7fffffff);
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i += 8) {
        prefetch_ahead(x, i);
        __m256 v = load_part(x + i, n - i);
        bmax = _mm256_max_epu32(bmax, _mm256_and_si256(_mm256_castps_si256(v), absbits));
        __m256 m = mag8(v, is_unsigned);
        nnz += __builtin_popcount(_mm256_movemask_ps(_mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ)));
        mx = _mm256_max_ps(mx, m);
        s0 = _mm256_add_pd(s0, lo_pd(m));
        s1 = _mm256_add_pd(s1, hi_pd(m));
    }
    float mv[8];
    uint32_t bv[8];
    _mm256_storeu_ps(mv, mx);
    _mm256_storeu_si256((__m256i *)bv, bmax);
    float m = 0.0f;
    uint32_t b = 0;
    for (int j = 0; j < 8; j++) { m = mv[j] > m ? mv[j] : m; b = bv[j] > b ? bv[j] : b; }
    out->sum = hsum_pd(s0, s1);
    out->nnz = nnz;
    out->maxv = 0.0f;
    (void)m;
    out->nonfinite = b >= 0x7f800000u;
}

static void above_avx2(const float *x, int64_t n, int is_unsigned, double t, double *sum, int64_t *cnt) {
    const __m256 tf = _mm256_set1_ps(float_floor_of(t));
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t c = 0;
    for (int64_t i = 0; i < n; i += 8) {
        prefetch_ahead(x, i);
        __m256 m = mag8(load_part(x + i, n - i), is_unsigned);
        __m256 k = gt_mask(m, tf, n - i);
        c += __builtin_popcount(_mm256_movemask_ps(k));
        m = _mm256_and_ps(m, k);
        s0 = _mm256_add_pd(s0, lo_pd(m));
        s1 = _mm256_add_pd(s1, hi_pd(m));
    }
    *sum = hsum_pd(s0, s1);
    *cnt = c;
}

/* One vector of above_compact: sums above tf, copy above cf (r valid lanes). */
static inline void above_compact8(__m256 m, __m256 tf, __m256 cf, int64_t r, __m256d *s0, __m256d *s1,
                                  int64_t *c, float *out, int64_t *k) {
    __m256 ka = gt_mask(m, tf, r), kc = gt_mask(m, cf, r);
    *c += __builtin_popcount(_mm256_movemask_ps(ka));
    __m256 sel = _mm256_and_ps(m, ka);
    *s0 = _mm256_add_pd(*s0, lo_pd(sel));
    *s1 = _mm256_add_pd(*s1, hi_pd(sel));
    *k += store_compressed(out + *k, m, (unsigned)_mm256_movemask_ps(kc));
}

static int64_t above_compact_avx2(const float *x, int64_t n, int is_unsigned, double t, double tc,
                                  double *sum, int64_t *cnt, float *out) {
    const __m256 tf = _mm256_set1_ps(float_floor_of(t)), cf = _mm256_set1_ps(float_floor_of(tc));
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t c = 0, k = 0;
    for (int64_t i = 0; i < n; i += 8) {
        prefetch_ahead(x, i);
        above_compact8(mag8(load_part(x + i, n - i), is_unsigned), tf, cf, n - i, &s0, &s1, &c, out, &k);
    }
    *sum = hsum_pd(s0, s1);
    *cnt = c;
    return k;
}

static int64_t first_avx2(const float *x, int64_t n, int is_unsigned, double t, double tc, octav_stats *st,
                          double *sum, int64_t *cnt, float *out) {
    const __m256 tf = _mm256_set1_ps(float_floor_of(t)), cf = _mm256_set1_ps(float_floor_of(tc));
    const __m256i absbits = _mm256_set1_epi32(0x7fffffff);
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256i bmax = _mm256_setzero_si256();
    int64_t c = 0, k = 0, nnz = 0;
    for (int64_t i = 0; i < n; i += 8) {
        prefetch_ahead(x, i);
        __m256 v = load_part(x + i, n - i);
        bmax = _mm256_max_epu32(bmax, _mm256_and_si256(_mm256_castps_si256(v), absbits));
        __m256 m = mag8(v, is_unsigned);
        nnz += __builtin_popcount(_mm256_movemask_ps(_mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ)));
        above_compact8(m, tf, cf, n - i, &s0, &s1, &c, out, &k);
    }
    uint32_t bv[8], b = 0;
    _mm256_storeu_si256((__m256i *)bv, bmax);
    for (int j = 0; j < 8; j++) b = bv[j] > b ? bv[j] : b;
    st->sum = 0.0;
    st->maxv = 0.0f;
    st->nnz = nnz;
    st->nonfinite = b >= 0x7f800000u;
    *sum = hsum_pd(s0, s1);
    *cnt = c;
    return k;
}

/* ---- lane kernels (many small groups; octav.c) ------------------------- */

/* Transposes r[0..7] (row j: 8 floats) in place. */
static inline void transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int k = 0; k < 4; k++) {
        t[2 * k] = _mm256_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm256_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    /* u[4k+q], 128-bit lane L: column 4L+q of rows 4k..4k+3 */
    for (int k = 0; k < 2; k++) {
        u[4 * k] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0x44);
        u[4 * k + 1] = _mm256_shuffle_ps(t[4 * k], t[4 * k + 2], 0xee);
        u[4 * k + 2] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0x44);
        u[4 * k + 3] = _mm256_shuffle_ps(t[4 * k + 1], t[4 * k + 3], 0xee);
    }
    for (int q = 0; q < 4; q++) {
        r[q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x20);
        r[4 + q] = _mm256_permute2f128_ps(u[q], u[4 + q], 0x31);
    }
}

/* Exact for 0 <= v < 2^52 (counts). */
static inline __m256d count_pd(__m256i v) {
    const __m256d magic = _mm256_set1_pd(4503599627370496.0); /* 2^52 */
    return _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(v, _mm256_castpd_si256(magic))), magic);
}

/* 8 elements of each lane at a time, 8 lanes at a time: masked loads, one
 * transpose, rows converted to double; then the sums add the rows in order. */
static int lanes_load_avx2(const float *x, const int64_t *base, const int64_t *len, int64_t V, int is_unsigned,
                           double *M, double *sum, int64_t *nnz) {
    const int64_t rows = (V + 15) / 16 * 16;
    const __m256i absbits = _mm256_set1_epi32(0x7fffffff);
    __m256i bm = _mm256_setzero_si256();
    for (int h = 0; h < 2; h++)
        for (int64_t i0 = 0; i0 < rows; i0 += 8) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) {
                const int64_t rest = len[8 * h + j] - i0; /* masked-out lanes load nothing */
                const __m256 v = rest > 0 ? load_part(x + base[8 * h + j] + i0, rest) : _mm256_setzero_ps();
                bm = _mm256_max_epu32(bm, _mm256_and_si256(_mm256_castps_si256(v), absbits));
                /* max(v, 0) is +0 for -0 (as mag_of; a NaN was seen in bm) */
                r[j] = is_unsigned ? _mm256_max_ps(v, _mm256_setzero_ps()) : mag8(v, 0);
            }
            transpose8(r);
            for (int i = 0; i < 8; i++) {
                _mm256_store_pd(M + (i0 + i) * 16 + 8 * h, lo_pd(r[i]));
                _mm256_store_pd(M + (i0 + i) * 16 + 8 * h + 4, hi_pd(r[i]));
            }
        }
    __m256d s[4];
    __m256i n[4];
    for (int q = 0; q < 4; q++) { s[q] = _mm256_setzero_pd(); n[q] = _mm256_setzero_si256(); }
    for (int64_t i = 0; i < V; i++)
        for (int q = 0; q < 4; q++) {
            const __m256d m = _mm256_load_pd(M + i * 16 + 4 * q);
            s[q] = _mm256_add_pd(s[q], m);
            n[q] = _mm256_sub_epi64(n[q], _mm256_castpd_si256(_mm256_cmp_pd(m, _mm256_setzero_pd(), _CMP_GT_OQ)));
        }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_pd(sum + 4 * q, s[q]);
        _mm256_storeu_si256((__m256i *)(nnz + 4 * q), n[q]);
    }
    /* the largest |x| bit pattern finds a NaN/Inf */
    __m128i b = _mm_max_epu32(_mm256_castsi256_si128(bm), _mm256_extracti128_si256(bm, 1));
    b = _mm_max_epu32(b, _mm_shuffle_epi32(b, 0x4e));
    b = _mm_max_epu32(b, _mm_shuffle_epi32(b, 0xb1));
    return (uint32_t)_mm_cvtsi128_si32(b) >= 0x7f800000u;
}

/* rec_advance (recursion.h) on 16 lanes as four vectors of 4; the state's
 * masks are all-ones lanes. */
static void lanes_solve_avx2(const double *M, int64_t V, const int64_t *nnz, double c, int max_iter, double *s,
                             int32_t *it, int32_t *conv) {
    __m256d cur[4], prev2[4], next[4];
    __m256i cnt[4], nz[4], act[4], cv[4];
    const __m256i zero = _mm256_setzero_si256(), mi = _mm256_set1_epi64x(max_iter);
    const __m256d cc = _mm256_set1_pd(c);
    int any = 0;
    for (int q = 0; q < 4; q++) {
        cur[q] = _mm256_loadu_pd(s + 4 * q);
        prev2[q] = _mm256_set1_pd(-1.0);
        nz[q] = _mm256_loadu_si256((const __m256i *)(nnz + 4 * q));
        const __m256i has = _mm256_cmpgt_epi64(nz[q], zero);
        act[q] = max_iter > 0 ? has : zero;
        cv[q] = _mm256_andnot_si256(has, _mm256_set1_epi64x(-1));
        cnt[q] = zero;
        any |= _mm256_movemask_pd(_mm256_castsi256_pd(act[q]));
    }
    while (any) {
        __m256d S[4];
        __m256i N[4];
        for (int q = 0; q < 4; q++) { S[q] = _mm256_setzero_pd(); N[q] = zero; }
        for (int64_t i = 0; i < V; i++)
            for (int q = 0; q < 4; q++) {
                const __m256d m = _mm256_load_pd(M + i * 16 + 4 * q);
                const __m256d k = _mm256_cmp_pd(m, cur[q], _CMP_GT_OQ);
                S[q] = _mm256_add_pd(S[q], _mm256_and_pd(k, m));
                N[q] = _mm256_sub_epi64(N[q], _mm256_castpd_si256(k));
            }
        any = 0;
        for (int q = 0; q < 4; q++) {
            const __m256d den = _mm256_add_pd(_mm256_mul_pd(cc, count_pd(_mm256_sub_epi64(nz[q], N[q]))), count_pd(N[q]));
            next[q] = _mm256_div_pd(S[q], den);
            const __m256i a = act[q];
            const __m256i fixed = _mm256_and_si256(a, _mm256_castpd_si256(_mm256_cmp_pd(next[q], cur[q], _CMP_EQ_OQ)));
            const __m256i cy = _mm256_andnot_si256(fixed, _mm256_and_si256(a, _mm256_castpd_si256(
                                                                                  _mm256_cmp_pd(next[q], prev2[q], _CMP_EQ_OQ))));
            const __m256i go = _mm256_andnot_si256(_mm256_or_si256(fixed, cy), a);
            cnt[q] = _mm256_sub_epi64(cnt[q], a);
            cv[q] = _mm256_or_si256(cv[q], _mm256_or_si256(fixed, cy));
            prev2[q] = _mm256_blendv_pd(prev2[q], cur[q], _mm256_castsi256_pd(go));
            cur[q] = _mm256_blendv_pd(cur[q], next[q], _mm256_castsi256_pd(go));
            act[q] = _mm256_and_si256(go, _mm256_cmpgt_epi64(mi, cnt[q]));
            any |= _mm256_movemask_pd(_mm256_castsi256_pd(act[q]));
            const int cm = _mm256_movemask_pd(_mm256_castsi256_pd(cy));
            if (cm) {
                /* a two-cycle (rare): the smallest magnitude above the lower value */
                double sc[4], nx[4];
                _mm256_storeu_pd(sc, cur[q]);
                _mm256_storeu_pd(nx, next[q]);
                for (int j = 0; j < 4; j++)
                    if (cm >> j & 1) sc[j] = lanes_min_above(M, V, 4 * q + j, nx[j] < sc[j] ? nx[j] : sc[j]);
                cur[q] = _mm256_loadu_pd(sc);
            }
        }
    }
    for (int q = 0; q < 4; q++) {
        int64_t n[4], k[4];
        _mm256_storeu_pd(s + 4 * q, cur[q]);
        _mm256_storeu_si256((__m256i *)n, cnt[q]);
        _mm256_storeu_si256((__m256i *)k, cv[q]);
        for (int j = 0; j < 4; j++) {
            it[4 * q + j] = (int32_t)n[j];
            conv[4 * q + j] = k[j] != 0;
        }
    }
}

const octav_kernels octav_kernels_avx2 = {stats_avx2,      above_avx2,       above_compact_avx2, first_avx2,
                                          lanes_load_avx2, lanes_solve_avx2, "avx2"};
