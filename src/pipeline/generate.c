/*
 * generate - gs_generate: text-to-image and image-to-image for every family.
 *
 * Flow: validate everything first (the callback is never called for a request
 * that fails validation) -> encode prompt and negative prompt -> (img2img:
 * encode the init image to a latent) -> run the sampler, whose model callback
 * applies classifier-free guidance around the UNet -> decode with the VAE.
 * What differs between families (encoders, SDXL's extra conditioning vector,
 * latent scale, prediction type) comes from the model's family row.
 *
 * The sampler works on NCHW latents (torch's order, so noise draws match the
 * reference tools); the networks are channels-last, so the model callback
 * transposes the small latent on the way in and out. All buffers are allocated
 * before sampling starts; the sampling loop allocates nothing.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "image/image_util.h"
#include "image/infotext.h"
#include "image/resize.h"
#include "pipeline/checkpoint.h"
#include "pipeline/engine.h"
#include "pipeline/lora_select.h"
#include "pipeline/inpaint.h"
#include "pipeline/generate_internal.h"
#include "pipeline/hires.h"
#include "sample/rng.h"
#include "text/lora_tags.h"
#include "sample/sampler.h"

#define MAX_SIDE 4096
#define MAX_BATCH 64
#define MAX_PROMPT_BYTES (64 * 1024)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- validation ---- */

static gs_status validate(const gs_model *m, const gs_params *p, gi_error *err)
{
    if (p->width < 64 || p->height < 64 || p->width > MAX_SIDE || p->height > MAX_SIDE)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "size %dx%d is outside 64..%d per side",
                       p->width, p->height, MAX_SIDE);
    if (p->width % 8 || p->height % 8)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "size %dx%d: width and height must be "
                       "multiples of 8",
                       p->width, p->height);
    if (p->batch_size < 1 || p->batch_size > MAX_BATCH)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "batch size %d is outside 1..%d",
                       p->batch_size, MAX_BATCH);
    if (!isfinite(p->cfg_scale) || p->cfg_scale < 0 || p->cfg_scale > 100)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "cfg scale %g is outside 0..100",
                       (double)p->cfg_scale);
    if (isnan(p->eta) || p->eta > 10.0f) /* negative: the sampler's default */
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "eta %g is outside 0..10", (double)p->eta);
    if (p->clip_skip < 1 || p->clip_skip > m->text_layers)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "clip skip %d is outside 1..%d (the text encoder's layers)", p->clip_skip,
                       m->text_layers);
    if (p->vae_tile < -1 || (p->vae_tile > 0 && (p->vae_tile < 64 || p->vae_tile % 8)))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "vae tile %d: use -1 (never), 0 (auto) or a multiple of 8 of at least 64",
                       p->vae_tile);
    if (p->prediction < GS_PREDICTION_AUTO || p->prediction > GS_PREDICTION_V)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "unknown prediction type %d",
                       (int)p->prediction);
    const int sizes[] = {p->original_width, p->original_height, p->crop_top,
                         p->crop_left,      p->target_width,    p->target_height};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        if (sizes[i] < 0 || sizes[i] > 65536)
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                           "size conditioning values must be in 0..65536, got %d", sizes[i]);
    if (p->preview_every < 0)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "preview_every must be >= 0");
    if ((p->prompt && strlen(p->prompt) > MAX_PROMPT_BYTES) ||
        (p->negative_prompt && strlen(p->negative_prompt) > MAX_PROMPT_BYTES))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "prompt longer than %d bytes",
                       MAX_PROMPT_BYTES);
    if (p->init_image) {
        const gs_image *im = p->init_image;
        if (!im->pixels || im->width < 1 || im->height < 1 ||
            (im->channels != 3 && im->channels != 4))
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                           "init image must be a non-empty RGB or RGBA image");
        if (!(p->strength > 0) || p->strength > 1)
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "strength %g is outside (0, 1]",
                           (double)p->strength);
    }
    return inpaint_validate(p, err);
}

