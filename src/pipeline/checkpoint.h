/*
 * checkpoint - what a checkpoint is, judged from its safetensors header alone
 * (tensor names, dtypes and sizes), without converting any weight: the same
 * tests gs_model_load applies, which gs_checkpoint_inspect reports.
 */
#ifndef GS_CHECKPOINT_H
#define GS_CHECKPOINT_H

#include "model/safetensors.h"

/* Where an SD1.x single-file checkpoint keeps each network. */
#define SD1_UNET_PREFIX "model.diffusion_model."
#define SD1_VAE_PREFIX "first_stage_model."
#define SD1_TEXT_PREFIX "cond_stage_model.transformer.text_model."

/* GS_ERR_UNSUPPORTED, saying why, when path is a pickle checkpoint (by its
   first bytes or its extension); such files are never parsed. */
gs_status checkpoint_refuse_pickle(const char *path, gi_error *err);
/* True when f has the UNet, text encoder and VAE of an SD1.x checkpoint. */
int checkpoint_is_sd1(const st_file *f);
/* GS_OK for an SD1.x checkpoint; otherwise an error naming what f is instead
   (SDXL, SD2, a LoRA, a lone VAE, ...) as far as its tensor names tell. */
gs_status checkpoint_identify(const st_file *f, gi_error *err);
/* "f16", "bf16" or "f32": the dtype holding most bytes of the UNet (of the
   whole file when it is not an SD1.x checkpoint). */
const char *checkpoint_weight_dtype(const st_file *f);

#endif
