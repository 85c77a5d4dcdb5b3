/*
 * unet - UNet forward pass.
 *
 * Memory: at the start of a pass the arena gets two ping-pong maps for the
 * output path, then one buffer per skip connection as the input path produces
 * it; each block's temporaries sit above those and are released when the
 * block ends (stack order), so the arena peak is the skips plus one block.
 */
#include "model/unet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "model/weights.h"

#define UNET_GROUPS 32
#define MAX_BLOCKS 64
#define MAX_DEPTH 16

typedef struct unet_res {
    norm_weights n_in, n_out;
    conv_weights c_in, c_out, skip;
    linear_weights emb;
    int cin, cout, has_skip;
} unet_res;

typedef struct unet_tblock {
    norm_weights ln1, ln2, ln3;
    linear_weights q1, k1, v1, o1, q2, k2, v2, o2, ff1, ff2;
} unet_tblock;

typedef struct unet_xf {
    norm_weights norm;
    conv_weights proj_in, proj_out;
    unet_tblock *blocks;
    int depth, c, heads, inner;
} unet_xf;

typedef struct unet_block {
    int is_down; /* input path: a stride-2 conv instead of a ResBlock */
    conv_weights down;
    unet_res res;
    int has_xf;
    unet_xf xf;
    int has_up; /* output path: nearest resize + conv after the block */
    conv_weights up;
    int cout;
} unet_block;

struct unet {
    weight_store store;
    int cin, cout, mc, temb, ctx_dim, adm;
    linear_weights te1, te2, le1, le2; /* time embedding; label_emb (when adm > 0) */
    conv_weights conv_in, conv_out;
    norm_weights norm_out;
    unet_block in[MAX_BLOCKS], out[MAX_BLOCKS], mid_res1, mid_res2;
    unet_xf mid_xf;
    int n_in, n_out;
};

/* ---- loading ---- */

static int fail_missing(weight_loader *l, const char *name)
{
    if (l->st == GS_OK)
        l->st = gi_fail(l->err, GS_ERR_FORMAT, "tensor '%s%s' is missing", l->prefix, name);
    return 0;
}

static int load_res(weight_loader *l, const char *p, int temb, unet_res *r)
{
    char n[256];
    wl_name(n, sizeof n, "%sin_layers.2.weight", p);
    r->cout = (int)wl_dim(l, n, 0);
    r->cin = (int)wl_dim(l, n, 1);
    if (r->cout <= 0 || r->cin <= 0)
        return fail_missing(l, n);
    wl_norm(l, wl_name(n, sizeof n, "%sin_layers.0", p), r->cin, &r->n_in);
    wl_conv(l, wl_name(n, sizeof n, "%sin_layers.2", p), r->cout, r->cin, 3, &r->c_in);
    wl_linear(l, wl_name(n, sizeof n, "%semb_layers.1", p), r->cout, temb, 1, &r->emb);
    wl_norm(l, wl_name(n, sizeof n, "%sout_layers.0", p), r->cout, &r->n_out);
    wl_conv(l, wl_name(n, sizeof n, "%sout_layers.3", p), r->cout, r->cout, 3, &r->c_out);
    r->has_skip = r->cin != r->cout;
    if (r->has_skip)
        wl_conv(l, wl_name(n, sizeof n, "%sskip_connection", p), r->cout, r->cin, 1, &r->skip);
    return l->st == GS_OK;
}

