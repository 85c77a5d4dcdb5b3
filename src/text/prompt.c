/* prompt - A1111's emphasis parser and 75-token chunker. */
#include "text/prompt.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#define ROUND_MULT 1.1
#define SQUARE_MULT (1 / 1.1)

/* ---- growable segment list ---- */

typedef struct seglist {
    prompt_segment *s;
    int n, cap;
    int failed;
} seglist;

static void seg_push(seglist *l, const char *text, size_t len, double weight)
{
    if (l->failed)
        return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        prompt_segment *s = gs_realloc(l->s, (size_t)cap * sizeof *s);
        if (!s) {
            l->failed = 1;
            return;
        }
        l->s = s;
        l->cap = cap;
    }
    char *t = gs_malloc(len + 1);
    if (!t) {
        l->failed = 1;
        return;
    }
    memcpy(t, text, len);
    t[len] = '\0';
    l->s[l->n++] = (prompt_segment){t, weight};
}

void prompt_segments_free(prompt_segment *segs, int n)
{
    for (int i = 0; i < n; i++)
        gs_free(segs[i].text);
    gs_free(segs);
}

static void multiply_from(seglist *l, int start, double m)
{
    for (int i = start; i < l->n; i++)
        l->s[i].weight *= m;
}

/* ---- BREAK splitting: \s*\bBREAK\b\s* ---- */

static int is_word(unsigned char c)
{
    return isalnum(c) || c == '_' || c >= 0x80;
}

static void push_text(seglist *l, const char *t, size_t len)
{
    size_t start = 0;
    for (size_t i = 0; i + 5 <= len; i++) {
        if (memcmp(t + i, "BREAK", 5) != 0)
            continue;
        if ((i > 0 && is_word((unsigned char)t[i - 1])) ||
            (i + 5 < len && is_word((unsigned char)t[i + 5])))
            continue;
        size_t a = i, b = i + 5;
        while (a > start && isspace((unsigned char)t[a - 1]))
            a--;
        while (b < len && isspace((unsigned char)t[b]))
            b++;
        seg_push(l, t + start, a - start, 1.0);
        seg_push(l, "BREAK", 5, -1.0);
        start = b;
        i = b - 1;
    }
    seg_push(l, t + start, len - start, 1.0);
}

/* ":\s*([+-]?[.\d]+)\s*\)" at p; returns its length and the weight, or 0. */
static size_t weight_close(const char *p, double *w)
{
    const char *q = p + 1;
    while (isspace((unsigned char)*q))
        q++;
    const char *num = q;
    if (*q == '+' || *q == '-')
        q++;
    const char *digits = q;
    while (isdigit((unsigned char)*q) || *q == '.')
        q++;
    if (q == digits)
        return 0;
    const char *num_end = q;
    while (isspace((unsigned char)*q))
        q++;
    if (*q != ')')
        return 0;
    char buf[64];
    size_t n = (size_t)(num_end - num);
    if (n >= sizeof buf)
        return 0;
    memcpy(buf, num, n);
    buf[n] = '\0';
    char *end;
    *w = strtod(buf, &end);
    if (*end) /* "1.2.3": not a number; A1111 would fail, we read it as text */
        return 0;
    return (size_t)(q + 1 - p);
}

gs_status prompt_parse(const char *prompt, prompt_segment **segs, int *n, gs_error *err)
{
    *segs = NULL;
    *n = 0;
    seglist l = {0};
    int round[256], square[256], nr = 0, nsq = 0;
    const char *p = prompt;
    while (*p) {
        double w;
        size_t len;
        if (*p == '\\') {
            char c = p[1];
            if (c == '(' || c == ')' || c == '[' || c == ']' || c == '\\') {
                seg_push(&l, p + 1, 1, 1.0);
                p += 2;
            } else {
                seg_push(&l, "", 0, 1.0); /* a lone backslash disappears */
                p += 1;
            }
        } else if (*p == '(') {
            if (nr == (int)(sizeof round / sizeof round[0]))
                return gs_fail(err, GS_ERR_INVALID_ARGUMENT, "prompt nests brackets too deeply");
            round[nr++] = l.n;
            p++;
        } else if (*p == '[') {
            if (nsq == (int)(sizeof square / sizeof square[0]))
                return gs_fail(err, GS_ERR_INVALID_ARGUMENT, "prompt nests brackets too deeply");
            square[nsq++] = l.n;
            p++;
        } else if (*p == ':' && (len = weight_close(p, &w)) && nr > 0) {
            multiply_from(&l, round[--nr], w);
            p += len;
        } else if (*p == ')' && nr > 0) {
            multiply_from(&l, round[--nr], ROUND_MULT);
            p++;
        } else if (*p == ']' && nsq > 0) {
            multiply_from(&l, square[--nsq], SQUARE_MULT);
            p++;
        } else if (*p == ':' && (len = weight_close(p, &w))) {
            push_text(&l, p, len); /* a weight with no open bracket is plain text */
            p += len;
        } else if (*p == ':' || *p == ')' || *p == ']') {
            push_text(&l, p, 1);
            p++;
        } else {
            len = strcspn(p, "\\()[]:");
            push_text(&l, p, len);
            p += len;
        }
    }
    for (int i = 0; i < nr; i++)
        multiply_from(&l, round[i], ROUND_MULT);
    for (int i = 0; i < nsq; i++)
        multiply_from(&l, square[i], SQUARE_MULT);
    if (l.n == 0)
        seg_push(&l, "", 0, 1.0);
    /* merge runs of equal weight */
    for (int i = 0; !l.failed && i + 1 < l.n;) {
        if (l.s[i].weight != l.s[i + 1].weight) {
            i++;
            continue;
        }
        size_t a = strlen(l.s[i].text), b = strlen(l.s[i + 1].text);
        char *t = gs_realloc(l.s[i].text, a + b + 1);
        if (!t) {
            l.failed = 1;
            break;
        }
        memcpy(t + a, l.s[i + 1].text, b + 1);
        l.s[i].text = t;
        gs_free(l.s[i + 1].text);
        memmove(&l.s[i + 1], &l.s[i + 2], (size_t)(l.n - i - 2) * sizeof *l.s);
        l.n--;
    }
    if (l.failed) {
        prompt_segments_free(l.s, l.n);
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory parsing the prompt");
    }
    *segs = l.s;
    *n = l.n;
    return GS_OK;
}

