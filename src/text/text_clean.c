/* text_clean - prompt normalisation as CLIP's basic_clean + whitespace_clean + lower. */
#include "text/text_clean.h"

#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include "common/alloc.h"

int text_is_space(uint32_t c)
{
    if (c == ' ' || (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x1f) || c == 0x85)
        return 1;
    return c > 0x7f &&
           (uc_is_property_white_space(c) || uc_is_general_category(c, UC_SPACE_SEPARATOR));
}

/* ---- UTF-8 decoding ---- */

static gs_status decode_utf8(const char *text, uint32_t **out, size_t *n, gs_error *err)
{
    size_t len = strlen(text);
    uint32_t *u = gs_malloc((len + 1) * sizeof *u);
    if (!u)
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    const uint8_t *s = (const uint8_t *)text, *end = s + len;
    size_t k = 0;
    while (s < end) {
        ucs4_t c;
        int m = u8_mbtoucr(&c, s, (size_t)(end - s));
        if (m < 0) { /* invalid or truncated: one replacement character per bad byte */
            c = 0xfffd;
            m = 1;
        }
        u[k++] = c;
        s += m;
    }
    *out = u;
    *n = k;
    return GS_OK;
}

/* ---- ftfy-style character fixes ---- */

static size_t fix_chars(uint32_t *u, size_t n, uint32_t *out)
{
    static const struct {
        uint32_t from;
        const char *to;
    } ligatures[] = {{0xfb00, "ff"},  {0xfb01, "fi"}, {0xfb02, "fl"}, {0xfb03, "ffi"},
                     {0xfb04, "ffl"}, {0xfb05, "st"}, {0xfb06, "st"}, {0x0132, "IJ"},
                     {0x0133, "ij"},  {0x01c7, "LJ"}, {0x01c8, "Lj"}, {0x01c9, "lj"},
                     {0x01ca, "NJ"},  {0x01cb, "Nj"}, {0x01cc, "nj"}};
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = u[i];
        if (c == 0x2018 || c == 0x2019 || c == 0x201a || c == 0x201b)
            c = '\'';
        else if (c == 0x201c || c == 0x201d || c == 0x201e || c == 0x201f)
            c = '"';
        else if (c >= 0xff01 && c <= 0xff5e) /* full-width ASCII */
            c -= 0xfee0;
        else if (c == 0x3000)
            c = ' ';
        else if (c == 0x2028 || c == 0x2029 || c == '\r')
            c = '\n';
        /* control characters ftfy removes (keeps \t \n) */
        if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f || (c >= 0x80 && c < 0xa0) ||
            c == 0xfeff || (c >= 0xfff9 && c <= 0xfffb))
            continue;
        int lig = 0;
        for (size_t j = 0; j < sizeof ligatures / sizeof ligatures[0]; j++)
            if (ligatures[j].from == c) {
                for (const char *t = ligatures[j].to; *t; t++)
                    out[k++] = (uint8_t)*t;
                lig = 1;
                break;
            }
        if (!lig)
            out[k++] = c;
    }
    return k;
}

/* ---- HTML unescape (Python's html.unescape for the entities prompts contain) ---- */

static const struct {
    const char *name;
    uint32_t c;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},        {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xa0},    {"copy", 0xa9},    {"reg", 0xae},      {"trade", 0x2122}, {"hellip", 0x2026},
    {"mdash", 0x2014}, {"ndash", 0x2013}, {"lsquo", 0x2018},  {"rsquo", 0x2019}, {"ldquo", 0x201c},
    {"rdquo", 0x201d}, {"laquo", 0xab},   {"raquo", 0xbb},    {"euro", 0x20ac},  {"pound", 0xa3},
    {"yen", 0xa5},     {"cent", 0xa2},    {"times", 0xd7},    {"divide", 0xf7},  {"deg", 0xb0},
    {"plusmn", 0xb1},  {"middot", 0xb7},  {"bull", 0x2022},   {"sect", 0xa7},    {"para", 0xb6},
    {"iexcl", 0xa1},   {"iquest", 0xbf},  {"eacute", 0xe9},   {"egrave", 0xe8},  {"aacute", 0xe1},
    {"agrave", 0xe0},  {"uuml", 0xfc},    {"ouml", 0xf6},     {"auml", 0xe4},    {"szlig", 0xdf},
    {"ccedil", 0xe7},  {"ntilde", 0xf1},  {"hearts", 0x2665}, {"star", 0x2606},
};
/* Legacy names html.unescape also accepts without ';' */
static const char *const no_semicolon[] = {"amp", "lt", "gt", "quot", "nbsp", "copy", "reg"};

