/*
 * bpe - CLIP's byte-level BPE: the merge table and the merging of one word.
 *
 * Symbols are vocabulary ids from the start: a word's bytes map to the ids of
 * their GPT-2 bytes_to_unicode characters (the last one with "</w>"), and each
 * merge rule is a hash entry (left id, right id) -> (rank, merged id). Merging
 * follows CLIP's bpe() exactly - take the lowest-ranked adjacent pair, merge
 * every occurrence of it left to right, repeat - but with a heap and a linked
 * list, so a 100k-byte word costs O(n log n) instead of O(n^2).
 */
#ifndef GS_TEXT_BPE_H
#define GS_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct bpe_pair_slot {
    uint32_t key; /* left << 16 | right; UINT32_MAX when empty */
    int32_t rank;
    int32_t merged; /* vocabulary id of left+right */
} bpe_pair_slot;

typedef struct bpe_table {
    uint16_t byte_id[256]; /* id of a byte inside a word; +256 is the "</w>" form */
    bpe_pair_slot *slots;  /* [mask + 1] */
    size_t mask;
    int n_merges;
    int vocab_size; /* 512 byte symbols + merges; the special tokens come after */
} bpe_table;

/* A growable id list whose push latches an out-of-memory flag. */
typedef struct i32vec {
    int32_t *v; /* [n], capacity cap */
    size_t n, cap;
    int oom;
} i32vec;

void i32vec_push(i32vec *b, int32_t x);
void i32vec_free(i32vec *b);

/* Scratch space for bpe_encode_word, reused across words. */
typedef struct bpe_work {
    int32_t *sym, *prev, *next;    /* [cap] per-byte linked list of symbols */
    struct bpe_heap_item *heap;    /* [3 * cap] */
    struct bpe_heap_item *pending; /* [2 * cap] pairs made during one merge pass */
    size_t cap;
} bpe_work;

/* Builds the table from the merges file text (header line, then "a b" lines in
 * rank order); uses the first n_merges rules as CLIP does. */
gs_status bpe_table_build(bpe_table *t, const char *text, size_t len, int n_merges, gi_error *err);
void bpe_table_free(bpe_table *t);

/* Appends the ids of one pre-token (its n >= 1 UTF-8 bytes) to out. */
gs_status bpe_encode_word(const bpe_table *t, const uint8_t *bytes, size_t n, bpe_work *w,
                          i32vec *out, gi_error *err);
void bpe_work_free(bpe_work *w);

#endif
