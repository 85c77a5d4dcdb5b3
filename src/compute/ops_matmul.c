/*
 * ops_matmul - linear layers on gemm_f32 / gemm_bf16, and the bias fill and
 * bf16 conversion they share with the convolutions (ops_conv.c).
 * Every product adds the bias (and the residual, op_linear_add) as it stores
 * its results: oneDNN matmuls with a bias and a sum post-op, f32, bf16 or bf16
 * weights widened to f32.
 */
#include <string.h>

#include "compute/op_prof.h"
#include "compute/gemm.h"
#include "compute/gemm_bf16.h"
#include "compute/gemm_pack.h"
#include "compute/ops.h"

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

void op_to_bf16(gi_compute *cx, const float *x, uint16_t *y, long n)
{
    cvt_job j = {x, y, n};
    OP_PROF_TAG(OPK_ELEMENTWISE, 6.0 * n);
    threadpool_run(cx->tp, cvt_run, &j);
}

uint16_t *op_to_bf16_scratch(gi_compute *cx, const float *x, long n)
{
    uint16_t *y = arena_alloc(&cx->scratch, (size_t)n * sizeof *y);
    if (y)
        op_to_bf16(cx, x, y, n);
    return y;
}

/* y = xb W^T + b (+ y when beta is 1) for a layer with 16-bit weights whose
   products take bf16 activations, xb being x already rounded. */
static gs_status linear_on_bf16(gi_compute *cx, const linear_weights *lw, const uint16_t *xb,
                                long rows, float beta, float *y, gi_error *err)
{
    cx->flops += 2.0 * rows * lw->out * lw->in;
    if (lw->packed)
        return gemm_bf16_bias_packed(cx->bf16, (int)rows, lw->out, lw->in, xb, lw->in, lw->wb,
                                     lw->b, beta, y, lw->out, err);
    return gemm_bf16_bias(cx->bf16, (int)rows, lw->out, lw->in, xb, lw->in, lw->wb, lw->in, lw->b,
                          beta, y, lw->out, err);
}

/* y = x W^T + b (+ y) with W's 16-bit weights widened, W packed: unpacked into
   scratch first (packing is for native bf16 products; a test or an engine
   switched to widening after the load gets here). */
static gs_status linear_wide_packed(gi_compute *cx, const linear_weights *lw, const float *x,
                                    long rows, float beta, float *y, gi_error *err)
{
    arena_mark m = arena_get_mark(&cx->scratch);
    uint16_t *w = arena_alloc(&cx->scratch, (size_t)lw->out * lw->in * sizeof *w);
    gs_status st = GS_ERR_NO_MEMORY;
    if (!w) {
        gi_fail(err, st, "out of memory in a linear layer");
    } else {
        gemm_unpack(lw->wb, w, lw->out, lw->in, 0);
        st = gemm_wide_weights(cx, (int)rows, lw->out, lw->in, x, lw->in, w, lw->in, lw->b, beta, y,
                               lw->out, err);
    }
    arena_release(&cx->scratch, m);
    return st;
}

/* y = x W^T + b (+ y when beta is 1). */
static gs_status linear(gi_compute *cx, const linear_weights *lw, const float *x, long rows,
                        float beta, float *y, gi_error *err)
{
    if (rows > 0x7fffffffL)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "linear layer: %ld rows is too many", rows);
    if (lw->wb && !wide_weights(cx)) {
        arena_mark m = arena_get_mark(&cx->scratch);
        uint16_t *xb = op_to_bf16_scratch(cx, x, rows * lw->in);
        gs_status st = xb ? linear_on_bf16(cx, lw, xb, rows, beta, y, err)
                          : gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in a linear layer");
        arena_release(&cx->scratch, m);
        return st;
    }
    cx->flops += 2.0 * rows * lw->out * lw->in;
    if (!lw->wb && lw->packed)
        return gemm_f32_bias_packed(cx->bf16, (int)rows, lw->out, lw->in, x, lw->in, lw->w, lw->b,
                                    beta, y, lw->out, err);
    if (!lw->wb)
        return gemm_f32_bias(cx->bf16, (int)rows, lw->out, lw->in, x, lw->in, lw->w, lw->in, lw->b,
                             beta, y, lw->out, err);
    if (lw->packed)
        return linear_wide_packed(cx, lw, x, rows, beta, y, err);
    return gemm_wide_weights(cx, (int)rows, lw->out, lw->in, x, lw->in, lw->wb, lw->in, lw->b, beta,
                             y, lw->out, err);
}

gs_status op_linear(gi_compute *cx, const linear_weights *lw, const float *x, long rows, float *y,
                    gi_error *err)
{
    return linear(cx, lw, x, rows, 0.0f, y, err);
}

gs_status op_linear_add(gi_compute *cx, const linear_weights *lw, const float *x, long rows,
                        float *y, gi_error *err)
{
    return linear(cx, lw, x, rows, 1.0f, y, err);
}

gs_status op_linear_add_bf16(gi_compute *cx, const linear_weights *lw, const uint16_t *xb,
                             long rows, float *y, gi_error *err)
{
    if (rows > 0x7fffffffL || !op_linear_takes_bf16(cx, lw))
        return gi_fail(err, GS_ERR_INTERNAL, "op_linear_add_bf16: %ld rows, bf16 input %d", rows,
                       op_linear_takes_bf16(cx, lw));
    return linear_on_bf16(cx, lw, xb, rows, 1.0f, y, err);
}

gs_status op_linear_shared(gi_compute *cx, const linear_weights *const *lws, int n, const float *x,
                           long rows, float *const *ys, gi_error *err)
{
    int bf16_in = !wide_weights(cx);
    for (int i = 0; i < n; i++)
        bf16_in = bf16_in && lws[i]->wb && lws[i]->in == lws[0]->in;
    if (!bf16_in || rows > 0x7fffffffL) {
        for (int i = 0; i < n; i++) {
            gs_status st = linear(cx, lws[i], x, rows, 0.0f, ys[i], err);
            if (st != GS_OK)
                return st;
        }
        return GS_OK;
    }
    arena_mark m = arena_get_mark(&cx->scratch);
    uint16_t *xb = op_to_bf16_scratch(cx, x, rows * lws[0]->in);
    gs_status st = xb ? GS_OK : gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in a linear layer");
    for (int i = 0; i < n && st == GS_OK; i++)
        st = linear_on_bf16(cx, lws[i], xb, rows, 0.0f, ys[i], err);
    arena_release(&cx->scratch, m);
    return st;
}

gs_status op_conv1x1_add(gi_compute *cx, const conv_weights *cw, const float *x, long pixels,
                         float *y, gi_error *err)
{
    if (cw->k != 1)
        return gi_fail(err, GS_ERR_INTERNAL, "op_conv1x1_add on a %dx%d convolution", cw->k, cw->k);
    /* a 1x1 convolution's weights are a linear layer's, [cout, cin] */
    linear_weights lw = {.w = cw->w, .wb = cw->wb, .b = cw->b, .out = cw->cout, .in = cw->cin};
    return linear(cx, &lw, x, pixels, 1.0f, y, err);
}
