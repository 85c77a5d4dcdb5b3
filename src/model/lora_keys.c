/* lora_keys - LoRA module names -> LDM layer names (A1111's convert_diffusers_name_to_compvis). */
#include "model/lora_keys.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define UNET "model.diffusion_model."

const lora_unet_layout lora_layout_sd1 = {
    .levels = 4,
    .layers_per_block = 2,
    .attn_levels = 0x7,
    .te = "cond_stage_model.transformer.text_model.encoder.layers.",
};
const lora_unet_layout lora_layout_sd2 = {
    .levels = 4,
    .layers_per_block = 2,
    .attn_levels = 0x7,
    .te = "cond_stage_model.model.transformer.resblocks.",
    .te_openclip = 1,
};
const lora_unet_layout lora_layout_sdxl = {.levels = 3, .layers_per_block = 2, .attn_levels = 0x6};

#define SDXL_TE1 "conditioner.embedders.0.transformer.text_model.encoder.layers."
#define SDXL_TE2 "conditioner.embedders.1.model.transformer.resblocks."

/* Advances *s past lit when it starts with it. */
static int take(const char **s, const char *lit)
{
    size_t n = strlen(lit);
    if (strncmp(*s, lit, n) != 0)
        return 0;
    *s += n;
    return 1;
}

/* A decimal index of at most three digits, then '_' (consumed) or the end. */
static int take_index(const char **s, int *v)
{
    const char *p = *s;
    int n = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 3) {
        n = n * 10 + (*p++ - '0');
        digits++;
    }
    if (!digits || (*p != '_' && *p != '\0'))
        return 0;
    *v = n;
    *s = *p == '_' ? p + 1 : p;
    return 1;
}

__attribute__((format(printf, 2, 3))) static int put(lora_target *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    return n > 0 && (size_t)n < sizeof t->name ? 0 : -1;
}

/* The module path inside a spatial transformer, underscores -> dots. */
static const char *attn_rest(const char *rest, char *buf, size_t size)
{
    static const char *const leaf[][2] = {
        {"attn1_to_q", "attn1.to_q"},       {"attn1_to_k", "attn1.to_k"},
        {"attn1_to_v", "attn1.to_v"},       {"attn1_to_out_0", "attn1.to_out.0"},
        {"attn2_to_q", "attn2.to_q"},       {"attn2_to_k", "attn2.to_k"},
        {"attn2_to_v", "attn2.to_v"},       {"attn2_to_out_0", "attn2.to_out.0"},
        {"ff_net_0_proj", "ff.net.0.proj"}, {"ff_net_2", "ff.net.2"},
    };
    if (strcmp(rest, "proj_in") == 0 || strcmp(rest, "proj_out") == 0)
        return rest;
    int j;
    if (!take(&rest, "transformer_blocks_") || !take_index(&rest, &j))
        return NULL;
    for (size_t k = 0; k < sizeof leaf / sizeof leaf[0]; k++)
        if (strcmp(rest, leaf[k][0]) == 0) {
            snprintf(buf, size, "transformer_blocks.%d.%s", j, leaf[k][1]);
            return buf;
        }
    return NULL;
}

/* A diffusers resnet's layer -> the LDM ResBlock's. */
static const char *res_rest(const char *rest)
{
    static const char *const map[][2] = {
        {"conv1", "in_layers.2"},
        {"conv2", "out_layers.3"},
        {"time_emb_proj", "emb_layers.1"},
        {"conv_shortcut", "skip_connection"},
    };
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++)
        if (strcmp(rest, map[k][0]) == 0)
            return map[k][1];
    return NULL;
}

static int has_attn(const lora_unet_layout *L, int level)
{
    return level >= 0 && level < L->levels && (L->attn_levels >> level & 1u);
}

/* A block's attentions_{i}_{rest} or resnets_{i}_{rest}, as "{LDM block}.{1|0}.{rest}". */
static int block_part(const lora_unet_layout *L, const char *s, const char *blocks, int block,
                      int level, int n_res, lora_target *t)
{
    char buf[128];
    int i;
    if (take(&s, "attentions_")) {
        const char *r;
        if (!take_index(&s, &i) || i >= n_res || !has_attn(L, level) ||
            !(r = attn_rest(s, buf, sizeof buf)))
            return -1;
        return put(t, UNET "%s%d.1.%s", blocks, block + i, r);
    }
    if (take(&s, "resnets_")) {
        const char *r;
        if (!take_index(&s, &i) || i >= n_res || !(r = res_rest(s)))
            return -1;
        return put(t, UNET "%s%d.0.%s", blocks, block + i, r);
    }
    return -1;
}

