/*
 * native_inputs - a submit's inputs into the blob store and the store cap.
 * The bytes held are the blob store's running total (kept by every process
 * that puts or deletes, read without a walk) plus the job database's files,
 * so the check costs a read and two stats per submit. Two submits at once may
 * each pass the check and together carry the store past the cap by one
 * job's inputs; results of jobs already queued may carry it past too: the
 * cap keeps the disk from filling, not the last byte.
 */
#include "api/native_inputs.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>

#include "job/job_inputs.h"
#include "queue/blob_sweep.h"
#include "support/log.h"

/* The blob store's bytes plus the job database's (store: the calling
   thread's connection, NULL when it could not be opened). */
static gs_status bytes_held(server *s, job_store *store, int64_t *held, svc_error *err)
{
    int64_t db = 0;
    gs_status st = store ? store_disk_bytes(store, &db, err) : GS_ERR_IO;
    *held = blob_bytes(s->blobs) + db;
    return st;
}

static double mib(int64_t n)
{
    return (double)n / (1 << 20);
}

int native_inputs_put(http_request *r, job_spec *spec, char **norm, char id[JOB_ID_LEN + 1],
                      enum MHD_Result *ret)
{
    server *s = r->s;
    svc_error err = {0};
    *norm = NULL;
    store_new_id(server_now_ms(), id);
    size_t need = job_inputs_bytes(spec);
    if (s->max_store_bytes > 0) {
        int64_t held;
        if (bytes_held(s, server_store(s, &err), &held, &err) != GS_OK) {
            *ret = http_error(r, 503, "store_unavailable", err.msg);
            return -1;
        }
        if (held + (int64_t)need > s->max_store_bytes) {
            char msg[200];
            snprintf(
                msg, sizeof msg,
                "the job store holds %.1f MiB of its %.1f MiB; this job's inputs need %.1f MiB",
                mib(held), mib(s->max_store_bytes), mib((int64_t)need));
            *ret = http_error(r, 507, "store_full", msg);
            return -1;
        }
    }
    gs_status st = need > 0 ? job_inputs_put(s->blobs, id, spec, &err) : GS_OK;
    if (st != GS_OK) {
        log_error("%s", err.msg); /* names files: for the operator, not the client */
        *ret = st == GS_ERR_NO_MEMORY
                   ? http_error(r, 500, "internal", "out of memory")
                   : http_error(r, 503, "store_unavailable", "the job's inputs cannot be stored");
        return -1;
    }
    if (!(*norm = job_spec_to_json(spec))) {
        native_inputs_drop(r, id);
        *ret = http_error(r, 500, "internal", "out of memory");
        return -1;
    }
    return 0;
}

void native_inputs_drop(http_request *r, const char *id)
{
    svc_error err = {0};
    if (blob_delete_job(r->s->blobs, id, &err) != GS_OK)
        log_warn("%s", err.msg); /* the next start's sweep takes them */
}

void native_inputs_start(server *s, job_store *own)
{
    const serve_options *o = s->o;
    svc_error err = {0};
    int swept = 0;
    /* swept first, so that the count is of what stays */
    if (blob_sweep(s->blobs, own, &swept, &err) != GS_OK)
        log_warn("%s", err.msg);
    if (swept > 0)
        log_info("deleted the blobs of %d jobs the store does not have", swept);
    if (blob_recount(s->blobs, &err) != GS_OK)
        log_warn("%s", err.msg);
    s->max_store_bytes = o->max_store_bytes > 0 ? o->max_store_bytes : 0;
    if (o->max_store_bytes >= 0)
        return;
    int64_t held = 0;
    struct statvfs fs;
    if (bytes_held(s, own, &held, &err) != GS_OK || statvfs(o->data_dir, &fs) != 0) {
        log_warn("no store cap: cannot tell the space %s holds or has free", o->data_dir);
        return;
    }
    int64_t free_bytes = (int64_t)fs.f_bavail * (int64_t)fs.f_frsize;
    s->max_store_bytes = held + free_bytes / 2;
    log_info("store cap %" PRId64 " bytes (%.1f MiB held plus half the %.1f MiB free in %s)",
             s->max_store_bytes, mib(held), mib(free_bytes), o->data_dir);
}
