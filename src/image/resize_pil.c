/*
 * resize_pil - a transcription of Pillow's Resample.c (ImagingResampleInner,
 * precompute_coeffs, normalize_coeffs_8bpc, ImagingResample{Horizontal,
 * Vertical}_8bpc) for the LANCZOS filter on RGB.
 */
#include "image/resize_pil.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "image/image_util.h"

#define PIL_PRECISION_BITS (32 - 8 - 2)
#define LANCZOS_SUPPORT 3.0

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double lanczos(double x)
{
    return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0;
}

typedef struct coeffs {
    int ksize;
    int *bounds; /* [out][2]: first source index, taps */
    int *kk;     /* [out][ksize] fixed-point weights */
} coeffs;

static int coeffs_build(coeffs *c, int in_size, int out_size)
{
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = LANCZOS_SUPPORT * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = gi_malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->kk = gi_malloc((size_t)out_size * c->ksize * sizeof *c->kk);
    double *k = gi_malloc((size_t)c->ksize * sizeof *k);
    if (!c->bounds || !c->kk || !k) {
        gi_free(k);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5); /* Pillow's "round the value" */
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        int x;
        for (x = 0; x < xmax; x++) {
            double w = lanczos((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0)
                k[x] /= ww;
        for (; x < c->ksize; x++)
            k[x] = 0;
        int *kk = c->kk + (size_t)xx * c->ksize;
        for (x = 0; x < c->ksize; x++)
            kk[x] = k[x] < 0 ? (int)(-0.5 + k[x] * (1 << PIL_PRECISION_BITS))
                             : (int)(0.5 + k[x] * (1 << PIL_PRECISION_BITS));
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    gi_free(k);
    return 0;
}

static void coeffs_free(coeffs *c)
{
    gi_free(c->bounds);
    gi_free(c->kk);
}

static uint8_t clip8(int in)
{
    if (in >= (1 << PIL_PRECISION_BITS) << 8)
        return 255;
    if (in <= 0)
        return 0;
    return (uint8_t)(in >> PIL_PRECISION_BITS);
}

/* One pass along x (step 1 pixel) or y (step one row) of an RGB image. */
static void pass_h(const uint8_t *src, int sw, int sc, int h, uint8_t *dst, int w, const coeffs *c)
{
    for (int y = 0; y < h; y++)
        for (int xx = 0; xx < w; xx++) {
            int xmin = c->bounds[xx * 2], xmax = c->bounds[xx * 2 + 1];
            const int *k = c->kk + (size_t)xx * c->ksize;
            for (int ch = 0; ch < 3; ch++) {
                int ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++)
                    ss += src[((size_t)y * sw + x + xmin) * sc + ch] * k[x];
                dst[((size_t)y * w + xx) * 3 + ch] = clip8(ss);
            }
        }
}

static void pass_v(const uint8_t *src, int sc, int w, uint8_t *dst, int h, const coeffs *c)
{
    for (int yy = 0; yy < h; yy++) {
        int ymin = c->bounds[yy * 2], ymax = c->bounds[yy * 2 + 1];
        const int *k = c->kk + (size_t)yy * c->ksize;
        for (int xx = 0; xx < w; xx++)
            for (int ch = 0; ch < 3; ch++) {
                int ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int y = 0; y < ymax; y++)
                    ss += src[((size_t)(y + ymin) * w + xx) * sc + ch] * k[y];
                dst[((size_t)yy * w + xx) * 3 + ch] = clip8(ss);
            }
    }
}

gs_status image_resize_pil_lanczos(const gs_image *src, int w, int h, gs_image **out, gi_error *err)
{
    *out = NULL;
    int sw = src->width, sh = src->height, sc = src->channels;
    gs_image *dst = image_new(w, h, 3), *mid = NULL;
    coeffs cx = {0}, cy = {0};
    gs_status st = GS_OK;
    if (!dst || (sw != w && coeffs_build(&cx, sw, w)) || (sh != h && coeffs_build(&cy, sh, h))) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
        goto out;
    }
    if (sw == w && sh == h) {
        for (size_t p = 0; p < (size_t)w * h; p++)
            memcpy(dst->pixels + 3 * p, src->pixels + (size_t)sc * p, 3);
    } else if (sh == h) {
        pass_h(src->pixels, sw, sc, sh, dst->pixels, w, &cx);
    } else if (sw == w) {
        pass_v(src->pixels, sc, w, dst->pixels, h, &cy);
    } else {
        /* Pillow keeps the intermediate as an 8-bit image: its rounding is part of the result */
        if (!(mid = image_new(w, sh, 3))) {
            st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
            goto out;
        }
        pass_h(src->pixels, sw, sc, sh, mid->pixels, w, &cx);
        pass_v(mid->pixels, 3, w, dst->pixels, h, &cy);
    }
    *out = dst;
    dst = NULL;
out:
    coeffs_free(&cx);
    coeffs_free(&cy);
    gs_image_free(mid);
    gs_image_free(dst);
    return st;
}
