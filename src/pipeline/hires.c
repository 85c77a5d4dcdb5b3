/*
 * hires - the hires fix's plan (sizes, steps, checks), its second pass and
 * its infotext; the enlargements themselves are in hires_upscale.c.
 */
#include "pipeline/hires.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "image/image_util.h"
#include "sample/rng.h"

#define HIRES_MAX_SIDE 4096 /* generate.c's MAX_SIDE */
#define HIRES_MAX_SCALE 8.0

static const struct {
    gs_hires_upscaler id;
    const char *name;  /* the CLI's and the job spec's */
    const char *a1111; /* shared_items.latent_upscale_modes, UpscalerLanczos */
} upscalers[] = {
    {GS_HIRES_LATENT, "latent", "Latent"},
    {GS_HIRES_LATENT_ANTIALIASED, "latent-antialiased", "Latent (antialiased)"},
    {GS_HIRES_LATENT_BICUBIC, "latent-bicubic", "Latent (bicubic)"},
    {GS_HIRES_LATENT_BICUBIC_ANTIALIASED, "latent-bicubic-antialiased",
     "Latent (bicubic antialiased)"},
    {GS_HIRES_LATENT_NEAREST, "latent-nearest", "Latent (nearest)"},
    {GS_HIRES_LATENT_NEAREST_EXACT, "latent-nearest-exact", "Latent (nearest-exact)"},
    {GS_HIRES_LANCZOS, "lanczos", "Lanczos"},
};
#define N_UPSCALERS (sizeof upscalers / sizeof upscalers[0])

const char *gs_hires_upscaler_name(gs_hires_upscaler u)
{
    for (size_t i = 0; i < N_UPSCALERS; i++)
        if (upscalers[i].id == u)
            return upscalers[i].a1111;
    return NULL;
}

const char *gs_hires_upscaler_short_name(gs_hires_upscaler u)
{
    for (size_t i = 0; i < N_UPSCALERS; i++)
        if (upscalers[i].id == u)
            return upscalers[i].name;
    return NULL;
}

int gs_hires_upscaler_parse(const char *name, gs_hires_upscaler *out)
{
    for (size_t i = 0; name && i < N_UPSCALERS; i++)
        if (strcmp(name, upscalers[i].name) == 0 || strcmp(name, upscalers[i].a1111) == 0) {
            *out = upscalers[i].id;
            return 0;
        }
    return -1;
}

/* The decimal a float scale was most likely written as (1.3f -> 1.3), so
   that int(w·scale) agrees with A1111's double arithmetic. */
static double float_decimal(float s)
{
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)s);
        double d = strtod(buf, NULL);
        if ((float)d == s)
            return d;
    }
    return (double)s;
}

void hires_target_size(const gs_params *p, int *up_w, int *up_h, int *w, int *h)
{
    int rx = p->hires_width, ry = p->hires_height;
    if (!rx && !ry) {
        double s = float_decimal(p->hires_scale);
        *up_w = *w = (int)(p->width * s);
        *up_h = *h = (int)(p->height * s);
        return;
    }
    if (!ry) {
        *up_w = *w = rx;
        *up_h = *h = rx * p->height / p->width;
        return;
    }
    if (!rx) {
        *up_w = *w = ry * p->width / p->height;
        *up_h = *h = ry;
        return;
    }
    /* both: cover rx x ry keeping the aspect, then crop the latent to it */
    if ((double)p->width / p->height < (double)rx / ry) {
        *up_w = rx;
        *up_h = rx * p->height / p->width;
    } else {
        *up_w = ry * p->width / p->height;
        *up_h = ry;
    }
    /* A1111: truncate = (up − target) // 8 latent pixels */
    *w = (*up_w / 8 - (*up_w - rx) / 8) * 8;
    *h = (*up_h / 8 - (*up_h - ry) / 8) * 8;
}

void gs_params_output_size(const gs_params *p, int *width, int *height)
{
    int uw, uh;
    *width = p->width;
    *height = p->height;
    if (p->hires_scale == 0.0f && !p->hires_width && !p->hires_height)
        return;
    if (p->width < 1 || p->height < 1 || !isfinite(p->hires_scale) || p->hires_scale < 0 ||
        p->hires_scale > HIRES_MAX_SCALE)
        return; /* gs_generate refuses these */
    hires_target_size(p, &uw, &uh, width, height);
}

