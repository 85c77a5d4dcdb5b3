/*
 * html_unescape - Python's html.unescape and ftfy's unescape_html over code points.
 *
 * Python: "&" then "#digits", "#x hex" or up to 32 characters outside
 * "\t\n\f <&#;", each with an optional ';'. A name without ';' (or not found)
 * falls back to the longest legacy name that prefixes it ("&ampx" -> "&x").
 * ftfy: only "&" "#"? 1-24 ASCII alphanumerics ";" is considered; names are the
 * ';' forms plus an upper-case spelling of each lower-case name ("&EACUTE;"),
 * and a numeric reference is taken only when it decodes to something without ';'.
 */
#include "text/html_unescape.h"

#include <string.h>
#include <unicase.h>

typedef struct entity {
    const char *name;
    uint32_t cp;
    uint8_t legacy; /* also recognised without the ';' */
} entity;

/* Latin-1 names for U+00A0..U+00FF, all legacy. */
static const char *const latin1_names[96] = {
    "nbsp",   "iexcl",  "cent",   "pound",  "curren", "yen",    "brvbar", "sect",   "uml",
    "copy",   "ordf",   "laquo",  "not",    "shy",    "reg",    "macr",   "deg",    "plusmn",
    "sup2",   "sup3",   "acute",  "micro",  "para",   "middot", "cedil",  "sup1",   "ordm",
    "raquo",  "frac14", "frac12", "frac34", "iquest", "Agrave", "Aacute", "Acirc",  "Atilde",
    "Auml",   "Aring",  "AElig",  "Ccedil", "Egrave", "Eacute", "Ecirc",  "Euml",   "Igrave",
    "Iacute", "Icirc",  "Iuml",   "ETH",    "Ntilde", "Ograve", "Oacute", "Ocirc",  "Otilde",
    "Ouml",   "times",  "Oslash", "Ugrave", "Uacute", "Ucirc",  "Uuml",   "Yacute", "THORN",
    "szlig",  "agrave", "aacute", "acirc",  "atilde", "auml",   "aring",  "aelig",  "ccedil",
    "egrave", "eacute", "ecirc",  "euml",   "igrave", "iacute", "icirc",  "iuml",   "eth",
    "ntilde", "ograve", "oacute", "ocirc",  "otilde", "ouml",   "divide", "oslash", "ugrave",
    "uacute", "ucirc",  "uuml",   "yacute", "thorn",  "yuml",
};

