/*
 * attention_fused - scaled dot-product attention in one pass per block of
 * query rows, on AVX-512: scores for 8 query rows against a block of keys stay
 * in L1, an online softmax (running max and sum per row) rescales the partial
 * output, and the weighted sum of values accumulates in registers. Nothing of
 * the score matrix reaches memory.
 *
 * Why not GEMMs: with SD1.5's head width of 40, Q K^T has an inner dimension
 * of 40 and P V an output width of 40; as library GEMMs over score blocks the
 * two products plus the softmax ran at a third of the machine's GEMM rate, and
 * attention was a quarter of a 512x512 UNet step (bench/RESULTS.md).
 *
 * Keys are transposed by panels of 16 and values padded per (image, head)
 * once per call, so the inner loops load whole aligned vectors, a score
 * tile's keys in order. Each thread takes every nth
 * (image, head, 8-row group) in order, so a thread's consecutive groups share
 * one head's packed keys and values in its L2.
 */
#include "compute/attention_fused.h"

#include <math.h>
#include <string.h>

#include "compute/attention_fused_bf16.h"
#include "compute/attention_pack.h"
#include "compute/op_prof.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define ROWS FUSED_ROWS
#define KEYS FUSED_KEYS
#define MAX_WIDTH FUSED_MAX_WIDTH

typedef struct fused_job {
    const float *q, *k, *v;
    int q_stride, kv_stride, n, tq, tk, heads, d, dp, tkp, causal;
    float scale;
    float *out;
    int out_stride;
    float *kt; /* per (image, head): keys by panels of 16, [tkp / 16][d][16], zero beyond tk */
    float *vp; /* per (image, head): values, [tkp][dp], zero-padded */
    int bf16;  /* products in bf16: kt16 and vp16 instead (attention_fused_bf16.h) */
    int d2;    /* channel pairs */
    uint16_t *kt16, *vp16;
} fused_job;

int attention_fused_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}

int attention_fused_bf16_available(void)
{
    return fused_bf16_available();
}

int attention_fused_handles(int d)
{
    return d >= 1 && d <= MAX_WIDTH;
}

size_t attention_fused_scratch_floats(int n, int tk, int heads, int d)
{
    size_t tkp = (size_t)attention_key_stride(tk), dp = ((size_t)d + 15) / 16 * 16;
    return (size_t)n * heads * (d * tkp + tkp * dp);
}

static void pack_heads(void *p, int ith, int nth)
{
    const fused_job *j = p;
    long pairs = (long)j->n * j->heads, r0, r1;
    threadpool_range(pairs, ith, nth, &r0, &r1);
    size_t per_kt = (size_t)j->d * j->tkp, per_vp = (size_t)j->tkp * j->dp;
    for (long bh = r0; bh < r1; bh++) {
        int b = (int)(bh / j->heads), h = (int)(bh % j->heads);
        size_t at = (size_t)b * j->tk * j->kv_stride + (size_t)h * j->d;
        if (j->bf16) {
            fused_bf16_pack_head(j->k + at, j->v + at, j->kv_stride, j->tk, j->d, j->tkp, j->dp,
                                 j->kt16 + bh * (size_t)j->d2 * 2 * j->tkp,
                                 j->vp16 + bh * (size_t)j->tkp * j->dp);
            continue;
        }
        attention_pack_head_panels(j->k + at, j->v + at, j->kv_stride, j->tk, j->d, j->tkp, j->dp,
                                   j->kt + bh * per_kt, j->vp + bh * per_vp);
    }
}

/* s[r][c..c+31] = qs[r] . keys col..col+31 (two panels of kt) for the 8 rows;
   bm[r] takes the max over those of the row's valid keys (no second pass for
   it) */
__attribute__((target("avx512f"))) static void scores_32(const float (*qs)[MAX_WIDTH],
                                                         const float *kt, int d, int col,
                                                         float (*s)[KEYS], int c, const int *valid,
                                                         __m512 *bm)
{
    __m512 a0[ROWS], a1[ROWS];
    for (int r = 0; r < ROWS; r++)
        a0[r] = a1[r] = _mm512_setzero_ps();
    const float *kp = kt + (size_t)(col / 16) * d * 16; /* two panels of 16 keys, [d][16] each */
    for (int x = 0; x < d; x++, kp += 16) {
        __m512 k0 = _mm512_load_ps(kp), k1 = _mm512_load_ps(kp + (size_t)d * 16);
        for (int r = 0; r < ROWS; r++) {
            __m512 qb = _mm512_set1_ps(qs[r][x]);
            a0[r] = _mm512_fmadd_ps(qb, k0, a0[r]);
            a1[r] = _mm512_fmadd_ps(qb, k1, a1[r]);
        }
    }
    fused_store_scores(a0, a1, s, c, valid, bm);
}

