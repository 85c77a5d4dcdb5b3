/*
 * json_u64 - the lexical pass before jansson and the splice after it (see
 * json_u64.h). The pass knows just enough JSON to tell strings from the rest
 * and to follow the members of the top-level object; jansson still does the
 * parsing and reports every syntax error.
 */
#include "support/json_u64.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- integer literals ---- */

int json_int_literal_parse(const char *s, size_t n, json_int_literal *out)
{
    memset(out, 0, sizeof *out);
    size_t i = n > 0 && s[0] == '-';
    if (i == n || s[i] < '0' || s[i] > '9' || (s[i] == '0' && n - i > 1))
        return -1;
    uint64_t m = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (m > (UINT64_MAX - d) / 10)
            out->overflow = 1;
        m = m * 10 + d;
    }
    out->found = 1;
    out->magnitude = out->overflow ? 0 : m;
    out->negative = s[0] == '-' && (m != 0 || out->overflow);
    return 0;
}

int json_int_literal_u64(const json_int_literal *l, uint64_t *v)
{
    if (!l->found || l->negative || l->overflow)
        return 0;
    *v = l->magnitude;
    return 1;
}

static int fits_int64(const json_int_literal *l)
{
    if (l->overflow)
        return 0;
    return l->negative ? l->magnitude <= (uint64_t)INT64_MAX + 1 : l->magnitude <= INT64_MAX;
}

/* ---- the lexical pass ---- */

typedef struct scan {
    const char *in;
    size_t len;
    char *out;       /* the rewritten text, made at the first literal that changes */
    size_t out_len;  /* bytes in out */
    size_t copied;   /* in[0..copied) is accounted for in out */
    const char *key; /* the member whose literal is kept, or NULL */
    json_int_literal *lit;
    int depth;       /* open objects and arrays */
    int top_object;  /* the text is an object: depth 1 is its members */
    int want_key;    /* at depth 1, the next string names a member */
    int after_colon; /* at depth 1, the next token is a member's value */
    int key_matched; /* the member being read is key */
} scan;

/* Past the closing quote of the string opening at in[at] (len when it never
   closes): a quote ends it unless an odd run of backslashes escapes it. */
static size_t string_end(const char *in, size_t len, size_t at)
{
    size_t i = at + 1;
    for (;;) {
        const char *q = memchr(in + i, '"', len - i);
        if (!q)
            return len;
        size_t k = (size_t)(q - in), slashes = 0;
        while (k - slashes > at + 1 && in[k - slashes - 1] == '\\')
            slashes++;
        if (slashes % 2 == 0)
            return k + 1;
        i = k + 1;
    }
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16)
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

/* Whether the string token in[a..b) decodes to key as jansson decodes it, so
   an escaped spelling ("se\u0065d") is the same member to both. key is ASCII:
   any escape that decodes past it, or to a control character, differs. */
static int string_is(const char *in, size_t a, size_t b, const char *key)
{
    size_t i = a + 1, end = b > a + 1 && in[b - 1] == '"' ? b - 1 : b, k = 0;
    while (i < end) {
        unsigned c = (unsigned char)in[i++];
        if (c == '\\' && i < end) {
            char e = in[i++];
            if (e == 'u') {
                if (end - i < 4 || hex4(in + i, &c) != 0)
                    return 0;
                i += 4;
            } else {
                c = e == '"' || e == '\\' || e == '/' ? (unsigned char)e : 1u;
            }
        }
        if (c == 0 || c >= 0x80 || key[k] != (char)c)
            return 0;
        k++;
    }
    return key[k] == '\0';
}

/* Puts text in place of in[from..to) in the rewritten copy. A literal outside
   int64 has at least 19 digits (20 characters with a minus), no fewer than
   its replacement, so the copy never outgrows the input. */
static int replace(scan *s, size_t from, size_t to, const char *text)
{
    if (!s->out && !(s->out = malloc(s->len + 1)))
        return -1;
    memcpy(s->out + s->out_len, s->in + s->copied, from - s->copied);
    s->out_len += from - s->copied;
    size_t n = strlen(text);
    memcpy(s->out + s->out_len, text, n);
    s->out_len += n;
    s->copied = to;
    return 0;
}

static void on_string(scan *s, size_t a, size_t b)
{
    if (s->depth == 1 && s->top_object && s->want_key) {
        s->key_matched = s->key && string_is(s->in, a, b, s->key);
        if (s->key_matched)
            memset(s->lit, 0, sizeof *s->lit); /* a repeated member: the last one counts */
        s->want_key = 0;
    }
}

static int on_number(scan *s, size_t a, size_t b)
{
    json_int_literal l;
    if (json_int_literal_parse(s->in + a, b - a, &l) != 0)
        return 0; /* a real, or malformed: jansson's to judge */
    if (s->depth == 1 && s->after_colon && s->key_matched)
        *s->lit = l;
    if (fits_int64(&l))
        return 0;
    return replace(s, a, b, l.negative ? "-9223372036854775808" : "9223372036854775807");
}

static void on_punctuation(scan *s, char c)
{
    if (c == '{' || c == '[') {
        if (++s->depth == 1)
            s->top_object = c == '{';
        s->want_key = s->depth == 1 && c == '{';
    } else if (c == '}' || c == ']') {
        s->depth--;
    } else if (c == ',' && s->depth == 1) {
        s->want_key = s->top_object;
    }
}

static int scan_text(scan *s)
{
    size_t i = 0;
    while (i < s->len) {
        char c = s->in[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
            continue;
        }
        int colon = c == ':' && s->depth == 1;
        if (c == '"') {
            size_t end = string_end(s->in, s->len, i);
            on_string(s, i, end);
            i = end;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t end = i;
            while (end < s->len && s->in[end] && strchr("0123456789+-.eE", s->in[end]))
                end++;
            if (on_number(s, i, end) != 0)
                return -1;
            i = end;
        } else {
            on_punctuation(s, c);
            i++;
        }
        s->after_colon = colon; /* only the token right after ':' is the value */
    }
    return 0;
}

json_t *json_u64_loadb(const char *text, size_t len, size_t flags, const char *key,
                       json_int_literal *lit, json_error_t *err)
{
    json_int_literal unused;
    scan s = {.in = text, .len = len, .key = lit ? key : NULL, .lit = lit ? lit : &unused};
    memset(s.lit, 0, sizeof *s.lit);
    json_error_t local;
    if (!err)
        err = &local;
    json_t *j = NULL;
    if (scan_text(&s) != 0)
        snprintf(err->text, sizeof err->text, "out of memory");
    else if (!s.out)
        j = json_loadb(text, len, flags, err);
    else if (replace(&s, len, len, "") == 0) /* the tail after the last change */
        j = json_loadb(s.out, s.out_len, flags, err);
    free(s.out);
    if (!j)
        memset(s.lit, 0, sizeof *s.lit); /* no member of a text that is not JSON */
    return j;
}

/* ---- writing ---- */

char *json_u64_dumps(const json_t *o, size_t flags, const char *key, uint64_t v)
{
    if (!json_is_object(o))
        return NULL;
    char *rest = json_dumps(o, flags);
    if (!rest)
        return NULL;
    const char *after = rest + 1, *p = after; /* past jansson's '{' */
    while (*p == ' ' || *p == '\n' || *p == '\t')
        p++;
    size_t size = strlen(key) + strlen(after) + 32;
    char *text = malloc(size);
    if (text)
        snprintf(text, size, "{\"%s\":%" PRIu64 "%s%s", key, v, *p == '}' ? "" : ",", after);
    free(rest);
    return text;
}
