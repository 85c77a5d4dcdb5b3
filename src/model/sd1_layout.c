/*
 * sd1_layout - enumerates an LDM SD1.x checkpoint: the UNet
 * (model.diffusion_model.*), the VAE (first_stage_model.*) and the CLIP text
 * encoder (cond_stage_model.transformer.text_model.*), in LDM's block order.
 */
#include "model/sd1_layout.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"

typedef struct builder {
    layout_tensor *t;
    int n, cap;
    int failed;
} builder;

__attribute__((format(printf, 5, 6))) static void add(builder *b, layout_init init, int ndim,
                                                      const int64_t *shape, const char *fmt, ...)
{
    if (b->failed)
        return;
    if (b->n == b->cap) {
        int cap = b->cap ? 2 * b->cap : 512;
        layout_tensor *t = gi_realloc(b->t, (size_t)cap * sizeof *t);
        if (!t) {
            b->failed = 1;
            return;
        }
        b->t = t;
        b->cap = cap;
    }
    layout_tensor *t = &b->t[b->n++];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    t->ndim = ndim;
    t->fan_in = 1;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    for (int i = 1; i < ndim; i++)
        t->fan_in *= shape[i];
    t->init = init;
}

#define SHAPE(...)                                                                                 \
    (const int64_t[])                                                                              \
    {                                                                                              \
        __VA_ARGS__                                                                                \
    }

static void norm(builder *b, const char *p, const char *n, int c)
{
    add(b, INIT_ONE, 1, SHAPE(c), "%s%s.weight", p, n);
    add(b, INIT_ZERO, 1, SHAPE(c), "%s%s.bias", p, n);
}

static void conv(builder *b, const char *p, const char *n, int cout, int cin, int k)
{
    add(b, INIT_WEIGHT, 4, SHAPE(cout, cin, k, k), "%s%s.weight", p, n);
    add(b, INIT_ZERO, 1, SHAPE(cout), "%s%s.bias", p, n);
}

static void linear(builder *b, const char *p, const char *n, int out, int in, int bias)
{
    add(b, INIT_WEIGHT, 2, SHAPE(out, in), "%s%s.weight", p, n);
    if (bias)
        add(b, INIT_ZERO, 1, SHAPE(out), "%s%s.bias", p, n);
}

/* ---- UNet ---- */

static void unet_res(builder *b, const char *p, int cin, int cout, int temb)
{
    norm(b, p, "in_layers.0", cin);
    conv(b, p, "in_layers.2", cout, cin, 3);
    linear(b, p, "emb_layers.1", cout, temb, 1);
    norm(b, p, "out_layers.0", cout);
    conv(b, p, "out_layers.3", cout, cout, 3);
    if (cin != cout)
        conv(b, p, "skip_connection", cout, cin, 1);
}

static void unet_transformer(builder *b, const char *p, int c, int ctx)
{
    char q[160];
    norm(b, p, "norm", c);
    conv(b, p, "proj_in", c, c, 1);
    snprintf(q, sizeof q, "%stransformer_blocks.0.", p);
    linear(b, q, "attn1.to_q", c, c, 0);
    linear(b, q, "attn1.to_k", c, c, 0);
    linear(b, q, "attn1.to_v", c, c, 0);
    linear(b, q, "attn1.to_out.0", c, c, 1);
    linear(b, q, "ff.net.0.proj", 8 * c, c, 1);
    linear(b, q, "ff.net.2", c, 4 * c, 1);
    linear(b, q, "attn2.to_q", c, c, 0);
    linear(b, q, "attn2.to_k", c, ctx, 0);
    linear(b, q, "attn2.to_v", c, ctx, 0);
    linear(b, q, "attn2.to_out.0", c, c, 1);
    norm(b, q, "norm1", c);
    norm(b, q, "norm2", c);
    norm(b, q, "norm3", c);
    conv(b, p, "proj_out", c, c, 1);
}

