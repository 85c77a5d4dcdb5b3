/*
 * test_op_prof - the op timers behind gesso bench's step split: each kernel
 * call lands in its kind with the exact GEMM FLOPs, nothing is recorded while
 * the timers are off, and a generation's split adds up to its mean step.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/compute.h"
#include "compute/op_prof.h"
#include "compute/ops.h"
#include "gesso.h"

static float *filled(size_t n, float scale)
{
    float *p = malloc(n * sizeof *p);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f * scale;
    return p;
}

static void noop(void *ctx, int ith, int nth)
{
    (void)ctx, (void)ith, (void)nth;
}

/* attention at 300 queries (five row blocks per head: one parallel region for
   the call) and at 5 (one block: a region per product and softmax), a layer
   norm, a GEGLU and an untagged parallel run */
static void run_kernels(gi_compute *cx)
{
    enum { N = 1, TQ = 300, TK = 77, HEADS = 2, D = 8, C = HEADS * D };
    float *q = filled((size_t)N * TQ * C, 1), *k = filled((size_t)N * TK * C, 1);
    float *v = filled((size_t)N * TK * C, 1), *o = filled((size_t)N * TQ * C, 0);
    float *g = filled(C, 1), *b = filled(C, 1), *gg = filled((size_t)TQ * 2 * C, 2);
    gi_error err = {0};
    assert_int_equal(op_attention(cx, q, C, k, v, C, N, TQ, TK, HEADS, D, 0, o, &err), GS_OK);
    assert_int_equal(op_attention(cx, q, D, k, v, D, 1, 5, 9, 1, D, 0, o, &err), GS_OK);
    norm_weights nw = {g, b, C};
    op_layer_norm(cx, &nw, q, TQ, C, 1e-5f, o);
    op_geglu(cx, gg, TQ, C, o);
    threadpool_run(cx->tp, noop, NULL);
    free(q), free(k), free(v), free(o), free(g), free(b), free(gg);
}

static void kernels_land_in_their_kinds(void **state)
{
    (void)state;
    gi_compute *cx = NULL;
    gi_error err = {0};
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    cx->attn_fused = cx->attn_avx2 = 0; /* the blocked path: two GEMMs and a softmax per block */
    cx->attn_bf16 = 0;
    assert_int_equal(compute_begin(cx, &err), GS_OK);

    op_prof_cur = NULL; /* off: nothing recorded */
    run_kernels(cx);
    op_prof zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&cx->prof, &zero, sizeof zero);

    op_prof_cur = &cx->prof;
    run_kernels(cx);
    op_prof_cur = NULL;
    const op_prof *p = &cx->prof;
    /* one timed region for the big call (its time shared between GEMM and softmax),
       two GEMMs and a softmax for the small one */
    assert_int_equal(p->calls[OPK_GEMM], 1 + 2);
    assert_int_equal(p->calls[OPK_SOFTMAX], 1 + 1);
    /* exact: 4·n·heads·tq·tk·d */
    assert_true(p->flop[OPK_GEMM] == 4.0 * 2 * 300 * 77 * 8 + 4.0 * 5 * 9 * 8);
    assert_true(p->bytes[OPK_SOFTMAX] == 8.0 * 300 * 77 * 2 + 8.0 * 5 * 9);
    assert_int_equal(p->calls[OPK_LAYER_NORM], 1);
    assert_int_equal(p->calls[OPK_GEGLU], 1);
    assert_int_equal(p->calls[OPK_OTHER], 1); /* a tag is used once, then reset */
    assert_int_equal(p->calls[OPK_GROUP_NORM], 0);
    for (int kk = 0; kk < OPK_N; kk++)
        assert_true(p->s[kk] >= 0);
    assert_true(op_prof_gemm_s(p) == p->s[OPK_GEMM] + p->s[OPK_ATTN_FUSED]);
    compute_free(cx);
}

/* The one-region attention (two threads, enough units) gives the per-block
   path's numbers (one thread), causal or not: the text encoder's causal
   self-attention at 12 heads takes the new path, and no golden of the tiny
   fixtures has enough heads to reach it. */
