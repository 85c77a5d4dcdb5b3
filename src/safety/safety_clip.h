/*
 * safety_clip - the CLIP model of the image safety check: both towers and
 * their projections from one safetensors file (Hugging Face's CLIPModel
 * layout, e.g. openai/clip-vit-large-patch14's model.safetensors, or
 * open_clip's names for the same OpenAI weights), giving
 * L2-normalised image and text features as horde-safety's interrogator does.
 */
#ifndef GS_SAFETY_CLIP_H
#define GS_SAFETY_CLIP_H

#include <stdint.h>

#include "compute/compute.h"
#include "model/clip_text.h"
#include "model/clip_vision.h"

#define SAFETY_CLIP_TOKENS 77

typedef struct safety_clip {
    st_file *file;
    clip_vision *vision;
    clip_text *text;
    weight_store store;       /* text_proj's weights */
    linear_weights text_proj; /* [proj, text width], no bias; w NULL with open_clip's layout */
    int proj;
} safety_clip;

gs_status safety_clip_open(const char *path, safety_clip **out, gi_error *err);
void safety_clip_free(safety_clip *c);

/* rgb: [h, w, channels] 8-bit (channels 3 or 4; alpha dropped); feat: [proj], unit length. */
gs_status safety_clip_image(safety_clip *c, gi_compute *cx, const uint8_t *rgb, int w, int h,
                            int channels, float *feat, gi_error *err);
/* ids: [n, 77] (BOS, text, EOS, zero padding); feat: [n, proj], unit length. */
gs_status safety_clip_text(safety_clip *c, gi_compute *cx, const int32_t *ids, int n, float *feat,
                           gi_error *err);

/* CLIP's image transform (open_clip's ViT-L-14/openai): the short side resized to
   size with PIL's bicubic filter (the long side to int(size * long / short), as
   torchvision), a centre crop of size², /255, OpenAI's mean and std.
   out: [3, size, size]. */
gs_status clip_preprocess(const uint8_t *rgb, int w, int h, int channels, int size, float *out,
                          gi_error *err);

#endif