static int load_xf(weight_loader *l, const char *p, int c, int ctx_dim, const unet_opts *o,
                   unet_xf *x)
{
    char n[256], q[200];
    x->c = c;
    /* SD1 fixes the head count, SD2 and SDXL the head width (so their heads grow with the level) */
    int split = o->heads > 0 ? o->heads : o->head_dim;
    x->heads = o->heads > 0 ? o->heads : c / o->head_dim;
    if (c % split != 0 || x->heads < 1) {
        if (l->st == GS_OK)
            l->st = gi_fail(l->err, GS_ERR_UNSUPPORTED,
                            "attention width %d is not divisible into heads (%s %d)", c,
                            o->heads > 0 ? "heads" : "head width", split);
        return 0;
    }
    x->inner = (int)wl_dim(l, wl_name(n, sizeof n, "%stransformer_blocks.0.ff.net.2.weight", p), 1);
    if (x->inner <= 0)
        return fail_missing(l, n);
    while (x->depth < MAX_DEPTH &&
           wl_find(l, wl_name(n, sizeof n, "%stransformer_blocks.%d.norm1.weight", p, x->depth)))
        x->depth++;
    if (wl_find(l, wl_name(n, sizeof n, "%stransformer_blocks.%d.norm1.weight", p, x->depth))) {
        if (l->st == GS_OK) /* deeper than we hold: refuse rather than drop blocks */
            l->st = gi_fail(l->err, GS_ERR_UNSUPPORTED, "'%s%s': more than %d transformer blocks",
                            l->prefix, p, MAX_DEPTH);
        return 0;
    }
    x->blocks = gi_calloc((size_t)x->depth, sizeof *x->blocks);
    if (!x->blocks) {
        l->st = gi_fail(l->err, GS_ERR_NO_MEMORY, "out of memory");
        return 0;
    }
    wl_norm(l, wl_name(n, sizeof n, "%snorm", p), c, &x->norm);
    /* SD1: 1x1 convs [c,c,1,1]; SD2/SDXL: linear [c,c], the same product per pixel */
    wl_conv(l, wl_name(n, sizeof n, "%sproj_in", p), c, c, 1, &x->proj_in);
    wl_conv(l, wl_name(n, sizeof n, "%sproj_out", p), c, c, 1, &x->proj_out);
    for (int d = 0; d < x->depth; d++) {
        unet_tblock *b = &x->blocks[d];
        snprintf(q, sizeof q, "%stransformer_blocks.%d.", p, d);
        wl_norm(l, wl_name(n, sizeof n, "%snorm1", q), c, &b->ln1);
        wl_norm(l, wl_name(n, sizeof n, "%snorm2", q), c, &b->ln2);
        wl_norm(l, wl_name(n, sizeof n, "%snorm3", q), c, &b->ln3);
        wl_linear(l, wl_name(n, sizeof n, "%sattn1.to_q", q), c, c, 0, &b->q1);
        wl_linear(l, wl_name(n, sizeof n, "%sattn1.to_k", q), c, c, 0, &b->k1);
        wl_linear(l, wl_name(n, sizeof n, "%sattn1.to_v", q), c, c, 0, &b->v1);
        wl_linear(l, wl_name(n, sizeof n, "%sattn1.to_out.0", q), c, c, 1, &b->o1);
        wl_linear(l, wl_name(n, sizeof n, "%sattn2.to_q", q), c, c, 0, &b->q2);
        wl_linear(l, wl_name(n, sizeof n, "%sattn2.to_k", q), c, ctx_dim, 0, &b->k2);
        wl_linear(l, wl_name(n, sizeof n, "%sattn2.to_v", q), c, ctx_dim, 0, &b->v2);
        wl_linear(l, wl_name(n, sizeof n, "%sattn2.to_out.0", q), c, c, 1, &b->o2);
        wl_linear(l, wl_name(n, sizeof n, "%sff.net.0.proj", q), 2 * x->inner, c, 1, &b->ff1);
        wl_linear(l, wl_name(n, sizeof n, "%sff.net.2", q), c, x->inner, 1, &b->ff2);
    }
    return l->st == GS_OK;
}

/* Whether any tensor of a block exists: a block missing one of its tensors must
   be reported by that tensor's name, not mistaken for the end of the list. */
static int block_exists(weight_loader *l, const char *fmt, int i)
{
    static const char *const probes[] = {"0.op.weight",           "0.in_layers.0.weight",
                                         "0.in_layers.2.weight",  "0.emb_layers.1.weight",
                                         "0.out_layers.0.weight", "0.out_layers.3.weight"};
    char p[64], n[256];
    snprintf(p, sizeof p, fmt, i);
    for (size_t k = 0; k < sizeof probes / sizeof probes[0]; k++)
        if (wl_find(l, wl_name(n, sizeof n, "%s%s", p, probes[k])))
            return 1;
    return 0;
}

