/*
 * vae - the SD1.x autoencoder (LDM's AutoencoderKL): the encoder maps an image
 * in [-1,1] to the mean/logvar of its latent, the decoder maps a latent back.
 * Channel counts and depth come from the tensor shapes.
 */
#ifndef GS_VAE_H
#define GS_VAE_H

#include "compute/compute.h"
#include "model/safetensors.h"
#include "model/weights.h"

typedef struct vae vae;

/* prefix e.g. "first_stage_model." */
/* half (WL_*): the dtype GEMM weights are kept in. */
gs_status vae_load(const st_file *f, const char *prefix, int half, weight_log *log, vae **out,
                   gi_error *err);
/* The same in two parts: the decoder (all that text to image needs), and the
   encoder into a VAE that has its decoder, when an image is first encoded. */
gs_status vae_load_decoder(const st_file *f, const char *prefix, int half, weight_log *log,
                           vae **out, gi_error *err);
gs_status vae_load_encoder(vae *m, const st_file *f, const char *prefix, int half, weight_log *log,
                           gi_error *err);
int vae_has_encoder(const vae *m);
/* Whether the VAE multiplies f32 activations whatever the engine's products
   take (compute_f32_activations): its rounding lands on the pixels with no
   sampler to absorb it, so a bf16 engine left to choose keeps it there. */
void vae_set_f32_activations(vae *m, int on);
int vae_latent_channels(const vae *m);
/* Bytes of converted weights the VAE keeps resident. */
size_t vae_weight_bytes(const vae *m);
/* latent: [batch, h, w, z] NHWC decoder input (already divided by the scale factor);
   image: [batch, 8h, 8w, 3] out, in [-1,1] space (unclamped). */
gs_status vae_decode(vae *m, gi_compute *cx, const float *latent, int batch, int h, int w,
                     float *image, gi_error *err);
/* The same decode in tiles of at most tile x tile latent pixels (overlap
   included; 0 = whole), for memory that does not grow with the image. Group
   norm statistics are shared by all tiles (see vae_decode.c), so the output
   has no seams but differs slightly from the whole decode; a tile covering the
   latent gives the whole decode exactly. */
gs_status vae_decode_tiled(vae *m, gi_compute *cx, const float *latent, int batch, int h, int w,
                           int tile, float *image, gi_error *err);
/* image: [batch, H, W, 3] in [-1,1]; mean, logvar: [batch, H/8, W/8, z] (logvar may be NULL). */
gs_status vae_encode(vae *m, gi_compute *cx, const float *image, int batch, int H, int W,
                     float *mean, float *logvar, gi_error *err);
void vae_free(vae *m);

#endif
