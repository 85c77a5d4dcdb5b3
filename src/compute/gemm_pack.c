/* gemm_pack - weights to and from oneDNN's blocked matmul layouts. */
#include "compute/gemm_pack.h"

#include <stdint.h>

/* Both walk the packed panel in order (block of 16 k, then k or k pair, then
   the 64 rows): the writes stream, the reads go down 64 rows of a panel that
   fits in L2 (the loader has just converted it there). */
void gemm_pack_panel(const void *plain, void *packed, int k, int f32)
{
    if (f32) {
        const float *s = plain;
        float *d = packed;
        for (int c = 0; c < k; c++, d += GEMM_PACK_ROWS)
            for (int r = 0; r < GEMM_PACK_ROWS; r++)
                d[r] = s[(size_t)r * k + c];
        return;
    }
    /* bf16 pairs (k, k + 1) move as one 32-bit word */
    const uint32_t *s = plain;
    uint32_t *d = packed;
    int k2 = k / 2;
    for (int c = 0; c < k2; c++, d += GEMM_PACK_ROWS)
        for (int r = 0; r < GEMM_PACK_ROWS; r++)
            d[r] = s[(size_t)r * k2 + c];
}

void gemm_unpack_panel(const void *packed, void *plain, int k, int f32)
{
    if (f32) {
        const float *s = packed;
        float *d = plain;
        for (int c = 0; c < k; c++, s += GEMM_PACK_ROWS)
            for (int r = 0; r < GEMM_PACK_ROWS; r++)
                d[(size_t)r * k + c] = s[r];
        return;
    }
    const uint32_t *s = packed;
    uint32_t *d = plain;
    int k2 = k / 2;
    for (int c = 0; c < k2; c++, s += GEMM_PACK_ROWS)
        for (int r = 0; r < GEMM_PACK_ROWS; r++)
            d[(size_t)r * k2 + c] = s[r];
}

void gemm_pack(const void *plain, void *packed, int n, int k, int f32)
{
    size_t panel = (size_t)GEMM_PACK_ROWS * k * (f32 ? 4 : 2);
    for (int p = 0; p < n / GEMM_PACK_ROWS; p++)
        gemm_pack_panel((const char *)plain + p * panel, (char *)packed + p * panel, k, f32);
}

void gemm_unpack(const void *packed, void *plain, int n, int k, int f32)
{
    size_t panel = (size_t)GEMM_PACK_ROWS * k * (f32 ? 4 : 2);
    for (int p = 0; p < n / GEMM_PACK_ROWS; p++)
        gemm_unpack_panel((const char *)packed + p * panel, (char *)plain + p * panel, k, f32);
}
