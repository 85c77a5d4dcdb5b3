/*
 * tokenizer - OpenAI CLIP's BPE tokenizer (the one every SD 1.x/2.x/XL text encoder uses).
 *
 * clip_tokenize gives exactly the ids of CLIP's SimpleTokenizer.encode: the text
 * is cleaned (ftfy fixes, HTML references, whitespace, lower case), split by
 * CLIP's pre-tokenizer pattern, byte-encoded and merged by BPE. The vocabulary
 * is compiled into the library; creating a tokenizer inflates it and builds the
 * merge table (a few ms). A tokenizer is immutable after creation, so one may be
 * shared by any number of threads.
 */
#ifndef GS_TEXT_TOKENIZER_H
#define GS_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define CLIP_BOS 49406
#define CLIP_EOS 49407
#define CLIP_VOCAB_SIZE 49408

/* Longest text clip_tokenize accepts, in bytes (a sanity bound, far above any prompt). */
#define CLIP_MAX_TEXT_BYTES (16u << 20)

typedef struct clip_tokenizer clip_tokenizer;

/* Creates a tokenizer; free it with clip_tokenizer_free. */
gs_status clip_tokenizer_create(clip_tokenizer **out, gi_error *err);
void clip_tokenizer_free(clip_tokenizer *tok);

/* Raw BPE ids of a NUL-terminated UTF-8 text, no BOS/EOS; *ids taken by the
 * caller, free with gi_free (NULL when *n is 0). Invalid UTF-8 is read as U+FFFD.
 * The literal texts "<|startoftext|>" and "<|endoftext|>" give CLIP_BOS/CLIP_EOS,
 * as in CLIP. */
gs_status clip_tokenize(const clip_tokenizer *tok, const char *text, int32_t **ids, size_t *n,
                        gi_error *err);

#endif
