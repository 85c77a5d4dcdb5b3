/*
 * test_ops - the hand-written math kernels against double-precision
 * references: the vectorizable exp and GELU, GEGLU, and attention (f32 and
 * bf16, causal and not, query counts that leave partial blocks), and the bf16
 * matmul as CPUs without bf16 instructions run it (widened to f32 by panels).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "compute/attention_avx2.h"
#include "compute/attention_fused.h"
#include "compute/compute.h"
#include "compute/gemm_bf16.h"
#include "compute/gemm_pack.h"
#include "compute/half.h"
#include "compute/half_span.h"
#include "compute/ops.h"
#include "compute/vec_math.h"
#include "model/conv_order.h"

static double gelu_ref(double x)
{
    return x < 0 ? 0.5 * x * erfc(-x / sqrt(2.0)) : 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

static void exp_and_gelu_are_accurate(void **state)
{
    (void)state;
    double worst_exp = 0, worst_gelu_rel = 0, worst_gelu_abs = 0;
    for (int i = 0; i <= 400000; i++) {
        float x = -87.0f + 175.0f * (float)i / 400000.0f;
        double r = exp((double)x);
        double e = fabs(gi_expf(x) - r) / r;
        worst_exp = e > worst_exp ? e : worst_exp;
    }
    for (int i = 0; i <= 400000; i++) {
        float x = -6.0f + 12.0f * (float)i / 400000.0f;
        double r = gelu_ref(x), a = fabs(gi_gelu(x) - r);
        worst_gelu_abs = a > worst_gelu_abs ? a : worst_gelu_abs;
        if (fabs(r) > 1e-30) {
            double rel = a / fabs(r);
            worst_gelu_rel = rel > worst_gelu_rel ? rel : worst_gelu_rel;
        }
    }
    printf("exp max rel %.3g; gelu max rel %.3g, max abs %.3g\n", worst_exp, worst_gelu_rel,
           worst_gelu_abs);
    assert_true(worst_exp < 3e-7);
    assert_true(worst_gelu_rel < 1e-5); /* 1 + erf is never formed by cancellation */
    assert_true(worst_gelu_abs < 1e-6);
    /* the far tails: GELU(-x) underflows towards 0 without NaN, GELU(x) -> x */
    assert_true(gi_gelu(-30.0f) <= 0.0f && gi_gelu(-30.0f) > -1e-30f);
    assert_true(gi_gelu(30.0f) == 30.0f);
}

