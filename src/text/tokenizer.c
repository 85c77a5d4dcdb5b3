/*
 * tokenizer - CLIP BPE.
 *
 * Vocabulary: the 256 byte symbols (in GPT-2's bytes_to_unicode order), the
 * same with the end-of-word mark "</w>", one symbol per merge rule (48,894
 * rules), then <|startoftext|> and <|endoftext|>: 49,408 ids. We keep only
 * what encoding needs: byte -> symbol id, and (left id, right id) -> (rank,
 * merged id) in an open-addressing table.
 *
 * BPE runs on a linked list of symbols with a min-heap of candidate pairs
 * ordered by (rank, position), so a word of n bytes costs O(n log n); this
 * applies merges in the same order as the reference's repeated
 * "lowest-ranked bigram, all occurrences left to right" loop.
 */
#include "text/tokenizer.h"

#include <string.h>
#include <unictype.h>
#include <unistr.h>
#include <zlib.h>

#include "common/alloc.h"
#include "text/text_clean.h"

#define N_MERGES (49152 - 256 - 2)
#define VOCAB_SIZE (512 + N_MERGES + 2)

extern const unsigned char gs_clip_vocab_gz[];
extern const unsigned char gs_clip_vocab_gz_end[];

typedef struct pair_entry {
    uint64_t key; /* (left << 32 | right) + 1; 0 = empty */
    int32_t rank;
    int32_t merged;
} pair_entry;

struct clip_tokenizer {
    int32_t byte_id[256]; /* id of the symbol for a byte (without </w>) */
    pair_entry *pairs;
    size_t pair_mask;
};

/* ---- hashing ---- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static const pair_entry *pair_find(const clip_tokenizer *t, int32_t a, int32_t b)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    for (size_t i = mix64(key) & t->pair_mask;; i = (i + 1) & t->pair_mask) {
        if (t->pairs[i].key == key)
            return &t->pairs[i];
        if (t->pairs[i].key == 0)
            return NULL;
    }
}

static void pair_insert(clip_tokenizer *t, int32_t a, int32_t b, int32_t rank, int32_t merged)
{
    uint64_t key = (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1;
    size_t i = mix64(key) & t->pair_mask;
    while (t->pairs[i].key != 0 && t->pairs[i].key != key)
        i = (i + 1) & t->pair_mask;
    t->pairs[i] = (pair_entry){key, rank, merged}; /* a repeated rule: the last wins */
}

/* A temporary string -> id map used while reading the merge rules. */
typedef struct str_map {
    const char **keys;
    uint32_t *lens;
    int32_t *ids;
    size_t mask;
} str_map;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

static int32_t str_find(const str_map *m, const char *s, size_t n)
{
    for (size_t i = fnv1a(s, n) & m->mask;; i = (i + 1) & m->mask) {
        if (!m->keys[i])
            return -1;
        if (m->lens[i] == n && memcmp(m->keys[i], s, n) == 0)
            return m->ids[i];
    }
}

/* Later ids replace earlier ones, as the reference's dict(zip(vocab, ids)) does. */
static void str_insert(str_map *m, const char *s, size_t n, int32_t id)
{
    size_t i = fnv1a(s, n) & m->mask;
    while (m->keys[i]) {
        if (m->lens[i] == n && memcmp(m->keys[i], s, n) == 0) {
            m->ids[i] = id;
            return;
        }
        i = (i + 1) & m->mask;
    }
    m->keys[i] = s;
    m->lens[i] = (uint32_t)n;
    m->ids[i] = id;
}

/* ---- vocabulary ---- */

/* GPT-2's printable stand-in for each byte, and the bytes' order in the vocab. */
static void byte_symbols(uint32_t cp[256], int order[256])
{
    int n = 0, extra = 0;
    int printable[256] = {0};
    for (int b = '!'; b <= '~'; b++)
        printable[b] = 1;
    for (int b = 0xa1; b <= 0xac; b++)
        printable[b] = 1;
    for (int b = 0xae; b <= 0xff; b++)
        printable[b] = 1;
    for (int b = 0; b < 256; b++)
        if (printable[b]) {
            cp[b] = (uint32_t)b;
            order[n++] = b;
        }
    for (int b = 0; b < 256; b++)
        if (!printable[b]) {
            cp[b] = 256 + (uint32_t)extra++;
            order[n++] = b;
        }
}

