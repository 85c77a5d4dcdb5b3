/*
 * ckpt_layout - enumerates a single-file checkpoint of SD1.x, SD2.x or SDXL:
 * the UNet (model.diffusion_model.*), the VAE (first_stage_model.*) and the
 * text encoders (HF CLIP and/or OpenCLIP names under the family's prefixes),
 * in LDM/sgm's block order.
 */
#include "model/ckpt_layout.h"

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

/* proj_in/out: 1x1 convolutions in SD1, linear layers in SD2 and SDXL */
static void proj(builder *b, const char *p, const char *n, int c, int linear_proj)
{
    if (linear_proj)
        linear(b, p, n, c, c, 1);
    else
        conv(b, p, n, c, c, 1);
}

static void unet_transformer(builder *b, const char *p, int c, int depth, const layout_config *cfg)
{
    char q[160];
    norm(b, p, "norm", c);
    proj(b, p, "proj_in", c, cfg->unet_linear_proj);
    for (int d = 0; d < depth; d++) {
        snprintf(q, sizeof q, "%stransformer_blocks.%d.", p, d);
        linear(b, q, "attn1.to_q", c, c, 0);
        linear(b, q, "attn1.to_k", c, c, 0);
        linear(b, q, "attn1.to_v", c, c, 0);
        linear(b, q, "attn1.to_out.0", c, c, 1);
        linear(b, q, "ff.net.0.proj", 8 * c, c, 1);
        linear(b, q, "ff.net.2", c, 4 * c, 1);
        linear(b, q, "attn2.to_q", c, c, 0);
        linear(b, q, "attn2.to_k", c, cfg->context_dim, 0);
        linear(b, q, "attn2.to_v", c, cfg->context_dim, 0);
        linear(b, q, "attn2.to_out.0", c, c, 1);
        norm(b, q, "norm1", c);
        norm(b, q, "norm2", c);
        norm(b, q, "norm3", c);
    }
    proj(b, p, "proj_out", c, cfg->unet_linear_proj);
}

