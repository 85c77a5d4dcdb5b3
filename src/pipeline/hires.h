/*
 * hires - A1111's "Hires. fix" for txt2img (processing.py, v1.10): after the
 * first pass, the latent is enlarged (a latent interpolation, or through the
 * VAE with a PIL Lanczos resize) and refined by an img2img pass at the new
 * size. What the second pass does exactly:
 *   size     int(w·scale) x int(h·scale), or hires_width x hires_height
 *            (A1111's calculate_target_resolution, its crop included)
 *   noise    a new generator seeded with the seed, drawn at the new shape;
 *            ancestral steps continue it
 *   schedule requested = hires_steps or steps; total =
 *            int(requested / min(denoise, 0.999)); the last `requested` steps
 *            of schedule(total) run (sample_config.schedule_steps)
 *   SDXL     size conditioning of the hires size (A1111's hr_c/hr_uc)
 * Fixtures: tests/fixtures/hires/README.md.
 */
#ifndef GS_HIRES_H
#define GS_HIRES_H

#include "image/infotext.h"
#include "pipeline/generate_internal.h"
#include "sample/sampler.h"

typedef struct hires_plan {
    int on;
    int up_w, up_h;     /* the size the first pass is enlarged to */
    int width, height;  /* the final size: up_w x up_h less A1111's crop */
    int steps;          /* steps the second pass runs (requested) */
    int schedule_steps; /* the schedule they are the tail of */
    int progress;       /* steps the second pass reports */
    gs_params params;   /* the request at the final size: the second pass and the decode */
} hires_plan;

/* Checks p's hires fields and plans the second pass for the first pass's
   sampler configuration (validated): hp->on = 0 when the fix is off. */
gs_status hires_plan_make(const gs_params *p, const sample_config *first, hires_plan *hp,
                          gi_error *err);

/* The second pass: *x (the first pass's latent, [batch, C, lh, lw]) becomes
   the final latent at the hires size; g moves to that size (its latent
   shape, buffers, SDXL conditioning and g->p = &hp->params). */
gs_status hires_run(gen_ctx *g, hires_plan *hp, const sample_config *first, const prompt_cond *cond,
                    const prompt_cond *uncond, float **x, gi_error *err);

/* A1111's infotext fields of the fix ("Hires upscale", "Hires steps", ...). */
void hires_infotext(const hires_plan *hp, const gs_params *p, infotext_fields *f);

/* ---- pieces (hires_upscale.c), for tests ---- */

/* A1111's hires size for p: *up_w x *up_h to upscale to, *w x *h after its crop. */
void hires_target_size(const gs_params *p, int *up_w, int *up_h, int *w, int *h);
/* torch's interpolate(src, size=(oh, ow), mode, antialias) on `planes` planes of h x w. */
gs_status hires_latent_resize(const float *src, int planes, int h, int w, float *dst, int oh,
                              int ow, gs_hires_upscaler mode, gi_error *err);
/* A1111's resize_image(0, lowres, w, h, "Lanczos"): a new RGB image. */
gs_status hires_pixel_upscale(const gs_image *lowres, int w, int h, gs_image **out, gi_error *err);
/* One latent item (NCHW, unscaled by the caller: as sampled) to A1111's 8-bit
   image: truncated 255·clamp((VAE(x/scale)+1)/2, 0, 1). tile as gen_vae_tile_latent. */
gs_status hires_decode_u8(gs_engine *eng, gs_model *m, const float *latent, int lh, int lw,
                          int tile, gs_image **out, gi_error *err);
/* An RGB image (a multiple of 8 per side) to one latent item, NCHW: the
   encoder's posterior mean times the latent scale. */
gs_status hires_encode_u8(gs_engine *eng, gs_model *m, const gs_image *img, float *latent,
                          gi_error *err);

#endif