/* ---- the model callback: CFG around the UNet ---- */

void gen_nchw_to_nhwc(const float *src, float *dst, int n, int c, int h, int w)
{
    size_t plane = (size_t)h * w;
    for (int b = 0; b < n; b++)
        for (int k = 0; k < c; k++)
            for (size_t i = 0; i < plane; i++)
                dst[((size_t)b * plane + i) * c + k] = src[((size_t)b * c + k) * plane + i];
}

void gen_nhwc_to_nchw(const float *src, float *dst, int n, int c, int h, int w)
{
    size_t plane = (size_t)h * w;
    for (int b = 0; b < n; b++)
        for (int k = 0; k < c; k++)
            for (size_t i = 0; i < plane; i++)
                dst[((size_t)b * c + k) * plane + i] = src[((size_t)b * plane + i) * c + k];
}

gs_status gen_model_eps(void *user, const float *x_in, double t, float *eps, gi_error *err)
{
    gen_ctx *g = user;
    int B = g->batch;
    size_t item = (size_t)g->lh * g->lw * g->ch;
    if (g->in_ch != g->ch) {
        /* x ⊕ mask ⊕ masked-image latent per pixel; eps_nhwc is free until the UNet runs */
        size_t plane = (size_t)g->lh * g->lw, extra = (size_t)(g->in_ch - g->ch);
        gen_nchw_to_nhwc(x_in, g->eps_nhwc, B, g->ch, g->lh, g->lw);
        for (size_t i = 0; i < (size_t)B * plane; i++) {
            memcpy(g->x_nhwc + i * g->in_ch, g->eps_nhwc + i * g->ch, g->ch * sizeof(float));
            memcpy(g->x_nhwc + i * g->in_ch + g->ch, g->concat + (i % plane) * extra,
                   extra * sizeof(float));
        }
    } else
        gen_nchw_to_nhwc(x_in, g->x_nhwc, B, g->ch, g->lh, g->lw);
    size_t item_in = (size_t)g->lh * g->lw * g->in_ch;
    for (int i = 0; i < 2 * B; i++)
        g->t_batch[i] = (float)t;
    gs_status st;
    const float *eps_c, *eps_u = NULL;
    if (!g->cfg) {
        st = unet_forward(g->m->unet, g->eng->cx, g->x_nhwc, g->t_batch, g->ctx_c, g->y_c, B, g->lh,
                          g->lw, g->tokens_c, g->eps_nhwc, err);
        eps_c = g->eps_nhwc;
    } else if (g->joint) {
        memcpy(g->x_nhwc + B * item_in, g->x_nhwc, B * item_in * sizeof(float));
        st = unet_forward(g->m->unet, g->eng->cx, g->x_nhwc, g->t_batch, g->ctx_c, g->y_c, 2 * B,
                          g->lh, g->lw, g->tokens_c, g->eps_nhwc, err);
        eps_u = g->eps_nhwc;
        eps_c = g->eps_nhwc + B * item;
    } else {
        /* A1111's default when the prompts' chunk counts differ: one pass each. */
        st = unet_forward(g->m->unet, g->eng->cx, g->x_nhwc, g->t_batch, g->ctx_u, g->y_u, B, g->lh,
                          g->lw, g->tokens_u, g->eps_nhwc, err);
        if (st == GS_OK)
            st = unet_forward(g->m->unet, g->eng->cx, g->x_nhwc, g->t_batch, g->ctx_c, g->y_c, B,
                              g->lh, g->lw, g->tokens_c, g->eps_nhwc + B * item, err);
        eps_u = g->eps_nhwc;
        eps_c = g->eps_nhwc + B * item;
    }
    if (st != GS_OK)
        return st;
    if (eps_u) {
        /* eps-space guidance equals k-diffusion's D_u + s(D_c - D_u), D being affine in eps. */
        float s = g->p->cfg_scale;
        float *out = g->eps_nhwc; /* overwrite the uncond half in place */
        for (size_t i = 0; i < B * item; i++)
            out[i] = eps_u[i] + s * (eps_c[i] - eps_u[i]);
        eps_c = out;
    }
    gen_nhwc_to_nchw(eps_c, eps, B, g->ch, g->lh, g->lw);
    return GS_OK;
}

