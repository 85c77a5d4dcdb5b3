/* testutil - shared helpers for the tests: golden tensors, error metrics. */
#ifndef GS_TESTUTIL_H
#define GS_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
// cmocka needs these before its header
#include <cmocka.h>

#include "model/safetensors.h"

/* The golden file, opened once per process (NULL-safe to call repeatedly). */
st_file *golden(void);
/* Path of a fixture file (static buffer, valid until the next call). */
const char *fixture_path(const char *name);
/* Loads golden tensor `name` as f64; aborts the test if absent. Free with free(). */
double *golden_f64(const char *name, size_t *numel);
/* Loads golden tensor `name` as f32; aborts the test if absent. Free with free(). */
float *golden_f32(const char *name, size_t *numel);
/* ||a-b|| / ||b|| */
double rel_l2_f32_f64(const float *a, const double *b, size_t n);
double max_abs_diff_f32_f64(const float *a, const double *b, size_t n);
/* NCHW <-> NHWC for golden data */
void nchw_to_nhwc_f64(const double *src, double *dst, int n, int c, int h, int w);

#endif
