/* gemm_pack - weights to and from oneDNN's blocked matmul layouts. */
#include "compute/gemm_pack.h"

#include <stdint.h>

/* A panel's rows as 32-bit words: f32 values, or bf16 k pairs (k, k + 1),
   which the blocked layout keeps together; read and written through a type
   that may alias the floats and bf16 values the buffers hold. */
typedef uint32_t word __attribute__((may_alias));

static int panel_words(int k, int f32)
{
    return f32 ? k : k / 2;
}

/* Both walk the packed panel in order (block of 16 k, then k or k pair, then
   the 64 rows): the writes stream, the reads go down 64 rows of a panel that
   fits in L2 (the loader has just converted it there). */
void gemm_pack_panel(const void *plain, void *packed, int k, int f32)
{
    const word *s = plain;
    word *d = packed;
    int w = panel_words(k, f32);
    for (int c = 0; c < w; c++, d += GEMM_PACK_ROWS)
        for (int r = 0; r < GEMM_PACK_ROWS; r++)
            d[r] = s[(size_t)r * w + c];
}

void gemm_unpack_panel(const void *packed, void *plain, int k, int f32)
{
    const word *s = packed;
    word *d = plain;
    int w = panel_words(k, f32);
    for (int c = 0; c < w; c++, s += GEMM_PACK_ROWS)
        for (int r = 0; r < GEMM_PACK_ROWS; r++)
            d[(size_t)r * w + c] = s[r];
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
