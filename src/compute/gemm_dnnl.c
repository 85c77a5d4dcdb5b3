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
#include "compute/op_prof.h"

void gemm_f32(int M, int N, int K, const float *A, int lda, const float *B, int ldb, int trans_b,
              float beta, float *C, int ldc)
{
    if (M <= 0 || N <= 0)
        return;
    op_prof *p = op_prof_cur;
    double t0 = p ? op_prof_now() : 0;
    dnnl_sgemm('N', trans_b ? 'T' : 'N', M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    if (p) /* A and B read once, C read (beta) and written: the least traffic */
        op_prof_add(p, OPK_GEMM, t0, 2.0 * M * N * K,
                    4.0 * ((double)M * K + (double)K * N + (beta != 0 ? 2.0 : 1.0) * M * N));
}
