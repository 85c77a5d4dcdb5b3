/*
 * checkpoint - what a checkpoint is, judged from its safetensors header alone
 * (tensor names, dtypes and sizes), without converting any weight: the same
 * tests gs_model_load applies, for callers that only list models.
 */
#ifndef GS_CHECKPOINT_H
#define GS_CHECKPOINT_H

#include "model/safetensors.h"

/* Where an SD1.x single-file checkpoint keeps each network. */
#define SD1_UNET_PREFIX "model.diffusion_model."
#define SD1_VAE_PREFIX "first_stage_model."
#define SD1_TEXT_PREFIX "cond_stage_model.transformer.text_model."

/* True when f has the UNet, text encoder and VAE of an SD1.x checkpoint. */
int checkpoint_is_sd1(const st_file *f);
/* "f16", "bf16" or "f32": the dtype holding most bytes of the UNet (of the
   whole file when it is not an SD1.x checkpoint). */
const char *checkpoint_weight_dtype(const st_file *f);

#endif
