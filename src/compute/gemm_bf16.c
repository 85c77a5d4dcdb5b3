/* gemm_bf16 - bf16 matmul primitives cached by shape. */
#include "compute/gemm_bf16.h"

#include <dnnl.h>
#include <string.h>

#include "common/alloc.h"
#include "compute/gemm.h"
#include "compute/gemm_pack.h"
#include "compute/half.h"
#include "compute/half_span.h"
#include "compute/op_prof.h"
#include "compute/vec_math.h"

#define CACHE_MAX 256
/* Each widened operand panel (A rows, B rows or columns) holds at most this
   many floats: 8 MB, kept with the cache between calls. */
#define WIDE_PANEL_FLOATS (2L << 20)

/* trans_b of an entry whose B is packed (gemm_pack.h) */
#define PACKED 2

typedef struct entry {
    int M, N, K, lda, ldb, ldc, trans_b, accumulate, has_bias;
    int f32; /* A and B f32 (a bias-adding f32 GEMM) rather than bf16 */
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c, bias;
} entry;

struct gemm_bf16_cache {
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    entry e[CACHE_MAX];
    int n;
    /* oneDNN 2.x has no bf16 matmul below AVX512_BF16-class CPUs: there the
       operands are widened to f32 a panel at a time and multiplied by the f32
       GEMM. A bf16 x bf16 product is exact in f32, so the answer is the bf16
       matmul's up to the order of the f32 sums. */
    int widen;
    int as_native; /* widening, but callers hand bf16 activations as to a native one */
    float *wa, *wb;
    size_t wa_cap, wb_cap;
    float *unpack; /* packed weights in their stored layout, for widening */
    size_t unpack_cap;
};

/* Measured (bench/RESULTS.md section 8): AMD Zen 4 runs oneDNN's bf16 matmul at
   1.8x its f32 rate; an Intel Xeon with AVX512_BF16 but no AMX (AMX absent or
   hidden by a hypervisor) at 0.63x, because VDPBF16PS issues on one port where
   f32 FMAs issue on two. AMX tiles are several times faster than either. The
   choice is made from the CPU's identity, not by timing, so the same settings
   give the same image on every run on one machine. */
int gemm_bf16_preferred(void)
{
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
#if !defined(__clang__) || __clang_major__ >= 16 /* clang 14 (the fuzz build) lacks the name */
    if (__builtin_cpu_supports("amx-bf16"))
        return 1;
#endif
    return __builtin_cpu_is("amd") && __builtin_cpu_supports("avx512bf16");
#else
    return 0;
#endif
}

/* Static, behind f32_to_bf16: GCC gives the resolver of an extern
   target_clones function default visibility whatever -fvisibility says, so
   libgesso.so would export it. */
GS_VEC_CLONES static void f32_to_bf16_span(const float *x, uint16_t *y, long n)
{
    for (long i = 0; i < n; i++)
        y[i] = gi_f32_to_bf16_round(x[i]);
}

void f32_to_bf16(const float *x, uint16_t *y, long n)
{
    f32_to_bf16_span(x, y, n);
}

int gemm_bf16_native(const gemm_bf16_cache *c)
{
    return !c->widen || c->as_native;
}

void gemm_bf16_emulate_native(gemm_bf16_cache *c)
{
    c->as_native = 1;
}

void gemm_bf16_force_widening(gemm_bf16_cache *c)
{
    c->widen = 1;
}

static dnnl_status_t create_entry(gemm_bf16_cache *c, entry *e);
static void entry_free(entry *e);

/* The CPU's answer, found once per process: every engine creation asks. */
static int bf16_matmul_exists(gemm_bf16_cache *c)
{
    static int known = -1;
    int r = __atomic_load_n(&known, __ATOMIC_ACQUIRE);
    if (r >= 0)
        return r;
    entry e = {16, 16, 16, 16, 16, 16, 1, 0, 0, 0, NULL, NULL, NULL, NULL, NULL};
    r = create_entry(c, &e) == dnnl_success;
    entry_free(&e);
    __atomic_store_n(&known, r, __ATOMIC_RELEASE);
    return r;
}

