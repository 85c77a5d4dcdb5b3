/*
 * ops - the neural-network kernels of the engine, on channels-last f32 tensors.
 *
 * A feature map is [N, H, W, C] row-major, which is also the token sequence
 * [N, H*W, C] of attention and linear layers, so no op transposes. Heavy work
 * goes to gemm_f32; the rest is split over the compute context's threads.
 * Scratch comes from cx->scratch in stack order; no op allocates otherwise.
 */
#ifndef GS_OPS_H
#define GS_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "compute/compute.h"
#include "compute/gemm_bf16.h"

/* A convolution's weights converted for GEMM at load time. */
typedef struct conv_weights {
    float *w;     /* [cout, k*k*cin]: (ky, kx, cin) order, matching NHWC patches */
    uint16_t *wb; /* the same in bf16, or f16 (cx->weights_f16), when the engine keeps
                     16-bit weights (then w is NULL) */
    float *b;     /* [cout] or NULL */
    int cout, cin, k;
} conv_weights;

typedef struct linear_weights {
    float *w;     /* [out, in] as stored */
    uint16_t *wb; /* the same in bf16 or f16, as for conv_weights (then w is NULL) */
    float *b;     /* [out] or NULL */
    int out, in;
    int packed; /* w or wb in oneDNN's blocked layout (gemm_pack.h), not [out, in] */
} linear_weights;

typedef struct norm_weights {
    float *g; /* [c] scale */
    float *b; /* [c] shift */
    int c;
} norm_weights;

/* Whether a layer with 16-bit weights multiplies f32 activations by its
   weights widened (gemm_wide_weights) rather than bf16 ones (gemm_bf16). */
static inline int wide_weights(const gi_compute *cx)
{
    return cx->weights_f16 || cx->widen_bf16 || !gemm_bf16_native(cx->bf16);
}

/* C = A (f32) W^T (the layer's 16-bit weights widened) + bias (+ C when beta is 1). */
static inline gs_status gemm_wide_weights(gi_compute *cx, int M, int N, int K, const float *A,
                                          int lda, const uint16_t *W, int ldw, const float *bias,
                                          float beta, float *C, int ldc, gi_error *err)
{
    return (cx->weights_f16 ? gemm_f16_weights : gemm_bf16_weights)(cx->bf16, M, N, K, A, lda, W,
                                                                    ldw, bias, beta, C, ldc, err);
}

/* y[rows, out] = x[rows, in] W^T + b. y must not alias x. */
gs_status op_linear(gi_compute *cx, const linear_weights *lw, const float *x, long rows, float *y,
                    gi_error *err);

/* y[rows, out] += x[rows, in] W^T + b: a residual connection's sum in the
   GEMM that makes the branch's output (no second buffer, no separate add). */
gs_status op_linear_add(gi_compute *cx, const linear_weights *lw, const float *x, long rows,
                        float *y, gi_error *err);
/* Whether op_linear rounds its input to bf16 for lw's product (bf16 weights
   where oneDNN multiplies bf16): then a producer may hand it rounded already. */
static inline int op_linear_takes_bf16(const gi_compute *cx, const linear_weights *lw)
{
    return lw->wb && !wide_weights(cx);
}
/* op_linear_add on xb, x already rounded to bf16 (op_linear_takes_bf16). */
gs_status op_linear_add_bf16(gi_compute *cx, const linear_weights *lw, const uint16_t *xb,
                             long rows, float *y, gi_error *err);
/* ys[i] = x W_i^T + b_i for n layers on one input (q, k and v): where the
   products take bf16 activations, x is rounded to bf16 once for all of them. */
gs_status op_linear_shared(gi_compute *cx, const linear_weights *const *lws, int n, const float *x,
                           long rows, float *const *ys, gi_error *err);

/* The same for a 1x1 convolution over pixels rows [pixels, cin]. */
gs_status op_conv1x1_add(gi_compute *cx, const conv_weights *cw, const float *x, long pixels,
                         float *y, gi_error *err);

/* Convolution with zero padding: pad_t/pad_l before, and as much after as the
   output size oh x ow needs. x [n, h, w, cin] -> y [n, oh, ow, cout]. */
gs_status op_conv2d(gi_compute *cx, const conv_weights *cw, const float *x, int n, int h, int w,
                    int stride, int pad_t, int pad_l, int oh, int ow, float *y, gi_error *err);

/* The usual "same" 3x3 stride-1 pad-1 (or 1x1) convolution. */
gs_status op_conv2d_same(gi_compute *cx, const conv_weights *cw, const float *x, int n, int h,
                         int w, float *y, gi_error *err);

/* A "same" convolution of one image whose input is first put through a
   per-channel affine map (ab [2*cin]: scale then shift, e.g. a folded group
   norm; NULL for none) and SiLU (if silu), then nearest-upsampled by up (1 or
   2): x [h, w, cin] -> y [up*h, up*w, cout]. The prologue runs on bands of rows
   as the patches are gathered, so neither the normalised nor the upsampled map
   is ever materialised; the sums are those of the unfused ops. */
