/*
 * bf16_round - f32 -> bf16 (round to nearest even, as f32_to_bf16 does) for
 * eight values in an AVX2 register, for the loaders' fused conversions.
 */
#ifndef GS_BF16_ROUND_H
#define GS_BF16_ROUND_H

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

/* The eight bf16 values of v in the low 128 bits' order. */
__attribute__((target("avx2"), always_inline)) static inline __m128i gi_bf16_round8(__m256 v)
{
    __m256i u = _mm256_castps_si256(v);
    __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    __m256i r = _mm256_srli_epi32(
        _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), odd), 16);
    /* each lane <= 0xffff, so the unsigned saturating pack keeps it; the pack
       works within 128-bit halves, the permute joins them */
    __m256i p = _mm256_packus_epi32(r, r);
    return _mm256_castsi256_si128(_mm256_permute4x64_epi64(p, 0x08));
}
#endif

#endif
