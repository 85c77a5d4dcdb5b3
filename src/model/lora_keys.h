/*
 * lora_keys - the name of the checkpoint (LDM) layer a LoRA module patches.
 *
 * LoRA files name modules by diffusers paths: kohya/A1111 files with '.' ->
 * '_' under lora_unet_ / lora_te_ / lora_te1_ / lora_te2_, PEFT files with the
 * dots kept under unet. / text_encoder.. A1111's networks.py maps them onto
 * the LDM module names the checkpoint uses; this is that mapping, written
 * from the UNet's level structure (blocks per level, which levels attend), so
 * the same code serves SD1 and SDXL.
 */
#ifndef GS_LORA_KEYS_H
#define GS_LORA_KEYS_H

#include <stddef.h>

/* A UNet's block structure as LDM numbers it. */
typedef struct lora_unet_layout {
    int levels;           /* resolution levels (SD1: 4, SDXL: 3) */
    int layers_per_block; /* res blocks per down level (2 for both); up levels have one more */
    unsigned attn_levels; /* bit l set: level l (0 = full resolution) has attention */
} lora_unet_layout;

extern const lora_unet_layout lora_layout_sd1;
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
