/*
 * model_cache - loaded models by name, LRU under a byte budget. A handful of
 * models at most fit in memory, so entries live in one small array kept in
 * most-recently-used order (front = newest) and every search is linear.
 */
#include "worker/model_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct cache_entry {
    char *name;
    gs_model *model;
    size_t bytes;    /* gs_model_info.weight_bytes */
    int in_use;      /* acquisitions not yet released */
    int64_t last_ms; /* last acquire or release */
} cache_entry;

/* A model's cost from its last load, to make room before loading it again. */
typedef struct known_cost {
    char *name;
    size_t bytes;
} known_cost;

struct model_cache {
    gs_engine *eng;
    model_cache_options o;
    cache_entry *e; /* [n], most recently used first */
    int n, cap;
    size_t used; /* sum of e[].bytes */
    known_cost *known;
    int n_known, cap_known;
    /* resident bytes per file byte, the largest of the loads so far: a file
       never loaded is guessed at its size times this. A file's size alone is
       no guess on a bf16 engine, where an f16 checkpoint keeps about two thirds
       of its size (the VAE's encoder comes with the first image to encode, the
       token table stays mapped), nor on an f32 one, where it keeps twice it. */
    double bytes_per_file_byte;
};

model_cache *model_cache_create(gs_engine *eng, const model_cache_options *o)
{
    model_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->eng = eng;
    c->o = *o;
    return c;
}

void model_cache_free(model_cache *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++) {
        gs_model_free(c->e[i].model);
        free(c->e[i].name);
    }
    for (int i = 0; i < c->n_known; i++)
        free(c->known[i].name);
    free(c->e);
    free(c->known);
    free(c);
}

static void changed(model_cache *c)
{
    if (c->o.on_change)
        c->o.on_change(c->o.user);
}

static int find(const model_cache *c, const char *name)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->e[i].name, name) == 0)
            return i;
    return -1;
}

/* Moves entry i to the front (most recently used). */
static void touch(model_cache *c, int i)
{
    cache_entry e = c->e[i];
    memmove(&c->e[1], &c->e[0], (size_t)i * sizeof e);
    c->e[0] = e;
}

static void evict(model_cache *c, int i)
{
    gs_model_free(c->e[i].model);
    free(c->e[i].name);
    c->used -= c->e[i].bytes;
    memmove(&c->e[i], &c->e[i + 1], (size_t)(c->n - i - 1) * sizeof c->e[0]);
    c->n--;
    changed(c);
}

/* Evicts least recently used models not in use until need more bytes fit. */
static void make_room(model_cache *c, size_t need)
{
    if (c->o.budget_bytes == 0)
        return;
    while (c->used + need > c->o.budget_bytes) {
        int victim = -1;
        for (int i = c->n - 1; i >= 0 && victim < 0; i--)
            if (!c->e[i].in_use)
                victim = i;
        if (victim < 0)
            return; /* everything left is in use: go over budget rather than fail */
        evict(c, victim);
    }
}

static size_t *known_slot(model_cache *c, const char *name)
{
    for (int i = 0; i < c->n_known; i++)
        if (strcmp(c->known[i].name, name) == 0)
            return &c->known[i].bytes;
    return NULL;
}

