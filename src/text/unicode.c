/* unicode - UTF-8 decoding with replacement, code-point buffers, Python's \s and \w. */
#include "text/unicode.h"

#include <string.h>
#include <unictype.h>

#include "common/alloc.h"

int u32vec_reserve(u32vec *b, size_t cap)
{
    if (b->oom)
        return -1;
    if (cap <= b->cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < cap) {
        if (ncap > ((size_t)-1 / sizeof(uint32_t)) / 2) {
            b->oom = 1;
            return -1;
        }
        ncap *= 2;
    }
    uint32_t *nv = gi_realloc(b->v, ncap * sizeof(uint32_t));
    if (!nv) {
        b->oom = 1;
        return -1;
    }
    b->v = nv;
    b->cap = ncap;
    return 0;
}

void u32vec_push(u32vec *b, uint32_t c)
{
    if (b->n == b->cap && u32vec_reserve(b, b->n + 1) != 0)
        return;
    b->v[b->n++] = c;
}

void u32vec_push_n(u32vec *b, const uint32_t *c, size_t n)
{
    if (n == 0 || u32vec_reserve(b, b->n + n) != 0)
        return;
    memcpy(b->v + b->n, c, n * sizeof(uint32_t));
    b->n += n;
}

void u32vec_free(u32vec *b)
{
    gi_free(b->v);
    memset(b, 0, sizeof *b);
}

/* Length of the well-formed sequence starting at s[0] (Unicode table 3-7), or 0
 * when s[0] is not a lead byte; *bad gets the length of the maximal invalid
 * subpart to replace by one U+FFFD when the sequence is cut short. */
static size_t utf8_seq(const uint8_t *s, size_t n, uint32_t *cp, size_t *bad)
{
    uint8_t b0 = s[0];
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    uint32_t c;
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
        c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        c = b0 & 0x0F;
        if (b0 == 0xE0)
            lo = 0xA0; /* overlong */
        if (b0 == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        c = b0 & 0x07;
        if (b0 == 0xF0)
            lo = 0x90; /* overlong */
        if (b0 == 0xF4)
            hi = 0x8F; /* above U+10FFFF */
    } else {
        *bad = 1;
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        uint8_t lim_lo = i == 1 ? lo : 0x80, lim_hi = i == 1 ? hi : 0xBF;
        if (i >= n || s[i] < lim_lo || s[i] > lim_hi) {
            *bad = i;
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    *cp = c;
    return len;
}

void utf8_decode(const uint8_t *s, size_t n, u32vec *out)
{
    out->n = 0;
    if (u32vec_reserve(out, n + 1) != 0)
        return;
    size_t i = 0;
    while (i < n) {
        uint32_t c = 0;
        size_t bad = 0;
        size_t len = utf8_seq(s + i, n - i, &c, &bad);
        if (len == 0) {
            out->v[out->n++] = UNI_REPLACEMENT;
            i += bad;
        } else {
            out->v[out->n++] = c;
            i += len;
        }
    }
}

int utf8_encode(uint32_t c, uint8_t *buf)
{
    if (c < 0x80) {
        buf[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        buf[0] = (uint8_t)(0xC0 | (c >> 6));
        buf[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        buf[0] = (uint8_t)(0xE0 | (c >> 12));
        buf[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        buf[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    buf[0] = (uint8_t)(0xF0 | (c >> 18));
    buf[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    buf[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    buf[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

int uni_is_space(uint32_t c)
{
    /* Python's definition: bidi class WS, B or S, or general category Zs. */
    if (c <= 0x20)
        return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20);
    switch (c) {
    case 0x85:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000: return 1;
    default: return c >= 0x2000 && c <= 0x200A;
    }
}

int uni_is_word(uint32_t c)
{
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    return uc_is_general_category(c, UC_CATEGORY_L) || uc_is_general_category(c, UC_CATEGORY_N);
}
