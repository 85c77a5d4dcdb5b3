/*
 * tokenizer - OpenAI CLIP's byte-level BPE tokenizer, as SD1.x uses it.
 *
 * Text is cleaned as CLIP does (ftfy-style fixes, HTML unescape, whitespace
 * collapsed, lower-cased), split by CLIP's pre-tokenizer pattern, each piece
 * byte-encoded and merged by BPE rank. The vocabulary is compiled into the
 * library; tables are built once per tokenizer.
 */
#ifndef GS_TOKENIZER_H
#define GS_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define CLIP_BOS 49406
#define CLIP_EOS 49407
#define CLIP_COMMA 267 /* ",</w>" */

typedef struct clip_tokenizer clip_tokenizer;

gs_status clip_tokenizer_create(clip_tokenizer **out, gs_error *err);
void clip_tokenizer_free(clip_tokenizer *tok);
/* Raw BPE ids of text, no BOS/EOS. *ids is taken by the caller (gs_free). Invalid
   UTF-8 sequences are read as U+FFFD. */
gs_status clip_tokenize(const clip_tokenizer *tok, const char *text, int32_t **ids, size_t *n,
                        gs_error *err);

#endif