int gen_on_step(void *user, int step, int total, const float *x, const float *denoised)
{
    gen_ctx *g = user;
    double now = now_s();
    (void)total; /* the run's total is g->total: every pass's steps */
    step += g->step_offset;
    if (step >= 1 && step <= g->total)
        g->step_s[step - 1] = now - g->t_last;
    if (g->eng->cx->prof_on) {
        const op_prof *pr = &g->eng->cx->prof;
        double gemm = op_prof_gemm_s(pr), aux = op_prof_conv_aux_s(pr);
        if (step >= 2 || (step == 1 && g->total == 1)) { /* the first step warms up */
            g->split_wall += now - g->t_last;
            g->split_gemm += gemm - g->prof_gemm_last;
            g->split_aux += aux - g->prof_aux_last;
            g->split_n++;
        }
        g->prof_gemm_last = gemm;
        g->prof_aux_last = aux;
    }
    g->t_last = now;
    if (!g->progress)
        return 0;
    gs_progress pr = {0};
    pr.step = step;
    pr.steps = g->total;
    pr.elapsed_s = now - g->t_start;
    pr.eta_s = step > 0 ? pr.elapsed_s / step * (g->total - step) : 0;
    gs_image *preview = NULL;
    if (g->p->preview_every > 0 && (step % g->p->preview_every == 0 || step == g->total) &&
        latent_preview(denoised ? denoised : x, g->m->fam->id, g->ch, g->lh, g->lw, &preview) ==
            GS_OK)
        pr.preview = preview;
    int cancel = g->progress(&pr, g->user);
    gs_image_free(preview);
    return cancel;
}

/* ---- conditioning buffers ---- */

/* Repeats a [tokens, width] conditioning n times into dst. */
static void repeat_rows(float *dst, const float *src, size_t row_floats, int n)
{
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)i * row_floats, src, row_floats * sizeof(float));
}

gs_status gen_build_context(gen_ctx *g, const prompt_cond *cond, const prompt_cond *uncond,
                            gi_error *err)
{
    int B = g->batch, width = g->m->text_width, tc = cond->tokens, tu = uncond->tokens;
    size_t nc = (size_t)tc * width, nu = (size_t)tu * width, na = (size_t)g->adm;
    float *yc = NULL, *yu = NULL;
    g->tokens_c = tc;
    g->tokens_u = tu;
    g->joint = g->cfg && tc == tu;
    if (g->adm) {
        yc = gi_aligned_alloc(na * sizeof *yc);
        yu = gi_aligned_alloc(na * sizeof *yu);
        if (!yc || !yu) {
            gi_aligned_free(yc);
            gi_aligned_free(yu);
            return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the conditioning");
        }
        extra_conditioning(g->m, g->p, cond, yc);
        if (g->cfg)
            extra_conditioning(g->m, g->p, uncond, yu);
    }
    gs_status st = GS_OK;
    if (g->joint) {
        g->ctx_c = gi_aligned_alloc(2 * B * nc * sizeof(float));
        if (g->adm)
            g->y_c = gi_aligned_alloc(2 * B * na * sizeof(float));
        if (!g->ctx_c || (g->adm && !g->y_c)) {
            st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the text conditioning");
            goto out;
        }
        repeat_rows(g->ctx_c, uncond->ctx, nu, B);
        repeat_rows(g->ctx_c + B * nc, cond->ctx, nc, B);
        if (g->adm) {
            repeat_rows(g->y_c, yu, na, B);
            repeat_rows(g->y_c + B * na, yc, na, B);
        }
        goto out;
    }
    g->ctx_c = gi_aligned_alloc(B * nc * sizeof(float));
    if (g->cfg)
        g->ctx_u = gi_aligned_alloc(B * nu * sizeof(float));
    if (g->adm) {
        g->y_c = gi_aligned_alloc(B * na * sizeof(float));
        if (g->cfg)
            g->y_u = gi_aligned_alloc(B * na * sizeof(float));
    }
    if (!g->ctx_c || (g->cfg && !g->ctx_u) || (g->adm && (!g->y_c || (g->cfg && !g->y_u)))) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the text conditioning");
        goto out;
    }
    repeat_rows(g->ctx_c, cond->ctx, nc, B);
    if (g->cfg)
        repeat_rows(g->ctx_u, uncond->ctx, nu, B);
    if (g->adm) {
        repeat_rows(g->y_c, yc, na, B);
        if (g->cfg)
            repeat_rows(g->y_u, yu, na, B);
    }
