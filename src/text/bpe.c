/*
 * bpe - merge table construction and heap-based merging (see bpe.h).
 *
 * Construction mirrors CLIP's SimpleTokenizer: vocab = the 256 byte characters,
 * the same with "</w>", then the concatenation of each merge; encoder maps a
 * string to its (last) index. A temporary string hash resolves each merge's two
 * halves and its result to ids; only the pair table is kept.
 *
 * Merging: CLIP's bpe() takes the minimum-rank bigram and merges all its
 * occurrences left to right in one pass before looking at the new pairs. Here
 * the heap is ordered by (rank, position); one pass pops every entry of the
 * current rank (new pairs never have that rank, since a merged symbol is longer
 * than both halves), and the pairs it creates are pushed only after the pass,
 * so a lower-ranked new pair cannot jump ahead of the remaining occurrences.
 * Stale heap entries are recognised by re-reading the two symbols.
 */
#include "text/bpe.h"

#include <string.h>

#include "common/alloc.h"

#define EMPTY_KEY UINT32_MAX

typedef struct bpe_heap_item {
    int32_t rank;
    int32_t pos; /* index of the left symbol's node */
    int32_t left, right;
} bpe_heap_item;

void i32vec_push(i32vec *b, int32_t x)
{
    if (b->oom)
        return;
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        int32_t *nv = ncap > ((size_t)-1) / 8 ? NULL : gi_realloc(b->v, ncap * sizeof(int32_t));
        if (!nv) {
            b->oom = 1;
            return;
        }
        b->v = nv;
        b->cap = ncap;
    }
    b->v[b->n++] = x;
}

void i32vec_free(i32vec *b)
{
    gi_free(b->v);
    memset(b, 0, sizeof *b);
}

/* ---- construction: byte alphabet ---- */

/* GPT-2's bytes_to_unicode order: printable Latin-1 bytes keep their code point,
 * the other 68 bytes get U+0100.. in byte order; vocab ids follow that order. */
