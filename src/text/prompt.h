/*
 * prompt - AUTOMATIC1111's prompt semantics: emphasis weights, 75-token chunks, BREAK.
 *
 * prompt_to_chunks turns a prompt into the token chunks A1111 feeds the text
 * encoder: the emphasis syntax is parsed (prompt_parse.h), each run is
 * tokenized on its own, and tokens fill chunks of 75; when a chunk is full and a
 * comma came within its last 20 tokens, what follows the comma moves to the next
 * chunk. A "BREAK" ends the chunk. Every chunk is BOS + 75 tokens (EOS padding)
 * + EOS with weight 1 on BOS, EOS and padding, so a prompt of at most 75 tokens
 * is exactly one plain 77-token chunk. Long prompts give more chunks, never a cut.
 * prompt_apply_weights applies one chunk's weights to its encoding.
 */
#ifndef GS_TEXT_PROMPT_H
#define GS_TEXT_PROMPT_H

#include <stdint.h>

#include "common/error.h"
#include "text/tokenizer.h"

#define PROMPT_CHUNK_TOKENS 75    /* text tokens per chunk */
#define PROMPT_CHUNK_LEN 77       /* with BOS and EOS */
#define PROMPT_COMMA_BACKTRACK 20 /* A1111's comma_padding_backtrack default */
#define CLIP_COMMA 267            /* ",</w>" */

typedef struct prompt_chunks {
    int n_chunks;
    int32_t *ids;   /* [n_chunks * 77] */
    float *weights; /* [n_chunks * 77] */
} prompt_chunks;

/* Fills *out (free with prompt_chunks_free; left empty on failure). Fails with
 * GS_ERR_INVALID_ARGUMENT on a malformed weight such as "(x:1.2.3)". */
gs_status prompt_to_chunks(const clip_tokenizer *tok, const char *prompt, prompt_chunks *out,
                           gi_error *err);
void prompt_chunks_free(prompt_chunks *pc);

/* How many chunks prompt_to_chunks makes of prompt, without storing them: the
 * same parse, tokens and chunking, so the two never disagree. *n_chunks is 0
 * on failure, which is prompt_to_chunks's. */
gs_status prompt_count_chunks(const clip_tokenizer *tok, const char *prompt, int *n_chunks,
                              gi_error *err);

/* A1111's weighting of one encoded chunk: z[t][c] *= w[t], then z is rescaled so that
   its overall mean equals the mean before weighting ("Original"). Where the weighted mean
   is 0 or rounding noise the factor is 0/0 and z stays as weighted ("No norm"). z: [77, width]. */
void prompt_apply_weights(float *z, const float *weights, int tokens, int width);

#endif
