/*
 * op_prof - per-op-kind timers for the engine's kernels, off unless asked for.
 *
 * Every parallel kernel runs through threadpool_run and every f32 product
 * through gemm_f32, both on the thread that called the engine; those two are
 * the only timing points. A call site tags the threadpool_run it is about to
 * make with its kind and the bytes it moves; gemm_f32 times itself as GEMM.
 * Time of the calling thread outside both (the sampler, layout changes done in
 * serial code) is what remains of a step's wall time.
 *
 * The table lives in the compute context; op_prof_cur points at it on the
 * calling thread while an engine call runs with timers on, and is NULL
 * otherwise, so with timers off each timing point costs one thread-local load
 * and a branch (a few thousand per UNet step, against seconds of work).
 */
#ifndef GS_OP_PROF_H
#define GS_OP_PROF_H

#include <stdio.h>

typedef enum op_kind {
    OPK_OTHER,       /* an untagged threadpool_run (first: a zeroed table's tag) */
    OPK_GEMM,        /* gemm_f32: convolutions, linear layers, attention products */
    OPK_IM2COL,      /* patch gathering of im2col convolutions (with fused prologues) */
    OPK_WINO_XFORM,  /* Winograd filter, input and output transforms */
    OPK_ATTN_FUSED,  /* the one-pass attention kernels (AVX-512, AVX2) */
    OPK_SOFTMAX,     /* row softmax of blocked attention */
    OPK_GROUP_NORM,  /* group norm statistics and apply (with SiLU) */
    OPK_LAYER_NORM,  /* layer norm */
    OPK_GEGLU,       /* GEGLU of the transformer feed-forwards */
    OPK_ELEMENTWISE, /* add, SiLU, GELU, broadcast add, bias fill, bf16 casts */
    OPK_COPY,        /* resize, channel concat */
    OPK_WIDEN,       /* bf16 operands widened to f32 for CPUs without bf16 matmuls */
    OPK_N
} op_kind;

typedef struct op_prof {
    double s[OPK_N];     /* seconds on the calling thread */
    double flop[OPK_N];  /* GEMM FLOPs (2*M*N*K); 0 for the other kinds */
    double bytes[OPK_N]; /* bytes read + written, as the call sites estimate them */
    long calls[OPK_N];
    op_kind tag; /* the kind of the next threadpool_run */
    double tag_bytes;
} op_prof;

extern _Thread_local op_prof *op_prof_cur;

double op_prof_now(void);
const char *op_prof_name(op_kind k);
/* Records one timed call. */
void op_prof_add(op_prof *p, op_kind k, double t0, double flop, double bytes);
/* Sums of s over the GEMM kinds (GEMM, fused attention) and over the convolution
   helpers (im2col, Winograd transforms): the two "GEMM-shaped" parts of a step. */
double op_prof_gemm_s(const op_prof *p);
double op_prof_conv_aux_s(const op_prof *p);

/* Prints the difference b - a per step of a run of `steps` steps that took
   wall_s in all and counted flop (cx->flops) as a table, one row per kind. */
void op_prof_print(FILE *out, const op_prof *a, const op_prof *b, int steps, double wall_s,
                   double flop);

/* Tags the next threadpool_run of the calling thread. */
#define OP_PROF_TAG(kind, nbytes)                                                                  \
    do {                                                                                           \
        if (op_prof_cur) {                                                                         \
            op_prof_cur->tag = (kind);                                                             \
            op_prof_cur->tag_bytes = (double)(nbytes);                                             \
        }                                                                                          \
    } while (0)

#endif
