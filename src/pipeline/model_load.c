/*
 * model_load - gs_model_load: recognise what a checkpoint file is, refuse what
 * gesso cannot or must not run (pickles, other model kinds) with a message that
 * says why, and build the text encoder, UNet and VAE of an SD1.x checkpoint.
 */
#include <sys/mman.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
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

gs_status gs_model_load(gs_engine *eng, const char *path, gs_model **out)
{
    return model_load_logged(eng, path, NULL, out);
}

static gs_status load(gs_engine *eng, const char *path, weight_log *log, gs_model **out);

gs_status model_load_logged(gs_engine *eng, const char *path, weight_log *log, gs_model **out)
{
    if (!eng || !path || !out)
        return GS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    int saved = compute_enter(eng->cx); /* the conversion runs on the engine's threads */
    gs_status st = load(eng, path, log, out);
    compute_leave(saved);
    return st;
}

static gs_status load(gs_engine *eng, const char *path, weight_log *log, gs_model **out)
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
    m->family = GS_FAMILY_SD1;
    m->latent_scale = 0.18215f;
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
    m->bf16 = eng->bf16;
    m->log = log;
    st = model_load_networks(m, &err);
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

gs_status model_load_networks(gs_model *m, gi_error *err)
{
    if (m->text && m->unet && m->vae)
        return GS_OK;
    gs_status st;
    if (!m->file && (st = st_open(m->path, &m->file, err)) != GS_OK)
        goto out;
    if ((st = checkpoint_identify(m->file, err)) != GS_OK)
        goto out;
    m->weight_dtype = checkpoint_weight_dtype(m->file);
    int prepared_bf16 = 0;
    m->prepared = weights_file_prepared(m->file, &prepared_bf16);
    if (m->prepared) {
        const char *layout = st_metadata(m->file, "gesso.layout");
        if (!layout || strcmp(layout, PREPARED_LAYOUT) != 0) {
            st = gi_fail(err, GS_ERR_UNSUPPORTED,
                         "prepared by a gesso with another weight layout: prepare it again from "
                         "the original checkpoint");
            goto out;
        }
        /* an engine left to choose takes the file's precision where it can run it */
        if (prepared_bf16 != m->bf16 && m->eng->precision_auto &&
            (!prepared_bf16 || m->eng->bf16_usable))
            m->bf16 = prepared_bf16;
        if (prepared_bf16 != m->bf16) {
            st = gi_fail(err, GS_ERR_UNSUPPORTED,
                         "prepared for %s compute, but this engine computes in %s (use "
                         "--precision %s, or the original checkpoint)",
                         prepared_bf16 ? "bf16" : "f32", m->bf16 ? "bf16" : "f32",
                         prepared_bf16 ? "bf16" : "f32");
            goto out;
        }
    }
    /* a network loaded again holds its base weights and new buffers: the
       index forgets the old ones and the LoRA set is folded in anew */
    weight_log *log = m->log ? m->log : &m->index;
    if (!m->text || !m->unet || !m->vae)
        lora_select_forget(m);
    if (!m->text)
        weight_log_drop_prefix(&m->index, SD1_TEXT_PREFIX);
    if (!m->unet)
        weight_log_drop_prefix(&m->index, SD1_UNET_PREFIX);
    if (!m->vae)
        weight_log_drop_prefix(&m->index, SD1_VAE_PREFIX);
    if (!m->text &&
        (st = clip_text_load(m->file, SD1_TEXT_PREFIX, m->bf16, log, &m->text, err)) != GS_OK) {
        gi_error_prefix(err, "text encoder");
        goto out;
    }
    if (!m->unet &&
        (st = unet_load(m->file, SD1_UNET_PREFIX, m->bf16, log, &m->unet, err)) != GS_OK) {
        gi_error_prefix(err, "UNet");
        goto out;
    }
    if (!m->vae && (st = vae_load(m->file, SD1_VAE_PREFIX, m->bf16, log, &m->vae, err)) != GS_OK) {
        gi_error_prefix(err, "VAE");
        goto out;
    }
    if (unet_context_dim(m->unet) != clip_text_width(m->text)) {
        st = gi_fail(err, GS_ERR_FORMAT,
                     "the UNet expects %d-wide text conditioning but the text encoder is %d wide",
                     unet_context_dim(m->unet), clip_text_width(m->text));
        goto out;
    }
    if (unet_in_channels(m->unet) != vae_latent_channels(m->vae)) {
        st = gi_fail(err, GS_ERR_UNSUPPORTED,
                     "the UNet takes %d input channels but the VAE makes %d-channel latents "
                     "(inpainting and other variant UNets are not supported yet)",
                     unet_in_channels(m->unet), vae_latent_channels(m->vae));
        goto out;
    }
    m->text_layers = clip_text_layers(m->text);
    m->text_width = clip_text_width(m->text);
    m->unet_channels = unet_model_channels(m->unet);
    m->latent_channels = vae_latent_channels(m->vae);
    m->file_bytes = st_file_size(m->file);
    m->weight_bytes =
        clip_text_weight_bytes(m->text) + unet_weight_bytes(m->unet) + vae_weight_bytes(m->vae);
    if (m->prepared) {
        m->weight_bytes = m->file_bytes; /* resident as the kernels touch it */
        /* fault the mapping in now (from the page cache), so the load is what
           it costs and the first step does not pay for it */
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
    clip_text_free(m->text);
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
    info->family = m->family;
    info->family_name = "sd1";
    info->weight_dtype = m->weight_dtype;
    info->unet_channels = m->unet_channels;
    info->text_width = m->text_width;
    info->latent_channels = m->latent_channels;
    info->file_bytes = m->file_bytes;
    info->weight_bytes = m->weight_bytes;
    info->name = m->name;
    info->compute_dtype = m->bf16 ? "bf16" : "f32";
}
