/*
 * prompt - AUTOMATIC1111's prompt semantics on top of the tokenizer.
 *
 * Emphasis: (x) x1.1, [x] /1.1, (x:w) xw, nesting multiplies, unbalanced
 * brackets close at the end, \( \) \[ \] \\ are literals, runs of equal weight
 * merge, BREAK (upper case, a word of its own) ends the chunk. Each parsed
 * segment is tokenized on its own; tokens fill chunks of 75, and when a chunk
 * fills up with a comma among its last 20 tokens, the text after the comma
 * moves to the next chunk. Each chunk is BOS + 75 tokens (EOS-padded) + EOS.
 */
#ifndef GS_PROMPT_H
#define GS_PROMPT_H

#include <stdint.h>

#include "text/tokenizer.h"

#define PROMPT_CHUNK_TOKENS 75
#define PROMPT_COMMA_BACKTRACK 20

typedef struct prompt_chunks {
    int n_chunks;
    int32_t *ids;   /* [n_chunks * 77] */
    float *weights; /* [n_chunks * 77] */
} prompt_chunks;

/* A parsed segment: text and weight (-1 marks a BREAK, as in A1111). */
typedef struct prompt_segment {
    char *text;
    double weight;
} prompt_segment;

/* The emphasis parse alone (exposed for tests). *segs taken; free with prompt_segments_free. */
gs_status prompt_parse(const char *prompt, prompt_segment **segs, int *n, gs_error *err);
void prompt_segments_free(prompt_segment *segs, int n);

gs_status prompt_to_chunks(const clip_tokenizer *tok, const char *prompt, prompt_chunks *out,
                           gs_error *err);
void prompt_chunks_free(prompt_chunks *pc);

/* A1111's weighting of one encoded chunk: z[t][c] *= w[t], then z is rescaled so
   that its overall mean equals the mean before weighting. z: [tokens, width]. */
void prompt_apply_weights(float *z, const float *weights, int tokens, int width);

#endif