/* input_blocks.N / output_blocks.N / middle_block at prefix p (ending in '.') */
static int load_block(weight_loader *l, const char *p, int temb, int ctx_dim, const unet_opts *o,
                      int ch, unet_block *b)
{
    char n[256];
    if (wl_find(l, wl_name(n, sizeof n, "%s0.op.weight", p))) {
        b->is_down = 1;
        b->cout = ch;
        wl_conv(l, wl_name(n, sizeof n, "%s0.op", p), ch, ch, 3, &b->down);
        return l->st == GS_OK;
    }
    if (!load_res(l, wl_name(n, sizeof n, "%s0.", p), temb, &b->res))
        return 0;
    b->cout = b->res.cout;
    int sub = 1;
    if (wl_find(l, wl_name(n, sizeof n, "%s1.proj_in.weight", p))) {
        b->has_xf = 1;
        if (!load_xf(l, wl_name(n, sizeof n, "%s1.", p), b->cout, ctx_dim, o, &b->xf))
            return 0;
        sub = 2;
    }
    if (wl_find(l, wl_name(n, sizeof n, "%s%d.conv.weight", p, sub))) {
        b->has_up = 1;
        wl_conv(l, wl_name(n, sizeof n, "%s%d.conv", p, sub), b->cout, b->cout, 3, &b->up);
    }
    return l->st == GS_OK;
}

static const char *find_context_key(weight_loader *l, char *buf, size_t size)
{
    for (int i = 0; i < MAX_BLOCKS; i++)
        if (wl_find(l, wl_name(buf, size,
                               "input_blocks.%d.1.transformer_blocks.0.attn2.to_k.weight", i)))
            return buf;
    return wl_name(buf, size, "middle_block.1.transformer_blocks.0.attn2.to_k.weight");
}

gs_status unet_load(const st_file *f, const char *prefix, const unet_opts *opts, int half,
                    weight_log *log, unet **out, gi_error *err)
{
    *out = NULL;
    if (!opts || (opts->heads > 0) == (opts->head_dim > 0))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "UNet: give either a head count or a head width");
    unet *m = gi_calloc(1, sizeof *m);
    if (!m)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    weight_loader l = wl_begin(f, prefix, &m->store, half, log, err);
    char n[256], p[64];
    m->mc = (int)wl_dim(&l, "input_blocks.0.0.weight", 0);
    m->cin = (int)wl_dim(&l, "input_blocks.0.0.weight", 1);
    m->temb = (int)wl_dim(&l, "time_embed.0.weight", 0);
    m->ctx_dim = (int)wl_dim(&l, find_context_key(&l, n, sizeof n), 1);
    m->cout = (int)wl_dim(&l, "out.2.weight", 0);
    if (m->mc <= 0 || m->cin <= 0 || m->cout <= 0 || m->temb <= 0 || m->ctx_dim <= 0 || m->mc % 2) {
        unet_free(m);
        return gi_fail(err, GS_ERR_FORMAT, "UNet tensors under '%s' are missing or malformed",
                       prefix);
    }
    wl_linear(&l, "time_embed.0", m->temb, m->mc, 1, &m->te1);
    wl_linear(&l, "time_embed.2", m->temb, m->temb, 1, &m->te2);
    if (wl_find(&l, "label_emb.0.0.weight")) {
        m->adm = (int)wl_dim(&l, "label_emb.0.0.weight", 1);
        wl_linear(&l, "label_emb.0.0", m->temb, m->adm, 1, &m->le1);
        wl_linear(&l, "label_emb.0.2", m->temb, m->temb, 1, &m->le2);
    }
    wl_conv(&l, "input_blocks.0.0", m->mc, m->cin, 3, &m->conv_in);
    int ch = m->mc;
    for (m->n_in = 0; m->n_in < MAX_BLOCKS - 1 && l.st == GS_OK; m->n_in++) {
        int i = m->n_in + 1;
        if (!block_exists(&l, "input_blocks.%d.", i))
            break;
        snprintf(p, sizeof p, "input_blocks.%d.", i);
        load_block(&l, p, m->temb, m->ctx_dim, opts, ch, &m->in[m->n_in]);
        ch = m->in[m->n_in].cout;
    }
    load_res(&l, "middle_block.0.", m->temb, &m->mid_res1.res);
    if (l.st == GS_OK)
        load_xf(&l, "middle_block.1.", m->mid_res1.res.cout, m->ctx_dim, opts, &m->mid_xf);
    load_res(&l, "middle_block.2.", m->temb, &m->mid_res2.res);
    for (m->n_out = 0; m->n_out < MAX_BLOCKS && l.st == GS_OK; m->n_out++) {
        if (!block_exists(&l, "output_blocks.%d.", m->n_out))
            break;
        snprintf(p, sizeof p, "output_blocks.%d.", m->n_out);
        load_block(&l, p, m->temb, m->ctx_dim, opts, 0, &m->out[m->n_out]);
    }
    wl_norm(&l, "out.0", m->mc, &m->norm_out);
    wl_conv(&l, "out.2", m->cout, m->mc, 3, &m->conv_out);
    if (l.st == GS_OK && m->n_out != m->n_in + 1)
        l.st = gi_fail(err, GS_ERR_FORMAT, "UNet has %d input blocks but %d output blocks",
                       m->n_in + 1, m->n_out);
    if (l.st != GS_OK) {
        unet_free(m);
        return l.st;
    }
    *out = m;
    return GS_OK;
}

