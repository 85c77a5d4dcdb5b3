/*
 * hires_upscale - the hires fix's two kinds of enlargement.
 *
 * Latent: torch.nn.functional.interpolate(x, size=(oh, ow), mode, antialias)
 * with align_corners unset (False), transcribed from ATen's CPU kernels
 * (UpSample.h, UpSampleKernel.cpp): scale = in/out, bilinear and bicubic
 * (A = −0.75, indices clamped) as one nested sum per output (width taps
 * inside, height outside); the antialiased modes as two separable passes
 * (width, then height) of normalised triangle or a = −0.5 cubic weights
 * widened by the scale; nearest floor(i·scale) and nearest-exact
 * floor((i+0.5)·scale) with ATen's float scale. Weights and sums are double,
 * rounded once: the fixtures are torch in float64, and a float sum would
 * add an ulp of its own.
 *
 * Pixels: A1111's images.resize_image(0, ...) with the Lanczos upscaler
 * (Upscaler.upscale, UpscalerLanczos.do_upscale), every resize PIL's LANCZOS.
 */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "image/image_util.h"
#include "image/resize_pil.h"
#include "pipeline/hires.h"

#define CUBIC_A -0.75
#define AA_CUBIC_A -0.5

static double cubic1(double x, double a)
{
    return ((a + 2) * x - (a + 3)) * x * x + 1;
}