static const entity other_entities[] = {
    {"quot", 0x22, 1},     {"amp", 0x26, 1},       {"lt", 0x3C, 1},       {"gt", 0x3E, 1},
    {"QUOT", 0x22, 1},     {"AMP", 0x26, 1},       {"LT", 0x3C, 1},       {"GT", 0x3E, 1},
    {"COPY", 0xA9, 1},     {"REG", 0xAE, 1},       {"apos", 0x27, 0},     {"TRADE", 0x2122, 0},
    {"OElig", 0x152, 0},   {"oelig", 0x153, 0},    {"Scaron", 0x160, 0},  {"scaron", 0x161, 0},
    {"Yuml", 0x178, 0},    {"fnof", 0x192, 0},     {"circ", 0x2C6, 0},    {"tilde", 0x2DC, 0},
    {"Alpha", 0x391, 0},   {"Beta", 0x392, 0},     {"Gamma", 0x393, 0},   {"Delta", 0x394, 0},
    {"Epsilon", 0x395, 0}, {"Zeta", 0x396, 0},     {"Eta", 0x397, 0},     {"Theta", 0x398, 0},
    {"Iota", 0x399, 0},    {"Kappa", 0x39A, 0},    {"Lambda", 0x39B, 0},  {"Mu", 0x39C, 0},
    {"Nu", 0x39D, 0},      {"Xi", 0x39E, 0},       {"Omicron", 0x39F, 0}, {"Pi", 0x3A0, 0},
    {"Rho", 0x3A1, 0},     {"Sigma", 0x3A3, 0},    {"Tau", 0x3A4, 0},     {"Upsilon", 0x3A5, 0},
    {"Phi", 0x3A6, 0},     {"Chi", 0x3A7, 0},      {"Psi", 0x3A8, 0},     {"Omega", 0x3A9, 0},
    {"alpha", 0x3B1, 0},   {"beta", 0x3B2, 0},     {"gamma", 0x3B3, 0},   {"delta", 0x3B4, 0},
    {"epsilon", 0x3B5, 0}, {"zeta", 0x3B6, 0},     {"eta", 0x3B7, 0},     {"theta", 0x3B8, 0},
    {"iota", 0x3B9, 0},    {"kappa", 0x3BA, 0},    {"lambda", 0x3BB, 0},  {"mu", 0x3BC, 0},
    {"nu", 0x3BD, 0},      {"xi", 0x3BE, 0},       {"omicron", 0x3BF, 0}, {"pi", 0x3C0, 0},
    {"rho", 0x3C1, 0},     {"sigmaf", 0x3C2, 0},   {"sigma", 0x3C3, 0},   {"tau", 0x3C4, 0},
    {"upsilon", 0x3C5, 0}, {"phi", 0x3C6, 0},      {"chi", 0x3C7, 0},     {"psi", 0x3C8, 0},
    {"omega", 0x3C9, 0},   {"thetasym", 0x3D1, 0}, {"upsih", 0x3D2, 0},   {"piv", 0x3D6, 0},
    {"ensp", 0x2002, 0},   {"emsp", 0x2003, 0},    {"thinsp", 0x2009, 0}, {"zwnj", 0x200C, 0},
    {"zwj", 0x200D, 0},    {"lrm", 0x200E, 0},     {"rlm", 0x200F, 0},    {"ndash", 0x2013, 0},
    {"mdash", 0x2014, 0},  {"lsquo", 0x2018, 0},   {"rsquo", 0x2019, 0},  {"sbquo", 0x201A, 0},
    {"ldquo", 0x201C, 0},  {"rdquo", 0x201D, 0},   {"bdquo", 0x201E, 0},  {"dagger", 0x2020, 0},
    {"Dagger", 0x2021, 0}, {"bull", 0x2022, 0},    {"hellip", 0x2026, 0}, {"permil", 0x2030, 0},
    {"prime", 0x2032, 0},  {"Prime", 0x2033, 0},   {"lsaquo", 0x2039, 0}, {"rsaquo", 0x203A, 0},
    {"oline", 0x203E, 0},  {"frasl", 0x2044, 0},   {"euro", 0x20AC, 0},   {"image", 0x2111, 0},
    {"weierp", 0x2118, 0}, {"real", 0x211C, 0},    {"trade", 0x2122, 0},  {"alefsym", 0x2135, 0},
    {"larr", 0x2190, 0},   {"uarr", 0x2191, 0},    {"rarr", 0x2192, 0},   {"darr", 0x2193, 0},
    {"harr", 0x2194, 0},   {"crarr", 0x21B5, 0},   {"lArr", 0x21D0, 0},   {"uArr", 0x21D1, 0},
    {"rArr", 0x21D2, 0},   {"dArr", 0x21D3, 0},    {"hArr", 0x21D4, 0},   {"forall", 0x2200, 0},
    {"part", 0x2202, 0},   {"exist", 0x2203, 0},   {"empty", 0x2205, 0},  {"nabla", 0x2207, 0},
    {"isin", 0x2208, 0},   {"notin", 0x2209, 0},   {"ni", 0x220B, 0},     {"prod", 0x220F, 0},
    {"sum", 0x2211, 0},    {"minus", 0x2212, 0},   {"lowast", 0x2217, 0}, {"radic", 0x221A, 0},
    {"prop", 0x221D, 0},   {"infin", 0x221E, 0},   {"ang", 0x2220, 0},    {"and", 0x2227, 0},
    {"or", 0x2228, 0},     {"cap", 0x2229, 0},     {"cup", 0x222A, 0},    {"int", 0x222B, 0},
    {"there4", 0x2234, 0}, {"sim", 0x223C, 0},     {"cong", 0x2245, 0},   {"asymp", 0x2248, 0},
    {"ne", 0x2260, 0},     {"equiv", 0x2261, 0},   {"le", 0x2264, 0},     {"ge", 0x2265, 0},
    {"sub", 0x2282, 0},    {"sup", 0x2283, 0},     {"nsub", 0x2284, 0},   {"sube", 0x2286, 0},
    {"supe", 0x2287, 0},   {"oplus", 0x2295, 0},   {"otimes", 0x2297, 0}, {"perp", 0x22A5, 0},
    {"sdot", 0x22C5, 0},   {"lceil", 0x2308, 0},   {"rceil", 0x2309, 0},  {"lfloor", 0x230A, 0},
    {"rfloor", 0x230B, 0}, {"lang", 0x27E8, 0},    {"rang", 0x27E9, 0},   {"loz", 0x25CA, 0},
    {"spades", 0x2660, 0}, {"clubs", 0x2663, 0},   {"hearts", 0x2665, 0}, {"diams", 0x2666, 0},
};