out:
    gi_aligned_free(yc);
    gi_aligned_free(yu);
    return st;
}

/* ---- img2img ---- */

/* The init image (src) as a scaled latent, NCHW, repeated for every batch item. */
static gs_status encode_init(gen_ctx *g, const gs_image *src, float **out, gi_error *err)
{
    const gs_params *p = g->p;
    gs_image *rgb = NULL;
    float *pix = NULL, *mean = NULL;
    gs_status st = image_resize_rgb(src, p->width, p->height, &rgb, err);
    if (st != GS_OK)
        return st;
    size_t npix = (size_t)p->width * p->height;
    size_t item = (size_t)g->lh * g->lw * g->ch;
    pix = gi_aligned_alloc(npix * 3 * sizeof *pix);
    mean = gi_aligned_alloc(item * sizeof *mean);
    *out = gi_aligned_alloc(item * g->batch * sizeof **out);
    if (!pix || !mean || !*out) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory encoding the init image");
        goto out;
    }
    image_u8_to_signed_f32(rgb, pix);
    st = vae_encode(g->m->vae, g->eng->cx, pix, 1, p->height, p->width, mean, NULL, err);
    if (st != GS_OK)
        goto out;
    for (size_t i = 0; i < item; i++)
        mean[i] *= g->m->latent_scale;
    gen_nhwc_to_nchw(mean, *out, 1, g->ch, g->lh, g->lw);
    for (int b = 1; b < g->batch; b++)
        memcpy(*out + b * item, *out, item * sizeof **out);
out:
    if (st != GS_OK) {
        gi_aligned_free(*out);
        *out = NULL;
    }
    gs_image_free(rgb);
    gi_aligned_free(pix);
    gi_aligned_free(mean);
    return st;
}

/* ---- decode and package ---- */

/* The decode tile in latent pixels, 0 for a whole decode. */
int gen_vae_tile_latent(const gs_params *p)
{
    if (p->vae_tile > 0)
        return p->vae_tile / 8;
    if (p->vae_tile == 0 && (long)p->width * p->height > GS_VAE_TILE_AUTO_ABOVE)
        return GS_VAE_TILE_AUTO / 8;
    return 0;
}

static gs_status decode_images(gen_ctx *g, const float *latent_nchw, gs_result *res, gi_error *err)
{
    int B = g->batch, W = g->p->width, H = g->p->height;
    size_t item = (size_t)g->lh * g->lw * g->ch;
    float *lat = gi_aligned_alloc(item * sizeof *lat);
    float *img = gi_aligned_alloc((size_t)W * H * 3 * sizeof *img);
    gs_status st = GS_OK;
    if (!lat || !img) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory decoding");
        goto out;
    }
    /* One item at a time bounds the decoder's activations to one image. */
    for (int b = 0; b < B; b++) {
        gen_nchw_to_nhwc(latent_nchw + b * item, lat, 1, g->ch, g->lh, g->lw);
        for (size_t i = 0; i < item; i++)
            lat[i] /= g->m->latent_scale;
        st = vae_decode_tiled(g->m->vae, g->eng->cx, lat, 1, g->lh, g->lw,
                              gen_vae_tile_latent(g->p), img, err);
        if (st != GS_OK)
            goto out;
        gs_image *dst = &res->images[b];
        dst->pixels = gi_malloc((size_t)W * H * 3);
        if (!dst->pixels) {
            st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the image");
            goto out;
        }
        dst->width = W;
        dst->height = H;
        dst->channels = 3;
        if (g->truncate_u8)
            inpaint_to_u8(img, (size_t)W * H * 3, dst->pixels);
        else
            image_signed_f32_to_u8(img, (size_t)W * H * 3, dst->pixels);
    }
