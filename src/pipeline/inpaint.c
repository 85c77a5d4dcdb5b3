/*
 * inpaint - A1111's img2img-with-mask around gs_generate. The order of steps
 * and where each is rounded to 8 bits follow processing.py: the mask is made
 * binary, inverted, blurred at its own size; whole picture: resized to the
 * processing size, doubled for the overlay; only masked: the blurred mask is
 * the overlay's, and the crop around it is what gets repainted. The latent
 * mask comes from the processing-size mask (never the doubled one), so the
 * sampler's blend and the overlay use different masks, as in A1111.
 */
#include "pipeline/inpaint.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "image/image_util.h"
#include "image/mask.h"
#include "image/pil_blend.h"
#include "image/pil_resample.h"
#include "sample/rng.h"

inpaint_trace *inpaint_trace_sink;

#define MAX_MASK_BLUR 64
#define MAX_PADDING 256

gs_status inpaint_validate(const gs_params *p, gi_error *err)
{
    const gs_image *m = p->mask;
    if (!m)
        return GS_OK;
    if (!p->init_image)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "a mask needs an init image");
    if (!m->pixels || m->width < 1 || m->height < 1 || m->width > IMAGE_MAX_SIDE ||
        m->height > IMAGE_MAX_SIDE || (m->channels != 1 && m->channels != 3 && m->channels != 4))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "mask must be a non-empty gray, RGB or RGBA image of at most %d per side",
                       IMAGE_MAX_SIDE);
    if (p->mask_blur < 0 || p->mask_blur > MAX_MASK_BLUR)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "mask blur %d is outside 0..%d", p->mask_blur,
                       MAX_MASK_BLUR);
    if ((int)p->inpaint_fill < GS_INPAINT_FILL || (int)p->inpaint_fill > GS_INPAINT_LATENT_NOTHING)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "inpaint fill %d is outside 0..3",
                       (int)p->inpaint_fill);
    if (p->inpaint_padding < 0 || p->inpaint_padding > MAX_PADDING)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "inpaint padding %d is outside 0..%d",
                       p->inpaint_padding, MAX_PADDING);
    return GS_OK;
}

void inpaint_plan_free(inpaint_plan *pl)
{
    gi_free(pl->blurred);
    gi_free(pl->image_mask);
    gi_free(pl->overlay);
    gs_image_free(pl->vae_in);
    gi_free(pl->nmask);
    gi_free(pl->keep);
    memset(pl, 0, sizeof *pl);
}

/* images.flatten: RGBA over white (opts.img2img_background_color), as RGB. */
static void flatten(const gs_image *im, uint8_t *rgb)
{
    size_t n = (size_t)im->width * im->height;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = im->pixels + i * im->channels;
        unsigned a = im->channels == 4 ? s[3] : 255;
        for (int c = 0; c < 3; c++) { /* paste(img, mask=img): BLEND(alpha, white, in) */
            unsigned t = 255u * (255 - a) + s[c] * a + 128;
            rgb[i * 3 + c] = (uint8_t)(((t >> 8) + t) >> 8);
        }
    }
}

/* The overlay: init (RGB) pasted through 255 − mask_for_overlay, as RGBA. */
static gs_status make_overlay(inpaint_plan *pl, const uint8_t *rgb, const uint8_t *for_overlay)
{
    size_t n = (size_t)pl->out_w * pl->out_h;
    uint8_t *pre = gi_malloc(n * 4), *inv = gi_malloc(n);
    pl->overlay = gi_malloc(n * 4);
    if (!pre || !inv || !pl->overlay) {
        gi_free(pre);
        gi_free(inv);
        return GS_ERR_NO_MEMORY;
    }
    pil_to_rgba_premul(rgb, 3, n, pre);
    for (size_t i = 0; i < n; i++)
        inv[i] = (uint8_t)(255 - for_overlay[i]);
    pil_paste_masked(pre, inv, n, pl->overlay);
    pil_unpremultiply(pl->overlay, n);
    gi_free(pre);
    gi_free(inv);
    return GS_OK;
}

