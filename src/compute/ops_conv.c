/*
 * ops_conv - convolutions as im2col + GEMM on NHWC maps.
 *
 * Patches are gathered for a block of output pixels at a time, bounding the
 * patch buffer, then multiplied by weights stored as [cout, k*k*cin]. A 1x1
 * stride-1 convolution is a plain GEMM over pixels. op_conv2d_pre adds a
 * prologue (per-channel affine + SiLU, nearest 2x upsampling) applied to the
 * input rows a block needs just before its gather: the VAE decoder's group
 * norms and upsamplers then cost no full-size map of their own. The block
 * split is the same with or without the prologue, so the GEMMs see the same
 * operands as the unfused ops.
 */
#include <string.h>

#include "compute/op_prof.h"
#include "compute/conv_winograd.h"
#include "compute/gemm.h"
#include "compute/gemm_bf16.h"
#include "compute/ops.h"

#define PATCH_BLOCK_FLOATS (4L << 20) /* 16 MB of im2col per block */

typedef struct im2col_job {
    const float *x; /* [n, h, w, cin], or rows srow0.. of one image */
    float *col;     /* [rows, k*k*cin] (bf16 in the same buffer when converting) */
    int h, w, cin, k, stride, pad_t, pad_l, oh, ow;
    int up, srow0;   /* nearest upsampling factor; the first source row held in x */
    long row0, rows; /* output pixel range (over n*oh*ow) */
} im2col_job;

/* Output pixel o's image and position. */
typedef struct out_px {
    long img;
    int oy, ox;
} out_px;

static inline out_px out_pixel(const im2col_job *j, long o)
{
    long rem = o % ((long)j->oh * j->ow);
    return (out_px){o / ((long)j->oh * j->ow), (int)(rem / j->ow), (int)(rem % j->ow)};
}

/* The source pixel of patch element (ky, kx) of output pixel q, or NULL for padding. */
static inline const float *patch_src(const im2col_job *j, out_px q, int ky, int kx)
{
    int iy = q.oy * j->stride - j->pad_t + ky, ix = q.ox * j->stride - j->pad_l + kx;
    if (iy < 0 || iy >= j->h * j->up || ix < 0 || ix >= j->w * j->up)
        return NULL;
    return j->x + (((size_t)q.img * j->h + iy / j->up - j->srow0) * j->w + ix / j->up) * j->cin;
}

static void im2col_rows(void *p, int ith, int nth)
{
    const im2col_job *j = p;
    long r0, r1;
    threadpool_range(j->rows, ith, nth, &r0, &r1);
    size_t kc = (size_t)j->k * j->k * j->cin;
    for (long r = r0; r < r1; r++) {
        out_px q = out_pixel(j, j->row0 + r);
        float *dst = j->col + (size_t)r * kc;
        for (int ky = 0; ky < j->k; ky++)
            for (int kx = 0; kx < j->k; kx++) {
                const float *s = patch_src(j, q, ky, kx);
                float *d = dst + ((size_t)ky * j->k + kx) * j->cin;
                if (s)
                    memcpy(d, s, (size_t)j->cin * sizeof *d);
                else
                    memset(d, 0, (size_t)j->cin * sizeof *d);
            }
    }
}

/* The same gather, converting to bf16 on the way. */
static void im2col_rows_bf16(void *p, int ith, int nth)
{
    const im2col_job *j = p;
    long r0, r1;
    threadpool_range(j->rows, ith, nth, &r0, &r1);
    size_t kc = (size_t)j->k * j->k * j->cin;
    uint16_t *col = (uint16_t *)j->col;
    for (long r = r0; r < r1; r++) {
        out_px q = out_pixel(j, j->row0 + r);
        uint16_t *dst = col + (size_t)r * kc;
        for (int ky = 0; ky < j->k; ky++)
            for (int kx = 0; kx < j->k; kx++) {
                const float *s = patch_src(j, q, ky, kx);
                uint16_t *d = dst + ((size_t)ky * j->k + kx) * j->cin;
                if (s)
                    f32_to_bf16(s, d, j->cin);
                else
                    memset(d, 0, (size_t)j->cin * sizeof *d);
            }
    }
}