/* Whether oneDNN's matmul on this CPU asks for B in gemm_pack's layout when
   left to choose: an SD-sized bf16 or f32 shape, its weights "any". */
static int asks_for_packed(dnnl_engine_t eng, int f32)
{
    const dnnl_dim_t m = 256, n = 256, k = 256;
    dnnl_data_type_t in = f32 ? dnnl_f32 : dnnl_bf16;
    dnnl_memory_desc_t a, b, d, want;
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    if (dnnl_memory_desc_init_by_tag(&a, 2, (dnnl_dims_t){m, k}, in, dnnl_ab) != dnnl_success ||
        dnnl_memory_desc_init_by_tag(&b, 2, (dnnl_dims_t){k, n}, in, dnnl_format_tag_any) !=
            dnnl_success ||
        dnnl_memory_desc_init_by_tag(&d, 2, (dnnl_dims_t){m, n}, dnnl_f32, dnnl_ab) !=
            dnnl_success ||
        dnnl_memory_desc_init_by_tag(&want, 2, (dnnl_dims_t){k, n}, in,
                                     f32 ? dnnl_BA16a64b : dnnl_BA16a64b2a) != dnnl_success ||
        dnnl_matmul_desc_init(&md, &a, &b, NULL, &d) != dnnl_success ||
        dnnl_primitive_desc_create(&pd, &md, NULL, eng, NULL) != dnnl_success)
        return 0;
    const dnnl_memory_desc_t *got = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    int r = got && dnnl_memory_desc_equal(got, &want);
    dnnl_primitive_desc_destroy(pd);
    return r;
}

/* Found once per process; -1 until then. */
static int packs_known[2] = {-1, -1};

int gemm_packs(int f32)
{
    int r = __atomic_load_n(&packs_known[f32 != 0], __ATOMIC_ACQUIRE);
    if (r >= 0)
        return r;
    dnnl_engine_t eng;
    if (dnnl_engine_create(&eng, dnnl_cpu, 0) != dnnl_success)
        return 0;
    r = asks_for_packed(eng, f32 != 0);
    dnnl_engine_destroy(eng);
    __atomic_store_n(&packs_known[f32 != 0], r, __ATOMIC_RELEASE);
    return r;
}

gs_status gemm_bf16_cache_create(gemm_bf16_cache **out, gi_error *err)
{
    *out = NULL;
    gemm_bf16_cache *c = gi_calloc(1, sizeof *c);
    if (!c)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    if (dnnl_engine_create(&c->eng, dnnl_cpu, 0) != dnnl_success ||
        dnnl_stream_create(&c->strm, c->eng, dnnl_stream_default_flags) != dnnl_success) {
        gemm_bf16_cache_free(c);
        return gi_fail(err, GS_ERR_INTERNAL, "cannot start oneDNN");
    }
    c->widen = !bf16_matmul_exists(c);
    *out = c;
    return GS_OK;
}

static void entry_free(entry *e)
{
    if (e->prim)
        dnnl_primitive_destroy(e->prim);
    if (e->a)
        dnnl_memory_destroy(e->a);
    if (e->b)
        dnnl_memory_destroy(e->b);
    if (e->c)
        dnnl_memory_destroy(e->c);
    if (e->bias)
        dnnl_memory_destroy(e->bias);
    memset(e, 0, sizeof *e);
}

void gemm_bf16_cache_free(gemm_bf16_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        entry_free(&c->e[i]);
    if (c->strm)
        dnnl_stream_destroy(c->strm);
    if (c->eng)
        dnnl_engine_destroy(c->eng);
    gi_aligned_free(c->wa);
    gi_aligned_free(c->wb);
    gi_aligned_free(c->unpack);
    gi_free(c);
}

