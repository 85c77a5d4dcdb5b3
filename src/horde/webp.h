/* webp - an image as lossless WebP, the format the Horde stores, kept
   lossless so what is uploaded is exactly what the engine made. */
#ifndef GS_HORDE_WEBP_H
#define GS_HORDE_WEBP_H

#include <stddef.h>

#include "gesso.h"

/* *out malloc'd (free with free); 0, or -1 when encoding failed. */
int horde_webp_encode(const gs_image *img, unsigned char **out, size_t *len);

#endif
