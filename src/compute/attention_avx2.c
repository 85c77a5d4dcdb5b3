/*
 * attention_avx2 - the one-pass attention of attention_fused.c for CPUs with
 * 16 registers of 8 floats. A tile is 6 query rows: its scores against 16
 * keys are 12 accumulators, and its weighted sum of values 12 accumulators of
 * 16 channels, both fed by one broadcast per row and two loads per step (a
 * GEMM micro-kernel's shape). Four tiles share each block of 128 keys while
 * it is in L1/L2: one tile alone would stream a head's packed keys and values
 * (1.3 MB at SD1.5's 4096 tokens, more than this class of CPU's L2) from L3
 * for every 6 rows. Keys are packed by panels of 16 so a score tile reads them
 * in order; a tile's row maxima come out of its score tiles, and only a row's
 * last, masked block goes over its scores for them again; the 8-channel
 * remainder of a value tile (d = 40) runs two chains of sums, even and odd
 * keys, so its six rows keep both FMA pipes busy (together about 12 % off the
 * 4096-token call; bench/RESULTS.md, 33).
 *
 * Why: the blocked path (two library GEMMs with an inner dimension or output
 * width of 40 around a softmax over [64, 4096] score blocks) ran SD1.5's
 * 4096-token self-attention at 62 GFLOP/s against a 140 GFLOP/s GEMM on a
 * 2-core AVX2 EPYC, a sixth of the 512x512 step (bench/RESULTS.md, 29).
 */
#include "compute/attention_avx2.h"

#include <math.h>
#include <string.h>

#include "compute/attention_pack.h"
#include "compute/op_prof.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#define TROWS 6 /* query rows per register tile */
#ifndef TILES
#define TILES 4 /* tiles per group, sharing each block of keys */
#endif
#define GROUP (TROWS * TILES)
#ifndef KEYS
#define KEYS 128 /* keys per block: [6][128] scores are 3 KB */
#endif
#define MAXW 256 /* head widths handled (SD: 40..160, CLIP 64) */

typedef struct avx2_job {
    const float *q, *k, *v;
    int q_stride, kv_stride, n, tq, tk, heads, d, dp, tkp, causal;
    float scale;
    float *out;
    float *kt; /* per (image, head): keys by panels of 16, [tkp / 16][d][16], zero beyond tk */
    float *vp; /* per (image, head): values, [tkp][dp], zero-padded */
} avx2_job;

int attention_avx2_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

int attention_avx2_handles(int d)
{
    return d >= 1 && d <= MAXW;
}

static int padded_width(int d)
{
    return (d + 7) / 8 * 8;
}

size_t attention_avx2_scratch_floats(int n, int tk, int heads, int d)
{
    size_t tkp = (size_t)attention_key_stride(tk), dp = (size_t)padded_width(d);
    return (size_t)n * heads * (d * tkp + tkp * dp);
}

static void pack_heads(void *p, int ith, int nth)
{
    const avx2_job *j = p;
    long r0, r1;
    threadpool_range((long)j->n * j->heads, ith, nth, &r0, &r1);
    for (long bh = r0; bh < r1; bh++) {
        int b = (int)(bh / j->heads), h = (int)(bh % j->heads);
        size_t at = (size_t)b * j->tk * j->kv_stride + (size_t)h * j->d;
        attention_pack_head_panels(j->k + at, j->v + at, j->kv_stride, j->tk, j->d, j->tkp, j->dp,
                                   j->kt + bh * (size_t)j->d * j->tkp,
                                   j->vp + bh * (size_t)j->tkp * j->dp);
    }
}

/* s[r][c .. c+15] = qs[r] . keys col .. col+15 for a tile's rows, read from
   their panel in order; vmax[r] keeps each row's running maximum. */