static dnnl_status_t create_entry(gemm_bf16_cache *c, entry *e)
{
    dnnl_memory_desc_t a, b, d, bias;
    dnnl_status_t s;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_data_type_t in = e->f32 ? dnnl_f32 : dnnl_bf16;
    if ((s = dnnl_memory_desc_init_by_strides(&a, 2, (dnnl_dims_t){e->M, e->K}, in,
                                              (dnnl_dims_t){e->lda, 1})) != dnnl_success ||
        /* B[K, N]: stored [N, K] has strides (1, ldb), stored [K, N] has (ldb, 1) */
        (s = e->trans_b == PACKED
                 ? dnnl_memory_desc_init_by_tag(&b, 2, (dnnl_dims_t){e->K, e->N}, in,
                                                e->f32 ? dnnl_BA16a64b : dnnl_BA16a64b2a)
                 : dnnl_memory_desc_init_by_strides(&b, 2, (dnnl_dims_t){e->K, e->N}, in,
                                                    e->trans_b ? (dnnl_dims_t){1, e->ldb}
                                                               : (dnnl_dims_t){e->ldb, 1})) !=
            dnnl_success ||
        (s = dnnl_memory_desc_init_by_strides(&d, 2, (dnnl_dims_t){e->M, e->N}, dnnl_f32,
                                              (dnnl_dims_t){e->ldc, 1})) != dnnl_success ||
        (s = dnnl_memory_desc_init_by_strides(&bias, 2, (dnnl_dims_t){1, e->N}, dnnl_f32,
                                              (dnnl_dims_t){e->N, 1})) != dnnl_success)
        return s;
    dnnl_matmul_desc_t md;
    if ((s = dnnl_matmul_desc_init(&md, &a, &b, e->has_bias ? &bias : NULL, &d)) != dnnl_success)
        return s;
    if ((s = dnnl_primitive_attr_create(&attr)) != dnnl_success)
        return s;
    if (e->accumulate) {
        if ((s = dnnl_post_ops_create(&po)) != dnnl_success ||
            (s = dnnl_post_ops_append_sum(po, 1.0f)) != dnnl_success ||
            (s = dnnl_primitive_attr_set_post_ops(attr, po)) != dnnl_success)
            goto out;
    }
    if ((s = dnnl_primitive_desc_create(&pd, &md, attr, c->eng, NULL)) != dnnl_success ||
        (s = dnnl_primitive_create(&e->prim, pd)) != dnnl_success ||
        (s = dnnl_memory_create(&e->a, &a, c->eng, DNNL_MEMORY_NONE)) != dnnl_success ||
        (s = dnnl_memory_create(&e->b, &b, c->eng, DNNL_MEMORY_NONE)) != dnnl_success ||
        (s = dnnl_memory_create(&e->c, &d, c->eng, DNNL_MEMORY_NONE)) != dnnl_success ||
        (e->has_bias &&
         (s = dnnl_memory_create(&e->bias, &bias, c->eng, DNNL_MEMORY_NONE)) != dnnl_success))
        goto out;
out:
    if (pd)
        dnnl_primitive_desc_destroy(pd);
    if (po)
        dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return s;
}

GS_VEC_CLONES static void bf16_to_f32_span(const uint16_t *x, float *y, long n)
{
    for (long i = 0; i < n; i++) {
        uint32_t u = (uint32_t)x[i] << 16;
        memcpy(&y[i], &u, 4);
    }
}

/* dst[r][0..cols) = src[r][0..cols) for rows rows: strided bf16 (or f16) to
   packed f32. */
static void widen_rows(const uint16_t *src, int f16, long ld, long rows, long cols, float *dst)
{
    /* memory-bound: threads only where there is enough to share */
#pragma omp parallel for schedule(static) if (rows * cols >= (1L << 16))
    for (long r = 0; r < rows; r++) {
        if (f16)
            gi_f16_to_f32_span(src + r * ld, dst + r * cols, (size_t)cols);
        else
            bf16_to_f32_span(src + r * ld, dst + r * cols, cols);
    }
}

static float *panel(float **buf, size_t *cap, size_t floats)
{
    if (floats > *cap) {
        gi_aligned_free(*buf);
        *buf = gi_aligned_alloc(floats * sizeof **buf);
        *cap = *buf ? floats : 0;
    }
    return *buf;
}

static gs_status run_primitive(gemm_bf16_cache *c, int f32, int M, int N, int K, const void *A,
                               int lda, const void *B, int ldb, int trans_b, const float *bias,
                               float beta, float *C, int ldc, gi_error *err);

