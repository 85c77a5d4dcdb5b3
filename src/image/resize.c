/*
 * resize - separable Lanczos-3 resampling in float, horizontal pass then
 * vertical. Like PIL, the kernel support widens by the scale when shrinking
 * (antialiasing) and the weights of each output pixel are normalised.
 */
#include "image/resize.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "image/image_util.h"

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x *= M_PI;
    return sin(x) / x;
}

static double lanczos3(double x)
{
    return (x > -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3.0) : 0.0;
}

typedef struct taps {
    int *first;    /* [out] first source index */
    int *count;    /* [out] taps */
    float *weight; /* [out * max] */
    int max;
} taps;

static int taps_build(taps *t, int in, int out)
{
    double scale = (double)in / out;
    double support = 3.0 * (scale > 1.0 ? scale : 1.0);
    double fscale = scale > 1.0 ? scale : 1.0;
    t->max = (int)ceil(support) * 2 + 1;
    t->first = gi_malloc((size_t)out * sizeof *t->first);
    t->count = gi_malloc((size_t)out * sizeof *t->count);
    t->weight = gi_malloc((size_t)out * t->max * sizeof *t->weight);
    if (!t->first || !t->count || !t->weight)
        return -1;
    for (int o = 0; o < out; o++) {
        double center = (o + 0.5) * scale;
        int lo = (int)floor(center - support + 0.5), hi = (int)floor(center + support + 0.5);
        lo = lo < 0 ? 0 : lo;
        hi = hi > in ? in : hi;
        if (hi - lo > t->max)
            hi = lo + t->max;
        double sum = 0;
        float *w = t->weight + (size_t)o * t->max;
        for (int i = lo; i < hi; i++) {
            double v = lanczos3((i + 0.5 - center) / fscale);
            w[i - lo] = (float)v;
            sum += v;
        }
        for (int i = lo; i < hi; i++)
            w[i - lo] = (float)(sum != 0 ? w[i - lo] / sum : 0);
        t->first[o] = lo;
        t->count[o] = hi - lo;
    }
    return 0;
}

static void taps_free(taps *t)
{
    gi_free(t->first);
    gi_free(t->count);
    gi_free(t->weight);
}

static uint8_t clamp_u8(float v)
{
    v = roundf(v);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

gs_status image_resize_rgb(const gs_image *src, int w, int h, gs_image **out, gi_error *err)
{
    *out = NULL;
    gs_image *dst = image_new(w, h, 3);
    if (!dst)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
    int sw = src->width, sh = src->height, sc = src->channels;
    if (sw == w && sh == h) {
        for (size_t p = 0; p < (size_t)w * h; p++)
            memcpy(dst->pixels + 3 * p, src->pixels + (size_t)sc * p, 3);
        *out = dst;
        return GS_OK;
    }
    taps tx = {0}, ty = {0};
    float *mid = gi_malloc((size_t)sh * w * 3 * sizeof *mid); /* [sh, w, 3] */
    if (!mid || taps_build(&tx, sw, w) || taps_build(&ty, sh, h)) {
        gi_free(mid);
        taps_free(&tx);
        taps_free(&ty);
        gs_image_free(dst);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
    }
    for (int y = 0; y < sh; y++)
        for (int x = 0; x < w; x++) {
            float acc[3] = {0, 0, 0};
            const float *wt = tx.weight + (size_t)x * tx.max;
            for (int k = 0; k < tx.count[x]; k++) {
                const uint8_t *px = src->pixels + ((size_t)y * sw + tx.first[x] + k) * sc;
                for (int c = 0; c < 3; c++)
                    acc[c] += wt[k] * px[c];
            }
            memcpy(mid + ((size_t)y * w + x) * 3, acc, sizeof acc);
        }
    for (int y = 0; y < h; y++) {
        const float *wt = ty.weight + (size_t)y * ty.max;
        for (int x = 0; x < w; x++) {
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < ty.count[y]; k++) {
                const float *px = mid + ((size_t)(ty.first[y] + k) * w + x) * 3;
                for (int c = 0; c < 3; c++)
                    acc[c] += wt[k] * px[c];
            }
            for (int c = 0; c < 3; c++)
                dst->pixels[((size_t)y * w + x) * 3 + c] = clamp_u8(acc[c]);
        }
    }
    gi_free(mid);
    taps_free(&tx);
    taps_free(&ty);
    *out = dst;
    return GS_OK;
}
