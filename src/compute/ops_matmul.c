/*
 * ops_matmul - linear layers and convolutions on gemm_f32.
 *
 * Convolutions gather NHWC patches (im2col) for a block of output rows at a
 * time, bounding the patch buffer, then multiply by weights stored as
 * [cout, k*k*cin]. A 1x1 stride-1 convolution is a plain GEMM over pixels.
 * The bias is written first and the GEMM accumulates onto it (beta = 1).
 */
#include <string.h>

#include "compute/gemm.h"
#include "compute/gemm_bf16.h"
#include "compute/ops.h"

#define PATCH_BLOCK_FLOATS (4L << 20) /* 16 MB of im2col per block */

typedef struct bias_job {
    float *y;
    const float *b;
    long rows;
    int c;
} bias_job;

static void bias_fill_rows(void *p, int ith, int nth)
{
    bias_job *j = p;
    long r0, r1;
    threadpool_range(j->rows, ith, nth, &r0, &r1);
    for (long r = r0; r < r1; r++) {
        float *row = j->y + r * j->c;
        if (j->b)
            memcpy(row, j->b, (size_t)j->c * sizeof *row);
        else
            memset(row, 0, (size_t)j->c * sizeof *row);
    }
}

static void bias_fill(gs_compute *cx, float *y, const float *b, long rows, int c)
{
    bias_job j = {y, b, rows, c};
    threadpool_run(cx->tp, bias_fill_rows, &j);
}

typedef struct cvt_job {
    const float *x;
    uint16_t *y;
    long n;
} cvt_job;

static void cvt_run(void *p, int ith, int nth)
{
    const cvt_job *j = p;
    long i0, i1;
    threadpool_range(j->n, ith, nth, &i0, &i1);
    f32_to_bf16(j->x + i0, j->y + i0, i1 - i0);
}

void op_to_bf16(gs_compute *cx, const float *x, uint16_t *y, long n)
{
    cvt_job j = {x, y, n};
    threadpool_run(cx->tp, cvt_run, &j);
}

uint16_t *op_to_bf16_scratch(gs_compute *cx, const float *x, long n)
{
    uint16_t *y = arena_alloc(&cx->scratch, (size_t)n * sizeof *y);
    if (y)
        op_to_bf16(cx, x, y, n);
    return y;
}

gs_status op_linear(gs_compute *cx, const linear_weights *lw, const float *x, long rows, float *y,
                    gs_error *err)
{
    if (rows > 0x7fffffffL)
        return gs_fail(err, GS_ERR_INVALID_ARGUMENT, "linear layer: %ld rows is too many", rows);
    bias_fill(cx, y, lw->b, rows, lw->out);
    cx->flops += 2.0 * rows * lw->out * lw->in;
    if (lw->wb) {
        arena_mark m = arena_get_mark(&cx->scratch);
        uint16_t *xb = op_to_bf16_scratch(cx, x, rows * lw->in);
        gs_status st = xb ? gemm_bf16(cx->bf16, (int)rows, lw->out, lw->in, xb, lw->in, lw->wb,
                                      lw->in, 1, 1.0f, y, lw->out, err)
                          : gs_fail(err, GS_ERR_NO_MEMORY, "out of memory in a linear layer");
        arena_release(&cx->scratch, m);
        return st;
    }
    gemm_f32((int)rows, lw->out, lw->in, x, lw->in, lw->w, lw->in, 1, 1.0f, y, lw->out);
    return GS_OK;
}

typedef struct im2col_job {
    const float *x; /* [n, h, w, cin] */
    float *col;     /* [rows, k*k*cin] */
    int h, w, cin, k, stride, pad_t, pad_l, oh, ow;
    long row0, rows; /* output pixel range (over n*oh*ow) */
} im2col_job;