static int byte_is_printable(int b)
{
    return (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
}

static void byte_alphabet(uint16_t byte_id[256], uint32_t char_of_id[256])
{
    int k = 0;
    for (int b = 0; b < 256; b++)
        if (byte_is_printable(b)) {
            byte_id[b] = (uint16_t)k;
            char_of_id[k++] = (uint32_t)b;
        }
    int extra = 0;
    for (int b = 0; b < 256; b++)
        if (!byte_is_printable(b)) {
            byte_id[b] = (uint16_t)k;
            char_of_id[k++] = 256u + (uint32_t)extra++;
        }
}

/* ---- construction: temporary string -> id hash ---- */

typedef struct str_slot {
    const char *s; /* NULL when empty */
    uint32_t len;
    int32_t id;
} str_slot;

typedef struct str_map {
    str_slot *slots;
    size_t mask;
} str_map;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Inserts or overwrites (a later vocabulary entry wins, as in a Python dict). */
static void str_map_put(str_map *m, const char *s, size_t n, int32_t id)
{
    size_t i = (size_t)hash_bytes(s, n) & m->mask;
    while (m->slots[i].s && !(m->slots[i].len == n && memcmp(m->slots[i].s, s, n) == 0))
        i = (i + 1) & m->mask;
    m->slots[i].s = s;
    m->slots[i].len = (uint32_t)n;
    m->slots[i].id = id;
}

static int32_t str_map_get(const str_map *m, const char *s, size_t n)
{
    size_t i = (size_t)hash_bytes(s, n) & m->mask;
    while (m->slots[i].s) {
        if (m->slots[i].len == n && memcmp(m->slots[i].s, s, n) == 0)
            return m->slots[i].id;
        i = (i + 1) & m->mask;
    }
    return -1;
}

static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

/* ---- construction: pair table ---- */

static size_t pair_hash(uint32_t key, size_t mask)
{
    return (size_t)((key * 2654435761u) ^ (key >> 15)) & mask;
}

static void pair_put(bpe_table *t, uint32_t key, int32_t rank, int32_t merged)
{
    size_t i = pair_hash(key, t->mask);
    while (t->slots[i].key != EMPTY_KEY && t->slots[i].key != key)
        i = (i + 1) & t->mask;
    t->slots[i].key = key;
    t->slots[i].rank = rank;
    t->slots[i].merged = merged;
}

static const bpe_pair_slot *pair_get(const bpe_table *t, int32_t left, int32_t right)
{
    uint32_t key = (uint32_t)left << 16 | (uint32_t)right;
    size_t i = pair_hash(key, t->mask);
    while (t->slots[i].key != EMPTY_KEY) {
        if (t->slots[i].key == key)
            return &t->slots[i];
        i = (i + 1) & t->mask;
    }
    return NULL;
}

typedef struct merge_line {
    const char *a, *b;
    uint32_t alen, blen;
} merge_line;

/* Splits the merges text: skips the "#version" header, then n lines "a b". */
static gs_status split_merges(const char *text, size_t len, int n, merge_line *lines, gi_error *err)
{
    const char *p = memchr(text, '\n', len);
    if (!p)
        return gi_fail(err, GS_ERR_FORMAT, "CLIP merges: no header line");
    const char *end = text + len;
    p++;
    for (int i = 0; i < n; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return gi_fail(err, GS_ERR_FORMAT, "CLIP merges: %d rules, need %d", i, n);
        const char *sp = memchr(p, ' ', (size_t)(nl - p));
        if (!sp || sp == p || sp + 1 == nl || memchr(sp + 1, ' ', (size_t)(nl - sp - 1)))
            return gi_fail(err, GS_ERR_FORMAT, "CLIP merges: rule %d is not \"a b\"", i);
        lines[i].a = p;
        lines[i].alen = (uint32_t)(sp - p);
        lines[i].b = sp + 1;
        lines[i].blen = (uint32_t)(nl - sp - 1);
        p = nl + 1;
    }
    return GS_OK;
}

gs_status bpe_table_build(bpe_table *t, const char *text, size_t len, int n_merges, gi_error *err)
{
    gs_status st = GS_OK;
    merge_line *lines = NULL;
    str_map map = {0};
    char *arena = NULL; /* the strings of the first 512 ids, then every a+b */
    memset(t, 0, sizeof *t);
    t->n_merges = n_merges;
    t->vocab_size = 512 + n_merges;
    if (n_merges <= 0 || t->vocab_size > 65535)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "CLIP merges: bad rule count %d", n_merges);

    lines = gi_calloc((size_t)n_merges, sizeof *lines);
    map.mask = pow2_at_least(2 * (size_t)t->vocab_size) - 1;
    map.slots = gi_calloc(map.mask + 1, sizeof *map.slots);
    arena = gi_malloc(512 * 6 + len);
    t->mask = pow2_at_least(2 * (size_t)n_merges) - 1;
    t->slots = gi_malloc((t->mask + 1) * sizeof *t->slots);
    if (!lines || !map.slots || !arena || !t->slots) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory building the CLIP merge table");
        goto out;
    }
    memset(t->slots, 0xFF, (t->mask + 1) * sizeof *t->slots);
    st = split_merges(text, len, n_merges, lines, err);
    if (st != GS_OK)
        goto out;

    uint32_t char_of_id[256];
    byte_alphabet(t->byte_id, char_of_id);
    char *w = arena;
    for (int k = 0; k < 512; k++) {
        uint32_t c = char_of_id[k & 255];
        char *s = w;
        if (c < 0x80) {
            *w++ = (char)c;
        } else { /* all byte characters are below U+0800 */
            *w++ = (char)(0xC0 | (c >> 6));
            *w++ = (char)(0x80 | (c & 0x3F));
        }
        if (k >= 256) {
            memcpy(w, "</w>", 4);
            w += 4;
        }
        str_map_put(&map, s, (size_t)(w - s), k);
    }
    w = arena + 512 * 6;
    for (int i = 0; i < n_merges; i++) {
        char *s = w;
        memcpy(w, lines[i].a, lines[i].alen);
        memcpy(w + lines[i].alen, lines[i].b, lines[i].blen);
        w += lines[i].alen + lines[i].blen;
        str_map_put(&map, s, (size_t)(w - s), 512 + i);
    }
    w = arena + 512 * 6;
    for (int i = 0; i < n_merges; i++) {
        int32_t a = str_map_get(&map, lines[i].a, lines[i].alen);
        int32_t b = str_map_get(&map, lines[i].b, lines[i].blen);
        if (a < 0 || b < 0) {
            st = gi_fail(err, GS_ERR_FORMAT, "CLIP merges: rule %d uses an unknown symbol", i);
            goto out;
        }
        size_t mlen = lines[i].alen + (size_t)lines[i].blen;
        int32_t merged = str_map_get(&map, w, mlen); /* the a+b written above */
        w += mlen;
        pair_put(t, (uint32_t)a << 16 | (uint32_t)b, i, merged);
    }