/* C1 bytes 0x80..0x9F as Windows-1252 reads them; 0 marks the five undefined. */
static const uint16_t cp1252_high[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

uint32_t cp1252_c1(uint32_t c)
{
    if (c < 0x80 || c > 0x9F || cp1252_high[c - 0x80] == 0)
        return c;
    return cp1252_high[c - 0x80];
}

static int name_equals(const uint32_t *s, size_t n, const char *name)
{
    size_t i = 0;
    for (; i < n; i++)
        if (name[i] == '\0' || (uint32_t)(unsigned char)name[i] != s[i])
            return 0;
    return name[i] == '\0';
}

/* Code point of the entity spelled s[0..n) (without ';'), or 0. legacy_only: only
 * names valid without ';'. */
static uint32_t entity_lookup(const uint32_t *s, size_t n, int legacy_only)
{
    for (int i = 0; i < 96; i++)
        if (name_equals(s, n, latin1_names[i]))
            return 0xA0 + (uint32_t)i;
    for (size_t i = 0; i < sizeof other_entities / sizeof other_entities[0]; i++)
        if ((!legacy_only || other_entities[i].legacy) && name_equals(s, n, other_entities[i].name))
            return other_entities[i].cp;
    return 0;
}

/* Length of the longest legacy name that is a proper prefix (>= 2) of s[0..n), or 0. */
static size_t legacy_prefix(const uint32_t *s, size_t n, uint32_t *cp)
{
    for (size_t x = n - 1; x >= 2 && x < n; x--) {
        uint32_t c = entity_lookup(s, x, 1);
        if (c) {
            *cp = c;
            return x;
        }
    }
    return 0;
}

static int is_ascii_digit(uint32_t c)
{
    return c >= '0' && c <= '9';
}

static int hex_value(uint32_t c)
{
    if (is_ascii_digit(c))
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* Python's _replace_charref for a number: appends its replacement (maybe none). */
static void push_charref(u32vec *out, uint32_t num)
{
    if (num == 0)
        u32vec_push(out, UNI_REPLACEMENT);
    else if (num == 0x0D)
        u32vec_push(out, 0x0D);
    else if (num >= 0x80 && num <= 0x9F)
        u32vec_push(out, cp1252_c1(num));
    else if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF)
        u32vec_push(out, UNI_REPLACEMENT);
    else if ((num >= 0x01 && num <= 0x08) || num == 0x0B || (num >= 0x0E && num <= 0x1F) ||
             num == 0x7F || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE)
        return; /* invalid code points vanish */
    else
        u32vec_push(out, num);
}

/* Parses "#digits" or "#x hex" at s[0] == '#'; returns the length consumed (without
 * ';'), 0 when there is no number. Values saturate just above U+10FFFF. */
static size_t parse_charref(const uint32_t *s, size_t n, uint32_t *num)
{
    uint32_t v = 0;
    size_t i = 1;
    int base = 10;
    if (i < n && (s[i] == 'x' || s[i] == 'X') && i + 1 < n && hex_value(s[i + 1]) >= 0) {
        base = 16;
        i++;
    }
    size_t start = i;
    for (; i < n; i++) {
        int d = base == 16 ? hex_value(s[i]) : (is_ascii_digit(s[i]) ? (int)(s[i] - '0') : -1);
        if (d < 0)
            break;
        v = v > 0x110000 ? 0x110001 : v * (uint32_t)base + (uint32_t)d;
    }
    if (i == start)
        return 0;
    *num = v;
    return i;
}

static int is_name_stop(uint32_t c)
{
    return c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' ||
           c == ';';
}

/* One Python reference at in[0] == '&'; returns the input length consumed, 0 if none. */
static size_t unescape_python(const uint32_t *in, size_t n, u32vec *out)
{
    const uint32_t *s = in + 1;
    size_t m = n - 1;
    if (m > 0 && s[0] == '#') {
        uint32_t num = 0;
        size_t len = parse_charref(s, m, &num);
        if (len == 0)
            return 0;
        if (len < m && s[len] == ';')
            len++;
        push_charref(out, num);
        return 1 + len;
    }
    size_t len = 0;
    while (len < m && len < 32 && !is_name_stop(s[len]))
        len++;
    if (len == 0)
        return 0;
    int semi = len < m && s[len] == ';';
    uint32_t cp = entity_lookup(s, len, !semi);
    size_t total = len + (size_t)semi;
    if (cp) {
        u32vec_push(out, cp);
        return 1 + total;
    }
    size_t x = legacy_prefix(s, total, &cp);
    if (x) {
        u32vec_push(out, cp);
        u32vec_push_n(out, s + x, total - x);
    } else {
        u32vec_push(out, '&');
        u32vec_push_n(out, s, total);
    }
    return 1 + total;
}

static int is_ascii_alnum(uint32_t c)
{
    return is_ascii_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ftfy's upper-case spelling of a lower-case name ("&EACUTE;" -> "É"): s is the
 * name without ';'. Returns 0 when it is not one. */
static int ftfy_upper_entity(const uint32_t *s, size_t n, u32vec *out)
{
    uint32_t lower[24];
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 'a' && s[i] <= 'z')
            return 0;
        lower[i] = (s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i];
    }
    uint32_t cp = entity_lookup(lower, n, 0);
    if (!cp)
        return 0;
    /* ftfy keeps the spelling only where html.unescape leaves it alone. */
    uint32_t with_semi[25];
    memcpy(with_semi, s, n * sizeof(uint32_t));
    with_semi[n] = ';';
    uint32_t unused;
    if (entity_lookup(s, n, 0) || legacy_prefix(with_semi, n + 1, &unused))
        return 0;
    if (cp == 0xDF) { /* str.upper() of sharp s */
        u32vec_push(out, 'S');
        u32vec_push(out, 'S');
    } else {
        u32vec_push(out, uc_toupper(cp));
    }
    return 1;
}

