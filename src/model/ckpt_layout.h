/*
 * ckpt_layout - the tensor names and shapes of a family's single-file
 * checkpoint (SD1.x, SD2.x, SDXL base) for a given set of sizes: what `gesso
 * models init-random` writes, and a second description of the layout the
 * loaders read.
 */
#ifndef GS_CKPT_LAYOUT_H
#define GS_CKPT_LAYOUT_H

#include <stdint.h>

#include "common/error.h"

#define LAYOUT_MAX_LEVELS 8

typedef enum layout_family {
    LAYOUT_SD1,  /* CLIP ViT-L text encoder (HF names) under cond_stage_model.transformer. */
    LAYOUT_SD2,  /* OpenCLIP ViT-H under cond_stage_model.model., linear proj_in/out */
    LAYOUT_SDXL, /* CLIP ViT-L + OpenCLIP bigG under conditioner.embedders.{0,1}., label_emb */
} layout_family;

typedef struct layout_config {
    layout_family family;
    int unet_channels;                 /* 320 */
    int unet_levels;                   /* 4 (SD1, SD2), 3 (SDXL) */
    int unet_mult[LAYOUT_MAX_LEVELS];  /* channel multiplier per level (1,2,4,4; 1,2,4) */
    int unet_depth[LAYOUT_MAX_LEVELS]; /* transformer depth per level, 0 = none (1,1,1,0; 0,2,10) */
    int unet_mid_depth;                /* the middle block's (1; 10) */
    int unet_linear_proj;              /* proj_in/out linear [c,c], not 1x1 convs [c,c,1,1] */
    int unet_adm;                      /* label_emb input width (SDXL: 2816), 0 = none */
    int context_dim;                   /* the UNet's cross-attention input width */
    int clip_width, clip_layers, clip_mlp; /* HF CLIP text encoder (SD1; SDXL's first), 0 = none */
    int oc_width, oc_layers, oc_mlp; /* OpenCLIP text encoder (SD2; SDXL's second), 0 = none */
    int vocab;                       /* 49408 */
    int positions;                   /* 77 */
    int vae_channels;                /* 128 */
    int vae_mult[4];                 /* 1,2,4,4 */
    int latent_channels;             /* 4 */
    int unet_in_channels;            /* the UNet's input: 0 = latent_channels; 9 for inpainting */
} layout_config;

typedef enum layout_init {
    INIT_WEIGHT, /* fan-in scaled random */
    INIT_ZERO,   /* biases */
    INIT_ONE,    /* norm scales */
    INIT_EMBED,  /* embeddings: small random */
    INIT_POSITION_IDS
} layout_init;

typedef struct layout_tensor {
    char name[128];
    int ndim;
    int64_t shape[4];
    int64_t fan_in;
    layout_init init;
} layout_tensor;

/* Known architecture names: "sd15", "sd2", "sdxl" (the real sizes of SD1.5, SD 2.1
   and SDXL base) and "sd15-small", "sd2-small", "sdxl-small" (narrow models of the
   same topologies for tests; the last two sized like the reference fixtures). */
gs_status layout_config_for(const char *arch, layout_config *cfg, gi_error *err);

/* ModelSpec metadata of the family: modelspec.architecture and the "family" name. */
const char *layout_modelspec_architecture(const layout_config *cfg);
const char *layout_family_name(const layout_config *cfg);

/* Enumerates the tensors of cfg; *out is gi_malloc'd, *count entries. */
gs_status layout_build(const layout_config *cfg, layout_tensor **out, int *count, gi_error *err);

#endif
