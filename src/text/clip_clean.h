/*
 * clip_clean - CLIP's text normalisation before BPE.
 *
 * OpenAI CLIP tokenizes whitespace_clean(basic_clean(text)).lower(), where
 * basic_clean is ftfy.fix_text, html.unescape twice and strip. This module
 * reproduces that chain on code points (see clip_clean.c for which of ftfy's
 * fixes are implemented and which are not).
 */
#ifndef GS_TEXT_CLIP_CLEAN_H
#define GS_TEXT_CLIP_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "text/unicode.h"

/* Cleans n bytes of UTF-8 (invalid sequences read as U+FFFD) into *out, which
 * the caller frees with u32vec_free; on failure *out is left empty. */
gs_status clip_clean_text(const char *utf8, size_t n, u32vec *out, gi_error *err);

#endif
