/*
 * resize_pil - PIL's Image.resize(LANCZOS) on 8-bit RGB, bit for bit: its
 * fixed-point weights (22 fraction bits), horizontal pass then vertical, and
 * the 8-bit rounding of the intermediate image between them. A1111's pixel
 * upscalers (Lanczos) go through it; image_resize_rgb (resize.h) is a float
 * resampler that is close to it but not equal.
 */
#ifndef GS_RESIZE_PIL_H
#define GS_RESIZE_PIL_H

#include "common/error.h"

/* A new w x h RGB image from src (RGB or RGBA; alpha dropped). */
gs_status image_resize_pil_lanczos(const gs_image *src, int w, int h, gs_image **out,
                                   gi_error *err);

#endif
