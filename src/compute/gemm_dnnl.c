/*
 * gemm_dnnl - gemm_f32 on oneDNN's sgemm (row-major).
 *
 * Chosen by measurement (bench/RESULTS.md): on SD1.5's layer shapes oneDNN's
 * sgemm runs at about twice the rate of Debian's OpenBLAS on this CPU class.
 * oneDNN's threads are OpenMP's, so the thread count is set there.
 */
#include <dnnl.h>
#include <omp.h>

#include "compute/gemm.h"

void gemm_f32(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b,
              float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    dnnl_sgemm('N', trans_b ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

void gemm_set_threads(int threads)
{
    omp_set_num_threads(threads);
}
