/*
 * compute - the per-engine compute context: a thread pool for our kernels, the
 * scratch arena for a forward pass, and the thread count its calls run on.
 */
#ifndef GS_COMPUTE_H
#define GS_COMPUTE_H

#include "common/error.h"
#include "compute/arena.h"
#include "compute/gemm_bf16.h"
#include "compute/op_prof.h"
#include "compute/threadpool.h"

typedef struct gi_compute {
    threadpool *tp;
    arena scratch;
    int threads;
    double flops; /* multiply-adds x2 of GEMMs, convolutions and attention, since creation */
    gemm_bf16_cache *bf16;   /* matmul primitives for layers whose weights are bf16 */
    int weights_f16;         /* layers' 16-bit weights (wb) are IEEE f16, not bf16: every
                                product on them is widened to f32 (f16 engines) */
    int attn_bf16;           /* attention products in bf16 (bf16 engines) */
    int attn_fused;          /* one-pass attention kernel (AVX-512); else blocked GEMMs */
    int attn_fused_bf16;     /* ... whose products can run in bf16 (for attn_bf16) */
    int attn_avx2;           /* one-pass attention on AVX2 (where attn_fused is off; f32) */
    int winograd;            /* f32 3x3 convolutions by Winograd F(2x2,3x3) ... */
    long winograd_min_tiles; /* ... when they have at least this many 2x2 output tiles */
    int winograd_bf16;       /* ... with bf16 transforms and GEMMs */
    int winograd_fused;      /* ... per group of tiles in each thread's cache (AVX-512) */
    int widen_bf16;          /* bf16 weights multiplied widened, on f32 activations, even where
                                the CPU has bf16 matmuls (compute_f32_activations) */
    long block_rows;         /* rows per block of row-blocked layers (feed-forwards); tests
                                shrink it so small inputs take the blocked path */
    int prof_on;             /* op timers: the engine calls run with op_prof_cur = &prof */
    op_prof prof;            /* their totals since creation */
    /* Winograd's transformed filters of the last convolution run by bands of
       rows (op_conv2d_rows), for its next band: a layer's filters are not
       transformed again for every band. Keyed by the layer, its weights and
       how they were transformed; dropped by a whole-map call and compute_begin. */
    struct {
        const void *layer, *weights;
        int bf16, fused, f16;
        void *u; /* pages of their own (gi_pages_alloc), bytes long: returned when
                    dropped, where freed heap memory would stay resident */
        size_t bytes;
    } wino_filters;
} gi_compute;

gs_status compute_create(int threads /* 0 = online CPUs */, gi_compute **out, gi_error *err);
void compute_free(gi_compute *cx);
/* Frees the kept Winograd filters (gi_compute.wino_filters). */
void compute_drop_wino_filters(gi_compute *cx);
int compute_threads(const gi_compute *cx);

/* The rate of a large square GEMM (f32, or bf16 with f32 accumulation) on this
   context's threads: the "FLOP floor" reference of benchmarks, in GFLOP/s. */
gs_status compute_gemm_rate(gi_compute *cx, int bf16, double *gflops, gi_error *err);

/* OpenMP's default team size on the calling thread is what oneDNN's GEMMs and
   the weight conversions run on, and it belongs to the caller: two engines
   with different thread counts, or a caller with its own OpenMP setting, must
   not see each other's. Every public call that computes brackets its work with
   these: compute_enter sets the calling thread's default to cx->threads and
   returns the caller's, which compute_leave puts back. */
int compute_enter(const gi_compute *cx);
void compute_leave(int saved);

/* Starts a forward pass on the scratch arena (see arena_reset). */
gs_status compute_begin(gi_compute *cx, gi_error *err);

/* The switches that say what the products multiply: bf16 activations or f32. */
typedef struct compute_mode {
    int attn_bf16, winograd_bf16, widen_bf16;
} compute_mode;

/* Runs the products that follow on f32 activations (16-bit weights widened,
   attention and Winograd in f32), as a CPU without bf16 matmuls would: a
   network whose rounding must stay out of the result (the VAE under the
   automatic precision). Returns the mode to put back with compute_set_mode. */
compute_mode compute_f32_activations(gi_compute *cx);
void compute_set_mode(gi_compute *cx, compute_mode m);

#endif
