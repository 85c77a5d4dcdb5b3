/*
 * resize_pil - PIL's Image.resize(LANCZOS) on a gs_image, through the one
 * transcription of Pillow's 8-bit resampler (pil_resample.c). The source is
 * converted to RGB first, as A1111 does before its pixel upscalers.
 */
#include "image/resize_pil.h"

#include <string.h>

#include "common/alloc.h"
#include "image/image_util.h"
#include "image/pil_resample.h"

gs_status image_resize_pil_lanczos(const gs_image *src, int w, int h, gs_image **out, gi_error *err)
{
    *out = NULL;
    int sw = src->width, sh = src->height, sc = src->channels;
    gs_image *dst = image_new(w, h, 3);
    uint8_t *rgb = NULL;
    const uint8_t *from = src->pixels;
    if (dst && sc != 3 && (rgb = gi_malloc((size_t)sw * sh * 3))) {
        for (size_t p = 0; p < (size_t)sw * sh; p++)
            memcpy(rgb + 3 * p, src->pixels + (size_t)sc * p, 3);
        from = rgb;
    }
    gs_status st;
    if (!dst || (sc != 3 && !rgb))
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
    else
        st = pil_resize(from, sw, sh, 3, NULL, w, h, PIL_LANCZOS, dst->pixels, err);
    gi_free(rgb);
    if (st != GS_OK) {
        gs_image_free(dst);
        return st;
    }
    *out = dst;
    return GS_OK;
}
