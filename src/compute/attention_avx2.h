/*
 * attention_avx2 - one-pass attention for CPUs with AVX2 and FMA but no
 * AVX-512 (scores, online softmax and the weighted sum of values per group of
 * query rows; nothing of the score matrix leaves the cache). Same contract as
 * op_attention, f32 throughout.
 */
#ifndef GS_ATTENTION_AVX2_H
#define GS_ATTENTION_AVX2_H

#include <stddef.h>

#include "compute/threadpool.h"

int attention_avx2_available(void);
int attention_avx2_handles(int d);
/* Floats of scratch (32-byte aligned) a call needs for keys and values repacked. */
size_t attention_avx2_scratch_floats(int n, int tk, int heads, int d);
void attention_avx2(threadpool *tp, const float *q, int q_stride, const float *k, const float *v,
                    int kv_stride, int n, int tq, int tk, int heads, int d, int causal, float *out,
                    float *scratch);

#endif
