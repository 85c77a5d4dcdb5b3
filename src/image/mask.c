/*
 * mask - the mask steps of A1111's img2img-with-mask. The blur follows
 * OpenCV 4.x's GaussianBlur for CV_8U (getGaussianKernelBitExact, then
 * fixedSmoothInvoker): a kernel of ufixedpoint16 (8 fractional bits) quantised
 * with error diffusion from the outer taps inward (the centre takes the rest), a horizontal pass
 * that keeps the 8.8 sum and a vertical pass that rounds it back; with the other direction's kernel
 * [1.0] each of A1111's two calls is out = (Σ k·in + 128) >> 8.
 */
#include "image/mask.h"

#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "image/pil_resample.h"

void mask_to_l(const gs_image *m, uint8_t *out)
{
    size_t n = (size_t)m->width * m->height;
    int c = m->channels, alpha = 0;
    if (c == 4)
        for (size_t i = 0; i < n && !alpha; i++)
            alpha = m->pixels[i * 4 + 3] != 255;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *px = m->pixels + i * c;
        if (alpha)
            out[i] = px[3] > 128 ? 255 : 0;
        else if (c == 1)
            out[i] = px[0];
        else
            out[i] = (uint8_t)((px[0] * 19595u + px[1] * 38470u + px[2] * 7471u + 0x8000u) >> 16);
    }
}

int mask_blur_kernel(int blur, int *out, int max)
{
    int n = 2 * (int)(2.5 * blur + 0.5) + 1;
    double values[MASK_MAX_KERNEL / 2], sum = 0;
    if (n > max || n > MASK_MAX_KERNEL)
        return 0;
    double sigma = blur, scale2 = -0.125 / (sigma * sigma);
    int half = (n - 1) / 2;
    for (int i = 0, x = 1 - n; i < half; i++, x += 2) {
        values[i] = exp((double)(x * x) * scale2);
        sum += values[i];
    }
    sum = sum * 2 + 1;
    /* getGaussianKernelFixedPoint_ED: each outer tap rounded with the error
       of the ones before it carried inward; the centre takes the rest */
    double mul = 1.0 / sum, carry = 0;
    int total = 0;
    for (int i = 0; i < half; i++) {
        double adj = values[i] * mul * 256 + carry;
        int t = (int)rint(adj); /* cvRound: ties to even */
        carry = adj - t;
        out[i] = out[n - 1 - i] = t;
        total += t;
    }
    out[half] = 256 - 2 * total;
    return n;
}

/* OpenCV's borderInterpolate for BORDER_REFLECT_101 (gfedcb|abcdefgh|gfedcba). */
static int reflect101(int p, int len)
{
    if (len == 1)
        return 0;
    while ((unsigned)p >= (unsigned)len)
        p = p < 0 ? -p : 2 * len - 2 - p;
    return p;
}

static void blur_lines(const uint8_t *src, uint8_t *dst, int len, size_t step, int lines,
                       size_t line_step, const int *k, int n)
{
    int half = n / 2;
    for (int l = 0; l < lines; l++) {
        const uint8_t *s = src + l * line_step;
        for (int x = 0; x < len; x++) {
            unsigned acc = 128;
            for (int i = 0; i < n; i++)
                acc += (unsigned)k[i] * s[(size_t)reflect101(x + i - half, len) * step];
            acc >>= 8;
            dst[l * line_step + x * step] = (uint8_t)(acc > 255 ? 255 : acc);
        }
    }
}

gs_status mask_blur(uint8_t *m, int w, int h, int blur, gi_error *err)
{
    if (blur <= 0)
        return GS_OK;
    int k[MASK_MAX_KERNEL];
    int n = mask_blur_kernel(blur, k, MASK_MAX_KERNEL);
    if (!n)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "mask blur %d is too large", blur);
    uint8_t *tmp = gi_malloc((size_t)w * h);
    if (!tmp)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory blurring the mask");
    /* OpenCV leaves a direction alone when the image is one pixel across it */
    if (w > 1)
        blur_lines(m, tmp, w, 1, h, (size_t)w, k, n);
    else
        memcpy(tmp, m, (size_t)w * h);
    if (h > 1)
        blur_lines(tmp, m, h, (size_t)w, w, 1, k, n);
    else
        memcpy(m, tmp, (size_t)w * h);
    gi_free(tmp);
    return GS_OK;
}

int mask_crop_region(const uint8_t *m, int w, int h, int pad, int pw, int ph, int box[4])
{
    int x1 = w, y1 = h, x2 = 0, y2 = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            if (m[(size_t)y * w + x]) {
                x1 = x < x1 ? x : x1;
                y1 = y < y1 ? y : y1;
                x2 = x + 1 > x2 ? x + 1 : x2;
                y2 = y + 1 > y2 ? y + 1 : y2;
            }
    if (x2 == 0)
        return 0;
    if (pad) {
        x1 = x1 - pad > 0 ? x1 - pad : 0;
        y1 = y1 - pad > 0 ? y1 - pad : 0;
        x2 = x2 + pad < w ? x2 + pad : w;
        y2 = y2 + pad < h ? y2 + pad : h;
    }
    /* expand_crop_region; Python's // floors, int() truncates */
    double ratio_crop = (double)(x2 - x1) / (y2 - y1), ratio_proc = (double)pw / ph;
    if (ratio_crop > ratio_proc) {
        int diff = (int)((x2 - x1) / ratio_proc - (y2 - y1));
        int lo = (int)floor(diff / 2.0);
        y1 -= lo;
        y2 += diff - lo;
        if (y2 >= h) {
            y1 -= y2 - h;
            y2 = h;
        }
        if (y1 < 0) {
            y2 -= y1;
            y1 = 0;
        }
        if (y2 >= h)
            y2 = h;
    } else {
        int diff = (int)((y2 - y1) * ratio_proc - (x2 - x1));
        int lo = (int)floor(diff / 2.0);
        x1 -= lo;
        x2 += diff - lo;
        if (x2 >= w) {
            x1 -= x2 - w;
            x2 = w;
        }
        if (x1 < 0) {
            x2 -= x1;
            x1 = 0;
        }
        if (x2 >= w)
            x2 = w;
    }
    box[0] = x1;
    box[1] = y1;
    box[2] = x2;
    box[3] = y2;
    return 1;
}

