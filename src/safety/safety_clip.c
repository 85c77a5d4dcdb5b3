/*
 * safety_clip - both CLIP towers from one file. The text tower is the
 * engine's clip_text. In Hugging Face's names (under "text_model.") its pooled
 * row (the EOS: the first maximum id) goes through text_projection here, since
 * that matrix sits outside the text model's prefix; open_clip's layout keeps
 * text_projection with the text tower, which then pools and projects itself.
 */
#include "safety/safety_clip.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

static void normalise(float *v, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
    for (int i = 0; i < n; i++)
        v[i] *= inv;
}

gs_status safety_clip_open(const char *path, safety_clip **out, gi_error *err)
{
    *out = NULL;
    safety_clip *c = gi_calloc(1, sizeof *c);
    if (!c)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    gs_status st = st_open(path, &c->file, err);
    if (st != GS_OK)
        goto fail;
    if ((st = clip_vision_load(c->file, &c->vision, err)) != GS_OK)
        goto fail;
    /* the text tower: Hugging Face's names under text_model. with the projection
       beside it, or open_clip's at the root with text_projection [w, proj] inside */
    const char *prefix =
        st_find(c->file, "text_model.embeddings.token_embedding.weight") ? "text_model." : "";
    char name[128];
    snprintf(name, sizeof name, "%s%s", prefix,
             prefix[0] ? "embeddings.token_embedding.weight" : "token_embedding.weight");
    const st_tensor *te = st_find(c->file, name);
    int tw = te && te->ndim == 2 ? (int)te->shape[1] : 0;
    if (!tw || !st_find(c->file, prefix[0] ? "text_projection.weight" : "text_projection")) {
        st = gi_fail(err, GS_ERR_FORMAT,
                     "no CLIP text tower: expected text_model.* and text_projection.weight, or "
                     "open_clip's token_embedding.weight and text_projection");
        goto fail;
    }
    /* OpenAI CLIP's heads: width / 64 */
    if ((st = clip_text_load(c->file, prefix, tw >= 64 ? tw / 64 : 1, 0, NULL, &c->text, err)) !=
        GS_OK)
        goto fail;
    clip_text_use_quick_gelu(c->text);
    c->proj = clip_vision_proj_dim(c->vision);
    if (prefix[0]) {
        weight_loader l = wl_begin(c->file, "", &c->store, 0, NULL, err);
        wl_linear(&l, "text_projection", c->proj, tw, 0, &c->text_proj);
        if ((st = l.st) != GS_OK)
            goto fail;
    } else if (clip_text_proj_dim(c->text) != c->proj) {
        st = gi_fail(err, GS_ERR_FORMAT, "text_projection has %d columns, visual.proj %d",
                     clip_text_proj_dim(c->text), c->proj);
        goto fail;
    }
    *out = c;
    return GS_OK;
fail:
    gi_error_prefix(err, "CLIP model %s", path);
    safety_clip_free(c);
    return st;
}

void safety_clip_free(safety_clip *c)
{
    if (!c)
        return;
    clip_vision_free(c->vision);
    clip_text_free(c->text);
    weight_store_free(&c->store);
    st_close(c->file);
    gi_free(c);
}

gs_status safety_clip_image(safety_clip *c, gi_compute *cx, const uint8_t *rgb, int w, int h,
                            int channels, float *feat, gi_error *err)
{
    int S = clip_vision_image_size(c->vision);
    float *px = gi_malloc((size_t)3 * S * S * sizeof *px); /* [3, S, S] */
    if (!px)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    gs_status st = clip_preprocess(rgb, w, h, channels, S, px, err);
    if (st == GS_OK)
        st = clip_vision_encode(c->vision, cx, px, 1, feat, err);
    gi_free(px);
    if (st == GS_OK)
        normalise(feat, c->proj);
    return st;
}

gs_status safety_clip_text(safety_clip *c, gi_compute *cx, const int32_t *ids, int n, float *feat,
                           gi_error *err)
{
    const int T = SAFETY_CLIP_TOKENS, w = clip_text_width(c->text);
    float *hidden = gi_malloc((size_t)n * T * w * sizeof *hidden); /* [n, 77, w] */
    float *eos = gi_malloc((size_t)n * w * sizeof *eos);           /* [n, w] */
    clip_text_take take = {.skip = 1, .final_norm = 1};
    gs_status st = GS_OK;
    if (!hidden || !eos) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if (!c->text_proj.w) { /* open_clip: the encoder pools and projects */
        if ((st = clip_text_encode_take(c->text, cx, ids, n, &take, hidden, feat, err)) != GS_OK)
            goto out;
        for (int s = 0; s < n; s++)
            normalise(feat + (size_t)s * c->proj, c->proj);
        goto out;
    }
    if ((st = clip_text_encode_take(c->text, cx, ids, n, &take, hidden, NULL, err)) != GS_OK)
        goto out;
    for (int s = 0; s < n; s++) {
        const int32_t *row = ids + (size_t)s * T;
        int at = 0;
        for (int t = 1; t < T; t++)
            if (row[t] > row[at])
                at = t;
        memcpy(eos + (size_t)s * w, hidden + ((size_t)s * T + at) * w, (size_t)w * sizeof *eos);
    }
    if ((st = op_linear(cx, &c->text_proj, eos, n, feat, err)) != GS_OK)
        goto out;
    for (int s = 0; s < n; s++)
        normalise(feat + (size_t)s * c->proj, c->proj);
out:
    gi_free(hidden);
    gi_free(eos);
    return st;
}
