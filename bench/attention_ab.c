/*
 * attention_ab - two builds of a one-pass attention kernel in one process,
 * called in turn (A, B, B, A, ...), so the host's drift between runs falls on
 * both alike. bench/attention_ab.sh compiles the kernel of two revisions with
 * their symbols suffixed _A / _B and links them here: the AVX2 kernel
 * (AB_AVX2) or the AVX-512 one, with f32 or bf16 products (AB_FUSED_BF16).
 * Usage: attention_ab [tokens [head width [rounds [causal]]]]  (SD1.5's 64^2
 * latent by default: 2 images, 8 heads, 4096 tokens of width 40)
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "compute/compute.h"
#include "compute/threadpool.h"
#include "bench_util.h"

typedef void (*attention_fn)(threadpool *tp, const float *q, int q_stride, const float *k,
                             const float *v, int kv_stride, int n, int tq, int tk, int heads, int d,
                             int causal, float *out, float *scratch);
#ifdef AB_AVX2
#define KERNEL(v) attention_avx2_##v
#define SCRATCH(v) attention_avx2_scratch_floats_##v
#define DECLARE(v)                                                                                 \
    void attention_avx2_##v(threadpool *tp, const float *q, int q_stride, const float *k,          \
                            const float *v, int kv_stride, int n, int tq, int tk, int heads,       \
                            int d, int causal, float *out, float *scratch);                        \
    size_t attention_avx2_scratch_floats_##v(int n, int tk, int heads, int d);
#else
/* the AVX-512 kernel takes its product precision as an argument */
#define KERNEL(v) fused_##v
#define SCRATCH(v) attention_fused_scratch_floats_##v
#define DECLARE(v)                                                                                 \
    void attention_fused_##v(threadpool *tp, const float *q, int q_stride, const float *k,         \
                             const float *v, int kv_stride, int n, int tq, int tk, int heads,      \
                             int d, int causal, int bf16, float *out, float *scratch);             \
    size_t attention_fused_scratch_floats_##v(int n, int tk, int heads, int d);                    \
    static void fused_##v(threadpool *tp, const float *q, int q_stride, const float *k,            \
                          const float *v, int kv_stride, int n, int tq, int tk, int heads, int d,  \
                          int causal, float *out, float *scratch)                                  \
    {                                                                                              \
        attention_fused_##v(tp, q, q_stride, k, v, kv_stride, n, tq, tk, heads, d, causal,         \
                            AB_FUSED_BF16, out, scratch);                                          \
    }
#endif
DECLARE(A)
DECLARE(B)

static int arg(int argc, char **argv, int i, int fallback)
{
    return argc > i ? (int)strtol(argv[i], NULL, 10) : fallback;
}

int main(int argc, char **argv)
{
    int t = arg(argc, argv, 1, 4096), d = arg(argc, argv, 2, 40), rounds = arg(argc, argv, 3, 4);
    int causal = arg(argc, argv, 4, 0), n = 2, heads = 8;
    gi_compute *cx;
    gi_error err;
    if (compute_create(2, &cx, &err) != GS_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    size_t w = (size_t)heads * d, all = (size_t)n * t * w;
    size_t sa = SCRATCH(A)(n, t, heads, d);
    size_t sb = SCRATCH(B)(n, t, heads, d);
    size_t bytes = ((sa > sb ? sa : sb) * sizeof(float) + 63) / 64 * 64;
    float *q = random_floats(all, 4.0f), *k = random_floats(all, 4.0f);
    float *v = random_floats(all, 1.0f), *out[2] = {random_floats(all, 0), random_floats(all, 0)};
    float *scratch = aligned_alloc(64, bytes); /* the kernels load it aligned */
    if (!q || !k || !v || !out[0] || !out[1] || !scratch) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    attention_fn f[2] = {KERNEL(A), KERNEL(B)};
    double flop = 4.0 * n * heads * (double)t * t * d, sum[2] = {0, 0}, best[2] = {1e30, 1e30};
    for (int i = 0; i < 2; i++) /* warm-up */
        f[i](cx->tp, q, (int)w, k, v, (int)w, n, t, t, heads, d, causal, out[i], scratch);
    for (int r = 0; r < rounds; r++)
        for (int h = 0; h < 2; h++) {
            int i = (r + h) % 2;
            double t0 = now_s();
            f[i](cx->tp, q, (int)w, k, v, (int)w, n, t, t, heads, d, causal, out[i], scratch);
            double e = now_s() - t0;
            sum[i] += e;
            best[i] = e < best[i] ? e : best[i];
        }
    double diff = 0;
    for (size_t i = 0; i < all; i++) {
        double x = (double)out[0][i] - out[1][i];
        diff = x < 0 ? (-x > diff ? -x : diff) : (x > diff ? x : diff);
    }
    printf("tokens %d, width %d%s: A best %.1f ms (%.1f GFLOP/s) mean %.1f | B best %.1f ms "
           "(%.1f GFLOP/s) mean %.1f | B/A of the means %.3f | max |A - B| %.2e\n",
           t, d, causal ? " causal" : "", best[0] * 1e3, flop / best[0] * 1e-9,
           sum[0] / rounds * 1e3, best[1] * 1e3, flop / best[1] * 1e-9, sum[1] / rounds * 1e3,
           sum[1] / sum[0], diff);
    return 0;
}
