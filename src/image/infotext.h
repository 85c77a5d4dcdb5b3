/*
 * infotext - AUTOMATIC1111's "parameters" text: the prompt, then the negative
 * prompt line, then "Key: value, ..." settings. Other tools (A1111's PNG Info,
 * ComfyUI importers, civitai) read generation settings back from it.
 */
#ifndef GS_INFOTEXT_H
#define GS_INFOTEXT_H

#include <stdint.h>

typedef struct infotext_fields {
    const char *prompt, *negative_prompt;
    const char *sampler;   /* engine name: euler_a ... */
    const char *scheduler; /* NULL or "default" = the sampler's own */
    const char *model;
    int steps, width, height, clip_skip, batch_size, batch_pos;
    double cfg_scale, strength;
    uint64_t seed;
    int is_img2img;
    const char *lora_hashes; /* "name: hash, ..." or NULL */
    int mask_blur;           /* inpainting's blur: "Mask blur: N" when > 0 */
    int has_eta; /* "Eta: X" (A1111 writes it when the sampler takes η and it is not 1) */
    double eta;
    /* the hires fix (A1111's extra_generation_params), when hires_upscaler is not NULL:
       "Denoising strength" (strength), then "Hires upscale" or "Hires resize", "Hires
       steps" (when > 0) and "Hires upscaler" */
    const char *hires_upscaler;
    double hires_scale;
    int hires_resize_w, hires_resize_h; /* either nonzero: "Hires resize: WxH" */
    int hires_steps;
} infotext_fields;

/* gi_malloc'd text, or NULL when out of memory. */
char *infotext_format(const infotext_fields *f);
/* The name A1111 shows for an engine sampler name ("euler_a" -> "Euler a"). */
const char *infotext_sampler_label(const char *sampler);

#endif
