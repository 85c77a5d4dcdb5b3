/* arena - stack-ordered scratch with one block sized by the previous peak. */
#include "compute/arena.h"

#include <string.h>

#include "common/alloc.h"

#define ALIGN 64

void arena_init(arena *a)
{
    memset(a, 0, sizeof *a);
}

static void free_spares(arena *a)
{
    for (int i = 0; i < a->n_spare; i++)
        gi_pages_free(a->spare[i], a->spare_size[i]);
    a->n_spare = 0;
    a->spare_bytes = 0;
}

static void free_extra_from(arena *a, int keep)
{
    while (a->n_extra > keep) {
        a->n_extra--;
        size_t size = a->extra_size[a->n_extra];
        void *p = a->extra[a->n_extra];
        a->extra_bytes -= a->extra_need[a->n_extra];
        if (a->n_spare < ARENA_SPARES && a->spare_bytes + size <= ARENA_SPARE_BYTES) {
            a->spare[a->n_spare] = p;
            a->spare_size[a->n_spare++] = size;
            a->spare_bytes += size;
        } else {
            gi_pages_free(p, size);
        }
    }
}

/* The smallest spare block of at least need bytes, taken off the list (its
   size in *size), or NULL. */
static void *take_spare(arena *a, size_t need, size_t *size)
{
    int best = -1;
    for (int i = 0; i < a->n_spare; i++)
        if (a->spare_size[i] >= need && (best < 0 || a->spare_size[i] < a->spare_size[best]))
            best = i;
    if (best < 0)
        return NULL;
    void *p = a->spare[best];
    *size = a->spare_size[best];
    a->spare_bytes -= *size;
    a->n_spare--;
    a->spare[best] = a->spare[a->n_spare];
    a->spare_size[best] = a->spare_size[a->n_spare];
    return p;
}

void arena_destroy(arena *a)
{
    free_extra_from(a, 0);
    free_spares(a);
    gi_pages_free(a->base, a->cap);
    gi_free(a->extra);
    gi_free(a->extra_size);
    gi_free(a->extra_need);
    memset(a, 0, sizeof *a);
}

int arena_reset(arena *a)
{
    free_extra_from(a, 0);
    free_spares(a);
    a->used = 0;
    if (a->peak > a->cap) {
        size_t want = (a->peak + ALIGN - 1) / ALIGN * ALIGN;
        unsigned char *nb = gi_pages_alloc(want);
        if (!nb)
            return -1;
        gi_pages_free(a->base, a->cap);
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
        void **ne = gi_realloc(a->extra, (size_t)nc * sizeof *ne);
        if (!ne)
            return NULL;
        a->extra = ne;
        size_t *ns = gi_realloc(a->extra_size, (size_t)nc * sizeof *ns);
        if (!ns)
            return NULL;
        a->extra_size = ns;
        size_t *nn = gi_realloc(a->extra_need, (size_t)nc * sizeof *nn);
        if (!nn)
            return NULL;
        a->extra_need = nn;
        a->cap_extra = nc;
    }
    size_t size = need;
    void *p = take_spare(a, need, &size);
    if (!p) {
        /* New pages: first what is resident and idle goes back, so that the
           peak is what the pass holds live. A VAE decode after UNet steps
           found the block sized by the steps (230 MB at 512x512) and spares
           of their layers behind its own 402 MB tail region. */
        free_spares(a);
        gi_pages_release(a->base + a->used, a->cap - a->used);
        p = gi_pages_alloc(need);
    }
    if (!p)
        return NULL;
    a->extra[a->n_extra] = p;
    a->extra_size[a->n_extra] = size;
    a->extra_need[a->n_extra] = need;
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
