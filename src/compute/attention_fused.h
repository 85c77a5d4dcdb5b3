/*
 * attention_fused - one-pass attention (scores, online softmax and the
 * weighted sum of values per block of query rows, nothing of the score matrix
 * in memory) for CPUs with AVX-512. Same contract as op_attention.
 */
#ifndef GS_ATTENTION_FUSED_H
#define GS_ATTENTION_FUSED_H

#include <stddef.h>

#include "compute/threadpool.h"

/* Whether this CPU can run it at all, whether it can take bf16 (its products
   in bf16 with f32 sums, for bf16 engines: AVX512_BF16), and whether it
   handles head width d. */
int attention_fused_available(void);
int attention_fused_bf16_available(void);
int attention_fused_handles(int d);
/* Floats of scratch (64-byte aligned) a call needs for keys and values repacked. */
size_t attention_fused_scratch_floats(int n, int tk, int heads, int d);
void attention_fused(threadpool *tp, const float *q, int q_stride, const float *k, const float *v,
                     int kv_stride, int n, int tq, int tk, int heads, int d, int causal, int bf16,
                     float *out, float *scratch);

#endif
