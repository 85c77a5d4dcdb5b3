/*
 * vae - AutoencoderKL forward passes.
 *
 * Loading, the blocks both sides share, and the encoder; the decoder is in
 * vae_decode.c. Blocks write into caller-provided outputs and take their
 * temporaries from the scratch arena in stack order, so a whole encode needs
 * two feature maps of the largest size plus one block's temporaries.
 */
#include "model/vae.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "model/vae_internal.h"
#include "model/weights.h"

/* ---- loading ---- */

static void load_res(weight_loader *l, const char *p, vae_res *r)
{
    char n[256];
    r->cin = (int)wl_dim(l, wl_name(n, sizeof n, "%s.conv1.weight", p), 1);
    r->cout = (int)wl_dim(l, wl_name(n, sizeof n, "%s.conv1.weight", p), 0);
    if (r->cin <= 0 || r->cout <= 0) {
        if (l->st == GS_OK)
            l->st = gi_fail(l->err, GS_ERR_FORMAT, "tensor '%s%s.conv1.weight' is missing",
                            l->prefix, p);
        return;
    }
    wl_norm(l, wl_name(n, sizeof n, "%s.norm1", p), r->cin, &r->n1);
    wl_conv(l, wl_name(n, sizeof n, "%s.conv1", p), r->cout, r->cin, 3, &r->c1);
    wl_norm(l, wl_name(n, sizeof n, "%s.norm2", p), r->cout, &r->n2);
    wl_conv(l, wl_name(n, sizeof n, "%s.conv2", p), r->cout, r->cout, 3, &r->c2);
    r->has_skip = r->cin != r->cout;
    if (r->has_skip)
        wl_conv(l, wl_name(n, sizeof n, "%s.nin_shortcut", p), r->cout, r->cin, 1, &r->skip);
}

static void load_attn(weight_loader *l, const char *p, int c, vae_attn *a)
{
    char n[256];
    a->c = c;
    wl_norm(l, wl_name(n, sizeof n, "%s.norm", p), c, &a->norm);
    wl_conv(l, wl_name(n, sizeof n, "%s.q", p), c, c, 1, &a->q);
    wl_conv(l, wl_name(n, sizeof n, "%s.k", p), c, c, 1, &a->k);
    wl_conv(l, wl_name(n, sizeof n, "%s.v", p), c, c, 1, &a->v);
    wl_conv(l, wl_name(n, sizeof n, "%s.proj_out", p), c, c, 1, &a->proj);
}

static int count_blocks(weight_loader *l, const char *fmt_level, int level)
{
    char n[256], lv[128];
    snprintf(lv, sizeof lv, fmt_level, level);
    int b = 0;
    while (b < VAE_MAX_BLOCKS &&
           wl_find(l, wl_name(n, sizeof n, "%s.block.%d.conv1.weight", lv, b)))
        b++;
    return b;
}