/* sample_validate and sample_progress_total want an init latent for the
   second pass's img2img settings before there is one: any pointer does. */
static const float planning_latent[1];

gs_status hires_plan_make(const gs_params *p, const sample_config *first, hires_plan *hp,
                          gi_error *err)
{
    memset(hp, 0, sizeof *hp);
    if (p->hires_scale == 0.0f && !p->hires_width && !p->hires_height)
        return GS_OK;
    if (!isfinite(p->hires_scale) ||
        (p->hires_scale != 0.0f && (p->hires_scale < 1.0f || p->hires_scale > HIRES_MAX_SCALE)))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "hires scale %g is outside 1..%g (0 = off)",
                       (double)p->hires_scale, HIRES_MAX_SCALE);
    if (p->hires_width < 0 || p->hires_height < 0 || p->hires_width > HIRES_MAX_SIDE ||
        p->hires_height > HIRES_MAX_SIDE)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "hires size %dx%d is outside 0..%d per side",
                       p->hires_width, p->hires_height, HIRES_MAX_SIDE);
    if (p->init_image)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "the hires fix is for txt2img: it cannot take an init image");
    if (!gs_hires_upscaler_name(p->hires_upscaler))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "unknown hires upscaler %d",
                       (int)p->hires_upscaler);
    if (p->hires_steps < 0)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "hires steps %d: use 0 (= steps) or more",
                       p->hires_steps);
    if (!(p->hires_denoise > 0.0f && p->hires_denoise <= 1.0f))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "hires denoise %g is outside (0, 1]",
                       (double)p->hires_denoise);
    hires_target_size(p, &hp->up_w, &hp->up_h, &hp->width, &hp->height);
    if (hp->up_w == p->width && hp->up_h == p->height)
        return GS_OK; /* A1111: the same size is no hires fix at all */
    if (hp->up_w % 8 || hp->up_h % 8 || hp->width < 64 || hp->height < 64 ||
        hp->up_w > HIRES_MAX_SIDE || hp->up_h > HIRES_MAX_SIDE)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "hires size %dx%d: each side must be a multiple of 8 in 64..%d", hp->up_w,
                       hp->up_h, HIRES_MAX_SIDE);
    hp->steps = p->hires_steps ? p->hires_steps : p->steps;
    hp->schedule_steps = sample_fixed_steps_total(hp->steps, p->hires_denoise);
    sample_config sc = *first;
    sc.height = hp->height / 8;
    sc.width = hp->width / 8;
    sc.steps = hp->steps;
    sc.schedule_steps = hp->schedule_steps;
    sc.strength = p->hires_denoise;
    sc.init_latent = planning_latent;
    sc.keep = NULL;
    gs_status st = sample_validate(&sc, err);
    if (st != GS_OK) {
        gi_error_prefix(err, "hires pass (%d steps of a %d-step schedule at denoise %g)", hp->steps,
                        hp->schedule_steps, (double)p->hires_denoise);
        return st;
    }
    hp->progress = sample_progress_total(&sc);
    hp->params = *p;
    hp->params.width = hp->width;
    hp->params.height = hp->height;
    hp->params.steps = hp->steps;
    hp->params.strength = p->hires_denoise;
    /* SDXL: A1111 conditions the second pass on the enlarged size (hr_upscale_to) */
    if (!p->original_width && !p->original_height) {
        hp->params.original_width = hp->up_w;
        hp->params.original_height = hp->up_h;
    }
    if (!p->target_width && !p->target_height) {
        hp->params.target_width = hp->up_w;
        hp->params.target_height = hp->up_h;
    }
    hp->on = 1;
    return GS_OK;
}

static void tap(gen_ctx *g, const char *name, const float *x, size_t n)
{
    if (g->eng->latent_tap)
        g->eng->latent_tap(g->eng->latent_tap_user, name, x, n);
}