/* im2col of one block, then its GEMM (with the bias) into yb, the block's first
   output pixel, pixels ldy floats apart; beta 1 adds to what yb holds. */
static gs_status conv_block(gi_compute *cx, const conv_weights *cw, im2col_job *j, float *yb,
                            int ldy, float beta, gi_error *err)
{
    int K = cw->k * cw->k * cw->cin;
    OP_PROF_TAG(OPK_IM2COL, 8.0 * j->rows * K); /* patches read and written once */
    if (cw->wb && wide_weights(cx)) {
        threadpool_run(cx->tp, im2col_rows, j);
        return gemm_wide_weights(cx, (int)j->rows, cw->cout, K, j->col, K, cw->wb, K, cw->b, beta,
                                 yb, ldy, err);
    }
    if (cw->wb) {
        threadpool_run(cx->tp, im2col_rows_bf16, j);
        return gemm_bf16_bias(cx->bf16, (int)j->rows, cw->cout, K, (const uint16_t *)j->col, K,
                              cw->wb, K, cw->b, beta, yb, ldy, err);
    }
    threadpool_run(cx->tp, im2col_rows, j);
    return gemm_f32_bias(cx->bf16, (int)j->rows, cw->cout, K, j->col, K, cw->w, K, cw->b, beta, yb,
                         ldy, err);
}

static long patch_block(long rows, int K)
{
    long block = PATCH_BLOCK_FLOATS / K;
    if (block < 1)
        block = 1;
    return block > rows ? rows : block;
}

gs_status op_conv2d(gi_compute *cx, const conv_weights *cw, const float *x, int n, int h, int w,
                    int stride, int pad_t, int pad_l, int oh, int ow, float *y, gi_error *err)
{
    long rows = (long)n * oh * ow;
    int K = cw->k * cw->k * cw->cin;
    cx->flops += 2.0 * rows * cw->cout * K;
    if (cw->k == 1 && stride == 1 && pad_t == 0 && pad_l == 0 && oh == h && ow == w) {
        if (!cw->wb)
            return gemm_f32_bias(cx->bf16, (int)rows, cw->cout, K, x, K, cw->w, K, cw->b, 0.0f, y,
                                 cw->cout, err);
        if (wide_weights(cx))
            return gemm_wide_weights(cx, (int)rows, cw->cout, K, x, K, cw->wb, K, cw->b, 0.0f, y,
                                     cw->cout, err);
        /* converted a block of pixels at a time: a whole VAE map in bf16 is 100+ MB */
        long block = patch_block(rows, K);
        arena_mark m = arena_get_mark(&cx->scratch);
        uint16_t *xb = arena_alloc(&cx->scratch, (size_t)block * K * sizeof *xb);
        gs_status st =
            xb ? GS_OK : gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in a convolution");
        for (long r0 = 0; r0 < rows && st == GS_OK; r0 += block) {
            long nr = rows - r0 < block ? rows - r0 : block;
            op_to_bf16(cx, x + (size_t)r0 * K, xb, nr * K);
            st = gemm_bf16_bias(cx->bf16, (int)nr, cw->cout, K, xb, K, cw->wb, K, cw->b, 0.0f,
                                y + (size_t)r0 * cw->cout, cw->cout, err);
        }
        arena_release(&cx->scratch, m);
        return st;
    }
    long block = patch_block(rows, K);
    arena_mark m = arena_get_mark(&cx->scratch);
    float *col = arena_floats(&cx->scratch, (size_t)block * K); /* bf16 uses half of it */
    if (!col)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in a convolution");
    gs_status st = GS_OK;
    for (long r0 = 0; r0 < rows && st == GS_OK; r0 += block) {
        long nr = rows - r0 < block ? rows - r0 : block;
        im2col_job j = {x, col, h, w, cw->cin, cw->k, stride, pad_t, pad_l, oh, ow, 1, 0, r0, nr};
        st = conv_block(cx, cw, &j, y + (size_t)r0 * cw->cout, cw->cout, 0.0f, err);
    }
    arena_release(&cx->scratch, m);
    return st;
}

