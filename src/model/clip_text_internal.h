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
    int proj;             /* columns of text_projection, 0 when none */
    int gelu_erf;         /* MLP activation: exact GELU (OpenCLIP), else QuickGELU */
    float *tok_emb;       /* [vocab, width], or NULL when kept in 16 bits: */
    uint16_t *tok_emb_bf; /* [vocab, width], bf16, or f16 where tok_emb_f16 is set */
    int tok_emb_f16;
    float *pos_emb;    /* [positions, width] */
    clip_layer *layer; /* [layers] */
    norm_weights final_ln;
    float *proj_w; /* [width, proj], used as x @ proj_w; NULL when none */
};

#endif