static void load_coder(weight_loader *l, int encoder, int z, vae_coder *c)
{
    const char *side = encoder ? "encoder" : "decoder";
    const char *lvl = encoder ? "encoder.down.%d" : "decoder.up.%d";
    char n[256], p[160];
    c->levels = 0;
    while (c->levels < VAE_MAX_LEVELS && count_blocks(l, lvl, c->levels) > 0)
        c->levels++;
    if (c->levels == 0) {
        if (l->st == GS_OK)
            l->st = gi_fail(l->err, GS_ERR_FORMAT, "VAE %s blocks are missing", side);
        return;
    }
    int cin_img = encoder ? 3 : z;
    int ch = (int)wl_dim(l, wl_name(n, sizeof n, "%s.conv_in.weight", side), 0);
    if (ch <= 0) {
        if (l->st == GS_OK)
            l->st = gi_fail(l->err, GS_ERR_FORMAT, "tensor '%s%s.conv_in.weight' is missing",
                            l->prefix, side);
        return;
    }
    wl_conv(l, wl_name(n, sizeof n, "%s.conv_in", side), ch, cin_img, 3, &c->conv_in);
    for (int i = 0; i < c->levels; i++) {
        vae_level *L = &c->level[i];
        snprintf(p, sizeof p, lvl, i);
        L->n_blocks = count_blocks(l, lvl, i);
        for (int b = 0; b < L->n_blocks; b++)
            load_res(l, wl_name(n, sizeof n, "%s.block.%d", p, b), &L->block[b]);
        const char *rs = encoder ? "downsample" : "upsample";
        L->has_resample = wl_find(l, wl_name(n, sizeof n, "%s.%s.conv.weight", p, rs)) != NULL;
        if (L->has_resample) {
            int rc = L->block[L->n_blocks - 1].cout;
            wl_conv(l, wl_name(n, sizeof n, "%s.%s.conv", p, rs), rc, rc, 3, &L->resample);
        }
    }
    load_res(l, wl_name(n, sizeof n, "%s.mid.block_1", side), &c->mid1);
    load_attn(l, wl_name(n, sizeof n, "%s.mid.attn_1", side), c->mid1.cout, &c->attn);
    load_res(l, wl_name(n, sizeof n, "%s.mid.block_2", side), &c->mid2);
    int last = encoder ? c->mid2.cout : c->level[0].block[c->level[0].n_blocks - 1].cout;
    wl_norm(l, wl_name(n, sizeof n, "%s.norm_out", side), last, &c->norm_out);
    wl_conv(l, wl_name(n, sizeof n, "%s.conv_out", side), encoder ? 2 * z : 3, last, 3,
            &c->conv_out);
}

gs_status vae_load(const st_file *f, const char *prefix, int half, weight_log *log, vae **out,
                   gi_error *err)
{
    gs_status st = vae_load_decoder(f, prefix, half, log, out, err);
    if (st == GS_OK && (st = vae_load_encoder(*out, f, prefix, half, log, err)) != GS_OK) {
        vae_free(*out);
        *out = NULL;
    }
    return st;
}

gs_status vae_load_decoder(const st_file *f, const char *prefix, int half, weight_log *log,
                           vae **out, gi_error *err)
{
    *out = NULL;
    vae *m = gi_calloc(1, sizeof *m);
    if (!m)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    weight_loader l = wl_begin(f, prefix, &m->store, half, log, err);
    m->z = (int)wl_dim(&l, "post_quant_conv.weight", 0);
    if (m->z <= 0 || m->z > 64) {
        vae_free(m);
        return gi_fail(err, GS_ERR_FORMAT, "tensor '%spost_quant_conv.weight' is missing", prefix);
    }
    wl_conv(&l, "post_quant_conv", m->z, m->z, 1, &m->post_quant);
    load_coder(&l, 0, m->z, &m->dec);
    if (l.st == GS_OK && m->dec.levels < 1)
        l.st = gi_fail(err, GS_ERR_FORMAT, "the VAE decoder has no levels");
    if (l.st != GS_OK) {
        vae_free(m);
        return l.st;
    }
    m->levels = m->dec.levels;
    *out = m;
    return GS_OK;
}

gs_status vae_load_encoder(vae *m, const st_file *f, const char *prefix, int half, weight_log *log,
                           gi_error *err)
{
    if (m->has_encoder)
        return GS_OK;
    weight_loader l = wl_begin(f, prefix, &m->enc_store, half, log, err);
    wl_conv(&l, "quant_conv", 2 * m->z, 2 * m->z, 1, &m->quant);
    load_coder(&l, 1, m->z, &m->enc);
    if (l.st == GS_OK && m->enc.levels != m->dec.levels)
        l.st = gi_fail(err, GS_ERR_UNSUPPORTED, "VAE encoder and decoder depths differ (%d, %d)",
                       m->enc.levels, m->dec.levels);
    if (l.st != GS_OK) {
        weight_store_free(&m->enc_store);
        return l.st;
    }
    m->has_encoder = 1;
    return GS_OK;
}

void vae_set_f32_activations(vae *m, int on)
{
    m->f32_activations = on != 0;
}

compute_mode vae_enter_mode(const vae *m, gi_compute *cx)
{
    if (m->f32_activations)
        return compute_f32_activations(cx);
    return (compute_mode){cx->attn_bf16, cx->winograd_bf16, cx->widen_bf16};
}

