/*
 * ops_attention - scaled dot-product attention, one block of query rows at a
 * time so the score matrix never exceeds [ATTN_BLOCK, tk] per head (SD1.5 at
 * 512x512 has 4096 tokens: a full score matrix would be 64 MB per head).
 * Per (image, head, block): S = Q_blk K^T (gemm), row softmax, O_blk = S V.
 */
#include <math.h>

#include "compute/op_prof.h"
#include "compute/attention_avx2.h"
#include "compute/attention_fused.h"
#include "compute/gemm.h"
#include "compute/ops.h"
#include "compute/vec_math.h"

#define ATTN_BLOCK 256

typedef struct softmax_job {
    float *s;
    int rows, cols, row0; /* row0: absolute query index of the block's first row */
    float scale;
    int causal;
} softmax_job;

/* One row: max and sum kept per lane (16 partial values) so the loops vectorize
   without reassociating floating-point sums. */
GS_VEC_CLONES static void softmax_row(float *row, int valid, int cols, float scale)
{
    float mx16[16];
    for (int l = 0; l < 16; l++)
        mx16[l] = -INFINITY;
    int c = 0;
    for (; c + 16 <= valid; c += 16)
        for (int l = 0; l < 16; l++)
            mx16[l] = row[c + l] > mx16[l] ? row[c + l] : mx16[l];
    float mx = -INFINITY;
    for (int l = 0; l < 16; l++)
        mx = mx16[l] > mx ? mx16[l] : mx;
    for (; c < valid; c++)
        mx = row[c] > mx ? row[c] : mx;
    float sum16[16] = {0};
    c = 0;
    for (; c + 16 <= valid; c += 16)
        for (int l = 0; l < 16; l++) {
            float e = gi_expf((row[c + l] - mx) * scale);
            row[c + l] = e;
            sum16[l] += e;
        }
    float sum = 0;
    for (; c < valid; c++) {
        float e = gi_expf((row[c] - mx) * scale);
        row[c] = e;
        sum += e;
    }
    for (int l = 0; l < 16; l++)
        sum += sum16[l];
    float inv = 1.0f / sum;
    for (c = 0; c < valid; c++)
        row[c] *= inv;
    for (c = valid; c < cols; c++)
        row[c] = 0.0f;
}

static void softmax_rows(void *p, int ith, int nth)
{
    const softmax_job *j = p;
    long r0, r1;
    threadpool_range(j->rows, ith, nth, &r0, &r1);
    for (long r = r0; r < r1; r++) {
        int valid = j->causal ? (int)(j->row0 + r + 1) : j->cols;
        softmax_row(j->s + (size_t)r * j->cols, valid > j->cols ? j->cols : valid, j->cols,
                    j->scale);
    }
}

/* The blocked path with one parallel region per attention call: every thread
   takes whole (image, head, row block) units and runs their two GEMMs (oneDNN
   on the one thread inside a region) and softmax itself, in a score block of
   its own. One fork and join per call instead of three per unit: 3392 softmax
   regions and twice as many GEMM ones per SD1.5 512x512 step, each a barrier
   that waits for the slowest thread, a time slice on a shared machine. */
#define ATTN_UNIT_BLOCK 64 /* rows: a thread's [64, 4096] scores fit L2-sized caches */

typedef struct units_job {
    const float *q, *k, *v;
    float *out, *s; /* s: [nth, block, tk] */
    int q_stride, kv_stride, n, tq, tk, heads, d, causal, block, blocks;
    float scale;
    double soft_s, all_s; /* thread 0's time in softmax and in all, when timed */
    int timed;
} units_job;

static void attention_units(void *p, int ith, int nth)
{
    units_job *j = p;
    long u0, u1, units = (long)j->n * j->heads * j->blocks;
    threadpool_range(units, ith, nth, &u0, &u1);
    float *s = j->s + (size_t)ith * j->block * j->tk;
    int out_stride = j->heads * j->d, timed = j->timed && ith == 0;
    double t_all = timed ? op_prof_now() : 0, t_soft = 0;
    for (long u = u0; u < u1; u++) {
        int b = (int)(u / ((long)j->heads * j->blocks));
        int h = (int)(u / j->blocks % j->heads), r0 = (int)(u % j->blocks) * j->block;
        int rows = j->tq - r0 < j->block ? j->tq - r0 : j->block;
        const float *qb = j->q + (size_t)b * j->tq * j->q_stride;
        const float *kb = j->k + (size_t)b * j->tk * j->kv_stride;
        const float *vb = j->v + (size_t)b * j->tk * j->kv_stride;
        gemm_f32(rows, j->tk, j->d, qb + (size_t)r0 * j->q_stride + h * j->d, j->q_stride,
                 kb + h * j->d, j->kv_stride, 1, 0.0f, s, j->tk);
        double t0 = timed ? op_prof_now() : 0;
        softmax_job sj = {s, rows, j->tk, r0, j->scale, j->causal};
        softmax_rows(&sj, 0, 1);
        if (timed)
            t_soft += op_prof_now() - t0;
        gemm_f32(rows, j->d, j->tk, s, j->tk, vb + h * j->d, j->kv_stride, 0, 0.0f,
                 j->out + ((size_t)b * j->tq + r0) * out_stride + h * j->d, out_stride);
    }
    if (timed) {
        j->soft_s = t_soft;
        j->all_s = op_prof_now() - t_all;
    }
}

