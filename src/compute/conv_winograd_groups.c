/*
 * conv_winograd_groups - Winograd's 16 products for a group of 8 tiles: a
 * register tile of 8 rows x 32 outputs (16 accumulators) runs down the input
 * channels, the filters' row for the step in 128 contiguous bytes, the tiles'
 * values broadcast. f32 takes one channel per FMA step; bf16 a channel pair
 * per VDPBF16PS.
 *
 * Why not oneDNN here: its GEMMs run the products at the machine's rate, but
 * their output M (16 values per tile and output channel, f32) then streams
 * through memory and back for the output transform, as V does between the
 * input transform and the GEMMs: at the VAE's 128-channel 512x512 layers those
 * round trips and the transforms took as long as the GEMMs (bench/RESULTS.md
 * section 11). A group's V and M are 16 x 8 x channels values, in L1/L2.
 */
#include "compute/conv_winograd_groups.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define F32_TARGET __attribute__((target("avx512f")))
#define BF16_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

int wino_f32_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

int wino_bf16_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

F32_TARGET void wino_f32_group(const float *v, size_t vplane, int cin, const float *u, int cout,
                               float *m)
{
    size_t uplane = (size_t)cout * cin;
    for (int p = 0; p < 16; p++) {
        const float *vp = v + (size_t)p * vplane;
        for (int o0 = 0; o0 < cout; o0 += 32) {
            const float *up = u + (size_t)p * uplane + (size_t)(o0 / 32) * cin * 32;
            __m512 a0[WINO_GROUP], a1[WINO_GROUP];
            for (int r = 0; r < WINO_GROUP; r++)
                a0[r] = a1[r] = _mm512_setzero_ps();
            for (int c = 0; c < cin; c++, up += 32) {
                __m512 u0 = _mm512_loadu_ps(up), u1 = _mm512_loadu_ps(up + 16);
                for (int r = 0; r < WINO_GROUP; r++) {
                    __m512 vb = _mm512_set1_ps(vp[(size_t)r * cin + c]);
                    a0[r] = _mm512_fmadd_ps(vb, u0, a0[r]);
                    a1[r] = _mm512_fmadd_ps(vb, u1, a1[r]);
                }
            }
            float *mp = m + (size_t)p * WINO_GROUP * cout + o0;
            for (int r = 0; r < WINO_GROUP; r++) {
                _mm512_storeu_ps(mp + (size_t)r * cout, a0[r]);
                _mm512_storeu_ps(mp + (size_t)r * cout + 16, a1[r]);
            }
        }
    }
}

BF16_TARGET void wino_bf16_group(const uint16_t *v, size_t vplane, int cin, const uint16_t *u,
                                 int cout, float *m)
{
    size_t uplane = (size_t)cout * cin;
    for (int p = 0; p < 16; p++) {
        const uint16_t *vp = v + (size_t)p * vplane;
        for (int o0 = 0; o0 < cout; o0 += 32) {
            const uint16_t *up = u + (size_t)p * uplane + (size_t)(o0 / 32) * (cin / 2) * 64;
            __m512 a0[WINO_GROUP], a1[WINO_GROUP];
            for (int r = 0; r < WINO_GROUP; r++)
                a0[r] = a1[r] = _mm512_setzero_ps();
            for (int c2 = 0; c2 < cin / 2; c2++, up += 64) {
                __m512bh u0 = (__m512bh)_mm512_loadu_si512(up);
                __m512bh u1 = (__m512bh)_mm512_loadu_si512(up + 32);
                for (int r = 0; r < WINO_GROUP; r++) {
                    int pair; /* channels 2 c2 and 2 c2 + 1 of row r */
                    memcpy(&pair, vp + (size_t)r * cin + 2 * c2, sizeof pair);
                    __m512bh vb = (__m512bh)_mm512_set1_epi32(pair);
                    a0[r] = _mm512_dpbf16_ps(a0[r], vb, u0);
                    a1[r] = _mm512_dpbf16_ps(a1[r], vb, u1);
                }
            }
            float *mp = m + (size_t)p * WINO_GROUP * cout + o0;
            for (int r = 0; r < WINO_GROUP; r++) {
                _mm512_storeu_ps(mp + (size_t)r * cout, a0[r]);
                _mm512_storeu_ps(mp + (size_t)r * cout + 16, a1[r]);
            }
        }
    }
}

/* lanes of the 16-channel chunk at c0 that exist */
static inline __mmask16 chunk_mask(int c0, int n)
{
    return n - c0 >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - c0)) - 1);
}

