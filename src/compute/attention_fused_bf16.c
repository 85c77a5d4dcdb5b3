/*
 * attention_fused_bf16 - the two products of the one-pass attention with
 * AVX512_BF16's VDPBF16PS: each instruction multiplies 16 pairs of bf16 and
 * adds both products to 16 f32 sums, so Q K^T and P V take half the
 * instructions of the f32 kernel. Pairs run along the inner dimension of each
 * product: channel pairs for the scores, key pairs for the values.
 *
 * Only bf16 engines use it: their linear layers already round activations to
 * bf16 before every matmul, and the probabilities are rounded the same way
 * (the row sums that normalise them stay f32).
 */
#include "compute/attention_fused_bf16.h"

#include <math.h>
#include <string.h>

#include "compute/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define BF16_TARGET __attribute__((target("avx512f,avx512vl,avx512bf16")))

int fused_bf16_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bf16");
}

/* 16 floats to bf16 as gi_f32_to_bf16 rounds them (to nearest even, NaNs
   kept quiet; VCVTNEPS2BF16 would flush subnormal inputs to zero), each in the
   low half of its 32-bit lane. */
BF16_TARGET static inline __m512i bf16_lanes(__m512 f)
{
    const __m512i u = _mm512_castps_si512(f);
    __m512i r = _mm512_add_epi32(
        u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
                            _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
    r = _mm512_srli_epi32(r, 16);
    __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                            _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
}

/* The first `left` of 16 lanes (all 16 from 16 up, none below 1). */
static inline __mmask16 first_lanes(int left)
{
    return left >= 16 ? 0xffff : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
}

/* Keys by panels of 16: each key's row rounded 16 channels at a time, its
   channel pairs (adjacent in the row) then laid 16 keys apart. Values by key
   pairs: rows t and t + 1 rounded together, channel c's pair one 32-bit lane. */
BF16_TARGET void fused_bf16_pack_head(const float *k, const float *v, int kv_stride, int tk, int d,
                                      int tkp, int dp, uint16_t *kt, uint16_t *vp)
{
    int d2 = (d + 1) / 2;
    memset(kt, 0, (size_t)d2 * tkp * 2 * sizeof *kt);
    memset(vp, 0, (size_t)tkp * dp * sizeof *vp);
    uint32_t *kt32 = (uint32_t *)kt, *vp32 = (uint32_t *)vp;
    /* whole vectors of 16: past d the masked loads give zeros, so an odd d's
       last pair has 0 above */
    _Alignas(64) uint16_t row[FUSED_MAX_WIDTH];
    for (int t = 0; t < tk; t++) {
        const float *kr = k + (size_t)t * kv_stride;
        for (int c = 0; c < d; c += 16) {
            __mmask16 m = first_lanes(d - c);
            _mm256_store_si256((__m256i *)(row + c),
                               _mm512_cvtepi32_epi16(bf16_lanes(_mm512_maskz_loadu_ps(m, kr + c))));
        }
        const uint32_t *pairs = (const uint32_t *)row;
        uint32_t *col = kt32 + (size_t)(t / 16) * d2 * 16 + t % 16;
        for (int x = 0; x < d2; x++)
            col[(size_t)x * 16] = pairs[x];
    }
    for (int t = 0; t < tk; t += 2) {
        const float *v0 = v + (size_t)t * kv_stride, *v1 = v0 + kv_stride;
        uint32_t *dst = vp32 + (size_t)(t / 2) * dp;
        for (int c = 0; c < d; c += 16) {
            __mmask16 m = first_lanes(d - c);
            __m512i lo = bf16_lanes(_mm512_maskz_loadu_ps(m, v0 + c));
            /* an odd tk's last key pairs with zeros */
            __m512i hi =
                t + 1 < tk ? bf16_lanes(_mm512_maskz_loadu_ps(m, v1 + c)) : _mm512_setzero_si512();
            _mm512_mask_storeu_epi32(dst + c, m, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
    }
}

void fused_bf16_pack_q(const float (*qs)[FUSED_MAX_WIDTH], uint32_t (*q2)[FUSED_MAX_WIDTH / 2],
                       int d2)
{
    for (int r = 0; r < FUSED_ROWS; r++)
        for (int x = 0; x < d2; x++)
            q2[r][x] = (uint32_t)gi_f32_to_bf16(qs[r][2 * x]) |
                       (uint32_t)gi_f32_to_bf16(qs[r][2 * x + 1]) << 16;
}

/* scores of the 8 rows against keys col..col+31 into s[r][c..c+31]; bm[r]
   takes the max over those of the row's valid keys */
BF16_TARGET __attribute__((always_inline)) static inline void
scores_32(const uint32_t (*q2)[FUSED_MAX_WIDTH / 2], const uint16_t *kt, int d2, int col,
          float (*s)[FUSED_KEYS], int c, const int *valid, __m512 *bm)
{
    __m512 a0[FUSED_ROWS], a1[FUSED_ROWS];
    for (int r = 0; r < FUSED_ROWS; r++)
        a0[r] = a1[r] = _mm512_setzero_ps();
    /* two panels of 16 keys, [d2][16][2] each */
    const uint16_t *kp = kt + (size_t)(col / 16) * d2 * 32;
    for (int x = 0; x < d2; x++, kp += 32) {
        __m512bh k0 = (__m512bh)_mm512_loadu_si512(kp),
                 k1 = (__m512bh)_mm512_loadu_si512(kp + (size_t)d2 * 32);
        for (int r = 0; r < FUSED_ROWS; r++) {
            __m512bh qb = (__m512bh)_mm512_set1_epi32((int)q2[r][x]);
            a0[r] = _mm512_dpbf16_ps(a0[r], qb, k0);
            a1[r] = _mm512_dpbf16_ps(a1[r], qb, k1);
        }
    }
    fused_store_scores(a0, a1, s, c, valid, bm);
}

/* 2^x for x <= 0 (base-2 scores minus their row max; the caller scales Q by
   log2 e): 2^n by vscalefps, which also takes x far below -126 to 0, times a
   degree-3 fit of 2^r on [-1/2, 1/2], relative error 7.5e-5 (2^-13.7); the
   results are rounded to bf16 (half an ulp is 2^-9), so a longer polynomial
   would only cost the FMA pipes the products need. */
BF16_TARGET static inline __m512 exp2_16(__m512 x)
{
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(5.517167035e-2f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.426111431e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.932609870e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.999280723e-1f));
    return _mm512_scalef_ps(p, n);
}

/* o[r][c0 .. c0 + 16 nv + 8 half) += p2[r] . values: nv full vectors of 16
   channels and, with half, 8 more (a head width of 40 is 2.5 vectors: padding
   it to 48 would waste a sixth of this product). The 8-channel remainders of
   two rows share one 512-bit accumulator (row 2i low, 2i + 1 high), as in the
   f32 kernel: a 256-bit VDPBF16PS costs a whole slot where pipes are 512 bits
   wide. */
BF16_TARGET __attribute__((always_inline)) static inline void
values_tile(float (*o)[FUSED_MAX_WIDTH], const float *corr, const uint32_t (*p2)[FUSED_KEYS / 2],
            const uint16_t *vp, int dp, int kb, int c0, const int nv, const int half)
{
    __m512 acc[FUSED_ROWS][3], acch[FUSED_ROWS / 2];
    const __mmask16 high = 0xff00;
    for (int r = 0; r < FUSED_ROWS; r++) {
        __m512 cr = _mm512_set1_ps(corr[r]);
        for (int u = 0; u < nv; u++)
            acc[r][u] = _mm512_mul_ps(_mm512_load_ps(&o[r][c0 + 16 * u]), cr);
    }
    if (half)
        for (int i = 0; i < FUSED_ROWS / 2; i++) {
            __m512 oh = fused_join_halves(_mm256_load_ps(&o[2 * i][c0 + 16 * nv]),
                                          _mm256_load_ps(&o[2 * i + 1][c0 + 16 * nv]));
            __m512 cr = _mm512_mask_blend_ps(high, _mm512_set1_ps(corr[2 * i]),
                                             _mm512_set1_ps(corr[2 * i + 1]));
            acch[i] = _mm512_mul_ps(oh, cr);
        }
    const uint16_t *vr = vp + (size_t)c0 * 2;
    for (int t2 = 0; t2 < kb / 2; t2++, vr += (size_t)dp * 2) {
        __m512bh v[3];
        __m512i vh = _mm512_setzero_si512();
        for (int u = 0; u < nv; u++)
            v[u] = (__m512bh)_mm512_loadu_si512(vr + 32 * u);
        if (half) /* the remainder's 8 channel pairs in both halves */
            vh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(vr + 32 * nv)));
        for (int i = 0; i < FUSED_ROWS / 2; i++) {
            __m512i p0 = _mm512_set1_epi32((int)p2[2 * i][t2]),
                    p1 = _mm512_set1_epi32((int)p2[2 * i + 1][t2]);
            for (int u = 0; u < nv; u++) {
                acc[2 * i][u] = _mm512_dpbf16_ps(acc[2 * i][u], (__m512bh)p0, v[u]);
                acc[2 * i + 1][u] = _mm512_dpbf16_ps(acc[2 * i + 1][u], (__m512bh)p1, v[u]);
            }
            if (half)
                acch[i] = _mm512_dpbf16_ps(acch[i], (__m512bh)_mm512_mask_blend_epi32(high, p0, p1),
                                           (__m512bh)vh);
        }
    }
    for (int r = 0; r < FUSED_ROWS; r++)
        for (int u = 0; u < nv; u++)
            _mm512_store_ps(&o[r][c0 + 16 * u], acc[r][u]);
    if (half)
        for (int i = 0; i < FUSED_ROWS / 2; i++) {
            _mm256_store_ps(&o[2 * i][c0 + 16 * nv], _mm512_castps512_ps256(acch[i]));
            _mm256_store_ps(&o[2 * i + 1][c0 + 16 * nv], fused_high_half(acch[i]));
        }
}

