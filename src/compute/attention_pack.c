#include "compute/attention_pack.h"

#include <stddef.h>
#include <string.h>

int attention_key_stride(int tk)
{
    return (tk + 31) / 32 * 32 + 16;
}

void attention_pack_head(const float *k, const float *v, int kv_stride, int tk, int d, int tkp,
                         int dp, float *kt, float *vp)
{
    memset(kt, 0, (size_t)d * tkp * sizeof *kt);
    memset(vp, 0, (size_t)tkp * dp * sizeof *vp);
    for (int t = 0; t < tk; t++) {
        const float *kr = k + (size_t)t * kv_stride, *vr = v + (size_t)t * kv_stride;
        for (int c = 0; c < d; c++)
            kt[(size_t)c * tkp + t] = kr[c];
        memcpy(vp + (size_t)t * dp, vr, (size_t)d * sizeof *vr);
    }
}
