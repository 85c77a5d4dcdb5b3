/* image_util - allocation of gs_image and conversions between u8 pixels and model floats. */
#ifndef GS_IMAGE_UTIL_H
#define GS_IMAGE_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "gesso.h"

#define IMAGE_MAX_SIDE 16384
#define IMAGE_MAX_PIXELS (64L * 1024 * 1024)

/* A zeroed w x h image with `channels` channels, or NULL. Free with gs_image_free. */
gs_image *image_new(int w, int h, int channels);
/* RGB(A) u8 -> [h, w, 3] floats in [-1, 1] (x / 127.5 - 1); alpha is dropped. */
void image_u8_to_signed_f32(const gs_image *im, float *out);
/* [-1, 1] floats -> u8: round(255 * clamp((x + 1) / 2, 0, 1)). */
void image_signed_f32_to_u8(const float *x, size_t n, uint8_t *out);

#endif