BF16_TARGET void fused_bf16_block(const uint32_t (*q2)[FUSED_MAX_WIDTH / 2], int d, int d2,
                                  const uint16_t *kt, const uint16_t *vp, int dp, int k0, int kb,
                                  const int *valid, float *m, float *l, float (*o)[FUSED_MAX_WIDTH])
{
    _Alignas(64) float s[FUSED_ROWS][FUSED_KEYS];
    _Alignas(64) uint32_t p2[FUSED_ROWS][FUSED_KEYS / 2];
    float corr[FUSED_ROWS];
    __m512 bm[FUSED_ROWS];
    for (int r = 0; r < FUSED_ROWS; r++)
        bm[r] = _mm512_set1_ps(m[r]);
    for (int c = 0; c < kb; c += 32)
        scores_32(q2, kt, d2, k0 + c, s, c, valid, bm);
    for (int r = 0; r < FUSED_ROWS; r++) {
        if (valid[r] <= 0) { /* nothing to add for this row in this block */
            memset(p2[r], 0, (size_t)kb * sizeof(uint16_t));
            corr[r] = 1.0f;
            continue;
        }
        float mn = _mm512_reduce_max_ps(bm[r]);
        __m512 vmax = _mm512_set1_ps(mn), acc = _mm512_setzero_ps();
        int full = valid[r] / 32 * 32; /* whole vectors of valid keys: no masks */
        for (int c = 0; c < full; c += 32) {
            __m512 e0 = exp2_16(_mm512_sub_ps(_mm512_load_ps(&s[r][c]), vmax));
            __m512 e1 = exp2_16(_mm512_sub_ps(_mm512_load_ps(&s[r][c + 16]), vmax));
            acc = _mm512_add_ps(acc, _mm512_add_ps(e0, e1));
            _mm512_store_si512(&p2[r][c / 2], (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
        }
        for (int c = full; c < kb; c += 32) {
            int left = valid[r] - c;
            __mmask16 ka = first_lanes(left), kb2 = first_lanes(left - 16);
            __m512 e0 =
                _mm512_maskz_mov_ps(ka, exp2_16(_mm512_sub_ps(_mm512_load_ps(&s[r][c]), vmax)));
            __m512 e1 = _mm512_maskz_mov_ps(
                kb2, exp2_16(_mm512_sub_ps(_mm512_load_ps(&s[r][c + 16]), vmax)));
            acc = _mm512_add_ps(acc, _mm512_add_ps(e0, e1));
            _mm512_store_si512(&p2[r][c / 2], (__m512i)_mm512_cvtne2ps_pbh(e1, e0));
        }
        corr[r] = m[r] == -INFINITY ? 0.0f : exp2f(m[r] - mn);
        l[r] = l[r] * corr[r] + _mm512_reduce_add_ps(acc);
        m[r] = mn;
    }
    const uint32_t(*pp)[FUSED_KEYS / 2] = (const uint32_t(*)[FUSED_KEYS / 2]) p2;
    const uint16_t *vb = vp + (size_t)k0 * dp;
    for (int c0 = 0; c0 < d; c0 += 48) {
        int nv, half;
        fused_value_tile(d, c0, &nv, &half);
        if (nv == 3)
            values_tile(o, corr, pp, vb, dp, kb, c0, 3, 0);
        else if (nv == 2)
            half ? values_tile(o, corr, pp, vb, dp, kb, c0, 2, 1)
                 : values_tile(o, corr, pp, vb, dp, kb, c0, 2, 0);
        else if (nv == 1)
            half ? values_tile(o, corr, pp, vb, dp, kb, c0, 1, 1)
                 : values_tile(o, corr, pp, vb, dp, kb, c0, 1, 0);
        else
            values_tile(o, corr, pp, vb, dp, kb, c0, 0, 1);
    }
}

#else

int fused_bf16_available(void)
{
    return 0;
}

void fused_bf16_pack_head(const float *k, const float *v, int kv_stride, int tk, int d, int tkp,
                          int dp, uint16_t *kt, uint16_t *vp)
{
    (void)k, (void)v, (void)kv_stride, (void)tk, (void)d, (void)tkp, (void)dp, (void)kt, (void)vp;
}

void fused_bf16_pack_q(const float (*qs)[FUSED_MAX_WIDTH], uint32_t (*q2)[FUSED_MAX_WIDTH / 2],
                       int d2)
{
    (void)qs, (void)q2, (void)d2;
}

void fused_bf16_block(const uint32_t (*q2)[FUSED_MAX_WIDTH / 2], int d, int d2, const uint16_t *kt,
                      const uint16_t *vp, int dp, int k0, int kb, const int *valid, float *m,
                      float *l, float (*o)[FUSED_MAX_WIDTH])
{
    (void)q2, (void)d, (void)d2, (void)kt, (void)vp, (void)dp, (void)k0, (void)kb, (void)valid;
    (void)m, (void)l, (void)o;
}

#endif