/* Widening is memory-bound work the GEMM timer does not see: its own kind. */
static void widen_timed(const uint16_t *src, int f16, long ld, long rows, long cols, float *dst)
{
    op_prof *prof = op_prof_cur;
    double t0 = prof ? op_prof_now() : 0;
    widen_rows(src, f16, ld, rows, cols, dst);
    if (prof)
        op_prof_add(prof, OPK_WIDEN, t0, 0, 6.0 * rows * cols);
}

/* C = A B (+ bias) (+ C) by widened panels: B by blocks of output columns, and
   A, when it is bf16 (A16; else A32 is used as it is), by blocks of rows
   within each, so both stay bounded whatever the layer; A is widened once per
   block of B (once, for all but the widest layers). Each block of C is one
   f32 matmul with the bias and the sum in its epilogue. */
static gs_status gemm_widened(gemm_bf16_cache *c, int M, int N, int K, const uint16_t *A16,
                              const float *A32, int lda, const uint16_t *B, int b_f16, int ldb,
                              int trans_b, const float *bias, float beta, float *C, int ldc,
                              gi_error *err);

/* C = A32 B^T (+ bias) (+ C) for weights B [N, K] much deeper than wide (K >
   2N: im2col convolutions, the feed-forwards' output layers), by panels of
   B's columns: each widened [N, kc] panel is one f32 matmul over A's matching
   columns, accumulating into C from the second on. Panels of rows instead
   (gemm_widened) would read all of A once per panel: a 2560-channel 3x3
   convolution at 16x16 had 15 panels of 91 rows, each re-reading 47 MB of
   patches (bench/RESULTS.md section 30); here A is read once and C, the
   smaller, once per panel. */
static gs_status gemm_widened_deep(gemm_bf16_cache *c, int M, int N, int K, const float *A32,
                                   int lda, const uint16_t *B, int b_f16, int ldb,
                                   const float *bias, float beta, float *C, int ldc, gi_error *err)
{
    long kc = WIDE_PANEL_FLOATS / N / 16 * 16;
    kc = kc < 16 ? 16 : kc > K ? K : kc;
    float *wb = panel(&c->wb, &c->wb_cap, (size_t)N * kc);
    if (!wb)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory widening a 16-bit matmul");
    gs_status st = GS_OK;
    for (long k0 = 0; k0 < K && st == GS_OK; k0 += kc) {
        long kk = K - k0 < kc ? K - k0 : kc;
        widen_timed(B + k0, b_f16, ldb, N, kk, wb);
        st = run_primitive(c, 1, M, N, (int)kk, A32 + k0, lda, wb, (int)kk, 1,
                           k0 == 0 ? bias : NULL, k0 == 0 ? beta : 1.0f, C, ldc, err);
    }
    return st;
}

static gs_status gemm_widened(gemm_bf16_cache *c, int M, int N, int K, const uint16_t *A16,
                              const float *A32, int lda, const uint16_t *B, int b_f16, int ldb,
                              int trans_b, const float *bias, float beta, float *C, int ldc,
                              gi_error *err)
{
    if (A32 && trans_b && K > 2L * N && (long)N * K > WIDE_PANEL_FLOATS)
        return gemm_widened_deep(c, M, N, K, A32, lda, B, b_f16, ldb, bias, beta, C, ldc, err);
    long nb = WIDE_PANEL_FLOATS / K, mb = A16 ? WIDE_PANEL_FLOATS / K : M;
    nb = nb < 16 ? 16 : nb > N ? N : nb;
    mb = mb < 16 ? 16 : mb > M ? M : mb;
    float *wb = panel(&c->wb, &c->wb_cap, (size_t)nb * K);
    float *wa = A16 ? panel(&c->wa, &c->wa_cap, (size_t)mb * K) : NULL;
    if (!wb || (A16 && !wa))
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory widening a bf16 matmul");
    gs_status st = GS_OK;
    for (long n0 = 0; n0 < N && st == GS_OK; n0 += nb) {
        long nn = N - n0 < nb ? N - n0 : nb;
        if (trans_b) /* B [N, K]: rows n0.. */
            widen_timed(B + n0 * ldb, b_f16, ldb, nn, K, wb);
        else /* B [K, N]: columns n0.. of every row */
            widen_timed(B + n0, b_f16, ldb, K, nn, wb);
        for (long m0 = 0; m0 < M && st == GS_OK; m0 += mb) {
            long mm = M - m0 < mb ? M - m0 : mb;
            if (A16)
                widen_timed(A16 + m0 * lda, 0, lda, mm, K, wa);
            st = run_primitive(c, 1, (int)mm, (int)nn, K, A16 ? wa : A32 + m0 * lda, A16 ? K : lda,
                               wb, trans_b ? K : (int)nn, trans_b, bias ? bias + n0 : NULL, beta,
                               C + m0 * ldc + n0, ldc, err);
        }
    }
    return st;
}

