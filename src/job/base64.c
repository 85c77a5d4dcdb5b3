/* base64 - encoding for previews, decoding of client images (both alphabets). */
#include "job/base64.h"

#include <stdlib.h>
#include <string.h>

static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *base64_encode(const unsigned char *data, size_t n)
{
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t k = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
        out[k++] = abc[v >> 18];
        out[k++] = abc[(v >> 12) & 63];
        out[k++] = abc[(v >> 6) & 63];
        out[k++] = abc[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)data[i] << 16 | (i + 1 < n ? (unsigned)data[i + 1] << 8 : 0);
        out[k++] = abc[v >> 18];
        out[k++] = abc[(v >> 12) & 63];
        out[k++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[k++] = '=';
    }
    out[k] = '\0';
    return out;
}

unsigned char *base64_decode(const char *s, size_t max, size_t *out_len)
{
    const char *comma = strncmp(s, "data:", 5) == 0 ? strchr(s, ',') : NULL;
    if (comma)
        s = comma + 1;
    size_t n = strlen(s);
    if (n / 4 * 3 > max + 3)
        return NULL;
    /* a table, not a chain of range tests: client images run to tens of MB */
    signed char value[256];
    memset(value, -1, sizeof value);
    for (int i = 0; i < 64; i++)
        value[(unsigned char)abc[i]] = (signed char)i;
    value['-'] = 62; /* the URL-safe alphabet */
    value['_'] = 63;
    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t k = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = value[(unsigned char)s[i]];
        if (v < 0) {
            if (s[i] == '=' || s[i] == '\n' || s[i] == '\r')
                continue;
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    *out_len = k;
    return out;
}
