/* mask - A1111's inpainting mask handling (modules/processing.py, masking.py,
 * images.resize_image), each step as A1111's libraries compute it, so the
 * 8-bit results are exact: the mask is one channel (PIL "L"), rows top to
 * bottom, 255 = repaint. */
#ifndef GS_MASK_H
#define GS_MASK_H

#include <stdint.h>

#include "common/error.h"

/* create_binary_mask: an RGBA mask whose alpha is not all 255 gives
 * alpha > 128 ? 255 : 0 (mask_round); anything else PIL's convert('L')
 * (ITU-R 601-2 luma in 16-bit fixed point). out: w*h bytes. */
void mask_to_l(const gs_image *m, uint8_t *out);

/* The two cv2.GaussianBlur calls A1111 makes, in place: ksize (k,1) then (1,k)
 * with k = 2·int(2.5·blur + 0.5) + 1 and σ = blur, on OpenCV's 8-bit
 * fixed-point path (kernel in 8 fractional bits, BORDER_REFLECT_101). */
gs_status mask_blur(uint8_t *m, int w, int h, int blur, gi_error *err);

/* the longest blur kernel (mask_blur up to 101) */
#define MASK_MAX_KERNEL 511

/* The kernel that blur uses (k taps in 1/256, summing to 256); returns k, or 0
 * when k > max. */
int mask_blur_kernel(int blur, int *out, int max);

/* masking.get_crop_region_v2 then expand_crop_region: the bbox of nonzero
 * pixels padded by pad and clipped, grown to the pw:ph aspect. box gets
 * x1, y1, x2, y2 (exclusive ends). Returns 0 for an all-zero mask. */
int mask_crop_region(const uint8_t *m, int w, int h, int pad, int pw, int ph, int box[4]);

/* images.resize_image(mode, im, w, h) for A1111's modes 0 (just resize),
 * 1 (crop and resize) and 2 (resize and fill), LANCZOS, no upscaler: src is
 * sw x sh with ch channels (1 or 3), out w x h x ch. */
gs_status mask_resize_image(int mode, const uint8_t *src, int sw, int sh, int ch, int w, int h,
                            uint8_t *out, gi_error *err);

/* The latent mask (nmask, 1 = repaint): m (w x h) as RGB resized to lw x lh
 * with PIL's default BICUBIC, channel 0 / 255 in float32, then np.around when
 * round_it. out: lw*lh floats. */
gs_status mask_latent(const uint8_t *m, int w, int h, int lw, int lh, int round_it, float *out,
                      gi_error *err);

#endif
