/*
 * unicode - the few code-point helpers the text layer shares.
 *
 * Text is cleaned as arrays of code points (uint32_t), not UTF-8, because every
 * CLIP and A1111 rule is stated per character. Decoding never fails: each
 * maximal invalid UTF-8 subpart becomes U+FFFD, as Python's "replace" does, so
 * hostile bytes from the network cannot crash or desynchronise the tokenizer.
 * u32vec is a growable code-point buffer whose push latches an out-of-memory
 * flag, so a pass checks for failure once at its end instead of per character.
 */
#ifndef GS_TEXT_UNICODE_H
#define GS_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

#define UNI_REPLACEMENT 0xFFFDu

typedef struct u32vec {
    uint32_t *v; /* [n] code points, capacity cap */
    size_t n, cap;
    int oom; /* set once a push could not grow the buffer */
} u32vec;

/* Reserves room for at least `cap` code points; returns 0 or -1 (and sets oom). */
int u32vec_reserve(u32vec *b, size_t cap);
void u32vec_push(u32vec *b, uint32_t c);
void u32vec_push_n(u32vec *b, const uint32_t *c, size_t n);
void u32vec_free(u32vec *b);

/* Decodes n bytes of UTF-8 into out (which it resets); invalid input becomes U+FFFD. */
void utf8_decode(const uint8_t *s, size_t n, u32vec *out);
/* Encodes one code point (assumed <= 0x10FFFF) into buf[4]; returns its length. */
int utf8_encode(uint32_t c, uint8_t *buf);

/* Python's str.isspace(): what `\s` matches in the `re` module for str patterns. */
int uni_is_space(uint32_t c);
/* Python's `\w` for str patterns: letters, numbers and '_'. */
int uni_is_word(uint32_t c);

#endif