static unsigned rng_state = 12345;
static float frand(void)
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)((rng_state >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static void geglu_matches_reference(void **state)
{
    (void)state;
    gi_error err = {0};
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    const long rows = 37;
    const int inner = 45;
    float *x = malloc(sizeof(float) * rows * 2 * inner), *y = malloc(sizeof(float) * rows * inner);
    for (long i = 0; i < rows * 2 * inner; i++)
        x[i] = 4.0f * frand();
    op_geglu(cx, x, rows, inner, y);
    double worst = 0;
    for (long r = 0; r < rows; r++)
        for (int k = 0; k < inner; k++) {
            double a = x[r * 2 * inner + k], g = x[r * 2 * inner + inner + k];
            double want = a * gelu_ref(g), got = y[r * inner + k];
            double e = fabs(got - want) / (fabs(want) + 1e-6);
            worst = e > worst ? e : worst;
        }
    printf("geglu max rel %.3g\n", worst);
    assert_true(worst < 1e-5);
    free(x);
    free(y);
    compute_free(cx);
}

/* out[b, i, h*d + j] = sum_t softmax_t(q_i . k_t / sqrt d) v[t, h*d + j], in double */
static void attention_ref(const float *q, const float *k, const float *v, int n, int tq, int tk,
                          int heads, int d, int causal, double *out)
{
    int w = heads * d;
    double *s = malloc(sizeof(double) * tk);
    for (int b = 0; b < n; b++)
        for (int h = 0; h < heads; h++)
            for (int i = 0; i < tq; i++) {
                int valid = causal ? (i + 1 < tk ? i + 1 : tk) : tk;
                double mx = -INFINITY, sum = 0;
                for (int t = 0; t < valid; t++) {
                    double dot = 0;
                    for (int j = 0; j < d; j++)
                        dot += (double)q[((size_t)b * tq + i) * w + h * d + j] *
                               k[((size_t)b * tk + t) * w + h * d + j];
                    s[t] = dot / sqrt((double)d);
                    mx = s[t] > mx ? s[t] : mx;
                }
                for (int t = 0; t < valid; t++) {
                    s[t] = exp(s[t] - mx);
                    sum += s[t];
                }
                for (int j = 0; j < d; j++) {
                    double o = 0;
                    for (int t = 0; t < valid; t++)
                        o += s[t] * v[((size_t)b * tk + t) * w + h * d + j];
                    out[((size_t)b * tq + i) * w + h * d + j] = o / sum;
                }
            }
    free(s);
}

static double attention_error_scaled(gi_compute *cx, int n, int tq, int tk, int heads, int d,
                                     int causal, float q_scale)
{
    int w = heads * d;
    size_t nq = (size_t)n * tq * w, nk = (size_t)n * tk * w;
    float *q = malloc(sizeof(float) * nq), *k = malloc(sizeof(float) * nk);
    float *v = malloc(sizeof(float) * nk), *out = malloc(sizeof(float) * nq);
    double *ref = malloc(sizeof(double) * nq);
    for (size_t i = 0; i < nq; i++)
        q[i] = q_scale * frand();
    for (size_t i = 0; i < nk; i++) {
        k[i] = 2.0f * frand();
        v[i] = frand();
    }
    gi_error err = {0};
    assert_int_equal(compute_begin(cx, &err), GS_OK);
    if (causal && tq == tk) {
        /* as the text encoder hands them: slices of one fused [rows, 3w]
           projection, each row's q, k and v side by side (row stride 3w; the
           last rows of k and v end before the buffer does) */
        float *qkv = malloc(sizeof(float) * nq * 3);
        for (size_t r = 0; r < (size_t)n * tq; r++) {
            memcpy(qkv + r * 3 * w, q + r * w, sizeof(float) * w);
            memcpy(qkv + r * 3 * w + w, k + r * w, sizeof(float) * w);
            memcpy(qkv + r * 3 * w + 2 * w, v + r * w, sizeof(float) * w);
        }
        assert_int_equal(op_attention(cx, qkv, 3 * w, qkv + w, qkv + 2 * w, 3 * w, n, tq, tk, heads,
                                      d, causal, out, &err),
                         GS_OK);
        free(qkv);
    } else {
        assert_int_equal(op_attention(cx, q, w, k, v, w, n, tq, tk, heads, d, causal, out, &err),
                         GS_OK);
    }
    attention_ref(q, k, v, n, tq, tk, heads, d, causal, ref);
    double e = rel_l2_f32_f64(out, ref, nq);
    free(q);
    free(k);
    free(v);
    free(out);
    free(ref);
    return e;
}

static double attention_error(gi_compute *cx, int n, int tq, int tk, int heads, int d, int causal)
{
    return attention_error_scaled(cx, n, tq, tk, heads, d, causal, 2.0f);
}

static void attention_matches_reference(void **state)
{
    (void)state;
    gi_error err = {0};
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    static const int shapes[][6] = {
        /* n, tq, tk, heads, d, causal */
        {2, 300, 300, 2, 40, 0}, /* more query rows than a block, a partial last block */
        {2, 64, 77, 8, 16, 0},   /* cross-attention on 77 text tokens */
        {1, 77, 77, 3, 24, 1},   /* the text encoder's causal self-attention */
        {3, 5, 9, 1, 8, 0},
        {1, 40, 200, 2, 160, 0}, /* SD1.5's widest heads; keys past one score block */
        {1, 33, 33, 1, 250, 1},  /* a width that is not a multiple of 16, causal */
        {2, 17, 40, 3, 7, 0},    /* an odd width: the last bf16 channel pair half empty */
    };
    /* the blocked GEMM paths (f32, bf16), then the one-pass kernels (AVX-512 f32
       and bf16, AVX2 f32) where the CPU has them */
    static const char *const names[] = {"f32", "bf16", "fused", "fused bf16", "avx2"};
    int fused = cx->attn_fused, avx2 = cx->attn_avx2;
    for (int kind = 0; kind < 5; kind++) {
        if ((kind == 2 && !fused) || (kind == 3 && !cx->attn_fused_bf16) || (kind == 4 && !avx2)) {
            test_note_skip("test_ops attention %s: not on this CPU", names[kind]);
            continue;
        }
        int bf16 = kind == 1 || kind == 3;
        cx->attn_bf16 = bf16;
        cx->attn_fused = kind == 2 || kind == 3;
        cx->attn_avx2 = kind == 4;
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            const int *s = shapes[i];
            double e = attention_error(cx, s[0], s[1], s[2], s[3], s[4], s[5]);
            printf("attention %s n=%d tq=%d tk=%d heads=%d d=%d%s: rel L2 %.3g\n", names[kind],
                   s[0], s[1], s[2], s[3], s[4], s[5] ? " causal" : "", e);
            assert_true(e < (bf16 ? 1e-2 : 1e-5)); /* bf16: three roundings of 2^-9 */
        }
        if (bf16)
            continue;
        /* logits hundreds apart (q 200x the usual scale): the softmax's running
           maximum must be the true one, or 2^(s - max) overflows to infinity */
        double e = attention_error_scaled(cx, 2, 30, 300, 2, 40, 0, 400.0f);
        printf("attention %s, logits hundreds apart: rel L2 %.3g\n", names[kind], e);
        assert_true(e < 1e-5);
    }
    cx->attn_fused = fused;
    cx->attn_avx2 = avx2;
    compute_free(cx);
}

/* The one-pass kernels write their repacked keys and values only inside the
   scratch their size functions ask for (key rows are padded past whole
   blocks: a size formula left behind would overrun into whatever follows in
   the engine's arena, which no sanitizer sees). A guard after the scratch must
   come back untouched. */
static void fused_attention_stays_in_its_scratch(void **state)
{
    (void)state;
    enum { GUARD = 4096 };
    static const int shapes[][5] = {{2, 300, 300, 2, 40}, {1, 40, 4096, 1, 40}, {2, 64, 77, 8, 16}};
    static const char *const names[] = {"fused", "fused bf16", "avx2"};
    int have[] = {attention_fused_available(), attention_fused_bf16_available(),
                  attention_avx2_available()};
    threadpool *tp = NULL;
    gi_error err = {0};
    assert_int_equal(threadpool_create(2, &tp, &err), GS_OK);
    for (int kind = 0; kind < 3; kind++) {
        if (!have[kind]) {
            test_note_skip("test_ops %s attention scratch: not on this CPU", names[kind]);
            continue;
        }
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            int n = shapes[i][0], tq = shapes[i][1], tk = shapes[i][2], heads = shapes[i][3],
                d = shapes[i][4], w = heads * d;
            size_t need = kind == 2 ? attention_avx2_scratch_floats(n, tk, heads, d)
                                    : attention_fused_scratch_floats(n, tk, heads, d);
            float *q = malloc(sizeof(float) * n * tq * w), *k = malloc(sizeof(float) * n * tk * w);
            float *v = malloc(sizeof(float) * n * tk * w), *o = malloc(sizeof(float) * n * tq * w);
            float *scratch = gi_aligned_alloc((need + GUARD) * sizeof(float));
            assert_true(q && k && v && o && scratch);
            for (long j = 0; j < (long)n * tq * w; j++)
                q[j] = frand();
            for (long j = 0; j < (long)n * tk * w; j++) {
                k[j] = frand();
                v[j] = frand();
            }
            for (int g = 0; g < GUARD; g++)
                scratch[need + g] = -12345.0f;
            if (kind == 2)
                attention_avx2(tp, q, w, k, v, w, n, tq, tk, heads, d, 0, o, scratch);
            else
                attention_fused(tp, q, w, k, v, w, n, tq, tk, heads, d, 0, kind, o, scratch);
            int touched = 0;
            for (int g = 0; g < GUARD; g++)
                touched += scratch[need + g] != -12345.0f;
            printf("%s attention n=%d tq=%d tk=%d heads=%d d=%d: %zu floats of scratch, "
                   "%d guard values touched\n",
                   names[kind], n, tq, tk, heads, d, need, touched);
            assert_int_equal(touched, 0);
            free(q), free(k), free(v), free(o);
            gi_aligned_free(scratch);
        }
    }
    threadpool_free(tp);
}

/* y[b, i, j, o] = bias[o] + sum over ky, kx, c of x[b, i+ky-1, j+kx-1, c] w[o, ky, kx, c] */
static void conv3x3_ref(const float *x, const float *w, const float *bias, int n, int h, int wd,
                        int cin, int cout, double *y)
{
    for (int b = 0; b < n; b++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < wd; j++)
                for (int o = 0; o < cout; o++) {
                    double acc = bias[o];
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++) {
                            int yy = i + ky - 1, xx = j + kx - 1;
                            if (yy < 0 || yy >= h || xx < 0 || xx >= wd)
                                continue;
                            const float *xp = x + (((size_t)b * h + yy) * wd + xx) * cin;
                            const float *wp = w + (((size_t)o * 3 + ky) * 3 + kx) * cin;
                            for (int c = 0; c < cin; c++)
                                acc += (double)xp[c] * wp[c];
                        }
                    y[(((size_t)b * h + i) * wd + j) * cout + o] = acc;
                }
}

/* 3x3 convolutions by im2col + GEMM and by Winograd F(2x2,3x3), odd sizes
   included (cropped edge tiles), against a double reference. */
