/* conv_order - [cin][k][k] -> [k][k][cin] for one output channel. */
#include "model/conv_order.h"

#include "compute/bf16_round.h"
#include "compute/half.h"
#include "compute/half_span.h"

enum { OUT_F32, OUT_BF16, OUT_F16 };

__attribute__((always_inline)) static inline void store1(void *dst, size_t at, float v, int out)
{
    if (out == OUT_F32)
        ((float *)dst)[at] = v;
    else if (out == OUT_BF16)
        ((uint16_t *)dst)[at] = gi_f32_to_bf16_round(v);
    else
        ((uint16_t *)dst)[at] = gi_f32_to_f16(v);
}

/* a kernel position at a time: each pass writes one run, reads one stride */
__attribute__((always_inline)) static inline void order_scalar(const float *src, void *dst, int cin,
                                                               int kk, int out)
{
    for (int p = 0; p < kk; p++)
        for (int i = 0; i < cin; i++)
            store1(dst, (size_t)p * cin + i, src[(size_t)i * kk + p], out);
}

void wl_conv_row_order_scalar(const float *src, float *dst, int cin, int kk)
{
    order_scalar(src, dst, cin, kk, OUT_F32);
}

void wl_conv_row_order_bf16_scalar(const float *src, uint16_t *dst, int cin, int kk)
{
    order_scalar(src, dst, cin, kk, OUT_BF16);
}

void wl_conv_row_order_f16_scalar(const float *src, uint16_t *dst, int cin, int kk)
{
    order_scalar(src, dst, cin, kk, OUT_F16);
}

#if defined(__x86_64__) && defined(__GNUC__)
/* 8 channels' rows of 8 positions (s, s + stride, ...) -> per position p, the
   8 channels' values in c[p]. */
__attribute__((target("avx"), always_inline)) static inline void
transpose_8x8(const float *s, size_t stride, __m256 c[8])
{
    __m256 r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        r[i] = _mm256_loadu_ps(s + i * stride);
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);     /* positions 0,1 | 4,5 of rows i, i+1 */
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]); /* 2,3 | 6,7 */
    }
    for (int q = 0; q < 8; q += 4) { /* one position of four rows in each 128-bit half */
        u[q] = _mm256_shuffle_ps(t[q], t[q + 2], 0x44);
        u[q + 1] = _mm256_shuffle_ps(t[q], t[q + 2], 0xee);
        u[q + 2] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0x44);
        u[q + 3] = _mm256_shuffle_ps(t[q + 1], t[q + 3], 0xee);
    }
    for (int p = 0; p < 4; p++) {
        c[p] = _mm256_permute2f128_ps(u[p], u[p + 4], 0x20);
        c[p + 4] = _mm256_permute2f128_ps(u[p], u[p + 4], 0x31);
    }
}

__attribute__((target("avx2,f16c"), always_inline)) static inline void store8(void *dst, size_t at,
                                                                              __m256 v, int out)
{
    if (out == OUT_F32)
        _mm256_storeu_ps((float *)dst + at, v);
    else if (out == OUT_BF16)
        _mm_storeu_si128((__m128i *)((uint16_t *)dst + at), gi_bf16_round8(v));
    else
        _mm_storeu_si128((__m128i *)((uint16_t *)dst + at),
                         _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}

/* out is a constant in each caller: the compiler keeps one store kind per loop */
__attribute__((target("avx2,f16c"), always_inline)) static inline void
order_simd(const float *src, void *dst, int cin, int kk, int out)
{
    int i0 = 0;
    for (; i0 + 8 <= cin; i0 += 8) {
        const float *s = src + (size_t)i0 * kk;
        int p = 0;
        for (; p + 8 <= kk; p += 8) {
            __m256 c[8];
            transpose_8x8(s + p, (size_t)kk, c);
            for (int q = 0; q < 8; q++)
                store8(dst, (size_t)(p + q) * cin + i0, c[q], out);
        }
        for (; p < kk; p++)
            for (int i = 0; i < 8; i++)
                store1(dst, (size_t)p * cin + i0 + i, s[(size_t)i * kk + p], out);
    }
    for (int p = 0; p < kk; p++)
        for (int i = i0; i < cin; i++)
            store1(dst, (size_t)p * cin + i, src[(size_t)i * kk + p], out);
}

__attribute__((target("avx2,f16c"))) static void order_f32(const float *src, float *dst, int cin,
                                                           int kk)
{
    order_simd(src, dst, cin, kk, OUT_F32);
}

__attribute__((target("avx2,f16c"))) static void order_bf16(const float *src, uint16_t *dst,
                                                            int cin, int kk)
{
    order_simd(src, dst, cin, kk, OUT_BF16);
}

__attribute__((target("avx2,f16c"))) static void order_f16(const float *src, uint16_t *dst, int cin,
                                                           int kk)
{
    order_simd(src, dst, cin, kk, OUT_F16);
}

static int simd(int kk)
{
    return kk >= 8 && gi_has_avx2_f16c();
}

void wl_conv_row_order(const float *src, float *dst, int cin, int kk)
{
    if (simd(kk))
        order_f32(src, dst, cin, kk);
    else
        wl_conv_row_order_scalar(src, dst, cin, kk);
}

void wl_conv_row_order_bf16(const float *src, uint16_t *dst, int cin, int kk)
{
    if (simd(kk))
        order_bf16(src, dst, cin, kk);
    else
        wl_conv_row_order_bf16_scalar(src, dst, cin, kk);
}

void wl_conv_row_order_f16(const float *src, uint16_t *dst, int cin, int kk)
{
    if (simd(kk))
        order_f16(src, dst, cin, kk);
    else
        wl_conv_row_order_f16_scalar(src, dst, cin, kk);
}
#else
void wl_conv_row_order(const float *src, float *dst, int cin, int kk)
{
    wl_conv_row_order_scalar(src, dst, cin, kk);
}

void wl_conv_row_order_bf16(const float *src, uint16_t *dst, int cin, int kk)
{
    wl_conv_row_order_bf16_scalar(src, dst, cin, kk);
}

void wl_conv_row_order_f16(const float *src, uint16_t *dst, int cin, int kk)
{
    wl_conv_row_order_f16_scalar(src, dst, cin, kk);
}
#endif