/* A layer of an LDM block named by its own path (kohya's SDXL files):
   "{i}_{j}_{rest}" of input/output blocks or "{j}_{rest}" of the middle one. */
static int ldm_block(const char *s, const char *block, int two, lora_target *t)
{
    static const char *const leaf[][2] = {
        {"in_layers_2", "in_layers.2"},
        {"out_layers_3", "out_layers.3"},
        {"emb_layers_1", "emb_layers.1"},
        {"skip_connection", "skip_connection"},
        {"op", "op"},
        {"conv", "conv"},
    };
    char buf[128];
    int i = 0, j;
    if ((two && !take_index(&s, &i)) || !take_index(&s, &j))
        return -1;
    char at[48];
    if (two)
        snprintf(at, sizeof at, "%s.%d.%d", block, i, j);
    else
        snprintf(at, sizeof at, "%s.%d", block, j);
    if (*s == '\0') /* input_blocks_0_0: conv_in */
        return two && i == 0 && j == 0 ? put(t, UNET "%s", at) : -1;
    const char *r = attn_rest(s, buf, sizeof buf);
    for (size_t k = 0; !r && k < sizeof leaf / sizeof leaf[0]; k++)
        if (strcmp(s, leaf[k][0]) == 0)
            r = leaf[k][1];
    return r ? put(t, UNET "%s.%s", at, r) : -1;
}

/* kohya's SDXL names: the LDM path with '.' -> '_'. */
static int map_unet_ldm(const char *s, lora_target *t)
{
    if (take(&s, "input_blocks_"))
        return ldm_block(s, "input_blocks", 1, t);
    if (take(&s, "output_blocks_"))
        return ldm_block(s, "output_blocks", 1, t);
    if (take(&s, "middle_block_"))
        return ldm_block(s, "middle_block", 0, t);
    if (strcmp(s, "time_embed_0") == 0 || strcmp(s, "time_embed_2") == 0)
        return put(t, UNET "time_embed.%c", s[11]);
    if (strcmp(s, "label_emb_0_0") == 0 || strcmp(s, "label_emb_0_2") == 0)
        return put(t, UNET "label_emb.0.%c", s[12]);
    if (strcmp(s, "out_2") == 0)
        return put(t, UNET "out.2");
    return -1;
}

static int map_unet(const lora_unet_layout *L, const char *s, lora_target *t)
{
    int b, per = L->layers_per_block + 1; /* LDM blocks per level: res(+attn) each, + resampler */
    t->part = LORA_UNET;
    if (strcmp(s, "conv_in") == 0)
        return put(t, UNET "input_blocks.0.0");
    if (strcmp(s, "conv_out") == 0)
        return put(t, UNET "out.2");
    if (take(&s, "time_embedding_linear_")) {
        if (strcmp(s, "1") == 0 || strcmp(s, "2") == 0)
            return put(t, UNET "time_embed.%d", s[0] == '1' ? 0 : 2);
        return -1;
    }
    if (take(&s, "add_embedding_linear_")) { /* SDXL's size conditioning MLP */
        if (strcmp(s, "1") == 0 || strcmp(s, "2") == 0)
            return put(t, UNET "label_emb.0.%d", s[0] == '1' ? 0 : 2);
        return -1;
    }
    if (take(&s, "down_blocks_")) {
        if (!take_index(&s, &b) || b >= L->levels)
            return -1;
        if (strcmp(s, "downsamplers_0_conv") == 0)
            return b < L->levels - 1 ? put(t, UNET "input_blocks.%d.0.op", per * (b + 1)) : -1;
        return block_part(L, s, "input_blocks.", 1 + per * b, b, L->layers_per_block, t);
    }
    if (take(&s, "up_blocks_")) {
        if (!take_index(&s, &b) || b >= L->levels)
            return -1;
        int level = L->levels - 1 - b;
        if (strcmp(s, "upsamplers_0_conv") == 0) {
            if (b >= L->levels - 1)
                return -1;
            /* the upsampler follows the res block, and the attention where the level has one */
            return put(t, UNET "output_blocks.%d.%d.conv", per * b + per - 1,
                       has_attn(L, level) ? 2 : 1);
        }
        return block_part(L, s, "output_blocks.", per * b, level, per, t);
    }
    if (take(&s, "mid_block_")) {
        char buf[128];
        const char *r;
        int i;
        if (take(&s, "attentions_0_") && (r = attn_rest(s, buf, sizeof buf)))
            return put(t, UNET "middle_block.1.%s", r);
        if (take(&s, "resnets_") && take_index(&s, &i) && i < 2 && (r = res_rest(s)))
            return put(t, UNET "middle_block.%d.%s", 2 * i, r);
        return -1;
    }
    return map_unet_ldm(s, t);
}

