/*
 * prompt_parse - AUTOMATIC1111's emphasis syntax: text -> runs of (text, weight).
 *
 * The rules of A1111's parse_prompt_attention, character for character:
 * "(x)" x1.1, "[x]" /1.1, "(x:w)" xw, nesting multiplies, brackets still open at
 * the end close there, "\( \) \[ \] \\" are literals (a lone backslash
 * vanishes), a ')' or ']' with nothing open is text, runs of equal weight merge,
 * and a "BREAK" word of its own inside plain text becomes a marker run
 * ("BREAK", -1). The marker only counts as one while its weight is still exactly
 * -1, so "(a BREAK b)" gives the word "BREAK" weighted -1.1 - as in A1111.
 */
#ifndef GS_TEXT_PROMPT_PARSE_H
#define GS_TEXT_PROMPT_PARSE_H

#include <stddef.h>

#include "common/error.h"
#include "text/unicode.h"

typedef struct prompt_run {
    size_t off, len; /* code points text.v[off .. off+len) */
    double weight;
} prompt_run;

typedef struct prompt_runs {
    u32vec text; /* every run's text, in order and contiguous */
    prompt_run *runs;
    size_t n, cap;
} prompt_runs;

/* Parses a NUL-terminated UTF-8 prompt (invalid bytes read as U+FFFD). Never
 * returns zero runs: an empty prompt is one empty run of weight 1. Fails with
 * GS_ERR_INVALID_ARGUMENT on a weight that is not a number ("(x:1.2.3)"), where
 * A1111 raises an error too, and on brackets nested so deep that applying
 * their weights would take over a million run weightings (thousands of
 * levels), where A1111 would spend time quadratic in the prompt's length. */
gs_status prompt_parse(const char *prompt, prompt_runs *out, gi_error *err);
void prompt_runs_free(prompt_runs *r);

/* Whether run i is a BREAK marker. */
int prompt_run_is_break(const prompt_runs *r, size_t i);

#endif