/* The units path when there are enough units to share; -1 when not taken. */
static int attention_by_units(gi_compute *cx, const float *q, int q_stride, const float *k,
                              const float *v, int kv_stride, int n, int tq, int tk, int heads,
                              int d, int causal, float *out, gi_error *err, gs_status *st)
{
    int nth = threadpool_size(cx->tp);
    int block = tq < ATTN_UNIT_BLOCK ? tq : ATTN_UNIT_BLOCK, blocks = (tq + block - 1) / block;
    if (nth < 2 || (long)n * heads * blocks < 4L * nth)
        return -1; /* too few units to balance: the per-block regions do better */
    arena_mark m = arena_get_mark(&cx->scratch);
    float *s = arena_floats(&cx->scratch, (size_t)nth * block * tk);
    if (!s) {
        *st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in attention");
        return 1;
    }
    units_job j = {q,
                   k,
                   v,
                   out,
                   s,
                   q_stride,
                   kv_stride,
                   n,
                   tq,
                   tk,
                   heads,
                   d,
                   causal,
                   block,
                   blocks,
                   1.0f / sqrtf((float)d),
                   0,
                   0,
                   op_prof_cur != NULL};
    op_prof *prof = op_prof_cur;
    double t0 = prof ? op_prof_now() : 0;
    op_prof_cur = NULL; /* timed here, as GEMM and softmax, not as one untagged run */
    threadpool_run(cx->tp, attention_units, &j);
    op_prof_cur = prof;
    if (prof) {
        /* the region's wall time, shared out as thread 0 spent its own */
        double wall = op_prof_now() - t0;
        double soft = j.all_s > 0 ? wall * j.soft_s / j.all_s : 0;
        double flop = 4.0 * n * heads * (double)tq * tk * d;
        double mm = 4.0 * n * heads * (double)blocks * tk * d + 8.0 * n * heads * (double)tq * d;
        op_prof_add(prof, OPK_GEMM, t0 + soft, flop, mm);
        op_prof_add(prof, OPK_SOFTMAX, op_prof_now() - soft, 0, 8.0 * n * heads * (double)tq * tk);
    }
    arena_release(&cx->scratch, m);
    *st = GS_OK;
    return 1;
}

/* The same blocks with bf16 inputs to both products (f32 scores and softmax). */
static gs_status attention_bf16(gi_compute *cx, const float *q, int q_stride, const float *k,
                                const float *v, int kv_stride, int n, int tq, int tk, int heads,
                                int d, int causal, float *out, gi_error *err)
{
    int out_stride = heads * d;
    int block = tq < ATTN_BLOCK ? tq : ATTN_BLOCK;
    arena_mark m = arena_get_mark(&cx->scratch);
    /* q, k and v may be slices of one fused projection (row strides wider than
       heads * d): the last row ends at its own width, not at the stride */
    long width = (long)heads * d;
    uint16_t *qb = op_to_bf16_scratch(cx, q, ((long)n * tq - 1) * q_stride + width);
    uint16_t *kb = op_to_bf16_scratch(cx, k, ((long)n * tk - 1) * kv_stride + width);
    uint16_t *vb = op_to_bf16_scratch(cx, v, ((long)n * tk - 1) * kv_stride + width);
    float *s = arena_floats(&cx->scratch, (size_t)block * tk);                 /* [block, tk] */
    uint16_t *sb = arena_alloc(&cx->scratch, (size_t)block * tk * sizeof *sb); /* bf16 of s */
    gs_status st = GS_OK;
    if (!qb || !kb || !vb || !s || !sb) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in attention");
        goto out;
    }
    float scale = 1.0f / sqrtf((float)d);
    for (int b = 0; b < n && st == GS_OK; b++) {
        const uint16_t *qi = qb + (size_t)b * tq * q_stride;
        const uint16_t *ki = kb + (size_t)b * tk * kv_stride;
        const uint16_t *vi = vb + (size_t)b * tk * kv_stride;
        float *ob = out + (size_t)b * tq * out_stride;
        for (int h = 0; h < heads && st == GS_OK; h++)
            for (int r0 = 0; r0 < tq && st == GS_OK; r0 += block) {
                int rows = tq - r0 < block ? tq - r0 : block;
                st = gemm_bf16(cx->bf16, rows, tk, d, qi + (size_t)r0 * q_stride + h * d, q_stride,
                               ki + h * d, kv_stride, 1, 0.0f, s, tk, err);
                if (st != GS_OK)
                    break;
                softmax_job sj = {s, rows, tk, r0, scale, causal};
                OP_PROF_TAG(OPK_SOFTMAX, 8.0 * rows * tk);
                threadpool_run(cx->tp, softmax_rows, &sj);
                op_to_bf16(cx, s, sb, (long)rows * tk);
                st = gemm_bf16(cx->bf16, rows, d, tk, sb, tk, vi + h * d, kv_stride, 0, 0.0f,
                               ob + (size_t)r0 * out_stride + h * d, out_stride, err);
            }
    }
