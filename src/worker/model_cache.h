/*
 * model_cache - the models a worker keeps loaded, by name, under a byte
 * budget. A model costs the memory of its converted weights
 * (gs_model_info.weight_bytes). When a load would go over the budget the
 * least recently used models are freed first; a model in use (acquired and
 * not yet released) is never freed. Models idle longer than the idle limit
 * are freed by model_cache_unload_idle.
 *
 * Over budget: a model that alone is larger than the budget still loads;
 * everything else that is not in use is evicted first, and the cache then
 * holds just that model (over budget) until something else needs the room.
 * Likewise a model in use can keep the cache over budget while it is used.
 *
 * The cost of a model is known only once it is loaded, so before a load the
 * cache makes room for its last known cost (or its file size, a lower bound,
 * the first time) and trims again to the real cost afterwards.
 *
 * Not thread-safe: one worker thread drives it. Times are caller-supplied
 * milliseconds, so tests control the clock.
 */
#ifndef GS_MODEL_CACHE_H
#define GS_MODEL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "gesso.h"

typedef struct model_cache model_cache;

typedef struct model_cache_options {
    const char *models_dir; /* NAME loads DIR/NAME.safetensors */
    size_t budget_bytes;    /* 0 = no limit */
    int64_t idle_ms;        /* free models unused this long; 0 = never */
    /* Called after each load, eviction and idle unload (may be NULL). */
    void (*on_change)(void *user);
    void *user;
} model_cache_options;

/* Creates an empty cache loading models on eng (which must outlive it); NULL
   when out of memory. Free with model_cache_free, which frees every model. */
model_cache *model_cache_create(gs_engine *eng, const model_cache_options *o);
void model_cache_free(model_cache *c);

/* The model called name, loaded if needed, marked in use until released.
   On failure *out is NULL and errmsg says why (gs_engine_errmsg's text). */
gs_status model_cache_acquire(model_cache *c, const char *name, int64_t now_ms, gs_model **out,
                              char *errmsg, size_t errmsg_size);
/* Ends a use begun by model_cache_acquire; now_ms counts as its last use. */
void model_cache_release(model_cache *c, gs_model *m, int64_t now_ms);

/* Loads name without keeping it in use (worker start-up). */
gs_status model_cache_preload(model_cache *c, const char *name, int64_t now_ms, char *errmsg,
                              size_t errmsg_size);

/* Frees the models not in use whose last use is idle_ms or more before now_ms;
   returns how many. Does nothing when idle_ms is 0. */
int model_cache_unload_idle(model_cache *c, int64_t now_ms);

/* Number of loaded models, and their names, most recently used first (valid
   until the next call that loads or frees). */
int model_cache_count(const model_cache *c);
const char *model_cache_name(const model_cache *c, int i);
/* Bytes the loaded models' weights take. */
size_t model_cache_bytes(const model_cache *c);

#endif
