/*
 * pil_blend - Pillow 9.x's Convert.c (rgbA2rgba, rgba2rgbA), Paste.c
 * (paste_mask_L), AlphaComposite.c and BoxBlur.c, re-derived so A1111's
 * overlay and "fill" come out with the same 8-bit levels.
 */
#include "image/pil_blend.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"

#define SHIFTFORDIV255(a) ((((a) >> 8) + (a)) >> 8)

static unsigned div255(unsigned a)
{
    unsigned t = a + 128;
    return ((t >> 8) + t) >> 8;
}

void pil_to_rgba_premul(const uint8_t *src, int channels, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++) {
        const uint8_t *s = src + i * channels;
        unsigned a = channels == 4 ? s[3] : 255;
        for (int c = 0; c < 3; c++)
            out[i * 4 + c] = (uint8_t)div255(s[c] * a);
        out[i * 4 + 3] = (uint8_t)a;
    }
}

void pil_unpremultiply(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++, p += 4) {
        unsigned a = p[3];
        if (a == 255 || a == 0)
            continue;
        for (int c = 0; c < 3; c++) {
            unsigned v = 255u * p[c] / a;
            p[c] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

void pil_paste_masked(const uint8_t *src, const uint8_t *mask, size_t n, uint8_t *out)
{
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 4; c++) /* BLEND(mask, 0, in): the canvas is zeros */
            out[i * 4 + c] = (uint8_t)div255((unsigned)src[i * 4 + c] * mask[i]);
}

void pil_alpha_composite(uint8_t *dst, const uint8_t *src, size_t n)
{
    enum { PREC = 7 };
    for (size_t i = 0; i < n; i++, dst += 4, src += 4) {
        if (src[3] == 0)
            continue;
        unsigned blend = dst[3] * (255u - src[3]);
        unsigned outa255 = src[3] * 255u + blend;
        unsigned coef1 = src[3] * 255u * 255u * (1u << PREC) / outa255;
        unsigned coef2 = 255u * (1u << PREC) - coef1;
        for (int c = 0; c < 3; c++) {
            unsigned t = src[c] * coef1 + dst[c] * coef2 + (0x80u << PREC);
            dst[c] = (uint8_t)(SHIFTFORDIV255(t) >> PREC);
        }
        dst[3] = (uint8_t)SHIFTFORDIV255(outa255 + 0x80);
    }
}

/* _gaussian_blur_radius: the extended box of Gwosdek et al., in float as PIL. */
static float box_radius(float radius, int passes)
{
    float sigma2 = radius * radius / passes;
    float L = (float)sqrt(12.0 * sigma2 + 1.0);
    float l = (float)floor((L - 1.0) / 2.0);
    float a = (2 * l + 1) * (l * (l + 1) - 3 * sigma2);
    a /= 6 * (sigma2 - (l + 1) * (l + 1));
    return l + a;
}

/* ImagingLineBoxBlur32 on one line of 4-channel pixels, in -> out. */
static void line_box_blur(uint8_t (*out)[4], const uint8_t (*in)[4], int lastx, int radius,
                          int edge_a, int edge_b, uint32_t ww, uint32_t fw)
{
    uint32_t acc[4], bulk[4];
    int x, c;
#define MOVE_ACC(sub, add)                                                                         \
    for (c = 0; c < 4; c++)                                                                        \
    acc[c] += in[add][c] - in[sub][c]
#define ADD_FAR(left, right)                                                                       \
    for (c = 0; c < 4; c++)                                                                        \
    bulk[c] = acc[c] * ww + (in[left][c] + in[right][c]) * fw
#define SAVE(x)                                                                                    \
    for (c = 0; c < 4; c++)                                                                        \
    out[x][c] = (uint8_t)((bulk[c] + (1 << 23)) >> 24)
    for (c = 0; c < 4; c++)
        acc[c] = in[0][c] * (uint32_t)(radius + 1);
    for (x = 0; x < edge_a - 1; x++)
        for (c = 0; c < 4; c++)
            acc[c] += in[x][c];
    for (c = 0; c < 4; c++)
        acc[c] += in[lastx][c] * (uint32_t)(radius - edge_a + 1);
    if (edge_a <= edge_b) {
        for (x = 0; x < edge_a; x++) {
            MOVE_ACC(0, x + radius);
            ADD_FAR(0, x + radius + 1);
            SAVE(x);
        }
        for (x = edge_a; x < edge_b; x++) {
            MOVE_ACC(x - radius - 1, x + radius);
            ADD_FAR(x - radius - 1, x + radius + 1);
            SAVE(x);
        }
        for (x = edge_b; x <= lastx; x++) {
            MOVE_ACC(x - radius - 1, lastx);
            ADD_FAR(x - radius - 1, lastx);
            SAVE(x);
        }
    } else {
        for (x = 0; x < edge_b; x++) {
            MOVE_ACC(0, x + radius);
            ADD_FAR(0, x + radius + 1);
            SAVE(x);
        }
        for (x = edge_b; x < edge_a; x++) {
            MOVE_ACC(0, lastx);
            ADD_FAR(0, lastx);
            SAVE(x);
        }
        for (x = edge_a; x <= lastx; x++) {
            MOVE_ACC(x - radius - 1, lastx);
            ADD_FAR(x - radius - 1, lastx);
            SAVE(x);
        }
    }
#undef MOVE_ACC
#undef ADD_FAR
#undef SAVE
}

/* ImagingHorizontalBoxBlur, in place on w x h RGBA; line: w pixels of scratch. */
static void horizontal_box_blur(uint8_t *im, int w, int h, float fradius, uint8_t (*line)[4])
{
    int radius = (int)fradius;
    uint32_t ww = (uint32_t)((float)(1u << 24) / (fradius * 2 + 1));
    uint32_t fw = ((1u << 24) - (uint32_t)(radius * 2 + 1) * ww) / 2;
    int edge_a = radius + 1 < w ? radius + 1 : w;
    int edge_b = w - radius - 1 > 0 ? w - radius - 1 : 0;
    for (int y = 0; y < h; y++) {
        uint8_t(*row)[4] = (uint8_t(*)[4])(im + (size_t)y * w * 4);
        line_box_blur(line, (const uint8_t(*)[4])row, w - 1, radius, edge_a, edge_b, ww, fw);
        memcpy(row, line, (size_t)w * 4);
    }
}

static void transpose(const uint8_t *src, int w, int h, uint8_t *dst)
{
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            memcpy(dst + ((size_t)x * h + y) * 4, src + ((size_t)y * w + x) * 4, 4);
}

gs_status pil_gaussian_blur(uint8_t *im, int w, int h, float radius, gi_error *err)
{
    if (radius == 0)
        return GS_OK;
    float r = box_radius(radius, 3);
    if (r == 0)
        return GS_OK;
    int side = w > h ? w : h;
    uint8_t(*line)[4] = gi_malloc((size_t)side * 4);
    uint8_t *t = gi_malloc((size_t)w * h * 4);
    if (!line || !t) {
        gi_free(line);
        gi_free(t);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory blurring an image");
    }
    for (int i = 0; i < 3; i++)
        horizontal_box_blur(im, w, h, r, line);
    transpose(im, w, h, t);
    for (int i = 0; i < 3; i++)
        horizontal_box_blur(t, h, w, r, line);
    transpose(t, h, w, im);
    gi_free(line);
    gi_free(t);
    return GS_OK;
}

gs_status pil_masking_fill(uint8_t *rgb, const uint8_t *mask, int w, int h, gi_error *err)
{
    static const struct {
        float radius;
        int repeats;
    } steps[] = {{256, 1}, {64, 1}, {16, 2}, {4, 4}, {2, 2}, {0, 1}};
    size_t n = (size_t)w * h;
    uint8_t *masked = gi_malloc(n * 4), *blurred = gi_malloc(n * 4), *inv = gi_malloc(n);
    uint8_t *mod = gi_calloc(n, 4); /* Image.new('RGBA'): transparent black */
    gs_status st = GS_OK;
    if (!masked || !blurred || !inv || !mod) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory filling the masked area");
        goto out;
    }
    pil_to_rgba_premul(rgb, 3, n, blurred);
    for (size_t i = 0; i < n; i++)
        inv[i] = (uint8_t)(255 - mask[i]);
    pil_paste_masked(blurred, inv, n, masked);
    for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
        memcpy(blurred, masked, n * 4);
        if ((st = pil_gaussian_blur(blurred, w, h, steps[s].radius, err)) != GS_OK)
            goto out;
        pil_unpremultiply(blurred, n);
        for (int r = 0; r < steps[s].repeats; r++)
            pil_alpha_composite(mod, blurred, n);
    }
    for (size_t i = 0; i < n; i++)
        memcpy(rgb + i * 3, mod + i * 4, 3);
out:
    gi_free(masked);
    gi_free(blurred);
    gi_free(inv);
    gi_free(mod);
    return st;
}
