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
#include "model/clip_text_internal.h"

#define CLIP_POSITIONS 77
#define CLIP_LN_EPS 1e-5f

/* Scratch of one pass; q, k, v point into qkv with row stride qkv_stride. */
typedef struct clip_bufs {
    float *h;   /* [rows, w] layer-norm output, then attention output */
    float *qkv; /* [rows, 3w] */
    float *mlp; /* [rows, mlp] */
    const float *q, *k, *v;
    int qkv_stride;
} clip_bufs;

/* x [rows, w] = token + position embeddings of ids [n_seq, 77]. */
static gs_status embed(const clip_text *m, const int32_t *ids, long rows, float *x, gi_error *err)
{
    const int w = m->width;
    for (long r = 0; r < rows; r++) {
        int id = ids[r];
        if (id < 0 || id >= m->vocab)
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "token id %d outside the vocabulary", id);
        const float *pe = m->pos_emb + (size_t)(r % CLIP_POSITIONS) * w;
        if (m->tok_emb_bf) {
            const uint16_t *te = m->tok_emb_bf + (size_t)id * w;
            for (int c = 0; c < w; c++)
                x[r * w + c] = gi_bf16_to_f32(te[c]) + pe[c];
        } else {
            const float *te = m->tok_emb + (size_t)id * w;
            for (int c = 0; c < w; c++)
                x[r * w + c] = te[c] + pe[c];
        }
    }
    return GS_OK;
}

/* q, k, v of h [rows, w] into b->qkv: one GEMM for a fused in_proj, three otherwise. */
static gs_status project_qkv(gi_compute *cx, const clip_layer *L, const float *h, long rows, int w,
                             clip_bufs *b, gi_error *err)
{
    gs_status st;
    if (L->qkv.out) {
        b->qkv_stride = 3 * w;
        b->q = b->qkv;
        b->k = b->qkv + w;
        b->v = b->qkv + 2 * w;
        return op_linear(cx, &L->qkv, h, rows, b->qkv, err);
    }
    float *q = b->qkv, *k = q + (size_t)rows * w, *v = k + (size_t)rows * w;
    b->qkv_stride = w;
    b->q = q;
    b->k = k;
    b->v = v;
    if ((st = op_linear(cx, &L->q, h, rows, q, err)) != GS_OK ||
        (st = op_linear(cx, &L->k, h, rows, k, err)) != GS_OK)
        return st;
    return op_linear(cx, &L->v, h, rows, v, err);
}

/* Layers [from, to) on the residual stream x [n_seq * 77, w], in place. */
static gs_status run_layers(const clip_text *m, gi_compute *cx, float *x, int n_seq, int from,
                            int to, clip_bufs *b, gi_error *err)
{
    const int T = CLIP_POSITIONS, w = m->width;
    const long rows = (long)n_seq * T;
    gs_status st = GS_OK;
    for (int i = from; i < to && st == GS_OK; i++) {
        const clip_layer *L = &m->layer[i];
        op_layer_norm(cx, &L->ln1, x, rows, w, CLIP_LN_EPS, b->h);
        if ((st = project_qkv(cx, L, b->h, rows, w, b, err)) != GS_OK)
            break;
        st = op_attention(cx, b->q, b->qkv_stride, b->k, b->v, b->qkv_stride, n_seq, T, T, m->heads,
                          w / m->heads, 1, b->h, err);
        if (st != GS_OK || (st = op_linear(cx, &L->o, b->h, rows, b->qkv, err)) != GS_OK)
            break;
        op_add(cx, x, b->qkv, rows * w);
        op_layer_norm(cx, &L->ln2, x, rows, w, CLIP_LN_EPS, b->h);
        if ((st = op_linear(cx, &L->fc1, b->h, rows, b->mlp, err)) != GS_OK)
            break;
        if (m->gelu_erf)
            op_gelu(cx, b->mlp, rows * m->mlp);
        else
            op_quick_gelu(cx, b->mlp, rows * m->mlp);
        if ((st = op_linear(cx, &L->fc2, b->mlp, rows, b->qkv, err)) != GS_OK)
            break;
        op_add(cx, x, b->qkv, rows * w);
    }
    return st;
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
    clip_bufs b = {.h = arena_floats(a, (size_t)rows * w),
                   .qkv = arena_floats(a, (size_t)rows * 3 * w),
                   .mlp = arena_floats(a, (size_t)rows * m->mlp)};
    if (!b.h || !b.qkv || !b.mlp)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the text encoder");
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