out:
    gi_aligned_free(lat);
    gi_aligned_free(img);
    return st;
}

/* The samplers A1111 hands an eta to: those that draw noise. */
static int sampler_takes_eta(const char *sampler)
{
    for (int i = 0; i < gs_sampler_count(); i++) {
        const gs_sampler_desc *d = gs_sampler_at(i);
        if (strcmp(d->name, sampler) == 0)
            return (d->flags & GS_SAMPLER_NOISE) != 0;
    }
    return 0;
}

static gs_status write_infotexts(gen_ctx *g, gs_result *res, const char *sampler,
                                 const char *scheduler, const char *lora_hashes,
                                 const hires_plan *hr, gi_error *err)
{
    const gs_params *p = g->p;
    for (int b = 0; b < g->batch; b++) {
        infotext_fields f;
        memset(&f, 0, sizeof f);
        f.prompt = p->prompt ? p->prompt : "";
        f.negative_prompt = p->negative_prompt ? p->negative_prompt : "";
        f.sampler = sampler;
        f.scheduler = scheduler;
        f.model = g->m->name;
        f.steps = p->steps;
        f.width = p->width;
        f.height = p->height;
        f.clip_skip = p->clip_skip;
        f.batch_size = g->batch;
        f.batch_pos = b;
        f.cfg_scale = p->cfg_scale;
        f.strength = p->strength;
        f.seed = p->seed;
        f.is_img2img = p->init_image != NULL;
        f.lora_hashes = lora_hashes;
        f.mask_blur = p->mask ? p->mask_blur : 0;
        f.has_eta = sampler_takes_eta(sampler) && p->eta >= 0.0f && p->eta != 1.0f;
        f.eta = p->eta;
        hires_infotext(hr, p, &f);
        res->infotexts[b] = infotext_format(&f);
        if (!res->infotexts[b])
            return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    }
    return GS_OK;
}

/* ---- gs_generate ---- */

static gs_status generate(gs_engine *eng, gs_model *m, const gs_params *p, gs_progress_fn progress,
                          void *user, gs_result **out);

gs_status gs_generate(gs_engine *eng, gs_model *m, const gs_params *p, gs_progress_fn progress,
                      void *user, gs_result **out)
{
    if (!eng)
        return GS_ERR_INVALID_ARGUMENT;
    if (!m || !p || !out)
        return engine_fail(eng, &(gi_error){GS_ERR_INVALID_ARGUMENT, "NULL argument"});
    *out = NULL;
    int saved = compute_enter(eng->cx);
    op_prof *prof_saved = op_prof_cur;
    op_prof_cur = eng->cx->prof_on ? &eng->cx->prof : NULL;
    gs_status st = generate(eng, m, p, progress, user, out);
    op_prof_cur = prof_saved;
    compute_leave(saved);
    return st;
}

/* The generation's sizes and prediction from the model. Before a one-shot
   model's UNet and VAE have ever been in, the SD default (4 latent channels,
   the file's stated or ε prediction) stands in, so settings are checked before
   anything heavy runs; they are taken again once the UNet is in. */
static void take_model_sizes(gen_ctx *g, sample_config *sc)
{
    const gs_model *m = g->m;
    const gs_params *p = g->p;
    g->ch = m->fitted ? m->latent_channels : 4;
    g->adm = m->adm_channels;
    sc->channels = g->ch;
    gs_prediction pred = p->prediction != GS_PREDICTION_AUTO ? p->prediction : m->prediction;
    sc->prediction = pred == GS_PREDICTION_V ? SAMPLE_PRED_V : SAMPLE_PRED_EPS;
}

