/*
 * gemm_dnnl - gemm_f32 on oneDNN's sgemm (row-major).
 *
 * Chosen by measurement (bench/RESULTS.md): on SD1.5's layer shapes oneDNN's
 * sgemm runs at about twice the rate of Debian's OpenBLAS on this CPU class.
 * oneDNN's threads are OpenMP's: it runs on the calling thread's default team
 * size, which the engine's public calls set (compute_enter).
 */
#include <dnnl.h>

#include "compute/gemm.h"

void gemm_f32(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b,
              float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    dnnl_sgemm('N', trans_b ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}