int unet_in_channels(const unet *m)
{
    return m->cin;
}
int unet_model_channels(const unet *m)
{
    return m->mc;
}
int unet_context_dim(const unet *m)
{
    return m->ctx_dim;
}
int unet_out_channels(const unet *m)
{
    return m->cout;
}
int unet_adm_channels(const unet *m)
{
    return m->adm;
}
size_t unet_weight_bytes(const unet *m)
{
    return m->store.bytes;
}

void unet_free(unet *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_in; i++)
        gi_free(m->in[i].xf.blocks);
    for (int i = 0; i < m->n_out; i++)
        gi_free(m->out[i].xf.blocks);
    gi_free(m->mid_xf.blocks);
    weight_store_free(&m->store);
    gi_free(m);
}

/* ---- blocks ---- */

typedef struct fwd {
    gi_compute *cx;
    arena *a;
    int n;                /* batch */
    const float *emb;     /* [n, temb] SiLU(time embedding) */
    const float *context; /* [n, tokens, ctx_dim] */
    int tokens;
    gi_error *err;
} fwd;

#define NOMEM(f) gi_fail((f)->err, GS_ERR_NO_MEMORY, "out of memory in the UNet")

/* out = skip(x) + conv(silu(gn(conv(silu(gn(x)))) + emb)); out must not alias x. */
static gs_status res_forward(fwd *f, const unet_res *r, const float *x, int h, int w, float *out)
{
    arena_mark mk = arena_get_mark(f->a);
    long px = (long)f->n * h * w;
    /* the middle activation lives in out, which is free until the residual sum */
    float *t = arena_floats(f->a, (size_t)px * (r->cin > r->cout ? r->cin : r->cout));
    float *e = arena_floats(f->a, (size_t)f->n * r->cout);
    gs_status st = GS_OK;
    if (!t || !e) {
        st = NOMEM(f);
        goto out;
    }
    op_group_norm(f->cx, &r->n_in, x, f->n, (long)h * w, r->cin, UNET_GROUPS, 1e-5f, 1, t);
    if ((st = op_conv2d_same(f->cx, &r->c_in, t, f->n, h, w, out, f->err)) != GS_OK ||
        (st = op_linear(f->cx, &r->emb, f->emb, f->n, e, f->err)) != GS_OK)
        goto out;
    op_add_broadcast(f->cx, out, e, f->n, (long)h * w, r->cout);
    op_group_norm(f->cx, &r->n_out, out, f->n, (long)h * w, r->cout, UNET_GROUPS, 1e-5f, 1, out);
    if ((st = op_conv2d_same(f->cx, &r->c_out, out, f->n, h, w, t, f->err)) != GS_OK)
        goto out;
    if (r->has_skip) {
        if ((st = op_conv2d_same(f->cx, &r->skip, x, f->n, h, w, out, f->err)) != GS_OK)
            goto out;
    } else {
        memcpy(out, x, (size_t)px * r->cout * sizeof *out);
    }
    op_add(f->cx, out, t, px * r->cout);
out:
    arena_release(f->a, mk);
    return st;
}