/* Whether p asks for LoRAs: a list, or LoRA tags in its prompt. A prompt the
   tag parser refuses counts as asking: lora_select reports why. */
static int lora_asked(const gs_params *p)
{
    if (p->n_loras != 0)
        return 1;
    if (!p->prompt || !strchr(p->prompt, '<'))
        return 0;
    char *stripped = NULL;
    lora_tag *tags = NULL;
    int n = 0;
    gi_error err = {0};
    int asked = lora_tags_parse(p->prompt, &stripped, &tags, &n, &err) != GS_OK || n > 0;
    gi_free(stripped);
    gi_free(tags);
    return asked;
}

static gs_status generate(gs_engine *eng, gs_model *m, const gs_params *p, gs_progress_fn progress,
                          void *user, gs_result **out)
{
    gi_error err = {0};
    double t0 = now_s();
    gen_ctx g;
    memset(&g, 0, sizeof g);
    prompt_cond cond = {0}, uncond = {0};
    float *init = NULL, *x = NULL;
    hires_plan hr;
    gs_result *res = NULL;
    lora_request lr = {0};
    inpaint_plan ip = {0};
    gs_status st = validate(m, p, &err);
    if (st != GS_OK)
        goto out;

    g.eng = eng;
    g.m = m;
    g.p = p;
    g.batch = p->batch_size;
    g.lh = p->height / 8;
    g.lw = p->width / 8;
    g.cfg = p->cfg_scale != 1.0f;
    g.progress = progress;
    g.user = user;

    sample_config sc;
    memset(&sc, 0, sizeof sc);
    sc.sampler = p->sampler ? p->sampler : "euler_a";
    sc.scheduler = p->scheduler;
    sc.steps = p->steps;
    sc.batch = g.batch;
    sc.height = g.lh;
    sc.width = g.lw;
    sc.strength = p->init_image ? p->strength : 1.0f;
    take_model_sizes(&g, &sc); /* provisional while a one-shot run's UNet is not in yet */
    sc.seed = p->seed;         /* the Brownian-tree samplers seed from it */
    sc.custom_eta = p->eta >= 0.0f;
    sc.eta = p->eta;
    if ((st = sample_validate(&sc, &err)) != GS_OK)
        goto out;
    if ((st = hires_plan_make(p, &sc, &hr, &err)) != GS_OK)
        goto out;

    res = gi_calloc(1, sizeof *res);
    if (!res) {
        st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    res->seed = p->seed;

    /* What an earlier run released. A one-shot model brings in its UNet and
       VAE only once the text is encoded and its encoders freed, so the peak is
       the largest stage; a LoRA set folds into all networks at once. */
    int staged = m->staged && !lora_asked(p);
    double t_load = now_s();
    if ((st = model_load_parts(m, staged ? NET_TEXT : NET_KEPT, &err)) != GS_OK) {
        gi_error_prefix(&err, "%s", m->path);
        goto out;
    }
    res->timings.load_s = now_s() - t_load;
    /* the model's precision, which a prepared file may have set apart from the
       engine's: an f32 model's attention and convolutions stay f32 */
    engine_set_compute_precision(eng, m->half);

    /* LoRAs, folded in before the text encoder runs; the prompt loses its tags */
    if ((st = lora_select(m, p, &lr, &err)) != GS_OK)
        goto out;
    res->timings.lora_apply_s = lr.apply_s;
    res->warnings = lr.warnings;
    lr.warnings = NULL;

    /* text */
    double t_text = now_s();
    if ((st = encode_prompt(eng, m, lr.prompt, p->clip_skip, 0, &cond, &err)) != GS_OK)
        goto out;
    int zero_empty = m->fam->zero_empty_negative && !p->encode_empty_negative;
    if (g.cfg && (st = encode_prompt(eng, m, p->negative_prompt, p->clip_skip, zero_empty, &uncond,
                                     &err)) != GS_OK)
        goto out;
    res->timings.text_encode_s = now_s() - t_text;
    if (m->release_after_use) { /* each network goes once this run is done with it */
        for (int k = 0; k < m->fam->n_text; k++) {
            clip_text_free(m->text[k]);
            m->text[k] = NULL;
            model_drop_pages(m, m->fam->text[k].prefix);
        }
    }
    t_load = now_s();
    if ((st = model_load_parts(m, NET_UNET | NET_VAE, &err)) != GS_OK) {
        gi_error_prefix(&err, "%s", m->path);
        goto out;
    }
    /* a staged load's first UNet may have shown a v model, which an engine left
       to choose computes in f16 (model_load.c, auto_takes_f16) */
    engine_set_compute_precision(eng, m->half);
    g.in_ch = unet_in_channels(m->unet); /* once the UNet is loaded (a run may release it) */
    /* the VAE's encoder comes with the first job that encodes an image: an init
       image, an inpainting checkpoint's masked image, a hires fix through pixels */
    int encodes = p->init_image || g.in_ch != m->latent_channels ||
                  (hr.on && p->hires_upscaler == GS_HIRES_LANCZOS);
    if (encodes && (st = model_load_parts(m, NET_VAE_ENCODER, &err)) != GS_OK) {
        gi_error_prefix(&err, "%s", m->path);
        goto out;
    }
    res->timings.load_s += now_s() - t_load;
    take_model_sizes(&g, &sc);
    if (hr.on && g.in_ch != g.ch) { /* its second pass would need the upscaled image's own
                                       conditioning, which is not built yet */
        st = gi_fail(&err, GS_ERR_UNSUPPORTED,
                     "the hires fix does not run on an inpainting checkpoint yet");
        goto out;
    }
    if ((st = gen_build_context(&g, &cond, &uncond, &err)) != GS_OK)
        goto out;

    /* buffers for the sampling loop */
    size_t item = (size_t)g.lh * g.lw * g.ch;
    g.total = sample_progress_total(&sc) + (hr.on ? hr.progress : 0); /* both passes */
    g.x_nhwc = gi_aligned_alloc(2 * g.batch * (size_t)g.lh * g.lw * g.in_ch * sizeof(float));
    g.eps_nhwc = gi_aligned_alloc(2 * g.batch * item * sizeof(float));
    g.t_batch = gi_aligned_alloc(2 * g.batch * sizeof(float));
    g.step_s = gi_calloc(g.total > 0 ? g.total : 1, sizeof(double));
    x = gi_aligned_alloc(g.batch * item * sizeof(float));
    res->images = gi_calloc(g.batch, sizeof *res->images);
    res->infotexts = gi_calloc(g.batch, sizeof *res->infotexts);
    if (!g.x_nhwc || !g.eps_nhwc || !g.t_batch || !g.step_s || !x || !res->images ||
        !res->infotexts) {
        st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    res->count = g.batch;

    if (p->init_image) {
        double t_enc = now_s();
        if ((st = inpaint_prepare(p, &ip, &err)) != GS_OK ||
            (st = encode_init(&g, ip.active ? ip.vae_in : p->init_image, &init, &err)) != GS_OK)
            goto out;
        if (ip.active) {
            if ((st = inpaint_fill_latent(&ip, init, g.batch, g.ch, p->seed, &err)) != GS_OK)
                goto out;
            sc.keep = ip.keep;
            g.truncate_u8 = 1;
        }
        sc.init_latent = init;
        res->timings.vae_encode_s = now_s() - t_enc;
    }
    if (g.in_ch != g.ch) { /* an inpainting checkpoint: its conditioning, with or without a mask */
        size_t n = (size_t)g.lh * g.lw * (g.in_ch - g.ch);
        if (!(g.concat = gi_aligned_alloc(n * sizeof *g.concat))) {
            st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        gs_image *src = NULL;
        if (p->init_image && !ip.active &&
            (st = image_resize_rgb(p->init_image, p->width, p->height, &src, &err)) != GS_OK)
            goto out;
        st = inpaint_unet_cond(&ip, ip.active ? ip.vae_in : src, p->width, p->height, g.ch,
                               m->latent_scale, m->vae, eng->cx, g.concat, &err);
        gs_image_free(src);
        if (st != GS_OK)
            goto out;
    }

    /* sampling */
    gi_rng rng;
    rng_seed(&rng, p->seed);
    g.t_start = g.t_last = now_s();
    double flops0 = eng->cx->flops;
    op_prof prof0 = eng->cx->prof;
    g.prof_gemm_last = op_prof_gemm_s(&prof0);
    g.prof_aux_last = op_prof_conv_aux_s(&prof0);
    st = sample_run(&sc, &rng, gen_model_eps, gen_on_step, &g, x, &err);
    res->timings.sampling_s = now_s() - g.t_start;
    res->timings.step_gflop = (eng->cx->flops - flops0) * 1e-9 / (g.total > 0 ? g.total : 1);
    if (st != GS_OK)
        goto out;
    if (g.split_n > 0) {
        gs_timings *tm = &res->timings;
        tm->step_mean_s = g.split_wall / g.split_n;
        tm->step_gemm_s = g.split_gemm / g.split_n;
        tm->step_conv_aux_s = g.split_aux / g.split_n;
        tm->step_other_s = tm->step_mean_s - tm->step_gemm_s - tm->step_conv_aux_s;
    }
    if (eng->prof_print)
        op_prof_print(stderr, &prof0, &eng->cx->prof, g.total, res->timings.sampling_s,
                      eng->cx->flops - flops0);
    if (ip.active)
        inpaint_blend_final(&ip, x, init, g.batch, g.ch);
    if (hr.on && (st = hires_run(&g, &hr, &sc, &cond, &uncond, &x, &err)) != GS_OK)
        goto out;
    res->timings.sampling_s = now_s() - g.t_start;
    if (m->release_after_use) {
        unet_free(m->unet);
        m->unet = NULL;
        model_drop_pages(m, m->fam->unet_prefix);
    }

    double t_dec = now_s();
    flops0 = eng->cx->flops;
    if ((st = decode_images(&g, x, res, &err)) != GS_OK)
        goto out;
    for (int b = 0; ip.active && b < g.batch; b++)
        if ((st = inpaint_apply_overlay(&ip, &res->images[b], &err)) != GS_OK)
            goto out;
    res->timings.vae_decode_s = now_s() - t_dec;
    res->timings.vae_decode_gflop = (eng->cx->flops - flops0) * 1e-9;
    g.p = p; /* the hires pass moved it to the final size; the infotext tells the request */
    if ((st = write_infotexts(&g, res, sc.sampler, p->scheduler, lr.hashes, &hr, &err)) != GS_OK)
        goto out;

    res->timings.unet_batch = g.cfg ? 2 * g.batch : g.batch;
    res->timings.n_steps = g.total;
    res->step_s = g.step_s;
    res->timings.step_s = g.step_s;
    g.step_s = NULL;
    res->timings.total_s = now_s() - t0;
    *out = res;
    res = NULL;
out:
    lora_request_free(&lr);
    gi_free(g.step_s);
    gi_aligned_free(g.ctx_c);
    gi_aligned_free(g.ctx_u);
    gi_aligned_free(g.x_nhwc);
    gi_aligned_free(g.eps_nhwc);
    gi_aligned_free(g.t_batch);
    gi_aligned_free(g.y_c);
    gi_aligned_free(g.y_u);
    gi_aligned_free(g.concat);
    prompt_cond_free(&cond);
    prompt_cond_free(&uncond);
    gi_aligned_free(init);
    gi_aligned_free(x);
    inpaint_plan_free(&ip);
    gs_result_free(res);
    if (st != GS_OK)
        return engine_fail(eng, &err);
    return GS_OK;
}