/* Text encoder layers, named as Hugging Face's CLIPTextModel names them, onto
   HF CLIP names (SD1, SDXL's first encoder) or OpenCLIP ones (SD2, SDXL's
   second): there q, k, v are the row blocks 0, 1, 2 of attn.in_proj_weight
   (A1111 networks.py: convert_diffusers_name_to_compvis, then the
   MultiheadAttention's _q_proj/_k_proj/_v_proj modules stacked in that order). */
static int map_te(const char *s, const char *prefix, int openclip, lora_target *t)
{
    static const char *const hf[][2] = {
        {"self_attn_q_proj", "self_attn.q_proj"},
        {"self_attn_k_proj", "self_attn.k_proj"},
        {"self_attn_v_proj", "self_attn.v_proj"},
        {"self_attn_out_proj", "self_attn.out_proj"},
        {"mlp_fc1", "mlp.fc1"},
        {"mlp_fc2", "mlp.fc2"},
    };
    static const char *const oc[] = {"attn.in_proj",  "attn.in_proj", "attn.in_proj",
                                     "attn.out_proj", "mlp.c_fc",     "mlp.c_proj"};
    int i;
    t->part = LORA_TE;
    if (!take(&s, "text_model_encoder_layers_") || !take_index(&s, &i))
        return -1;
    for (int k = 0; k < 6; k++) {
        if (strcmp(s, hf[k][0]) != 0)
            continue;
        if (openclip)
            t->slice = k < 3 ? k : -1;
        return put(t, "%s%d.%s", prefix, i, openclip ? oc[k] : hf[k][1]);
    }
    return -1;
}

int lora_map_kohya(const lora_unet_layout *L, const char *module, lora_target *t)
{
    const char *s = module;
    memset(t, 0, sizeof *t);
    t->slice = -1;
    if (take(&s, "lora_unet_"))
        return map_unet(L, s, t);
    if (!L->te && take(&s, "lora_te1_"))
        return map_te(s, SDXL_TE1, 0, t);
    if (!L->te && take(&s, "lora_te2_"))
        return map_te(s, SDXL_TE2, 1, t);
    if (L->te && take(&s, "lora_te_"))
        return map_te(s, L->te, L->te_openclip, t);
    return -1;
}

int lora_map_peft(const lora_unet_layout *L, const char *module, lora_target *t)
{
    /* diffusers' first text encoder is SDXL's encoder 1 */
    const char *te1 = L->te ? "lora_te_" : "lora_te1_";
    const char *const roots[][2] = {
        {"unet.", "lora_unet_"},
        {"text_encoder.", te1},
        {"text_encoder_2.", "lora_te2_"},
    };
    char kohya[256];
    for (size_t k = 0; k < sizeof roots / sizeof roots[0]; k++) {
        const char *s = module;
        if (!take(&s, roots[k][0]))
            continue;
        int n = snprintf(kohya, sizeof kohya, "%s%s", roots[k][1], s);
        if (n < 0 || (size_t)n >= sizeof kohya)
            return -1;
        for (char *p = kohya + strlen(roots[k][1]); *p; p++)
            if (*p == '.')
                *p = '_';
        return lora_map_kohya(L, kohya, t);
    }
    memset(t, 0, sizeof *t);
    return -1;
}