static void conv3x3_matches_reference(void **state)
{
    (void)state;
    gi_error err = {0};
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    static const int shapes[][5] = {
        /* n, h, w, cin, cout */
        {2, 16, 16, 32, 48}, {1, 9, 13, 20, 7},  {3, 5, 4, 64, 64},
        {1, 1, 1, 3, 5},     {1, 11, 7, 18, 32}, /* bf16 products per tile group: 18 channels,
                                                    masked chunks */
        {2, 12, 10, 48, 96},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const int *s = shapes[i];
        int n = s[0], h = s[1], wd = s[2], cin = s[3], cout = s[4];
        size_t nx = (size_t)n * h * wd * cin, ny = (size_t)n * h * wd * cout;
        float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
        float *w = malloc(sizeof(float) * cout * 9 * cin), *bias = malloc(sizeof(float) * cout);
        double *ref = malloc(sizeof(double) * ny);
        for (size_t k = 0; k < nx; k++)
            x[k] = frand();
        for (size_t k = 0; k < (size_t)cout * 9 * cin; k++)
            w[k] = 0.2f * frand();
        for (int k = 0; k < cout; k++)
            bias[k] = frand();
        conv3x3_ref(x, w, bias, n, h, wd, cin, cout, ref);
        conv_weights cw = {w, NULL, bias, cout, cin, 3};
        int fused = cx->winograd_fused; /* im2col, Winograd, Winograd by tile groups */
        for (int wino = 0; wino <= 2; wino++) {
            if (wino == 2 && !fused)
                continue;
            cx->winograd = wino > 0;
            cx->winograd_fused = wino == 2;
            cx->winograd_min_tiles = 1;
            assert_int_equal(compute_begin(cx, &err), GS_OK);
            assert_int_equal(op_conv2d_same(cx, &cw, x, n, h, wd, y, &err), GS_OK);
            double e = rel_l2_f32_f64(y, ref, ny);
            printf("conv3x3 %s n=%d %dx%d %d->%d: rel L2 %.3g\n",
                   wino == 2   ? "winograd by tile groups"
                   : wino == 1 ? "winograd"
                               : "im2col",
                   n, h, wd, cin, cout, e);
            assert_true(e < 1e-6);
        }
        /* bf16 weights: im2col computes in bf16; Winograd widens the weights and
           computes in f32, so it matches the reference of the rounded weights,
           unless it runs bf16 GEMMs itself (bf16 engines: V and U rounded) */
        size_t nw = (size_t)cout * 9 * cin;
        uint16_t *wb = malloc(sizeof *wb * nw);
        f32_to_bf16(w, wb, (long)nw);
        for (size_t k = 0; k < nw; k++)
            w[k] = gi_bf16_to_f32(wb[k]);
        conv3x3_ref(x, w, bias, n, h, wd, cin, cout, ref);
        conv_weights cb = {NULL, wb, bias, cout, cin, 3};
        static const char *const how[] = {"im2col", "winograd", "winograd bf16",
                                          "winograd bf16 by tile groups"};
        for (int wino = 0; wino <= 3; wino++) {
            if (wino == 3 && !fused) {
                test_note_skip("test_ops conv3x3 bf16 weights, %s: not on this CPU", how[wino]);
                continue;
            }
            cx->winograd = wino > 0;
            cx->winograd_bf16 = wino >= 2;
            cx->winograd_fused = fused && (wino == 3 || wino == 1); /* f32 by groups where it can */
            assert_int_equal(compute_begin(cx, &err), GS_OK);
            assert_int_equal(op_conv2d_same(cx, &cb, x, n, h, wd, y, &err), GS_OK);
            double e = rel_l2_f32_f64(y, ref, ny);
            printf("conv3x3 bf16 weights, %s: rel L2 %.3g\n", how[wino], e);
            assert_true(e < (wino == 1 ? 1e-6 : 1e-2));
        }
        cx->winograd_bf16 = 0;
        cx->winograd_fused = fused;
        /* f16 weights (f16 engines): every path widens them and computes in f32
           (im2col through gemm_f16_weights, Winograd's filter transform), so
           each matches the reference of the f16 weights at f32's error */
        for (size_t k = 0; k < nw; k++)
            w[k] = 0.2f * frand();
        gi_f32_to_f16_span(w, wb, nw);
        for (size_t k = 0; k < nw; k++)
            w[k] = gi_f16_to_f32(wb[k]);
        conv3x3_ref(x, w, bias, n, h, wd, cin, cout, ref);
        cx->weights_f16 = 1;
        for (int wino = 0; wino <= 2; wino++) {
            if (wino == 2 && !fused)
                continue;
            cx->winograd = wino > 0;
            cx->winograd_fused = wino == 2;
            assert_int_equal(compute_begin(cx, &err), GS_OK);
            assert_int_equal(op_conv2d_same(cx, &cb, x, n, h, wd, y, &err), GS_OK);
            double e = rel_l2_f32_f64(y, ref, ny);
            printf("conv3x3 f16 weights, %s: rel L2 %.3g\n",
                   wino == 2   ? "winograd by tile groups"
                   : wino == 1 ? "winograd"
                               : "im2col",
                   e);
            assert_true(e < 1e-6);
        }
        cx->weights_f16 = 0;
        cx->winograd_fused = fused;
        free(wb);
        free(x);
        free(y);
        free(w);
        free(bias);
        free(ref);
    }
    compute_free(cx);
}

/* op_conv2d_rows as the VAE decoder's in-place blocks use it: output rows by
   bands of 3 (odd, so bands start inside a row of Winograd tiles), x read with
   its pixels 5 floats further apart than its channels (where the affine lets
   it), added into y with pixels 3 floats further apart over a residual.
   Returns the rel L2 of y - residual against ref [oh, ow, cout]; fails the test
   where a float between y's pixels or a residual without its sum changed. */
static double banded_error(gi_compute *cx, const conv_weights *cw, const float *x, int h, int w,
                           const float *ab, int silu, int up, const double *ref)
{
    gi_error err = {0};
    int cin = cw->cin, cout = cw->cout, oh = up * h, ow = up * w;
    int xs = ab ? cin + 5 : cin, ys = cout + 3;
    size_t px = (size_t)oh * ow;
    float *xw = malloc(sizeof(float) * (size_t)h * w * xs), *y = malloc(sizeof(float) * px * ys);
    float *sum = malloc(sizeof(float) * px * cout);
    double *shifted = malloc(sizeof(double) * px * cout);
    for (size_t k = 0; k < (size_t)h * w * xs; k++)
        xw[k] = 1e6f; /* between pixels: must not be read */
    for (size_t p = 0; p < (size_t)h * w; p++)
        memcpy(xw + p * xs, x + p * cin, sizeof(float) * cin);
    for (size_t k = 0; k < px * ys; k++)
        y[k] = k % ys < (size_t)cout ? 0.25f * (float)(k % 7) : -3.0f;
    for (int r0 = 0; r0 < oh; r0 += 3) {
        conv_dst d = {y + (size_t)r0 * ow * ys, r0, r0 + 3 < oh ? r0 + 3 : oh, ys, 1};
        assert_int_equal(op_conv2d_rows(cx, cw, xw, xs, h, w, ab, silu, up, &d, &err), GS_OK);
    }
    for (size_t p = 0; p < px; p++)
        for (int c = 0; c < ys; c++) {
            size_t k = p * ys + c;
            if (c >= cout) {
                assert_true(y[k] == -3.0f);
                continue;
            }
            sum[p * cout + c] = y[k];
            shifted[p * cout + c] = ref[p * cout + c] + 0.25 * (double)(k % 7);
        }
    double e = rel_l2_f32_f64(sum, shifted, px * cout);
    free(xw);
    free(y);
    free(sum);
    free(shifted);
    return e;
}

/* op_conv2d_pre: the per-channel affine (+ SiLU) and nearest upsampling on the
   way into a 3x3 convolution, by im2col and by Winograd, against the
   reference convolution of the map prepared in double precision. */