gs_status hires_decode_u8(gs_engine *eng, gs_model *m, const float *latent, int lh, int lw,
                          int tile, gs_image **out, gi_error *err)
{
    *out = NULL;
    int ch = m->latent_channels, W = lw * 8, H = lh * 8;
    size_t item = (size_t)ch * lh * lw, npix = (size_t)W * H * 3;
    float *lat = gi_aligned_alloc(item * sizeof *lat);
    float *img = gi_aligned_alloc(npix * sizeof *img);
    gs_image *im = image_new(W, H, 3);
    gs_status st = GS_OK;
    if (!lat || !img || !im) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory decoding the first pass");
        goto out;
    }
    gen_nchw_to_nhwc(latent, lat, 1, ch, lh, lw);
    for (size_t i = 0; i < item; i++)
        lat[i] /= m->latent_scale;
    if ((st = vae_decode_tiled(m->vae, eng->cx, lat, 1, lh, lw, tile, img, err)) != GS_OK)
        goto out;
    for (size_t i = 0; i < npix; i++) {
        float v = (img[i] + 1.0f) / 2.0f;
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        im->pixels[i] = (uint8_t)(255.0f * v); /* A1111: astype(np.uint8) truncates */
    }
    *out = im;
    im = NULL;
out:
    gi_aligned_free(lat);
    gi_aligned_free(img);
    gs_image_free(im);
    return st;
}

gs_status hires_encode_u8(gs_engine *eng, gs_model *m, const gs_image *img, float *latent,
                          gi_error *err)
{
    int ch = m->latent_channels, W = img->width, H = img->height, lh = H / 8, lw = W / 8;
    size_t item = (size_t)ch * lh * lw, npix = (size_t)W * H;
    float *pix = gi_aligned_alloc(npix * 3 * sizeof *pix);
    float *mean = gi_aligned_alloc(item * sizeof *mean);
    gs_status st = GS_OK;
    if (!pix || !mean) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory encoding the upscaled image");
        goto out;
    }
    if ((st = model_load_parts(m, NET_VAE_ENCODER, err)) != GS_OK) /* loaded at first use */
        goto out;
    for (size_t i = 0; i < npix; i++)
        for (int c = 0; c < 3; c++) /* A1111: /255 in float32, then 2x − 1 */
            pix[i * 3 + c] = (float)img->pixels[i * img->channels + c] / 255.0f * 2.0f - 1.0f;
    if ((st = vae_encode(m->vae, eng->cx, pix, 1, H, W, mean, NULL, err)) != GS_OK)
        goto out;
    for (size_t i = 0; i < item; i++)
        mean[i] *= m->latent_scale;
    gen_nhwc_to_nchw(mean, latent, 1, ch, lh, lw);
out:
    gi_aligned_free(pix);
    gi_aligned_free(mean);
    return st;
}

/* The first pass's latent at up_w x up_h: interpolated, or through pixels. */
static gs_status upscale(gen_ctx *g, const hires_plan *hp, const float *x, float *up, gi_error *err)
{
    int B = g->batch, ch = g->ch, uh = hp->up_h / 8, uw = hp->up_w / 8;
    gs_hires_upscaler mode = g->p->hires_upscaler;
    if (mode != GS_HIRES_LANCZOS)
        return hires_latent_resize(x, B * ch, g->lh, g->lw, up, uh, uw, mode, err);
    gs_status st = GS_OK;
    for (int b = 0; b < B && st == GS_OK; b++) {
        gs_image *low = NULL, *big = NULL;
        st = hires_decode_u8(g->eng, g->m, x + (size_t)b * ch * g->lh * g->lw, g->lh, g->lw,
                             gen_vae_tile_latent(g->p), &low, err);
        if (st == GS_OK)
            st = hires_pixel_upscale(low, hp->up_w, hp->up_h, &big, err);
        if (st == GS_OK)
            st = hires_encode_u8(g->eng, g->m, big, up + (size_t)b * ch * uh * uw, err);
        gs_image_free(low);
        gs_image_free(big);
    }
    return st;
}

/* A1111's crop of the enlarged latent to the asked size: rows ty//2 ..
   H − (ty+1)//2, columns likewise. */
static void crop(const float *src, int planes, int uh, int uw, float *dst, int h, int w)
{
    int top = (uh - h) / 2, left = (uw - w) / 2;
    for (int p = 0; p < planes; p++)
        for (int y = 0; y < h; y++)
            memcpy(dst + ((size_t)p * h + y) * w, src + ((size_t)p * uh + top + y) * uw + left,
                   (size_t)w * sizeof *dst);
}

