/*
 * checkpoint - what a checkpoint is, judged from its safetensors header alone:
 * the tests gs_model_load applies before it converts anything, and
 * gs_checkpoint_inspect, which answers with them for callers that only list.
 */
#include "pipeline/checkpoint.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "model/weights.h"
#include "pipeline/family.h"

static int has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* Pickle-based checkpoints: torch.save zips (PK\3\4) or raw pickles (0x80 proto). */
gs_status checkpoint_refuse_pickle(const char *path, gi_error *err)
{
    static const char *const exts[] = {".ckpt", ".pt", ".pth", ".bin", ".pkl", ".pickle"};
    int by_ext = 0;
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        by_ext |= has_suffix(path, exts[i]);
    unsigned char magic[4] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, magic, sizeof magic);
        close(fd);
        if (n < 4)
            memset(magic, 0, sizeof magic);
    }
    int zip = magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4;
    int pickle = magic[0] == 0x80 && magic[1] >= 2 && magic[1] <= 5;
    if (zip || pickle || (by_ext && fd >= 0))
        return gi_fail(err, GS_ERR_UNSUPPORTED,
                       "'%s' is a pickle checkpoint (.ckpt/.pt); gesso does not load pickles "
                       "because unpickling can run arbitrary code from the file. Convert it to "
                       ".safetensors first",
                       path);
    return GS_OK;
}

static int has(const st_file *f, const char *name)
{
    return st_find(f, name) != NULL;
}

int checkpoint_is_sd1(const st_file *f)
{
    const family_desc *d = family_detect(f);
    return d && d->id == GS_FAMILY_SD1;
}

/* Names the kind of a file gesso does not run, for the error. */
gs_status checkpoint_identify(const st_file *f, gi_error *err)
{
    if (family_detect(f))
        return GS_OK;
    if (has(f, "conditioner.embedders.0.model.ln_final.weight"))
        return gi_fail(err, GS_ERR_UNSUPPORTED,
                       "this is an SDXL refiner checkpoint (one OpenCLIP encoder, aesthetic-score "
                       "conditioning); gesso runs SD1.x, SD2.x and SDXL base checkpoints");
    if (has(f, "model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight") ||
        has(f, "joint_blocks.0.x_block.attn.qkv.weight"))
        return gi_fail(err, GS_ERR_UNSUPPORTED,
                       "this is a Stable Diffusion 3 (MMDiT) checkpoint; gesso runs SD1.x, SD2.x "
                       "and SDXL checkpoints");
    if (has(f, "double_blocks.0.img_attn.qkv.weight") ||
        has(f, "model.diffusion_model.double_blocks.0.img_attn.qkv.weight"))
        return gi_fail(err, GS_ERR_UNSUPPORTED,
                       "this is a Flux checkpoint; gesso runs SD1.x, SD2.x and SDXL checkpoints");
    if (has(f, "model.diffusion_model.input_blocks.1.0.time_stack.in_layers.0.weight") ||
        has(f, "model.diffusion_model.input_blocks.1.0.time_mixer.mix_factor"))
        return gi_fail(err, GS_ERR_UNSUPPORTED,
                       "this is a Stable Video Diffusion checkpoint; gesso makes images from "
                       "SD1.x, SD2.x and SDXL checkpoints");
    if (has(f, "model.diffusion_model.input_blocks.0.0.weight") &&
        (has(f, "conditioner.embedders.1.model.token_embedding.weight") ||
         has(f,
             "conditioner.embedders.0.transformer.text_model.embeddings.token_embedding.weight") ||
         has(f, "cond_stage_model.model.token_embedding.weight") ||
         has(f, SD1_TEXT_PREFIX "embeddings.token_embedding.weight")))
        return gi_fail(err, GS_ERR_FORMAT,
                       "the checkpoint has a UNet and a text encoder but lacks the rest of its "
                       "family's networks (a second SDXL text encoder, or the VAE "
                       "first_stage_model.*)");
    for (size_t i = 0; i < st_count(f); i++) {
        const char *n = st_at(f, i)->name;
        if (strncmp(n, "lora_", 5) == 0 || strstr(n, ".lora_down.") || strstr(n, ".lora_A."))
            return gi_fail(err, GS_ERR_UNSUPPORTED,
                           "this is a LoRA, not a checkpoint: load a base model");
    }
    if (has(f, "encoder.conv_in.weight") || has(f, "decoder.conv_in.weight"))
        return gi_fail(err, GS_ERR_UNSUPPORTED,
                       "this is a standalone VAE, not a full checkpoint: load a base model");
    if (has(f, "conv_in.weight") && has(f, "time_embedding.linear_1.weight"))
        return gi_fail(err, GS_ERR_UNSUPPORTED,
                       "this is a diffusers-format UNet file; gesso needs a single-file "
                       "checkpoint (model.diffusion_model.*, first_stage_model.*, "
                       "cond_stage_model.*)");
    if (has(f, SD1_UNET_PREFIX "input_blocks.0.0.weight"))
        return gi_fail(err, GS_ERR_FORMAT,
                       "the checkpoint has a UNet but lacks its text encoder "
                       "(" SD1_TEXT_PREFIX "*) or VAE (" SD1_VAE_PREFIX "*)");
    return gi_fail(err, GS_ERR_UNSUPPORTED,
                   "not a Stable Diffusion checkpoint: none of the known tensor layouts match "
                   "(%zu tensors)",
                   st_count(f));
}

