/* blob_store - engine choice by URL and dispatch through the engine's table. */
#include "queue/blob_store.h"

#include <string.h>

#include "queue/blob_store_private.h"

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
    for (size_t i = 0; i < sizeof engines / sizeof engines[0]; i++) {
        size_t n = strlen(engines[i].scheme);
        if (strncmp(url, engines[i].scheme, n) == 0)
            return engines[i].open(url + n, out, err);
    }
    const char *colon = strchr(url, ':'), *slash = strchr(url, '/');
    if (colon && (!slash || colon < slash) && colon > url)
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "blob store '%s': unknown scheme '%.*s'", url,
                        (int)(colon - url), url);
    return blob_open_files(url, out, err);
}

void blob_close(blob_store *b)
{
    if (b)
        b->ops->close(b);
}

static int index_ok(blob_kind kind, int index)
{
    return kind == BLOB_PREVIEW ? index == 0 : index >= 0 && index < BLOB_MAX_INDEX;
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