/* (B^T d B) of the 16-channel chunk at c0 into o[16] */
F32_TARGET __attribute__((always_inline)) static inline void
input_chunk(const float *const src[4][4], int c0, __mmask16 k, __m512 o[16])
{
    __m512 d[4][4], s[4][4];
    for (int r = 0; r < 4; r++)
        for (int q = 0; q < 4; q++)
            d[r][q] = _mm512_maskz_loadu_ps(k, src[r][q] + c0);
    for (int q = 0; q < 4; q++) { /* B^T d */
        s[0][q] = _mm512_sub_ps(d[0][q], d[2][q]);
        s[1][q] = _mm512_add_ps(d[1][q], d[2][q]);
        s[2][q] = _mm512_sub_ps(d[2][q], d[1][q]);
        s[3][q] = _mm512_sub_ps(d[1][q], d[3][q]);
    }
    for (int r = 0; r < 4; r++) { /* (B^T d) B */
        o[r * 4 + 0] = _mm512_sub_ps(s[r][0], s[r][2]);
        o[r * 4 + 1] = _mm512_add_ps(s[r][1], s[r][2]);
        o[r * 4 + 2] = _mm512_sub_ps(s[r][2], s[r][1]);
        o[r * 4 + 3] = _mm512_sub_ps(s[r][1], s[r][3]);
    }
}

F32_TARGET void wino_f32_input_tile(const float *const src[4][4], int cin, float *v, size_t vplane)
{
    for (int c0 = 0; c0 < cin; c0 += 16) {
        __mmask16 k = chunk_mask(c0, cin);
        __m512 o[16];
        input_chunk(src, c0, k, o);
        for (int p = 0; p < 16; p++)
            _mm512_mask_storeu_ps(v + (size_t)p * vplane + c0, k, o[p]);
    }
}

BF16_TARGET void wino_bf16_input_tile(const float *const src[4][4], int cin, uint16_t *v,
                                      size_t vplane)
{
    for (int c0 = 0; c0 < cin; c0 += 16) {
        __mmask16 k = chunk_mask(c0, cin);
        __m512 o[16];
        input_chunk(src, c0, k, o);
        for (int p = 0; p < 16; p++)
            _mm256_mask_storeu_epi16(v + (size_t)p * vplane + c0, k,
                                     (__m256i)_mm512_cvtneps_pbh(o[p]));
    }
}

F32_TARGET void wino_output_tile(const float *m, size_t mplane, int cout, const float *bias,
                                 int accumulate, float *const dst[2][2])
{
    for (int o0 = 0; o0 < cout; o0 += 16) {
        __mmask16 k = chunk_mask(o0, cout);
        __m512 mm[16], s[2][4];
        for (int p = 0; p < 16; p++)
            mm[p] = _mm512_maskz_loadu_ps(k, m + (size_t)p * mplane + o0);
        for (int q = 0; q < 4; q++) { /* A^T M */
            s[0][q] = _mm512_add_ps(_mm512_add_ps(mm[q], mm[4 + q]), mm[8 + q]);
            s[1][q] = _mm512_sub_ps(_mm512_sub_ps(mm[4 + q], mm[8 + q]), mm[12 + q]);
        }
        __m512 b = bias ? _mm512_maskz_loadu_ps(k, bias + o0) : _mm512_setzero_ps();
        for (int r = 0; r < 2; r++) { /* (A^T M) A + bias */
            __m512 y0 = _mm512_add_ps(_mm512_add_ps(s[r][0], s[r][1]), _mm512_add_ps(s[r][2], b));
            __m512 y1 = _mm512_sub_ps(_mm512_sub_ps(s[r][1], s[r][2]), _mm512_sub_ps(s[r][3], b));
            if (accumulate) { /* the residual first, as the unfused add has it */
                y0 = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dst[r][0] + o0), y0);
                y1 = _mm512_add_ps(_mm512_maskz_loadu_ps(k, dst[r][1] + o0), y1);
            }
            _mm512_mask_storeu_ps(dst[r][0] + o0, k, y0);
            _mm512_mask_storeu_ps(dst[r][1] + o0, k, y1);
        }
    }
}

#else

int wino_f32_available(void)
{
    return 0;
}

int wino_bf16_available(void)
{
    return 0;
}

void wino_f32_group(const float *v, size_t vplane, int cin, const float *u, int cout, float *m)
{
    (void)v, (void)vplane, (void)cin, (void)u, (void)cout, (void)m;
}

void wino_bf16_group(const uint16_t *v, size_t vplane, int cin, const uint16_t *u, int cout,
                     float *m)
{
    (void)v, (void)vplane, (void)cin, (void)u, (void)cout, (void)m;
}

void wino_f32_input_tile(const float *const src[4][4], int cin, float *v, size_t vplane)
{
    (void)src, (void)cin, (void)v, (void)vplane;
}

void wino_bf16_input_tile(const float *const src[4][4], int cin, uint16_t *v, size_t vplane)
{
    (void)src, (void)cin, (void)v, (void)vplane;
}

void wino_output_tile(const float *m, size_t mplane, int cout, const float *bias, int accumulate,
                      float *const dst[2][2])
{
    (void)m, (void)mplane, (void)cout, (void)bias, (void)accumulate, (void)dst;
}

#endif