static double cubic2(double x, double a)
{
    return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

/* Up to 4 source indices and weights of output i along one axis (plain modes). */
static int plain_taps(gs_hires_upscaler mode, int i, int in, int out, int *idx, double *w)
{
    if (mode == GS_HIRES_LATENT_NEAREST || mode == GS_HIRES_LATENT_NEAREST_EXACT) {
        float scale = (float)in / (float)out; /* ATen: a float scale, floorf */
        float src = mode == GS_HIRES_LATENT_NEAREST ? (float)i * scale : ((float)i + 0.5f) * scale;
        int k = (int)floorf(src);
        if (out == 2 * in && mode == GS_HIRES_LATENT_NEAREST)
            k = i >> 1; /* ATen's shortcut, the same value */
        idx[0] = k < in - 1 ? k : in - 1;
        w[0] = 1.0;
        return 1;
    }
    double scale = (double)in / out;
    double real = scale * (i + 0.5) - 0.5;
    if (mode == GS_HIRES_LATENT) {
        if (real < 0)
            real = 0;
        int k = (int)floor(real);
        if (k > in - 1)
            k = in - 1;
        double l = real - k;
        l = l < 0 ? 0 : l > 1 ? 1 : l;
        idx[0] = k;
        idx[1] = k + (k < in - 1);
        w[0] = 1.0 - l;
        w[1] = l;
        return 2;
    }
    /* bicubic */
    int k = (int)floor(real);
    if (k > in - 1)
        k = in - 1;
    double t = real - k;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    w[0] = cubic2(t + 1.0, CUBIC_A);
    w[1] = cubic1(t, CUBIC_A);
    w[2] = cubic1(1.0 - t, CUBIC_A);
    w[3] = cubic2(2.0 - t, CUBIC_A);
    for (int j = 0; j < 4; j++) {
        int s = k - 1 + j;
        idx[j] = s < 0 ? 0 : s > in - 1 ? in - 1 : s;
    }
    return 4;
}

static void resize_plain(const float *src, int planes, int h, int w, float *dst, int oh, int ow,
                         gs_hires_upscaler mode)
{
    int ix[4], iy[4];
    double wx[4], wy[4];
    for (int p = 0; p < planes; p++) {
        const float *s = src + (size_t)p * h * w;
        float *d = dst + (size_t)p * oh * ow;
        for (int y = 0; y < oh; y++) {
            int ny = plain_taps(mode, y, h, oh, iy, wy);
            for (int x = 0; x < ow; x++) {
                int nx = plain_taps(mode, x, w, ow, ix, wx);
                double acc = 0;
                for (int j = 0; j < ny; j++) {
                    const float *row = s + (size_t)iy[j] * w;
                    double t = row[ix[0]] * wx[0];
                    for (int k = 1; k < nx; k++)
                        t += row[ix[k]] * wx[k];
                    acc += t * wy[j];
                }
                d[(size_t)y * ow + x] = (float)acc;
            }
        }
    }
}

static double aa_filter(double x, int cubic)
{
    x = fabs(x);
    if (!cubic)
        return x < 1.0 ? 1.0 - x : 0.0;
    if (x < 1.0)
        return ((AA_CUBIC_A + 2) * x - (AA_CUBIC_A + 3)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * AA_CUBIC_A;
    return 0.0;
}

/* One antialiased pass along an axis: n lines of `in` samples `stride` apart
   (lines `line` apart) into lines of `out`. */
static gs_status aa_pass(const double *src, double *dst, int lines, int in, int out,
                         size_t s_stride, size_t s_line, size_t d_stride, size_t d_line, int cubic,
                         gi_error *err)
{
    double scale = (double)in / out;
    double support = (cubic ? 2.0 : 1.0) * (scale >= 1.0 ? scale : 1.0);
    double invscale = scale >= 1.0 ? 1.0 / scale : 1.0;
    int max = (int)ceil(support) * 2 + 1;
    double *wt = gi_malloc((size_t)max * sizeof *wt);
    if (!wt)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory upscaling a latent");
    for (int o = 0; o < out; o++) {
        double center = scale * (o + 0.5), total = 0;
        int xmin = (int)(center - support + 0.5);
        xmin = xmin < 0 ? 0 : xmin;
        int xmax = (int)(center + support + 0.5);
        int n = (xmax < in ? xmax : in) - xmin;
        if (n > max)
            n = max;
        for (int j = 0; j < n; j++) {
            wt[j] = aa_filter((j + xmin - center + 0.5) * invscale, cubic);
            total += wt[j];
        }
        for (int j = 0; j < n; j++)
            if (total != 0)
                wt[j] /= total;
        for (int l = 0; l < lines; l++) {
            const double *s = src + (size_t)l * s_line + (size_t)xmin * s_stride;
            double acc = s[0] * wt[0];
            for (int j = 1; j < n; j++)
                acc += s[(size_t)j * s_stride] * wt[j];
            dst[(size_t)l * d_line + (size_t)o * d_stride] = acc;
        }
    }
    gi_free(wt);
    return GS_OK;
}

gs_status hires_latent_resize(const float *src, int planes, int h, int w, float *dst, int oh,
                              int ow, gs_hires_upscaler mode, gi_error *err)
{
    if (mode != GS_HIRES_LATENT_ANTIALIASED && mode != GS_HIRES_LATENT_BICUBIC_ANTIALIASED) {
        resize_plain(src, planes, h, w, dst, oh, ow, mode);
        return GS_OK;
    }
    int cubic = mode == GS_HIRES_LATENT_BICUBIC_ANTIALIASED;
    size_t n_in = (size_t)planes * h * w, n_out = (size_t)planes * oh * ow;
    double *in = gi_malloc(n_in * sizeof *in);
    double *mid = gi_malloc((size_t)planes * h * ow * sizeof *mid); /* width first, as ATen */
    double *out = gi_malloc(n_out * sizeof *out);
    gs_status st = GS_OK;
    if (!in || !mid || !out) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory upscaling a latent");
        goto out;
    }
    for (size_t i = 0; i < n_in; i++)
        in[i] = src[i];
    st = aa_pass(in, mid, planes * h, w, ow, 1, (size_t)w, 1, (size_t)ow, cubic, err);
    for (int p = 0; st == GS_OK && p < planes; p++)
        st = aa_pass(mid + (size_t)p * h * ow, out + (size_t)p * oh * ow, ow, h, oh, (size_t)ow, 1,
                     (size_t)ow, 1, cubic, err);
    for (size_t i = 0; st == GS_OK && i < n_out; i++)
        dst[i] = (float)out[i];
out:
    gi_free(in);
    gi_free(mid);
    gi_free(out);
    return st;
}

/* PIL resize to w x h unless the image already is that size (then a copy). */
static gs_status resize_to(gs_image **img, int w, int h, gi_error *err)
{
    if ((*img)->width == w && (*img)->height == h)
        return GS_OK;
    gs_image *next;
    gs_status st = image_resize_pil_lanczos(*img, w, h, &next, err);
    if (st != GS_OK)
        return st;
    gs_image_free(*img);
    *img = next;
    return GS_OK;
}

gs_status hires_pixel_upscale(const gs_image *lowres, int w, int h, gs_image **out, gi_error *err)
{
    *out = NULL;
    gs_image *img = NULL;
    gs_status st = image_resize_pil_lanczos(lowres, lowres->width, lowres->height, &img, err);
    if (st != GS_OK)
        return st;
    double scale = fmax((double)w / lowres->width, (double)h / lowres->height);
    if (scale > 1.0) {
        /* Upscaler.upscale: dest = int((size·scale) // 8 · 8); UpscalerLanczos
           resizes to int(size·scale) once (the loop stops when it reaches dest) */
        int dest_w = (int)(floor(lowres->width * scale / 8) * 8);
        int dest_h = (int)(floor(lowres->height * scale / 8) * 8);
        if (img->width < dest_w || img->height < dest_h)
            st = resize_to(&img, (int)(img->width * scale), (int)(img->height * scale), err);
        if (st == GS_OK)
            st = resize_to(&img, dest_w, dest_h, err);
    }
    if (st == GS_OK)
        st = resize_to(&img, w, h, err);
    if (st != GS_OK) {
        gs_image_free(img);
        return st;
    }
    *out = img;
    return GS_OK;
}
