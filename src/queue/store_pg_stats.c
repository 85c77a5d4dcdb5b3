/*
 * store_pg_stats - the PostgreSQL engine's accounting over the job table:
 * counts by status and by model, queue positions, per-owner activity for
 * API-key limits, the finished jobs behind /v1/stats (summed by
 * store_stats.c), the bytes the tables take, and the purge that enforces
 * result retention.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_pg_private.h"

gs_status pgs_counts(job_store *js, const char *owner, int counts[5], svc_error *err)
{
    PGresult *r;
    gs_status st = pgs_query(pgs(js), err, "counting jobs", &r,
                             "SELECT status, count(*) FROM jobs WHERE ($1 IS NULL OR owner = $1)"
                             " GROUP BY status",
                             "s", owner);
    for (int i = 0; st == GS_OK && i < PQntuples(r); i++) {
        job_status k;
        if ((st = pgs_col_status(r, i, 0, &k, err)) == GS_OK)
            counts[k] = pgs_col_int(r, i, 1);
    }
    PQclear(r);
    return st;
}

/* Models in byte order (COLLATE "C"), as SQLite sorts them, whatever the
   database's locale. */
gs_status pgs_depth_by_model(job_store *js, const char *owner,
                             void (*fn)(void *user, const char *model, int queued, int running),
                             void *user, svc_error *err)
{
    PGresult *r;
    gs_status st = pgs_query(pgs(js), err, "counting the queue", &r,
                             "SELECT model, count(*) FILTER (WHERE status = 'queued'),"
                             " count(*) FILTER (WHERE status = 'running')"
                             " FROM jobs WHERE status IN ('queued', 'running')"
                             " AND ($1 IS NULL OR owner = $1)"
                             " GROUP BY model ORDER BY model COLLATE \"C\"",
                             "s", owner);
    for (int i = 0; st == GS_OK && i < PQntuples(r); i++)
        fn(user, pgs_text(r, i, 0), pgs_col_int(r, i, 1), pgs_col_int(r, i, 2));
    PQclear(r);
    return st;
}

gs_status pgs_queue_position(job_store *js, const char *id, int *position, svc_error *err)
{
    return pgs_int(
        pgs(js), err, "reading a queue position", position, NULL,
        "SELECT " PG_AHEAD_OF("j.priority",
                              "j.seq") " FROM jobs j WHERE j.id = $1 AND j.status = 'queued'",
        "s", id);
}

gs_status pgs_active_count(job_store *js, const char *owner, int *n, svc_error *err)
{
    return pgs_int(pgs(js), err, "counting a key's jobs", n, NULL,
                   "SELECT count(*) FROM jobs WHERE owner = $1 AND status IN ('queued', 'running')",
                   "s", owner);
}

gs_status pgs_stats(job_store *js, const char *owner, int64_t since_ms, int max_jobs,
                    job_stats *out, svc_error *err)
{
    PGresult *r;
    store_stats_acc acc = {0};
    gs_status st = pgs_query(pgs(js), err, "reading statistics", &r,
                             "SELECT status, megapixelsteps, created_ms, started_ms, finished_ms,"
                             " result FROM jobs WHERE finished_ms >= $1"
                             " AND status IN ('succeeded', 'failed', 'cancelled')"
                             " AND ($3 IS NULL OR owner = $3)"
                             " ORDER BY finished_ms DESC LIMIT greatest($2, 0)",
                             "Iis", since_ms, max_jobs, owner);
    job_status status;
    for (int i = 0; st == GS_OK && i < PQntuples(r); i++)
        if ((st = pgs_col_status(r, i, 0, &status, err)) == GS_OK)
            store_stats_add(&acc, status, pgs_col_double(r, i, 1), pgs_col_int64(r, i, 2),
                            pgs_col_int64(r, i, 3), pgs_col_int64(r, i, 4), pgs_text(r, i, 5));
    PQclear(r);
    store_stats_end(&acc, out);
    return st;
}

/* The tables with their indexes and out-of-line (TOAST) values: what the
   store's rows take in the database, wherever its files are. */
gs_status pgs_disk_bytes(job_store *js, int64_t *bytes, svc_error *err)
{
    PGresult *r;
    gs_status st = pgs_query(pgs(js), err, "reading the database size", &r,
                             "SELECT pg_total_relation_size('jobs')"
                             " + pg_total_relation_size('workers') + pg_total_relation_size('meta')"
                             " + pg_total_relation_size('blobs')",
                             "");
    if (st == GS_OK)
        *bytes = pgs_col_int64(r, 0, 0);
    PQclear(r);
    return st;
}

gs_status pgs_purge(job_store *js, int64_t before_ms, void (*fn)(void *user, const char *id),
                    void *user, int *n, svc_error *err)
{
    PGresult *r;
    gs_status st = pgs_query(pgs(js), err, "purging old jobs", &r,
                             "DELETE FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')"
                             " AND finished_ms < $1 RETURNING id",
                             "I", before_ms);
    if (st != GS_OK)
        return st;
    /* the rows are gone for good (the statement committed) before any file
       goes: a crash in between leaves orphan files, never jobs whose images
       are missing */
    *n = PQntuples(r);
    for (int i = 0; fn && i < *n; i++)
        fn(user, PQgetvalue(r, i, 0));
    PQclear(r);
    return GS_OK;
}
