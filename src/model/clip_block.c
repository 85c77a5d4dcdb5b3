/*
 * clip_block - CLIP's transformer layer, loaded by name and run on the
 * channels-last ops; shared by the text (clip_text) and vision (clip_vision)
 * towers.
 */
#include "model/clip_block.h"

#include <stdio.h>
#include <string.h>

#define CLIP_LN_EPS 1e-5f

int clip_block_count(weight_loader *l, const clip_block_names *nm)
{
    char n[256], p[128];
    int layers = 0;
    for (;;) {
        snprintf(p, sizeof p, nm->layer, layers);
        if (!wl_find(l, wl_name(n, sizeof n, "%s%s.weight", p, nm->ln1)))
            return layers;
        layers++;
    }
}

/* The fused [3w, w] projection and its bias, in the precision of the other GEMMs. */
static void load_in_proj(weight_loader *l, const clip_block_names *nm, const char *p, int w,
                         linear_weights *lw)
{
    char n[256];
    memset(lw, 0, sizeof *lw);
    lw->out = 3 * w;
    lw->in = w;
    wl_name(n, sizeof n, "%s%s", p, nm->in_proj_w);
    if (l->half)
        lw->wb = wl_tensor_half(l, n, 2, (int64_t[]){3 * w, w});
    else
        lw->w = wl_tensor(l, n, 2, (int64_t[]){3 * w, w});
    lw->b = wl_tensor(l, wl_name(n, sizeof n, "%s%s", p, nm->in_proj_b), 1, (int64_t[]){3 * w});
}

void clip_block_load(weight_loader *l, const clip_block_names *nm, int i, const clip_block_shape *s,
                     clip_layer *L)
{
    char n[256], p[128];
    int w = s->width;
    snprintf(p, sizeof p, nm->layer, i);
    wl_norm(l, wl_name(n, sizeof n, "%s%s", p, nm->ln1), w, &L->ln1);
    wl_norm(l, wl_name(n, sizeof n, "%s%s", p, nm->ln2), w, &L->ln2);
    if (nm->in_proj_w) {
        load_in_proj(l, nm, p, w, &L->qkv);
    } else {
        wl_linear(l, wl_name(n, sizeof n, "%s%s", p, nm->q), w, w, 1, &L->q);
        wl_linear(l, wl_name(n, sizeof n, "%s%s", p, nm->k), w, w, 1, &L->k);
        wl_linear(l, wl_name(n, sizeof n, "%s%s", p, nm->v), w, w, 1, &L->v);
    }
    wl_linear(l, wl_name(n, sizeof n, "%s%s", p, nm->out_proj), w, w, 1, &L->o);
    wl_linear(l, wl_name(n, sizeof n, "%s%s", p, nm->fc1), s->mlp, w, 1, &L->fc1);
    wl_linear(l, wl_name(n, sizeof n, "%s%s", p, nm->fc2), w, s->mlp, 1, &L->fc2);
}

gs_status clip_bufs_alloc(gi_compute *cx, long rows, const clip_block_shape *s, clip_bufs *b,
                          gi_error *err)
{
    arena *a = &cx->scratch;
    memset(b, 0, sizeof *b);
    b->h = arena_floats(a, (size_t)rows * s->width);
    b->qkv = arena_floats(a, (size_t)rows * 3 * s->width);
    b->mlp = arena_floats(a, (size_t)rows * s->mlp);
    if (!b->h || !b->qkv || !b->mlp)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in a CLIP transformer");
    return GS_OK;
}

/* q, k, v of h [rows, w] into b->qkv: one GEMM for a fused in_proj, three otherwise. */
static gs_status project_qkv(gi_compute *cx, const clip_layer *L, const float *h, long rows, int w,
                             clip_bufs *b, gi_error *err)
{
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
    return op_linear_shared(cx, (const linear_weights *[]){&L->q, &L->k, &L->v}, 3, h, rows,
                            (float *[]){q, k, v}, err);
}

gs_status clip_blocks_run(gi_compute *cx, const clip_layer *layer, const clip_block_shape *s,
                          float *x, int n_seq, int T, int causal, int from, int to, clip_bufs *b,
                          gi_error *err)
{
    const int w = s->width;
    const long rows = (long)n_seq * T;
    gs_status st = GS_OK;
    for (int i = from; i < to && st == GS_OK; i++) {
        const clip_layer *L = &layer[i];
        op_layer_norm(cx, &L->ln1, x, rows, w, CLIP_LN_EPS, b->h);
        if ((st = project_qkv(cx, L, b->h, rows, w, b, err)) != GS_OK)
            break;
        st = op_attention(cx, b->q, b->qkv_stride, b->k, b->v, b->qkv_stride, n_seq, T, T, s->heads,
                          w / s->heads, causal, b->h, err);
        if (st != GS_OK || (st = op_linear(cx, &L->o, b->h, rows, b->qkv, err)) != GS_OK)
            break;
        op_add(cx, x, b->qkv, rows * w);
        op_layer_norm(cx, &L->ln2, x, rows, w, CLIP_LN_EPS, b->h);
        if ((st = op_linear(cx, &L->fc1, b->h, rows, b->mlp, err)) != GS_OK)
            break;
        if (s->gelu_erf)
            op_gelu(cx, b->mlp, rows * s->mlp);
        else
            op_quick_gelu(cx, b->mlp, rows * s->mlp);
        if ((st = op_linear(cx, &L->fc2, b->mlp, rows, b->qkv, err)) != GS_OK)
            break;
        op_add(cx, x, b->qkv, rows * w);
    }
    return st;
}
