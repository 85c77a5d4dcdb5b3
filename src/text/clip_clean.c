/*
 * clip_clean - CLIP's text cleaning: ftfy.fix_text, html.unescape x2, whitespace, lower().
 *
 * Design: the UTF-8 input is decoded once into code points (invalid bytes read
 * as U+FFFD) and every step is one pass from one buffer into the other.
 *
 * ftfy 6's fix_text is followed step by step and, like ftfy, repeated until the
 * text stops changing: unescape_html (only when the input has no '<'),
 * fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes,
 * fix_line_breaks, remove_terminal_escapes, remove_control_chars, NFC. Not
 * implemented: fix_encoding (mojibake detection, e.g. "cafÃ©" -> "café"), which
 * needs ftfy's statistical badness model; such text is tokenized as given.
 * lower() follows Python's str.lower() (see lower_case).
 */
#include "text/clip_clean.h"

#include <stdlib.h>
#include <string.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>

#include "text/html_unescape.h"

/* ftfy's fix_text loops to a fixed point; a handful of rounds always suffices
 * (each round only shrinks references or is idempotent), this bounds hostile input. */
#define FTFY_MAX_ROUNDS 16

static void swap_vec(u32vec *a, u32vec *b)
{
    u32vec t = *a;
    *a = *b;
    *b = t;
}

/* ---- ftfy fixes, each in -> out ---- */

static void fix_c1_controls(const u32vec *in, u32vec *out)
{
    for (size_t i = 0; i < in->n; i++)
        u32vec_push(out, cp1252_c1(in->v[i]));
}

static void fix_latin_ligatures(const u32vec *in, u32vec *out)
{
    static const struct {
        uint32_t from;
        uint32_t to[3];
    } table[] = {
        {0x0132, {'I', 'J'}},      {0x0133, {'i', 'j'}},      {0x0149, {0x02BC, 'n'}},
        {0x01C4, {'D', 0x017D}},   {0x01C5, {'D', 0x017E}},   {0x01C6, {'d', 0x017E}},
        {0x01C7, {'L', 'J'}},      {0x01C8, {'L', 'j'}},      {0x01C9, {'l', 'j'}},
        {0x01CA, {'N', 'J'}},      {0x01CB, {'N', 'j'}},      {0x01CC, {'n', 'j'}},
        {0x01F1, {'D', 'Z'}},      {0x01F2, {'D', 'z'}},      {0x01F3, {'d', 'z'}},
        {0xFB00, {'f', 'f'}},      {0xFB01, {'f', 'i'}},      {0xFB02, {'f', 'l'}},
        {0xFB03, {'f', 'f', 'i'}}, {0xFB04, {'f', 'f', 'l'}}, {0xFB05, {0x017F, 't'}},
        {0xFB06, {'s', 't'}},
    };
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        size_t k = 0, nk = sizeof table / sizeof table[0];
        if ((c >= 0x0132 && c <= 0x01F3) || (c >= 0xFB00 && c <= 0xFB06))
            while (k < nk && table[k].from != c)
                k++;
        else
            k = nk;
        if (k == nk) {
            u32vec_push(out, c);
            continue;
        }
        for (int j = 0; j < 3 && table[k].to[j]; j++)
            u32vec_push(out, table[k].to[j]);
    }
}

/* Fullwidth and halfwidth forms -> their NFKC equivalents, U+3000 -> space. */
static void fix_character_width(const u32vec *in, u32vec *out)
{
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c == 0x3000) {
            u32vec_push(out, ' ');
            continue;
        }
        if (c < 0xFF01 || c > 0xFFEF) {
            u32vec_push(out, c);
            continue;
        }
        uint32_t buf[8];
        size_t len = sizeof buf / sizeof buf[0];
        uint32_t *r = u32_normalize(UNINORM_NFKC, &c, 1, buf, &len);
        if (!r) {
            out->oom = 1;
            return;
        }
        u32vec_push_n(out, r, len);
        if (r != buf)
            free(r); /* allocated by libunistring */
    }
}

static void uncurl_quotes(const u32vec *in, u32vec *out)
{
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))
            c = '\'';
        else if (c >= 0x201C && c <= 0x201F)
            c = '"';
        u32vec_push(out, c);
    }
}

static void fix_line_breaks(const u32vec *in, u32vec *out)
{
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c == '\r' && i + 1 < in->n && in->v[i + 1] == '\n')
            continue; /* the '\n' follows */
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85)
            c = '\n';
        u32vec_push(out, c);
    }
}

/* Drops ANSI sequences ESC '[' (digits | ';')* letter. */
static void remove_terminal_escapes(const u32vec *in, u32vec *out)
{
    for (size_t i = 0; i < in->n; i++) {
        if (in->v[i] == 0x1B && i + 1 < in->n && in->v[i + 1] == '[') {
            size_t j = i + 2;
            while (j < in->n &&
                   (in->v[j] == ';' || uc_is_general_category(in->v[j], UC_CATEGORY_Nd)))
                j++;
            uint32_t c = j < in->n ? in->v[j] : 0;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
                i = j;
                continue;
            }
        }
        u32vec_push(out, in->v[i]);
    }
}

static int is_removed_control(uint32_t c)
{
    return c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
           (c >= 0x206A && c <= 0x206F) || c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC);
}

static void remove_control_chars(const u32vec *in, u32vec *out)
{
    for (size_t i = 0; i < in->n; i++)
        if (!is_removed_control(in->v[i]))
            u32vec_push(out, in->v[i]);
}

