/*
 * conv_winograd_bf16 - Winograd's 16 products for a group of 8 tiles with
 * VDPBF16PS: a register tile of 8 rows x 32 outputs (16 accumulators) runs
 * down the input channels a pair at a time, the filters' pairs in 64 contiguous
 * bytes per step, the tiles' pairs broadcast.
 *
 * Why not oneDNN here: its bf16 GEMMs run the products at the machine's rate,
 * but their f32 output M (16 values per tile and output channel) then streams
 * through memory and back for the output transform: at the VAE's 128-channel
 * 512x512 layers that round trip and the transforms took as long as the GEMMs
 * (bench/RESULTS.md section 11). A group's M is 16 x 8 x cout floats, in L1/L2.
 */
#include "compute/conv_winograd_bf16.h"

#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

int wino_bf16_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}

__attribute__((target("avx512f,avx512bf16"))) void
wino_bf16_group(const uint16_t *v, size_t vplane, int cin, const uint16_t *u, int cout, float *m)
{
    size_t uplane = (size_t)cout * cin;
    for (int p = 0; p < 16; p++) {
        const uint16_t *vp = v + (size_t)p * vplane;
        const uint16_t *rows[WINO_GROUP];
        for (int r = 0; r < WINO_GROUP; r++)
            rows[r] = vp + (size_t)r * cin;
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
                    memcpy(&pair, rows[r] + 2 * c2, sizeof pair);
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

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) void
wino_bf16_input_tile(const float *const src[4][4], int cin, uint16_t *v, size_t vplane)
{
    for (int c0 = 0; c0 < cin; c0 += 16) {
        __mmask16 k = chunk_mask(c0, cin);
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
            __m512 o[4] = {_mm512_sub_ps(s[r][0], s[r][2]), _mm512_add_ps(s[r][1], s[r][2]),
                           _mm512_sub_ps(s[r][2], s[r][1]), _mm512_sub_ps(s[r][1], s[r][3])};
            for (int q = 0; q < 4; q++)
                _mm256_mask_storeu_epi16(v + (size_t)(r * 4 + q) * vplane + c0, k,
                                         (__m256i)_mm512_cvtneps_pbh(o[q]));
        }
    }
}

__attribute__((target("avx512f,avx512bf16"))) void wino_bf16_output_tile(const float *m,
                                                                         size_t mplane, int cout,
                                                                         const float *bias,
                                                                         float *const dst[2][2])
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
            _mm512_mask_storeu_ps(dst[r][0] + o0, k, y0);
            _mm512_mask_storeu_ps(dst[r][1] + o0, k, y1);
        }
    }
}

#else

int wino_bf16_available(void)
{
    return 0;
}

void wino_bf16_group(const uint16_t *v, size_t vplane, int cin, const uint16_t *u, int cout,
                     float *m)
{
    (void)v, (void)vplane, (void)cin, (void)u, (void)cout, (void)m;
}

void wino_bf16_input_tile(const float *const src[4][4], int cin, uint16_t *v, size_t vplane)
{
    (void)src, (void)cin, (void)v, (void)vplane;
}

void wino_bf16_output_tile(const float *m, size_t mplane, int cout, const float *bias,
                           float *const dst[2][2])
{
    (void)m, (void)mplane, (void)cout, (void)bias, (void)dst;
}

#endif
