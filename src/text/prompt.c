/*
 * prompt - A1111's chunking of a parsed prompt and its per-token weighting (see prompt.h).
 *
 * The chunker follows A1111's tokenize_line: a chunk collects up to 75 (token,
 * weight) pairs; a comma token records its position; a non-comma token that
 * arrives at a full chunk whose last comma is within 20 tokens of the end moves
 * the tokens after the comma into the next chunk; a BREAK marker closes the
 * current chunk even when it is empty; at the end a partial chunk - or, for an
 * empty prompt, an empty one - is closed too.
 */
#include "text/prompt.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "text/prompt_parse.h"
#include "text/unicode.h"

/* ---- chunker ---- */

typedef struct chunker {
    int32_t tok[PROMPT_CHUNK_TOKENS];
    float w[PROMPT_CHUNK_TOKENS];
    int len;
    int last_comma;     /* index in tok of the last comma, -1 if none */
    int closed;         /* chunks closed so far */
    prompt_chunks *out; /* NULL: only count the chunks */
    int cap_chunks;
} chunker;

/* Appends BOS + the current chunk padded with EOS + EOS to the output. */
static int store_chunk(chunker *c)
{
    prompt_chunks *o = c->out;
    if (o->n_chunks == c->cap_chunks) {
        int cap = c->cap_chunks ? 2 * c->cap_chunks : 4;
        size_t n = (size_t)cap * PROMPT_CHUNK_LEN;
        if (cap > (1 << 24))
            return -1;
        int32_t *ids = gi_realloc(o->ids, n * sizeof *ids);
        if (!ids)
            return -1;
        o->ids = ids;
        float *w = gi_realloc(o->weights, n * sizeof *w);
        if (!w)
            return -1;
        o->weights = w;
        c->cap_chunks = cap;
    }
    int32_t *ids = o->ids + (size_t)o->n_chunks * PROMPT_CHUNK_LEN;
    float *w = o->weights + (size_t)o->n_chunks * PROMPT_CHUNK_LEN;
    ids[0] = CLIP_BOS;
    w[0] = 1.0f;
    for (int i = 0; i < PROMPT_CHUNK_TOKENS; i++) {
        ids[1 + i] = i < c->len ? c->tok[i] : CLIP_EOS;
        w[1 + i] = i < c->len ? c->w[i] : 1.0f;
    }
    ids[PROMPT_CHUNK_LEN - 1] = CLIP_EOS;
    w[PROMPT_CHUNK_LEN - 1] = 1.0f;
    o->n_chunks++;
    return 0;
}

static int close_chunk(chunker *c)
{
    if (c->out && store_chunk(c) != 0)
        return -1;
    c->closed++;
    c->len = 0;
    c->last_comma = -1;
    return 0;
}

static int add_token(chunker *c, int32_t t, float w)
{
    if (t == CLIP_COMMA) {
        c->last_comma = c->len;
    } else if (c->len == PROMPT_CHUNK_TOKENS && c->last_comma != -1 &&
               c->len - c->last_comma <= PROMPT_COMMA_BACKTRACK) {
        int brk = c->last_comma + 1, n_moved = PROMPT_CHUNK_TOKENS - brk;
        int32_t moved_tok[PROMPT_CHUNK_TOKENS];
        float moved_w[PROMPT_CHUNK_TOKENS];
        memcpy(moved_tok, c->tok + brk, (size_t)n_moved * sizeof *moved_tok);
        memcpy(moved_w, c->w + brk, (size_t)n_moved * sizeof *moved_w);
        c->len = brk;
        if (close_chunk(c) != 0)
            return -1;
        memcpy(c->tok, moved_tok, (size_t)n_moved * sizeof *moved_tok);
        memcpy(c->w, moved_w, (size_t)n_moved * sizeof *moved_w);
        c->len = n_moved;
    }
    if (c->len == PROMPT_CHUNK_TOKENS && close_chunk(c) != 0)
        return -1;
    c->tok[c->len] = t;
    c->w[c->len] = w;
    c->len++;
    return 0;
}

/* ---- prompt_to_chunks ---- */

