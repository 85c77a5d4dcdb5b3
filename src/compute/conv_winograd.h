/*
 * conv_winograd - 3x3, stride 1, padding 1 convolutions of f32 NHWC maps by
 * Winograd's F(2x2, 3x3) (2.25x fewer multiplications than im2col + GEMM).
 */
#ifndef GS_CONV_WINOGRAD_H
#define GS_CONV_WINOGRAD_H

#include "compute/ops.h"

/* Whether a layer is one these run (3x3, filters small enough to transform whole). */
int conv3x3_winograd_fits(const gi_compute *cx, const conv_weights *cw);

/* y [n, h, w, cout] = conv(x [n, h, w, cin]) + bias, for k = 3 and f32 (cw->w) or
   bf16 (cw->wb) weights; the GEMMs are bf16 where cx->winograd_bf16 is set, else
   f32. */
gs_status conv3x3_winograd(gi_compute *cx, const conv_weights *cw, const float *x, int n, int h,
                           int w, float *y, gi_error *err);

/* The same as op_conv2d_rows (one image): the per-channel affine ab (+ SiLU)
   and nearest upsampling by up applied to x [h, w, cin] (pixels xs floats
   apart) on the way in, output rows d->row0 .. d->row1 - 1 of [up*h, up*w,
   cout] into d (row1 and ys given). */
gs_status conv3x3_winograd_rows(gi_compute *cx, const conv_weights *cw, const float *x, int xs,
                                int h, int w, const float *ab, int silu, int up, const conv_dst *d,
                                gi_error *err);

#endif
