/*
 * conditioning - a prompt in A1111 syntax to the UNet's text conditioning.
 *
 * The prompt is parsed into 77-token chunks with per-token weights; each chunk
 * is encoded on its own (with clip skip), weighted with the mean-preserving
 * rescale, and the chunks are concatenated along tokens.
 */
#include <string.h>

#include "common/alloc.h"
#include "pipeline/engine.h"
#include "text/prompt.h"

#define CHUNK_TOKENS 77

gs_status encode_prompt(gs_engine *eng, gs_model *m, const char *prompt, int clip_skip, float **out,
                        int *tokens, gi_error *err)
{
    *out = NULL;
    *tokens = 0;
    prompt_chunks pc = {0};
    float *z = NULL; /* [chunks * 77, width] */
    gs_status st = prompt_to_chunks(eng->tok, prompt ? prompt : "", &pc, err);
    if (st != GS_OK)
        goto out;
    int width = clip_text_width(m->text);
    if (clip_skip < 1 || clip_skip > clip_text_layers(m->text)) {
        st = gi_fail(err, GS_ERR_INVALID_ARGUMENT, "clip skip %d is outside 1..%d", clip_skip,
                     clip_text_layers(m->text));
        goto out;
    }
    size_t n = (size_t)pc.n_chunks * CHUNK_TOKENS * (size_t)width;
    z = gi_aligned_alloc(n * sizeof *z);
    if (!z) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory encoding the prompt");
        goto out;
    }
    st = clip_text_encode(m->text, eng->cx, pc.ids, pc.n_chunks, clip_skip, z, err);
    if (st != GS_OK)
        goto out;
    for (int c = 0; c < pc.n_chunks; c++)
        prompt_apply_weights(z + (size_t)c * CHUNK_TOKENS * width, pc.weights + c * CHUNK_TOKENS,
                             CHUNK_TOKENS, width);
    *out = z;
    *tokens = pc.n_chunks * CHUNK_TOKENS;
    z = NULL;
out:
    gi_aligned_free(z);
    prompt_chunks_free(&pc);
    return st;
}
