/*
 * kernels_bench - the engine's own kernels at SD1.5 512x512 shapes, each in
 * its variants: attention (blocked GEMMs f32/bf16, one-pass f32/bf16) and 3x3
 * convolutions (im2col with f32 or bf16 weights, Winograd f32/bf16).
 *
 * Whole-pipeline runs on a shared VM vary by 10-15% between runs; a kernel
 * timed alone, best of REPS after a warm-up, shows changes of a few percent.
 * GFLOP/s count a convolution as its direct multiply-adds (so Winograd can
 * pass the GEMM rate) and attention as its two products.
 * Usage: kernels_bench [threads]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "compute/compute.h"
#include "compute/gemm_bf16.h"
#include "compute/ops.h"
#include "bench_util.h"

#define REPS 5

typedef struct attn_case {
    const char *name;
    int n, tq, tk, heads, d;
} attn_case;

typedef struct conv_case {
    const char *name;
    int n, h, w, cin, cout;
} conv_case;

/* One kernel call: an attention case or a convolution case with its data. */
typedef struct call {
    gi_compute *cx;
    const attn_case *attn;
    const conv_case *conv;
    const conv_weights *cw;
    const float *q, *k, *v, *x;
    float *out;
} call;

static gs_status run_call(const call *c, gi_error *err)
{
    if (c->attn) {
        const attn_case *a = c->attn;
        int w = a->heads * a->d;
        return op_attention(c->cx, c->q, w, c->k, c->v, w, a->n, a->tq, a->tk, a->heads, a->d, 0,
                            c->out, err);
    }
    return op_conv2d_same(c->cx, c->cw, c->x, c->conv->n, c->conv->h, c->conv->w, c->out, err);
}

/* The best of REPS timed calls after one that warms up. */
static double best_time(const call *c)
{
    gi_error err;
    double best = 1e30;
    for (int r = 0; r <= REPS; r++) {
        compute_begin(c->cx, &err);
        double t0 = now_s();
        if (run_call(c, &err) != GS_OK) {
            fprintf(stderr, "%s\n", err.msg);
            exit(1);
        }
        double t = now_s() - t0;
        if (r > 0 && t < best)
            best = t;
    }
    return best;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 0;
    gi_compute *cx;
    gi_error err;
    if (compute_create(threads, &cx, &err) != GS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    int bf16 = 1;
    printf("threads %d, bf16 matmuls %s, one-pass attention %s, its bf16 products %s, "
           "AVX2 one-pass %s\n\n",
           compute_threads(cx), gemm_bf16_native(cx->bf16) ? "native" : "widened to f32",
           cx->attn_fused ? "yes" : "no", cx->attn_fused_bf16 ? "yes" : "no",
           cx->attn_avx2 ? "yes" : "no");

    static const attn_case attns[] = {
        {"self 64^2 latent", 2, 4096, 4096, 8, 40},
        {"self 32^2 latent", 2, 1024, 1024, 8, 80},
        {"self 16^2 latent", 2, 256, 256, 8, 160},
        {"cross 64^2 x 77", 2, 4096, 77, 8, 40},
    };
    printf("attention (ms, GFLOP/s)        blocked f32      blocked bf16     one-pass f32     "
           "one-pass bf16    AVX2 one-pass\n");
    int fused = cx->attn_fused, fused_bf16 = cx->attn_fused_bf16, avx2 = cx->attn_avx2;
    for (size_t i = 0; i < sizeof attns / sizeof attns[0]; i++) {
        const attn_case *c = &attns[i];
        size_t w = (size_t)c->heads * c->d;
        float *q = random_floats((size_t)c->n * c->tq * w, 4.0f),
              *k = random_floats((size_t)c->n * c->tk * w, 4.0f);
        float *v = random_floats((size_t)c->n * c->tk * w, 1.0f),
              *out = random_floats((size_t)c->n * c->tq * w, 0.0f);
        double flop = 4.0 * c->n * c->heads * (double)c->tq * c->tk * c->d;
        printf("  %-26s", c->name);
        for (int kind = 0; kind < 5; kind++) {
            int want_bf16 = kind == 1 || kind == 3, want_fused = kind == 2 || kind == 3;
            if ((want_bf16 && !bf16) || (want_fused && !fused) || (kind == 3 && !fused_bf16) ||
                (kind == 4 && !avx2)) {
                printf("  %15s", "-");
                continue;
            }
            cx->attn_bf16 = want_bf16;
            cx->attn_fused = want_fused;
            cx->attn_avx2 = kind == 4;
            call cl = {.cx = cx, .attn = c, .q = q, .k = k, .v = v, .out = out};
            double t = best_time(&cl);
            printf("  %6.1f %8.1f", t * 1e3, flop / t * 1e-9);
            fflush(stdout);
        }
        printf("\n");
        free(q);
        free(k);
        free(v);
        free(out);
    }
    cx->attn_bf16 = 0;
    cx->attn_fused = fused;
    cx->attn_avx2 = avx2;

    static const conv_case convs[] = {
        {"unet 64^2 320->320 (n=2)", 2, 64, 64, 320, 320},
        {"unet 32^2 640->640 (n=2)", 2, 32, 32, 640, 640},
        {"unet 16^2 1280->1280 (n=2)", 2, 16, 16, 1280, 1280},
        {"unet 8^2 1280->1280 (n=2)", 2, 8, 8, 1280, 1280},
        {"vae 256^2 256->256", 1, 256, 256, 256, 256},
        {"vae 512^2 128->128", 1, 512, 512, 128, 128},
    };
    printf("\n3x3 conv (ms, GFLOP/s)         im2col f32       wino f32 dnnl    wino f32 groups  "
           "im2col bf16w     wino bf16 dnnl   wino bf16 groups\n");
    int wino_fused = cx->winograd_fused;
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        const conv_case *c = &convs[i];
        size_t nw = (size_t)c->cout * 9 * c->cin;
        float *x = random_floats((size_t)c->n * c->h * c->w * c->cin, 2.0f);
        float *y = random_floats((size_t)c->n * c->h * c->w * c->cout, 0.0f);
        conv_weights cw = {.w = random_floats(nw, 0.1f),
                           .b = random_floats((size_t)c->cout, 1.0f),
                           .cout = c->cout,
                           .cin = c->cin,
                           .k = 3};
        conv_weights cb = cw;
        cb.w = NULL;
        cb.wb = malloc(nw * sizeof *cb.wb);
        f32_to_bf16(cw.w, cb.wb, (long)nw);
        double flop = 2.0 * c->n * c->h * c->w * c->cout * 9.0 * c->cin;
        printf("  %-26s", c->name);
        /* f32: im2col, Winograd with oneDNN's GEMMs, by tile groups; bf16
           weights: im2col, Winograd in bf16 with oneDNN's GEMMs, by tile groups */
        for (int kind = 0; kind < 6; kind++) {
            if ((kind >= 3 && !bf16) || ((kind == 2 || kind == 5) && !wino_fused)) {
                printf("  %15s", "-");
                continue;
            }
            cx->winograd = kind != 0 && kind != 3;
            cx->winograd_bf16 = kind >= 4;
            cx->winograd_fused = kind == 2 || kind == 5;
            call cl = {.cx = cx, .conv = c, .cw = kind < 3 ? &cw : &cb, .x = x, .out = y};
            double t = best_time(&cl);
            printf("  %6.1f %8.1f", t * 1e3, flop / t * 1e-9);
            fflush(stdout);
        }
        printf("\n");
        free(cw.w);
        free(cw.b);
        free(cb.wb);
        free(x);
        free(y);
    }
    compute_free(cx);
    return 0;
}
