/*
 * text_clean - CLIP's text normalisation before tokenisation: the ftfy fixes
 * prompts actually need (curly quotes, ligatures, full-width forms, control
 * characters, NFC), HTML entities unescaped twice, whitespace stripped and
 * collapsed, then Unicode lower-casing.
 */
#ifndef GS_TEXT_CLEAN_H
#define GS_TEXT_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* UTF-8 text (invalid sequences read as U+FFFD) -> cleaned code points.
 *out is taken by the caller (gs_free). */
gs_status text_clean(const char *text, uint32_t **out, size_t *n, gs_error *err);

/* Python's str.isspace() for a code point. */
int text_is_space(uint32_t c);

#endif