/* PIL's paste of a whole image at (x, y), clipped to the canvas. */
static void paste(uint8_t *dst, int dw, int dh, const uint8_t *src, int sw, int sh, int ch, int x,
                  int y)
{
    for (int r = 0; r < sh; r++) {
        int dy = y + r;
        if (dy < 0 || dy >= dh)
            continue;
        for (int c = 0; c < sw; c++) {
            int dx = x + c;
            if (dx >= 0 && dx < dw)
                memcpy(dst + ((size_t)dy * dw + dx) * ch, src + ((size_t)r * sw + c) * ch,
                       (size_t)ch);
        }
    }
}

gs_status mask_resize_image(int mode, const uint8_t *src, int sw, int sh, int ch, int w, int h,
                            uint8_t *out, gi_error *err)
{
    if (mode == 0)
        return pil_resize(src, sw, sh, ch, NULL, w, h, PIL_LANCZOS, out, err);
    double ratio = (double)w / h, src_ratio = (double)sw / sh;
    int src_w, src_h;
    if (mode == 1) {
        src_w = ratio > src_ratio ? w : sw * h / sh;
        src_h = ratio <= src_ratio ? h : sh * w / sw;
    } else {
        src_w = ratio < src_ratio ? w : sw * h / sh;
        src_h = ratio >= src_ratio ? h : sh * w / sw;
    }
    if (src_w < 1 || src_h < 1)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "image %dx%d is too thin to resize", sw, sh);
    uint8_t *rs = gi_malloc((size_t)src_w * src_h * ch);
    uint8_t *bar = NULL;
    gs_status st = GS_OK;
    if (!rs)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
    if ((st = pil_resize(src, sw, sh, ch, NULL, src_w, src_h, PIL_LANCZOS, rs, err)) != GS_OK)
        goto out;
    memset(out, 0, (size_t)w * h * ch);
    paste(out, w, h, rs, src_w, src_h, ch, w / 2 - src_w / 2, h / 2 - src_h / 2);
    if (mode == 2 && ratio < src_ratio) {
        int fill = h / 2 - src_h / 2;
        if (fill > 0) {
            bar = gi_malloc((size_t)w * fill * ch);
            if (!bar) {
                st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
                goto out;
            }
            /* the edge rows stretched: PIL resizes an empty box at the edge */
            double top[4] = {0, 0, w, 0}, bottom[4] = {0, src_h, w, src_h};
            if ((st = pil_resize(rs, src_w, src_h, ch, top, w, fill, PIL_LANCZOS, bar, err)))
                goto out;
            paste(out, w, h, bar, w, fill, ch, 0, 0);
            if ((st = pil_resize(rs, src_w, src_h, ch, bottom, w, fill, PIL_LANCZOS, bar, err)))
                goto out;
            paste(out, w, h, bar, w, fill, ch, 0, fill + src_h);
        }
    } else if (mode == 2 && ratio > src_ratio) {
        int fill = w / 2 - src_w / 2;
        if (fill > 0) {
            bar = gi_malloc((size_t)fill * h * ch);
            if (!bar) {
                st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory resizing an image");
                goto out;
            }
            double left[4] = {0, 0, 0, h}, right[4] = {src_w, 0, src_w, h};
            if ((st = pil_resize(rs, src_w, src_h, ch, left, fill, h, PIL_LANCZOS, bar, err)))
                goto out;
            paste(out, w, h, bar, fill, h, ch, 0, 0);
            if ((st = pil_resize(rs, src_w, src_h, ch, right, fill, h, PIL_LANCZOS, bar, err)))
                goto out;
            paste(out, w, h, bar, fill, h, ch, fill + src_w, 0);
        }
    }
out:
    gi_free(rs);
    gi_free(bar);
    return st;
}

gs_status mask_latent(const uint8_t *m, int w, int h, int lw, int lh, int round_it, float *out,
                      gi_error *err)
{
    /* convert('RGB') repeats the channel and PIL resizes channels apart, so
       channel 0 is the one-channel resize */
    uint8_t *small = gi_malloc((size_t)lw * lh);
    if (!small)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for the latent mask");
    gs_status st = pil_resize(m, w, h, 1, NULL, lw, lh, PIL_BICUBIC, small, err);
    if (st == GS_OK)
        for (size_t i = 0; i < (size_t)lw * lh; i++) {
            float v = (float)small[i] / 255.0f;
            out[i] = round_it ? rintf(v) : v;
        }
    gi_free(small);
    return st;
}
