/* pil_resample - Pillow's Image.resize for 8-bit images, bit for bit (Pillow 9.x
 * Resample.c: the fixed-point 8bpc path, horizontal pass then vertical, each
 * rounded to 8 bits). Used where A1111's results depend on PIL's exact levels:
 * masks, the inpainting crop and the overlay paste-back. */
#ifndef GS_PIL_RESAMPLE_H
#define GS_PIL_RESAMPLE_H

#include "common/error.h"

typedef enum pil_filter { PIL_LANCZOS = 0, PIL_BICUBIC = 1 } pil_filter;

/* Resizes the region box = {x0, y0, x1, y1} (source pixels, may be empty in one
 * direction, as A1111's "resize and fill" bars use) of src (channels interleaved)
 * to w x h. With box NULL the whole image; a same-size whole-image resize is a
 * copy, as in PIL. out: w*h*channels bytes. */
gs_status pil_resize(const uint8_t *src, int sw, int sh, int channels, const double *box, int w,
                     int h, pil_filter f, uint8_t *out, gi_error *err);

#endif
