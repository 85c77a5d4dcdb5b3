/* png_text - a walk over a PNG's chunks, keeping the text ones. */
#include "api/png_text.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

int png_is_png(const unsigned char *data, size_t n)
{
    return n >= 8 && memcmp(data, signature, 8) == 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Latin-1 bytes as UTF-8 text (malloc'd; NULL when out of memory). */
static char *latin1_to_utf8(const unsigned char *s, size_t n)
{
    char *out = malloc(2 * n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            *o++ = (char)s[i];
        } else {
            *o++ = (char)(0xc0 | s[i] >> 6);
            *o++ = (char)(0x80 | (s[i] & 0x3f));
        }
    }
    *o = '\0';
    return out;
}

/* Adds keyword -> text unless the keyword is there already; text is UTF-8
   bytes, dropped when not valid (jansson checks). */
static void keep(json_t *o, const unsigned char *key, size_t key_len, const char *text,
                 size_t text_len)
{
    char name[80];
    if (key_len == 0 || key_len >= sizeof name)
        return;
    memcpy(name, key, key_len);
    name[key_len] = '\0';
    if (json_object_get(o, name))
        return;
    json_t *v = json_stringn(text, text_len);
    if (v)
        json_object_set_new(o, name, v);
}

static void read_text(json_t *o, const unsigned char *d, size_t n)
{
    const unsigned char *nul = memchr(d, 0, n);
    if (!nul)
        return;
    size_t key_len = (size_t)(nul - d);
    char *text = latin1_to_utf8(nul + 1, n - key_len - 1);
    if (text)
        keep(o, d, key_len, text, strlen(text));
    free(text);
}

/* keyword NUL compressed(1) method(1) language NUL translated NUL text */
static void read_itext(json_t *o, const unsigned char *d, size_t n)
{
    const unsigned char *nul = memchr(d, 0, n);
    if (!nul || (size_t)(nul - d) + 3 > n || nul[1] != 0) /* compressed: not read */
        return;
    size_t key_len = (size_t)(nul - d);
    const unsigned char *p = nul + 3, *end = d + n;
    for (int skip = 0; skip < 2; skip++) { /* the language tag and the translated keyword */
        const unsigned char *z = memchr(p, 0, (size_t)(end - p));
        if (!z)
            return;
        p = z + 1;
    }
    keep(o, d, key_len, (const char *)p, (size_t)(end - p));
}

json_t *png_text_chunks(const unsigned char *data, size_t n)
{
    json_t *o = json_object();
    if (!o || !png_is_png(data, n))
        return o;
    size_t at = 8;
    while (at + 12 <= n) {
        uint32_t len = be32(data + at);
        const unsigned char *type = data + at + 4, *body = data + at + 8;
        if (len > n - at - 12)
            break; /* truncated: keep what came before */
        if (memcmp(type, "tEXt", 4) == 0)
            read_text(o, body, len);
        else if (memcmp(type, "iTXt", 4) == 0)
            read_itext(o, body, len);
        else if (memcmp(type, "IEND", 4) == 0)
            break;
        at += 12 + (size_t)len;
    }
    return o;
}
