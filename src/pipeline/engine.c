/* engine - the gs_engine handle: compute context, tokenizer, last error. */
#include "pipeline/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "sample/sampler.h"

void gs_engine_options_init(gs_engine_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->threads = 0;
}

gs_status engine_fail(gs_engine *eng, const gi_error *err)
{
    if (eng && err && &eng->err != err)
        eng->err = *err;
    return err ? err->code : GS_ERR_INTERNAL;
}

gs_status gs_engine_create(const gs_engine_options *opts, gs_engine **out)
{
    gs_engine_options defaults;
    if (!out)
        return GS_ERR_INVALID_ARGUMENT;
    *out = NULL;
    if (!opts) {
        gs_engine_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->threads < 0 || opts->threads > 1024 || opts->precision < GS_PRECISION_AUTO ||
        opts->precision > GS_PRECISION_F16)
        return GS_ERR_INVALID_ARGUMENT;
    gs_engine *eng = gi_calloc(1, sizeof *eng);
    if (!eng)
        return GS_ERR_NO_MEMORY;
    gi_error err = {0};
    /* bf16 Winograd GEMMs and attention products only where bf16 outruns f32:
       elsewhere (Intel without AMX: half the f32 rate; CPUs without bf16
       instructions, whose bf16 matmuls are widened to f32) a bf16 engine is a
       memory choice, its weights bf16 and those layers f32 */
    eng->bf16_fast = gemm_bf16_preferred();
    eng->half = opts->precision == GS_PRECISION_F16 ? WL_F16
                : opts->precision == GS_PRECISION_BF16 ||
                        (opts->precision == GS_PRECISION_AUTO && eng->bf16_fast)
                    ? WL_BF16
                    : WL_F32;
    gs_status st = compute_create(opts->threads, &eng->cx, &err);
    eng->precision_auto = opts->precision == GS_PRECISION_AUTO;
    if (st == GS_OK) {
        /* a developer's switch: the per-kind table of every run, on stderr */
        const char *env = getenv("GESSO_OP_PROFILE");
        eng->prof_print = env && *env && strcmp(env, "0") != 0;
        eng->cx->prof_on = opts->op_timers != 0 || eng->prof_print;
    }
    if (st == GS_OK) {
        eng->cx->attn_fused_bf16 = eng->cx->attn_fused_bf16 && eng->bf16_fast;
        engine_set_compute_precision(eng, eng->half);
    }
    if (st == GS_OK)
        st = clip_tokenizer_create(&eng->tok, &err);
    if (st != GS_OK) {
        gs_engine_free(eng);
        return st;
    }
    *out = eng;
    return GS_OK;
}

void gs_engine_free(gs_engine *eng)
{
    if (!eng)
        return;
    clip_tokenizer_free(eng->tok);
    compute_free(eng->cx);
    gi_free(eng);
}

const char *gs_engine_errmsg(const gs_engine *eng)
{
    if (!eng)
        return "no engine";
    return eng->err.msg;
}

void engine_set_compute_precision(gs_engine *eng, int half)
{
    eng->cx->attn_bf16 = half == WL_BF16 && eng->bf16_fast;
    eng->cx->winograd_bf16 = half == WL_BF16 && eng->bf16_fast;
    eng->cx->weights_f16 = half == WL_F16;
}

int engine_emulate_bf16_fast(gs_engine *eng)
{
    if (eng->bf16_fast && gemm_bf16_native(eng->cx->bf16))
        return 0;
    eng->bf16_fast = 1;
    if (eng->precision_auto)
        eng->half = WL_BF16;
    if (!gemm_bf16_native(eng->cx->bf16))
        gemm_bf16_emulate_native(eng->cx->bf16);
    engine_set_compute_precision(eng, eng->half);
    return 1;
}

gs_status gs_engine_gemm_rate(gs_engine *eng, double *gflops)
{
    if (!eng || !gflops)
        return GS_ERR_INVALID_ARGUMENT;
    gi_error err = {0};
    int saved = compute_enter(eng->cx);
    /* f16 weights are widened for f32 products: the f32 GEMM is their floor */
    gs_status st = compute_gemm_rate(eng->cx, eng->half == WL_BF16, gflops, &err);
    compute_leave(saved);
    return st == GS_OK ? GS_OK : engine_fail(eng, &err);
}

/* ---- parameters ---- */

void gs_params_init(gs_params *p)
{
    memset(p, 0, sizeof *p);
    p->prompt = "";
    p->negative_prompt = "";
    p->steps = 20;
    p->cfg_scale = 7.0f;
    p->sampler = "euler_a";
    p->scheduler = NULL;
    p->width = 512;
    p->height = 512;
    p->clip_skip = 1;
    p->batch_size = 1;
    p->strength = 0.75f;
    p->eta = -1.0f; /* the sampler's default */
    p->lora_strict = 1;
    p->mask_blur = 4; /* A1111's defaults */
    p->inpaint_fill = GS_INPAINT_ORIGINAL;
    p->inpaint_padding = 32;
    p->hires_denoise = 0.7f; /* A1111's txt2img UI default */
}

const char *const *gs_sampler_names(void)
{
    return sample_sampler_names();
}

const char *const *gs_scheduler_names(void)
{
    return sample_scheduler_names();
}

/* ---- results ---- */

void result_destroy(gs_result *res)
{
    if (!res)
        return;
    for (int i = 0; i < res->count; i++) {
        if (res->images)
            gi_free(res->images[i].pixels);
        if (res->infotexts)
            gi_free(res->infotexts[i]);
    }
    gi_free(res->images);
    gi_free(res->infotexts);
    gi_free(res->step_s);
    gi_free(res->warnings);
}

void gs_result_free(gs_result *res)
{
    result_destroy(res);
    gi_free(res);
}

int gs_result_count(const gs_result *res)
{
    return res ? res->count : 0;
}

const gs_image *gs_result_image(const gs_result *res, int index)
{
    if (!res || index < 0 || index >= res->count)
        return NULL;
    return &res->images[index];
}

const char *gs_result_infotext(const gs_result *res, int index)
{
    if (!res || index < 0 || index >= res->count)
        return NULL;
    return res->infotexts[index];
}

uint64_t gs_result_seed(const gs_result *res)
{
    return res ? res->seed : 0;
}

const char *gs_result_warnings(const gs_result *res)
{
    return res ? res->warnings : NULL;
}

void gs_result_timings(const gs_result *res, gs_timings *out)
{
    memset(out, 0, sizeof *out);
    if (res)
        *out = res->timings;
}