static void im2col_rows(void *p, int ith, int nth)
{
    const im2col_job *j = p;
    long r0, r1;
    threadpool_range(j->rows, ith, nth, &r0, &r1);
    size_t kc = (size_t)j->k * j->k * j->cin;
    for (long r = r0; r < r1; r++) {
        long o = j->row0 + r;
        long img = o / ((long)j->oh * j->ow);
        long rem = o % ((long)j->oh * j->ow);
        int oy = (int)(rem / j->ow), ox = (int)(rem % j->ow);
        float *dst = j->col + (size_t)r * kc;
        const float *src_img = j->x + (size_t)img * j->h * j->w * j->cin;
        for (int ky = 0; ky < j->k; ky++) {
            int iy = oy * j->stride - j->pad_t + ky;
            for (int kx = 0; kx < j->k; kx++) {
                int ix = ox * j->stride - j->pad_l + kx;
                float *d = dst + ((size_t)ky * j->k + kx) * j->cin;
                if (iy < 0 || iy >= j->h || ix < 0 || ix >= j->w)
                    memset(d, 0, (size_t)j->cin * sizeof *d);
                else
                    memcpy(d, src_img + ((size_t)iy * j->w + ix) * j->cin,
                           (size_t)j->cin * sizeof *d);
            }
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
        long o = j->row0 + r;
        long img = o / ((long)j->oh * j->ow);
        long rem = o % ((long)j->oh * j->ow);
        int oy = (int)(rem / j->ow), ox = (int)(rem % j->ow);
        uint16_t *dst = col + (size_t)r * kc;
        const float *src_img = j->x + (size_t)img * j->h * j->w * j->cin;
        for (int ky = 0; ky < j->k; ky++) {
            int iy = oy * j->stride - j->pad_t + ky;
            for (int kx = 0; kx < j->k; kx++) {
                int ix = ox * j->stride - j->pad_l + kx;
                uint16_t *d = dst + ((size_t)ky * j->k + kx) * j->cin;
                if (iy < 0 || iy >= j->h || ix < 0 || ix >= j->w)
                    memset(d, 0, (size_t)j->cin * sizeof *d);
                else
                    f32_to_bf16(src_img + ((size_t)iy * j->w + ix) * j->cin, d, j->cin);
            }
        }
    }
}

gs_status op_conv2d(gs_compute *cx, const conv_weights *cw, const float *x, int n, int h, int w,
                    int stride, int pad_t, int pad_l, int oh, int ow, float *y, gs_error *err)
{
    long rows = (long)n * oh * ow;
    int K = cw->k * cw->k * cw->cin;
    bias_fill(cx, y, cw->b, rows, cw->cout);
    cx->flops += 2.0 * rows * cw->cout * K;
    if (cw->k == 1 && stride == 1 && pad_t == 0 && pad_l == 0 && oh == h && ow == w) {
        if (!cw->wb) {
            gemm_f32((int)rows, cw->cout, K, x, K, cw->w, K, 1, 1.0f, y, cw->cout);
            return GS_OK;
        }
        arena_mark m = arena_get_mark(&cx->scratch);
        uint16_t *xb = op_to_bf16_scratch(cx, x, rows * K);
        gs_status st = xb ? gemm_bf16(cx->bf16, (int)rows, cw->cout, K, xb, K, cw->wb, K, 1, 1.0f,
                                      y, cw->cout, err)
                          : gs_fail(err, GS_ERR_NO_MEMORY, "out of memory in a convolution");
        arena_release(&cx->scratch, m);
        return st;
    }
    long block = PATCH_BLOCK_FLOATS / K;
    if (block < 1)
        block = 1;
    if (block > rows)
        block = rows;
    arena_mark m = arena_get_mark(&cx->scratch);
    float *col = arena_floats(&cx->scratch, (size_t)block * K); /* bf16 uses half of it */
    if (!col)
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory in a convolution");
    gs_status st = GS_OK;
    for (long r0 = 0; r0 < rows && st == GS_OK; r0 += block) {
        long nr = rows - r0 < block ? rows - r0 : block;
        im2col_job j = {x, col, h, w, cw->cin, cw->k, stride, pad_t, pad_l, oh, ow, r0, nr};
        float *yb = y + (size_t)r0 * cw->cout;
        if (cw->wb) {
            threadpool_run(cx->tp, im2col_rows_bf16, &j);
            st = gemm_bf16(cx->bf16, (int)nr, cw->cout, K, (const uint16_t *)col, K, cw->wb, K, 1,
                           1.0f, yb, cw->cout, err);
        } else {
            threadpool_run(cx->tp, im2col_rows, &j);
            gemm_f32((int)nr, cw->cout, K, col, K, cw->w, K, 1, 1.0f, yb, cw->cout);
        }
    }
    arena_release(&cx->scratch, m);
    return st;
}

gs_status op_conv2d_same(gs_compute *cx, const conv_weights *cw, const float *x, int n, int h,
                         int w, float *y, gs_error *err)
{
    int pad = cw->k / 2;
    return op_conv2d(cx, cw, x, n, h, w, 1, pad, pad, h, w, y, err);
}
