/*
 * ignores_status - must NOT compile: each line drops the status of a call that
 * gesso.h marks GS_NODISCARD. check-nodiscard.sh compiles it with the
 * project's flags and expects an error naming every function called here.
 */
#include "gesso.h"

void ignore_all(gs_engine *eng, gs_model **model, gs_image **img, const gs_params *p,
                gs_result **res, gs_checkpoint_info *ci, uint8_t **png, size_t *png_size,
                double *gflops, gs_tokenizer **tok, int *chunks);

void ignore_all(gs_engine *eng, gs_model **model, gs_image **img, const gs_params *p,
                gs_result **res, gs_checkpoint_info *ci, uint8_t **png, size_t *png_size,
                double *gflops, gs_tokenizer **tok, int *chunks)
{
    gs_engine_create(NULL, &eng);
    gs_model_load(eng, "m.safetensors", model);
    gs_checkpoint_inspect("m.safetensors", ci, NULL, 0);
    gs_checkpoint_prepare(eng, "m.safetensors", "p.safetensors");
    gs_checkpoint_write_random("sd15", "f16", 1, "r.safetensors", NULL, 0);
    gs_image_load("in.png", img, NULL, 0);
    gs_image_load_memory("x", 1, img, NULL, 0);
    gs_image_save_png(*img, "out.png", NULL, NULL, 0);
    gs_image_encode_png(*img, NULL, png, png_size, NULL, 0);
    gs_generate(eng, *model, p, NULL, NULL, res);
    gs_engine_gemm_rate(eng, gflops);
    gs_tokenizer_create(tok);
    gs_prompt_chunks(*tok, "a BREAK b", chunks, NULL, 0);
}
