/* gemm_openblas - gemm_f32 on OpenBLAS's sgemm. */
#include <cblas.h>

#include "compute/gemm.h"

void gemm_f32(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b,
              float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A,
                lda, B, ldb, beta, C, ldc);
}

void gemm_set_threads(int threads)
{
    openblas_set_num_threads(threads);
}