int vae_has_encoder(const vae *m)
{
    return m->has_encoder;
}

int vae_latent_channels(const vae *m)
{
    return m->z;
}

size_t vae_weight_bytes(const vae *m)
{
    return m->store.bytes + m->enc_store.bytes;
}

void vae_free(vae *m)
{
    if (!m)
        return;
    weight_store_free(&m->store);
    weight_store_free(&m->enc_store);
    gi_free(m);
}

/* ---- blocks ---- */

gs_status vae_res_forward(gi_compute *cx, const vae_res *r, const float *x, int n, int h, int w,
                          float *out, gi_error *err)
{
    arena_mark mk = arena_get_mark(&cx->scratch);
    long px = (long)n * h * w;
    /* the middle activation lives in out, which is free until the residual sum */
    float *t = arena_floats(&cx->scratch, (size_t)px * (r->cin > r->cout ? r->cin : r->cout));
    if (!t)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE");
    gs_status st;
    op_group_norm(cx, &r->n1, x, n, (long)h * w, r->cin, VAE_GROUPS, VAE_EPS, 1, t);
    if ((st = op_conv2d_same(cx, &r->c1, t, n, h, w, out, err)) != GS_OK)
        goto out;
    op_group_norm(cx, &r->n2, out, n, (long)h * w, r->cout, VAE_GROUPS, VAE_EPS, 1, out);
    if ((st = op_conv2d_same(cx, &r->c2, out, n, h, w, t, err)) != GS_OK)
        goto out;
    if (r->has_skip) {
        if ((st = op_conv2d_same(cx, &r->skip, x, n, h, w, out, err)) != GS_OK)
            goto out;
    } else if (out != x) {
        memcpy(out, x, (size_t)px * r->cout * sizeof *out);
    }
    op_add(cx, out, t, px * r->cout);
out:
    arena_release(&cx->scratch, mk);
    return st;
}

/* Single-head self-attention over the h*w pixels; out may equal x. */
static gs_status attn_forward(gi_compute *cx, const vae_attn *a, const float *x, int n, int h,
                              int w, float *out, gi_error *err)
{
    arena_mark mk = arena_get_mark(&cx->scratch);
    long px = (long)n * h * w;
    int c = a->c;
    float *t = arena_floats(&cx->scratch, (size_t)px * c);
    float *q = arena_floats(&cx->scratch, (size_t)px * c);
    float *k = arena_floats(&cx->scratch, (size_t)px * c);
    float *v = arena_floats(&cx->scratch, (size_t)px * c);
    gs_status st = GS_OK;
    if (!t || !q || !k || !v) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE");
        goto out;
    }
    op_group_norm(cx, &a->norm, x, n, (long)h * w, c, VAE_GROUPS, VAE_EPS, 0, t);
    if ((st = op_conv2d_same(cx, &a->q, t, n, h, w, q, err)) != GS_OK ||
        (st = op_conv2d_same(cx, &a->k, t, n, h, w, k, err)) != GS_OK ||
        (st = op_conv2d_same(cx, &a->v, t, n, h, w, v, err)) != GS_OK)
        goto out;
    if ((st = op_attention(cx, q, c, k, v, c, n, h * w, h * w, 1, c, 0, t, err)) != GS_OK)
        goto out;
    if ((st = op_conv2d_same(cx, &a->proj, t, n, h, w, q, err)) != GS_OK)
        goto out;
    if (out != x)
        memcpy(out, x, (size_t)px * c * sizeof *out);
    op_add(cx, out, q, px * c);
out:
    arena_release(&cx->scratch, mk);
    return st;
}

gs_status vae_mid_forward(gi_compute *cx, const vae_coder *c, float **cur, float **alt, int n,
                          int h, int w, gi_error *err)
{
    gs_status st;
    if ((st = vae_res_forward(cx, &c->mid1, *cur, n, h, w, *alt, err)) != GS_OK)
        return st;
    if ((st = attn_forward(cx, &c->attn, *alt, n, h, w, *alt, err)) != GS_OK)
        return st;
    if ((st = vae_res_forward(cx, &c->mid2, *alt, n, h, w, *cur, err)) != GS_OK)
        return st;
    return GS_OK;
}