__attribute__((target("avx2,fma"))) static void scores_16(const float *qs, int dp, const float *kt,
                                                          int d, int col, float (*s)[KEYS], int c,
                                                          __m256 *vmax)
{
    __m256 a0[TROWS], a1[TROWS];
    for (int r = 0; r < TROWS; r++)
        a0[r] = a1[r] = _mm256_setzero_ps();
    const float *kp = kt + (size_t)(col / 16) * d * 16; /* the 16 keys' panel, [d][16] */
    for (int x = 0; x < d; x++, kp += 16) {
        __m256 k0 = _mm256_load_ps(kp), k1 = _mm256_load_ps(kp + 8);
        for (int r = 0; r < TROWS; r++) {
            __m256 qb = _mm256_broadcast_ss(qs + (size_t)r * dp + x);
            a0[r] = _mm256_fmadd_ps(qb, k0, a0[r]);
            a1[r] = _mm256_fmadd_ps(qb, k1, a1[r]);
        }
    }
    for (int r = 0; r < TROWS; r++) {
        _mm256_store_ps(s[r] + c, a0[r]);
        _mm256_store_ps(s[r] + c + 8, a1[r]);
        vmax[r] = _mm256_max_ps(vmax[r], _mm256_max_ps(a0[r], a1[r]));
    }
}

/* 2^x for 8 lanes, x <= 0: 2^n put into the exponent field times the
   degree-6 fit of 2^r on [-1/2, 1/2] the AVX-512 kernel uses. x is held at
   -125 or above so the product stays a normal number (no scalef here). */
