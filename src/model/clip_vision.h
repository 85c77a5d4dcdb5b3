/*
 * clip_vision - CLIP's image tower (ViT): a patch embedding (a convolution of
 * stride = kernel, no bias, run as one GEMM over the patches), a class token,
 * learned positions, a pre-LayerNorm, the pre-norm transformer layers of
 * clip_block (no mask, QuickGELU for OpenAI's weights), a post-LayerNorm of the
 * class token and the projection into the shared image-text space.
 *
 * Loads from Hugging Face transformers' CLIPModel layout ("vision_model.*",
 * "visual_projection.weight") or open_clip's ("visual.*", "visual.proj"). Sizes come from the
 * tensor shapes; heads = width / 64 (at least 1), as OpenAI CLIP builds it.
 */
#ifndef GS_CLIP_VISION_H
#define GS_CLIP_VISION_H

#include "compute/compute.h"
#include "model/safetensors.h"

typedef struct clip_vision clip_vision;

gs_status clip_vision_load(const st_file *f, clip_vision **out, gi_error *err);
void clip_vision_free(clip_vision *m);
int clip_vision_image_size(const clip_vision *m); /* the square input side (224 for ViT-L/14) */
int clip_vision_proj_dim(const clip_vision *m);

/* pixels: [n, 3, S, S] normalised as CLIP's transform leaves them (channels
   first, as the reference's tensor); out: [n, proj], not normalised. */
gs_status clip_vision_encode(clip_vision *m, gi_compute *cx, const float *pixels, int n, float *out,
                             gi_error *err);

#endif
