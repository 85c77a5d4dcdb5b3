/*
 * fuzz_prompt - a prompt as a stranger types it (any bytes, UTF-8 or not):
 * A1111's emphasis parser, the <lora:...> tags, the CLIP tokenizer (text
 * cleaning, HTML references, BPE) and the 75-token chunking.
 */
#include <stdint.h>
#include <stdlib.h>

#include "common/alloc.h"
#include "fuzzutil.h"
#include "text/lora_tags.h"
#include "text/prompt.h"
#include "text/prompt_parse.h"
#include "text/tokenizer.h"

static clip_tokenizer *tok;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    gi_error err = {0};
    if (clip_tokenizer_create(&tok, &err) != GS_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16) /* prompts are capped far below this by the job limits */
        return 0;
    char *text = fuzz_cstr(data, size);
    gi_error err = {0};
    prompt_runs runs = {0};
    if (prompt_parse(text, &runs, &err) == GS_OK) {
        for (size_t i = 0; i < runs.n; i++)
            (void)prompt_run_is_break(&runs, i);
        prompt_runs_free(&runs);
    }
    char *stripped = NULL;
    lora_tag *tags = NULL;
    int n = 0;
    if (lora_tags_parse(text, &stripped, &tags, &n, &err) == GS_OK) {
        gi_free(stripped);
        gi_free(tags);
    }
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if (clip_tokenize(tok, text, &ids, &n_ids, &err) == GS_OK)
        gi_free(ids);
    prompt_chunks pc = {0};
    int n_chunks = 0;
    gs_status a = prompt_to_chunks(tok, text, &pc, &err);
    gs_status b = prompt_count_chunks(tok, text, &n_chunks, &err);
    if (a != b || (a == GS_OK && pc.n_chunks != n_chunks))
        abort(); /* the two must never disagree (prompt.h) */
    if (a == GS_OK)
        prompt_chunks_free(&pc);
    free(text);
    return 0;
}
