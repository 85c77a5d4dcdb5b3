/*
 * gemm_pack - layer weights in the blocked layout oneDNN's matmul multiplies
 * from. Given weights in their stored [N, K] layout, the matmul copies them
 * into its own blocks on every call, per block of rows of A; given them in
 * those blocks it reads them as they are: 10-20 % faster products for SD's
 * layers, bf16 and f32 (bench/RESULTS.md section 38).
 *
 * The layouts (oneDNN's tags, dims [K, N]): f32 BA16a64b, bf16 BA16a64b2a.
 * Within each panel of 64 weight rows (n / 64, in the panel's own bytes:
 * offset 64 K n / 64) both come down to the panel transposed: f32 element
 * (k, n) at 64 k + n % 64; bf16 pairs (k, k + 1) as one 32-bit word at word
 * 64 (k / 2) + n % 64. Sizes equal the stored ones where N is a multiple of
 * 64 and K of 16 (the only weights packed). gemm_bf16.c checks that oneDNN
 * asks for these layouts on the CPU at hand before anything is packed for it.
 */
#ifndef GS_GEMM_PACK_H
#define GS_GEMM_PACK_H

#include <stddef.h>

#define GEMM_PACK_ROWS 64 /* weight rows (N) per panel */

/* Whether [n, k] weights have a packed form of the same size. */
static inline int gemm_pack_fits(long n, long k)
{
    return n > 0 && k > 0 && n % GEMM_PACK_ROWS == 0 && k % 16 == 0;
}

/* One panel: 64 rows of k elements (f32 when f32, else 16-bit) from plain
   [64][k] into packed, or back. plain and packed must not overlap. */
void gemm_pack_panel(const void *plain, void *packed, int k, int f32);
void gemm_unpack_panel(const void *packed, void *plain, int k, int f32);

/* Whole [n, k] weights (gemm_pack_fits), out of place. */
void gemm_pack(const void *plain, void *packed, int n, int k, int f32);
void gemm_unpack(const void *packed, void *plain, int n, int k, int f32);

#endif
