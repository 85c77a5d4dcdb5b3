/* half_span - f16 <-> f32 spans (F16C, else the portable conversions of half.h). */
#include "compute/half_span.h"

#include <string.h>

#include "compute/bf16_round.h"
#include "compute/half.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static void to_f32_portable(const uint8_t *p, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = gi_f16_to_f32_fast(h);
    }
}

static void to_bf16_portable(const uint8_t *p, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        dst[i] = gi_f32_to_bf16_round(gi_f16_to_f32_fast(h));
    }
}

static void to_f16_portable(const float *src, uint16_t *dst, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dst[i] = gi_f32_to_f16(src[i]);
}

#if defined(__x86_64__) && defined(__GNUC__)
int gi_has_f16c(void)
{
    static int known = -1; /* threads may ask at once: same answer */
    int f16c = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (f16c < 0) {
        __builtin_cpu_init();
        /* CPUID's F16C bit (clang 14's __builtin_cpu_supports lacks the name);
           "avx" also checks that the OS saves the YMM registers */
        unsigned a, b, c, d;
        f16c = __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
        __atomic_store_n(&known, f16c, __ATOMIC_RELAXED);
    }
    return f16c;
}

/* GCC leaves the portable loops scalar in every clone: an f16 checkpoint's
   load spent a third of its time there before this. */
__attribute__((target("avx,f16c"))) static void to_f32_f16c(const uint8_t *p, float *dst, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i))));
    to_f32_portable(p + 2 * i, dst + i, n - i);
}

__attribute__((target("avx,f16c"))) static void to_f16_f16c(const float *src, uint16_t *dst,
                                                            size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    to_f16_portable(src + i, dst + i, n - i);
}

__attribute__((target("avx2,f16c"))) static void to_bf16_avx2(const uint8_t *p, uint16_t *dst,
                                                              size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 2 * i)));
        _mm_storeu_si128((__m128i *)(dst + i), gi_bf16_round8(v));
    }
    to_bf16_portable(p + 2 * i, dst + i, n - i);
}

int gi_has_avx2_f16c(void)
{
    static int known = -1;
    int yes = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (yes < 0) {
        __builtin_cpu_init();
        yes = gi_has_f16c() && __builtin_cpu_supports("avx2");
        __atomic_store_n(&known, yes, __ATOMIC_RELAXED);
    }
    return yes;
}

void gi_f16_to_bf16_span(const void *p, uint16_t *dst, size_t n)
{
    if (gi_has_avx2_f16c())
        to_bf16_avx2(p, dst, n);
    else
        to_bf16_portable(p, dst, n);
}

void gi_f16_to_f32_span(const void *p, float *dst, size_t n)
{
    if (gi_has_f16c())
        to_f32_f16c(p, dst, n);
    else
        to_f32_portable(p, dst, n);
}

void gi_f32_to_f16_span(const float *src, uint16_t *dst, size_t n)
{
    if (gi_has_f16c())
        to_f16_f16c(src, dst, n);
    else
        to_f16_portable(src, dst, n);
}
#else
int gi_has_f16c(void)
{
    return 0;
}

int gi_has_avx2_f16c(void)
{
    return 0;
}

void gi_f16_to_bf16_span(const void *p, uint16_t *dst, size_t n)
{
    to_bf16_portable(p, dst, n);
}

void gi_f16_to_f32_span(const void *p, float *dst, size_t n)
{
    to_f32_portable(p, dst, n);
}

void gi_f32_to_f16_span(const float *src, uint16_t *dst, size_t n)
{
    to_f16_portable(src, dst, n);
}
#endif