/* h += proj_out(transformer(proj_in(gn(h)))), in place. */
static gs_status xf_forward(fwd *f, const unet_xf *x, float *h, int hh, int ww)
{
    arena_mark mk = arena_get_mark(f->a);
    int c = x->c, d = c / x->heads, T = hh * ww, Tc = f->tokens;
    long rows = (long)f->n * T, crow = (long)f->n * Tc;
    long kv_rows = rows > crow ? rows : crow;
    gs_status st = GS_OK;
    float *s = arena_floats(f->a, (size_t)rows * c); /* stream */
    float *t = arena_floats(f->a, (size_t)rows * c); /* normed / temp */
    float *q = arena_floats(f->a, (size_t)rows * c);
    float *k = arena_floats(f->a, (size_t)kv_rows * c);
    float *v = arena_floats(f->a, (size_t)kv_rows * c);
    /* the feed-forward's wide middle (2 x inner per row) is computed a block of
       rows at a time: whole, it would be the largest buffer of the UNet */
    long ff_rows = rows < f->cx->block_rows ? rows : f->cx->block_rows;
    float *ff = arena_floats(f->a, (size_t)ff_rows * 2 * x->inner);
    float *g = arena_floats(f->a, (size_t)ff_rows * x->inner);
    if (!s || !t || !q || !k || !v || !ff || !g) {
        st = NOMEM(f);
        goto out;
    }
    op_group_norm(f->cx, &x->norm, h, f->n, T, c, UNET_GROUPS, 1e-6f, 0, t);
    if ((st = op_conv2d_same(f->cx, &x->proj_in, t, f->n, hh, ww, s, f->err)) != GS_OK)
        goto out;
    for (int b = 0; b < x->depth; b++) {
        const unet_tblock *B = &x->blocks[b];
        /* self-attention */
        op_layer_norm(f->cx, &B->ln1, s, rows, c, 1e-5f, t);
        if ((st = op_linear_shared(f->cx, (const linear_weights *[]){&B->q1, &B->k1, &B->v1}, 3, t,
                                   rows, (float *[]){q, k, v}, f->err)) != GS_OK ||
            (st = op_attention(f->cx, q, c, k, v, c, f->n, T, T, x->heads, d, 0, t, f->err)) !=
                GS_OK ||
            (st = op_linear_add(f->cx, &B->o1, t, rows, s, f->err)) != GS_OK)
            goto out;
        /* cross-attention on the text */
        op_layer_norm(f->cx, &B->ln2, s, rows, c, 1e-5f, t);
        if ((st = op_linear(f->cx, &B->q2, t, rows, q, f->err)) != GS_OK ||
            (st = op_linear_shared(f->cx, (const linear_weights *[]){&B->k2, &B->v2}, 2, f->context,
                                   crow, (float *[]){k, v}, f->err)) != GS_OK ||
            (st = op_attention(f->cx, q, c, k, v, c, f->n, T, Tc, x->heads, d, 0, t, f->err)) !=
                GS_OK ||
            (st = op_linear_add(f->cx, &B->o2, t, rows, s, f->err)) != GS_OK)
            goto out;
        /* GEGLU feed-forward */
        op_layer_norm(f->cx, &B->ln3, s, rows, c, 1e-5f, t);
        for (long r0 = 0; r0 < rows; r0 += ff_rows) {
            long nr = rows - r0 < ff_rows ? rows - r0 : ff_rows;
            if ((st = op_linear(f->cx, &B->ff1, t + r0 * c, nr, ff, f->err)) != GS_OK)
                goto out;
            if (op_linear_takes_bf16(f->cx, &B->ff2)) { /* g's floats hold nr x inner bf16 */
                op_geglu_bf16(f->cx, ff, nr, x->inner, (uint16_t *)g);
                st = op_linear_add_bf16(f->cx, &B->ff2, (uint16_t *)g, nr, s + r0 * c, f->err);
            } else {
                op_geglu(f->cx, ff, nr, x->inner, g);
                st = op_linear_add(f->cx, &B->ff2, g, nr, s + r0 * c, f->err);
            }
            if (st != GS_OK)
                goto out;
        }
    }
    st = op_conv1x1_add(f->cx, &x->proj_out, s, rows, h, f->err);
out:
    arena_release(f->a, mk);
    return st;
}

