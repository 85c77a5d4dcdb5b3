/*
 * conditioning - a prompt in A1111 syntax to the UNet's text conditioning.
 *
 * The prompt is parsed once into 77-token chunks with per-token weights. Each
 * text encoder of the family encodes every chunk (with its own padding id
 * after the first end token), its chunk outputs are weighted with the
 * mean-preserving rescale on their own, and the encoders' outputs are
 * concatenated along channels (A1111 applies emphasis per encoder before
 * sgm concatenates them). Chunks are concatenated along tokens. The pooled
 * vector (SDXL) is encoder 2's for the first chunk, before emphasis.
 */
#include <string.h>

#include "common/alloc.h"
#include "pipeline/engine.h"
#include "text/prompt.h"

#define CHUNK_TOKENS 77
#define CLIP_END_TOKEN 49407

void prompt_cond_free(prompt_cond *c)
{
    if (!c)
        return;
    gi_aligned_free(c->ctx);
    gi_aligned_free(c->pooled);
    memset(c, 0, sizeof *c);
}

/* The chunker pads with the end token; encoders that pad with another id get
   it after each chunk's first end token. */
static void repad(int32_t *ids, int n_chunks, int pad_id)
{
    if (pad_id == CLIP_END_TOKEN)
        return;
    for (int c = 0; c < n_chunks; c++) {
        int32_t *row = ids + (size_t)c * CHUNK_TOKENS;
        int t = 1;
        while (t < CHUNK_TOKENS && row[t] != CLIP_END_TOKEN)
            t++;
        for (t++; t < CHUNK_TOKENS; t++)
            row[t] = pad_id;
    }
}

static gs_status encode_one(gs_engine *eng, gs_model *m, int k, const prompt_chunks *pc,
                            int clip_skip, int channel_offset, prompt_cond *out, gi_error *err)
{
    const family_text *ft = &m->fam->text[k];
    clip_text *enc = m->text[k];
    int w = clip_text_width(enc), n = pc->n_chunks;
    size_t ids_n = (size_t)n * CHUNK_TOKENS;
    int32_t *ids = gi_malloc(ids_n * sizeof *ids);
    float *z = gi_aligned_alloc(ids_n * (size_t)w * sizeof *z);
    float *pooled = NULL;
    int proj = ft->pooled ? clip_text_proj_dim(enc) : 0;
    if (proj > 0)
        pooled = gi_aligned_alloc((size_t)n * proj * sizeof *pooled);
    gs_status st = GS_OK;
    if (!ids || !z || (proj > 0 && !pooled)) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory encoding the prompt");
        goto out;
    }
    memcpy(ids, pc->ids, ids_n * sizeof *ids);
    repad(ids, n, ft->pad_id);
    clip_text_take take = {.skip = ft->skip ? ft->skip : clip_skip, .final_norm = ft->final_norm};
    st = clip_text_encode_take(enc, eng->cx, ids, n, &take, z, pooled, err);
    if (st != GS_OK)
        goto out;
    for (int c = 0; c < n; c++) {
        float *zc = z + (size_t)c * CHUNK_TOKENS * w;
        prompt_apply_weights(zc, pc->weights + c * CHUNK_TOKENS, CHUNK_TOKENS, w);
        for (int t = 0; t < CHUNK_TOKENS; t++)
            memcpy(out->ctx + ((size_t)c * CHUNK_TOKENS + t) * m->text_width + channel_offset,
                   zc + (size_t)t * w, (size_t)w * sizeof *zc);
    }
    if (pooled)
        memcpy(out->pooled, pooled, (size_t)proj * sizeof *pooled);
out:
    gi_free(ids);
    gi_aligned_free(z);
    gi_aligned_free(pooled);
    return st;
}

gs_status encode_prompt(gs_engine *eng, gs_model *m, const char *prompt, int clip_skip,
                        int zero_if_empty, prompt_cond *out, gi_error *err)
{
    memset(out, 0, sizeof *out);
    prompt_chunks pc = {0};
    if (!prompt)
        prompt = "";
    int zero = zero_if_empty && prompt[0] == '\0';
    gs_status st = GS_OK;
    if (!zero && (st = prompt_to_chunks(eng->tok, prompt, &pc, err)) != GS_OK)
        goto out;
    if (clip_skip < 1 || clip_skip > m->text_layers) {
        st = gi_fail(err, GS_ERR_INVALID_ARGUMENT, "clip skip %d is outside 1..%d", clip_skip,
                     m->text_layers);
        goto out;
    }
    int chunks = zero ? 1 : pc.n_chunks;
    size_t n = (size_t)chunks * CHUNK_TOKENS * (size_t)m->text_width;
    out->ctx = gi_aligned_alloc(n * sizeof *out->ctx);
    if (m->pooled_width > 0)
        out->pooled = gi_aligned_alloc((size_t)m->pooled_width * sizeof *out->pooled);
    if (!out->ctx || (m->pooled_width > 0 && !out->pooled)) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory encoding the prompt");
        goto out;
    }
    out->tokens = chunks * CHUNK_TOKENS;
    if (zero) {
        memset(out->ctx, 0, n * sizeof *out->ctx);
        if (out->pooled)
            memset(out->pooled, 0, (size_t)m->pooled_width * sizeof *out->pooled);
        goto out;
    }
    int offset = 0;
    for (int k = 0; k < m->fam->n_text && st == GS_OK; k++) {
        st = encode_one(eng, m, k, &pc, clip_skip, offset, out, err);
        offset += clip_text_width(m->text[k]);
    }
out:
    if (st != GS_OK)
        prompt_cond_free(out);
    prompt_chunks_free(&pc);
    return st;
}

void extra_conditioning(const gs_model *m, const gs_params *p, const prompt_cond *pc, float *y)
{
    int pw = m->pooled_width;
    memcpy(y, pc->pooled, (size_t)pw * sizeof *y);
    /* sgm's order: (height, width) of the original, crop (top, left), target */
    float ids[6] = {
        (float)(p->original_height ? p->original_height : p->height),
        (float)(p->original_width ? p->original_width : p->width),
        (float)p->crop_top,
        (float)p->crop_left,
        (float)(p->target_height ? p->target_height : p->height),
        (float)(p->target_width ? p->target_width : p->width),
    };
    unet_size_features(ids, y + pw);
}
