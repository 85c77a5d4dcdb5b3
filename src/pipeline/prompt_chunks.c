/*
 * prompt_chunks - the public face of the prompt rules (gs_tokenizer,
 * gs_prompt_chunks): the CLIP tokenizer and A1111's chunking that gs_generate
 * uses, with nothing of an engine, so a service can count a prompt's chunks in
 * the process that takes requests.
 */
#include <stdio.h>

#include "common/alloc.h"
#include "gesso.h"
#include "text/prompt.h"

struct gs_tokenizer {
    clip_tokenizer *clip;
};

gs_status gs_tokenizer_create(gs_tokenizer **out)
{
    gi_error err = {0};
    *out = NULL;
    gs_tokenizer *tok = gi_calloc(1, sizeof *tok);
    if (!tok)
        return GS_ERR_NO_MEMORY;
    gs_status st = clip_tokenizer_create(&tok->clip, &err);
    if (st != GS_OK) {
        gi_free(tok);
        return st;
    }
    *out = tok;
    return GS_OK;
}

void gs_tokenizer_free(gs_tokenizer *tok)
{
    if (!tok)
        return;
    clip_tokenizer_free(tok->clip);
    gi_free(tok);
}

gs_status gs_prompt_chunks(const gs_tokenizer *tok, const char *prompt, int *chunks, char *errmsg,
                           size_t errmsg_size)
{
    gi_error err = {0};
    *chunks = 0;
    gs_status st = tok ? prompt_count_chunks(tok->clip, prompt, chunks, &err)
                       : gi_fail(&err, GS_ERR_INVALID_ARGUMENT, "no tokenizer");
    if (errmsg && errmsg_size)
        snprintf(errmsg, errmsg_size, "%s", st == GS_OK ? "" : err.msg);
    return st;
}
