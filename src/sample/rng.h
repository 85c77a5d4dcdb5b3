/*
 * rng - torch's CPU random generator, reproduced so that a seed gives the same
 * noise as `torch.Generator().manual_seed(seed)` followed by `torch.randn`.
 *
 * Design: mt19937 seeded with the low 32 bits of the seed. rng_randn follows
 * torch's two code paths for a float tensor: 16 or more elements take the
 * vectorised path (one 24-bit uniform per element, Box-Muller over blocks of
 * 16, the tail block redrawn), smaller tensors the scalar path (two 53-bit
 * uniforms per pair, the second normal kept in the generator for the next
 * scalar draw). The vectorised path evaluates log/sin/cos with the same
 * single-precision polynomial scheme as torch's AVX2 build, so the draws are
 * bit-identical to it rather than merely within an ulp.
 *
 * The generator is a plain struct with no heap: copy it to fork a stream.
 */
#ifndef GS_RNG_H
#define GS_RNG_H

#include <stddef.h>
#include <stdint.h>

#define GS_RNG_MT_N 624

typedef struct gi_rng {
    uint32_t mt[GS_RNG_MT_N]; /* mt19937 state */
    int mti;                  /* next word of mt to hand out; GS_RNG_MT_N = regenerate */
    int has_normal;           /* the scalar path cached its second value */
    double next_normal;       /* that cached value */
} gi_rng;

/* Same state as torch.Generator().manual_seed(seed): only the low 32 bits count. */
void rng_seed(gi_rng *r, uint64_t seed);

/* One torch.randn of a contiguous float tensor with n elements (mean 0, std 1). */
void rng_randn(gi_rng *r, float *out, size_t n);

/* The raw streams, for tests and other distributions. */
uint32_t rng_u32(gi_rng *r);
uint64_t rng_u64(gi_rng *r); /* first 32-bit word high, second low, as torch's random64 */

#endif
