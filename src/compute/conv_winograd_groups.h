/* conv_winograd_groups - Winograd layers a group of tiles at a time inside one
 * thread's cache: input transform, the 16 products (own AVX-512 micro-kernels,
 * f32 FMA or AVX512_BF16), output transform. */
#ifndef GS_CONV_WINOGRAD_GROUPS_H
#define GS_CONV_WINOGRAD_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#define WINO_GROUP 8 /* tiles per group */

/* Whether this CPU runs the f32 kernels (AVX-512) and the bf16 ones. */
int wino_f32_available(void);
int wino_bf16_available(void);

/* Whether a layer's shape suits them: whole blocks of 32 outputs (and channel
   pairs for bf16). */
static inline int wino_groups_handle(int cin, int cout, int bf16)
{
    return cout % 32 == 0 && (!bf16 || cin % 2 == 0);
}

/* The packed index of U[p][o][c] (plane = cout * cin), in blocks of 32 output
   channels so each step of a kernel's inner loop reads 128 contiguous bytes:
   f32 [p][o / 32][c][32]; bf16 as channel pairs [p][o / 32][c / 2][32][2]. */
static inline size_t wino_f32_u_index(size_t plane, int cin, int p, int o, int c)
{
    return (size_t)p * plane + ((size_t)(o / 32) * cin + (size_t)c) * 32 + (size_t)(o % 32);
}

static inline size_t wino_bf16_u_index(size_t plane, int cin, int p, int o, int c)
{
    return (size_t)p * plane + ((size_t)(o / 32) * (cin / 2) + (size_t)(c / 2)) * 64 +
           (size_t)(o % 32) * 2 + (size_t)(c & 1);
}

/* V[p][c] = (B^T d B)[p] of one tile for all cin channels at v + p * vplane;
   src[r][q] points at the channels of the patch's pixel (r, q). */
void wino_f32_input_tile(const float *const src[4][4], int cin, float *v, size_t vplane);
void wino_bf16_input_tile(const float *const src[4][4], int cin, uint16_t *v, size_t vplane);

/* m[p][r][o] = sum over c of v[p * vplane + r * cin + c] u[p][o][c] for the 16
   positions p, WINO_GROUP rows r and all cout outputs, u packed as above. Rows
   past the group's real tiles may hold anything: their results are garbage the
   caller drops. */
void wino_f32_group(const float *v, size_t vplane, int cin, const float *u, int cout, float *m);
void wino_bf16_group(const uint16_t *v, size_t vplane, int cin, const uint16_t *u, int cout,
                     float *m);

/* dst[r][q][o] = (A^T M A)[r][q] + bias[o] of one tile from m[p * mplane + o]
   (bias may be NULL); with accumulate, added to dst[r][q][o]. */
void wino_output_tile(const float *m, size_t mplane, int cout, const float *bias, int accumulate,
                      float *const dst[2][2]);

#endif
