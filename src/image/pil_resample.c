/*
 * pil_resample - Pillow 9.x's ImagingResample, 8 bits per channel: weights from
 * precompute_coeffs (support widened by the scale when shrinking), normalised,
 * then quantised to 22 fractional bits; each pass accumulates in integers from
 * a rounding half and clips. The two passes keep PIL's order (horizontal, then
 * vertical) and its 8-bit intermediate, which is what makes the levels exact.
 */
#include "image/pil_resample.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"

#define PRECISION_BITS (32 - 8 - 2)

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double lanczos(double x)
{
    if (-3.0 <= x && x < 3.0)
        return sinc(x) * sinc(x / 3);
    return 0.0;
}

static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

typedef struct coeffs {
    int ksize;
    int *bounds; /* [out][2]: first source index, count */
    int *k;      /* [out][ksize], fixed point */
} coeffs;

static int coeffs_build(coeffs *c, int in_size, double in0, double in1, int out_size, pil_filter f)
{
    double support0 = f == PIL_LANCZOS ? 3.0 : 2.0;
    double scale = (in1 - in0) / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = support0 * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->bounds = gi_malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->k = gi_malloc((size_t)out_size * c->ksize * sizeof *c->k);
    double *pre = gi_malloc((size_t)c->ksize * sizeof *pre);
    if (!c->bounds || !c->k || !pre) {
        gi_free(pre);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = in0 + (xx + 0.5) * scale;
        double ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5); /* C truncation, as PIL */
        if (xmin < 0)
            xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size)
            xmax = in_size;
        xmax -= xmin;
        int x;
        for (x = 0; x < xmax; x++) {
            double v = (x + xmin - center + 0.5) * ss;
            double w = f == PIL_LANCZOS ? lanczos(v) : bicubic(v);
            pre[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0)
                pre[x] /= ww;
        int *k = c->k + (size_t)xx * c->ksize;
        for (x = 0; x < c->ksize; x++) {
            double v = x < xmax ? pre[x] : 0.0;
            k[x] = v < 0 ? (int)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int)(0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[xx * 2] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    gi_free(pre);
    return 0;
}

static void coeffs_free(coeffs *c)
{
    gi_free(c->bounds);
    gi_free(c->k);
}

static uint8_t clip8(int in)
{
    if (in >= (1 << PRECISION_BITS << 8))
        return 255;
    if (in <= 0)
        return 0;
    return (uint8_t)(in >> PRECISION_BITS);
}

/* One pass along x (stride_x apart) for `lines` lines (stride_line apart). */
static void pass(const uint8_t *src, size_t src_x, size_t src_line, uint8_t *dst, size_t dst_x,
                 size_t dst_line, int lines, int out_size, int ch, const coeffs *c)
{
    for (int l = 0; l < lines; l++)
        for (int xx = 0; xx < out_size; xx++) {
            int xmin = c->bounds[xx * 2], xmax = c->bounds[xx * 2 + 1];
            const int *k = c->k + (size_t)xx * c->ksize;
            for (int b = 0; b < ch; b++) {
                int ss = 1 << (PRECISION_BITS - 1);
                for (int x = 0; x < xmax; x++)
                    ss += src[l * src_line + (size_t)(x + xmin) * src_x + b] * k[x];
                dst[l * dst_line + (size_t)xx * dst_x + b] = clip8(ss);
            }
        }
}

gs_status pil_resize(const uint8_t *src, int sw, int sh, int channels, const double *box, int w,
                     int h, pil_filter f, uint8_t *out, gi_error *err)
{
    double whole[4] = {0, 0, sw, sh};
    const double *bx = box ? box : whole;
    int need_h = w != sw || bx[0] != 0 || bx[2] != w;
    int need_v = h != sh || bx[1] != 0 || bx[3] != h;
    size_t ch = (size_t)channels;
    if (!need_h && !need_v) {
        memcpy(out, src, (size_t)w * h * ch);
        return GS_OK;
    }
    coeffs cx = {0}, cy = {0};
    uint8_t *mid = NULL;
    gs_status st = GS_OK;
    if (coeffs_build(&cx, sw, bx[0], bx[2], w, f) || coeffs_build(&cy, sh, bx[1], bx[3], h, f)) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
        goto out;
    }
    const uint8_t *vsrc = src;
    int vw = sw;
    if (need_h) {
        mid = gi_malloc((size_t)w * sh * ch);
        if (!mid) {
            st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
            goto out;
        }
        pass(src, ch, (size_t)sw * ch, mid, ch, (size_t)w * ch, sh, w, channels, &cx);
        vsrc = mid;
        vw = w;
    }
    if (need_v)
        /* columns as lines: x steps a row, a line steps a pixel */
        pass(vsrc, (size_t)vw * ch, ch, out, (size_t)w * ch, ch, w, h, channels, &cy);
    else
        memcpy(out, vsrc, (size_t)w * h * ch);
out:
    gi_free(mid);
    coeffs_free(&cx);
    coeffs_free(&cy);
    return st;
}
