/* attention_fused_bf16 - the bf16 products of the one-pass attention
 * (attention_fused.c): keys, values, queries and probabilities as bf16 pairs
 * for AVX512_BF16's dot product, f32 accumulation and softmax. */
#ifndef GS_ATTENTION_FUSED_BF16_H
#define GS_ATTENTION_FUSED_BF16_H

#include <stdint.h>

#define FUSED_ROWS 8        /* query rows per register tile */
#define FUSED_KEYS 256      /* keys per score block (8 x 256 floats: 8 KB) */
#define FUSED_MAX_WIDTH 256 /* head widths handled (SD: 40..160, CLIP 64) */

int fused_bf16_available(void);

/* The P.V register tile at column c0 of a head of width d: *nv full vectors of
   16 (at most 3) and, with *half, 8 more columns in a 256-bit one (a width of
   40 is 2.5 vectors: padding it to 48 would waste a sixth of the product).
   Tiles start every 48 columns. */
static inline void fused_value_tile(int d, int c0, int *nv, int *half)
{
    int left = d - c0;
    *nv = left / 16 < 3 ? left / 16 : 3;
    int rest = *nv == 3 ? 0 : left - 16 * *nv; /* columns past the full vectors */
    *half = rest > 0 && rest <= 8;
    if (rest > 8) /* the zero padding covers it: one more full vector */
        ++*nv;
}

/* One (image, head): keys k[t][c] (row stride kv_stride) into kt, pairs of
   channels per key by panels of 16 keys, [tkp / 16][ceil(d/2)][16][2]; values v[t][c] into vp,
   pairs of keys per channel, [tkp/2][dp][2]; zero beyond tk and d. */
void fused_bf16_pack_head(const float *k, const float *v, int kv_stride, int tk, int d, int tkp,
                          int dp, uint16_t *kt, uint16_t *vp);

/* q2[r][x] = the bf16 pair (qs[r][2x], qs[r][2x+1]) for the 8 rows, x < d2. */
void fused_bf16_pack_q(const float (*qs)[FUSED_MAX_WIDTH], uint32_t (*q2)[FUSED_MAX_WIDTH / 2],
                       int d2);

/* One block of kb keys (a multiple of 32, from key k0, even) for the 8 rows:
   scores against the block's keys where the row sees them (valid[r] keys from
   k0; 0 for padding rows), the running max m and sum l of each row's softmax
   updated, o rescaled and the block's bf16 probabilities times its values
   added. kt and vp are the head's packed keys and values. */
void fused_bf16_block(const uint32_t (*q2)[FUSED_MAX_WIDTH / 2], int d, int d2, const uint16_t *kt,
                      const uint16_t *vp, int dp, int k0, int kb, const int *valid, float *m,
                      float *l, float (*o)[FUSED_MAX_WIDTH]);

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

_Static_assert(FUSED_ROWS % 2 == 0, "the value tiles pair rows up");

/* lo in the low 8 lanes, hi in the high 8, and the high 8 back out: the
   value tiles pair two rows' 8-channel remainders in one vector (AVX512F's
   64-bit forms: the 32-bit ones need AVX512DQ). */
__attribute__((target("avx512f"), always_inline)) static inline __m512 fused_join_halves(__m256 lo,
                                                                                         __m256 hi)
{
    return _mm512_castpd_ps(
        _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}

__attribute__((target("avx512f"), always_inline)) static inline __m256 fused_high_half(__m512 x)
{
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1));
}

/* Stores the 8 rows' scores a0/a1 of keys c..c+31 into s[r][c..c+31] and
   takes bm[r] to the max over those of the row's valid keys (no second pass
   over the scores for it). Shared by the f32 and bf16 score tiles. */
__attribute__((target("avx512f"), always_inline)) static inline void
fused_store_scores(const __m512 *a0, const __m512 *a1, float (*s)[FUSED_KEYS], int c,
                   const int *valid, __m512 *bm)
{
    for (int r = 0; r < FUSED_ROWS; r++) {
        _mm512_store_ps(&s[r][c], a0[r]);
        _mm512_store_ps(&s[r][c + 16], a1[r]);
        int left = valid[r] - c;
        if (left >= 32) {
            bm[r] = _mm512_max_ps(bm[r], _mm512_max_ps(a0[r], a1[r]));
        } else if (left > 0) {
            __mmask16 k0 = left >= 16 ? 0xffff : (__mmask16)((1u << left) - 1);
            __mmask16 k1 = left > 16 ? (__mmask16)((1u << (left - 16)) - 1) : 0;
            bm[r] = _mm512_mask_max_ps(bm[r], k0, bm[r], a0[r]);
            bm[r] = _mm512_mask_max_ps(bm[r], k1, bm[r], a1[r]);
        }
    }
}
#endif

#endif
