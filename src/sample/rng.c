/*
 * rng - mt19937 plus torch's normal-distribution paths (see rng.h).
 *
 * The single-precision log and sincos below follow the Cephes-derived scheme
 * torch's AVX2 kernels use (range reduction, then fixed polynomials, every
 * operation rounded to float in the same order). torch's build lets the
 * compiler fuse multiply-adds there, so the same pairs are written as fmaf()
 * here: with exactly those fusions the 100,500 golden draws match bit for bit
 * (a correctly rounded libm would miss about 1% of them by an ulp). The rest
 * of the file must not be contracted further; the build uses ISO C, where GCC
 * keeps a*b+c as two roundings.
 */
#include "sample/rng.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

#include <math.h>
#include <string.h>

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- mt19937 ---- */

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

void rng_seed(gi_rng *r, uint64_t seed)
{
    r->mt[0] = (uint32_t)(seed & 0xffffffffu);
    for (int i = 1; i < GS_RNG_MT_N; i++) {
        uint32_t prev = r->mt[i - 1];
        r->mt[i] = 1812433253u * (prev ^ (prev >> 30)) + (uint32_t)i;
    }
    r->mti = GS_RNG_MT_N;
    r->has_normal = 0;
    r->next_normal = 0.0;
}

static void mt_regenerate(gi_rng *r)
{
    for (int i = 0; i < GS_RNG_MT_N; i++) {
        uint32_t y = (r->mt[i] & MT_UPPER) | (r->mt[(i + 1) % GS_RNG_MT_N] & MT_LOWER);
        r->mt[i] = r->mt[(i + MT_M) % GS_RNG_MT_N] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX_A : 0u);
    }
    r->mti = 0;
}

uint32_t rng_u32(gi_rng *r)
{
    if (r->mti >= GS_RNG_MT_N)
        mt_regenerate(r);
    uint32_t y = r->mt[r->mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t rng_u64(gi_rng *r)
{
    uint64_t hi = rng_u32(r);
    uint64_t lo = rng_u32(r);
    return (hi << 32) | lo;
}

/* [0,1) with 24 random bits: torch's uniform_real_distribution<float>. */
static float uniform24(gi_rng *r)
{
    return (float)(rng_u32(r) & 0xffffffu) * (1.0f / 16777216.0f);
}

/* [0,1) with 53 random bits: torch's uniform_real_distribution<double>. */
static double uniform53(gi_rng *r)
{
    return (double)(rng_u64(r) & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

/* ---- single-precision log and sincos, torch AVX2 order of operations ---- */

/* Natural log for x > 0 (x here is in (0,1]); NaN for x <= 0. */
static float ps_log(float x)
{
    if (!(x > 0.0f))
        return NAN;
    if (x < 1.17549435e-38f) /* torch flushes subnormals to the smallest normal */
        x = 1.17549435e-38f;
    uint32_t bits = f32_bits(x);
    float e = (float)((int32_t)(bits >> 23) - 127) + 1.0f;
    float m = bits_f32((bits & ~0x7f800000u) | 0x3f000000u); /* mantissa in [0.5,1) */
    float tmp = 0.0f;
    if (m < (float)0.707106781186547524) {
        tmp = m;
        e = e - 1.0f;
    }
    m = m - 1.0f;
    m = m + tmp;
    float z = m * m;
    static const float p[9] = {
        (float)7.0376836292E-2,  (float)-1.1514610310E-1, (float)1.1676998740E-1,
        (float)-1.2420140846E-1, (float)1.4249322787E-1,  (float)-1.6668057665E-1,
        (float)2.0000714765E-1,  (float)-2.4999993993E-1, (float)3.3333331174E-1,
    };
    float y = p[0];
    for (int i = 1; i < 9; i++) {
        y = fmaf(y, m, p[i]);
    }
    y = y * m;
    y = fmaf(y, z, e * (float)-2.12194440e-4);
    y = fmaf(-z, 0.5f, y);
    m = m + y;
    return fmaf(e, 0.693359375f, m);
}

/* sin and cos of x (|x| well below 8192), Cephes reduction by pi/4. */
static void ps_sincos(float x, float *s, float *c)
{
    uint32_t sign_sin = f32_bits(x) & 0x80000000u;
    x = fabsf(x);
    int32_t j = (int32_t)(x * (float)1.27323954473516); /* truncation, as cvttps */
    j = (j + 1) & ~1;
    float y = (float)j;
    sign_sin ^= (uint32_t)(j & 4) << 29;
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    int poly_cos_first = (j & 2) == 0;

    /* extended-precision x - j*pi/4 in three parts */
    x = fmaf(y, -0.78515625f, x);
    x = fmaf(y, -2.4187564849853515625e-4f, x);
    x = fmaf(y, (float)-3.77489497744594108e-8, x);

    float z = x * x;
    float yc = (float)2.443315711809948E-005;
    yc = fmaf(yc, z, (float)-1.388731625493765E-003);
    yc = fmaf(yc, z, (float)4.166664568298827E-002);
    yc = yc * z;
    yc = fmaf(yc, z, -(z * 0.5f));
    yc = yc + 1.0f;

    float ys = (float)-1.9515295891E-4;
    ys = fmaf(ys, z, (float)8.3321608736E-3);
    ys = fmaf(ys, z, (float)-1.6666654611E-1);
    ys = ys * z;
    ys = fmaf(ys, x, x);

    /* adding +0 mirrors the masked blend (it turns -0 into +0) */
    float sv = poly_cos_first ? ys + 0.0f : yc + 0.0f;
    float cv = poly_cos_first ? yc + 0.0f : ys + 0.0f;
    *s = bits_f32(f32_bits(sv) ^ sign_sin);
    *c = bits_f32(f32_bits(cv) ^ sign_cos);
}

/* ---- normal draws ---- */

/* Box-Muller in place over 16 uniforms: element j pairs with j+8. */
static void normal_block16(float *data /* [16] */)
{
    const float two_pi = (float)(2.0 * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - data[j]; /* [0,1) -> (0,1] for the log */
        float u2 = data[j + 8];
        float radius = sqrtf(-2.0f * ps_log(u1));
        float theta = two_pi * u2;
        float s, c;
        ps_sincos(theta, &s, &c);
        data[j] = radius * c + 0.0f;
        data[j + 8] = radius * s + 0.0f;
    }
}

/* torch's scalar path: one value, the pair's second kept for the next call. */
static double normal_scalar(gi_rng *r)
{
    if (r->has_normal) {
        r->has_normal = 0;
        return r->next_normal;
    }
    double u1 = uniform53(r);
    double u2 = uniform53(r);
    double radius = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    r->next_normal = radius * sin(theta);
    r->has_normal = 1;
    return radius * cos(theta);
}

void rng_randn(gi_rng *r, float *out, size_t n)
{
    if (n < 16) {
        for (size_t i = 0; i < n; i++)
            out[i] = (float)normal_scalar(r);
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = uniform24(r);
    for (size_t i = 0; i + 16 <= n; i += 16)
        normal_block16(out + i);
    if (n % 16 != 0) {
        /* torch redraws the last 16 values, overwriting part of the last full block */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++)
            tail[i] = uniform24(r);
        normal_block16(tail);
    }
}