static gs_status inflate_vocab(char **out, size_t *out_len, gs_error *err)
{
    size_t cap = 4u << 20, len = 0;
    char *buf = gs_malloc(cap);
    if (!buf)
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory reading the vocabulary");
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.next_in = (Bytef *)gs_clip_vocab_gz;
    zs.avail_in = (uInt)(gs_clip_vocab_gz_end - gs_clip_vocab_gz);
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) {
        gs_free(buf);
        return gs_fail(err, GS_ERR_INTERNAL, "cannot inflate the embedded vocabulary");
    }
    int rc;
    do {
        if (len == cap) {
            char *nb = gs_realloc(buf, cap * 2);
            if (!nb) {
                inflateEnd(&zs);
                gs_free(buf);
                return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory reading the vocabulary");
            }
            buf = nb;
            cap *= 2;
        }
        zs.next_out = (Bytef *)buf + len;
        zs.avail_out = (uInt)(cap - len);
        rc = inflate(&zs, Z_NO_FLUSH);
        len = cap - zs.avail_out;
    } while (rc == Z_OK);
    inflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        gs_free(buf);
        return gs_fail(err, GS_ERR_INTERNAL, "the embedded vocabulary is corrupt");
    }
    *out = buf;
    *out_len = len;
    return GS_OK;
}

typedef struct rule {
    const char *a, *b, *ab; /* left, right, and the merged string (in a pool) */
    uint32_t a_len, b_len;
} rule;

static gs_status build_tables(clip_tokenizer *t, char *text, size_t len, gs_error *err)
{
    rule *rules = NULL;
    char *pool = NULL;
    uint32_t cp[256];
    int order[256];
    byte_symbols(cp, order);
    for (int i = 0; i < 256; i++)
        t->byte_id[order[i]] = i;

    /* the base symbols as UTF-8 strings: "c" and "c</w>" */
    static const size_t base_stride = 8;
    char *base = gs_malloc(512 * base_stride);
    str_map m = {0};
    m.mask = (1u << 17) - 1;
    m.keys = gs_calloc(m.mask + 1, sizeof *m.keys);
    m.lens = gs_calloc(m.mask + 1, sizeof *m.lens);
    m.ids = gs_calloc(m.mask + 1, sizeof *m.ids);
    t->pair_mask = (1u << 17) - 1;
    t->pairs = gs_calloc(t->pair_mask + 1, sizeof *t->pairs);
    gs_status st = GS_OK;
    if (!base || !m.keys || !m.lens || !m.ids || !t->pairs) {
        st = gs_fail(err, GS_ERR_NO_MEMORY, "out of memory building the vocabulary");
        goto out;
    }
    for (int i = 0; i < 256; i++) {
        uint8_t u8[4];
        int n = u8_uctomb(u8, cp[order[i]], 4);
        char *s = base + (size_t)i * base_stride, *sw = base + (size_t)(256 + i) * base_stride;
        memcpy(s, u8, (size_t)n);
        memcpy(sw, u8, (size_t)n);
        memcpy(sw + n, "</w>", 4);
        str_insert(&m, s, (size_t)n, i);
        str_insert(&m, sw, (size_t)n + 4, 256 + i);
    }
    /* merge rules: line 0 is a version header; rule r makes symbol 512 + r. Two
       passes, because a string made by two rules keeps the later id. */
    char *p = text, *end = text + len;
    char *nl = memchr(p, '\n', len);
    p = nl ? nl + 1 : end;
    rules = gs_malloc(N_MERGES * sizeof *rules);
    pool = gs_malloc(len);
    if (!rules || !pool) {
        st = gs_fail(err, GS_ERR_NO_MEMORY, "out of memory building the vocabulary");
        goto out;
    }
    size_t pool_used = 0;
    for (int r = 0; r < N_MERGES; r++) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        char *sp = eol ? memchr(p, ' ', (size_t)(eol - p)) : NULL;
        if (!eol || !sp) {
            st = gs_fail(err, GS_ERR_INTERNAL, "the embedded vocabulary ends at rule %d", r);
            goto out;
        }
        rule *ru = &rules[r];
        ru->a = p;
        ru->a_len = (uint32_t)(sp - p);
        ru->b = sp + 1;
        ru->b_len = (uint32_t)(eol - sp - 1);
        ru->ab = pool + pool_used;
        memcpy(pool + pool_used, ru->a, ru->a_len);
        memcpy(pool + pool_used + ru->a_len, ru->b, ru->b_len);
        pool_used += ru->a_len + ru->b_len;
        str_insert(&m, ru->ab, ru->a_len + ru->b_len, 512 + r);
        p = eol + 1;
    }
    for (int r = 0; r < N_MERGES; r++) {
        const rule *ru = &rules[r];
        int32_t a = str_find(&m, ru->a, ru->a_len), b = str_find(&m, ru->b, ru->b_len);
        int32_t ab = str_find(&m, ru->ab, ru->a_len + ru->b_len);
        if (a < 0 || b < 0 || ab < 0) {
            st = gs_fail(err, GS_ERR_INTERNAL, "vocabulary rule %d uses an unknown symbol", r);
            goto out;
        }
        pair_insert(t, a, b, r, ab);
    }
