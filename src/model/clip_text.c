/* clip_text - CLIP text encoder forward pass on channels-last ops. */
#include "model/clip_text.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "compute/half.h"
#include "model/weights.h"

#define SD1_TEXT_HEADS 12

typedef struct clip_layer {
    norm_weights ln1, ln2;
    linear_weights q, k, v, o, fc1, fc2;
} clip_layer;

struct clip_text {
    weight_store store;
    int width, layers, positions, vocab, mlp, heads;
    float *tok_emb;       /* [vocab, width], or NULL when kept in bf16: */
    uint16_t *tok_emb_bf; /* [vocab, width] */
    float *pos_emb;       /* [positions, width] */
    clip_layer *layer;
    norm_weights final_ln;
};

gs_status clip_text_load(const st_file *f, const char *prefix, int bf16, weight_log *log,
                         clip_text **out, gi_error *err)
{
    *out = NULL;
    clip_text *m = gi_calloc(1, sizeof *m);
    if (!m)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    weight_loader l = wl_begin(f, prefix, &m->store, bf16, log, err);
    char n[256];
    m->vocab = (int)wl_dim(&l, "embeddings.token_embedding.weight", 0);
    m->width = (int)wl_dim(&l, "embeddings.token_embedding.weight", 1);
    m->positions = (int)wl_dim(&l, "embeddings.position_embedding.weight", 0);
    m->mlp = (int)wl_dim(&l, "encoder.layers.0.mlp.fc1.weight", 0);
    while (wl_find(&l, wl_name(n, sizeof n, "encoder.layers.%d.layer_norm1.weight", m->layers)))
        m->layers++;
    m->heads = SD1_TEXT_HEADS;
    if (m->vocab <= 0 || m->width <= 0 || m->positions <= 0 || m->mlp <= 0 || m->layers == 0) {
        gi_fail(err, GS_ERR_FORMAT, "text encoder tensors under '%s' are missing or malformed",
                prefix);
        clip_text_free(m);
        return GS_ERR_FORMAT;
    }
    if (m->width % m->heads != 0 || m->positions < 77) {
        gi_fail(err, GS_ERR_UNSUPPORTED,
                "text encoder width %d / %d positions does not fit CLIP with %d heads", m->width,
                m->positions, m->heads);
        clip_text_free(m);
        return GS_ERR_UNSUPPORTED;
    }
    int w = m->width;
    if (bf16)
        m->tok_emb_bf =
            wl_tensor_bf16(&l, "embeddings.token_embedding.weight", 2, (int64_t[]){m->vocab, w});
    else
        m->tok_emb =
            wl_tensor(&l, "embeddings.token_embedding.weight", 2, (int64_t[]){m->vocab, w});
    m->pos_emb =
        wl_tensor(&l, "embeddings.position_embedding.weight", 2, (int64_t[]){m->positions, w});
    m->layer = gi_calloc((size_t)m->layers, sizeof *m->layer);
    if (!m->layer) {
        clip_text_free(m);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    }
    for (int i = 0; i < m->layers; i++) {
        clip_layer *L = &m->layer[i];
        char p[128];
        snprintf(p, sizeof p, "encoder.layers.%d.", i);
        wl_norm(&l, wl_name(n, sizeof n, "%slayer_norm1", p), w, &L->ln1);
        wl_norm(&l, wl_name(n, sizeof n, "%slayer_norm2", p), w, &L->ln2);
        wl_linear(&l, wl_name(n, sizeof n, "%sself_attn.q_proj", p), w, w, 1, &L->q);
        wl_linear(&l, wl_name(n, sizeof n, "%sself_attn.k_proj", p), w, w, 1, &L->k);
        wl_linear(&l, wl_name(n, sizeof n, "%sself_attn.v_proj", p), w, w, 1, &L->v);
        wl_linear(&l, wl_name(n, sizeof n, "%sself_attn.out_proj", p), w, w, 1, &L->o);
        wl_linear(&l, wl_name(n, sizeof n, "%smlp.fc1", p), m->mlp, w, 1, &L->fc1);
        wl_linear(&l, wl_name(n, sizeof n, "%smlp.fc2", p), w, m->mlp, 1, &L->fc2);
    }
    wl_norm(&l, "final_layer_norm", w, &m->final_ln);
    if (l.st != GS_OK) {
        clip_text_free(m);
        return l.st;
    }
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
size_t clip_text_weight_bytes(const clip_text *m)
{
    return m->store.bytes;
}

void clip_text_free(clip_text *m)
{
    if (!m)
        return;
    weight_store_free(&m->store);
    gi_free(m->layer);
    gi_free(m);
}

gs_status clip_text_encode(clip_text *m, gi_compute *cx, const int32_t *ids, int n_seq,
                           int clip_skip, float *out, gi_error *err)
{
    const int T = 77, w = m->width;
    if (n_seq < 1 || clip_skip < 1 || clip_skip > m->layers)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "text encode: %d sequences, clip skip %d",
                       n_seq, clip_skip);
    gs_status st = compute_begin(cx, err);
    if (st != GS_OK)
        return st;
    long rows = (long)n_seq * T;
    arena *a = &cx->scratch;
    float *x = out; /* [n_seq, T, w]: the residual stream lives in the output */
    float *h = arena_floats(a, (size_t)rows * w);
    float *q = arena_floats(a, (size_t)rows * w);
    float *k = arena_floats(a, (size_t)rows * w);
    float *v = arena_floats(a, (size_t)rows * w);
    float *mlp = arena_floats(a, (size_t)rows * m->mlp);
    if (!h || !q || !k || !v || !mlp)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the text encoder");
    for (long r = 0; r < rows; r++) {
        int id = ids[r];
        if (id < 0 || id >= m->vocab)
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "token id %d outside the vocabulary", id);
        const float *pe = m->pos_emb + (size_t)(r % T) * w;
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
    int run = m->layers - (clip_skip - 1);
    for (int i = 0; i < run && st == GS_OK; i++) {
        const clip_layer *L = &m->layer[i];
        op_layer_norm(cx, &L->ln1, x, rows, w, 1e-5f, h);
        if ((st = op_linear(cx, &L->q, h, rows, q, err)) != GS_OK ||
            (st = op_linear(cx, &L->k, h, rows, k, err)) != GS_OK ||
            (st = op_linear(cx, &L->v, h, rows, v, err)) != GS_OK)
            break;
        st = op_attention(cx, q, w, k, v, w, n_seq, T, T, m->heads, w / m->heads, 1, h, err);
        if (st != GS_OK || (st = op_linear(cx, &L->o, h, rows, q, err)) != GS_OK)
            break;
        op_add(cx, x, q, rows * w);
        op_layer_norm(cx, &L->ln2, x, rows, w, 1e-5f, h);
        if ((st = op_linear(cx, &L->fc1, h, rows, mlp, err)) != GS_OK)
            break;
        op_quick_gelu(cx, mlp, rows * m->mlp);
        if ((st = op_linear(cx, &L->fc2, mlp, rows, q, err)) != GS_OK)
            break;
        op_add(cx, x, q, rows * w);
    }
    if (st == GS_OK)
        op_layer_norm(cx, &m->final_ln, x, rows, w, 1e-5f, x);
    return st;
}
