/*
 * half_span - f16 <-> f32 over runs of values, with F16C where the CPU has it.
 *
 * Loads of f16 checkpoints and the products on f16 weights (widened a panel at
 * a time) both convert hundreds of millions of values: one instruction per
 * eight values instead of the scalar bit arithmetic of half.h, same results.
 */
#ifndef GS_HALF_SPAN_H
#define GS_HALF_SPAN_H

#include <stddef.h>
#include <stdint.h>

/* n IEEE binary16 values at p (any alignment) -> f32. Exact, subnormals included. */
void gi_f16_to_f32_span(const void *p, float *dst, size_t n);

/* f32 -> binary16, round to nearest even (overflow to inf, subnormals kept);
   the same bits as gi_f32_to_f16 for every non-NaN input. */
void gi_f32_to_f16_span(const float *src, uint16_t *dst, size_t n);

/* n binary16 values at p -> bf16, through f32 with f32_to_bf16's rounding
   (the same bits as converting to f32 and rounding), in one pass. */
void gi_f16_to_bf16_span(const void *p, uint16_t *dst, size_t n);

/* Whether the F16C paths run (tests compare them with the scalar ones). */
int gi_has_f16c(void);

/* Whether AVX2 and F16C both run (the 8-wide f16/bf16 kernels the loader uses). */
int gi_has_avx2_f16c(void);

#endif
