/*
 * preview - a cheap look at a latent during sampling: a fixed affine map from
 * the four latent channels to RGB, one per VAE (the approximation A1111 and
 * ComfyUI use for their cheapest previews), at latent resolution. No model is run.
 */
#include "common/alloc.h"
#include "pipeline/engine.h"

/* Least-squares fit of SD1 latents to RGB, as published by the community. */
static const float sd1_latent_rgb[4][3] = {
    {0.3512f, 0.2297f, 0.3227f},
    {0.3250f, 0.4974f, 0.2350f},
    {-0.2829f, 0.1762f, 0.2721f},
    {-0.2120f, -0.2616f, -0.7177f},
};

/* The same kind of fit for SDXL's VAE, with a bias (ComfyUI latent_formats.SDXL). */
static const float sdxl_latent_rgb[4][3] = {
    {0.3651f, 0.4232f, 0.4341f},
    {-0.2533f, -0.0042f, 0.1068f},
    {0.1076f, 0.1111f, -0.0362f},
    {-0.3165f, -0.2492f, -0.2188f},
};
static const float sdxl_latent_bias[3] = {0.1084f, -0.0175f, -0.0011f};

gs_status latent_preview(const float *latent, gs_model_family family, int channels, int h, int w,
                         gs_image **out)
{
    *out = NULL;
    if (channels != 4)
        return GS_ERR_UNSUPPORTED;
    const float(*factors)[3] = family == GS_FAMILY_SDXL ? sdxl_latent_rgb : sd1_latent_rgb;
    static const float no_bias[3] = {0, 0, 0};
    const float *bias = family == GS_FAMILY_SDXL ? sdxl_latent_bias : no_bias;
    gs_image *img = gi_calloc(1, sizeof *img);
    if (!img)
        return GS_ERR_NO_MEMORY;
    img->pixels = gi_malloc((size_t)w * h * 3);
    if (!img->pixels) {
        gi_free(img);
        return GS_ERR_NO_MEMORY;
    }
    img->width = w;
    img->height = h;
    img->channels = 3;
    size_t plane = (size_t)h * w;
    for (size_t p = 0; p < plane; p++) {
        for (int k = 0; k < 3; k++) {
            float v = bias[k];
            for (int c = 0; c < 4; c++)
                v += latent[c * plane + p] * factors[c][k];
            v = (v + 1.0f) * 127.5f;
            img->pixels[p * 3 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
        }
    }
    *out = img;
    return GS_OK;
}
