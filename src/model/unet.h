/*
 * unet - the SD1.x denoising UNet (LDM's UNetModel, ε-prediction).
 *
 * The structure is read from the checkpoint: input_blocks.N are ResBlocks
 * (optionally followed by a SpatialTransformer) or downsamplers, then the
 * middle block, then output_blocks with skip concatenation and upsamplers.
 * Channel counts, depth and context width come from tensor shapes; the head
 * count is the family default (8 for SD1).
 */
#ifndef GS_UNET_H
#define GS_UNET_H

#include "compute/compute.h"
#include "model/safetensors.h"
#include "model/weights.h"

typedef struct unet unet;

/* prefix e.g. "model.diffusion_model." */
gs_status unet_load(const st_file *f, const char *prefix, int bf16, weight_log *log, unet **out,
                    gi_error *err);
int unet_in_channels(const unet *m);
int unet_model_channels(const unet *m);
int unet_context_dim(const unet *m);
/* Bytes of converted weights the UNet keeps resident. */
size_t unet_weight_bytes(const unet *m);
/* x: [batch, h, w, C_in] NHWC latent; t: [batch] timesteps (may be fractional);
   context: [batch, tokens, context_dim]; eps: [batch, h, w, C_in] out.
   Any h, w >= 1 work: upsampled maps are resized to their skip's size, as A1111 does. */
gs_status unet_forward(unet *m, gi_compute *cx, const float *x, const float *t,
                       const float *context, int batch, int h, int w, int tokens, float *eps,
                       gi_error *err);
void unet_free(unet *m);

#endif
