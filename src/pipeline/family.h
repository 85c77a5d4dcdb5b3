/*
 * family - what a model family is, as data: where its networks live in a
 * single-file checkpoint, which text encoders it has and what of them
 * conditions the UNet, its UNet head layout, its extra conditioning and latent
 * scale. Loaders, conditioning and sampling read these rows; nothing else
 * branches on the family.
 */
#ifndef GS_FAMILY_H
#define GS_FAMILY_H

#include "gesso.h"
#include "model/safetensors.h"

#define FAMILY_MAX_TEXT 2

typedef struct family_text {
    const char *prefix; /* of the encoder's tensors */
    int heads;          /* not in the file: fixed per encoder kind */
    int skip;           /* layer taken: 1 = last, 2 = penultimate; 0 = the user's clip skip */
    int final_norm;     /* final layer norm applied to the taken layer's output */
    int pad_id;         /* padding after the first end token of a chunk */
    int pooled;         /* gives the pooled, projected text vector (SDXL encoder 2) */
} family_text;

typedef struct family_desc {
    gs_model_family id;
    const char *name; /* "sd1", "sd2", "sdxl" */
    const char *unet_prefix, *vae_prefix;
    int n_text;
    family_text text[FAMILY_MAX_TEXT]; /* contexts concatenated along channels, in order */
    int unet_heads, unet_head_dim;     /* one of them set */
    float latent_scale;
    int size_conditioning;   /* SDXL: pooled text + Fourier features of the image sizes */
    int zero_empty_negative; /* SDXL (A1111, sgm): an empty negative is all zeros */
} family_desc;

/* The family of a checkpoint from its tensor names, or NULL. */
const family_desc *family_detect(const st_file *f);
const family_desc *family_of(gs_model_family id);

/* What the file says it predicts: an explicit `modelspec.prediction_type`
   metadata value or a `v_pred` marker tensor; GS_PREDICTION_AUTO when silent. */
gs_prediction family_file_prediction(const st_file *f);

/* "sd2-v" for a v-predicting SD2, else the family's name. */
const char *family_display_name(const family_desc *d, gs_prediction pred);

#endif
