/* pil_blend - the Pillow 9.x compositing A1111's inpainting goes through, bit
 * for bit: RGBA <-> premultiplied RGBa, paste through an "L" mask,
 * Image.alpha_composite, GaussianBlur (PIL's extended box blur) and
 * modules/masking.fill. Images are interleaved 8-bit, rows top to bottom. */
#ifndef GS_PIL_BLEND_H
#define GS_PIL_BLEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* RGB (3) or RGBA (4) -> premultiplied RGBa, n pixels. */
void pil_to_rgba_premul(const uint8_t *src, int channels, size_t n, uint8_t *out);
/* RGBa -> RGBA in place (PIL's integer unpremultiply). */
void pil_unpremultiply(uint8_t *rgba, size_t n);
/* An RGBa canvas of zeros with src (RGBa) pasted through mask (L):
 * out = DIV255(src·mask) per channel, alpha included. */
void pil_paste_masked(const uint8_t *src_rgba, const uint8_t *mask, size_t n, uint8_t *out);
/* dst (RGBA) = alpha_composite(dst, src (RGBA)), in place. */
void pil_alpha_composite(uint8_t *dst, const uint8_t *src, size_t n);
/* ImageFilter.GaussianBlur(radius) of an RGBa/RGBA image, in place (3 box
 * passes each way; radius 0 is a copy). */
gs_status pil_gaussian_blur(uint8_t *rgba, int w, int h, float radius, gi_error *err);
/* masking.fill(image, mask): the masked area filled with ever finer blurs of
 * what lies outside it. rgb: w x h RGB, in place; mask: w x h L. */
gs_status pil_masking_fill(uint8_t *rgb, const uint8_t *mask, int w, int h, gi_error *err);

#endif
