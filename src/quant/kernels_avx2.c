/* kernels_avx2.c -- AVX2 versions of the OCTAV solver kernels (see
 * internal.h for their contracts; kernels.c holds the scalar reference).
 * Compaction uses the pdep/pext permutation idiom (BMI2). */
#include "internal.h"

#include <immintrin.h>

static inline __m256 mag8(__m256 v, int is_unsigned) {
    return is_unsigned ? _mm256_max_ps(v, _mm256_setzero_ps())
                       : _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)));
}

/* Lanes 0..r-1 set. */
static inline __m256i lanes_below(int64_t r) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

static inline __m256 load_part(const float *p, int64_t r) {
    return r >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, lanes_below(r));
}

static inline __m256d lo_pd(__m256 m) { return _mm256_cvtps_pd(_mm256_castps256_ps128(m)); }
static inline __m256d hi_pd(__m256 m) { return _mm256_cvtps_pd(_mm256_extractf128_ps(m, 1)); }

static void stats_avx2(const float *x, int64_t n, int is_unsigned, octav_stats *out) {
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    __m256 mx = _mm256_setzero_ps();
    __m256i bmax = _mm256_setzero_si256();
    const __m256i absbits = _mm256_set1_epi32(0x7fffffff);
    int64_t nnz = 0;
    for (int64_t i = 0; i < n; i += 8) {
        __m256 v = load_part(x + i, n - i);
        bmax = _mm256_max_epu32(bmax, _mm256_and_si256(_mm256_castps_si256(v), absbits));
        __m256 m = mag8(v, is_unsigned);
        nnz += __builtin_popcount(_mm256_movemask_ps(_mm256_cmp_ps(m, _mm256_setzero_ps(), _CMP_GT_OQ)));
        mx = _mm256_max_ps(mx, m);
        s0 = _mm256_add_pd(s0, lo_pd(m));
        s1 = _mm256_add_pd(s1, hi_pd(m));
    }
    double sv[4];
    float mv[8];
    uint32_t bv[8];
    _mm256_storeu_pd(sv, _mm256_add_pd(s0, s1));
    _mm256_storeu_ps(mv, mx);
    _mm256_storeu_si256((__m256i *)bv, bmax);
    float m = 0.0f;
    uint32_t b = 0;
    for (int j = 0; j < 8; j++) { m = mv[j] > m ? mv[j] : m; b = bv[j] > b ? bv[j] : b; }
    out->sum = (sv[0] + sv[1]) + (sv[2] + sv[3]);
    out->nnz = nnz;
    out->maxv = m;
    out->nonfinite = b >= 0x7f800000u;
}

static void above_avx2(const float *x, int64_t n, int is_unsigned, double t, double *sum, int64_t *cnt) {
    const __m256 tf = _mm256_set1_ps(float_floor_of(t));
    __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
    int64_t c = 0;
    for (int64_t i = 0; i < n; i += 8) {
        int64_t r = n - i;
        __m256 m = mag8(load_part(x + i, r), is_unsigned);
        __m256 k = _mm256_cmp_ps(m, tf, _CMP_GT_OQ);
        if (r < 8) k = _mm256_and_ps(k, _mm256_castsi256_ps(lanes_below(r)));
        c += __builtin_popcount(_mm256_movemask_ps(k));
        m = _mm256_and_ps(m, k);
        s0 = _mm256_add_pd(s0, lo_pd(m));
        s1 = _mm256_add_pd(s1, hi_pd(m));
    }
    double sv[4];
    _mm256_storeu_pd(sv, _mm256_add_pd(s0, s1));
    *sum = (sv[0] + sv[1]) + (sv[2] + sv[3]);
    *cnt = c;
}

static int64_t compact_avx2(const float *x, int64_t n, int is_unsigned, double t, float *out) {
    const __m256 tf = _mm256_set1_ps(float_floor_of(t));
    int64_t k = 0;
    for (int64_t i = 0; i < n; i += 8) {
        int64_t r = n - i;
        __m256 m = mag8(load_part(x + i, r), is_unsigned);
        __m256 keepv = _mm256_cmp_ps(m, tf, _CMP_GT_OQ);
        if (r < 8) keepv = _mm256_and_ps(keepv, _mm256_castsi256_ps(lanes_below(r)));
        unsigned mask = (unsigned)_mm256_movemask_ps(keepv);
        int nk = __builtin_popcount(mask);
        uint64_t expanded = _pdep_u64(mask, 0x0101010101010101ull) * 0xffu;
        uint64_t idx = _pext_u64(0x0706050403020100ull, expanded);
        __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128((long long)idx));
        _mm256_maskstore_ps(out + k, lanes_below(nk), _mm256_permutevar8x32_ps(m, perm));
        k += nk;
    }
    return k;
}

const octav_kernels octav_kernels_avx2 = {stats_avx2, above_avx2, compact_avx2, "avx2"};