gs_status gemm_bf16_weights(gemm_bf16_cache *c, int M, int N, int K, const float *A, int lda,
                            const uint16_t *B, int ldb, const float *bias, float beta, float *C,
                            int ldc, gi_error *err)
{
    if (M <= 0 || N <= 0)
        return GS_OK;
    return gemm_widened(c, M, N, K, NULL, A, lda, B, 0, ldb, 1, bias, beta, C, ldc, err);
}

gs_status gemm_f16_weights(gemm_bf16_cache *c, int M, int N, int K, const float *A, int lda,
                           const uint16_t *B, int ldb, const float *bias, float beta, float *C,
                           int ldc, gi_error *err)
{
    if (M <= 0 || N <= 0)
        return GS_OK;
    return gemm_widened(c, M, N, K, NULL, A, lda, B, 1, ldb, 1, bias, beta, C, ldc, err);
}

/* C = A op(B) (+ bias) (+ C when beta is 1) on the cached primitive for this
   shape and dtype (f32 or bf16 operands), made on first use. */
static gs_status run_primitive(gemm_bf16_cache *c, int f32, int M, int N, int K, const void *A,
                               int lda, const void *B, int ldb, int trans_b, const float *bias,
                               float beta, float *C, int ldc, gi_error *err)
{
    const entry key = {.M = M,
                       .N = N,
                       .K = K,
                       .lda = lda,
                       .ldb = ldb,
                       .ldc = ldc,
                       .trans_b = trans_b,
                       .accumulate = beta != 0.0f,
                       .has_bias = bias != NULL,
                       .f32 = f32};
    op_prof *prof = op_prof_cur;
    double t0 = prof ? op_prof_now() : 0; /* a new shape's primitive creation counts too */
    entry *e = NULL;
    for (int i = 0; i < c->n; i++) {
        entry *x = &c->e[i];
        if (x->M == key.M && x->N == key.N && x->K == key.K && x->lda == key.lda &&
            x->ldb == key.ldb && x->ldc == key.ldc && x->trans_b == key.trans_b &&
            x->accumulate == key.accumulate && x->has_bias == key.has_bias && x->f32 == key.f32) {
            e = x;
            break;
        }
    }
    if (!e) {
        if (c->n == CACHE_MAX) { /* shapes churn (many sizes): start over */
            for (int i = 0; i < c->n; i++)
                entry_free(&c->e[i]);
            c->n = 0;
        }
        e = &c->e[c->n];
        *e = key;
        if (create_entry(c, e) != dnnl_success) {
            entry_free(e);
            return gi_fail(err, GS_ERR_INTERNAL, "oneDNN cannot run a %dx%dx%d %s matmul", key.M,
                           key.N, key.K, key.f32 ? "f32" : "bf16");
        }
        c->n++;
    }
    dnnl_memory_set_data_handle(e->a, (void *)A);
    dnnl_memory_set_data_handle(e->b, (void *)B);
    dnnl_memory_set_data_handle(e->c, C);
    if (e->has_bias)
        dnnl_memory_set_data_handle(e->bias, (void *)bias);
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->a},
                               {DNNL_ARG_WEIGHTS, e->b},
                               {DNNL_ARG_DST, e->c},
                               {DNNL_ARG_BIAS, e->bias}};
    if (dnnl_primitive_execute(e->prim, c->strm, e->has_bias ? 4 : 3, args) != dnnl_success ||
        dnnl_stream_wait(c->strm) != dnnl_success)
        return gi_fail(err, GS_ERR_INTERNAL, "oneDNN matmul failed");
    if (prof) {
        double in = f32 ? 4.0 : 2.0, m = M, n = N, k = K;
        op_prof_add(prof, OPK_GEMM, t0, 2.0 * m * n * k,
                    in * (m * k + k * n) + 4.0 * (beta != 0.0f ? 2.0 : 1.0) * m * n);
    }
    return GS_OK;
}