out:
    gs_free(rules);
    gs_free(pool);
    gs_free(base);
    gs_free(m.keys);
    gs_free(m.lens);
    gs_free(m.ids);
    return st;
}

gs_status clip_tokenizer_create(clip_tokenizer **out, gs_error *err)
{
    *out = NULL;
    clip_tokenizer *t = gs_calloc(1, sizeof *t);
    if (!t)
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    char *text = NULL;
    size_t len = 0;
    gs_status st = inflate_vocab(&text, &len, err);
    if (st == GS_OK)
        st = build_tables(t, text, len, err);
    gs_free(text);
    if (st != GS_OK) {
        clip_tokenizer_free(t);
        return st;
    }
    *out = t;
    return GS_OK;
}

void clip_tokenizer_free(clip_tokenizer *t)
{
    if (!t)
        return;
    gs_free(t->pairs);
    gs_free(t);
}

/* ---- BPE ---- */

typedef struct heap_item {
    int32_t rank;
    int32_t pos; /* index of the left symbol */
} heap_item;

typedef struct bpe_work {
    int32_t *sym;  /* [n] symbol id; -1 = merged away */
    int32_t *prev; /* [n] */
    int32_t *next; /* [n] */
    heap_item *heap;
    int heap_n;
} bpe_work;

static int item_less(heap_item a, heap_item b)
{
    return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos;
}

static void heap_push(bpe_work *w, heap_item it)
{
    int i = w->heap_n++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!item_less(it, w->heap[parent]))
            break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = it;
}

static heap_item heap_pop(bpe_work *w)
{
    heap_item top = w->heap[0], last = w->heap[--w->heap_n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= w->heap_n)
            break;
        if (c + 1 < w->heap_n && item_less(w->heap[c + 1], w->heap[c]))
            c++;
        if (!item_less(w->heap[c], last))
            break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (w->heap_n > 0)
        w->heap[i] = last;
    return top;
}

static void push_pair(const clip_tokenizer *t, bpe_work *w, int32_t left)
{
    int32_t right = w->next[left];
    if (left < 0 || right < 0)
        return;
    const pair_entry *pe = pair_find(t, w->sym[left], w->sym[right]);
    if (pe)
        heap_push(w, (heap_item){pe->rank, left});
}

/* Encodes one pre-token's bytes; appends ids to out (capacity checked by caller). */
static size_t bpe_word(const clip_tokenizer *t, bpe_work *w, const uint8_t *bytes, int32_t n,
                       int32_t *out)
{
    for (int32_t i = 0; i < n; i++) {
        w->sym[i] = t->byte_id[bytes[i]] + (i == n - 1 ? 256 : 0);
        w->prev[i] = i - 1;
        w->next[i] = i + 1 < n ? i + 1 : -1;
    }
    w->heap_n = 0;
    for (int32_t i = 0; i + 1 < n; i++)
        push_pair(t, w, i);
    while (w->heap_n > 0) {
        heap_item it = heap_pop(w);
        int32_t l = it.pos, r = w->sym[l] >= 0 ? w->next[l] : -1;
        if (r < 0)
            continue;
        const pair_entry *pe = pair_find(t, w->sym[l], w->sym[r]);
        if (!pe || pe->rank != it.rank)
            continue; /* stale: one side was merged since this entry was pushed */
        w->sym[l] = pe->merged;
        w->sym[r] = -1;
        w->next[l] = w->next[r];
        if (w->next[r] >= 0)
            w->prev[w->next[r]] = l;
        if (w->prev[l] >= 0)
            push_pair(t, w, w->prev[l]);
        push_pair(t, w, l);
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = w->next[i])
        out[k++] = w->sym[i];
    return k;
}