out:
    gi_free(lines);
    gi_free(map.slots);
    gi_free(arena);
    if (st != GS_OK)
        bpe_table_free(t);
    return st;
}

void bpe_table_free(bpe_table *t)
{
    if (!t)
        return;
    gi_free(t->slots);
    t->slots = NULL;
}

/* ---- merging ---- */

static int heap_less(const bpe_heap_item *a, const bpe_heap_item *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_heap_item *h, size_t *n, bpe_heap_item it)
{
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(&it, &h[parent]))
            break;
        h[i] = h[parent];
        i = parent;
    }
    h[i] = it;
}

static bpe_heap_item heap_pop(bpe_heap_item *h, size_t *n)
{
    bpe_heap_item top = h[0];
    bpe_heap_item last = h[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c]))
            c++;
        if (!heap_less(&h[c], &last))
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = last;
    return top;
}

static gs_status work_reserve(bpe_work *w, size_t n, gi_error *err)
{
    if (n <= w->cap)
        return GS_OK;
    size_t cap = w->cap ? w->cap : 64;
    while (cap < n)
        cap *= 2;
    bpe_work nw = {0};
    nw.cap = cap;
    nw.sym = gi_malloc(cap * sizeof(int32_t));
    nw.prev = gi_malloc(cap * sizeof(int32_t));
    nw.next = gi_malloc(cap * sizeof(int32_t));
    nw.heap = gi_malloc(3 * cap * sizeof(bpe_heap_item));
    nw.pending = gi_malloc(2 * cap * sizeof(bpe_heap_item));
    if (!nw.sym || !nw.prev || !nw.next || !nw.heap || !nw.pending) {
        bpe_work_free(&nw);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory for a %zu-byte word", n);
    }
    bpe_work_free(w);
    *w = nw;
    return GS_OK;
}

void bpe_work_free(bpe_work *w)
{
    gi_free(w->sym);
    gi_free(w->prev);
    gi_free(w->next);
    gi_free(w->heap);
    gi_free(w->pending);
    memset(w, 0, sizeof *w);
}

/* Queues the pair starting at node i if it is a merge rule. */
static void add_pair(const bpe_table *t, const bpe_work *w, int32_t i, bpe_heap_item *dst,
                     size_t *n, int as_heap)
{
    if (i < 0 || w->next[i] < 0)
        return;
    int32_t j = w->next[i];
    const bpe_pair_slot *p = pair_get(t, w->sym[i], w->sym[j]);
    if (!p)
        return;
    bpe_heap_item it = {p->rank, i, w->sym[i], w->sym[j]};
    if (as_heap)
        heap_push(dst, n, it);
    else
        dst[(*n)++] = it;
}

gs_status bpe_encode_word(const bpe_table *t, const uint8_t *bytes, size_t n, bpe_work *w,
                          i32vec *out, gi_error *err)
{
    if (n == 0)
        return GS_OK;
    if (n > INT32_MAX / 4)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "word of %zu bytes is too long", n);
    gs_status st = work_reserve(w, n, err);
    if (st != GS_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        w->sym[i] = t->byte_id[bytes[i]] + (i + 1 == n ? 256 : 0);
        w->prev[i] = (int32_t)i - 1;
        w->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t nheap = 0, npending = 0;
    for (size_t i = 0; i + 1 < n; i++)
        add_pair(t, w, (int32_t)i, w->heap, &nheap, 1);

    while (nheap > 0) {
        int32_t rank = w->heap[0].rank;
        npending = 0;
        while (nheap > 0 && w->heap[0].rank == rank) {
            bpe_heap_item it = heap_pop(w->heap, &nheap);
            int32_t i = it.pos, j = w->next[i];
            if (w->sym[i] != it.left || j < 0 || w->sym[j] != it.right)
                continue; /* stale: a neighbour changed since it was queued */
            const bpe_pair_slot *p = pair_get(t, it.left, it.right);
            w->sym[i] = p->merged;
            w->sym[j] = -1;
            w->next[i] = w->next[j];
            if (w->next[j] >= 0)
                w->prev[w->next[j]] = i;
            add_pair(t, w, w->prev[i], w->pending, &npending, 0);
            add_pair(t, w, i, w->pending, &npending, 0);
        }
        for (size_t k = 0; k < npending; k++)
            heap_push(w->heap, &nheap, w->pending[k]);
    }
    for (int32_t i = 0; i >= 0; i = w->next[i])
        i32vec_push(out, w->sym[i]);
    if (out->oom)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory storing token ids");
    return GS_OK;
}
