/* kernels_avx512.c -- AVX-512 versions of the OCTAV solver kernels (see
 * internal.h for their contracts; kernels.c holds the scalar reference).
 * Sums are accumulated in double lanes; compaction keeps element order. */
#include "internal.h"

#include <immintrin.h>

static inline __m512 mag16(__m512 v, int is_unsigned) {
    return is_unsigned ? _mm512_max_ps(v, _mm512_setzero_ps()) : _mm512_abs_ps(v);
}

static inline __mmask16 tail_mask(int64_t r) { return (__mmask16)((1u << r) - 1u); }

static void stats_avx512(const float *x, int64_t n, int is_unsigned, octav_stats *out) {
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512 mx = _mm512_setzero_ps();
    __m512i bits_max = _mm512_setzero_si512();
    const __m512i absbits = _mm512_set1_epi32(0x7fffffff);
    int64_t nnz = 0, i = 0;
    for (; i < n; i += 16) {
        __mmask16 lm = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(lm, x + i);
        bits_max = _mm512_max_epu32(bits_max, _mm512_and_si512(_mm512_castps_si512(v), absbits));
        __m512 m = mag16(v, is_unsigned);
        nnz += __builtin_popcount(_mm512_cmp_ps_mask(m, _mm512_setzero_ps(), _CMP_GT_OQ));
        mx = _mm512_max_ps(mx, m);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(m)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1))));
    }
    out->sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    out->nnz = nnz;
    out->maxv = _mm512_reduce_max_ps(mx);
    out->nonfinite = (uint32_t)_mm512_reduce_max_epu32(bits_max) >= 0x7f800000u;
}

static void above_avx512(const float *x, int64_t n, int is_unsigned, double t, double *sum, int64_t *cnt) {
    const __m512 tf = _mm512_set1_ps(float_floor_of(t));
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    int64_t c = 0;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 lm = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 m = mag16(_mm512_maskz_loadu_ps(lm, x + i), is_unsigned);
        __mmask16 k = _mm512_mask_cmp_ps_mask(lm, m, tf, _CMP_GT_OQ);
        c += __builtin_popcount(k);
        m = _mm512_maskz_mov_ps(k, m);
        s0 = _mm512_add_pd(s0, _mm512_cvtps_pd(_mm512_castps512_ps256(m)));
        s1 = _mm512_add_pd(s1, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(m), 1))));
    }
    *sum = _mm512_reduce_add_pd(_mm512_add_pd(s0, s1));
    *cnt = c;
}

static int64_t compact_avx512(const float *x, int64_t n, int is_unsigned, double t, float *out) {
    const __m512 tf = _mm512_set1_ps(float_floor_of(t));
    int64_t k = 0;
    for (int64_t i = 0; i < n; i += 16) {
        __mmask16 lm = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        __m512 m = mag16(_mm512_maskz_loadu_ps(lm, x + i), is_unsigned);
        __mmask16 keep = _mm512_mask_cmp_ps_mask(lm, m, tf, _CMP_GT_OQ);
        int nk = __builtin_popcount(keep);
        _mm512_mask_storeu_ps(out + k, tail_mask(nk), _mm512_maskz_compress_ps(keep, m));
        k += nk;
    }
    return k;
}

const octav_kernels octav_kernels_avx512 = {stats_avx512, above_avx512, compact_avx512, "avx512"};
