/* inpaint - img2img with a mask, as A1111 v1.10 runs it (processing.py's
 * StableDiffusionProcessingImg2Img.init/sample, apply_overlay): the pixel work
 * before the VAE (mask, crop, fill, overlay), the latent mask and its blends,
 * and the composite after decoding. gs_generate calls these as hooks; the
 * sampler's `keep` mask does the per-evaluation blend. */
#ifndef GS_INPAINT_H
#define GS_INPAINT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "compute/compute.h"
#include "model/vae.h"

typedef struct inpaint_plan {
    int active;          /* 0: no mask, or "only masked" with a blank mask (plain img2img) */
    int w, h, lw, lh;    /* processing size and its latent */
    int mw, mh;          /* the mask's own size */
    uint8_t *blurred;    /* [mh, mw] the mask after create_binary_mask, invert and blur */
    uint8_t *image_mask; /* [h, w] the mask at processing size */
    int out_w, out_h;    /* the images returned: the overlay's size */
    uint8_t *overlay;    /* [out_h, out_w, 4] RGBA: the init image where it is kept */
    gs_image *vae_in;    /* [h, w] RGB: what the VAE encodes (cropped, filled) */
    float *nmask;        /* [lh, lw] 1 = repaint (rounded) */
    float *keep;         /* [lh, lw] 1 − nmask, the sampler's keep mask */
    int full_res;
    int crop[4];     /* x1, y1, x2, y2 of the only-masked crop */
    int paste_to[4]; /* x, y, w, h */
    int fill;
} inpaint_plan;

/* Checks the mask parameters (mask given: init image present, sizes, ranges). */
gs_status inpaint_validate(const gs_params *p, gi_error *err);

/* Every pixel step up to the VAE's input, and the latent mask. A plan with
 * active 0 (p->mask NULL, or only-masked with an all-black mask, where A1111
 * falls back to img2img) needs no other call. Free with inpaint_plan_free. */
gs_status inpaint_prepare(const gs_params *p, inpaint_plan *plan, gi_error *err);
void inpaint_plan_free(inpaint_plan *plan);

/* Fill modes in latent space on init ([batch, ch, lh, lw]): latent noise mixes
 * in a randn of the whole batch from a generator seeded with seed (the same
 * numbers as the sampling noise); latent nothing zeroes the masked part. */
gs_status inpaint_fill_latent(const inpaint_plan *plan, float *init, int batch, int ch,
                              uint64_t seed, gi_error *err);

/* After sampling: x = x·nmask + init·(1 − nmask). */
void inpaint_blend_final(const inpaint_plan *plan, float *x, const float *init, int batch, int ch);

/* A1111's 8-bit conversion of a decoded image: (255·clamp((x+1)/2, 0, 1)) truncated. */
void inpaint_to_u8(const float *x, size_t n, uint8_t *out);

/* apply_overlay: img (w x h RGB, decoded) becomes the out_w x out_h result
 * (only-masked: resized to the crop and pasted) composited under the overlay. */
gs_status inpaint_apply_overlay(const inpaint_plan *plan, gs_image *img, gi_error *err);

/* The extra UNet input of a 9-channel inpainting checkpoint (A1111's
 * c_concat, processing.py inpainting_image_conditioning): [lh, lw, 1 + ch]
 * channels-last, per pixel the mask (nearest-sampled from the rounded pixel
 * mask; 1 everywhere without an active plan) and the scaled VAE mean of
 * image (w x h RGB, or NULL for none) with the masked pixels set to 0 (gray);
 * without a plan the whole image is masked, so the VAE sees zeros, as A1111's
 * txt2img_image_conditioning. */
gs_status inpaint_unet_cond(const inpaint_plan *plan, const gs_image *image, int w, int h, int ch,
                            float scale, vae *v, gi_compute *cx, float *out, gi_error *err);

/* For tests: when not NULL, the latents of the last run are copied here
 * (each [batch, ch, lh, lw], n floats; what does not fit is left out). */
typedef struct inpaint_trace {
    float *encoded, *init, *final;
    size_t n;
} inpaint_trace;
extern inpaint_trace *inpaint_trace_sink;

#endif