static void conv3x3_prologue_matches_reference(void **state)
{
    (void)state;
    gi_error err = {0};
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    static const int cases[][7] = {
        /* h, w, cin, cout, silu, up, affine */
        {12, 10, 16, 24, 1, 1, 1}, {7, 9, 16, 8, 0, 2, 1},
        {5, 6, 8, 8, 1, 2, 1},     {6, 5, 8, 16, 0, 2, 0}, /* the decoder's upsampler: no affine */
        {9, 7, 34, 32, 1, 2, 1}, /* bf16 per tile group: 34 channels, masked chunks */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int *s = cases[i];
        int h = s[0], wd = s[1], cin = s[2], cout = s[3], silu = s[4], up = s[5], affine = s[6];
        int oh = up * h, ow = up * wd;
        size_t nx = (size_t)h * wd * cin, ny = (size_t)oh * ow * cout;
        float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
        float *prep = malloc(sizeof(float) * (size_t)oh * ow * cin);
        float *w = malloc(sizeof(float) * cout * 9 * cin), *bias = malloc(sizeof(float) * cout);
        float *ab = malloc(sizeof(float) * 2 * cin);
        double *ref = malloc(sizeof(double) * ny);
        for (size_t k = 0; k < nx; k++)
            x[k] = 2.0f * frand();
        for (size_t k = 0; k < (size_t)cout * 9 * cin; k++)
            w[k] = 0.2f * frand();
        for (int k = 0; k < cout; k++)
            bias[k] = frand();
        for (int k = 0; k < 2 * cin; k++)
            ab[k] = affine ? frand() : (k < cin ? 1.0f : 0.0f);
        for (int yy = 0; yy < oh; yy++)
            for (int xx = 0; xx < ow; xx++)
                for (int c = 0; c < cin; c++) {
                    double v = (double)ab[c] * x[((size_t)(yy / up) * wd + xx / up) * cin + c] +
                               ab[cin + c];
                    if (silu)
                        v = v / (1.0 + exp(-v));
                    prep[((size_t)yy * ow + xx) * cin + c] = (float)v;
                }
        conv3x3_ref(prep, w, bias, 1, oh, ow, cin, cout, ref);
        conv_weights cw = {w, NULL, bias, cout, cin, 3};
        /* im2col; Winograd in one block; Winograd one row of tiles per block;
           the same in bf16 with oneDNN's GEMMs and with per-group products */
        static const char *const how[] = {"im2col",
                                          "winograd",
                                          "winograd by tile rows",
                                          "winograd bf16",
                                          "winograd bf16 by tile rows",
                                          "winograd bf16 groups",
                                          "winograd bf16 groups by tile rows",
                                          "winograd groups",
                                          "winograd groups by tile rows"};
        int fused = cx->winograd_fused;
        for (int run = 0; run < 9; run++) {
            if (run >= 5 && !fused) {
                printf("conv3x3 pre %s: not on this CPU\n", how[run]);
                continue;
            }
            cx->winograd = run > 0;
            cx->winograd_min_tiles = 1;
            cx->block_rows = run % 2 == 0 && run > 0 ? 1 : 1024;
            cx->winograd_bf16 = run >= 3 && run <= 6;
            cx->winograd_fused = run >= 5;
            assert_int_equal(compute_begin(cx, &err), GS_OK);
            assert_int_equal(
                op_conv2d_pre(cx, &cw, x, h, wd, affine ? ab : NULL, silu, up, y, &err), GS_OK);
            double e = rel_l2_f32_f64(y, ref, ny);
            printf("conv3x3 pre %s %dx%d %d->%d silu %d up %d: rel L2 %.3g\n", how[run], h, wd, cin,
                   cout, silu, up, e);
            assert_true(e < (cx->winograd_bf16 ? 1e-2 : 1e-6));
            double eb = banded_error(cx, &cw, x, h, wd, affine ? ab : NULL, silu, up, ref);
            printf("  the same by bands of 3 rows, strided, added to a residual: rel L2 %.3g\n",
                   eb);
            assert_true(eb < (cx->winograd_bf16 ? 1e-2 : 1e-6));
        }
        cx->winograd_fused = fused;
        free(x);
        free(y);
        free(prep);
        free(w);
        free(bias);
        free(ab);
        free(ref);
    }
    compute_free(cx);
}

/* The worst |C - (ref + 0.5 when accumulating)| / sum|ab| of a product written
   into C [m, ldc] over a fill of 0.5 (accumulate) or -7; the columns past n
   must keep their fill. */
static double widened_error(const float *c, const double *ref, const double *mag, int m, int n,
                            int ldc, int accumulate, const float *bias)
{
    double worst = 0;
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double want = ref[i * n + j] + (accumulate ? 0.5 : 0.0) + (bias ? bias[j] : 0.0);
            double e = fabs(c[i * ldc + j] - want) / mag[i * n + j];
            worst = e > worst ? e : worst;
        }
        for (int j = n; j < ldc; j++)
            assert_true(c[i * ldc + j] == (accumulate ? 0.5f : -7.0f));
    }
    return worst;
}

/* The widened bf16 matmul (AVX2 CPUs; forced here where oneDNN has a native
   one) against double sums of the same bf16 values: a K long enough that
   neither operand fits one panel, so A and B go by blocks; both B layouts,
   row strides wider than the rows, overwrite and accumulate. The products are
   exact, so only the f32 sums' rounding remains: bounded by K * 2^-24 times
   the sum of |a b|, and in practice ~sqrt(K) times smaller. */
