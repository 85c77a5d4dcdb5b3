/* conv_winograd_bf16 - the bf16 Winograd layers' products for a few tiles at a
 * time with AVX512_BF16, so their 16 x tiles x cout results stay in cache for
 * the output transform instead of streaming through memory. */
#ifndef GS_CONV_WINOGRAD_BF16_H
#define GS_CONV_WINOGRAD_BF16_H

#include <stddef.h>
#include <stdint.h>

#define WINO_GROUP 8 /* tiles per group */

int wino_bf16_available(void);

/* The packed index of U[p][o][c] (filters as channel pairs in blocks of 32
   output channels: each step of the inner loop reads 64 contiguous bytes). */
static inline size_t wino_bf16_u_index(size_t plane, int cin, int p, int o, int c)
{
    return (size_t)p * plane + ((size_t)(o / 32) * (cin / 2) + (size_t)(c / 2)) * 64 +
           (size_t)(o % 32) * 2 + (size_t)(c & 1);
}

/* Whether a layer's shape suits it: whole blocks of 32 outputs, channel pairs. */
static inline int wino_bf16_handles(int cin, int cout)
{
    return cout % 32 == 0 && cin % 2 == 0;
}

/* m[p][r][o] = sum over c of v[p * vplane + r * cin + c] u[p][o][c] for the 16
   positions p, WINO_GROUP rows r and all cout outputs; u packed as above
   (plane = cout * cin). Rows past the group's real tiles may hold anything:
   their results are garbage the caller drops. */
void wino_bf16_group(const uint16_t *v, size_t vplane, int cin, const uint16_t *u, int cout,
                     float *m);

/* V[p][c] = (B^T d B)[p] of one tile for all cin channels, as bf16 at
   v + p * vplane; src[r][q] points at the channels of the patch's pixel (r, q). */
void wino_bf16_input_tile(const float *const src[4][4], int cin, uint16_t *v, size_t vplane);

/* dst[r][q][o] = (A^T M A)[r][q] + bias[o] of one tile from m[p * mplane + o]
   (bias may be NULL). */
void wino_bf16_output_tile(const float *m, size_t mplane, int cout, const float *bias,
                           float *const dst[2][2]);

#endif
