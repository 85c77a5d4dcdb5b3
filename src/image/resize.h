/* resize - Lanczos (a = 3) resampling of 8-bit images, as PIL's Image.resize(LANCZOS). */
#ifndef GS_RESIZE_H
#define GS_RESIZE_H

#include "common/error.h"

/* A new w x h RGB image from src (RGB or RGBA; alpha dropped). Same size: exact copy. */
gs_status image_resize_rgb(const gs_image *src, int w, int h, gs_image **out, gi_error *err);

#endif
