/*
 * html_unescape - HTML character references, as CLIP's text cleaning resolves them.
 *
 * CLIP cleans text with ftfy.fix_text (whose unescape step only takes complete
 * "&name;" / "&#...;" references, and only when the text has no '<') and then
 * Python's html.unescape twice (which also takes the legacy names without ';',
 * longest prefix first). Both rules are here, over one entity table: the HTML 4
 * set (Latin-1, symbols, Greek, punctuation) plus &apos;, with the values that
 * Python's HTML5 table gives them. The ~2000 other HTML5 names stay literal.
 */
#ifndef GS_TEXT_HTML_UNESCAPE_H
#define GS_TEXT_HTML_UNESCAPE_H

#include <stddef.h>
#include <stdint.h>

#include "text/unicode.h"

typedef enum html_mode {
    HTML_PYTHON, /* html.unescape */
    HTML_FTFY    /* ftfy.fixes.unescape_html */
} html_mode;

/* Appends the unescaped form of in[0..n) to out. */
void html_unescape(const uint32_t *in, size_t n, html_mode mode, u32vec *out);

/* Windows-1252's reading of a C1 byte 0x80..0x9F ("sloppy": the five undefined
 * bytes keep their Latin-1 value). */
uint32_t cp1252_c1(uint32_t c);

#endif
