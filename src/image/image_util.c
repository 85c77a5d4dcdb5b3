/* image_util - gs_image allocation and pixel conversions. */
#include "image/image_util.h"

#include <math.h>

#include "common/alloc.h"

gs_image *image_new(int w, int h, int channels)
{
    if (w < 1 || h < 1 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE || channels < 1 || channels > 4)
        return NULL;
    gs_image *im = gi_calloc(1, sizeof *im);
    if (!im)
        return NULL;
    im->pixels = gi_calloc((size_t)w * h, (size_t)channels);
    if (!im->pixels) {
        gi_free(im);
        return NULL;
    }
    im->width = w;
    im->height = h;
    im->channels = channels;
    return im;
}

void gs_image_free(gs_image *img)
{
    if (!img)
        return;
    gi_free(img->pixels);
    gi_free(img);
}

void image_u8_to_signed_f32(const gs_image *im, float *out)
{
    size_t n = (size_t)im->width * im->height;
    for (size_t p = 0; p < n; p++)
        for (int c = 0; c < 3; c++)
            out[p * 3 + c] = im->pixels[p * im->channels + c] / 127.5f - 1.0f;
}

void image_signed_f32_to_u8(const float *x, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        float v = (x[i] + 1.0f) * 0.5f;
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        out[i] = (uint8_t)lrintf(255.0f * v);
    }
}
