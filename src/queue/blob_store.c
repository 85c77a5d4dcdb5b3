/* blob_store - engine choice by URL and dispatch through the engine's table. */
#include "queue/blob_store.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue/blob_store_private.h"
#include "queue/store.h"

typedef struct blob_engine {
    const char *scheme; /* URL prefix, "" for a plain path */
    gs_status (*open)(const char *rest, blob_store **out, svc_error *err);
} blob_engine;

static const blob_engine engines[] = {
    {"file://", blob_open_files},
    {"file:", blob_open_files},
};

gs_status blob_open(const char *url, blob_store **out, svc_error *err)
{
    *out = NULL;
    /* in the job store's PostgreSQL database, reached by the store's URL */
    if (strncasecmp(url, "postgres://", 11) == 0 || strncasecmp(url, "postgresql://", 13) == 0)
        return blob_open_pg(url, out, err);
    for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++) {
        size_t n = strlen(engines[i].scheme);
        if (strncmp(url, engines[i].scheme, n) == 0)
            return engines[i].open(url + n, out, err);
    }
    const char *colon = strchr(url, ':'), *slash = strchr(url, '/');
    if (colon && (!slash || colon < slash) &&
        colon > url) /* the scheme alone: a URL may hold a password */
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "blob store: unknown scheme '%.*s'",
                        (int)(colon - url < 32 ? colon - url : 32), url);
    return blob_open_files(url, out, err);
}

void blob_close(blob_store *b)
{
    if (b)
        b->ops->close(b);
}

static int index_ok(blob_kind kind, int index)
{
    switch (kind) {
    case BLOB_PREVIEW: return index == 0;
    case BLOB_INPUT: return index >= 0 && index < BLOB_MAX_INPUTS;
    case BLOB_IMAGE: return index >= 0 && index < BLOB_MAX_INDEX;
    }
    return 0;
}

gs_status blob_put(blob_store *b, const char *job_id, blob_kind kind, int index, const void *data,
                   size_t n, svc_error *err)
{
    if (!index_ok(kind, index))
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "blob index %d out of range", index);
    return b->ops->put(b, job_id, kind, index, data, n, err);
}

gs_status blob_get(blob_store *b, const char *job_id, blob_kind kind, int index, size_t max,
                   unsigned char **data, size_t *n, svc_error *err)
{
    *data = NULL;
    *n = 0;
    if (!index_ok(kind, index))
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "no blob %d", index);
    return b->ops->get(b, job_id, kind, index, max, data, n, err);
}

gs_status blob_delete_job(blob_store *b, const char *job_id, svc_error *err)
{
    return b->ops->delete_job(b, job_id, err);
}

int64_t blob_bytes(blob_store *b)
{
    return b->ops->bytes(b);
}

gs_status blob_recount(blob_store *b, svc_error *err)
{
    return b->ops->recount(b, err);
}

/* The ids an engine reports, gathered before any is passed on, so that fn may
   delete blobs without disturbing the engine's walk. */
typedef struct id_list {
    char (*ids)[JOB_ID_LEN + 1];
    size_t n, cap;
    int no_memory;
} id_list;

static void gather(void *user, const char *id)
{
    id_list *l = user;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 256;
        void *grown = realloc(l->ids, cap * sizeof l->ids[0]);
        if (!grown) {
            l->no_memory = 1;
            return;
        }
        l->ids = grown;
        l->cap = cap;
    }
    memcpy(l->ids[l->n++], id, JOB_ID_LEN + 1);
}

static int by_id(const void *a, const void *b)
{
    return memcmp(a, b, JOB_ID_LEN);
}

gs_status blob_each_job(blob_store *b, void (*fn)(void *user, const char *job_id), void *user,
                        svc_error *err)
{
    id_list l = {0};
    gs_status st = b->ops->each_job(b, gather, &l, err);
    if (st == GS_OK && l.no_memory)
        st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory listing the blobs' jobs");
    if (st == GS_OK && l.n > 0) {
        qsort(l.ids, l.n, sizeof l.ids[0], by_id);
        for (size_t i = 0; i < l.n; i++)
            if (i == 0 || by_id(l.ids[i - 1], l.ids[i]) != 0)
                fn(user, l.ids[i]);
    }
    free(l.ids);
    return st;
}
