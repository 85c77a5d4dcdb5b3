/*
 * gemm_bf16 - C[M,N] (f32) = A[M,K] (bf16) * op(B) (bf16) (+ C), on oneDNN's
 * matmul primitive (f32 accumulation); and the f32 matmul with a bias input
 * (gemm_f32_bias), which shares its primitive cache. oneDNN 2.x has no bf16 GEMM function, so
 * primitives are created per shape and cached in the compute context; an SD
 * step uses a few dozen shapes, all created during the first step. CPUs without
 * a bf16 matmul in oneDNN (AVX2) widen to f32 instead (gemm_bf16_native).
 */
#ifndef GS_GEMM_BF16_H
#define GS_GEMM_BF16_H

#include <stdint.h>

#include "common/error.h"

typedef struct gemm_bf16_cache gemm_bf16_cache;

gs_status gemm_bf16_cache_create(gemm_bf16_cache **out, gi_error *err);
void gemm_bf16_cache_free(gemm_bf16_cache *c);

/* beta is 0 (overwrite C) or 1 (accumulate onto C). B is [N, K] (trans_b = 1, the
   layout of stored weights) or [K, N] (trans_b = 0), row stride ldb. */
gs_status gemm_bf16(gemm_bf16_cache *c, int M, int N, int K, const uint16_t *A, int lda,
                    const uint16_t *B, int ldb, int trans_b, float beta, float *C, int ldc,
                    gi_error *err);

/* C[M,N] = A[M,K] * B[N,K]^T + bias (per column; NULL for none) (+ C when beta
   is 1): a layer's bias (and a residual already in C) added as the products are
   stored, instead of written into C first for the matmul to read back. */
gs_status gemm_bf16_bias(gemm_bf16_cache *c, int M, int N, int K, const uint16_t *A, int lda,
                         const uint16_t *B, int ldb, const float *bias, float beta, float *C,
                         int ldc, gi_error *err);

/* gemm_bf16_bias with B packed (gemm_pack.h; ldb is K). */
gs_status gemm_bf16_bias_packed(gemm_bf16_cache *c, int M, int N, int K, const uint16_t *A, int lda,
                                const uint16_t *B, const float *bias, float beta, float *C, int ldc,
                                gi_error *err);

/* Whether oneDNN's bf16 (f32 = 0) or f32 matmul on this CPU multiplies from
   gemm_pack's layout: what the weight loader packs for. Found once per process. */
int gemm_packs(int f32);

/* The same in f32 (A and B f32), on oneDNN's f32 matmul. */
gs_status gemm_f32_bias(gemm_bf16_cache *c, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, const float *bias, float beta, float *C, int ldc,
                        gi_error *err);

/* gemm_f32_bias with B packed. */
gs_status gemm_f32_bias_packed(gemm_bf16_cache *c, int M, int N, int K, const float *A, int lda,
                               const float *B, const float *bias, float beta, float *C, int ldc,
                               gi_error *err);

/* C[M,N] (f32) = A[M,K] (f32) * B[N,K]^T (bf16 weights) (+ bias) (+ C): the weights
   widened to f32 a panel at a time, the f32 GEMM. For CPUs without bf16
   matmuls, where rounding the activations to bf16 would cost time and
   precision for nothing. */
gs_status gemm_bf16_weights(gemm_bf16_cache *c, int M, int N, int K, const float *A, int lda,
                            const uint16_t *B, int ldb, const float *bias, float beta, float *C,
                            int ldc, gi_error *err);

/* The same with IEEE f16 weights (as half-precision checkpoints ship them):
   three more bits of mantissa than bf16 for the same memory, widened on any
   CPU (F16C where present). */
gs_status gemm_f16_weights(gemm_bf16_cache *c, int M, int N, int K, const float *A, int lda,
                           const uint16_t *B, int ldb, const float *bias, float beta, float *C,
                           int ldc, gi_error *err);

/* Whether oneDNN runs bf16 matmuls on this CPU. Elsewhere gemm_bf16 widens the
   operands to f32 a panel at a time (exact) and runs the f32 GEMM: the same
   answer up to the order of the sums, f32's speed less the widening; and
   layers with bf16 weights call gemm_bf16_weights instead, their activations
   kept f32: bf16's memory for the weights, and of bf16's error only the
   weights' rounding (rounding the activations is most of it: bench/RESULTS.md
   section 27). */
int gemm_bf16_native(const gemm_bf16_cache *c);

/* Takes the widening path even where oneDNN could run bf16 (tests). */
void gemm_bf16_force_widening(gemm_bf16_cache *c);

/* Makes gemm_bf16_native answer yes on a widening CPU, so that callers round
   their activations to bf16 as for a native matmul: a bf16 CPU's numerics,
   reproduced exactly up to the order of the sums (tests). */
void gemm_bf16_emulate_native(gemm_bf16_cache *c);

/* Whether bf16 matmuls are known to outrun f32 ones on this CPU (the automatic
   precision's choice). */
int gemm_bf16_preferred(void);

/* f32 -> bf16, round to nearest even. */
void f32_to_bf16(const float *x, uint16_t *y, long n);

#endif