static void gemm_bf16_widened_matches_reference(void **state)
{
    (void)state;
    enum { M = 70, N = 120, K = 40000, LDA = K + 3, LDB_T = K + 5, LDB_N = N + 7, LDC = N + 2 };
    gi_error err = {0};
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    gemm_bf16_force_widening(cx->bf16);
    assert_false(gemm_bf16_native(cx->bf16));
    uint16_t *a = malloc(sizeof *a * M * LDA), *bt = malloc(sizeof *bt * N * LDB_T);
    uint16_t *bn = malloc(sizeof *bn * K * LDB_N);
    float *c = malloc(sizeof *c * M * LDC);
    double *ref = malloc(sizeof *ref * M * N), *mag = malloc(sizeof *mag * M * N);
    assert_true(a && bt && bn && c && ref && mag);
    for (long i = 0; i < (long)M * LDA; i++) {
        float f = frand();
        f32_to_bf16(&f, &a[i], 1);
    }
    for (long i = 0; i < (long)N * LDB_T; i++) {
        float f = frand();
        f32_to_bf16(&f, &bt[i], 1);
    }
    for (long k = 0; k < K; k++) /* the same B stored [K, N] */
        for (int n = 0; n < N; n++)
            bn[k * LDB_N + n] = bt[(long)n * LDB_T + k];
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            double sum = 0, abs_sum = 0;
            for (long k = 0; k < K; k++) {
                double p = (double)gi_bf16_to_f32(a[(long)m * LDA + k]) *
                           gi_bf16_to_f32(bt[(long)n * LDB_T + k]);
                sum += p;
                abs_sum += fabs(p);
            }
            ref[m * N + n] = sum;
            mag[m * N + n] = abs_sum;
        }
    int saved = compute_enter(cx);
    for (int run = 0; run < 4; run++) {
        int trans_b = run % 2 == 0, accumulate = run >= 2;
        for (int i = 0; i < M * LDC; i++)
            c[i] = accumulate ? 0.5f : -7.0f; /* the pad columns must stay -7 */
        assert_int_equal(gemm_bf16(cx->bf16, M, N, K, a, LDA, trans_b ? bt : bn,
                                   trans_b ? LDB_T : LDB_N, trans_b, accumulate ? 1.0f : 0.0f, c,
                                   LDC, &err),
                         GS_OK);
        double worst = widened_error(c, ref, mag, M, N, LDC, accumulate, NULL);
        printf("widened bf16 gemm, B %s, %s: worst error / sum|ab| %.3g\n",
               trans_b ? "[N, K]" : "[K, N]", accumulate ? "accumulate" : "overwrite", worst);
        assert_true(worst < 1e-6); /* measured 1.1e-8 */
    }
    /* f32 activations by widened bf16 weights (gemm_bf16_weights), by panels of B,
       each panel's matmul adding its slice of the bias */
    float *af = malloc(sizeof *af * M * LDA), bias[N];
    assert_non_null(af);
    for (long i = 0; i < (long)M * LDA; i++)
        af[i] = gi_bf16_to_f32(a[i]);
    for (int j = 0; j < N; j++)
        bias[j] = (float)(j % 7) - 3.0f;
    for (int form = 0; form < 4; form++) {
        int accumulate = form & 1;
        const float *b = form & 2 ? bias : NULL;
        for (int i = 0; i < M * LDC; i++)
            c[i] = accumulate ? 0.5f : -7.0f;
        assert_int_equal(gemm_bf16_weights(cx->bf16, M, N, K, af, LDA, bt, LDB_T, b,
                                           accumulate ? 1.0f : 0.0f, c, LDC, &err),
                         GS_OK);
        double worst = widened_error(c, ref, mag, M, N, LDC, accumulate, b);
        printf("f32 by widened bf16 weights, %s%s: worst error / sum|ab| %.3g\n",
               accumulate ? "accumulate" : "overwrite", b ? ", bias" : "", worst);
        assert_true(worst < 1e-6);
    }
    free(af);
    compute_leave(saved);
    free(a);
    free(bt);
    free(bn);
    free(c);
    free(ref);
    free(mag);
    compute_free(cx);
}

/* Where bf16 matmuls are widened, layers with bf16 weights multiply f32
   activations (bf16's error: the weights' rounding only). A linear layer, a
   1x1 and an im2col 3x3 convolution against double sums of the unrounded
   inputs by the bf16 weights: f32-level errors, where activations rounded to
   bf16 would show ~1e-3. */
static void bf16_weights_keep_f32_activations(void **state)
{
    (void)state;
    enum { ROWS = 96, CIN = 48, COUT = 40, H = 8, W = 12 };
    gi_error err = {0};
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    gemm_bf16_force_widening(cx->bf16);
    cx->winograd = 0; /* the 3x3 through im2col */
    float x[ROWS * CIN * 9], bias[COUT], y[ROWS * COUT];
    uint16_t wb[COUT * 9 * CIN];
    for (int i = 0; i < ROWS * CIN * 9; i++)
        x[i] = frand();
    for (int i = 0; i < COUT; i++)
        bias[i] = frand();
    for (int i = 0; i < COUT * 9 * CIN; i++) {
        float f = frand();
        f32_to_bf16(&f, &wb[i], 1);
    }
    int saved = compute_enter(cx);
    for (int kind = 0; kind < 3; kind++) {
        double num = 0, den = 0;
        assert_int_equal(compute_begin(cx, &err), GS_OK);
        if (kind == 0) {
            linear_weights lw = {.wb = wb, .b = bias, .out = COUT, .in = CIN};
            assert_int_equal(op_linear(cx, &lw, x, ROWS, y, &err), GS_OK);
        } else {
            conv_weights cw = {NULL, wb, bias, COUT, CIN, kind == 1 ? 1 : 3};
            assert_int_equal(op_conv2d_same(cx, &cw, x, 1, H, W, y, &err), GS_OK);
        }
        for (int r = 0; r < H * W; r++)
            for (int o = 0; o < COUT; o++) {
                int py = r / W, px = r % W, k = kind == 2 ? 3 : 1;
                double sum = bias[o];
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int sy = py + ky - k / 2, sx = px + kx - k / 2;
                        if (kind > 0 && (sy < 0 || sy >= H || sx < 0 || sx >= W))
                            continue;
                        const float *xi =
                            kind == 0 ? x + (size_t)r * CIN : x + ((size_t)sy * W + sx) * CIN;
                        const uint16_t *wi = wb + ((size_t)o * k * k + ky * k + kx) * CIN;
                        for (int c = 0; c < CIN; c++)
                            sum += (double)xi[c] * gi_bf16_to_f32(wi[c]);
                    }
                double d = y[r * COUT + o] - sum;
                num += d * d;
                den += sum * sum;
            }
        double e = sqrt(num / den);
        printf("bf16 weights, f32 activations, %s: rel L2 %.3g\n",
               kind == 0   ? "linear"
               : kind == 1 ? "1x1 conv"
                           : "3x3 conv (im2col)",
               e);
        assert_true(e < 1e-6);
    }
    compute_leave(saved);
    compute_free(cx);
}

/* op_linear, op_linear_add and op_conv1x1_add on every path a layer can take:
   f32 weights (oneDNN's f32 matmul adding the bias), bf16 weights with bf16
   products (the bias, and for the _add forms the residual in y, summed as the
   products are stored: skipped where the CPU has no bf16 matmul), bf16
   weights widened (the bias written or added first), bf16 products
   emulated by widening (the matmul's own bias written or added first), and
   f16 weights widened (f16 engines, on every CPU). Each against a double
   reference; a bias or residual dropped or doubled is off by O(1). */