static int match_name(const uint32_t *u, size_t n, const char *name)
{
    size_t len = strlen(name);
    if (len > n)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (u[i] != (uint8_t)name[i])
            return 0;
    return (int)len;
}

static uint32_t numeric_ref(long v)
{
    /* html.unescape: C1 controls are read as Windows-1252, invalid values as U+FFFD */
    static const uint16_t cp1252[32] = {
        0x20ac, 0x81,   0x201a, 0x192,  0x201e, 0x2026, 0x2020, 0x2021, 0x2c6,  0x2030, 0x160,
        0x2039, 0x152,  0x8d,   0x17d,  0x8f,   0x90,   0x2018, 0x2019, 0x201c, 0x201d, 0x2022,
        0x2013, 0x2014, 0x2dc,  0x2122, 0x161,  0x203a, 0x153,  0x9d,   0x17e,  0x178};
    if (v >= 0x80 && v <= 0x9f)
        return cp1252[v - 0x80];
    if (v == 0 || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0xfffd;
    return (uint32_t)v;
}

static size_t html_unescape(const uint32_t *u, size_t n, uint32_t *out)
{
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (u[i] != '&') {
            out[k++] = u[i++];
            continue;
        }
        size_t j = i + 1;
        if (j < n && u[j] == '#') {
            int hex = j + 1 < n && (u[j + 1] == 'x' || u[j + 1] == 'X');
            size_t d = j + 1 + (size_t)hex, e = d;
            long v = 0;
            while (e < n && e - d < 8 &&
                   ((u[e] >= '0' && u[e] <= '9') ||
                    (hex && ((u[e] | 0x20) >= 'a' && (u[e] | 0x20) <= 'f')))) {
                uint32_t ch = u[e] | 0x20;
                v = v * (hex ? 16 : 10) + (long)(ch <= '9' ? ch - '0' : ch - 'a' + 10);
                e++;
            }
            if (e > d) {
                out[k++] = numeric_ref(v);
                i = e + (e < n && u[e] == ';');
                continue;
            }
        } else {
            int done = 0;
            for (size_t t = 0; t < sizeof entities / sizeof entities[0] && !done; t++) {
                int len = match_name(u + j, n - j, entities[t].name);
                if (!len)
                    continue;
                int semi = j + len < n && u[j + len] == ';';
                int legacy = 0;
                for (size_t q = 0; q < sizeof no_semicolon / sizeof no_semicolon[0]; q++)
                    legacy |= strcmp(no_semicolon[q], entities[t].name) == 0;
                if (semi || legacy) {
                    out[k++] = entities[t].c;
                    i = j + (size_t)len + (size_t)semi;
                    done = 1;
                }
            }
            if (done)
                continue;
        }
        out[k++] = u[i++];
    }
    return k;
}

/* ---- whitespace ---- */

static size_t collapse_whitespace(const uint32_t *u, size_t n, uint32_t *out)
{
    size_t k = 0;
    int pending = 0;
    for (size_t i = 0; i < n; i++) {
        if (text_is_space(u[i])) {
            pending = 1;
            continue;
        }
        if (pending && k > 0)
            out[k++] = ' ';
        pending = 0;
        out[k++] = u[i];
    }
    return k;
}

gs_status text_clean(const char *text, uint32_t **out, size_t *n, gs_error *err)
{
    *out = NULL;
    *n = 0;
    uint32_t *a = NULL, *b = NULL, *c = NULL;
    size_t na;
    gs_status st = decode_utf8(text, &a, &na, err);
    if (st != GS_OK)
        return st;
    /* ligatures expand to at most 3 code points */
    b = gs_malloc((3 * na + 1) * sizeof *b);
    if (!b) {
        st = gs_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    size_t nb = fix_chars(a, na, b);
    size_t nn = 0;
    c = u32_normalize(UNINORM_NFC, b, nb, NULL, &nn);
    if (!c && nb > 0) {
        st = gs_fail(err, GS_ERR_NO_MEMORY, "out of memory normalising text");
        goto out;
    }
    /* twice, as CLIP's basic_clean does; unescaping never lengthens the text */
    nb = html_unescape(c, nn, b);
    nn = html_unescape(b, nb, c);
    nb = collapse_whitespace(c, nn, b);
    size_t nl = 0;
    uint32_t *low = u32_tolower(b, nb, NULL, NULL, NULL, &nl);
    if (!low && nb > 0) {
        st = gs_fail(err, GS_ERR_NO_MEMORY, "out of memory lower-casing text");
        goto out;
    }
    *out = low;
    *n = nl;
out:
    gs_free(a);
    gs_free(b);
    free(c);
    return st;
}
