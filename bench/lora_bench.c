/*
 * lora_bench - the time to fold a LoRA set into a loaded model and to switch
 * sets, through the public API (gs_timings.lora_apply_s of 64x64, one-step
 * generations, so the generation around it costs little).
 *
 * usage: lora_bench MODEL LORA_A LORA_B [threads] [f32|bf16|auto] [side]
 * side: the reference step's image side (default 512; 1024 for SDXL).
 * Make the LoRAs with tools/make_bench_lora.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"

static gs_engine *eng;
static gs_model *model;

static double run(const char *what, const gs_lora *l, int n)
{
    gs_params p;
    gs_params_init(&p);
    p.prompt = "a lighthouse";
    p.steps = 1;
    p.cfg_scale = 1;
    p.width = p.height = 64;
    p.sampler = "euler";
    p.loras = l;
    p.n_loras = n;
    gs_result *res;
    if (gs_generate(eng, model, &p, NULL, NULL, &res) != GS_OK) {
        fprintf(stderr, "%s: %s\n", what, gs_engine_errmsg(eng));
        exit(1);
    }
    gs_timings t;
    gs_result_timings(res, &t);
    printf("%-34s fold %8.1f ms   (whole 64x64 call %7.1f ms)\n", what, t.lora_apply_s * 1e3,
           t.total_s * 1e3);
    gs_result_free(res);
    return t.lora_apply_s;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: lora_bench MODEL LORA_A LORA_B [threads] [f32|bf16|auto] [side]\n");
        return 2;
    }
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = argc > 4 ? (int)strtol(argv[4], NULL, 10) : 0;
    const char *prec = argc > 5 ? argv[5] : "f32";
    eo.precision = strcmp(prec, "bf16") == 0   ? GS_PRECISION_BF16
                   : strcmp(prec, "auto") == 0 ? GS_PRECISION_AUTO
                                               : GS_PRECISION_F32;
    if (gs_engine_create(&eo, &eng) != GS_OK || gs_model_load(eng, argv[1], &model) != GS_OK) {
        fprintf(stderr, "load: %s\n", eng ? gs_engine_errmsg(eng) : "engine");
        return 1;
    }
    gs_model_info info;
    gs_model_get_info(model, &info);
    printf("model %s, compute %s\n", argv[1], info.compute_dtype);
    gs_lora a = {argv[2], 1.0f, 1.0f}, b = {argv[3], 1.0f, 1.0f};
    gs_lora ab[2] = {{argv[2], 0.7f, 0.7f}, {argv[3], -0.5f, -0.5f}};
    run("warm-up, no LoRA", NULL, 0);
    run("none -> A (first: file hashed)", &a, 1);
    run("A -> A (same set)", &a, 1);
    run("A -> B (first: file hashed)", &b, 1);
    run("B -> none", NULL, 0);
    run("none -> A", &a, 1);
    run("A -> B", &b, 1);
    run("B -> A", &a, 1);
    run("A -> A 0.7 + B -0.5", ab, 2);
    run("A+B -> none", NULL, 0);
    /* one step at side x side (CFG 7, the second step's time) under the same conditions */
    int side = argc > 6 ? (int)strtol(argv[6], NULL, 10) : 512;
    gs_params p;
    gs_params_init(&p);
    p.width = p.height = side;
    p.prompt = "a lighthouse";
    p.steps = 2;
    p.sampler = "euler";
    gs_result *res;
    if (gs_generate(eng, model, &p, NULL, NULL, &res) == GS_OK) {
        gs_timings t;
        gs_result_timings(res, &t);
        printf("one %dx%d step (CFG, batch %d): %.1f ms\n", side, side, t.unet_batch,
               t.step_s[t.n_steps - 1] * 1e3);
        gs_result_free(res);
    }
    gs_model_free(model);
    gs_engine_free(eng);
    return 0;
}