static void linear_bias_and_residual_paths(void **state)
{
    (void)state;
    enum { ROWS = 300, IN = 72, OUT = 56 };
    gi_error err = {0};
    static float x[ROWS * IN], w[OUT * IN], bias[OUT], y0[ROWS * OUT], y[ROWS * OUT];
    static uint16_t wb[OUT * IN], wh[OUT * IN];
    for (int i = 0; i < ROWS * IN; i++)
        x[i] = frand();
    for (int i = 0; i < OUT * IN; i++) {
        f32_to_bf16(&(float){frand()}, &wb[i], 1);
        w[i] = gi_bf16_to_f32(wb[i]); /* the same weights both ways */
        wh[i] = gi_f32_to_f16(w[i]);  /* and as f16 (8 bits of mantissa fit in 11) */
        assert_true(gi_f16_to_f32(wh[i]) == w[i] || fabsf(w[i]) < 0x1p-14f);
    }
    for (int i = 0; i < OUT; i++)
        bias[i] = frand();
    for (int i = 0; i < ROWS * OUT; i++)
        y0[i] = 4.0f * frand();
    for (int path = 0; path < 5; path++) {
        gi_compute *cx;
        assert_int_equal(compute_create(2, &cx, &err), GS_OK);
        cx->weights_f16 = path == 4;
        if (path == 1 && !gemm_bf16_native(cx->bf16)) {
            compute_free(cx);
            continue;
        }
        if (path == 2 || path == 3)
            gemm_bf16_force_widening(cx->bf16);
        if (path == 3)
            gemm_bf16_emulate_native(cx->bf16);
        int saved = compute_enter(cx);
        for (int form = 0; form < 3; form++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                const float *b = with_bias ? bias : NULL;
                float *wf = path == 0 ? w : NULL;
                uint16_t *w16 = path == 0 ? NULL : path == 4 ? wh : wb;
                linear_weights lw = {.w = wf, .wb = w16, .b = (float *)b, .out = OUT, .in = IN};
                conv_weights cw = {wf, w16, (float *)b, OUT, IN, 1};
                memcpy(y, y0, sizeof y);
                assert_int_equal(compute_begin(cx, &err), GS_OK);
                gs_status st = form == 0   ? op_linear(cx, &lw, x, ROWS, y, &err)
                               : form == 1 ? op_linear_add(cx, &lw, x, ROWS, y, &err)
                                           : op_conv1x1_add(cx, &cw, x, ROWS, y, &err);
                assert_int_equal(st, GS_OK);
                double num = 0, den = 0;
                for (int r = 0; r < ROWS; r++)
                    for (int o = 0; o < OUT; o++) {
                        double sum = (b ? b[o] : 0.0) + (form ? y0[r * OUT + o] : 0.0);
                        for (int c = 0; c < IN; c++) {
                            /* bf16 products round the activations */
                            float xv = x[r * IN + c];
                            if (path == 1 || path == 3) {
                                uint16_t h;
                                f32_to_bf16(&xv, &h, 1);
                                xv = gi_bf16_to_f32(h);
                            }
                            sum += (double)xv * w[o * IN + c];
                        }
                        double d = y[r * OUT + o] - sum;
                        num += d * d;
                        den += sum * sum;
                    }
                double e = sqrt(num / den);
                printf("%s, %s, %s bias: rel L2 %.3g\n",
                       path == 0   ? "f32"
                       : path == 1 ? "bf16 products"
                       : path == 2 ? "bf16 widened"
                       : path == 3 ? "bf16 products emulated"
                                   : "f16 widened",
                       form == 0   ? "op_linear"
                       : form == 1 ? "op_linear_add"
                                   : "op_conv1x1_add",
                       with_bias ? "with" : "no", e);
                assert_true(e < 1e-6);
            }
        compute_leave(saved);
        compute_free(cx);
    }
}

/* A compute context on one of the products' paths: 0 and 1 as this CPU runs
   them (1 only where it multiplies bf16 natively: NULL elsewhere), 2 bf16
   weights widened to f32, 3 widened but handed bf16 activations as a native
   bf16 CPU is (emulated exactly). */
static gi_compute *compute_on_path(int path)
{
    gi_error err = {0};
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    if (path == 1 && !gemm_bf16_native(cx->bf16)) {
        compute_free(cx);
        return NULL;
    }
    if (path >= 2)
        gemm_bf16_force_widening(cx->bf16);
    if (path == 3)
        gemm_bf16_emulate_native(cx->bf16);
    return cx;
}

/* op_linear_shared (q, k and v on one input, rounded to bf16 once) gives each
   layer exactly what op_linear gives it, its own bias included, on every path:
   f32 weights, bf16 products (native or emulated by widening: the shared
   rounding runs on every CPU) and bf16 weights widened. */
static void linear_shared_matches_each_layer(void **state)
{
    (void)state;
    enum { ROWS = 77, IN = 40, N = 3 };
    static const int outs[N] = {40, 24, 56};
    gi_error err = {0};
    static float x[ROWS * IN], w[N][56 * IN], bias[N][56], y1[N][ROWS * 56], y2[N][ROWS * 56];
    static uint16_t wb[N][56 * IN];
    for (int i = 0; i < ROWS * IN; i++)
        x[i] = frand();
    for (int l = 0; l < N; l++) {
        for (int i = 0; i < outs[l] * IN; i++) {
            f32_to_bf16(&(float){frand()}, &wb[l][i], 1);
            w[l][i] = gi_bf16_to_f32(wb[l][i]);
        }
        for (int i = 0; i < outs[l]; i++)
            bias[l][i] = 2.0f * frand();
    }
    for (int path = 0; path < 4; path++) {
        gi_compute *cx = compute_on_path(path);
        if (!cx)
            continue;
        int saved = compute_enter(cx);
        linear_weights lw[N];
        const linear_weights *lws[N];
        float *ys[N];
        for (int l = 0; l < N; l++) {
            /* the second layer without a bias, as SD's q, k and v are */
            lw[l] = (linear_weights){.w = path == 0 ? w[l] : NULL,
                                     .wb = path == 0 ? NULL : wb[l],
                                     .b = l == 1 ? NULL : bias[l],
                                     .out = outs[l],
                                     .in = IN};
            lws[l] = &lw[l];
            ys[l] = y2[l];
        }
        assert_int_equal(compute_begin(cx, &err), GS_OK);
        for (int l = 0; l < N; l++)
            assert_int_equal(op_linear(cx, &lw[l], x, ROWS, y1[l], &err), GS_OK);
        assert_int_equal(op_linear_shared(cx, lws, N, x, ROWS, ys, &err), GS_OK);
        for (int l = 0; l < N; l++)
            assert_memory_equal(y1[l], y2[l], sizeof(float) * ROWS * outs[l]);
        compute_leave(saved);
        compute_free(cx);
    }
}

/* Weights packed for the matmul (gemm_pack.h) give the bits of the stored
   layout on every path: f32 products, bf16 ones (native, or widening, where
   packed weights are unpacked first) and with the bias and residual of
   op_linear_add; packing and unpacking are inverses. */