/* One ftfy reference at in[0] == '&'; returns the input length consumed, 0 if none. */
static size_t unescape_ftfy(const uint32_t *in, size_t n, u32vec *out)
{
    size_t i = 1;
    int numeric = i < n && in[i] == '#';
    if (numeric)
        i++;
    size_t start = i;
    while (i < n && i - start < 25 && is_ascii_alnum(in[i]))
        i++;
    size_t len = i - start;
    if (len < 1 || len > 24 || i >= n || in[i] != ';')
        return 0;
    size_t total = i + 1;
    if (!numeric) {
        uint32_t cp = entity_lookup(in + start, len, 0);
        if (cp) {
            u32vec_push(out, cp);
            return total;
        }
        return ftfy_upper_entity(in + start, len, out) ? total : 0;
    }
    /* html.unescape must consume the whole "&#...;" and not yield ';'. */
    uint32_t num = 0;
    size_t nlen = parse_charref(in + 1, total - 1, &num);
    if (nlen == 0 || 1 + nlen != i || num == ';')
        return 0;
    push_charref(out, num);
    return total;
}

void html_unescape(const uint32_t *in, size_t n, html_mode mode, u32vec *out)
{
    size_t i = 0;
    while (i < n) {
        if (in[i] == '&') {
            size_t used = mode == HTML_PYTHON ? unescape_python(in + i, n - i, out)
                                              : unescape_ftfy(in + i, n - i, out);
            if (used) {
                i += used;
                continue;
            }
        }
        u32vec_push(out, in[i]);
        i++;
    }
}
