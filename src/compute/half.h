/* half - scalar f16 / bf16 <-> f32 conversions (IEEE binary16, bfloat16). */
#ifndef GS_HALF_H
#define GS_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float gi_bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t gi_f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float gi_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0) {
        /* zero or subnormal: value = man * 2^-24, exact in f32 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    if (exp == 31)
        return gi_bits_to_f32(sign | 0x7f800000u | (man << 13));
    return gi_bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* Round to nearest even; NaN stays NaN. */
static inline uint16_t gi_f32_to_f16(float f)
{
    uint32_t x = gi_f32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float v = gi_bits_to_f32(ax) * 16777216.0f; /* scale by 2^24 */
        uint32_t m = (uint32_t)rintf(v);            /* default rounding: to nearest even */
        return (uint16_t)(sign | m);
    }
    uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u);
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

static inline float gi_bf16_to_f32(uint16_t h)
{
    return gi_bits_to_f32((uint32_t)h << 16);
}

/* Round to nearest even on the bits, NaNs included (f32_to_bf16's rule: the
   bulk conversions, which vectorize it; no NaN reaches them from a model). */
static inline uint16_t gi_f32_to_bf16_round(float f)
{
    uint32_t x = gi_f32_to_bits(f);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

static inline uint16_t gi_f32_to_bf16(float f)
{
    uint32_t x = gi_f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

#endif

/* Branch-free f16 -> f32 (subnormals via one multiply, inf/NaN by a blend), for
   loops the compiler vectorises. Same results as gi_f16_to_f32. */
static inline float gi_f16_to_f32_fast(uint16_t h)
{
    uint32_t em = h & 0x7fffu;
    float f = gi_bits_to_f32(em << 13) * 0x1p112f;
    uint32_t b = gi_f32_to_bits(f);
    b |= em >= 0x7c00u ? 0x7f800000u : 0u;
    b |= (uint32_t)(h & 0x8000u) << 16;
    return gi_bits_to_f32(b);
}