__attribute__((target("avx2,fma"))) static inline __m256 exp2_8(__m256 x)
{
    x = _mm256_max_ps(x, _mm256_set1_ps(-125.0f));
    __m256 n = _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_sub_ps(x, n);
    __m256 p = _mm256_set1_ps(1.534581018e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.339993116e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(9.618488961e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.550328777e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(2.402264689e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(6.931472057e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i e = _mm256_slli_epi32(_mm256_cvtps_epi32(n), 23);
    return _mm256_castsi256_ps(_mm256_add_epi32(_mm256_castps_si256(p), e));
}

__attribute__((target("avx2"))) static inline float hmax8(__m256 v)
{
    __m128 x = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_max_ps(x, _mm_movehl_ps(x, x));
    x = _mm_max_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

__attribute__((target("avx2"))) static inline float hsum8(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

/* Online softmax of one base-2 score row over its first `valid` of kb
   columns (the rest become 0): *m and *l are the row's running max and sum,
   *corr the factor that rescales what was accumulated under the old max. */
__attribute__((target("avx2,fma"))) static void softmax_row(float *s, int valid, int kb, float *m,
                                                            float *l, float *corr, __m256 vm)
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 acc = _mm256_setzero_ps();
    if (valid != kb) { /* a row's last block: vm saw the masked columns too */
        vm = ninf;
        for (int c = 0; c < kb; c += 8) {
            __m256 keep =
                _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(valid - c), lane));
            vm = _mm256_max_ps(vm, _mm256_blendv_ps(ninf, _mm256_load_ps(s + c), keep));
        }
    }
    float mx = hmax8(vm), mn = mx > *m ? mx : *m;
    __m256 vmn = _mm256_set1_ps(mn);
    if (valid == kb) {
        for (int c = 0; c < kb; c += 8) {
            __m256 e = exp2_8(_mm256_sub_ps(_mm256_load_ps(s + c), vmn));
            _mm256_store_ps(s + c, e);
            acc = _mm256_add_ps(acc, e);
        }
    } else {
        for (int c = 0; c < kb; c += 8) {
            __m256 keep =
                _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(valid - c), lane));
            __m256 e = _mm256_and_ps(exp2_8(_mm256_sub_ps(_mm256_load_ps(s + c), vmn)), keep);
            _mm256_store_ps(s + c, e);
            acc = _mm256_add_ps(acc, e);
        }
    }
    *corr = *m == -INFINITY ? 0.0f : exp2f(*m - mn);
    *l = *l * *corr + hsum8(acc);
    *m = mn;
}

/* o[r][c0 .. c0 + 8 nv) = o * corr[r] + sum over keys p[r][t] v[t][c0 ..] */
__attribute__((target("avx2,fma"), always_inline)) static inline void
values_chunk(float *o, int dp, const float *corr, const float (*p)[KEYS], const float *vp, int kb,
             int c0, const int nv)
{
    __m256 acc[TROWS][2];
    for (int r = 0; r < TROWS; r++) {
        __m256 cr = _mm256_set1_ps(corr[r]);
        for (int u = 0; u < nv; u++)
            acc[r][u] = _mm256_mul_ps(_mm256_load_ps(o + (size_t)r * dp + c0 + 8 * u), cr);
    }
    const float *vr = vp + c0;
    if (nv == 1) { /* six chains of 4-cycle FMAs starve two pipes: even and odd keys apart */
        for (int r = 0; r < TROWS; r++)
            acc[r][1] = _mm256_setzero_ps();
        for (int t = 0; t < kb; t += 2, vr += 2 * dp) {
            __m256 v0 = _mm256_load_ps(vr), v1 = _mm256_load_ps(vr + dp);
            for (int r = 0; r < TROWS; r++) {
                acc[r][0] = _mm256_fmadd_ps(_mm256_broadcast_ss(&p[r][t]), v0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(_mm256_broadcast_ss(&p[r][t + 1]), v1, acc[r][1]);
            }
        }
        for (int r = 0; r < TROWS; r++)
            _mm256_store_ps(o + (size_t)r * dp + c0, _mm256_add_ps(acc[r][0], acc[r][1]));
        return;
    }
    for (int t = 0; t < kb; t++, vr += dp) {
        __m256 v0 = _mm256_load_ps(vr), v1 = _mm256_load_ps(vr + 8);
        for (int r = 0; r < TROWS; r++) {
            __m256 pb = _mm256_broadcast_ss(&p[r][t]);
            acc[r][0] = _mm256_fmadd_ps(pb, v0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(pb, v1, acc[r][1]);
        }
    }
    for (int r = 0; r < TROWS; r++)
        for (int u = 0; u < 2; u++)
            _mm256_store_ps(o + (size_t)r * dp + c0 + 8 * u, acc[r][u]);
}

__attribute__((target("avx2,fma"))) static void
values(float *o, int dp, const float *corr, const float (*p)[KEYS], const float *vp, int kb)
{
    int c0 = 0;
    for (; c0 + 16 <= dp; c0 += 16)
        values_chunk(o, dp, corr, p, vp, kb, c0, 2);
    if (c0 < dp)
        values_chunk(o, dp, corr, p, vp, kb, c0, 1);
}

/* Rows r0 .. r0 + GROUP of one (image, head). */
__attribute__((target("avx2,fma"))) static void rows_group(const avx2_job *j, int b, int h, int r0)
{
    _Alignas(32) float qs[GROUP * MAXW];
    _Alignas(32) float o[GROUP * MAXW];
    _Alignas(32) float s[TROWS][KEYS];
    float m[GROUP], l[GROUP], corr[TROWS];
    int dp = j->dp, rows = j->tq - r0 < GROUP ? j->tq - r0 : GROUP;
    int tiles = (rows + TROWS - 1) / TROWS;
    memset(qs, 0, (size_t)tiles * TROWS * dp * sizeof *qs);
    memset(o, 0, (size_t)tiles * TROWS * dp * sizeof *o);
    for (int r = 0; r < rows; r++) {
        const float *qr = j->q + ((size_t)b * j->tq + r0 + r) * j->q_stride + (size_t)h * j->d;
        for (int c = 0; c < j->d; c++)
            qs[(size_t)r * dp + c] = qr[c] * j->scale;
    }
    for (int r = 0; r < GROUP; r++) {
        m[r] = -INFINITY;
        l[r] = 0;
    }
    size_t bh = (size_t)b * j->heads + h;
    const float *kt = j->kt + bh * j->d * j->tkp, *vp = j->vp + bh * j->tkp * dp;
    /* causal rows see keys up to their own index: later blocks are all masked */
    int kend = j->causal ? (r0 + rows < j->tk ? r0 + rows : j->tk) : j->tk;
    for (int k0 = 0; k0 < kend; k0 += KEYS) {
        int kb = (kend - k0 + 15) / 16 * 16;
        kb = kb < KEYS ? kb : KEYS;
        for (int tile = 0; tile < tiles; tile++) {
            int t0 = tile * TROWS, valid[TROWS], any = 0; /* keys of the block each row sees */
            for (int r = 0; r < TROWS; r++) {
                int row = t0 + r, lim = j->causal ? r0 + row + 1 : j->tk;
                lim = lim < j->tk ? lim : j->tk;
                valid[r] = row < rows ? lim - k0 : 0;
                valid[r] = valid[r] < 0 ? 0 : (valid[r] > kb ? kb : valid[r]);
                any |= valid[r];
            }
            if (!any)
                continue;
            __m256 vmax[TROWS];
            for (int r = 0; r < TROWS; r++)
                vmax[r] = _mm256_set1_ps(-INFINITY);
            for (int c = 0; c < kb; c += 16)
                scores_16(qs + (size_t)t0 * dp, dp, kt, j->d, k0 + c, s, c, vmax);
            for (int r = 0; r < TROWS; r++) {
                if (valid[r] == 0) { /* nothing to add for this row in this block */
                    memset(s[r], 0, (size_t)kb * sizeof(float));
                    corr[r] = 1.0f;
                    continue;
                }
                softmax_row(s[r], valid[r], kb, &m[t0 + r], &l[t0 + r], &corr[r], vmax[r]);
            }
            values(o + (size_t)t0 * dp, dp, corr, (const float(*)[KEYS])s, vp + (size_t)k0 * dp,
                   kb);
        }
    }
    for (int r = 0; r < rows; r++) {
        float inv = 1.0f / l[r];
        float *dst = j->out + ((size_t)b * j->tq + r0 + r) * j->heads * j->d + (size_t)h * j->d;
        for (int c = 0; c < j->d; c++)
            dst[c] = o[(size_t)r * dp + c] * inv;
    }
}

static void run_groups(void *p, int ith, int nth)
{
    const avx2_job *j = p;
    long groups = (j->tq + GROUP - 1) / GROUP, per_image = groups * j->heads;
    /* contiguous ranges: a thread's groups share their head's packed keys */
    long t0, t1;
    threadpool_range((long)j->n * per_image, ith, nth, &t0, &t1);
    for (long t = t0; t < t1; t++)
        rows_group(j, (int)(t / per_image), (int)(t % per_image / groups),
                   (int)(t % groups) * GROUP);
}

void attention_avx2(threadpool *tp, const float *q, int q_stride, const float *k, const float *v,
                    int kv_stride, int n, int tq, int tk, int heads, int d, int causal, float *out,
                    float *scratch)
{
    avx2_job j = {.q = q,
                  .k = k,
                  .v = v,
                  .q_stride = q_stride,
                  .kv_stride = kv_stride,
                  .n = n,
                  .tq = tq,
                  .tk = tk,
                  .heads = heads,
                  .d = d,
                  .dp = padded_width(d),
                  .tkp = attention_key_stride(tk),
                  .causal = causal,
                  /* scores in base 2: the softmax's exponential is a bare 2^x */
                  .scale = 1.44269504088896341f / sqrtf((float)d),
                  .out = out};
    j.kt = scratch;
    j.vp = scratch + (size_t)n * heads * d * j.tkp;
    OP_PROF_TAG(OPK_ATTN_FUSED, 8.0 * n * tk * heads * d);
    threadpool_run(tp, pack_heads, &j);
    OP_PROF_TAG(OPK_ATTN_FUSED, 4.0 * n * (2.0 * tq + 2.0 * tk) * heads * d);
    threadpool_run(tp, run_groups, &j);
}

#else

int attention_avx2_available(void)
{
    return 0;
}

int attention_avx2_handles(int d)
{
    (void)d;
    return 0;
}

size_t attention_avx2_scratch_floats(int n, int tk, int heads, int d)
{
    (void)n, (void)tk, (void)heads, (void)d;
    return 0;
}

void attention_avx2(threadpool *tp, const float *q, int q_stride, const float *k, const float *v,
                    int kv_stride, int n, int tq, int tk, int heads, int d, int causal, float *out,
                    float *scratch)
{
    (void)tp, (void)q, (void)q_stride, (void)k, (void)v, (void)kv_stride, (void)n, (void)tq;
    (void)tk, (void)heads, (void)d, (void)causal, (void)out, (void)scratch;
}

#endif
