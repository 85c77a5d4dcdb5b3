/* arena - stack-ordered scratch with one block sized by the previous peak. */
#include "compute/arena.h"

#include <string.h>

#include "common/alloc.h"

#define ALIGN 64

void arena_init(arena *a)
{
    memset(a, 0, sizeof *a);
}

static void free_extra_from(arena *a, int keep)
{
    while (a->n_extra > keep) {
        a->n_extra--;
        a->extra_bytes -= a->extra_size[a->n_extra];
        gs_pages_free(a->extra[a->n_extra], a->extra_size[a->n_extra]);
    }
}

void arena_destroy(arena *a)
{
    free_extra_from(a, 0);
    gs_pages_free(a->base, a->cap);
    gs_free(a->extra);
    gs_free(a->extra_size);
    memset(a, 0, sizeof *a);
}

int arena_reset(arena *a)
{
    free_extra_from(a, 0);
    a->used = 0;
    if (a->peak > a->cap) {
        size_t want = (a->peak + ALIGN - 1) / ALIGN * ALIGN;
        unsigned char *nb = gs_pages_alloc(want);
        if (!nb)
            return -1;
        gs_pages_free(a->base, a->cap);
        a->base = nb;
        a->cap = want;
    }
    a->peak = 0;
    return 0;
}

static void note_peak(arena *a)
{
    size_t live = a->used + a->extra_bytes;
    if (live > a->peak)
        a->peak = live;
}

void *arena_alloc(arena *a, size_t bytes)
{
    size_t need = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (need < bytes)
        return NULL;
    if (a->cap - a->used >= need && a->n_extra == 0) {
        void *p = a->base + a->used;
        a->used += need;
        note_peak(a);
        return p;
    }
    /* Overflow: an individual block, counted at its place in the stack. */
    if (a->n_extra == a->cap_extra) {
        int nc = a->cap_extra ? 2 * a->cap_extra : 16;
        void **ne = gs_realloc(a->extra, (size_t)nc * sizeof *ne);
        if (!ne)
            return NULL;
        a->extra = ne;
        size_t *ns = gs_realloc(a->extra_size, (size_t)nc * sizeof *ns);
        if (!ns)
            return NULL;
        a->extra_size = ns;
        a->cap_extra = nc;
    }
    void *p = gs_pages_alloc(need);
    if (!p)
        return NULL;
    a->extra[a->n_extra] = p;
    a->extra_size[a->n_extra] = need;
    a->n_extra++;
    a->extra_bytes += need;
    note_peak(a);
    return p;
}

float *arena_floats(arena *a, size_t n)
{
    if (n > ((size_t)-1) / sizeof(float))
        return NULL;
    return arena_alloc(a, n * sizeof(float));
}

arena_mark arena_get_mark(const arena *a)
{
    return (arena_mark){a->used, a->n_extra};
}

void arena_release(arena *a, arena_mark m)
{
    free_extra_from(a, m.n_extra);
    a->used = m.used;
}
