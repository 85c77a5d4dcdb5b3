/*
 * clip_block - the pre-norm transformer layer both CLIP towers are made of:
 * x += attn(ln1(x)); x += mlp(ln2(x)), the MLP with QuickGELU (OpenAI CLIP) or
 * exact GELU (OpenCLIP). The text tower runs it causally over 77 tokens, the
 * vision tower over its patches and class token without a mask.
 *
 * Layer tensor names are a row of clip_block_names, so a tower's layouts
 * (Hugging Face, OpenCLIP) share the loader.
 */
#ifndef GS_CLIP_BLOCK_H
#define GS_CLIP_BLOCK_H

#include "compute/ops.h"
#include "model/weights.h"

typedef struct clip_layer {
    norm_weights ln1, ln2;
    linear_weights qkv;     /* [3w, w]: q, k, v rows in that order (one GEMM), or ... */
    linear_weights q, k, v; /* ... [w, w] each when qkv.out == 0 */
    linear_weights o, fc1, fc2;
} clip_layer;

/* A layer's tensor names under the tower's prefix. */
typedef struct clip_block_names {
    const char *layer;                 /* printf format of a layer's prefix (%d) */
    const char *ln1, *ln2;             /* base names under a layer */
    const char *q, *k, *v;             /* separate projections, or NULL ... */
    const char *in_proj_w, *in_proj_b; /* ... the fused one (tensor names) */
    const char *out_proj, *fc1, *fc2;  /* base names under a layer */
} clip_block_names;

/* The two layer namings under a layer prefix format such as "encoder.layers.%d.". */
#define CLIP_BLOCK_NAMES_HF(fmt)                                                                   \
    {                                                                                              \
        (fmt), "layer_norm1", "layer_norm2", "self_attn.q_proj", "self_attn.k_proj",               \
            "self_attn.v_proj", NULL, NULL, "self_attn.out_proj", "mlp.fc1", "mlp.fc2"             \
    }
#define CLIP_BLOCK_NAMES_OPENCLIP(fmt)                                                             \
    {                                                                                              \
        (fmt), "ln_1", "ln_2", NULL, NULL, NULL, "attn.in_proj_weight", "attn.in_proj_bias",       \
            "attn.out_proj", "mlp.c_fc", "mlp.c_proj"                                              \
    }

/* The shape every layer of a tower shares. */
typedef struct clip_block_shape {
    int width, mlp, heads;
    int gelu_erf; /* exact GELU, else QuickGELU */
} clip_block_shape;

/* Layers counted from 0 until the first whose ln1 weight is missing. */
int clip_block_count(weight_loader *l, const clip_block_names *nm);
/* Layer i's weights into L (errors stick in l). */
void clip_block_load(weight_loader *l, const clip_block_names *nm, int i, const clip_block_shape *s,
                     clip_layer *L);

/* Scratch of one pass; q, k, v point into qkv with row stride qkv_stride. */
typedef struct clip_bufs {
    float *h;   /* [rows, w] layer-norm output, then attention output */
    float *qkv; /* [rows, 3w] */
    float *mlp; /* [rows, mlp] */
    const float *q, *k, *v;
    int qkv_stride;
} clip_bufs;

/* The buffers for rows tokens from cx's scratch arena; GS_ERR_NO_MEMORY when it is full. */
gs_status clip_bufs_alloc(gi_compute *cx, long rows, const clip_block_shape *s, clip_bufs *b,
                          gi_error *err);

/* Layers [from, to) on the residual stream x [n_seq * T, w], in place. */
gs_status clip_blocks_run(gi_compute *cx, const clip_layer *layer, const clip_block_shape *s,
                          float *x, int n_seq, int T, int causal, int from, int to, clip_bufs *b,
                          gi_error *err);

#endif