static gs_status prepare(const gs_params *p, inpaint_plan *pl, gi_error *err)
{
    const gs_image *init = p->init_image;
    int w = p->width, h = p->height, iw = init->width, ih = init->height;
    size_t npix = (size_t)w * h, ninit = (size_t)iw * ih;
    gs_status st = GS_OK;
    uint8_t *rgb = gi_malloc(ninit * 3), *for_overlay = NULL, *at_init = NULL;
    pl->mw = p->mask->width;
    pl->mh = p->mask->height;
    size_t nmask = (size_t)pl->mw * pl->mh;
    pl->blurred = gi_malloc(nmask);
    pl->image_mask = gi_malloc(npix);
    pl->vae_in = image_new(w, h, 3);
    pl->nmask = gi_malloc((size_t)pl->lw * pl->lh * sizeof *pl->nmask);
    pl->keep = gi_malloc((size_t)pl->lw * pl->lh * sizeof *pl->keep);
    if (!rgb || !pl->blurred || !pl->image_mask || !pl->vae_in || !pl->nmask || !pl->keep)
        goto oom;
    flatten(init, rgb);

    mask_to_l(p->mask, pl->blurred);
    if (p->mask_invert)
        for (size_t i = 0; i < nmask; i++)
            pl->blurred[i] = (uint8_t)(255 - pl->blurred[i]);
    if ((st = mask_blur(pl->blurred, pl->mw, pl->mh, p->mask_blur, err)) != GS_OK)
        goto out;

    if (!p->inpaint_full_res) {
        /* whole picture: mask and init to the processing size ("just resize") */
        if ((st = mask_resize_image(0, pl->blurred, pl->mw, pl->mh, 1, w, h, pl->image_mask,
                                    err)) != GS_OK ||
            (st = mask_resize_image(0, rgb, iw, ih, 3, w, h, pl->vae_in->pixels, err)) != GS_OK)
            goto out;
        if (!(for_overlay = gi_malloc(npix)))
            goto oom;
        for (size_t i = 0; i < npix; i++)
            for_overlay[i] = (uint8_t)(pl->image_mask[i] > 127 ? 255 : 2 * pl->image_mask[i]);
        pl->out_w = w;
        pl->out_h = h;
        if (make_overlay(pl, pl->vae_in->pixels, for_overlay) != GS_OK)
            goto oom;
    } else {
        /* only masked: crop in the init image's pixels (A1111 crops in the
           mask's own; a mask of another size is first resized to the init's) */
        if (!(at_init = gi_malloc(ninit)))
            goto oom;
        if ((st = mask_resize_image(0, pl->blurred, pl->mw, pl->mh, 1, iw, ih, at_init, err)) !=
            GS_OK)
            goto out;
        if (!mask_crop_region(at_init, iw, ih, p->inpaint_padding, w, h, pl->crop))
            goto out; /* blank mask: A1111 switches to plain img2img */
        int *c = pl->crop, cw = c[2] - c[0], chh = c[3] - c[1];
        pl->full_res = 1;
        pl->paste_to[0] = c[0];
        pl->paste_to[1] = c[1];
        pl->paste_to[2] = cw;
        pl->paste_to[3] = chh;
        pl->out_w = iw;
        pl->out_h = ih;
        if (make_overlay(pl, rgb, at_init) != GS_OK)
            goto oom;
        uint8_t *cut = gi_malloc((size_t)cw * chh * 3);
        if (!cut)
            goto oom;
        for (int y = 0; y < chh; y++) {
            memcpy(cut + (size_t)y * cw, at_init + (size_t)(c[1] + y) * iw + c[0], (size_t)cw);
        }
        st = mask_resize_image(2, cut, cw, chh, 1, w, h, pl->image_mask, err);
        for (int y = 0; st == GS_OK && y < chh; y++)
            memcpy(cut + (size_t)y * cw * 3, rgb + ((size_t)(c[1] + y) * iw + c[0]) * 3,
                   (size_t)cw * 3);
        if (st == GS_OK)
            st = mask_resize_image(2, cut, cw, chh, 3, w, h, pl->vae_in->pixels, err);
        gi_free(cut);
        if (st != GS_OK)
            goto out;
    }
    pl->fill = (int)p->inpaint_fill;
    if (pl->fill != GS_INPAINT_ORIGINAL &&
        (st = pil_masking_fill(pl->vae_in->pixels, pl->image_mask, w, h, err)) != GS_OK)
        goto out;
    if ((st = mask_latent(pl->image_mask, w, h, pl->lw, pl->lh, 1, pl->nmask, err)) != GS_OK)
        goto out;
    for (size_t i = 0; i < (size_t)pl->lw * pl->lh; i++)
        pl->keep[i] = 1.0f - pl->nmask[i];
    pl->active = 1;
    goto out;
oom:
    st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory preparing the inpainting mask");
out:
    gi_free(rgb);
    gi_free(for_overlay);
    gi_free(at_init);
    return st;
}

gs_status inpaint_prepare(const gs_params *p, inpaint_plan *pl, gi_error *err)
{
    memset(pl, 0, sizeof *pl);
    if (!p->mask)
        return GS_OK;
    pl->w = p->width;
    pl->h = p->height;
    pl->lw = p->width / 8;
    pl->lh = p->height / 8;
    gs_status st = prepare(p, pl, err);
    if (st != GS_OK || !pl->active) {
        inpaint_plan_free(pl);
        return st;
    }
    return GS_OK;
}

static void trace(float *dst, const float *src, size_t n)
{
    if (inpaint_trace_sink && dst)
        memcpy(dst, src, (n < inpaint_trace_sink->n ? n : inpaint_trace_sink->n) * sizeof *dst);
}