gs_status op_conv2d_pre(gi_compute *cx, const conv_weights *cw, const float *x, int h, int w,
                        const float *ab, int silu, int up, float *y, gi_error *err);

/* Where op_conv2d_rows writes: output rows [row0, row1) (row1 0: to the last),
   the first at y, pixels ys floats apart (0: cout). With accumulate the results
   are added to what y holds: a residual sum in place, with no copy or add. */
typedef struct conv_dst {
    float *y;
    int row0, row1, ys, accumulate;
} conv_dst;

/* op_conv2d_pre for a band of output rows, so that a caller can let outputs
   replace inputs it no longer needs. The rows around the band that the kernel
   reaches are x's real rows (padding only at the map's edges), and each output
   sums what op_conv2d_pre's does. x's pixels are xs floats apart (0: cin),
   where ab is given; without ab, xs must be 0 or cin. */
gs_status op_conv2d_rows(gi_compute *cx, const conv_weights *cw, const float *x, int xs, int h,
                         int w, const float *ab, int silu, int up, const conv_dst *d,
                         gi_error *err);

/* Group norm over [n, hw, c] with `groups` groups, optional SiLU after. In place allowed. */
void op_group_norm(gi_compute *cx, const norm_weights *nw, const float *x, int n, long hw, int c,
                   int groups, float eps, int silu, float *y);

/* Group norm in parts, for kernels that normalise on the fly or with statistics
   taken elsewhere. stats [2*groups]: the per-group means, then the variances, of
   one image [hw, c]. fold turns them into the per-channel scale and shift
   ab [2*c] (scale, then shift) that op_group_norm applies: y = x*ab[k] + ab[c+k].
   The three together give op_group_norm's numbers exactly. xs: the distance
   between x's pixels in floats (0: c), for a map that shares its pixels' slots
   with another. */
gs_status op_group_norm_stats(gi_compute *cx, const float *x, int xs, long hw, int c, int groups,
                              double *stats, gi_error *err);
void op_group_norm_fold(const norm_weights *nw, const double *stats, int groups, float eps,
                        float *ab);
/* y[0 .. p1-p0) [.., c] = the same for pixels p0..p1 of x, its pixels xs floats
   apart (0: c), on the pool's threads. */
void op_scale_shift_span(gi_compute *cx, const float *x, int xs, long p0, long p1, int c,
                         const float *ab, int silu, float *y);

/* Layer norm over the last dim of [rows, c]. In place allowed. */
void op_layer_norm(gi_compute *cx, const norm_weights *nw, const float *x, long rows, int c,
                   float eps, float *y);

/* Multi-head attention: q [n, tq, q_stride] (heads*d used), k/v [n, tk, kv_stride]
   -> out [n, tq, heads*d]. Scores are materialised one block of query rows at a
   time. causal: query i sees keys 0..i. */
gs_status op_attention(gi_compute *cx, const float *q, int q_stride, const float *k, const float *v,
                       int kv_stride, int n, int tq, int tk, int heads, int d, int causal,
                       float *out, gi_error *err);

/* Nearest-neighbour resize (PyTorch's "nearest": src = floor(dst * in / out)). */
void op_resize_nearest(gi_compute *cx, const float *x, int n, int h, int w, int c, int oh, int ow,
                       float *y);

/* y[p, 0:ca] = a[p], y[p, ca:ca+cb] = b[p] for every pixel p of n*hw. */
void op_concat_channels(gi_compute *cx, const float *a, int ca, const float *b, int cb, long pixels,
                        float *y);

/* f32 -> bf16 over the threads, into y; and the same into a new arena buffer (the
   caller releases it with its arena mark), NULL when out of memory. */
void op_to_bf16(gi_compute *cx, const float *x, uint16_t *y, long n);
uint16_t *op_to_bf16_scratch(gi_compute *cx, const float *x, long n);

/* Elementwise helpers over count floats. */
void op_add(gi_compute *cx, float *y, const float *x, long count); /* y += x */
void op_silu(gi_compute *cx, const float *x, float *y, long count);
void op_quick_gelu(gi_compute *cx, float *x, long count); /* in place */
void op_gelu(gi_compute *cx, float *x, long count);       /* in place, exact erf GELU */
/* GEGLU: x [rows, 2*inner] -> y [rows, inner] = a * gelu(gate) (exact erf GELU). */
void op_geglu(gi_compute *cx, const float *x, long rows, int inner, float *y);
/* The same, y rounded to bf16 as f32_to_bf16 rounds (for a bf16 product's
   input: one pass instead of GEGLU's f32 out and the rounding's in and out). */
void op_geglu_bf16(gi_compute *cx, const float *x, long rows, int inner, uint16_t *y);
/* y[p, c] += v[p / per, c]: adds a per-image vector [n, c] to [n, per, c]. */
void op_add_broadcast(gi_compute *cx, float *y, const float *v, int n, long per, int c);

#endif
