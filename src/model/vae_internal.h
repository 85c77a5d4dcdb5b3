/*
 * vae_internal - the VAE's layer structs and shared blocks, for the files of
 * model/vae*.c only.
 */
#ifndef GS_VAE_INTERNAL_H
#define GS_VAE_INTERNAL_H

#include "compute/ops.h"
#include "model/vae.h"
#include "model/weights.h"

#define VAE_GROUPS 32
#define VAE_EPS 1e-6f
#define VAE_MAX_LEVELS 8
#define VAE_MAX_BLOCKS 4

typedef struct vae_res {
    norm_weights n1, n2;
    conv_weights c1, c2, skip;
    int cin, cout, has_skip;
} vae_res;

typedef struct vae_attn {
    norm_weights norm;
    conv_weights q, k, v, proj;
    int c;
} vae_attn;

typedef struct vae_level {
    vae_res block[VAE_MAX_BLOCKS];
    int n_blocks;
    conv_weights resample; /* downsample (encoder) / upsample (decoder) conv */
    int has_resample;
} vae_level;

typedef struct vae_coder {
    conv_weights conv_in, conv_out;
    vae_res mid1, mid2;
    vae_attn attn;
    norm_weights norm_out;
    vae_level level[VAE_MAX_LEVELS];
    int levels;
} vae_coder;

struct vae {
    weight_store store;     /* the decoder's weights */
    weight_store enc_store; /* the encoder's, when it is loaded (has_encoder) */
    int has_encoder;
    int f32_activations; /* vae_set_f32_activations */
    int z, levels;
    vae_coder enc, dec;
    conv_weights quant, post_quant;
};

/* x [n, h, w, cin] -> out [n, h, w, cout]; out must not alias x. */
gs_status vae_res_forward(gi_compute *cx, const vae_res *r, const float *x, int n, int h, int w,
                          float *out, gi_error *err);
/* The middle block (res, attention, res) from *cur, ending in *cur again. */
gs_status vae_mid_forward(gi_compute *cx, const vae_coder *c, float **cur, float **alt, int n,
                          int h, int w, gi_error *err);
void vae_swap(float **a, float **b);
/* Switches cx to what the VAE's products take (vae_set_f32_activations);
   returns the mode to put back with compute_set_mode. */
compute_mode vae_enter_mode(const vae *m, gi_compute *cx);

#endif
