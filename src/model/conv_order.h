/*
 * conv_order - one output channel of a convolution's weights from the
 * checkpoints' [cin][k][k] order to the kernels' [k][k][cin] (NHWC patches).
 *
 * Loads and LoRA folds reorder every 3x3 weight of a model (about 400 M
 * values in SD1.5's UNet): a strided copy per value was a quarter of an
 * SD1.5 load's CPU time, so CPUs with AVX move 8 channels x 8 positions per
 * register transpose.
 */
#ifndef GS_CONV_ORDER_H
#define GS_CONV_ORDER_H

#include <stddef.h>
#include <stdint.h>

/* dst[p * cin + i] = src[i * kk + p] for p < kk, i < cin; kk = k * k. */
void wl_conv_row_order(const float *src, float *dst, int cin, int kk);

/* The same rounded to bf16 as f32_to_bf16 rounds (bf16 engines' loads). */
void wl_conv_row_order_bf16(const float *src, uint16_t *dst, int cin, int kk);

/* ... rounded to f16 (to nearest even, as gi_f32_to_f16_span). */
void wl_conv_row_order_f16(const float *src, uint16_t *dst, int cin, int kk);

/* The three by the definition, for tests. */
void wl_conv_row_order_scalar(const float *src, float *dst, int cin, int kk);
void wl_conv_row_order_bf16_scalar(const float *src, uint16_t *dst, int cin, int kk);
void wl_conv_row_order_f16_scalar(const float *src, uint16_t *dst, int cin, int kk);

#endif