static void unet(builder *b, const sd1_config *cfg)
{
    static const int mult[] = {1, 2, 4, 4, 4, 4, 4, 4};
    const char *P = "model.diffusion_model.";
    int mc = cfg->unet_channels, temb = 4 * mc, L = cfg->unet_levels;
    char p[160];
    snprintf(p, sizeof p, "%stime_embed.", P);
    linear(b, p, "0", temb, mc, 1);
    linear(b, p, "2", temb, temb, 1);
    snprintf(p, sizeof p, "%sinput_blocks.0.", P);
    conv(b, p, "0", mc, cfg->latent_channels, 3);
    int skips[64], ns = 0, ch = mc, idx = 1;
    skips[ns++] = mc;
    for (int l = 0; l < L; l++) {
        int out = mc * mult[l];
        for (int r = 0; r < 2; r++, idx++) {
            snprintf(p, sizeof p, "%sinput_blocks.%d.0.", P, idx);
            unet_res(b, p, ch, out, temb);
            ch = out;
            if (l < L - 1) {
                snprintf(p, sizeof p, "%sinput_blocks.%d.1.", P, idx);
                unet_transformer(b, p, ch, cfg->context_dim);
            }
            skips[ns++] = ch;
        }
        if (l < L - 1) {
            snprintf(p, sizeof p, "%sinput_blocks.%d.0.", P, idx++);
            conv(b, p, "op", ch, ch, 3);
            skips[ns++] = ch;
        }
    }
    snprintf(p, sizeof p, "%smiddle_block.0.", P);
    unet_res(b, p, ch, ch, temb);
    snprintf(p, sizeof p, "%smiddle_block.1.", P);
    unet_transformer(b, p, ch, cfg->context_dim);
    snprintf(p, sizeof p, "%smiddle_block.2.", P);
    unet_res(b, p, ch, ch, temb);
    idx = 0;
    for (int l = L - 1; l >= 0; l--) {
        int out = mc * mult[l];
        for (int r = 0; r < 3; r++, idx++) {
            snprintf(p, sizeof p, "%soutput_blocks.%d.0.", P, idx);
            unet_res(b, p, ch + skips[--ns], out, temb);
            ch = out;
            int sub = 1;
            if (l < L - 1) {
                snprintf(p, sizeof p, "%soutput_blocks.%d.1.", P, idx);
                unet_transformer(b, p, ch, cfg->context_dim);
                sub = 2;
            }
            if (l > 0 && r == 2) {
                snprintf(p, sizeof p, "%soutput_blocks.%d.%d.", P, idx, sub);
                conv(b, p, "conv", ch, ch, 3);
            }
        }
    }
    snprintf(p, sizeof p, "%sout.", P);
    norm(b, p, "0", mc);
    conv(b, p, "2", cfg->latent_channels, mc, 3);
}

/* ---- VAE ---- */

static void vae_res(builder *b, const char *p, int cin, int cout)
{
    norm(b, p, "norm1", cin);
    conv(b, p, "conv1", cout, cin, 3);
    norm(b, p, "norm2", cout);
    conv(b, p, "conv2", cout, cout, 3);
    if (cin != cout)
        conv(b, p, "nin_shortcut", cout, cin, 1);
}

static void vae_mid(builder *b, const char *p, int c)
{
    char q[160];
    snprintf(q, sizeof q, "%smid.block_1.", p);
    vae_res(b, q, c, c);
    snprintf(q, sizeof q, "%smid.attn_1.", p);
    norm(b, q, "norm", c);
    conv(b, q, "q", c, c, 1);
    conv(b, q, "k", c, c, 1);
    conv(b, q, "v", c, c, 1);
    conv(b, q, "proj_out", c, c, 1);
    snprintf(q, sizeof q, "%smid.block_2.", p);
    vae_res(b, q, c, c);
}

