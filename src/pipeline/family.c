/*
 * family - the rows of the families gesso runs.
 *
 * Head counts of the text encoders are those of the real encoders (CLIP ViT-L
 * 12, OpenCLIP ViT-H 16, ViT-bigG 20); the layers taken follow A1111/sgm:
 * SD1 the user's clip skip with the final norm, SD2 ln_final of the
 * penultimate block, SDXL both encoders' penultimate layer without a norm.
 */
#include "pipeline/family.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CLIP_END_TOKEN 49407

static const family_desc families[] = {
    {
        .id = GS_FAMILY_SD1,
        .name = "sd1",
        .unet_prefix = "model.diffusion_model.",
        .vae_prefix = "first_stage_model.",
        .n_text = 1,
        .text = {{"cond_stage_model.transformer.text_model.", 12, 0, 1, CLIP_END_TOKEN, 0}},
        .unet_heads = 8,
        .latent_scale = 0.18215f,
    },
    {
        .id = GS_FAMILY_SD2,
        .name = "sd2",
        .unet_prefix = "model.diffusion_model.",
        .vae_prefix = "first_stage_model.",
        .n_text = 1,
        .text = {{"cond_stage_model.model.", 16, 2, 1, 0, 0}},
        .unet_head_dim = 64,
        .latent_scale = 0.18215f,
    },
    {
        .id = GS_FAMILY_SDXL,
        .name = "sdxl",
        .unet_prefix = "model.diffusion_model.",
        .vae_prefix = "first_stage_model.",
        .n_text = 2,
        .text = {{"conditioner.embedders.0.transformer.text_model.", 12, 2, 0, CLIP_END_TOKEN, 0},
                 {"conditioner.embedders.1.model.", 20, 2, 0, 0, 1}},
        .unet_head_dim = 64,
        .latent_scale = 0.13025f,
        .size_conditioning = 1,
        .zero_empty_negative = 1,
    },
};

#define N_FAMILIES (sizeof families / sizeof families[0])

static int has(const st_file *f, const char *a, const char *b)
{
    char name[256];
    int n = snprintf(name, sizeof name, "%s%s", a, b);
    return n > 0 && (size_t)n < sizeof name && st_find(f, name) != NULL;
}

/* The marker tensor of each text encoder kind. */
static int has_encoder(const st_file *f, const family_text *t)
{
    return has(f, t->prefix, "embeddings.token_embedding.weight") ||
           has(f, t->prefix, "token_embedding.weight");
}

const family_desc *family_detect(const st_file *f)
{
    for (size_t i = 0; i < N_FAMILIES; i++) {
        const family_desc *d = &families[i];
        int ok = has(f, d->unet_prefix, "input_blocks.0.0.weight") &&
                 has(f, d->vae_prefix, "decoder.conv_in.weight");
        for (int k = 0; k < d->n_text && ok; k++)
            ok = has_encoder(f, &d->text[k]);
        if (ok)
            return d;
    }
    return NULL;
}

const family_desc *family_of(gs_model_family id)
{
    for (size_t i = 0; i < N_FAMILIES; i++)
        if (families[i].id == id)
            return &families[i];
    return NULL;
}

gs_prediction family_file_prediction(const st_file *f)
{
    const char *p = st_metadata(f, "modelspec.prediction_type");
    if (p) {
        if (strcasecmp(p, "v") == 0 || strcasecmp(p, "v_prediction") == 0 ||
            strcasecmp(p, "v-prediction") == 0)
            return GS_PREDICTION_V;
        if (strcasecmp(p, "epsilon") == 0 || strcasecmp(p, "eps") == 0)
            return GS_PREDICTION_EPS;
    }
    if (st_find(f, "v_pred"))
        return GS_PREDICTION_V;
    return GS_PREDICTION_AUTO;
}

const char *family_display_name(const family_desc *d, gs_prediction pred)
{
    if (!d)
        return "unknown";
    if (d->id == GS_FAMILY_SD2 && pred == GS_PREDICTION_V)
        return "sd2-v";
    return d->name;
}