out:
    arena_release(&cx->scratch, m);
    return st;
}

gs_status op_attention(gi_compute *cx, const float *q, int q_stride, const float *k, const float *v,
                       int kv_stride, int n, int tq, int tk, int heads, int d, int causal,
                       float *out, gi_error *err)
{
    cx->flops += 4.0 * n * heads * (double)tq * tk * d; /* QK^T and PV */
    /* the one-pass kernels: AVX-512 (f32 or bf16 products), else AVX2 (f32) */
    int fused = cx->attn_fused && attention_fused_handles(d);
    if (fused || (cx->attn_avx2 && !cx->attn_bf16 && attention_avx2_handles(d))) {
        arena_mark m = arena_get_mark(&cx->scratch);
        size_t floats = fused ? attention_fused_scratch_floats(n, tk, heads, d)
                              : attention_avx2_scratch_floats(n, tk, heads, d);
        float *scratch = arena_floats(&cx->scratch, floats);
        if (!scratch)
            return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in attention");
        if (fused)
            attention_fused(cx->tp, q, q_stride, k, v, kv_stride, n, tq, tk, heads, d, causal,
                            cx->attn_bf16 && cx->attn_fused_bf16, out, scratch);
        else
            attention_avx2(cx->tp, q, q_stride, k, v, kv_stride, n, tq, tk, heads, d, causal, out,
                           scratch);
        arena_release(&cx->scratch, m);
        return GS_OK;
    }
    if (cx->attn_bf16)
        return attention_bf16(cx, q, q_stride, k, v, kv_stride, n, tq, tk, heads, d, causal, out,
                              err);
    gs_status st;
    if (attention_by_units(cx, q, q_stride, k, v, kv_stride, n, tq, tk, heads, d, causal, out, err,
                           &st) >= 0)
        return st;
    int out_stride = heads * d;
    int block = tq < ATTN_BLOCK ? tq : ATTN_BLOCK;
    arena_mark m = arena_get_mark(&cx->scratch);
    float *s = arena_floats(&cx->scratch, (size_t)block * tk); /* [block, tk] */
    if (!s)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory in attention");
    float scale = 1.0f / sqrtf((float)d);
    for (int b = 0; b < n; b++) {
        const float *qb = q + (size_t)b * tq * q_stride;
        const float *kb = k + (size_t)b * tk * kv_stride;
        const float *vb = v + (size_t)b * tk * kv_stride;
        float *ob = out + (size_t)b * tq * out_stride;
        for (int h = 0; h < heads; h++) {
            for (int r0 = 0; r0 < tq; r0 += block) {
                int rows = tq - r0 < block ? tq - r0 : block;
                gemm_f32(rows, tk, d, qb + (size_t)r0 * q_stride + h * d, q_stride, kb + h * d,
                         kv_stride, 1, 0.0f, s, tk);
                softmax_job sj = {s, rows, tk, r0, scale, causal};
                OP_PROF_TAG(OPK_SOFTMAX, 8.0 * rows * tk); /* scores read and written */
                threadpool_run(cx->tp, softmax_rows, &sj);
                gemm_f32(rows, d, tk, s, tk, vb + h * d, kv_stride, 0, 0.0f,
                         ob + (size_t)r0 * out_stride + h * d, out_stride);
            }
        }
    }
    arena_release(&cx->scratch, m);
    return GS_OK;
}
