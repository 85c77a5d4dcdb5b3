/*
 * png_text - the text chunks of a PNG file (tEXt, and uncompressed iTXt) as
 * a JSON object of keyword -> text: where A1111 and gesso keep an image's
 * generation settings ("parameters"). Reads the bytes as sent, so a
 * truncated or hostile file yields what was readable before the damage.
 */
#ifndef GS_PNG_TEXT_H
#define GS_PNG_TEXT_H

#include <jansson.h>
#include <stddef.h>

/* 1 when data starts with the PNG signature. */
int png_is_png(const unsigned char *data, size_t n);

/* A new object of the file's text chunks (empty when it has none or is not
   a PNG; the first of a repeated keyword wins); NULL when out of memory.
   tEXt's Latin-1 is converted to UTF-8; text that is not valid UTF-8 after
   that is left out. */
json_t *png_text_chunks(const unsigned char *data, size_t n);

#endif