/* ---- forward ---- */

static void timestep_embedding(const float *t, int n, int dim, float *out)
{
    int half = dim / 2;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < half; i++) {
            double freq = exp(-log(10000.0) * i / half);
            double arg = (double)t[b] * freq;
            out[(size_t)b * dim + i] = (float)cos(arg);
            out[(size_t)b * dim + half + i] = (float)sin(arg);
        }
}

void unet_size_features(const float time_ids[6], float *out)
{
    /* float32 throughout, as sgm's timestep_embedding runs on a float32 tensor:
       the features of sizes like 1024 are far from the double-precision ones */
    const float neg_log = (float)-log(10000.0);
    for (int v = 0; v < 6; v++)
        for (int i = 0; i < 128; i++) {
            float freq = expf(neg_log * (float)i / 128.0f);
            float arg = time_ids[v] * freq;
            out[v * 256 + i] = cosf(arg);
            out[v * 256 + 128 + i] = sinf(arg);
        }
}

typedef struct shape3 {
    int h, w, c;
} shape3;

gs_status unet_forward(unet *m, gi_compute *cx, const float *x, const float *t,
                       const float *context, const float *y, int n, int h, int w, int tokens,
                       float *eps, gi_error *err)
{
    if (n < 1 || h < 1 || w < 1 || tokens < 1 || (long)h * w > (1L << 20))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "UNet: bad input size %dx%d, batch %d", w, h,
                       n);
    if (m->adm > 0 && !y)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "UNet: this model needs the added conditioning (%d wide)", m->adm);
    gs_status st = compute_begin(cx, err);
    if (st != GS_OK)
        return st;
    arena *a = &cx->scratch;
    fwd f = {cx, a, n, NULL, context, tokens, err};

    /* Shapes of every skip, and the largest map of the output path. */
    shape3 sk[MAX_BLOCKS];
    int ns = 0;
    sk[ns++] = (shape3){h, w, m->mc};
    size_t big = 0;
    for (int i = 0; i < m->n_in; i++) {
        shape3 s = sk[ns - 1];
        if (m->in[i].is_down) {
            s.h = (s.h - 1) / 2 + 1;
            s.w = (s.w - 1) / 2 + 1;
        }
        s.c = m->in[i].cout;
        sk[ns++] = s;
    }
    for (int i = 0; i < ns; i++) {
        size_t sz = (size_t)n * sk[i].h * sk[i].w * (sk[i].c > m->mc ? sk[i].c : m->mc);
        big = sz > big ? sz : big;
    }
    for (int i = 0; i < m->n_out; i++) {
        int si = ns - 1 - i;
        size_t sz = (size_t)n * sk[si].h * sk[si].w * m->out[i].cout;
        big = sz > big ? sz : big;
        if (si > 0) { /* the upsampled map takes the next skip's size */
            sz = (size_t)n * sk[si - 1].h * sk[si - 1].w * m->out[i].cout;
            big = sz > big ? sz : big;
        }
    }
    float *ha = arena_floats(a, big), *hb = arena_floats(a, big);
    float *temb = arena_floats(a, (size_t)n * m->temb);
    float *emb = arena_floats(a, (size_t)n * m->temb);
    float *sinus = arena_floats(a, (size_t)n * m->mc);
    float *lab = m->adm > 0 ? arena_floats(a, (size_t)n * m->temb) : NULL;
    float *skip[MAX_BLOCKS];
    if (!ha || !hb || !temb || !emb || !sinus || (m->adm > 0 && !lab))
        return NOMEM(&f);
    for (int i = 0; i < ns; i++) {
        skip[i] = arena_floats(a, (size_t)n * sk[i].h * sk[i].w * sk[i].c);
        if (!skip[i])
            return NOMEM(&f);
    }

    /* time embedding: silu(linear(silu(linear(sinusoid(t))))) feeds every ResBlock;
       SDXL adds label_emb(y) = linear(silu(linear(y))) before that last SiLU */
    timestep_embedding(t, n, m->mc, sinus);
    if ((st = op_linear(cx, &m->te1, sinus, n, temb, err)) != GS_OK)
        return st;
    op_silu(cx, temb, temb, (long)n * m->temb);
    if ((st = op_linear(cx, &m->te2, temb, n, emb, err)) != GS_OK)
        return st;
    if (m->adm > 0) {
        if ((st = op_linear(cx, &m->le1, y, n, temb, err)) != GS_OK)
            return st;
        op_silu(cx, temb, temb, (long)n * m->temb);
        if ((st = op_linear(cx, &m->le2, temb, n, lab, err)) != GS_OK)
            return st;
        op_add(cx, emb, lab, (long)n * m->temb);
    }
    op_silu(cx, emb, emb, (long)n * m->temb);
    f.emb = emb;

    /* input path: every block's output is a skip */
    if ((st = op_conv2d_same(cx, &m->conv_in, x, n, h, w, skip[0], err)) != GS_OK)
        return st;
    for (int i = 0; i < m->n_in; i++) {
        const unet_block *b = &m->in[i];
        shape3 si = sk[i], so = sk[i + 1];
        if (b->is_down) {
            st = op_conv2d(cx, &b->down, skip[i], n, si.h, si.w, 2, 1, 1, so.h, so.w, skip[i + 1],
                           err);
        } else {
            st = res_forward(&f, &b->res, skip[i], si.h, si.w, skip[i + 1]);
            if (st == GS_OK && b->has_xf)
                st = xf_forward(&f, &b->xf, skip[i + 1], so.h, so.w);
        }
        if (st != GS_OK)
            return st;
    }

    /* middle */
    shape3 cur = sk[ns - 1];
    if ((st = res_forward(&f, &m->mid_res1.res, skip[ns - 1], cur.h, cur.w, ha)) != GS_OK ||
        (st = xf_forward(&f, &m->mid_xf, ha, cur.h, cur.w)) != GS_OK ||
        (st = res_forward(&f, &m->mid_res2.res, ha, cur.h, cur.w, hb)) != GS_OK)
        return st;
    cur.c = m->mid_res2.res.cout;
    float *hcur = hb, *halt = ha;

    /* output path: concat the matching skip, ResBlock, transformer, maybe upsample */
    for (int i = 0; i < m->n_out; i++) {
        const unet_block *b = &m->out[i];
        int si = ns - 1 - i;
        arena_mark mk = arena_get_mark(a);
        float *cat = arena_floats(a, (size_t)n * cur.h * cur.w * (cur.c + sk[si].c));
        if (!cat)
            return NOMEM(&f);
        op_concat_channels(cx, hcur, cur.c, skip[si], sk[si].c, (long)n * cur.h * cur.w, cat);
        if (b->res.cin != cur.c + sk[si].c)
            return gi_fail(err, GS_ERR_FORMAT, "UNet output block %d expects %d channels, has %d",
                           i, b->res.cin, cur.c + sk[si].c);
        st = res_forward(&f, &b->res, cat, cur.h, cur.w, halt);
        arena_release(a, mk);
        if (st != GS_OK)
            return st;
        cur.c = b->cout;
        if (b->has_xf && (st = xf_forward(&f, &b->xf, halt, cur.h, cur.w)) != GS_OK)
            return st;
        if (b->has_up) {
            /* upsample to the size of the next skip (2x, or A1111's nearest fit) */
            shape3 to = si > 0 ? sk[si - 1] : (shape3){cur.h * 2, cur.w * 2, 0};
            op_resize_nearest(cx, halt, n, cur.h, cur.w, cur.c, to.h, to.w, hcur);
            cur.h = to.h;
            cur.w = to.w;
            if ((st = op_conv2d_same(cx, &b->up, hcur, n, cur.h, cur.w, halt, err)) != GS_OK)
                return st;
        }
        float *tmp = hcur;
        hcur = halt;
        halt = tmp;
    }

    /* out: GN + SiLU + conv to the latent channels */
    op_group_norm(cx, &m->norm_out, hcur, n, (long)cur.h * cur.w, m->mc, UNET_GROUPS, 1e-5f, 1,
                  halt);
    return op_conv2d_same(cx, &m->conv_out, halt, n, cur.h, cur.w, eps, err);
}