static void packed_weights_give_the_plain_products(void **state)
{
    (void)state;
    enum { ROWS = 45, IN = 96, OUT = 128 };
    gi_error err = {0};
    static float x[ROWS * IN], w[OUT * IN], wp[OUT * IN], back[OUT * IN], bias[OUT];
    static float y0[ROWS * OUT], y1[ROWS * OUT];
    static uint16_t wb[OUT * IN], wbp[OUT * IN], wbback[OUT * IN];
    for (int i = 0; i < ROWS * IN; i++)
        x[i] = frand();
    for (int i = 0; i < OUT * IN; i++)
        w[i] = frand() * 0.2f;
    for (int i = 0; i < OUT; i++)
        bias[i] = frand();
    f32_to_bf16(w, wb, OUT * IN);
    assert_true(gemm_pack_fits(OUT, IN));
    assert_false(gemm_pack_fits(OUT + 32, IN) || gemm_pack_fits(OUT, IN + 8));
    gemm_pack(w, wp, OUT, IN, 1);
    gemm_pack(wb, wbp, OUT, IN, 0);
    assert_true(memcmp(wp, w, sizeof w) != 0 && memcmp(wbp, wb, sizeof wb) != 0);
    gemm_unpack(wp, back, OUT, IN, 1);
    gemm_unpack(wbp, wbback, OUT, IN, 0);
    assert_memory_equal(back, w, sizeof w);
    assert_memory_equal(wbback, wb, sizeof wb);
    /* f32 element (k, n) of a panel at 64 k + n % 64; bf16 pairs likewise */
    assert_true(wp[64 * 5 + 3] == w[3 * IN + 5] && wp[64 * IN + 64 * 7 + 2] == w[66 * IN + 7]);
    assert_true(wbp[2 * (64 * 3 + 9) + 1] == wb[9 * IN + 7]);
    for (int path = 0; path < 4; path++) { /* f32, bf16, bf16 widened, widened as native */
        int f32 = path == 0;
        if (!gemm_packs(f32))
            continue; /* the loader packs nothing for this CPU */
        gi_compute *cx = compute_on_path(path);
        if (!cx)
            continue;
        int saved = compute_enter(cx);
        linear_weights plain = {
            .w = f32 ? w : NULL, .wb = f32 ? NULL : wb, .b = bias, .out = OUT, .in = IN};
        linear_weights packed = plain;
        packed.w = f32 ? wp : NULL;
        packed.wb = f32 ? NULL : wbp;
        packed.packed = 1;
        assert_int_equal(compute_begin(cx, &err), GS_OK);
        assert_int_equal(op_linear(cx, &plain, x, ROWS, y0, &err), GS_OK);
        assert_int_equal(op_linear(cx, &packed, x, ROWS, y1, &err), GS_OK);
        assert_memory_equal(y0, y1, sizeof y0);
        assert_int_equal(op_linear_add(cx, &plain, x, ROWS, y0, &err), GS_OK);
        assert_int_equal(op_linear_add(cx, &packed, x, ROWS, y1, &err), GS_OK);
        assert_memory_equal(y0, y1, sizeof y0);
        compute_leave(saved);
        compute_free(cx);
    }
}

/* The feed-forward's bf16 route (GEGLU rounding as it stores, then the
   product on that input) gives op_geglu then op_linear_add's bits: the same
   rounding of the same values, one pass fewer. Where the products take bf16
   input (native, or emulated as AMX/Zen 4 run them). */
static void geglu_bf16_route_matches_the_f32_one(void **state)
{
    (void)state;
    enum { ROWS = 37, INNER = 72, OUT = 40 };
    gi_error err = {0};
    static float x[ROWS * 2 * INNER], g[ROWS * INNER], bias[OUT], resid[ROWS * OUT];
    static uint16_t wb[OUT * INNER], gb[ROWS * INNER], gb_ref[ROWS * INNER];
    for (int i = 0; i < ROWS * 2 * INNER; i++)
        x[i] = 3.0f * frand();
    for (int i = 0; i < OUT * INNER; i++)
        f32_to_bf16(&(float){frand()}, &wb[i], 1);
    for (int i = 0; i < OUT; i++)
        bias[i] = frand();
    for (int i = 0; i < ROWS * OUT; i++)
        resid[i] = frand(); /* what both routes add to */
    for (int path = 1; path <= 3; path += 2) {
        gi_compute *cx = compute_on_path(path);
        if (!cx)
            continue;
        int saved = compute_enter(cx);
        assert_int_equal(compute_begin(cx, &err), GS_OK);
        linear_weights lw = {.wb = wb, .b = bias, .out = OUT, .in = INNER};
        assert_true(op_linear_takes_bf16(cx, &lw));
        float r1[ROWS * OUT], r2[ROWS * OUT];
        memcpy(r1, resid, sizeof r1);
        memcpy(r2, resid, sizeof r2);
        op_geglu(cx, x, ROWS, INNER, g);
        f32_to_bf16(g, gb_ref, ROWS * INNER);
        assert_int_equal(op_linear_add(cx, &lw, g, ROWS, r1, &err), GS_OK);
        op_geglu_bf16(cx, x, ROWS, INNER, gb);
        assert_memory_equal(gb, gb_ref, sizeof gb);
        assert_int_equal(op_linear_add_bf16(cx, &lw, gb, ROWS, r2, &err), GS_OK);
        assert_memory_equal(r1, r2, sizeof r1);
        compute_leave(saved);
        compute_free(cx);
    }
}

/* f32 -> f16 by spans (F16C where the CPU has it) gives the scalar
   conversion's bits for every non-NaN input: every f16 value itself, the
   midpoints between neighbours (ties to even) and a step either side of
   them, the overflow edge, subnormals, signed zeros, infinities and random
   bit patterns; at every offset of the vector body's tail. NaN stays NaN. */
static void f32_to_f16_spans_round_as_the_scalar(void **state)
{
    (void)state;
    enum { N = 6 * 65536 + 4096 };
    float *x = malloc(sizeof *x * N);
    uint16_t *h = malloc(sizeof *h * N);
    assert_non_null(x);
    assert_non_null(h);
    size_t n = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        uint16_t a = (uint16_t)i, b = (uint16_t)(i + 1);
        float fa = gi_f16_to_f32(a), fb = gi_f16_to_f32(b);
        float mid = (float)(((double)fa + fb) / 2); /* exact in f32 */
        x[n++] = fa;
        x[n++] = mid;
        x[n++] = nextafterf(mid, INFINITY);
        x[n++] = nextafterf(mid, -INFINITY);
        x[n++] = -mid;
        x[n++] = gi_bits_to_f32((uint32_t)rand() << 1 ^ (uint32_t)rand());
    }
    static const float edges[] = {65504.0f,   65519.99f, 65520.0f, 1e9f,         0x1p-24f, 0x1p-25f,
                                  0x1.8p-25f, 0x1p-26f,  0x1p-14f, 0x1.ffcp-15f, 0.0f};
    for (size_t i = 0; i < sizeof edges / sizeof *edges; i++) {
        x[n++] = edges[i];
        x[n++] = -edges[i];
    }
    x[n++] = INFINITY;
    x[n++] = -INFINITY;
    x[n++] = NAN;
    for (size_t first = 0; first < 9; first++) {
        gi_f32_to_f16_span(x + first, h, n - first);
        for (size_t i = 0; i < n - first; i++) {
            float v = x[first + i];
            if (isnan(v)) {
                assert_true((h[i] & 0x7c00) == 0x7c00 && (h[i] & 0x3ff));
                continue;
            }
            if (h[i] != gi_f32_to_f16(v))
                fail_msg("%a -> %04x, scalar %04x (f16c %d)", (double)v, h[i], gi_f32_to_f16(v),
                         gi_has_f16c());
        }
    }
    free(x);
    free(h);
}

/* The loader's one-pass f16 -> bf16 (bf16 engines loading f16 checkpoints)
   gives the bits of its two passes, f16 -> f32 -> f32_to_bf16, for every f16
   value, at every offset of the vector body's tail. */
static void f16_to_bf16_span_is_two_passes_in_one(void **state)
{
    (void)state;
    enum { N = 65536 + 9 };
    static uint16_t bits[N], one[N], two[N];
    static float f[N];
    for (int i = 0; i < N; i++)
        bits[i] = (uint16_t)(i * 40503u); /* every value, scattered */
    for (size_t first = 0; first < 9; first++) {
        size_t n = N - first;
        gi_f16_to_bf16_span(bits + first, one, n);
        gi_f16_to_f32_span(bits + first, f, n);
        f32_to_bf16(f, two, (long)n);
        for (size_t i = 0; i < n; i++)
            if (one[i] != two[i])
                fail_msg("f16 %04x -> bf16 %04x, two passes %04x", bits[first + i], one[i], two[i]);
    }
}

