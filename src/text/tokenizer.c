/*
 * tokenizer - CLIP tokenizer: vocabulary loading, pre-tokenizer, driving BPE.
 *
 * Creation inflates the embedded merges file (only as far as the 48894 rules
 * CLIP uses) and builds the merge table. Tokenizing cleans the text into code
 * points, then walks CLIP's pattern
 *   <|startoftext|> | <|endoftext|> | 's|'t|'re|'ve|'m|'ll|'d | \p{L}+ | \p{N} | [^\s\p{L}\p{N}]+
 * (case-insensitive, tried in that order at each position, spaces skipped) with
 * Unicode category predicates instead of a regex engine, and hands each piece's
 * UTF-8 bytes to BPE.
 */
#include "text/tokenizer.h"

#include <string.h>
#include <unictype.h>
#include <zlib.h>

#include "common/alloc.h"
#include "text/bpe.h"
#include "text/clip_clean.h"
#include "text/unicode.h"
#include "text/vocab_blob.h"

/* CLIP keeps merges[1 : 49152 - 256 - 2 + 1]: 48894 rules after the header. */
#define CLIP_N_MERGES (49152 - 256 - 2)

struct clip_tokenizer {
    bpe_table bpe;
};

/* ---- vocabulary ---- */

/* Inflates the embedded gzip until it holds the header and n_lines more lines. */
static gs_status inflate_merges(size_t n_lines, char **text, size_t *len, gi_error *err)
{
    gs_status st = GS_OK;
    size_t gz_size = 0;
    const uint8_t *gz = clip_vocab_gz(&gz_size);
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    size_t cap = 1u << 20, used = 0, lines = 0;
    char *buf = gi_malloc(cap);
    if (!buf)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory inflating the CLIP vocabulary");
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip wrapper */
        gi_free(buf);
        return gi_fail(err, GS_ERR_NO_MEMORY, "zlib: cannot start inflating");
    }
    zs.next_in = (Bytef *)gz;
    zs.avail_in = (uInt)gz_size;
    while (lines <= n_lines) {
        if (used == cap) {
            char *nb = cap > (64u << 20) ? NULL : gi_realloc(buf, cap * 2);
            if (!nb) {
                st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory inflating the vocabulary");
                goto out;
            }
            buf = nb;
            cap *= 2;
        }
        zs.next_out = (Bytef *)buf + used;
        zs.avail_out = (uInt)(cap - used);
        int zr = inflate(&zs, Z_NO_FLUSH);
        size_t got = (cap - used) - zs.avail_out;
        for (size_t i = used; i < used + got; i++)
            lines += buf[i] == '\n';
        used += got;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && !(zr == Z_BUF_ERROR && used == cap)) {
            st = gi_fail(err, GS_ERR_FORMAT, "embedded CLIP vocabulary: zlib error %d", zr);
            goto out;
        }
    }
    if (lines <= n_lines) {
        st = gi_fail(err, GS_ERR_FORMAT, "embedded CLIP vocabulary has %zu lines, need %zu", lines,
                     n_lines + 1);
        goto out;
    }
    *text = buf;
    *len = used;
    buf = NULL;
out:
    inflateEnd(&zs);
    gi_free(buf);
    return st;
}

gs_status clip_tokenizer_create(clip_tokenizer **out, gi_error *err)
{
    gs_status st = GS_OK;
    char *text = NULL;
    size_t len = 0;
    *out = NULL;
    clip_tokenizer *tok = gi_calloc(1, sizeof *tok);
    if (!tok)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory creating the CLIP tokenizer");
    st = inflate_merges(CLIP_N_MERGES, &text, &len, err);
    if (st != GS_OK)
        goto out;
    st = bpe_table_build(&tok->bpe, text, len, CLIP_N_MERGES, err);
    if (st != GS_OK)
        goto out;
    if (tok->bpe.vocab_size != CLIP_BOS) {
        st = gi_fail(err, GS_ERR_INTERNAL, "CLIP vocabulary has %d entries before the specials",
                     tok->bpe.vocab_size);
        goto out;
    }
    *out = tok;
    tok = NULL;
out:
    gi_free(text);
    clip_tokenizer_free(tok);
    return st;
}