/* ---- pre-tokenizer (CLIP's pattern) ---- */

static int is_letter(uint32_t c)
{
    if (c < 0x80)
        return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return uc_is_general_category(c, UC_LETTER);
}

static int is_number(uint32_t c)
{
    if (c < 0x80)
        return c >= '0' && c <= '9';
    return uc_is_general_category(c, UC_NUMBER);
}

static int match_ascii(const uint32_t *u, size_t n, size_t i, const char *lit)
{
    size_t len = strlen(lit);
    if (i + len > n)
        return 0;
    for (size_t k = 0; k < len; k++)
        if (u[i + k] != (uint8_t)lit[k])
            return 0;
    return (int)len;
}

/* Length of the pre-token at u[i] (0 at whitespace); *special gets a special id or -1. */
static size_t next_piece(const uint32_t *u, size_t n, size_t i, int32_t *special)
{
    static const char *const contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    *special = -1;
    int len;
    if ((len = match_ascii(u, n, i, "<|startoftext|>"))) {
        *special = CLIP_BOS;
        return (size_t)len;
    }
    if ((len = match_ascii(u, n, i, "<|endoftext|>"))) {
        *special = CLIP_EOS;
        return (size_t)len;
    }
    for (size_t k = 0; k < sizeof contractions / sizeof contractions[0]; k++)
        if ((len = match_ascii(u, n, i, contractions[k])))
            return (size_t)len;
    size_t j = i;
    if (is_letter(u[i])) {
        while (j < n && is_letter(u[j]))
            j++;
        return j - i;
    }
    if (is_number(u[i]))
        return 1;
    while (j < n && !text_is_space(u[j]) && !is_letter(u[j]) && !is_number(u[j]))
        j++;
    return j - i;
}

gs_status clip_tokenize(const clip_tokenizer *t, const char *text, int32_t **ids, size_t *n_ids,
                        gs_error *err)
{
    *ids = NULL;
    *n_ids = 0;
    uint32_t *u = NULL;
    size_t n = 0;
    gs_status st = text_clean(text ? text : "", &u, &n, err);
    if (st != GS_OK)
        return st;
    /* each code point is at most 4 bytes and each byte at most one id */
    size_t cap = 4 * n + 1;
    int32_t *out = gs_malloc(cap * sizeof *out);
    uint8_t *bytes = gs_malloc(cap);
    bpe_work w = {0};
    w.sym = gs_malloc(cap * sizeof *w.sym);
    w.prev = gs_malloc(cap * sizeof *w.prev);
    w.next = gs_malloc(cap * sizeof *w.next);
    w.heap = gs_malloc(3 * cap * sizeof *w.heap); /* n-1 pairs + 2 per merge */
    if (!out || !bytes || !w.sym || !w.prev || !w.next || !w.heap) {
        st = gs_fail(err, GS_ERR_NO_MEMORY, "out of memory tokenizing");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (text_is_space(u[i])) {
            i++;
            continue;
        }
        int32_t special;
        size_t len = next_piece(u, n, i, &special);
        if (special >= 0) {
            out[k++] = special;
        } else {
            size_t nb = 0;
            for (size_t j = i; j < i + len; j++) {
                int m = u8_uctomb(bytes + nb, u[j], 4);
                nb += m > 0 ? (size_t)m : 0;
            }
            k += bpe_word(t, &w, bytes, (int32_t)nb, out + k);
        }
        i += len;
    }
    *ids = out;
    *n_ids = k;
    out = NULL;
out:
    gs_free(out);
    gs_free(bytes);
    gs_free(w.sym);
    gs_free(w.prev);
    gs_free(w.next);
    gs_free(w.heap);
    gs_free(u);
    return st;
}