static void vae(builder *b, const sd1_config *cfg)
{
    static const int mult[] = {1, 2, 4, 4};
    const char *P = "first_stage_model.";
    int vc = cfg->vae_channels, z = cfg->latent_channels;
    char p[160];
    snprintf(p, sizeof p, "%sencoder.", P);
    conv(b, p, "conv_in", vc, 3, 3);
    int ch = vc;
    for (int i = 0; i < 4; i++) {
        int out = vc * mult[i];
        for (int j = 0; j < 2; j++) {
            snprintf(p, sizeof p, "%sencoder.down.%d.block.%d.", P, i, j);
            vae_res(b, p, ch, out);
            ch = out;
        }
        if (i < 3) {
            snprintf(p, sizeof p, "%sencoder.down.%d.downsample.", P, i);
            conv(b, p, "conv", ch, ch, 3);
        }
    }
    snprintf(p, sizeof p, "%sencoder.", P);
    vae_mid(b, p, ch);
    norm(b, p, "norm_out", ch);
    conv(b, p, "conv_out", 2 * z, ch, 3);
    conv(b, P, "quant_conv", 2 * z, 2 * z, 1);
    conv(b, P, "post_quant_conv", z, z, 1);
    snprintf(p, sizeof p, "%sdecoder.", P);
    conv(b, p, "conv_in", ch, z, 3);
    vae_mid(b, p, ch);
    for (int i = 3; i >= 0; i--) {
        int out = vc * mult[i];
        for (int j = 0; j < 3; j++) {
            snprintf(p, sizeof p, "%sdecoder.up.%d.block.%d.", P, i, j);
            vae_res(b, p, ch, out);
            ch = out;
        }
        if (i > 0) {
            snprintf(p, sizeof p, "%sdecoder.up.%d.upsample.", P, i);
            conv(b, p, "conv", ch, ch, 3);
        }
    }
    snprintf(p, sizeof p, "%sdecoder.", P);
    norm(b, p, "norm_out", ch);
    conv(b, p, "conv_out", 3, ch, 3);
}

/* ---- CLIP text encoder ---- */

static void clip(builder *b, const sd1_config *cfg)
{
    const char *P = "cond_stage_model.transformer.text_model.";
    int w = cfg->context_dim;
    char p[160];
    add(b, INIT_EMBED, 2, SHAPE(cfg->vocab, w), "%sembeddings.token_embedding.weight", P);
    add(b, INIT_EMBED, 2, SHAPE(cfg->positions, w), "%sembeddings.position_embedding.weight", P);
    add(b, INIT_POSITION_IDS, 2, SHAPE(1, cfg->positions), "%sembeddings.position_ids", P);
    for (int i = 0; i < cfg->text_layers; i++) {
        snprintf(p, sizeof p, "%sencoder.layers.%d.", P, i);
        linear(b, p, "self_attn.q_proj", w, w, 1);
        linear(b, p, "self_attn.k_proj", w, w, 1);
        linear(b, p, "self_attn.v_proj", w, w, 1);
        linear(b, p, "self_attn.out_proj", w, w, 1);
        norm(b, p, "layer_norm1", w);
        norm(b, p, "layer_norm2", w);
        linear(b, p, "mlp.fc1", cfg->text_mlp, w, 1);
        linear(b, p, "mlp.fc2", w, cfg->text_mlp, 1);
    }
    norm(b, P, "final_layer_norm", w);
}

gs_status sd1_config_for(const char *arch, sd1_config *cfg, gi_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->unet_levels = 4;
    cfg->vocab = 49408;
    cfg->positions = 77;
    cfg->latent_channels = 4;
    if (strcmp(arch, "sd15") == 0) {
        cfg->unet_channels = 320;
        cfg->context_dim = 768;
        cfg->text_layers = 12;
        cfg->text_mlp = 3072;
        cfg->vae_channels = 128;
        return GS_OK;
    }
    if (strcmp(arch, "sd15-small") == 0) {
        cfg->unet_channels = 64; /* 8 heads of 8 */
        cfg->context_dim = 48;   /* 12 heads of 4 */
        cfg->text_layers = 2;
        cfg->text_mlp = 192;
        cfg->vae_channels = 32;
        return GS_OK;
    }
    return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                   "unknown architecture '%s' (known: sd15, sd15-small)", arch);
}

gs_status sd1_layout(const sd1_config *cfg, layout_tensor **out, int *count, gi_error *err)
{
    builder b = {0};
    unet(&b, cfg);
    vae(&b, cfg);
    clip(&b, cfg);
    if (b.failed) {
        gi_free(b.t);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    }
    *out = b.t;
    *count = b.n;
    return GS_OK;
}
