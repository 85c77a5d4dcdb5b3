/* lora_tags - <kind:args> tags cut out of a prompt, LoRA ones parsed (see lora_tags.h). */
#include "text/lora_tags.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#define MAX_ITEMS 16

/* Python's \w on str: letters, digits, '_' of any script; bytes of multi-byte
   UTF-8 characters count as letters (the rare non-letter symbol differs). */
static int word_char(unsigned char c)
{
    return c == '_' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c >= 0x80;
}

/* Length of a tag at s ('<' ...), 0 when none matches there; *kind_len, *args at its parts. */
static size_t match_tag(const char *s, size_t *kind_len)
{
    const char *p = s + 1;
    while (word_char((unsigned char)*p))
        p++;
    if (p == s + 1 || *p != ':')
        return 0;
    *kind_len = (size_t)(p - s - 1);
    const char *a = ++p;
    while (*p && *p != '>')
        p++;
    if (p == a || *p != '>')
        return 0;
    return (size_t)(p - s) + 1;
}

static int trim_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Python's float() for the decimal forms a multiplier takes; finite only. */
static int parse_float(const char *s, size_t n, float *out)
{
    char buf[64];
    while (n && trim_space((unsigned char)*s))
        s++, n--;
    while (n && trim_space((unsigned char)s[n - 1]))
        n--;
    if (n == 0 || n >= sizeof buf || memchr(s, 'x', n) || memchr(s, 'X', n))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *end;
    double v = strtod(buf, &end);
    if (*end || !isfinite(v) || !isfinite((float)v))
        return -1;
    *out = (float)v;
    return 0;
}

typedef struct span {
    const char *s;
    size_t n;
} span;

static gs_status parse_args(const char *args, size_t len, lora_tag *t, gi_error *err)
{
    span pos[MAX_ITEMS];
    int np = 0;
    const char *te_s = NULL, *unet_s = NULL;
    size_t te_n = 0, unet_n = 0;
    for (const char *p = args, *end = args + len; p <= end;) {
        const char *q = memchr(p, ':', (size_t)(end - p));
        if (!q)
            q = end;
        const char *eq = memchr(p, '=', (size_t)(q - p));
        /* item.split('=', 2) with exactly two parts: a named item */
        if (eq && !memchr(eq + 1, '=', (size_t)(q - eq - 1))) {
            size_t kn = (size_t)(eq - p);
            if (kn == 2 && memcmp(p, "te", 2) == 0)
                te_s = eq + 1, te_n = (size_t)(q - eq - 1);
            else if (kn == 4 && memcmp(p, "unet", 4) == 0)
                unet_s = eq + 1, unet_n = (size_t)(q - eq - 1);
        } else if (np < MAX_ITEMS) {
            pos[np++] = (span){p, (size_t)(q - p)};
        }
        p = q + 1;
    }
    if (np == 0 || pos[0].n == 0 || pos[0].n >= sizeof t->name)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "prompt tag <lora:%.*s>: no LoRA name",
                       (int)len, args);
    memcpy(t->name, pos[0].s, pos[0].n);
    t->name[pos[0].n] = '\0';
    t->te = 1.0f;
    int bad = (np > 1 && parse_float(pos[1].s, pos[1].n, &t->te) != 0) ||
              (te_s && parse_float(te_s, te_n, &t->te) != 0);
    t->unet = t->te;
    bad |= (np > 2 && parse_float(pos[2].s, pos[2].n, &t->unet) != 0) ||
           (unet_s && parse_float(unet_s, unet_n, &t->unet) != 0);
    if (bad)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "prompt tag <lora:%.*s>: a multiplier is not a finite number", (int)len,
                       args);
    return GS_OK;
}

gs_status lora_tags_parse(const char *prompt, char **stripped, lora_tag **tags, int *n,
                          gi_error *err)
{
    *stripped = NULL;
    *tags = NULL;
    *n = 0;
    size_t len = strlen(prompt), cap = 0;
    char *out = gi_malloc(len + 1);
    if (!out)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    size_t o = 0;
    gs_status st = GS_OK;
    for (const char *s = prompt; *s && st == GS_OK;) {
        size_t kind_len, tl = *s == '<' ? match_tag(s, &kind_len) : 0;
        if (!tl) {
            out[o++] = *s++;
            continue;
        }
        int lora = (kind_len == 4 && memcmp(s + 1, "lora", 4) == 0) ||
                   (kind_len == 4 && memcmp(s + 1, "lyco", 4) == 0);
        if (lora) {
            if ((size_t)*n == cap) {
                cap = cap ? 2 * cap : 4;
                lora_tag *t = gi_realloc(*tags, cap * sizeof *t);
                if (!t) {
                    st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
                    break;
                }
                *tags = t;
            }
            const char *args = s + 1 + kind_len + 1;
            st = parse_args(args, tl - kind_len - 3, &(*tags)[*n], err);
            if (st == GS_OK)
                (*n)++;
        }
        s += tl;
    }
    out[o] = '\0';
    if (st != GS_OK) {
        gi_free(out);
        gi_free(*tags);
        *tags = NULL;
        *n = 0;
        return st;
    }
    *stripped = out;
    return GS_OK;
}