/* ---- chunking ---- */

typedef struct chunker {
    int32_t cur[PROMPT_CHUNK_TOKENS + 1];
    float curw[PROMPT_CHUNK_TOKENS + 1];
    int len;
    int last_comma;
    prompt_chunks *out;
    int cap;
    int failed;
} chunker;

static void next_chunk(chunker *c)
{
    if (c->failed)
        return;
    prompt_chunks *pc = c->out;
    if (pc->n_chunks == c->cap) {
        int cap = c->cap ? 2 * c->cap : 4;
        int32_t *ids = gs_realloc(pc->ids, (size_t)cap * 77 * sizeof *ids);
        if (ids)
            pc->ids = ids;
        float *w = ids ? gs_realloc(pc->weights, (size_t)cap * 77 * sizeof *w) : NULL;
        if (!ids || !w) {
            c->failed = 1;
            return;
        }
        pc->weights = w;
        c->cap = cap;
    }
    int32_t *ids = pc->ids + (size_t)pc->n_chunks * 77;
    float *w = pc->weights + (size_t)pc->n_chunks * 77;
    ids[0] = CLIP_BOS;
    w[0] = 1.0f;
    for (int i = 0; i < PROMPT_CHUNK_TOKENS; i++) {
        ids[1 + i] = i < c->len ? c->cur[i] : CLIP_EOS;
        w[1 + i] = i < c->len ? c->curw[i] : 1.0f;
    }
    ids[76] = CLIP_EOS;
    w[76] = 1.0f;
    pc->n_chunks++;
    c->len = 0;
    c->last_comma = -1;
}

static void add_token(chunker *c, int32_t token, float weight)
{
    if (token == CLIP_COMMA) {
        c->last_comma = c->len;
    } else if (c->len == PROMPT_CHUNK_TOKENS && c->last_comma != -1 &&
               c->len - c->last_comma <= PROMPT_COMMA_BACKTRACK) {
        /* move the words after the last comma to the next chunk */
        int from = c->last_comma + 1, moved = c->len - from;
        int32_t ids[PROMPT_CHUNK_TOKENS];
        float ws[PROMPT_CHUNK_TOKENS];
        memcpy(ids, c->cur + from, (size_t)moved * sizeof *ids);
        memcpy(ws, c->curw + from, (size_t)moved * sizeof *ws);
        c->len = from;
        next_chunk(c);
        memcpy(c->cur, ids, (size_t)moved * sizeof *ids);
        memcpy(c->curw, ws, (size_t)moved * sizeof *ws);
        c->len = moved;
    }
    if (c->len == PROMPT_CHUNK_TOKENS)
        next_chunk(c);
    c->cur[c->len] = token;
    c->curw[c->len] = weight;
    c->len++;
}

gs_status prompt_to_chunks(const clip_tokenizer *tok, const char *prompt, prompt_chunks *out,
                           gs_error *err)
{
    memset(out, 0, sizeof *out);
    prompt_segment *segs = NULL;
    int n = 0;
    gs_status st = prompt_parse(prompt ? prompt : "", &segs, &n, err);
    if (st != GS_OK)
        return st;
    chunker c = {0};
    c.out = out;
    c.last_comma = -1;
    for (int i = 0; i < n && st == GS_OK && !c.failed; i++) {
        if (segs[i].weight == -1.0 && strcmp(segs[i].text, "BREAK") == 0) {
            next_chunk(&c);
            continue;
        }
        int32_t *ids = NULL;
        size_t nt = 0;
        st = clip_tokenize(tok, segs[i].text, &ids, &nt, err);
        for (size_t k = 0; st == GS_OK && k < nt; k++)
            add_token(&c, ids[k], (float)segs[i].weight);
        gs_free(ids);
    }
    if (st == GS_OK && (c.len > 0 || out->n_chunks == 0))
        next_chunk(&c);
    prompt_segments_free(segs, n);
    if (st == GS_OK && c.failed)
        st = gs_fail(err, GS_ERR_NO_MEMORY, "out of memory chunking the prompt");
    if (st != GS_OK)
        prompt_chunks_free(out);
    return st;
}

void prompt_chunks_free(prompt_chunks *pc)
{
    gs_free(pc->ids);
    gs_free(pc->weights);
    memset(pc, 0, sizeof *pc);
}

void prompt_apply_weights(float *z, const float *weights, int tokens, int width)
{
    size_t n = (size_t)tokens * width;
    double before = 0, after = 0;
    for (size_t i = 0; i < n; i++)
        before += z[i];
    for (int t = 0; t < tokens; t++)
        for (int c = 0; c < width; c++) {
            z[(size_t)t * width + c] *= weights[t];
            after += z[(size_t)t * width + c];
        }
    if (after == 0)
        return;
    float scale = (float)(before / after);
    for (size_t i = 0; i < n; i++)
        z[i] *= scale;
}
