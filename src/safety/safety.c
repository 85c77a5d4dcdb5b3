/*
 * safety - gs_safety: the AI Horde's image safety check (horde-safety's
 * NSFWChecker as reGen runs it, without DeepDanbooru). Loading computes the
 * CLIP text features of every predicate and concept once; a check is then one
 * image-tower pass and two small matrix-vector products.
 */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "pipeline/engine.h"
#include "safety/prompt_normalize.h"
#include "safety/nsfw_decide.h"
#include "safety/safety_clip.h"
#include "text/tokenizer.h"

#define TEXT_BATCH 16 /* sequences per text-tower pass: bounds its scratch */

struct gs_safety {
    safety_clip *clip;
    nsfw_lists lists;
    float *pred_feat;                   /* [n_pred, proj] */
    float *concept_feat;                /* [n_concept, proj] */
    double shift_other, shift_underage; /* tests (gs_safety_test_shift) */
};

/* ids [77] of text as open_clip's tokenize: BOS, at most 75 tokens, EOS, zeros. */
static gs_status tokenize(const clip_tokenizer *tok, const char *text, int32_t *ids, gi_error *err)
{
    int32_t *t = NULL;
    size_t n = 0;
    gs_status st = clip_tokenize(tok, text, &t, &n, err);
    if (st != GS_OK)
        return st;
    memset(ids, 0, SAFETY_CLIP_TOKENS * sizeof *ids);
    size_t k = n < SAFETY_CLIP_TOKENS - 2 ? n : SAFETY_CLIP_TOKENS - 2;
    ids[0] = CLIP_BOS;
    memcpy(ids + 1, t, k * sizeof *ids);
    ids[k + 1] = CLIP_EOS;
    gi_free(t);
    return GS_OK;
}

/* feat [n, proj] of the texts terms[0..n). */
static gs_status embed_terms(gs_engine *eng, safety_clip *c, const nsfw_term *terms, int n,
                             float *feat, gi_error *err)
{
    int32_t ids[TEXT_BATCH * SAFETY_CLIP_TOKENS];
    for (int i = 0; i < n; i += TEXT_BATCH) {
        int b = n - i < TEXT_BATCH ? n - i : TEXT_BATCH;
        for (int j = 0; j < b; j++) {
            gs_status st = tokenize(eng->tok, terms[i + j].text, ids + j * SAFETY_CLIP_TOKENS, err);
            if (st != GS_OK)
                return st;
        }
        gs_status st = safety_clip_text(c, eng->cx, ids, b, feat + (size_t)i * c->proj, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}

gs_status gs_safety_load(gs_engine *eng, const char *clip_path, gs_safety **out)
{
    if (!eng || !clip_path || !out)
        return GS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    gi_error err = {0};
    gs_safety *s = gi_calloc(1, sizeof *s);
    if (!s)
        return engine_fail(eng, &(gi_error){GS_ERR_NO_MEMORY, "out of memory"});
    int saved = compute_enter(eng->cx);
    gs_status st = safety_clip_open(clip_path, &s->clip, &err);
    if (st == GS_OK)
        st = nsfw_lists_build(&s->lists, &err);
    if (st == GS_OK) {
        size_t p = (size_t)s->clip->proj;
        s->pred_feat = gi_malloc((size_t)s->lists.n_pred * p * sizeof *s->pred_feat);
        s->concept_feat = gi_malloc((size_t)s->lists.n_concept * p * sizeof *s->concept_feat);
        if (!s->pred_feat || !s->concept_feat)
            st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
    }
    if (st == GS_OK)
        st = embed_terms(eng, s->clip, s->lists.pred, s->lists.n_pred, s->pred_feat, &err);
    if (st == GS_OK)
        st = embed_terms(eng, s->clip, s->lists.concept, s->lists.n_concept, s->concept_feat, &err);
    compute_leave(saved);
    if (st != GS_OK) {
        gs_safety_free(s);
        return engine_fail(eng, &err);
    }
    *out = s;
    return GS_OK;
}

void gs_safety_free(gs_safety *s)
{
    if (!s)
        return;
    safety_clip_free(s->clip);
    nsfw_lists_free(&s->lists);
    gi_free(s->pred_feat);
    gi_free(s->concept_feat);
    gi_free(s);
}

gs_status gs_safety_normalize_prompt(const char *prompt, char *out, size_t out_size)
{
    if (!prompt || !out || out_size < strlen(prompt) + 1)
        return GS_ERR_INVALID_ARGUMENT;
    memmove(out, prompt, strlen(prompt) + 1);
    return prompt_normalize(out) == 0 ? GS_OK : GS_ERR_NO_MEMORY;
}

void gs_safety_test_shift(gs_safety *s, double other, double underage)
{
    if (s) {
        s->shift_other = other;
        s->shift_underage = underage;
    }
}

/* sim [n] = feats [n, p] . f [p] */
static void similarities(const float *feats, int n, int p, const float *f, double *sim)
{
    for (int i = 0; i < n; i++) {
        float d = 0;
        for (int k = 0; k < p; k++)
            d += feats[(size_t)i * p + k] * f[k];
        sim[i] = d;
    }
}

gs_status gs_safety_check(gs_engine *eng, gs_safety *s, const gs_image *img,
                          const char *negative_prompt, gs_safety_result *out)
{
    if (!eng || !s || !img || !img->pixels || !out)
        return GS_ERR_INVALID_ARGUMENT;
    memset(out, 0, sizeof *out);
    gi_error err = {0};
    const nsfw_lists *l = &s->lists;
    int p = s->clip->proj;
    float *feat = gi_malloc((size_t)p * sizeof *feat);
    double *ps = gi_malloc((size_t)l->n_pred * sizeof *ps);
    double *cs = gi_malloc((size_t)l->n_concept * sizeof *cs);
    gs_status st = GS_OK;
    if (!feat || !ps || !cs) {
        st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    int saved = compute_enter(eng->cx);
    st = safety_clip_image(s->clip, eng->cx, img->pixels, img->width, img->height, img->channels,
                           feat, &err);
    compute_leave(saved);
    if (st != GS_OK)
        goto out;
    similarities(s->pred_feat, l->n_pred, p, feat, ps);
    similarities(s->concept_feat, l->n_concept, p, feat, cs);
    for (int k = 0; k < l->n_pred; k++)
        ps[k] += isnan(l->danger[k]) ? s->shift_other : s->shift_underage;
    for (int j = 0; j < l->n_concept; j++)
        cs[j] += s->shift_other;
    nsfw_result r;
    nsfw_decide(l, ps, cs, nsfw_negative_suspect(negative_prompt), &r);
    out->is_nsfw = r.is_nsfw;
    out->is_csam = r.is_csam;
    out->is_anime = r.is_anime;
    out->is_underage = r.is_underage;
out:
    gi_free(feat);
    gi_free(ps);
    gi_free(cs);
    return st == GS_OK ? GS_OK : engine_fail(eng, &err);
}