gs_status op_conv2d_same(gi_compute *cx, const conv_weights *cw, const float *x, int n, int h,
                         int w, float *y, gi_error *err)
{
    int pad = cw->k / 2;
    long tiles = (long)n * ((h + 1) / 2) * ((w + 1) / 2);
    if (cx->winograd && conv3x3_winograd_fits(cx, cw) && tiles >= cx->winograd_min_tiles)
        return conv3x3_winograd(cx, cw, x, n, h, w, y, err);
    return op_conv2d(cx, cw, x, n, h, w, 1, pad, pad, h, w, y, err);
}

/* ---- the prologue: affine + SiLU on the source rows a block reads ---- */

gs_status op_conv2d_pre(gi_compute *cx, const conv_weights *cw, const float *x, int h, int w,
                        const float *ab, int silu, int up, float *y, gi_error *err)
{
    if (!ab && up == 1)
        return op_conv2d_same(cx, cw, x, 1, h, w, y, err);
    conv_dst d = {y, 0, 0, 0, 0};
    return op_conv2d_rows(cx, cw, x, 0, h, w, ab, silu, up, &d, err);
}

gs_status op_conv2d_rows(gi_compute *cx, const conv_weights *cw, const float *x, int xs, int h,
                         int w, const float *ab, int silu, int up, const conv_dst *dst,
                         gi_error *err)
{
    int oh = up * h, ow = up * w, pad = cw->k / 2;
    conv_dst d = *dst;
    d.row1 = d.row1 ? d.row1 : oh;
    d.ys = d.ys ? d.ys : cw->cout;
    xs = xs ? xs : cw->cin;
    if (d.row0 < 0 || d.row1 > oh || d.row0 >= d.row1 || d.ys < cw->cout || xs < cw->cin ||
        (!ab && xs != cw->cin))
        return gi_fail(err, GS_ERR_INTERNAL, "convolution: bad output rows or strides");
    /* the path is the whole map's, whatever the band */
    long tiles = (long)(oh + 1) / 2 * ((ow + 1) / 2);
    if (cx->winograd && conv3x3_winograd_fits(cx, cw) && tiles >= cx->winograd_min_tiles)
        return conv3x3_winograd_rows(cx, cw, x, xs, h, w, ab, silu, up, &d, err);
    long first = (long)d.row0 * ow, rows = (long)(d.row1 - d.row0) * ow;
    int K = cw->k * cw->k * cw->cin;
    long block = patch_block(rows, K);
    /* source rows one block can touch: its output rows, the kernel's reach, rounding */
    long span = (block + ow - 1) / ow + 1 + 2 * pad;
    long src_rows = span / up + 2 < h ? span / up + 2 : h;
    cx->flops += 2.0 * rows * cw->cout * K;
    arena_mark m = arena_get_mark(&cx->scratch);
    float *col = arena_floats(&cx->scratch, (size_t)block * K);
    float *band = ab ? arena_floats(&cx->scratch, (size_t)src_rows * w * cw->cin) : NULL;
    if (!col || (ab && !band)) {
        arena_release(&cx->scratch, m);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in a convolution");
    }
    gs_status st = GS_OK;
    for (long r0 = first; r0 < first + rows && st == GS_OK; r0 += block) {
        long nr = first + rows - r0 < block ? first + rows - r0 : block;
        im2col_job j = {x, col, h, w, cw->cin, cw->k, 1, pad, pad, oh, ow, up, 0, r0, nr};
        if (ab) {
            int iy0 = (int)(r0 / ow) - pad, iy1 = (int)((r0 + nr - 1) / ow) + pad;
            int s0 = (iy0 < 0 ? 0 : iy0) / up, s1 = (iy1 >= oh ? oh - 1 : iy1) / up + 1;
            op_scale_shift_span(cx, x, xs, (long)s0 * w, (long)s1 * w, cw->cin, ab, silu, band);
            j.x = band;
            j.srow0 = s0;
        }
        st = conv_block(cx, cw, &j, d.y + (size_t)(r0 - first) * d.ys, d.ys,
                        d.accumulate ? 1.0f : 0.0f, err);
    }
    arena_release(&cx->scratch, m);
    return st;
}