static gs_status matmul(gemm_bf16_cache *c, int M, int N, int K, const uint16_t *A, int lda,
                        const uint16_t *B, int ldb, int trans_b, const float *bias, float beta,
                        float *C, int ldc, gi_error *err)
{
    if (M <= 0 || N <= 0)
        return GS_OK;
    if (c->widen)
        return gemm_widened(c, M, N, K, A, NULL, lda, B, 0, ldb, trans_b, bias, beta, C, ldc, err);
    return run_primitive(c, 0, M, N, K, A, lda, B, ldb, trans_b, bias, beta, C, ldc, err);
}

gs_status gemm_f32_bias(gemm_bf16_cache *c, int M, int N, int K, const float *A, int lda,
                        const float *B, int ldb, const float *bias, float beta, float *C, int ldc,
                        gi_error *err)
{
    if (M <= 0 || N <= 0)
        return GS_OK;
    return run_primitive(c, 1, M, N, K, A, lda, B, ldb, 1, bias, beta, C, ldc, err);
}

gs_status gemm_bf16(gemm_bf16_cache *c, int M, int N, int K, const uint16_t *A, int lda,
                    const uint16_t *B, int ldb, int trans_b, float beta, float *C, int ldc,
                    gi_error *err)
{
    return matmul(c, M, N, K, A, lda, B, ldb, trans_b, NULL, beta, C, ldc, err);
}

/* Packed B back in its stored layout, in the cache's own buffer: for a bf16
   product on a CPU that widens (or a test that makes one widen). */
static const uint16_t *unpacked(gemm_bf16_cache *c, int N, int K, const uint16_t *B, gi_error *err)
{
    float *buf = panel(&c->unpack, &c->unpack_cap, ((size_t)N * K + 1) / 2);
    if (!buf) {
        gi_fail(err, GS_ERR_NO_MEMORY, "out of memory unpacking a layer's weights");
        return NULL;
    }
    gemm_unpack(B, buf, N, K, 0);
    return (const uint16_t *)buf;
}

gs_status gemm_bf16_bias_packed(gemm_bf16_cache *c, int M, int N, int K, const uint16_t *A, int lda,
                                const uint16_t *B, const float *bias, float beta, float *C, int ldc,
                                gi_error *err)
{
    if (M <= 0 || N <= 0)
        return GS_OK;
    if (c->widen) {
        const uint16_t *plain = unpacked(c, N, K, B, err);
        return plain
                   ? gemm_widened(c, M, N, K, A, NULL, lda, plain, 0, K, 1, bias, beta, C, ldc, err)
                   : GS_ERR_NO_MEMORY;
    }
    return run_primitive(c, 0, M, N, K, A, lda, B, K, PACKED, bias, beta, C, ldc, err);
}

gs_status gemm_f32_bias_packed(gemm_bf16_cache *c, int M, int N, int K, const float *A, int lda,
                               const float *B, const float *bias, float beta, float *C, int ldc,
                               gi_error *err)
{
    if (M <= 0 || N <= 0)
        return GS_OK;
    return run_primitive(c, 1, M, N, K, A, lda, B, K, PACKED, bias, beta, C, ldc, err);
}

gs_status gemm_bf16_bias(gemm_bf16_cache *c, int M, int N, int K, const uint16_t *A, int lda,
                         const uint16_t *B, int ldb, const float *bias, float beta, float *C,
                         int ldc, gi_error *err)
{
    return matmul(c, M, N, K, A, lda, B, ldb, 1, bias, beta, C, ldc, err);
}