static void unet(builder *b, const layout_config *cfg)
{
    const char *P = "model.diffusion_model.";
    int mc = cfg->unet_channels, temb = 4 * mc, L = cfg->unet_levels;
    char p[160];
    snprintf(p, sizeof p, "%stime_embed.", P);
    linear(b, p, "0", temb, mc, 1);
    linear(b, p, "2", temb, temb, 1);
    if (cfg->unet_adm > 0) {
        snprintf(p, sizeof p, "%slabel_emb.0.", P);
        linear(b, p, "0", temb, cfg->unet_adm, 1);
        linear(b, p, "2", temb, temb, 1);
    }
    snprintf(p, sizeof p, "%sinput_blocks.0.", P);
    /* inpainting UNets take the latent, the mask and the masked image's latent */
    conv(b, p, "0", mc, cfg->unet_in_channels > 0 ? cfg->unet_in_channels : cfg->latent_channels,
         3);
    int skips[64], ns = 0, ch = mc, idx = 1;
    skips[ns++] = mc;
    for (int l = 0; l < L; l++) {
        int out = mc * cfg->unet_mult[l];
        for (int r = 0; r < 2; r++, idx++) {
            snprintf(p, sizeof p, "%sinput_blocks.%d.0.", P, idx);
            unet_res(b, p, ch, out, temb);
            ch = out;
            if (cfg->unet_depth[l] > 0) {
                snprintf(p, sizeof p, "%sinput_blocks.%d.1.", P, idx);
                unet_transformer(b, p, ch, cfg->unet_depth[l], cfg);
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
    unet_transformer(b, p, ch, cfg->unet_mid_depth, cfg);
    snprintf(p, sizeof p, "%smiddle_block.2.", P);
    unet_res(b, p, ch, ch, temb);
    idx = 0;
    for (int l = L - 1; l >= 0; l--) {
        int out = mc * cfg->unet_mult[l];
        for (int r = 0; r < 3; r++, idx++) {
            snprintf(p, sizeof p, "%soutput_blocks.%d.0.", P, idx);
            unet_res(b, p, ch + skips[--ns], out, temb);
            ch = out;
            int sub = 1;
            if (cfg->unet_depth[l] > 0) {
                snprintf(p, sizeof p, "%soutput_blocks.%d.1.", P, idx);
                unet_transformer(b, p, ch, cfg->unet_depth[l], cfg);
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

static void vae(builder *b, const layout_config *cfg)
{
    const char *P = "first_stage_model.";
    int vc = cfg->vae_channels, z = cfg->latent_channels;
    char p[160];
    snprintf(p, sizeof p, "%sencoder.", P);
    conv(b, p, "conv_in", vc, 3, 3);
    int ch = vc;
    for (int i = 0; i < 4; i++) {
        int out = vc * cfg->vae_mult[i];
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
        int out = vc * cfg->vae_mult[i];
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

/* ---- text encoders ---- */

/* HF CLIPTextModel names (SD1's encoder, SDXL's first) */
static void clip(builder *b, const char *P, const layout_config *cfg)
{
    int w = cfg->clip_width;
    char p[160];
    add(b, INIT_EMBED, 2, SHAPE(cfg->vocab, w), "%sembeddings.token_embedding.weight", P);
    add(b, INIT_EMBED, 2, SHAPE(cfg->positions, w), "%sembeddings.position_embedding.weight", P);
    add(b, INIT_POSITION_IDS, 2, SHAPE(1, cfg->positions), "%sembeddings.position_ids", P);
    for (int i = 0; i < cfg->clip_layers; i++) {
        snprintf(p, sizeof p, "%sencoder.layers.%d.", P, i);
        linear(b, p, "self_attn.q_proj", w, w, 1);
        linear(b, p, "self_attn.k_proj", w, w, 1);
        linear(b, p, "self_attn.v_proj", w, w, 1);
        linear(b, p, "self_attn.out_proj", w, w, 1);
        norm(b, p, "layer_norm1", w);
        norm(b, p, "layer_norm2", w);
        linear(b, p, "mlp.fc1", cfg->clip_mlp, w, 1);
        linear(b, p, "mlp.fc2", w, cfg->clip_mlp, 1);
    }
    norm(b, P, "final_layer_norm", w);
}

/* OpenCLIP names (SD2's ViT-H, SDXL's bigG): fused q/k/v, a text projection */
static void openclip(builder *b, const char *P, const layout_config *cfg)
{
    int w = cfg->oc_width;
    char p[160];
    add(b, INIT_EMBED, 2, SHAPE(cfg->vocab, w), "%stoken_embedding.weight", P);
    add(b, INIT_EMBED, 2, SHAPE(cfg->positions, w), "%spositional_embedding", P);
    for (int i = 0; i < cfg->oc_layers; i++) {
        snprintf(p, sizeof p, "%stransformer.resblocks.%d.", P, i);
        norm(b, p, "ln_1", w);
        add(b, INIT_WEIGHT, 2, SHAPE(3 * w, w), "%sattn.in_proj_weight", p);
        add(b, INIT_ZERO, 1, SHAPE(3 * w), "%sattn.in_proj_bias", p);
        linear(b, p, "attn.out_proj", w, w, 1);
        norm(b, p, "ln_2", w);
        linear(b, p, "mlp.c_fc", cfg->oc_mlp, w, 1);
        linear(b, p, "mlp.c_proj", w, cfg->oc_mlp, 1);
    }
    norm(b, P, "ln_final", w);
    add(b, INIT_WEIGHT, 2, SHAPE(w, w), "%stext_projection", P); /* x @ text_projection */
    add(b, INIT_ONE, 1, SHAPE(1), "%slogit_scale", P);
}

static void set_ints(int *dst, const int *src, int n)
{
    for (int i = 0; i < n; i++)
        dst[i] = src[i];
}

gs_status layout_config_for(const char *arch, layout_config *cfg, gi_error *err)
{
    static const int sd_mult[] = {1, 2, 4, 4}, sd_depth[] = {1, 1, 1, 0};
    static const int xl_mult[] = {1, 2, 4}, xl_depth[] = {0, 2, 10};
    static const int ones[] = {1, 1, 1, 1};
    memset(cfg, 0, sizeof *cfg);
    cfg->vocab = 49408;
    cfg->positions = 77;
    cfg->latent_channels = 4;
    cfg->vae_channels = 128;
    set_ints(cfg->vae_mult, sd_mult, 4);
    int small = 0;
    char base[16];
    size_t len = strlen(arch);
    if (len > 6 && strcmp(arch + len - 6, "-small") == 0) {
        small = 1;
        len -= 6;
    }
    snprintf(base, sizeof base, "%.*s", (int)(len < sizeof base ? len : sizeof base - 1), arch);
    if (strcmp(base, "sd15") == 0 || strcmp(base, "sd2") == 0) {
        int sd2 = base[2] == '2';
        cfg->family = sd2 ? LAYOUT_SD2 : LAYOUT_SD1;
        cfg->unet_levels = 4;
        set_ints(cfg->unet_mult, sd_mult, 4);
        set_ints(cfg->unet_depth, sd_depth, 4);
        cfg->unet_mid_depth = 1;
        cfg->unet_channels = 320;
        cfg->unet_linear_proj = sd2;
        if (!sd2) {
            cfg->clip_width = cfg->context_dim = small ? 48 : 768; /* small: 12 heads of 4 */
            cfg->clip_layers = small ? 2 : 12;
            cfg->clip_mlp = 4 * cfg->clip_width;
            if (small) {
                cfg->unet_channels = 64; /* 8 heads of 8 */
                cfg->vae_channels = 32;
            }
        } else {
            /* small: the sizes of the reference fixture sd2/tiny-sd2.safetensors */
            cfg->oc_width = cfg->context_dim = small ? 16 : 1024; /* 16 heads */
            cfg->oc_layers = small ? 3 : 24;
            cfg->oc_mlp = 4 * cfg->oc_width;
            if (small) {
                cfg->unet_channels = 64; /* one head of 64 */
                set_ints(cfg->unet_mult, ones, 4);
                cfg->vae_channels = 32;
                set_ints(cfg->vae_mult, ones, 4);
            }
        }
        return GS_OK;
    }
    if (strcmp(base, "sdxl") == 0) {
        /* small: the sizes of the reference fixture sdxl/tiny-sdxl.safetensors */
        static const int small_mult[] = {1, 2, 2}, small_depth[] = {0, 1, 2};
        cfg->family = LAYOUT_SDXL;
        cfg->unet_levels = 3;
        set_ints(cfg->unet_mult, small ? small_mult : xl_mult, 3);
        set_ints(cfg->unet_depth, small ? small_depth : xl_depth, 3);
        cfg->unet_mid_depth = small ? 2 : 10;
        cfg->unet_channels = small ? 32 : 320;
        cfg->unet_linear_proj = 1;
        cfg->clip_width = small ? 24 : 768; /* 12 heads */
        cfg->clip_layers = small ? 3 : 12;
        cfg->clip_mlp = 4 * cfg->clip_width;
        cfg->oc_width = small ? 40 : 1280; /* 20 heads */
        cfg->oc_layers = small ? 3 : 32;
        cfg->oc_mlp = 4 * cfg->oc_width;
        cfg->context_dim = cfg->clip_width + cfg->oc_width;
        cfg->unet_adm = cfg->oc_width + 6 * 256; /* pooled text + six size features */
        if (small) {
            cfg->vae_channels = 32;
            set_ints(cfg->vae_mult, ones, 4);
        }
        return GS_OK;
    }
    return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                   "unknown architecture '%s' (known: sd15, sd2, sdxl and their -small variants)",
                   arch);
}

const char *layout_modelspec_architecture(const layout_config *cfg)
{
    switch (cfg->family) {
    case LAYOUT_SD2: return "stable-diffusion-v2-512";
    case LAYOUT_SDXL: return "stable-diffusion-xl-v1-base";
    default: return "stable-diffusion-v1";
    }
}

const char *layout_family_name(const layout_config *cfg)
{
    switch (cfg->family) {
    case LAYOUT_SD2: return "sd2";
    case LAYOUT_SDXL: return "sdxl";
    default: return "sd1";
    }
}

gs_status layout_build(const layout_config *cfg, layout_tensor **out, int *count, gi_error *err)
{
    if (cfg->unet_levels < 1 || cfg->unet_levels > LAYOUT_MAX_LEVELS)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "bad UNet level count %d", cfg->unet_levels);
    builder b = {0};
    unet(&b, cfg);
    vae(&b, cfg);
    if (cfg->family == LAYOUT_SDXL) {
        clip(&b, "conditioner.embedders.0.transformer.text_model.", cfg);
        openclip(&b, "conditioner.embedders.1.model.", cfg);
    } else if (cfg->family == LAYOUT_SD2) {
        openclip(&b, "cond_stage_model.model.", cfg);
    } else {
        clip(&b, "cond_stage_model.transformer.text_model.", cfg);
    }
    if (b.failed) {
        gi_free(b.t);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    }
    *out = b.t;
    *count = b.n;
    return GS_OK;
}