void clip_tokenizer_free(clip_tokenizer *tok)
{
    if (!tok)
        return;
    bpe_table_free(&tok->bpe);
    gi_free(tok);
}

/* ---- pre-tokenizer ---- */

static int is_letter(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    return uc_is_general_category(c, UC_CATEGORY_L);
}

static int is_number(uint32_t c)
{
    if (c < 0x80)
        return c >= '0' && c <= '9';
    return uc_is_general_category(c, UC_CATEGORY_N);
}

/* Case-insensitive ASCII match of lit at s[0..n); the text is already lower
 * case, and U+017F (long s) folds to 's' as the regex's IGNORECASE does. */
static int match_lit(const uint32_t *s, size_t n, const char *lit)
{
    size_t k = 0;
    for (; lit[k]; k++) {
        if (k >= n)
            return 0;
        uint32_t c = s[k];
        if (c >= 'A' && c <= 'Z')
            c += 32;
        if (c == 0x17F)
            c = 's';
        if (c != (uint32_t)(unsigned char)lit[k])
            return 0;
    }
    return (int)k;
}

/* Length of the piece at s[0] and, for a special token, its id in *special. */
static size_t next_piece(const uint32_t *s, size_t n, int32_t *special)
{
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    int k;
    *special = -1;
    if (s[0] == '<') {
        if ((k = match_lit(s, n, "<|startoftext|>")) != 0) {
            *special = CLIP_BOS;
            return (size_t)k;
        }
        if ((k = match_lit(s, n, "<|endoftext|>")) != 0) {
            *special = CLIP_EOS;
            return (size_t)k;
        }
    }
    if (s[0] == '\'')
        for (size_t i = 0; i < sizeof contractions / sizeof contractions[0]; i++)
            if ((k = match_lit(s, n, contractions[i])) != 0)
                return (size_t)k;
    size_t len = 1;
    if (is_letter(s[0])) {
        while (len < n && is_letter(s[len]))
            len++;
    } else if (!is_number(s[0])) {
        while (len < n && !uni_is_space(s[len]) && !is_letter(s[len]) && !is_number(s[len]))
            len++;
    }
    return len;
}

/* ---- tokenize ---- */

gs_status clip_tokenize(const clip_tokenizer *tok, const char *text, int32_t **ids, size_t *n,
                        gi_error *err)
{
    gs_status st = GS_OK;
    u32vec clean = {0};
    i32vec out = {0};
    bpe_work work = {0};
    uint8_t *bytes = NULL; /* [4 * piece length] UTF-8 of the current piece */
    size_t bytes_cap = 0;
    *ids = NULL;
    *n = 0;
    if (!tok || !text)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "clip_tokenize: NULL argument");
    size_t len = strlen(text);
    if (len > CLIP_MAX_TEXT_BYTES)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "text of %zu bytes exceeds the %u-byte limit",
                       len, CLIP_MAX_TEXT_BYTES);
    st = clip_clean_text(text, len, &clean, err);
    if (st != GS_OK)
        goto out;

    size_t i = 0;
    while (i < clean.n) {
        if (uni_is_space(clean.v[i])) {
            i++;
            continue;
        }
        int32_t special;
        size_t plen = next_piece(clean.v + i, clean.n - i, &special);
        if (special >= 0) {
            i32vec_push(&out, special);
            i += plen;
            continue;
        }
        if (4 * plen > bytes_cap) {
            gi_free(bytes);
            bytes_cap = 4 * plen < 256 ? 256 : 4 * plen;
            bytes = gi_malloc(bytes_cap);
            if (!bytes) {
                st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory tokenizing");
                goto out;
            }
        }
        size_t nb = 0;
        for (size_t k = 0; k < plen; k++)
            nb += (size_t)utf8_encode(clean.v[i + k], bytes + nb);
        st = bpe_encode_word(&tok->bpe, bytes, nb, &work, &out, err);
        if (st != GS_OK)
            goto out;
        i += plen;
    }
    if (out.oom) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory storing token ids");
        goto out;
    }
    *ids = out.v;
    *n = out.n;
    out.v = NULL;
out:
    u32vec_free(&clean);
    i32vec_free(&out);
    bpe_work_free(&work);
    gi_free(bytes);
    return st;
}