/* Remembers name's cost; forgetting on out of memory only weakens a guess. */
static void remember_cost(model_cache *c, const char *name, size_t bytes)
{
    size_t *slot = known_slot(c, name);
    if (slot) {
        *slot = bytes;
        return;
    }
    if (c->n_known == c->cap_known) {
        int cap = c->cap_known ? c->cap_known * 2 : 8;
        known_cost *k = realloc(c->known, (size_t)cap * sizeof *k);
        if (!k)
            return;
        c->known = k;
        c->cap_known = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return;
    c->known[c->n_known++] = (known_cost){copy, bytes};
}

/* The room to make before loading name: its last cost, else its file size
   scaled as the loads so far were (unscaled before the first). */
static size_t expected_cost(model_cache *c, const char *path, const char *name)
{
    size_t *slot = known_slot(c, name);
    if (slot)
        return *slot;
    struct stat sb;
    if (stat(path, &sb) != 0 || sb.st_size <= 0)
        return 0;
    double scale = c->bytes_per_file_byte > 0 ? c->bytes_per_file_byte : 1.0;
    return (size_t)((double)sb.st_size * scale);
}

static gs_status load(model_cache *c, const char *name, int64_t now_ms, char *errmsg,
                      size_t errmsg_size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.safetensors", c->o.models_dir, name);
    if (c->n == c->cap) {
        int cap = c->cap ? c->cap * 2 : 4;
        cache_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
        if (!e) {
            snprintf(errmsg, errmsg_size, "out of memory");
            return GS_ERR_NO_MEMORY;
        }
        c->e = e;
        c->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        snprintf(errmsg, errmsg_size, "out of memory");
        return GS_ERR_NO_MEMORY;
    }
    make_room(c, expected_cost(c, path, name));
    gs_model *m = NULL;
    gs_status st = gs_model_load(c->eng, path, &m);
    if (st != GS_OK) {
        snprintf(errmsg, errmsg_size, "%s", gs_engine_errmsg(c->eng));
        free(copy);
        return st;
    }
    gs_model_info info;
    gs_model_get_info(m, &info);
    remember_cost(c, name, info.weight_bytes);
    if (info.file_bytes > 0) {
        double scale = (double)info.weight_bytes / (double)info.file_bytes;
        if (scale > c->bytes_per_file_byte)
            c->bytes_per_file_byte = scale;
    }
    memmove(&c->e[1], &c->e[0], (size_t)c->n * sizeof c->e[0]);
    c->e[0] = (cache_entry){copy, m, info.weight_bytes, 1, now_ms};
    c->n++;
    c->used += info.weight_bytes;
    make_room(c, 0); /* the guess was low: trim to the real cost (the new one is in use) */
    changed(c);
    return GS_OK;
}

gs_status model_cache_acquire(model_cache *c, const char *name, int64_t now_ms, gs_model **out,
                              char *errmsg, size_t errmsg_size)
{
    *out = NULL;
    int i = find(c, name);
    if (i >= 0) {
        touch(c, i);
        c->e[0].in_use++;
        c->e[0].last_ms = now_ms;
    } else {
        gs_status st = load(c, name, now_ms, errmsg, errmsg_size);
        if (st != GS_OK)
            return st;
    }
    *out = c->e[0].model;
    return GS_OK;
}

void model_cache_release(model_cache *c, gs_model *m, int64_t now_ms)
{
    for (int i = 0; i < c->n; i++)
        if (c->e[i].model == m && c->e[i].in_use > 0) {
            c->e[i].in_use--;
            c->e[i].last_ms = now_ms;
            /* a job may have grown the model (its VAE's encoder loads with the
               first job that encodes an image): its cost as it is now */
            gs_model_info info;
            gs_model_get_info(m, &info);
            if (info.weight_bytes != c->e[i].bytes) {
                c->used = c->used - c->e[i].bytes + info.weight_bytes;
                c->e[i].bytes = info.weight_bytes;
                remember_cost(c, c->e[i].name, info.weight_bytes);
                c->e[i].in_use++; /* it stays: the others make the room */
                make_room(c, 0);
                for (int k = 0; k < c->n; k++)
                    if (c->e[k].model == m)
                        c->e[k].in_use--;
                changed(c);
            }
            return;
        }
}

gs_status model_cache_preload(model_cache *c, const char *name, int64_t now_ms, char *errmsg,
                              size_t errmsg_size)
{
    gs_model *m;
    gs_status st = model_cache_acquire(c, name, now_ms, &m, errmsg, errmsg_size);
    if (st == GS_OK)
        model_cache_release(c, m, now_ms);
    return st;
}

int model_cache_unload_idle(model_cache *c, int64_t now_ms)
{
    if (c->o.idle_ms <= 0)
        return 0;
    int freed = 0;
    for (int i = c->n - 1; i >= 0; i--)
        if (!c->e[i].in_use && now_ms - c->e[i].last_ms >= c->o.idle_ms) {
            evict(c, i);
            freed++;
        }
    return freed;
}

int model_cache_count(const model_cache *c)
{
    return c->n;
}

const char *model_cache_name(const model_cache *c, int i)
{
    return i >= 0 && i < c->n ? c->e[i].name : NULL;
}

size_t model_cache_bytes(const model_cache *c)
{
    return c->used;
}
