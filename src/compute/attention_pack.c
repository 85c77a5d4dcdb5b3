#include "compute/attention_pack.h"

#include <stddef.h>
#include <string.h>

int attention_key_stride(int tk)
{
    return (tk + 31) / 32 * 32 + 16;
}

void attention_pack_head_panels(const float *k, const float *v, int kv_stride, int tk, int d,
                                int tkp, int dp, float *kt, float *vp)
{
    memset(kt, 0, (size_t)d * tkp * sizeof *kt);
    for (int t = 0; t < tk; t++) {
        const float *kr = k + (size_t)t * kv_stride;
        float *col = kt + (size_t)(t / 16) * d * 16 + t % 16;
        for (int c = 0; c < d; c++)
            col[(size_t)c * 16] = kr[c];
    }
    memset(vp, 0, (size_t)tkp * dp * sizeof *vp);
    for (int t = 0; t < tk; t++)
        memcpy(vp + (size_t)t * dp, v + (size_t)t * kv_stride, (size_t)d * sizeof *vp);
}
