/*
 * model_load - gs_model_load: recognise what a checkpoint file is, refuse what
 * gesso cannot or must not run (pickles, other model kinds) with a message that
 * says why, and build the text encoders, UNet and VAE of the file's family.
 */
#include <sys/mman.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "compute/gemm_bf16.h"
#include "pipeline/checkpoint.h"
#include "pipeline/engine.h"
#include "pipeline/lora_select.h"

#define PREPARED_LAYOUT "1" /* bump when a kernel's weight layout changes */

static char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *b = slash ? slash + 1 : path;
    char *name = gi_strdup(b);
    if (name) {
        char *dot = strrchr(name, '.');
        if (dot && dot != name)
            *dot = '\0';
    }
    return name;
}

static gs_status load(gs_engine *eng, const char *path, weight_log *log, int parts, gs_model **out);

static gs_status load_entered(gs_engine *eng, const char *path, weight_log *log, int parts,
                              gs_model **out)
{
    if (!eng || !path || !out)
        return GS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    int saved = compute_enter(eng->cx); /* the conversion runs on the engine's threads */
    gs_status st = load(eng, path, log, parts, out);
    compute_leave(saved);
    return st;
}

/* The VAE's encoder waits for the first image to encode (NET_KEPT) */
gs_status gs_model_load(gs_engine *eng, const char *path, gs_model **out)
{
    return load_entered(eng, path, NULL, NET_KEPT, out);
}

gs_status gs_model_load_one_shot(gs_engine *eng, const char *path, gs_model **out)
{
    if (!eng || !path || !out)
        return GS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    int saved = compute_enter(eng->cx);
    gs_status st = load(eng, path, NULL, NET_TEXT, out);
    compute_leave(saved);
    if (st == GS_OK) {
        (*out)->staged = 1;
        (*out)->release_after_use = 1;
    }
    return st;
}

gs_status model_load_logged(gs_engine *eng, const char *path, weight_log *log, gs_model **out)
{
    return load_entered(eng, path, log, NET_ALL, out);
}

