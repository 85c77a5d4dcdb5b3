/* blob_store_private - what a blob engine implements; not for use outside src/queue. */
#ifndef GS_BLOB_STORE_PRIVATE_H
#define GS_BLOB_STORE_PRIVATE_H

#include "queue/blob_store.h"

typedef struct blob_ops {
    void (*close)(blob_store *b);
    gs_status (*put)(blob_store *b, const char *job_id, blob_kind kind, int index, const void *data,
                     size_t n, svc_error *err);
    gs_status (*get)(blob_store *b, const char *job_id, blob_kind kind, int index, size_t max,
                     unsigned char **data, size_t *n, svc_error *err);
    gs_status (*delete_job)(blob_store *b, const char *job_id, svc_error *err);
    int64_t (*bytes)(blob_store *b);
    gs_status (*recount)(blob_store *b, svc_error *err);
    /* job ids may repeat: blob_each_job passes each once */
    gs_status (*each_job)(blob_store *b, void (*fn)(void *user, const char *job_id), void *user,
                          svc_error *err);
} blob_ops;

/* Every engine's handle starts with this. */
struct blob_store {
    const blob_ops *ops;
};

gs_status blob_open_files(const char *dir, blob_store **out, svc_error *err);
/* url: the job store's postgres:// or postgresql:// URL (blob_pg.c) */
gs_status blob_open_pg(const char *url, blob_store **out, svc_error *err);

#endif