/* g's UNet buffers and SDXL conditioning for the hires size. */
static gs_status resize_context(gen_ctx *g, const prompt_cond *cond, const prompt_cond *uncond,
                                gi_error *err)
{
    size_t n = (size_t)2 * g->batch * g->lh * g->lw * g->ch;
    gi_aligned_free(g->x_nhwc);
    gi_aligned_free(g->eps_nhwc);
    g->x_nhwc = gi_aligned_alloc(n * sizeof(float));
    g->eps_nhwc = gi_aligned_alloc(n * sizeof(float));
    if (!g->x_nhwc || !g->eps_nhwc)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the hires pass");
    if (!g->adm)
        return GS_OK; /* only SDXL's conditioning depends on the size */
    gi_aligned_free(g->ctx_c);
    gi_aligned_free(g->ctx_u);
    gi_aligned_free(g->y_c);
    gi_aligned_free(g->y_u);
    g->ctx_c = g->ctx_u = g->y_c = g->y_u = NULL;
    return gen_build_context(g, cond, uncond, err);
}

gs_status hires_run(gen_ctx *g, hires_plan *hp, const sample_config *first, const prompt_cond *cond,
                    const prompt_cond *uncond, float **x, gi_error *err)
{
    int B = g->batch, ch = g->ch, uh = hp->up_h / 8, uw = hp->up_w / 8;
    int fh = hp->height / 8, fw = hp->width / 8;
    size_t n_up = (size_t)B * ch * uh * uw, n = (size_t)B * ch * fh * fw;
    float *up = gi_aligned_alloc(n_up * sizeof *up), *init = up;
    float *x2 = gi_aligned_alloc(n * sizeof *x2), *noise = NULL;
    gs_status st = GS_OK;
    if (!up || !x2) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the hires pass");
        goto out;
    }
    tap(g, "first_latent", *x, (size_t)B * ch * g->lh * g->lw);
    if ((st = upscale(g, hp, *x, up, err)) != GS_OK)
        goto out;
    if (uh != fh || uw != fw) {
        if (!(init = gi_aligned_alloc(n * sizeof *init))) {
            st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the hires pass");
            goto out;
        }
        crop(up, B * ch, uh, uw, init, fh, fw);
    }
    tap(g, "upscaled_latent", init, n);

    g->p = &hp->params;
    g->lh = fh;
    g->lw = fw;
    if ((st = resize_context(g, cond, uncond, err)) != GS_OK)
        goto out;
    sample_config sc = *first;
    sc.height = fh;
    sc.width = fw;
    sc.steps = hp->steps;
    sc.schedule_steps = hp->schedule_steps;
    sc.strength = hp->params.strength;
    sc.init_latent = init;
    sc.keep = NULL;
    /* A1111 makes a new ImageRNG on the enlarged shape: the seed starts over */
    gi_rng rng;
    rng_seed(&rng, hp->params.seed);
    if (g->eng->latent_tap && (noise = gi_aligned_alloc(n * sizeof *noise))) {
        gi_rng peek = rng;
        rng_randn(&peek, noise, n);
        tap(g, "hr_noise", noise, n);
    }
    g->step_offset = g->total - hp->progress;
    st = sample_run(&sc, &rng, gen_model_eps, gen_on_step, g, x2, err);
    if (st != GS_OK) {
        gi_error_prefix(err, "hires pass");
        goto out;
    }
    tap(g, "final_latent", x2, n);
    gi_aligned_free(*x);
    *x = x2;
    x2 = NULL;
out:
    if (init != up)
        gi_aligned_free(init);
    gi_aligned_free(up);
    gi_aligned_free(x2);
    gi_aligned_free(noise);
    return st;
}

void hires_infotext(const hires_plan *hp, const gs_params *p, infotext_fields *f)
{
    if (!hp->on)
        return;
    f->hires_upscaler = gs_hires_upscaler_name(p->hires_upscaler);
    f->hires_scale = float_decimal(p->hires_scale);
    f->hires_resize_w = p->hires_width;
    f->hires_resize_h = p->hires_height;
    f->hires_steps = p->hires_steps;
    f->strength = float_decimal(p->hires_denoise);
}
