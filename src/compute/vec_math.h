/*
 * vec_math - branch-free float math that compilers vectorize.
 *
 * gi_expf: Cephes' expf polynomial with round-to-nearest by the 1.5*2^23
 * trick, so a loop over it becomes SIMD code on any ISA (libm's expf is a
 * call per element). Relative error about 2 ulp over the clamped range.
 * GS_VEC_CLONES builds a function for AVX-512, AVX2 and baseline x86-64 and
 * picks one at load time, so the default generic build still runs at full
 * width on machines that have it.
 */
#ifndef GS_VEC_MATH_H
#define GS_VEC_MATH_H

#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define GS_VEC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GS_VEC_CLONES
#endif

static inline float gi_expf(float x)
{
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.7f ? 88.7f : x;
    float t = x * 1.44269504088896341f;
    float n = (t + 12582912.0f) - 12582912.0f; /* round to nearest */
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, 4);
    return p * scale;
}

/* erfc(a) for a >= 0 as t * exp(-a^2 + P(t)), t = 1 / (1 + a/2): the Chebyshev
   fit in Numerical Recipes (fractional error below 1.2e-7 for every a), here
   with gi_expf so loops over it vectorize. */
static inline float gi_erfc_nonneg(float a)
{
    float t = 1.0f / (1.0f + 0.5f * a);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    return t * gi_expf(p - a * a);
}

/* Exact (erf) GELU, x * (1 + erf(x / sqrt 2)) / 2, with 1 + erf taken as
   erfc(-x/sqrt 2) or 2 - erfc(x/sqrt 2): a small relative error over the whole
   range, including the far negative side where 1 + erf underflows. */
static inline float gi_gelu(float x)
{
    float a = x * 0.70710678118654752f;
    float c = gi_erfc_nonneg(a < 0 ? -a : a);
    return 0.5f * x * (a < 0 ? c : 2.0f - c);
}

static inline float gi_silu(float x)
{
    return x / (1.0f + gi_expf(-x));
}

#endif