/* o[r][c0 .. c0 + 16 nv + 8 half) = o * corr[r] + sum over keys p[r][t]
   v[t][c0 ..] (the tiling of fused_value_tile). The 8-channel remainders of
   two rows share one 512-bit accumulator (row 2i in the low half, 2i + 1 in
   the high, their probabilities blended from the broadcasts the full vectors
   use): a 256-bit FMA takes a whole FMA slot on CPUs with 512-bit pipes, so
   at a head width of 40 this is 20 FMAs per key instead of 24. */
__attribute__((target("avx512f,fma"), always_inline)) static inline void
values_tile(float (*o)[MAX_WIDTH], const float *corr, const float (*p)[KEYS], const float *vp,
            int dp, int kb, int c0, const int nv, const int half)
{
    __m512 acc[ROWS][3], acch[ROWS / 2];
    const __mmask16 high = 0xff00;
    for (int r = 0; r < ROWS; r++) {
        __m512 cr = _mm512_set1_ps(corr[r]);
        for (int u = 0; u < nv; u++)
            acc[r][u] = _mm512_mul_ps(_mm512_load_ps(&o[r][c0 + 16 * u]), cr);
    }
    if (half)
        for (int i = 0; i < ROWS / 2; i++) {
            __m512 oh = fused_join_halves(_mm256_load_ps(&o[2 * i][c0 + 16 * nv]),
                                          _mm256_load_ps(&o[2 * i + 1][c0 + 16 * nv]));
            __m512 cr = _mm512_mask_blend_ps(high, _mm512_set1_ps(corr[2 * i]),
                                             _mm512_set1_ps(corr[2 * i + 1]));
            acch[i] = _mm512_mul_ps(oh, cr);
        }
    const float *vr = vp + c0;
    for (int t = 0; t < kb; t++, vr += dp) {
        __m512 v[3], vh = _mm512_setzero_ps();
        for (int u = 0; u < nv; u++)
            v[u] = _mm512_load_ps(vr + 16 * u);
        if (half) /* the remainder's 8 values in both halves */
            vh = fused_join_halves(_mm256_load_ps(vr + 16 * nv), _mm256_load_ps(vr + 16 * nv));
        for (int i = 0; i < ROWS / 2; i++) {
            __m512 p0 = _mm512_set1_ps(p[2 * i][t]), p1 = _mm512_set1_ps(p[2 * i + 1][t]);
            for (int u = 0; u < nv; u++) {
                acc[2 * i][u] = _mm512_fmadd_ps(p0, v[u], acc[2 * i][u]);
                acc[2 * i + 1][u] = _mm512_fmadd_ps(p1, v[u], acc[2 * i + 1][u]);
            }
            if (half)
                acch[i] = _mm512_fmadd_ps(_mm512_mask_blend_ps(high, p0, p1), vh, acch[i]);
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int u = 0; u < nv; u++)
            _mm512_store_ps(&o[r][c0 + 16 * u], acc[r][u]);
    if (half)
        for (int i = 0; i < ROWS / 2; i++) {
            _mm256_store_ps(&o[2 * i][c0 + 16 * nv], _mm512_castps512_ps256(acch[i]));
            _mm256_store_ps(&o[2 * i + 1][c0 + 16 * nv], fused_high_half(acch[i]));
        }
}

__attribute__((target("avx512f,fma"))) static void values(float (*o)[MAX_WIDTH], const float *corr,
                                                          const float (*p)[KEYS], const float *vp,
                                                          int d, int dp, int kb)
{
    for (int c0 = 0; c0 < d; c0 += 48) {
        int nv, half;
        fused_value_tile(d, c0, &nv, &half);
        if (nv == 3)
            values_tile(o, corr, p, vp, dp, kb, c0, 3, 0);
        else if (nv == 2)
            half ? values_tile(o, corr, p, vp, dp, kb, c0, 2, 1)
                 : values_tile(o, corr, p, vp, dp, kb, c0, 2, 0);
        else if (nv == 1)
            half ? values_tile(o, corr, p, vp, dp, kb, c0, 1, 1)
                 : values_tile(o, corr, p, vp, dp, kb, c0, 1, 0);
        else
            values_tile(o, corr, p, vp, dp, kb, c0, 0, 1);
    }
}

/* 2^x for 16 lanes, x <= 0 (base-2 scores minus their row max): 2^n by
   vscalefps times a degree-6 fit of 2^r on [-1/2, 1/2] (relative error
   1.9e-9, below f32's rounding); x is held above -126 so no result is
   subnormal. */
__attribute__((target("avx512f"))) static inline __m512 exp2_16(__m512 x)
{
    x = _mm512_max_ps(x, _mm512_set1_ps(-126.0f));
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.534581018e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.339993116e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(9.618488961e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.550328777e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(2.402264689e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(6.931472057e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* Online softmax of one base-2 score row over its first `valid` of kb columns
   (the rest become 0) under its new running max m: *sum gets the row's sum
   and *corr the factor that rescales what was accumulated under m_old. */
__attribute__((target("avx512f"))) static void
softmax_block(float *s, int valid, int kb, float m_old, float m, float *sum, float *corr)
{
    __m512 vmax = _mm512_set1_ps(m), acc = _mm512_setzero_ps();
    for (int c = 0; c < kb; c += 16) {
        int left = valid - c;
        __mmask16 k = left >= 16 ? 0xffff : (left > 0 ? (__mmask16)((1u << left) - 1) : 0);
        __m512 e = _mm512_maskz_mov_ps(k, exp2_16(_mm512_sub_ps(_mm512_load_ps(s + c), vmax)));
        _mm512_store_ps(s + c, e);
        acc = _mm512_add_ps(acc, e);
    }
    *sum = _mm512_reduce_add_ps(acc);
    *corr = m_old == -INFINITY ? 0.0f : exp2f(m_old - m);
}

__attribute__((target("avx512f"))) static void rows_group(const fused_job *j, int b, int h, int r0)
{
    _Alignas(64) float qs[ROWS][MAX_WIDTH];
    _Alignas(64) float s[ROWS][KEYS];
    _Alignas(64) float o[ROWS][MAX_WIDTH];
    float m[ROWS], l[ROWS], corr[ROWS];
    int rows = j->tq - r0 < ROWS ? j->tq - r0 : ROWS;
    /* only the columns the kernels read: whole 16-lane vectors of the head
       (all of both arrays is 16 KB per group of 8 rows) */
    size_t wbytes = (size_t)(j->d + 15) / 16 * 16 * sizeof(float);
    for (int r = 0; r < ROWS; r++) {
        memset(qs[r], 0, wbytes);
        memset(o[r], 0, wbytes);
    }
    for (int r = 0; r < rows; r++) {
        const float *qr = j->q + ((size_t)b * j->tq + r0 + r) * j->q_stride + (size_t)h * j->d;
        for (int c = 0; c < j->d; c++)
            qs[r][c] = qr[c] * j->scale;
    }
    for (int r = 0; r < ROWS; r++) {
        m[r] = -INFINITY;
        l[r] = 0;
    }
    size_t bh = (size_t)b * j->heads + h;
    const float *kt = NULL, *vp = NULL;
    const uint16_t *kt16 = NULL, *vp16 = NULL;
    _Alignas(64) uint32_t q2[ROWS][MAX_WIDTH / 2];
    if (j->bf16) {
        kt16 = j->kt16 + bh * j->d2 * 2 * j->tkp;
        vp16 = j->vp16 + bh * j->tkp * j->dp;
        fused_bf16_pack_q((const float(*)[MAX_WIDTH])qs, q2, j->d2);
    } else {
        kt = j->kt + bh * j->d * j->tkp;
        vp = j->vp + bh * j->tkp * j->dp;
    }
    /* causal rows see keys up to their own index: later blocks are all masked */
    int kend = j->causal ? (r0 + rows < j->tk ? r0 + rows : j->tk) : j->tk;
    for (int k0 = 0; k0 < kend; k0 += KEYS) {
        int kb = (kend - k0 + 31) / 32 * 32;
        kb = kb < KEYS ? kb : KEYS;
        int valid[ROWS]; /* keys of the block each row sees */
        for (int r = 0; r < ROWS; r++) {
            int lim = j->causal ? r0 + r + 1 : j->tk;
            lim = lim < j->tk ? lim : j->tk;
            valid[r] = r < rows ? lim - k0 : 0;
            valid[r] = valid[r] < 0 ? 0 : (valid[r] > kb ? kb : valid[r]);
        }
        if (j->bf16) {
            fused_bf16_block((const uint32_t(*)[MAX_WIDTH / 2]) q2, j->d, j->d2, kt16, vp16, j->dp,
                             k0, kb, valid, m, l, o);
            continue;
        }
        __m512 bm[ROWS];
        for (int r = 0; r < ROWS; r++)
            bm[r] = _mm512_set1_ps(m[r]);
        for (int c = 0; c < kb; c += 32)
            scores_32((const float(*)[MAX_WIDTH])qs, kt, j->d, k0 + c, s, c, valid, bm);
        for (int r = 0; r < ROWS; r++) {
            if (valid[r] == 0) { /* nothing to add for this row in this block */
                memset(s[r], 0, (size_t)kb * sizeof(float));
                corr[r] = 1.0f;
                continue;
            }
            float sum, mn = _mm512_reduce_max_ps(bm[r]);
            softmax_block(s[r], valid[r], kb, m[r], mn, &sum, &corr[r]);
            m[r] = mn;
            l[r] = l[r] * corr[r] + sum;
        }
        values(o, corr, (const float(*)[KEYS])s, vp + (size_t)k0 * j->dp, j->d, j->dp, kb);
    }
    for (int r = 0; r < rows; r++) {
        float inv = 1.0f / l[r];
        float *dst = j->out + ((size_t)b * j->tq + r0 + r) * j->out_stride + (size_t)h * j->d;
        for (int c = 0; c < j->d; c++)
            dst[c] = o[r][c] * inv;
    }
}

static void run_groups(void *p, int ith, int nth)
{
    const fused_job *j = p;
    long groups = (j->tq + ROWS - 1) / ROWS, per_image = groups * j->heads;
    long tasks = (long)j->n * per_image;
    /* contiguous ranges: a thread's groups share their head's packed keys */
    long t0, t1;
    threadpool_range(tasks, ith, nth, &t0, &t1);
    for (long t = t0; t < t1; t++) {
        int b = (int)(t / per_image), h = (int)(t % per_image / groups);
        int r0 = (int)(t % groups) * ROWS;
        rows_group(j, b, h, r0);
    }
}

void attention_fused(threadpool *tp, const float *q, int q_stride, const float *k, const float *v,
                     int kv_stride, int n, int tq, int tk, int heads, int d, int causal, int bf16,
                     float *out, float *scratch)
{
    fused_job j = {.q = q,
                   .k = k,
                   .v = v,
                   .q_stride = q_stride,
                   .kv_stride = kv_stride,
                   .n = n,
                   .tq = tq,
                   .tk = tk,
                   .heads = heads,
                   .d = d,
                   .dp = (d + 15) / 16 * 16,
                   .tkp = attention_key_stride(tk),
                   .causal = causal,
                   /* scores in base 2 (times log2 e): the softmax's
                      exponential is then a bare 2^x */
                   .scale = 1.44269504088896341f / sqrtf((float)d),
                   .out = out,
                   .out_stride = heads * d,
                   .bf16 = bf16,
                   .d2 = (d + 1) / 2};
    if (bf16) { /* half the bytes of the f32 layout, which the scratch is sized for */
        j.kt16 = (uint16_t *)scratch;
        j.vp16 = j.kt16 + (size_t)n * heads * j.d2 * 2 * j.tkp;
    } else {
        j.kt = scratch;
        j.vp = scratch + (size_t)n * heads * d * j.tkp;
    }
    OP_PROF_TAG(OPK_ATTN_FUSED, 8.0 * n * tk * heads * d);
    threadpool_run(tp, pack_heads, &j);
    OP_PROF_TAG(OPK_ATTN_FUSED, 4.0 * n * (2.0 * tq + 2.0 * tk) * heads * d);
    threadpool_run(tp, run_groups, &j);
}

#else

int attention_fused_available(void)
{
    return 0;
}

int attention_fused_bf16_available(void)
{
    return 0;
}

int attention_fused_handles(int d)
{
    (void)d;
    return 0;
}

size_t attention_fused_scratch_floats(int n, int tk, int heads, int d)
{
    (void)n, (void)tk, (void)heads, (void)d;
    return 0;
}

void attention_fused(threadpool *tp, const float *q, int q_stride, const float *k, const float *v,
                     int kv_stride, int n, int tq, int tk, int heads, int d, int causal, int bf16,
                     float *out, float *scratch)
{
    (void)tp, (void)q, (void)q_stride, (void)k, (void)v, (void)kv_stride, (void)n, (void)tq;
    (void)tk, (void)heads, (void)d, (void)causal, (void)bf16, (void)out, (void)scratch;
}

#endif
