/*
 * clip_text_load - the text encoder's weights from either tensor layout.
 *
 * A layout is a row of names (a table, so a third one is a row, not a branch
 * in the loader): OpenAI CLIP as Hugging Face's CLIPTextModel names it, and
 * OpenCLIP's TextTransformer. The layout is the one whose token table exists
 * under the prefix. OpenCLIP keeps q, k, v as one in_proj [3w, w] (rows q, k, v
 * in that order); it stays one matrix and the encoder runs it as one GEMM.
 */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "model/clip_text_internal.h"

typedef struct clip_layout {
    const char *what;              /* for messages */
    const char *tok_emb, *pos_emb; /* full tensor names under the prefix */
    clip_block_names block;        /* a layer's tensors */
    const char *final_ln;          /* base name */
    const char *projection;        /* [w, proj] tensor name, NULL when never present */
    int gelu_erf;                  /* exact GELU (else QuickGELU) */
} clip_layout;

static const clip_layout LAYOUTS[] = {
    {"OpenAI CLIP (Hugging Face names)", "embeddings.token_embedding.weight",
     "embeddings.position_embedding.weight", CLIP_BLOCK_NAMES_HF("encoder.layers.%d."),
     "final_layer_norm", NULL, 0},
    {"OpenCLIP", "token_embedding.weight", "positional_embedding",
     CLIP_BLOCK_NAMES_OPENCLIP("transformer.resblocks.%d."), "ln_final", "text_projection", 1},
};

static gs_status load_fail(clip_text *m, gs_status st)
{
    clip_text_free(m);
    return st;
}

gs_status clip_text_load(const st_file *f, const char *prefix, int heads, int half, weight_log *log,
                         clip_text **out, gi_error *err)
{
    *out = NULL;
    clip_text *m = gi_calloc(1, sizeof *m);
    if (!m)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    weight_loader l = wl_begin(f, prefix, &m->store, half, log, err);
    const clip_layout *lo = NULL;
    for (size_t i = 0; i < sizeof LAYOUTS / sizeof LAYOUTS[0] && !lo; i++)
        if (wl_find(&l, LAYOUTS[i].tok_emb))
            lo = &LAYOUTS[i];
    if (!lo)
        return load_fail(m,
                         gi_fail(err, GS_ERR_FORMAT,
                                 "no text encoder (OpenAI CLIP or OpenCLIP) under '%s'", prefix));
    char n[256], p[128];
    m->gelu_erf = lo->gelu_erf;
    m->vocab = (int)wl_dim(&l, lo->tok_emb, 0);
    m->width = (int)wl_dim(&l, lo->tok_emb, 1);
    m->positions = (int)wl_dim(&l, lo->pos_emb, 0);
    snprintf(p, sizeof p, lo->block.layer, 0);
    m->mlp = (int)wl_dim(&l, wl_name(n, sizeof n, "%s%s.weight", p, lo->block.fc1), 0);
    m->layers = clip_block_count(&l, &lo->block);
    m->heads = heads;
    if (m->vocab <= 0 || m->width <= 0 || m->positions <= 0 || m->mlp <= 0 || m->layers == 0)
        return load_fail(m, gi_fail(err, GS_ERR_FORMAT,
                                    "%s text encoder tensors under '%s' are missing or malformed",
                                    lo->what, prefix));
    if (heads < 1 || m->width % heads != 0 || m->positions < 77)
        return load_fail(m, gi_fail(err, GS_ERR_UNSUPPORTED,
                                    "text encoder width %d / %d positions does not fit CLIP "
                                    "with %d heads",
                                    m->width, m->positions, heads));
    int w = m->width;
    /* a prompt reads a few dozen of its tens of thousands of rows: mapped, the
       rest never becomes resident (72 MB for SD1.5's table in 16 bits) */
    m->tok_emb = wl_table(&l, lo->tok_emb, 2, (int64_t[]){m->vocab, w}, &m->tok_emb_dtype);
    m->pos_emb = wl_tensor(&l, lo->pos_emb, 2, (int64_t[]){m->positions, w});
    m->layer = gi_calloc((size_t)m->layers, sizeof *m->layer);
    if (!m->layer)
        return load_fail(m, gi_fail(err, GS_ERR_NO_MEMORY, "out of memory"));
    clip_block_shape shape = {m->width, m->mlp, m->heads, m->gelu_erf};
    for (int i = 0; i < m->layers; i++)
        clip_block_load(&l, &lo->block, i, &shape, &m->layer[i]);
    wl_norm(&l, lo->final_ln, w, &m->final_ln);
    /* small ([w, proj]) and used on one row per sequence: kept in f32 */
    if (lo->projection && wl_find(&l, lo->projection)) {
        m->proj = (int)wl_dim(&l, lo->projection, 1);
        m->proj_w = wl_tensor(&l, lo->projection, 2, (int64_t[]){w, m->proj});
    }
    if (l.st != GS_OK)
        return load_fail(m, l.st);
    *out = m;
    return GS_OK;
}

int clip_text_width(const clip_text *m)
{
    return m->width;
}

int clip_text_layers(const clip_text *m)
{
    return m->layers;
}

int clip_text_proj_dim(const clip_text *m)
{
    return m->proj_w ? m->proj : 0;
}

int clip_text_has_projection(const clip_text *m)
{
    return m->proj_w != NULL;
}

size_t clip_text_weight_bytes(const clip_text *m)
{
    return m->store.bytes;
}

void clip_text_use_quick_gelu(clip_text *m)
{
    m->gelu_erf = 0;
}

void clip_text_free(clip_text *m)
{
    if (!m)
        return;
    weight_store_free(&m->store);
    gi_free(m->layer);
    gi_free(m);
}