gs_status inpaint_fill_latent(const inpaint_plan *pl, float *init, int batch, int ch, uint64_t seed,
                              gi_error *err)
{
    size_t plane = (size_t)pl->lw * pl->lh, n = plane * ch * batch;
    if (inpaint_trace_sink)
        trace(inpaint_trace_sink->encoded, init, n);
    if (pl->fill == GS_INPAINT_LATENT_NOISE) {
        /* one draw of the whole batch: torch's randn fills 16 at a time, so
           the numbers depend on the draw's size */
        float *eps = gi_malloc(n * sizeof *eps);
        if (!eps)
            return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the latent noise");
        gi_rng rng;
        rng_seed(&rng, seed);
        rng_randn(&rng, eps, n);
        for (size_t i = 0; i < n; i++) {
            float nm = pl->nmask[i % plane];
            init[i] = init[i] * (1.0f - nm) + eps[i] * nm;
        }
        gi_free(eps);
    } else if (pl->fill == GS_INPAINT_LATENT_NOTHING) {
        for (size_t i = 0; i < n; i++)
            init[i] *= 1.0f - pl->nmask[i % plane];
    }
    if (inpaint_trace_sink)
        trace(inpaint_trace_sink->init, init, n);
    return GS_OK;
}

void inpaint_blend_final(const inpaint_plan *pl, float *x, const float *init, int batch, int ch)
{
    size_t plane = (size_t)pl->lw * pl->lh, n = plane * ch * batch;
    for (size_t i = 0; i < n; i++) {
        float nm = pl->nmask[i % plane];
        x[i] = x[i] * nm + init[i] * (1.0f - nm);
    }
    if (inpaint_trace_sink)
        trace(inpaint_trace_sink->final, x, n);
}

void inpaint_to_u8(const float *x, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        float v = (x[i] + 1.0f) / 2.0f;
        v = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        out[i] = (uint8_t)(255.0f * v);
    }
}

gs_status inpaint_apply_overlay(const inpaint_plan *pl, gs_image *img, gi_error *err)
{
    size_t n = (size_t)pl->out_w * pl->out_h;
    uint8_t *canvas = gi_calloc(n, 4), *fit = NULL, *rgb = NULL;
    gs_status st = GS_OK;
    if (!canvas)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the overlay");
    if (pl->full_res) {
        /* uncrop: resize_image mode 1 to the crop's size, pasted on transparent */
        int x0 = pl->paste_to[0], y0 = pl->paste_to[1], pw = pl->paste_to[2], ph = pl->paste_to[3];
        if (!(fit = gi_malloc((size_t)pw * ph * 3))) {
            st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the overlay");
            goto out;
        }
        if ((st = mask_resize_image(1, img->pixels, img->width, img->height, 3, pw, ph, fit,
                                    err)) != GS_OK)
            goto out;
        for (int y = 0; y < ph; y++)
            for (int x = 0; x < pw; x++) {
                uint8_t *d = canvas + ((size_t)(y0 + y) * pl->out_w + x0 + x) * 4;
                memcpy(d, fit + ((size_t)y * pw + x) * 3, 3);
                d[3] = 255;
            }
    } else {
        for (size_t i = 0; i < n; i++) {
            memcpy(canvas + i * 4, img->pixels + i * 3, 3);
            canvas[i * 4 + 3] = 255;
        }
    }
    pil_alpha_composite(canvas, pl->overlay, n);
    if (!(rgb = gi_malloc(n * 3))) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the overlay");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(rgb + i * 3, canvas + i * 4, 3);
    gi_free(img->pixels);
    img->pixels = rgb;
    img->width = pl->out_w;
    img->height = pl->out_h;
    img->channels = 3;
out:
    gi_free(canvas);
    gi_free(fit);
    return st;
}

gs_status inpaint_unet_cond(const inpaint_plan *pl, const gs_image *image, int w, int h, int ch,
                            float scale, vae *v, gi_compute *cx, float *out, gi_error *err)
{
    int lw = w / 8, lh = h / 8, active = pl && pl->active;
    size_t npix = (size_t)w * h, nlat = (size_t)lw * lh;
    float *pix = gi_aligned_alloc(npix * 3 * sizeof *pix);
    float *mean = gi_aligned_alloc(nlat * ch * sizeof *mean);
    gs_status st = GS_OK;
    if (!pix || !mean) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the inpainting conditioning");
        goto out;
    }
    for (size_t i = 0; i < npix; i++) {
        /* torch.round(mask / 255): 1 from 128 up (127.5 rounds to even, never met) */
        int masked = !active || pl->image_mask[i] >= 128;
        for (int c = 0; c < 3; c++)
            pix[i * 3 + c] = masked || !image ? 0.0f : image->pixels[i * 3 + c] / 127.5f - 1.0f;
    }
    if ((st = vae_encode(v, cx, pix, 1, h, w, mean, NULL, err)) != GS_OK)
        goto out;
    for (int y = 0; y < lh; y++)
        for (int x = 0; x < lw; x++) {
            size_t l = (size_t)y * lw + x;
            float *o = out + l * (1 + ch);
            /* F.interpolate(mode="nearest") to the latent: pixel (8y, 8x) */
            o[0] = !active || pl->image_mask[(size_t)8 * y * w + 8 * x] >= 128 ? 1.0f : 0.0f;
            for (int c = 0; c < ch; c++)
                o[1 + c] = mean[l * ch + c] * scale;
        }
out:
    gi_aligned_free(pix);
    gi_aligned_free(mean);
    return st;
}