static void attention_units_match_blocks(void **state)
{
    (void)state;
    enum { N = 2, TQ = 77, TK = 77, HEADS = 12, D = 8, C = HEADS * D };
    float *q = filled((size_t)N * TQ * C, 2), *k = filled((size_t)N * TK * C, 3);
    float *v = filled((size_t)N * TK * C, 1);
    for (size_t i = 0; i < (size_t)N * TK * C; i++)
        k[i] = k[(i * 7919) % ((size_t)N * TK * C)] - 0.1f * q[i]; /* rows that differ */
    float *o1 = filled((size_t)N * TQ * C, 0), *o2 = filled((size_t)N * TQ * C, 0);
    gi_compute *one = NULL, *two = NULL;
    gi_error err = {0};
    assert_int_equal(compute_create(1, &one, &err), GS_OK);
    assert_int_equal(compute_create(2, &two, &err), GS_OK);
    for (int causal = 0; causal < 2; causal++) {
        gi_compute *cxs[2] = {one, two};
        for (int i = 0; i < 2; i++) {
            cxs[i]->attn_fused = cxs[i]->attn_avx2 = 0;
            cxs[i]->attn_bf16 = 0;
            assert_int_equal(compute_begin(cxs[i], &err), GS_OK);
        }
        assert_int_equal(op_attention(one, q, C, k, v, C, N, TQ, TK, HEADS, D, causal, o1, &err),
                         GS_OK);
        assert_int_equal(op_attention(two, q, C, k, v, C, N, TQ, TK, HEADS, D, causal, o2, &err),
                         GS_OK);
        double num = 0, den = 0;
        for (size_t i = 0; i < (size_t)N * TQ * C; i++) {
            num += ((double)o1[i] - o2[i]) * ((double)o1[i] - o2[i]);
            den += (double)o1[i] * o1[i];
        }
        printf("attention units vs blocks%s: rel L2 %.3g\n", causal ? " (causal)" : "",
               sqrt(num / den));
        /* measured 2.5e-8, causal 6.3e-9: oneDNN splits the GEMMs differently */
        assert_true(sqrt(num / den) < 1e-6);
    }
    compute_free(one);
    compute_free(two);
    free(q), free(k), free(v), free(o1), free(o2);
}

static void generate_split(int timers, gs_timings *tm, double *step2)
{
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    eo.precision = GS_PRECISION_F32;
    eo.op_timers = timers;
    gs_engine *eng = NULL;
    gs_model *model = NULL;
    gs_result *res = NULL;
    assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
    assert_int_equal(gs_model_load(eng, fixture_path("tiny-sd15.safetensors"), &model), GS_OK);
    gs_params p;
    gs_params_init(&p);
    p.prompt = "a lighthouse";
    p.steps = 3;
    p.width = p.height = 64;
    assert_int_equal(gs_generate(eng, model, &p, NULL, NULL, &res), GS_OK);
    gs_result_timings(res, tm);
    assert_int_equal(tm->n_steps, 3);
    *step2 = 0.5 * (tm->step_s[1] + tm->step_s[2]);
    gs_result_free(res);
    gs_model_free(model);
    gs_engine_free(eng);
}

static void generation_split_adds_up(void **state)
{
    (void)state;
    gs_timings tm;
    double mean = 0;
    generate_split(0, &tm, &mean);
    assert_true(tm.step_mean_s == 0 && tm.step_gemm_s == 0 && tm.step_conv_aux_s == 0 &&
                tm.step_other_s == 0); /* off: no split */

    generate_split(1, &tm, &mean);
    /* the mean of the steps after the warm-up, split into three that add up */
    assert_true(fabs(tm.step_mean_s - mean) <= 1e-9 * (1 + mean));
    assert_true(tm.step_gemm_s > 0);
    assert_true(tm.step_conv_aux_s >= 0);
    assert_true(tm.step_gemm_s + tm.step_conv_aux_s <= tm.step_mean_s);
    assert_true(fabs(tm.step_gemm_s + tm.step_conv_aux_s + tm.step_other_s - tm.step_mean_s) <=
                1e-9);
}

/* gesso bench --json carries the split, and its parts add up to the mean step */
static void bench_json_has_the_split(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "OMP_WAIT_POLICY=passive '%s' bench --model '%s' --width 64 --height 64 --steps 3 "
             "--threads 2 --precision f32 --json",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"));
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    json_error_t jerr;
    json_t *j = json_loadf(f, 0, &jerr);
    assert_int_equal(pclose(f), 0);
    assert_non_null(j);
    double mean = json_number_value(json_object_get(j, "step_mean_s"));
    double gemm = json_number_value(json_object_get(j, "step_gemm_s"));
    double aux = json_number_value(json_object_get(j, "step_conv_aux_s"));
    double other = json_number_value(json_object_get(j, "step_other_s"));
    double share = json_number_value(json_object_get(j, "step_gemm_share"));
    assert_true(mean > 0 && gemm > 0 && aux >= 0);
    assert_true(fabs(gemm + aux + other - mean) < 5e-4); /* printed to 0.1 ms */
    assert_true(share > 0 && share <= 1);
    assert_non_null(json_object_get(j, "sampling_s"));
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kernels_land_in_their_kinds),
        cmocka_unit_test(attention_units_match_blocks),
        cmocka_unit_test(generation_split_adds_up),
        cmocka_unit_test(bench_json_has_the_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