const char *checkpoint_weight_dtype(const st_file *f)
{
    size_t bytes[ST_DTYPE_COUNT] = {0};
    const family_desc *d = family_detect(f);
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (!d || strncmp(t->name, d->unet_prefix, strlen(d->unet_prefix)) == 0)
            bytes[t->dtype] += t->nbytes;
    }
    if (bytes[ST_F16] >= bytes[ST_F32] && bytes[ST_F16] >= bytes[ST_BF16])
        return "f16";
    return bytes[ST_BF16] > bytes[ST_F32] ? "bf16" : "f32";
}

static int is_float(st_dtype d)
{
    return d == ST_F64 || d == ST_F32 || d == ST_F16 || d == ST_BF16;
}

/* The bytes of every tensor under prefix; parameters only of the floating
   ones, since integer tensors (CLIP's position ids) are buffers, not weights. */
static void network_size(const st_file *f, const char *prefix, uint64_t *params, uint64_t *bytes)
{
    *params = *bytes = 0;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (strncmp(t->name, prefix, strlen(prefix)) != 0)
            continue;
        *bytes += t->nbytes;
        if (is_float(t->dtype))
            *params += (uint64_t)t->numel;
    }
}

gs_status gs_checkpoint_inspect(const char *path, gs_checkpoint_info *out, char *errmsg,
                                size_t errmsg_size)
{
    if (out)
        memset(out, 0, sizeof *out);
    if (errmsg && errmsg_size)
        errmsg[0] = '\0';
    gi_error err = {0};
    st_file *f = NULL;
    gs_status st;
    if (!path || !out)
        st = gi_fail(&err, GS_ERR_INVALID_ARGUMENT, "NULL argument");
    else if ((st = checkpoint_refuse_pickle(path, &err)) == GS_OK)
        st = st_open(path, &f, &err); /* maps the file; reads the header only */
    if (st != GS_OK) {
        if (errmsg && errmsg_size)
            snprintf(errmsg, errmsg_size, "%s", err.msg);
        return st;
    }
    out->family = GS_FAMILY_UNKNOWN;
    out->family_name = "unknown";
    const family_desc *d = family_detect(f);
    if (d) {
        out->family = d->id;
        out->prediction = family_file_prediction(f);
        out->family_name = family_display_name(d, out->prediction);
        network_size(f, d->unet_prefix, &out->unet_params, &out->unet_bytes);
        network_size(f, d->vae_prefix, &out->vae_params, &out->vae_bytes);
        for (int k = 0; k < d->n_text; k++) {
            uint64_t params, bytes;
            network_size(f, d->text[k].prefix, &params, &bytes);
            out->text_params += params;
            out->text_bytes += bytes;
        }
    }
    out->weight_dtype = checkpoint_weight_dtype(f);
    out->file_bytes = st_file_size(f);
    out->tensors = st_count(f);
    int half = 0;
    out->prepared = weights_file_prepared(f, &half);
    if (out->prepared)
        out->prepared_precision = wl_precision_name(half);
    st_close(f);
    return GS_OK;
}
