/*
 * clip_text - the CLIP text encoder's forward pass on channels-last ops.
 *
 * The residual stream lives in the caller's hidden buffer until the layer a
 * family takes out; when the pooled output also needs the layers after it,
 * the stream is copied once and runs on in scratch, so the taken state stays.
 */
#include "model/clip_text.h"

#include <string.h>

#include "compute/half.h"
#include "compute/half_span.h"
#include "model/clip_text_internal.h"

#define CLIP_POSITIONS 77
#define CLIP_LN_EPS 1e-5f

/* x [rows, w] = token + position embeddings of ids [n_seq, 77]. */
static gs_status embed(const clip_text *m, const int32_t *ids, long rows, float *x, gi_error *err)
{
    const int w = m->width;
    for (long r = 0; r < rows; r++) {
        int id = ids[r];
        if (id < 0 || id >= m->vocab)
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "token id %d outside the vocabulary", id);
        const float *pe = m->pos_emb + (size_t)(r % CLIP_POSITIONS) * w;
        float *xr = x + r * w;
        if (m->tok_emb_dtype == ST_F32) {
            memcpy(xr, (const float *)m->tok_emb + (size_t)id * w, (size_t)w * sizeof *xr);
        } else {
            const uint16_t *te = (const uint16_t *)m->tok_emb + (size_t)id * w;
            if (m->tok_emb_dtype == ST_F16)
                gi_f16_to_f32_span(te, xr, w);
            else
                for (int c = 0; c < w; c++)
                    xr[c] = gi_bf16_to_f32(te[c]);
        }
        for (int c = 0; c < w; c++)
            xr[c] += pe[c];
    }
    return GS_OK;
}

/* Layers [from, to) of the text tower: causal over 77 tokens. */
static gs_status run_layers(const clip_text *m, gi_compute *cx, float *x, int n_seq, int from,
                            int to, clip_bufs *b, gi_error *err)
{
    clip_block_shape s = {m->width, m->mlp, m->heads, m->gelu_erf};
    return clip_blocks_run(cx, m->layer, &s, x, n_seq, CLIP_POSITIONS, 1, from, to, b, err);
}

/* pooled [n_seq, proj] = final_ln(x at the first maximum id of each sequence) @ proj_w. */
static gs_status pool(const clip_text *m, gi_compute *cx, const int32_t *ids, int n_seq,
                      const float *x, float *pooled, gi_error *err)
{
    const int T = CLIP_POSITIONS, w = m->width, P = m->proj;
    float *eos = arena_floats(&cx->scratch, (size_t)n_seq * w); /* [n_seq, w] */
    if (!eos)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the text encoder");
    for (int s = 0; s < n_seq; s++) {
        const int32_t *row = ids + (size_t)s * T;
        int at = 0;
        for (int t = 1; t < T; t++)
            if (row[t] > row[at])
                at = t;
        memcpy(eos + (size_t)s * w, x + ((size_t)s * T + at) * w, (size_t)w * sizeof *eos);
    }
    op_layer_norm(cx, &m->final_ln, eos, n_seq, w, CLIP_LN_EPS, eos);
    for (int s = 0; s < n_seq; s++) {
        float *y = pooled + (size_t)s * P;
        memset(y, 0, (size_t)P * sizeof *y);
        for (int c = 0; c < w; c++) {
            float e = eos[(size_t)s * w + c];
            const float *pr = m->proj_w + (size_t)c * P;
            for (int j = 0; j < P; j++)
                y[j] += e * pr[j];
        }
    }
    return GS_OK;
}

gs_status clip_text_encode_take(clip_text *m, gi_compute *cx, const int32_t *ids, int n_seq,
                                const clip_text_take *take, float *hidden, float *pooled,
                                gi_error *err)
{
    const int T = CLIP_POSITIONS, w = m->width;
    if (n_seq < 1 || !take || take->skip < 1 || take->skip > m->layers)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "text encode: %d sequences, clip skip %d",
                       n_seq, take ? take->skip : 0);
    if (pooled && !m->proj_w)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "text encode: a pooled output needs a text projection, which this "
                       "encoder has none of");
    gs_status st = compute_begin(cx, err);
    if (st != GS_OK)
        return st;
    const long rows = (long)n_seq * T;
    arena *a = &cx->scratch;
    clip_block_shape shape = {m->width, m->mlp, m->heads, m->gelu_erf};
    clip_bufs b;
    if ((st = clip_bufs_alloc(cx, rows, &shape, &b, err)) != GS_OK)
        return st;
    if ((st = embed(m, ids, rows, hidden, err)) != GS_OK)
        return st;
    int keep = m->layers - (take->skip - 1); /* layers up to the taken output */
    if ((st = run_layers(m, cx, hidden, n_seq, 0, keep, &b, err)) != GS_OK)
        return st;
    if (pooled) {
        const float *last = hidden;
        if (keep < m->layers) {
            float *tail = arena_floats(a, (size_t)rows * w); /* [rows, w] */
            if (!tail)
                return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the text encoder");
            memcpy(tail, hidden, (size_t)rows * w * sizeof *tail);
            if ((st = run_layers(m, cx, tail, n_seq, keep, m->layers, &b, err)) != GS_OK)
                return st;
            last = tail;
        }
        if ((st = pool(m, cx, ids, n_seq, last, pooled, err)) != GS_OK)
            return st;
    }
    if (take->final_norm)
        op_layer_norm(cx, &m->final_ln, hidden, rows, w, CLIP_LN_EPS, hidden);
    return GS_OK;
}

gs_status clip_text_encode(clip_text *m, gi_compute *cx, const int32_t *ids, int n_seq,
                           int clip_skip, float *out, gi_error *err)
{
    clip_text_take take = {.skip = clip_skip, .final_norm = 1};
    return clip_text_encode_take(m, cx, ids, n_seq, &take, out, NULL, err);
}
