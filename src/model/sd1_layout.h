/*
 * sd1_layout - the tensor names and shapes of an SD1.x single-file (LDM)
 * checkpoint for a given set of sizes: what `gesso models init-random` writes,
 * and a second description of the layout the loaders read.
 */
#ifndef GS_SD1_LAYOUT_H
#define GS_SD1_LAYOUT_H

#include <stdint.h>

#include "common/error.h"

typedef struct sd1_config {
    int unet_channels;   /* 320 */
    int unet_levels;     /* 4 (channel mult 1,2,4,4; attention on all but the last) */
    int context_dim;     /* 768: the text width */
    int text_layers;     /* 12 */
    int text_mlp;        /* 3072 */
    int vocab;           /* 49408 */
    int positions;       /* 77 */
    int vae_channels;    /* 128 */
    int latent_channels; /* 4 */
} sd1_config;

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

/* Known architecture names: "sd15" (SD1.5's real sizes) and "sd15-small" (a
   narrow model of the same topology for tests). */
gs_status sd1_config_for(const char *arch, sd1_config *cfg, gi_error *err);

/* Enumerates the tensors of cfg; *out is gi_malloc'd, *count entries. */
gs_status sd1_layout(const sd1_config *cfg, layout_tensor **out, int *count, gi_error *err);

#endif