/* A convolution row [cin][k][k] into the kernels' [k][k][cin], as f32, bf16
   and f16, for channel counts around the 8-wide transpose and kernel sizes
   below, at and above 8 positions: the same bits as the definition (the
   scalar loops, themselves checked against the index formula). Values near
   bf16's and f16's ties and past f16's range. */
static void conv_rows_reorder_as_defined(void **state)
{
    (void)state;
    static const int cins[] = {1, 7, 8, 9, 16, 23, 320, 323};
    static const int kks[] = {1, 4, 9, 25};
    enum { MAX = 323 * 25 };
    float *src = malloc(sizeof *src * MAX), *a = malloc(sizeof *a * MAX),
          *b = malloc(sizeof *b * MAX);
    uint16_t *ha = malloc(sizeof *ha * MAX), *hb = malloc(sizeof *hb * MAX);
    assert_true(src && a && b && ha && hb);
    for (int i = 0; i < MAX; i++) {
        float v = (float)(rand() % 20001 - 10000) / 997.0f;
        if (i % 5 == 1) /* a bf16 tie: the low half exactly 0x8000 */
            v = gi_bits_to_f32((gi_f32_to_bits(v) & 0xffff0000u) | 0x8000u);
        if (i % 97 == 3)
            v *= 1e5f; /* beyond f16: infinity both ways */
        src[i] = v;
    }
    for (size_t c = 0; c < sizeof cins / sizeof *cins; c++)
        for (size_t q = 0; q < sizeof kks / sizeof *kks; q++) {
            int cin = cins[c], kk = kks[q];
            size_t n = (size_t)cin * kk;
            wl_conv_row_order_scalar(src, a, cin, kk);
            for (int p = 0; p < kk; p++)
                for (int i = 0; i < cin; i++)
                    assert_memory_equal(&a[(size_t)p * cin + i], &src[(size_t)i * kk + p],
                                        sizeof *a);
            wl_conv_row_order(src, b, cin, kk);
            assert_memory_equal(a, b, n * sizeof *a);

            wl_conv_row_order_bf16_scalar(src, ha, cin, kk);
            f32_to_bf16(a, hb, (long)n);
            assert_memory_equal(ha, hb, n * sizeof *ha);
            wl_conv_row_order_bf16(src, hb, cin, kk);
            assert_memory_equal(ha, hb, n * sizeof *ha);

            wl_conv_row_order_f16_scalar(src, ha, cin, kk);
            gi_f32_to_f16_span(a, hb, n);
            assert_memory_equal(ha, hb, n * sizeof *ha);
            wl_conv_row_order_f16(src, hb, cin, kk);
            assert_memory_equal(ha, hb, n * sizeof *ha);
        }
    free(src);
    free(a);
    free(b);
    free(ha);
    free(hb);
}

/* f32 activations by widened 16-bit weights [N, K] beyond one 8 MB panel,
   both ways a product is split: a wide one (K <= 2N) by panels of B's rows,
   each a matmul over all of A; a deep one (K > 2N: im2col convolutions) by
   panels of B's columns, accumulating into C. bf16 and f16 weights, bias and
   accumulate, against a double reference. */
static void widened_weights_wide_and_deep(void **state)
{
    (void)state;
    static const int shapes[][3] = {{20, 2100, 1100}, {24, 96, 30000}}; /* M, N, K */
    gi_error err = {0};
    gi_compute *cx;
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    int saved = compute_enter(cx);
    for (int s = 0; s < 2; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ldc = N + 3;
        assert_true((long)N * K > (2L << 20)); /* more than one panel */
        float *a = malloc(sizeof *a * M * K), *c = malloc(sizeof *c * M * ldc);
        float *bias = malloc(sizeof *bias * N);
        uint16_t *w = malloc(sizeof *w * N * K);
        double *ref = malloc(sizeof *ref * M * N), *mag = malloc(sizeof *mag * M * N);
        float *wf = malloc(sizeof *wf * N * K);
        for (long i = 0; i < (long)M * K; i++)
            a[i] = frand();
        for (int j = 0; j < N; j++)
            bias[j] = frand();
        for (int f16 = 0; f16 < 2; f16++) {
            for (long i = 0; i < (long)N * K; i++) {
                float v = 0.1f * frand();
                if (f16) {
                    w[i] = gi_f32_to_f16(v);
                    wf[i] = gi_f16_to_f32(w[i]);
                } else {
                    f32_to_bf16(&v, &w[i], 1);
                    wf[i] = gi_bf16_to_f32(w[i]);
                }
            }
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double sum = 0, m = 0;
                    for (int k = 0; k < K; k++) {
                        double p = (double)a[(long)i * K + k] * wf[(long)j * K + k];
                        sum += p;
                        m += fabs(p);
                    }
                    ref[i * N + j] = sum;
                    mag[i * N + j] = m;
                }
            for (int form = 0; form < 4; form++) {
                int accumulate = form & 1;
                const float *b = form & 2 ? bias : NULL;
                for (int i = 0; i < M * ldc; i++)
                    c[i] = accumulate ? 0.5f : -7.0f;
                gs_status st = (f16 ? gemm_f16_weights : gemm_bf16_weights)(
                    cx->bf16, M, N, K, a, K, w, K, b, accumulate ? 1.0f : 0.0f, c, ldc, &err);
                assert_int_equal(st, GS_OK);
                double worst = widened_error(c, ref, mag, M, N, ldc, accumulate, b);
                printf("%s weights %dx%dx%d (%s), %s%s: worst error / sum|ab| %.3g\n",
                       f16 ? "f16" : "bf16", M, N, K, K > 2 * N ? "deep" : "wide",
                       accumulate ? "accumulate" : "overwrite", b ? ", bias" : "", worst);
                assert_true(worst < 1e-6);
            }
        }
        free(a);
        free(c);
        free(bias);
        free(w);
        free(wf);
        free(ref);
        free(mag);
    }
    compute_leave(saved);
    compute_free(cx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(f32_to_f16_spans_round_as_the_scalar),
        cmocka_unit_test(exp_and_gelu_are_accurate),
        cmocka_unit_test(geglu_matches_reference),
        cmocka_unit_test(attention_matches_reference),
        cmocka_unit_test(fused_attention_stays_in_its_scratch),
        cmocka_unit_test(conv3x3_matches_reference),
        cmocka_unit_test(conv3x3_prologue_matches_reference),
        cmocka_unit_test(gemm_bf16_widened_matches_reference),
        cmocka_unit_test(widened_weights_wide_and_deep),
        cmocka_unit_test(f16_to_bf16_span_is_two_passes_in_one),
        cmocka_unit_test(conv_rows_reorder_as_defined),
        cmocka_unit_test(bf16_weights_keep_f32_activations),
        cmocka_unit_test(linear_bias_and_residual_paths),
        cmocka_unit_test(linear_shared_matches_each_layer),
        cmocka_unit_test(geglu_bf16_route_matches_the_f32_one),
        cmocka_unit_test(packed_weights_give_the_plain_products),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
