/*
 * lora_keys - the name of the checkpoint (LDM) layer a LoRA module patches.
 *
 * LoRA files name modules by diffusers paths: kohya/A1111 files with '.' ->
 * '_' under lora_unet_ / lora_te_ / lora_te1_ / lora_te2_, PEFT files with the
 * dots kept under unet. / text_encoder. / text_encoder_2.. A1111's networks.py
 * maps them onto the LDM module names the checkpoint uses; this is that
 * mapping, written from the UNet's level structure (blocks per level, which
 * levels attend), so the same code serves SD1, SD2 and SDXL. kohya's SDXL
 * files name the UNet by its LDM path already (lora_unet_input_blocks_4_1_...),
 * which is read too. Text encoders kohya trains in Hugging Face CLIP form
 * (SD2's, SDXL's second) map onto OpenCLIP's names: q, k and v onto the row
 * blocks of the fused attn.in_proj_weight.
 */
#ifndef GS_LORA_KEYS_H
#define GS_LORA_KEYS_H

#include <stddef.h>

/* A family's structure as LoRA names map onto it: the UNet's blocks as LDM
   numbers them, and where its text encoder(s) live. */
typedef struct lora_unet_layout {
    int levels;           /* resolution levels (SD1, SD2: 4; SDXL: 3) */
    int layers_per_block; /* res blocks per down level (2 for all); up levels have one more */
    unsigned attn_levels; /* bit l set: level l (0 = full resolution) has attention */
    const char *te;       /* layer prefix lora_te_ / text_encoder. name; NULL for two encoders
                             (SDXL: lora_te1_ / lora_te2_, text_encoder. / text_encoder_2.) */
    int te_openclip;      /* te holds OpenCLIP names (SD2) */
} lora_unet_layout;

extern const lora_unet_layout lora_layout_sd1;
extern const lora_unet_layout lora_layout_sd2;
extern const lora_unet_layout lora_layout_sdxl;

/* Which multiplier a module takes. */
typedef enum lora_part { LORA_UNET, LORA_TE } lora_part;

typedef struct lora_target {
    char name[256]; /* LDM layer name without ".weight" */
    lora_part part;
    int slice; /* -1, or 0/1/2: q/k/v rows of an OpenCLIP attn.in_proj_weight (name then
                  ends in "in_proj", the tensor being "in_proj_weight") */
} lora_target;

/* Maps a kohya module name ("lora_unet_down_blocks_0_..." without the
   ".lora_down.weight" suffix) onto *t; 0 on success, -1 when the name is not
   one A1111 knows. */
int lora_map_kohya(const lora_unet_layout *L, const char *module, lora_target *t);

/* The same for a PEFT/diffusers module path ("unet.down_blocks.0...." or
   "text_encoder.text_model...."). */
int lora_map_peft(const lora_unet_layout *L, const char *module, lora_target *t);

#endif
