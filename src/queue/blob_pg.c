/*
 * blob_pg - blobs in the PostgreSQL database of the job store (its blobs
 * table, schema 3): a worker on another machine needs the database's URL and
 * its models, nothing else, and any front end serves any job's images. One
 * row per blob, put with an upsert (a reader sees the old bytes or the new,
 * never half) and read in binary; the bytes travel as they are, never
 * escaped.
 *
 * One connection per handle, behind a mutex: the blob store is shared by a
 * server's HTTP threads, and a libpq connection serves one at a time. The
 * bytes held are counted with the database (store_disk_bytes), so the
 * running total here is 0.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "queue/blob_store_private.h"
#include "queue/store_pg_private.h"

/* A job's inputs are put before its row exists (store_submit_as): blobs this
   young are not listed for a sweep, so a front end starting on another
   machine never takes the inputs of a submit in flight elsewhere. */
#define SWEEP_MIN_AGE_MS (10 * 60 * 1000)

typedef struct blob_pg {
    blob_store base;
    job_store *store; /* a PostgreSQL store: its connection and schema */
    pthread_mutex_t mu;
} blob_pg;

static pg_store *conn_of(blob_store *b)
{
    return pgs(((blob_pg *)b)->store);
}

static void pg_close(blob_store *b)
{
    blob_pg *p = (blob_pg *)b;
    store_close(p->store);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static gs_status pg_put(blob_store *b, const char *id, blob_kind kind, int index, const void *data,
                        size_t n, svc_error *err)
{
    if (!job_id_ok(id))
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "bad job id for a blob");
    if (n > (size_t)1 << 30) /* a bytea holds at most 1 GiB */
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "a blob of %zu bytes is too large", n);
    blob_pg *p = (blob_pg *)b;
    pthread_mutex_lock(&p->mu);
    gs_status st = pgs_run(conn_of(b), err, "storing a blob", NULL,
                           "INSERT INTO blobs (job_id, kind, idx, put_ms, data)"
                           " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, kind, idx)"
                           " DO UPDATE SET data = excluded.data, put_ms = excluded.put_ms",
                           "siiIb", id, (int)kind, index, store_clock_ms(), data, (int)n);
    pthread_mutex_unlock(&p->mu);
    return st;
}

static gs_status pg_get(blob_store *b, const char *id, blob_kind kind, int index, size_t max,
                        unsigned char **data, size_t *n, svc_error *err)
{
    blob_pg *p = (blob_pg *)b;
    PGresult *r;
    pthread_mutex_lock(&p->mu);
    /* the length first, so that a blob past max is refused without being read */
    gs_status st = pgs_query_binary(
        conn_of(b), err, "reading a blob", &r,
        "SELECT CASE WHEN octet_length(data) <= $4 THEN data END, octet_length(data)::bigint"
        " FROM blobs WHERE job_id = $1 AND kind = $2 AND idx = $3",
        "siiI", id, (int)kind, index, (int64_t)(max < INT64_MAX ? max : INT64_MAX));
    pthread_mutex_unlock(&p->mu);
    if (st != GS_OK)
        return st;
    if (PQntuples(r) == 0) {
        st = svc_fail(err, GS_ERR_INVALID_ARGUMENT, "no such blob");
    } else if (PQgetisnull(r, 0, 0) || PQgetlength(r, 0, 0) == 0) {
        st = svc_fail(err, GS_ERR_IO, "the blob of job %s is empty or larger than %zu bytes", id,
                      max);
    } else {
        size_t k = (size_t)PQgetlength(r, 0, 0);
        if (!(*data = malloc(k))) {
            st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory reading a blob");
        } else {
            memcpy(*data, PQgetvalue(r, 0, 0), k);
            *n = k;
        }
    }
    PQclear(r);
    return st;
}

static gs_status pg_delete_job(blob_store *b, const char *id, svc_error *err)
{
    blob_pg *p = (blob_pg *)b;
    pthread_mutex_lock(&p->mu);
    gs_status st = pgs_run(conn_of(b), err, "deleting blobs", NULL,
                           "DELETE FROM blobs WHERE job_id = $1", "s", id);
    pthread_mutex_unlock(&p->mu);
    return st;
}

static int64_t pg_bytes(blob_store *b)
{
    (void)b;
    return 0; /* in store_disk_bytes, with the rest of the database */
}

static gs_status pg_recount(blob_store *b, svc_error *err)
{
    (void)b, (void)err;
    return GS_OK;
}

static gs_status pg_each_job(blob_store *b, void (*fn)(void *user, const char *job_id), void *user,
                             svc_error *err)
{
    blob_pg *p = (blob_pg *)b;
    PGresult *r;
    pthread_mutex_lock(&p->mu);
    gs_status st = pgs_query(conn_of(b), err, "listing the blobs' jobs", &r,
                             "SELECT DISTINCT job_id FROM blobs WHERE put_ms < $1", "I",
                             store_clock_ms() - SWEEP_MIN_AGE_MS);
    pthread_mutex_unlock(&p->mu);
    if (st != GS_OK)
        return st;
    for (int i = 0; i < PQntuples(r); i++)
        fn(user, PQgetvalue(r, i, 0));
    PQclear(r);
    return GS_OK;
}

static const blob_ops ops = {
    .close = pg_close,
    .put = pg_put,
    .get = pg_get,
    .delete_job = pg_delete_job,
    .bytes = pg_bytes,
    .recount = pg_recount,
    .each_job = pg_each_job,
};

gs_status blob_open_pg(const char *url, blob_store **out, svc_error *err)
{
    *out = NULL;
    blob_pg *p = calloc(1, sizeof *p);
    if (!p)
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    gs_status st = store_open(url, &p->store, err); /* makes the schema, blobs table included */
    if (st != GS_OK) {
        free(p);
        return st;
    }
    pthread_mutex_init(&p->mu, NULL);
    p->base.ops = &ops;
    *out = &p->base;
    return GS_OK;
}
