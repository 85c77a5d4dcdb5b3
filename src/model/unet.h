/*
 * unet - the denoising UNet of SD1.x, SD2.x and SDXL (LDM/sgm's UNetModel).
 *
 * The structure is read from the checkpoint: input_blocks.N are ResBlocks
 * (optionally followed by a SpatialTransformer) or downsamplers, then the
 * middle block, then output_blocks with skip concatenation and upsamplers.
 * Channel counts, transformer depth per block, context width, the output
 * channels and the added conditioning (SDXL's label_emb) come from tensor
 * shapes and names; the head layout is not in the file, so the caller gives
 * the family's (SD1: 8 heads; SD2, SDXL: heads 64 wide).
 */
#ifndef GS_UNET_H
#define GS_UNET_H

#include "compute/compute.h"
#include "model/safetensors.h"
#include "model/weights.h"

typedef struct unet unet;

/* How attention splits into heads: exactly one of the two is set. */
typedef struct unet_opts {
    int heads;    /* fixed head count (SD1: 8), or 0 */
    int head_dim; /* fixed head width (SD2, SDXL: 64), or 0 */
} unet_opts;

/* prefix e.g. "model.diffusion_model." */
/* half (WL_*): the dtype GEMM weights are kept in. */
gs_status unet_load(const st_file *f, const char *prefix, const unet_opts *opts, int half,
                    weight_log *log, unet **out, gi_error *err);
int unet_in_channels(const unet *m);
int unet_model_channels(const unet *m);
int unet_context_dim(const unet *m);
/* Channels of the prediction (out.2): 4 even for a 9-channel inpainting UNet. */
int unet_out_channels(const unet *m);
/* Width of the added conditioning y (SDXL: pooled text + size features); 0
   when the UNet has no label_emb. */
int unet_adm_channels(const unet *m);
/* SDXL's size features: each of the six time_ids (original h, w, crop top,
   left, target h, w) as sgm's 256-wide timestep_embedding, [cos, sin] of
   value * exp(-ln(10000) i / 128) computed in float32, in order. */
void unet_size_features(const float time_ids[6], float *out /* [1536] */);
/* Bytes of converted weights the UNet keeps resident. */
size_t unet_weight_bytes(const unet *m);
/* x: [batch, h, w, C_in] NHWC latent; t: [batch] timesteps (may be fractional);
   context: [batch, tokens, context_dim]; y: [batch, adm] added conditioning
   (NULL when unet_adm_channels is 0, required otherwise); out: [batch, h, w,
   C_out]. Any h, w >= 1 work: upsampled maps are resized to their skip's
   size, as A1111 does. */
gs_status unet_forward(unet *m, gi_compute *cx, const float *x, const float *t,
                       const float *context, const float *y, int batch, int h, int w, int tokens,
                       float *out, gi_error *err);
void unet_free(unet *m);

#endif
