/* blob_sweep - blobs without a job, found by asking the store about each job that has blobs. */
#include "queue/blob_sweep.h"

typedef struct sweep {
    blob_store *b;
    job_store *s;
    int removed;
    gs_status st; /* the first failure */
    svc_error *err;
} sweep;

static void check_job(void *user, const char *id)
{
    sweep *w = user;
    job_record r;
    svc_error err = {0};
    gs_status st = store_get(w->s, id, &r, &err);
    if (st == GS_OK) {
        job_record_clear(&r);
        return;
    }
    /* only "no such job" frees the blobs: a store that failed to answer says nothing */
    if (st == GS_ERR_INVALID_ARGUMENT && (st = blob_delete_job(w->b, id, &err)) == GS_OK) {
        w->removed++;
        return;
    }
    if (w->st == GS_OK)
        w->st = svc_fail(w->err, st, "%s", err.msg);
}

gs_status blob_sweep(blob_store *b, job_store *s, int *removed, svc_error *err)
{
    sweep w = {b, s, 0, GS_OK, err};
    gs_status st = blob_each_job(b, check_job, &w, err);
    *removed = w.removed;
    return st != GS_OK ? st : w.st;
}
