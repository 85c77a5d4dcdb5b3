/* compute - context creation; the BLAS gets the same thread count as our pool. */
#include "compute/compute.h"

#include <omp.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "compute/attention_avx2.h"
#include "compute/attention_fused.h"
#include "compute/conv_winograd_groups.h"
#include "compute/gemm.h"

gs_status compute_create(int threads, gi_compute **out, gi_error *err)
{
    *out = NULL;
    if (threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (int)n : 1;
    }
    gi_compute *cx = gi_calloc(1, sizeof *cx);
    if (!cx)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    arena_init(&cx->scratch);
    cx->threads = threads;
    cx->block_rows = 1024;
    cx->attn_fused = attention_fused_available();
    cx->attn_fused_bf16 = cx->attn_fused && attention_fused_bf16_available();
    cx->attn_avx2 = attention_avx2_available();
    /* below a few hundred tiles the 16 GEMMs are too thin to beat im2col's one */
    cx->winograd = 1;
    cx->winograd_min_tiles = 256;
    cx->winograd_fused = wino_f32_available();
    gs_status st = threadpool_create(threads, &cx->tp, err);
    if (st != GS_OK) {
        compute_free(cx);
        return st;
    }
    if ((st = gemm_bf16_cache_create(&cx->bf16, err)) != GS_OK) {
        compute_free(cx);
        return st;
    }
    *out = cx;
    return GS_OK;
}

void compute_free(gi_compute *cx)
{
    if (!cx)
        return;
    gemm_bf16_cache_free(cx->bf16);
    compute_drop_wino_filters(cx);
    threadpool_free(cx->tp);
    arena_destroy(&cx->scratch);
    gi_free(cx);
}

int compute_threads(const gi_compute *cx)
{
    return cx->threads;
}

int compute_enter(const gi_compute *cx)
{
    int saved = omp_get_max_threads();
    omp_set_num_threads(cx->threads);
    return saved;
}

void compute_leave(int saved)
{
    omp_set_num_threads(saved);
}

void compute_drop_wino_filters(gi_compute *cx)
{
    if (cx->wino_filters.u)
        gi_pages_free(cx->wino_filters.u, cx->wino_filters.bytes);
    memset(&cx->wino_filters, 0, sizeof cx->wino_filters);
}

gs_status compute_begin(gi_compute *cx, gi_error *err)
{
    compute_drop_wino_filters(cx); /* weights may have changed in place since (LoRA folds) */
    if (arena_reset(&cx->scratch) != 0)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory reserving scratch space");
    return GS_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

gs_status compute_gemm_rate(gi_compute *cx, int bf16, double *gflops, gi_error *err)
{
    const int n = 2048;
    size_t count = (size_t)n * n;
    float *a = gi_aligned_alloc(count * sizeof *a), *b = gi_aligned_alloc(count * sizeof *b);
    float *c = gi_aligned_alloc(count * sizeof *c);
    gs_status st = GS_OK;
    if (!a || !b || !c) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory measuring the GEMM rate");
        goto out;
    }
    for (size_t i = 0; i < count; i++) {
        a[i] = (float)(i % 97) * 0.01f;
        b[i] = (float)(i % 89) * 0.01f;
    }
    if (bf16 && !gemm_bf16_native(cx->bf16))
        bf16 = 0; /* its matmuls are widened to f32: the f32 GEMM is the floor */
    uint16_t *ab = (uint16_t *)a, *bb = (uint16_t *)b; /* bf16 copies fit in place */
    if (bf16) {
        f32_to_bf16(a, ab, (long)count);
        f32_to_bf16(b, bb, (long)count);
    }
    double best = 1e30;
    for (int r = 0; r < 4 && st == GS_OK; r++) { /* the first run warms up; best of the rest */
        double t0 = now_s();
        if (bf16)
            st = gemm_bf16(cx->bf16, n, n, n, ab, n, bb, n, 1, 0.0f, c, n, err);
        else
            gemm_f32(n, n, n, a, n, b, n, 1, 0.0f, c, n);
        double t = now_s() - t0;
        if (r > 0 && t < best)
            best = t;
    }
    if (st != GS_OK)
        goto out;
    *gflops = 2.0 * n * n * n / best * 1e-9;
out:
    gi_aligned_free(a);
    gi_aligned_free(b);
    gi_aligned_free(c);
    return st;
}

compute_mode compute_f32_activations(gi_compute *cx)
{
    compute_mode was = {cx->attn_bf16, cx->winograd_bf16, cx->widen_bf16};
    compute_set_mode(cx, (compute_mode){0, 0, 1});
    return was;
}

void compute_set_mode(gi_compute *cx, compute_mode m)
{
    cx->attn_bf16 = m.attn_bf16;
    cx->winograd_bf16 = m.winograd_bf16;
    cx->widen_bf16 = m.widen_bf16;
}