/* NFC with libunistring, into our own buffer when the result fits (it nearly always
 * does: composition shortens text). */
static void normalize_nfc(const u32vec *in, u32vec *out)
{
    if (u32vec_reserve(out, in->n + 16) != 0)
        return;
    size_t len = out->cap;
    uint32_t *r = u32_normalize(UNINORM_NFC, in->v, in->n, out->v, &len);
    if (!r) {
        out->oom = 1;
        return;
    }
    if (r == out->v) {
        out->n = len;
        return;
    }
    out->n = 0;
    u32vec_push_n(out, r, len);
    free(r); /* allocated by libunistring */
}

/* ---- the chain ---- */

typedef void (*fix_fn)(const u32vec *in, u32vec *out);

/* One pass: cur -> tmp, then swap. Returns -1 when out of memory. */
static int run_pass(u32vec *cur, u32vec *tmp, fix_fn fn)
{
    tmp->n = 0;
    fn(cur, tmp);
    if (tmp->oom)
        return -1;
    swap_vec(cur, tmp);
    return 0;
}

static void unescape_ftfy(const u32vec *in, u32vec *out)
{
    html_unescape(in->v, in->n, HTML_FTFY, out);
}

static void unescape_python(const u32vec *in, u32vec *out)
{
    html_unescape(in->v, in->n, HTML_PYTHON, out);
}

/* Python's Final_Sigma test for a capital sigma at in[i]: a cased letter before it
 * and none after it, skipping case-ignorable characters both ways. */
static int is_final_sigma(const uint32_t *v, size_t n, size_t i)
{
    size_t j = i;
    while (j > 0 && uc_is_property(v[j - 1], UC_PROPERTY_CASE_IGNORABLE))
        j--;
    if (j == 0 || !uc_is_property(v[j - 1], UC_PROPERTY_CASED))
        return 0;
    for (j = i + 1; j < n && uc_is_property(v[j], UC_PROPERTY_CASE_IGNORABLE); j++)
        ;
    return j == n || !uc_is_property(v[j], UC_PROPERTY_CASED);
}

/* str.lower(): the simple mapping, plus the one unconditional full mapping
 * (U+0130 -> "i\u0307") and Final_Sigma. libunistring's u32_tolower is not used
 * because its Final_Sigma disagrees with Python around apostrophes ("ΟΔΟΣ's"). */
static void lower_case(const u32vec *in, u32vec *out)
{
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (c < 0x80) {
            u32vec_push(out, c >= 'A' && c <= 'Z' ? c + 32 : c);
        } else if (c == 0x130) {
            u32vec_push(out, 'i');
            u32vec_push(out, 0x307);
        } else if (c == 0x3A3) {
            u32vec_push(out, is_final_sigma(in->v, in->n, i) ? 0x3C2 : 0x3C3);
        } else {
            u32vec_push(out, uc_tolower(c));
        }
    }
}

/* re.sub(r'\s+', ' ', text).strip() */
static void collapse_whitespace(const u32vec *in, u32vec *out)
{
    int pending_space = 0;
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i];
        if (uni_is_space(c)) {
            pending_space = out->n > 0;
            continue;
        }
        if (pending_space)
            u32vec_push(out, ' ');
        pending_space = 0;
        u32vec_push(out, c);
    }
}

static int ftfy_fix_text(u32vec *cur, u32vec *tmp, u32vec *orig)
{
    int has_lt = 0;
    for (size_t i = 0; i < cur->n; i++)
        has_lt |= cur->v[i] == '<';
    static const fix_fn fixes[] = {
        fix_c1_controls, fix_latin_ligatures,     fix_character_width,  uncurl_quotes,
        fix_line_breaks, remove_terminal_escapes, remove_control_chars, normalize_nfc,
    };
    for (int round = 0; round < FTFY_MAX_ROUNDS; round++) {
        orig->n = 0;
        u32vec_push_n(orig, cur->v, cur->n);
        if (orig->oom)
            return -1;
        if (!has_lt && run_pass(cur, tmp, unescape_ftfy) != 0)
            return -1;
        for (size_t k = 0; k < sizeof fixes / sizeof fixes[0]; k++)
            if (run_pass(cur, tmp, fixes[k]) != 0)
                return -1;
        if (cur->n == orig->n &&
            (cur->n == 0 || memcmp(cur->v, orig->v, cur->n * sizeof(uint32_t)) == 0))
            break;
    }
    return 0;
}

gs_status clip_clean_text(const char *utf8, size_t n, u32vec *out, gi_error *err)
{
    gs_status st = GS_OK;
    u32vec cur = {0}, tmp = {0}, orig = {0};
    utf8_decode((const uint8_t *)utf8, n, &cur);
    if (cur.oom)
        goto oom;
    if (ftfy_fix_text(&cur, &tmp, &orig) != 0)
        goto oom;
    static const fix_fn after[] = {unescape_python, unescape_python, collapse_whitespace,
                                   lower_case};
    for (size_t k = 0; k < sizeof after / sizeof after[0]; k++)
        if (run_pass(&cur, &tmp, after[k]) != 0)
            goto oom;
    *out = cur;
    memset(&cur, 0, sizeof cur);
    goto out;
oom:
    st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory cleaning a %zu-byte text", n);
out:
    u32vec_free(&cur);
    u32vec_free(&tmp);
    u32vec_free(&orig);
    return st;
}
