/*
 * arena - scratch memory for the intermediates of a forward pass.
 *
 * A bump allocator used in stack order (arena_mark / arena_release). When a
 * pass needs more than the reserved block, the excess comes from individual
 * allocations and the peak is remembered; the next arena_reset grows the block
 * to that peak once, so from the second pass on nothing is allocated.
 */
#ifndef GS_ARENA_H
#define GS_ARENA_H

#include <stddef.h>

#define ARENA_SPARES 16
#define ARENA_SPARE_BYTES ((size_t)256 << 20)

typedef struct arena_mark {
    size_t used;
    int n_extra;
} arena_mark;

typedef struct arena {
    unsigned char *base;
    size_t cap;
    size_t used;
    size_t extra_bytes; /* live bytes in extra blocks */
    size_t peak;        /* max of used + extra_bytes since the last reset */
    void **extra;       /* overflow blocks, freed on release */
    size_t *extra_size; /* mapped size of each (a reused spare can exceed the request) */
    size_t *extra_need; /* bytes requested of each: what the peak counts */
    int n_extra, cap_extra;
    /* released overflow blocks kept for reuse until the next reset: a pass that
       overflows (the first, or a VAE decode after UNet steps) would otherwise map,
       fault in and unmap tens of MB per layer. When none fits a new overflow, they
       are freed and the block's unused tail given back (gi_pages_release) before
       new pages are mapped: idle memory does not add to the peak. */
    void *spare[ARENA_SPARES];
    size_t spare_size[ARENA_SPARES];
    int n_spare;
    size_t spare_bytes;
} arena;

void arena_init(arena *a);
void arena_destroy(arena *a);
/* Starts a pass: frees overflow blocks and grows the block to the last peak.
   Returns 0, or -1 when growing failed (the arena stays usable). */
int arena_reset(arena *a);
/* 64-byte aligned; NULL when memory is exhausted. */
void *arena_alloc(arena *a, size_t bytes);
/* Same, for n floats. */
float *arena_floats(arena *a, size_t n);
arena_mark arena_get_mark(const arena *a);
void arena_release(arena *a, arena_mark m);

#endif