static gs_status load(gs_engine *eng, const char *path, weight_log *log, int parts, gs_model **out)
{
    gi_error err = {0};
    gs_model *m = NULL;
    gs_status st = checkpoint_refuse_pickle(path, &err);
    if (st != GS_OK)
        goto out;
    m = gi_calloc(1, sizeof *m);
    if (!m) {
        st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    m->eng = eng;
    m->name = base_name(path);
    if (!m->name) {
        st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    m->path = gi_strdup(path);
    if (!m->path) {
        st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    m->half = eng->half;
    m->log = log;
    m->staged = !(parts & NET_UNET);
    st = model_load_parts(m, parts, &err);
    m->log = NULL;
    if (st != GS_OK)
        goto out;
    *out = m;
    return GS_OK;
out:
    gs_model_free(m);
    if (st != GS_OK && strstr(err.msg, path) == NULL)
        gi_error_prefix(&err, "%s", path);
    return engine_fail(eng, &err);
}

static int parts_loaded(const gs_model *m, int parts)
{
    if (!m->fam || ((parts & NET_UNET) && !m->unet) || ((parts & NET_VAE) && !m->vae) ||
        ((parts & NET_VAE_ENCODER) && (!m->vae || !vae_has_encoder(m->vae))))
        return 0;
    for (int k = 0; (parts & NET_TEXT) && k < m->fam->n_text; k++)
        if (!m->text[k])
            return 0;
    return 1;
}

static gs_status load_text_encoders(gs_model *m, weight_log *log, gi_error *err)
{
    for (int k = 0; k < m->fam->n_text; k++) {
        const family_text *t = &m->fam->text[k];
        if (m->text[k])
            continue;
        gs_status st = clip_text_load(m->file, t->prefix, t->heads, m->half, log, &m->text[k], err);
        if (st != GS_OK) {
            if (m->fam->n_text > 1)
                gi_error_prefix(err, "text encoder %d", k + 1);
            else
                gi_error_prefix(err, "text encoder");
            return st;
        }
        if (t->pooled && clip_text_proj_dim(m->text[k]) <= 0)
            return gi_fail(err, GS_ERR_FORMAT, "text encoder %d has no text_projection", k + 1);
    }
    /* kept when the encoders are released: the UNet is checked against them,
       and a generation's clip skip and conditioning sizes come from them */
    int width = 0, pooled = 0;
    for (int k = 0; k < m->fam->n_text; k++) {
        width += clip_text_width(m->text[k]);
        if (m->fam->text[k].pooled)
            pooled = clip_text_proj_dim(m->text[k]);
    }
    m->text_layers = clip_text_layers(m->text[0]);
    m->text_width = width;
    m->pooled_width = pooled;
    return GS_OK;
}

/* The networks' sizes must agree with each other and with the family. */
static gs_status check_fit(gs_model *m, gi_error *err)
{
    int width = m->text_width, pooled = m->pooled_width;
    if (unet_context_dim(m->unet) != width)
        return gi_fail(err, GS_ERR_FORMAT,
                       "the UNet expects %d-wide text conditioning but the text encoders give %d",
                       unet_context_dim(m->unet), width);
    int adm = unet_adm_channels(m->unet);
    int want_adm = m->fam->size_conditioning ? pooled + 6 * 256 : 0;
    if (adm != want_adm)
        return gi_fail(err, GS_ERR_FORMAT,
                       "the UNet takes %d channels of extra conditioning, but this family gives "
                       "%d (a refiner, a class-conditioned or an inpainting variant?)",
                       adm, want_adm);
    /* an inpainting UNet takes latent ⊕ mask ⊕ masked-image latent */
    int z = vae_latent_channels(m->vae), in = unet_in_channels(m->unet);
    if ((in != z && in != 2 * z + 1) || unet_out_channels(m->unet) != z)
        return gi_fail(err, GS_ERR_UNSUPPORTED,
                       "the UNet takes %d input channels but the VAE makes %d-channel latents "
                       "(%d, or %d for an inpainting UNet; other variants are not supported)",
                       in, z, z, 2 * z + 1);
    return GS_OK;
}

/* An engine left to choose computes a v-prediction model with f16 weights and
   f32 activations where it would have chosen bf16: read as v, the output
   multiplies bf16's rounding about eightfold (worst pixel 38-66 levels from the
   f32 image on the SD2-v fixtures, f16 within 1; bench/RESULTS.md section 36).
   A prepared file keeps the precision it was prepared in. */
static int auto_takes_f16(const gs_model *m)
{
    return m->eng->precision_auto && !m->prepared && m->half == WL_BF16 &&
           m->prediction == GS_PREDICTION_V;
}

/* Whether the VAE multiplies f32 activations by its bf16 weights: where an
   engine left to choose computes in bf16. The decoder's rounding lands on the
   pixels with no sampler step after it to absorb it: on the fixtures, bf16
   activations there took the worst pixel of SD1's recipes to 9 levels from
   the f32 image, f32 ones keep every family within 7, and every recipe's mean
   error lower (bench/RESULTS.md section 40). It costs the decode the f32
   rate; --precision bf16 keeps the whole model in bf16. */
static int vae_on_f32(const gs_model *m)
{
    return m->eng->precision_auto && m->half == WL_BF16;
}

/* The networks loaded in bf16 before the guess said v: freed, to load again in
   f16. Returns the parts to load. */
static int drop_networks_for_f16(gs_model *m)
{
    int parts = (m->unet ? NET_UNET : 0) | (m->vae ? NET_VAE : 0) |
                (m->vae && vae_has_encoder(m->vae) ? NET_VAE_ENCODER : 0);
    for (int k = 0; k < m->fam->n_text; k++) {
        if (m->text[k])
            parts |= NET_TEXT;
        clip_text_free(m->text[k]);
        m->text[k] = NULL;
        if (m->log)
            weight_log_drop_prefix(m->log, m->fam->text[k].prefix);
    }
    unet_free(m->unet);
    vae_free(m->vae);
    m->unet = NULL;
    m->vae = NULL;
    if (m->log) {
        weight_log_drop_prefix(m->log, m->fam->unet_prefix);
        weight_log_drop_prefix(m->log, m->fam->vae_prefix);
    }
    m->half = WL_F16;
    return parts;
}

/* A file that does not say what it predicts: ε, except an SD 2.x UNet of the
   real size that passes A1111's test (sd_models_config.py
   is_using_v_parameterization_for_sd2: at t = 999 on x = 0.5 with a context
   of 0.5, a v model's output sits well below x, an ε model's does not). The
   test means nothing on other sizes, whose weights A1111 could not load. */
static gs_status guess_prediction(gs_model *m, gi_error *err)
{
    enum { SIDE = 8, TOKENS = 2 };
    if (m->eng->test_guess_v) {
        m->prediction = GS_PREDICTION_V;
        return GS_OK;
    }
    m->prediction = GS_PREDICTION_EPS;
    if (m->fam->id != GS_FAMILY_SD2 || unet_context_dim(m->unet) != 1024 ||
        unet_model_channels(m->unet) != 320 || unet_in_channels(m->unet) != 4)
        return GS_OK;
    size_t n = (size_t)SIDE * SIDE * 4, nc = (size_t)TOKENS * 1024;
    float *x = gi_aligned_alloc(n * sizeof *x), *out = gi_aligned_alloc(n * sizeof *out);
    float *ctx = gi_aligned_alloc(nc * sizeof *ctx);
    gs_status st = GS_OK;
    if (!x || !out || !ctx) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f;
    for (size_t i = 0; i < nc; i++)
        ctx[i] = 0.5f;
    float t = 999.0f;
    engine_set_compute_precision(m->eng, m->half);
    st = unet_forward(m->unet, m->eng->cx, x, &t, ctx, NULL, 1, SIDE, SIDE, TOKENS, out, err);
    if (st != GS_OK)
        goto done;
    double diff = 0;
    for (size_t i = 0; i < n; i++)
        diff += (double)out[i] - x[i];
    if (diff / (double)n < -1.0)
        m->prediction = GS_PREDICTION_V;
done:
    gi_aligned_free(x);
    gi_aligned_free(out);
    gi_aligned_free(ctx);
    return st;
}

gs_status model_load_networks(gs_model *m, gi_error *err)
{
    return model_load_parts(m, NET_ALL, err);
}

gs_status model_load_parts(gs_model *m, int parts, gi_error *err)
{
    if (parts & NET_VAE_ENCODER)
        parts |= NET_VAE;
    if (parts_loaded(m, parts))
        return GS_OK;
    gs_status st;
    if (!m->file && (st = st_open(m->path, &m->file, err)) != GS_OK)
        goto out;
    /* a network read later (a stage, the VAE's encoder) must come from the file
       the others came from */
    if (m->have_file_id && !st_same_file(m->file, &m->file_id)) {
        st = gi_fail(err, GS_ERR_IO, "'%s' changed since the model was loaded: load it again",
                     m->path);
        goto out;
    }
    m->file_id = st_file_identity(m->file);
    m->have_file_id = 1;
    if ((st = checkpoint_identify(m->file, err)) != GS_OK)
        goto out;
    const family_desc *fam = family_detect(m->file);
    if (m->fam && fam != m->fam) {
        st = gi_fail(err, GS_ERR_FORMAT, "the file changed family since it was loaded");
        goto out;
    }
    m->fam = fam;
    m->latent_scale = fam->latent_scale;
    if (m->prediction == GS_PREDICTION_AUTO)
        m->prediction = family_file_prediction(m->file);
    m->weight_dtype = checkpoint_weight_dtype(m->file);
    m->file_bytes = st_file_size(m->file);
    int prepared_half = 0;
    m->prepared = weights_file_prepared(m->file, &prepared_half);
    if (m->prepared) {
        const char *layout = st_metadata(m->file, "gesso.layout");
        if (!layout || strcmp(layout, PREPARED_LAYOUT) != 0) {
            st = gi_fail(err, GS_ERR_UNSUPPORTED,
                         "prepared by a gesso with another weight layout: prepare it again from "
                         "the original checkpoint");
            goto out;
        }
        /* an engine left to choose takes the file's precision */
        if (prepared_half != m->half && m->eng->precision_auto)
            m->half = prepared_half;
        if (prepared_half != m->half) {
            st = gi_fail(err, GS_ERR_UNSUPPORTED,
                         "prepared for %s compute, but this engine computes in %s (use "
                         "--precision %s, or the original checkpoint)",
                         wl_precision_name(prepared_half), wl_precision_name(m->half),
                         wl_precision_name(prepared_half));
            goto out;
        }
    }
    if (auto_takes_f16(m))
        m->half = WL_F16;
    /* a network loaded again holds its base weights and new buffers: the
       index forgets the old ones and the LoRA set is folded in anew */
    weight_log *log = m->log ? m->log : &m->index;
    if (!parts_loaded(m, NET_TEXT | NET_UNET)) /* the networks a LoRA set folds into */
        lora_select_forget(m);
    for (int k = 0; k < fam->n_text; k++)
        if (!m->text[k])
            weight_log_drop_prefix(&m->index, fam->text[k].prefix);
    if (!m->unet)
        weight_log_drop_prefix(&m->index, fam->unet_prefix);
    if (!m->vae)
        weight_log_drop_prefix(&m->index, fam->vae_prefix);
    if ((parts & NET_TEXT) && (st = load_text_encoders(m, log, err)) != GS_OK)
        goto out;
    unet_opts uo = {.heads = fam->unet_heads, .head_dim = fam->unet_head_dim};
    if ((parts & NET_UNET) && !m->unet &&
        (st = unet_load(m->file, fam->unet_prefix, &uo, m->half, log, &m->unet, err)) != GS_OK) {
        gi_error_prefix(err, "UNet");
        goto out;
    }
    if ((parts & NET_VAE) && !m->vae &&
        (st = vae_load_decoder(m->file, fam->vae_prefix, m->half, log, &m->vae, err)) != GS_OK) {
        gi_error_prefix(err, "VAE");
        goto out;
    }
    if (m->vae)
        vae_set_f32_activations(m->vae, vae_on_f32(m));
    if ((parts & NET_VAE_ENCODER) && !vae_has_encoder(m->vae) &&
        (st = vae_load_encoder(m->vae, m->file, fam->vae_prefix, m->half, log, err)) != GS_OK) {
        gi_error_prefix(err, "VAE encoder");
        goto out;
    }
    /* the text encoders' widths are known from their first load, even when a
       one-shot run has released them before the UNet comes in */
    if (!m->fitted && m->unet && m->vae && m->text_width > 0) {
        if ((st = check_fit(m, err)) != GS_OK)
            goto out;
        if (m->prediction == GS_PREDICTION_AUTO && (st = guess_prediction(m, err)) != GS_OK)
            goto out;
        if (auto_takes_f16(m)) /* the file did not say v: the guess did */
            return model_load_parts(m, drop_networks_for_f16(m), err);
        m->unet_channels = unet_model_channels(m->unet);
        m->latent_channels = vae_latent_channels(m->vae);
        m->adm_channels = unet_adm_channels(m->unet);
        m->fitted = 1;
    }
    m->weight_bytes =
        (m->unet ? unet_weight_bytes(m->unet) : 0) + (m->vae ? vae_weight_bytes(m->vae) : 0);
    for (int k = 0; k < m->fam->n_text; k++)
        m->weight_bytes += m->text[k] ? clip_text_weight_bytes(m->text[k]) : 0;
    if (m->prepared) {
        m->weight_bytes = m->file_bytes; /* resident as the kernels touch it */
        /* fault the mapping in now (from the page cache), so the load is what
           it costs and the first step does not pay for it; a one-shot load
           leaves the stages not yet started to fault in when they run */
        if (!m->staged)
            madvise((void *)st_file_bytes(m->file), m->file_bytes, 22 /* MADV_POPULATE_READ */);
        return GS_OK;
    }
out:
    /* Every weight is converted into its own buffer by now (or the load failed):
       drop the mapping so its pages stop counting against the process. A
       prepared file's weights are the mapping, so it stays while they do. */
    if (st != GS_OK || !m->prepared) {
        st_close(m->file);
        m->file = NULL;
    }
    return st;
}

void model_drop_pages(gs_model *m, const char *prefix)
{
    if (!m->prepared || !m->file)
        return;
    size_t n = strlen(prefix);
    for (size_t i = 0; i < st_count(m->file); i++) {
        const st_tensor *t = st_at(m->file, i);
        if (strncmp(t->name, prefix, n) == 0)
            st_drop_pages(m->file, t);
    }
}

void gs_model_set_release_after_use(gs_model *m, int on)
{
    if (m)
        m->release_after_use = on != 0;
}

void gs_model_free(gs_model *m)
{
    if (!m)
        return;
    for (int k = 0; k < FAMILY_MAX_TEXT; k++)
        clip_text_free(m->text[k]);
    unet_free(m->unet);
    vae_free(m->vae);
    st_close(m->file);
    weight_log_free(&m->index);
    lora_cache_free(m->lora);
    gi_free(m->name);
    gi_free(m->path);
    gi_free(m);
}

void gs_model_get_info(const gs_model *m, gs_model_info *info)
{
    memset(info, 0, sizeof *info);
    if (!m)
        return;
    info->family = m->fam ? m->fam->id : GS_FAMILY_UNKNOWN;
    info->family_name = family_display_name(m->fam, m->prediction);
    info->prediction = m->prediction;
    info->weight_dtype = m->weight_dtype;
    info->unet_channels = m->unet_channels;
    info->text_width = m->text_width;
    info->latent_channels = m->latent_channels;
    info->file_bytes = m->file_bytes;
    info->weight_bytes = m->weight_bytes;
    info->name = m->name;
    info->compute_dtype = wl_precision_name(m->half);
    info->matmul_dtype = m->half == WL_BF16 && gemm_bf16_native(m->eng->cx->bf16) ? "bf16" : "f32";
    info->vae_matmul_dtype = vae_on_f32(m) ? "f32" : info->matmul_dtype;
}
