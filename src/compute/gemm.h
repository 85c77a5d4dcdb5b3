/*
 * gemm - the one matrix-multiply entry point of the engine (row-major f32).
 *
 * Products without a bias or residual to add go through here (oneDNN's sgemm,
 * gemm_dnnl.c), so the library behind it can be swapped by measurement; layers
 * with a bias use oneDNN's matmul primitives (gemm_bf16.h: gemm_f32_bias,
 * gemm_bf16_bias), which add it as they store.
 */
#ifndef GS_GEMM_H
#define GS_GEMM_H

/* C[M,N] = A[M,K] * op(B) + beta * C, where op(B) is B[K,N] (trans_b = 0) or
   B[N,K] transposed (trans_b = 1, the layout of stored weights). lda/ldb/ldc are
   row strides in floats. */
void gemm_f32(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b,
              float beta, float *C, int ldc);

#endif
