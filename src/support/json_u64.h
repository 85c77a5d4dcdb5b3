/*
 * json_u64 - integers up to 2^64-1 in the JSON the service reads and writes.
 *
 * jansson holds integers as int64 and refuses a literal past it, but seeds run
 * to 2^64-1 (A1111 and ComfyUI take them). Reading, a lexical pass copies the
 * text with every integer literal jansson cannot hold saturated to int64's
 * nearer bound, so the parse succeeds and a field bounded below int64 reads
 * out of range; on the way it keeps the exact literal of one top-level member.
 * Writing, that member is spliced as digits into jansson's text of the rest of
 * the object. A value never passes through a double, so none is rounded or
 * wrapped.
 */
#ifndef GS_SUPPORT_JSON_U64_H
#define GS_SUPPORT_JSON_U64_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* An integer as written: sign and magnitude, whatever its size. */
typedef struct json_int_literal {
    int found;          /* the member is present and its value is an integer literal */
    int negative;       /* below zero ("-0" is zero) */
    int overflow;       /* the magnitude is past 2^64-1 (magnitude is then 0) */
    uint64_t magnitude; /* the absolute value */
} json_int_literal;

/* Reads s[0..n) as a JSON integer literal, -?(0|[1-9][0-9]*), with found set.
   0, or -1 when s is not one. */
int json_int_literal_parse(const char *s, size_t n, json_int_literal *out);

/* The value of l when it is an integer in 0..2^64-1 (1), else 0. */
int json_int_literal_u64(const json_int_literal *l, uint64_t *v);

/* json_loadb, except that an integer literal outside int64 reads as INT64_MAX
   or INT64_MIN instead of failing the parse. When key is not NULL and the text
   is an object, *lit gets the literal of its top-level member key (found 0
   when that member is absent or not an integer literal, or the parse fails;
   the last one when the member is repeated). err may be NULL. NULL when the
   text is not JSON or memory ran out. */
json_t *json_u64_loadb(const char *text, size_t len, size_t flags, const char *key,
                       json_int_literal *lit, json_error_t *err);

/* json_dumps(o, flags) with a member key: v put first, as exact digits. o must
   be an object without key; key must need no escaping. The text is malloc'd;
   NULL when out of memory. */
char *json_u64_dumps(const json_t *o, size_t flags, const char *key, uint64_t v);

#endif
