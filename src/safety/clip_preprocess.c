/*
 * clip_preprocess - open_clip's image transform for OpenAI's CLIP weights,
 * on PIL's exact bicubic resampling (image/pil_resample), so the 8-bit
 * levels the model sees are those torchvision's Resize gives on a PIL image.
 */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "image/pil_resample.h"
#include "safety/safety_clip.h"

static const double MEAN[3] = {0.48145466, 0.4578275, 0.40821073};
static const double STD[3] = {0.26862954, 0.26130258, 0.27577711};

gs_status clip_preprocess(const uint8_t *rgb, int w, int h, int channels, int size, float *out,
                          gi_error *err)
{
    if (w < 1 || h < 1 || (channels != 3 && channels != 4) || size < 1)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "safety check: a %dx%d image of %d channels",
                       w, h, channels);
    int shorter = w <= h ? w : h, longer = w <= h ? h : w;
    long new_long = (long)((double)size * longer / shorter);
    if (new_long > 65536)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "safety check: a %dx%d image is too narrow", w,
                       h);
    int nw = w <= h ? size : (int)new_long, nh = w <= h ? (int)new_long : size;
    uint8_t *rgb3 = gi_malloc((size_t)w * h * 3), *small = gi_malloc((size_t)nw * nh * 3);
    gs_status st = GS_OK;
    if (!rgb3 || !small) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < (size_t)w * h; i++) /* Image.convert("RGB") drops alpha */
        memcpy(rgb3 + i * 3, rgb + i * channels, 3);
    if ((st = pil_resize(rgb3, w, h, 3, NULL, nw, nh, PIL_BICUBIC, small, err)) != GS_OK)
        goto out;
    /* torchvision's CenterCrop: int(round((n - size) / 2.0)), Python's round half to even */
    int top = (int)nearbyint((nh - size) / 2.0), left = (int)nearbyint((nw - size) / 2.0);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++) {
                double v = small[((size_t)(top + y) * nw + left + x) * 3 + c] / 255.0;
                out[((size_t)c * size + y) * size + x] = (float)((v - MEAN[c]) / STD[c]);
            }
out:
    gi_free(rgb3);
    gi_free(small);
    return st;
}
