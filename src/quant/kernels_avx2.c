/* kernels_avx2.c -- AVX2 versions of the OCTAV solver kernels (see
 * internal.h for their contracts; kernels.c holds the scalar reference).
 * Compaction uses the pdep/pext permutation idiom (BMI2). */
#include "internal.h"

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

const octav_kernels octav_kernels_avx2 = {stats_avx2, above_avx2, above_compact_avx2, first_avx2, "avx2"};
