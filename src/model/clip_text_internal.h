/*
 * clip_text_internal - the text encoder's weights, for model/clip_text*.c only:
 * clip_text_load.c fills them from either tensor layout, clip_text.c runs them.
 */
#ifndef GS_CLIP_TEXT_INTERNAL_H
#define GS_CLIP_TEXT_INTERNAL_H

#include "compute/ops.h"
#include "model/clip_block.h"
#include "model/clip_text.h"
#include "model/weights.h"

struct clip_text {
    weight_store store;
    int width, layers, positions, vocab, mlp, heads;
    int proj;               /* columns of text_projection, 0 when none */
    int gelu_erf;           /* MLP activation: exact GELU (OpenCLIP), else QuickGELU */
    const void *tok_emb;    /* [vocab, width], the file's rows where it is mapped */
    st_dtype tok_emb_dtype; /* ST_F32, ST_BF16 or ST_F16 */
    float *pos_emb;         /* [positions, width] */
    clip_layer *layer;      /* [layers] */
    norm_weights final_ln;
    float *proj_w; /* [width, proj], used as x @ proj_w; NULL when none */
};

#endif