void vae_swap(float **a, float **b)
{
    float *t = *a;
    *a = *b;
    *b = t;
}

/* ---- encode ---- */

static gs_status encode(vae *m, gi_compute *cx, const float *image, int n, int H, int W,
                        float *mean, float *logvar, gi_error *err);

gs_status vae_encode(vae *m, gi_compute *cx, const float *image, int n, int H, int W, float *mean,
                     float *logvar, gi_error *err)
{
    compute_mode was = vae_enter_mode(m, cx);
    gs_status st = encode(m, cx, image, n, H, W, mean, logvar, err);
    compute_set_mode(cx, was);
    return st;
}

static gs_status encode(vae *m, gi_compute *cx, const float *image, int n, int H, int W,
                        float *mean, float *logvar, gi_error *err)
{
    if (!m->has_encoder)
        return gi_fail(err, GS_ERR_INTERNAL, "the VAE encoder is not loaded");
    int f = 1 << (m->levels - 1);
    if (n < 1 || H < f || W < f || H % f || W % f || (long)H * W > (1L << 26))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "VAE encode: image size %dx%d must be a positive multiple of %d", W, H, f);
    gs_status st = compute_begin(cx, err);
    if (st != GS_OK)
        return st;
    const vae_coder *e = &m->enc;
    size_t big = (size_t)n * H * W * e->conv_in.cout;
    for (int i = 0; i < m->levels; i++) {
        size_t s =
            (size_t)n * (H >> i) * (W >> i) * e->level[i].block[e->level[i].n_blocks - 1].cout;
        big = s > big ? s : big;
    }
    float *cur = arena_floats(&cx->scratch, big), *alt = arena_floats(&cx->scratch, big);
    if (!cur || !alt)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE encoder");
    int h = H, w = W;
    if ((st = op_conv2d_same(cx, &e->conv_in, image, n, h, w, cur, err)) != GS_OK)
        return st;
    for (int i = 0; i < m->levels; i++) {
        const vae_level *L = &e->level[i];
        for (int b = 0; b < L->n_blocks; b++) {
            if ((st = vae_res_forward(cx, &L->block[b], cur, n, h, w, alt, err)) != GS_OK)
                return st;
            vae_swap(&cur, &alt);
        }
        if (L->has_resample) {
            /* LDM pads right and bottom by one, then a stride-2 3x3 conv */
            int oh = h / 2, ow = w / 2;
            if ((st = op_conv2d(cx, &L->resample, cur, n, h, w, 2, 0, 0, oh, ow, alt, err)) !=
                GS_OK)
                return st;
            h = oh;
            w = ow;
            vae_swap(&cur, &alt);
        }
    }
    if ((st = vae_mid_forward(cx, e, &cur, &alt, n, h, w, err)) != GS_OK)
        return st;
    op_group_norm(cx, &e->norm_out, cur, n, (long)h * w, e->norm_out.c, VAE_GROUPS, VAE_EPS, 1,
                  alt);
    arena_mark mk = arena_get_mark(&cx->scratch);
    float *moments = arena_floats(&cx->scratch, (size_t)n * h * w * 2 * m->z);
    float *q = arena_floats(&cx->scratch, (size_t)n * h * w * 2 * m->z);
    if (!moments || !q)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in the VAE encoder");
    if ((st = op_conv2d_same(cx, &e->conv_out, alt, n, h, w, moments, err)) != GS_OK ||
        (st = op_conv2d_same(cx, &m->quant, moments, n, h, w, q, err)) != GS_OK)
        return st;
    long px = (long)n * h * w;
    for (long p = 0; p < px; p++) {
        for (int c = 0; c < m->z; c++) {
            mean[p * m->z + c] = q[p * 2 * m->z + c];
            if (logvar) {
                float lv = q[p * 2 * m->z + m->z + c];
                logvar[p * m->z + c] = lv < -30.0f ? -30.0f : lv > 20.0f ? 20.0f : lv;
            }
        }
    }
    arena_release(&cx->scratch, mk);
    return GS_OK;
}