/* UTF-8 of code points s[0..n) into *buf (grown as needed), NUL-terminated. */
static int encode_utf8(const uint32_t *s, size_t n, char **buf, size_t *cap)
{
    if (4 * n + 1 > *cap) {
        size_t ncap = 4 * n + 1 < 256 ? 256 : 4 * n + 1;
        char *nb = gi_realloc(*buf, ncap);
        if (!nb)
            return -1;
        *buf = nb;
        *cap = ncap;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += (size_t)utf8_encode(s[i], (uint8_t *)*buf + k);
    (*buf)[k] = '\0';
    return 0;
}

/* Feeds the prompt's tokens through c, closing its chunks as A1111 does. */
static gs_status chunk_prompt(const clip_tokenizer *tok, const char *prompt, chunker *c,
                              gi_error *err)
{
    gs_status st = GS_OK;
    prompt_runs runs = {0};
    char *text = NULL;
    size_t text_cap = 0;
    int32_t *ids = NULL;
    if (!tok || !prompt)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "a NULL tokenizer or prompt");
    if (strlen(prompt) > CLIP_MAX_TEXT_BYTES)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "prompt exceeds %u bytes",
                       CLIP_MAX_TEXT_BYTES);
    st = prompt_parse(prompt, &runs, err);
    if (st != GS_OK)
        goto out;
    for (size_t r = 0; r < runs.n; r++) {
        if (prompt_run_is_break(&runs, r)) {
            if (close_chunk(c) != 0)
                goto oom;
            continue;
        }
        const prompt_run *run = &runs.runs[r];
        if (run->len == 0) /* no tokens; and runs.text.v is NULL when no run has text */
            continue;
        if (encode_utf8(runs.text.v + run->off, run->len, &text, &text_cap) != 0)
            goto oom;
        size_t n = 0;
        st = clip_tokenize(tok, text, &ids, &n, err);
        if (st != GS_OK)
            goto out;
        for (size_t i = 0; i < n; i++)
            if (add_token(c, ids[i], (float)run->weight) != 0)
                goto oom;
        gi_free(ids);
        ids = NULL;
    }
    if ((c->len > 0 || c->closed == 0) && close_chunk(c) != 0)
        goto oom;
    goto out;
oom:
    st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory splitting a prompt into chunks");
out:
    prompt_runs_free(&runs);
    gi_free(text);
    gi_free(ids);
    return st;
}

gs_status prompt_to_chunks(const clip_tokenizer *tok, const char *prompt, prompt_chunks *out,
                           gi_error *err)
{
    memset(out, 0, sizeof *out);
    chunker c = {.last_comma = -1, .out = out};
    gs_status st = chunk_prompt(tok, prompt, &c, err);
    if (st != GS_OK)
        prompt_chunks_free(out);
    return st;
}

gs_status prompt_count_chunks(const clip_tokenizer *tok, const char *prompt, int *n_chunks,
                              gi_error *err)
{
    chunker c = {.last_comma = -1};
    gs_status st = chunk_prompt(tok, prompt, &c, err);
    *n_chunks = st == GS_OK ? c.closed : 0;
    return st;
}

void prompt_chunks_free(prompt_chunks *pc)
{
    if (!pc)
        return;
    gi_free(pc->ids);
    gi_free(pc->weights);
    memset(pc, 0, sizeof *pc);
}

/* ---- weighting ---- */

static double mean_of(const float *z, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += z[i];
    return n ? s / (double)n : 0.0;
}

static double mean_abs_of(const float *z, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += fabs((double)z[i]);
    return n ? s / (double)n : 0.0;
}

/* Below this fraction of the mean |z|, a chunk mean is rounding noise: an f32 layer norm
   with beta = 0 gives rows whose means are ~1e-8 of their values, where the true mean is 0. */
#define MEAN_NOISE 1e-6

void prompt_apply_weights(float *z, const float *weights, int tokens, int width)
{
    size_t n = (size_t)tokens * (size_t)width;
    /* torch keeps both means and their ratio in float32. */
    float before = (float)mean_of(z, n);
    for (int t = 0; t < tokens; t++) {
        float *row = z + (size_t)t * (size_t)width; /* [width] */
        for (int c = 0; c < width; c++)
            row[c] *= weights[t];
    }
    float after = (float)mean_of(z, n);
    /* The restore factor is before/after. When the weighted mean is 0 (all weights 0) or
       only rounding noise (an encoder whose final norm centres every token, so both means
       are 0 in exact arithmetic), the factor is 0/0: A1111 gets NaN or a random scale of
       the whole chunk. Keep z as weighted, which is A1111's "No norm" there. */
    if (fabs((double)after) <= MEAN_NOISE * mean_abs_of(z, n))
        return;
    float scale = before / after;
    for (size_t i = 0; i < n; i++)
        z[i] *= scale;
}
