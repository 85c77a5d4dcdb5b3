/*
 * store_sqlite_stats - the SQLite engine's accounting over the job table:
 * per-owner activity for API-key limits, queue positions, the finished jobs
 * behind /v1/stats (summed by store_stats.c), the bytes on disk behind the
 * store cap, and the purge that enforces result retention.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "queue/store_sqlite_private.h"

gs_status sq_active_count(job_store *js, const char *owner, int *n, svc_error *err)
{
    return sql_int(sq(js), err, "counting a key's jobs", n, NULL,
                   "SELECT count(*) FROM jobs WHERE owner = ?1 AND status IN ('queued', 'running')",
                   "s", owner);
}

gs_status sq_queue_position(job_store *js, const char *id, int *position, svc_error *err)
{
    return sql_int(sq(js), err, "reading a queue position", position, NULL,
                   "SELECT (SELECT count(*) FROM jobs o WHERE o.status = 'queued' AND"
                   " (o.priority > j.priority OR (o.priority = j.priority AND o.seq < j.seq)))"
                   " FROM jobs j WHERE j.id = ?1 AND j.status = 'queued'",
                   "s", id);
}

gs_status sq_stats(job_store *js, const char *owner, int64_t since_ms, int max_jobs, job_stats *out,
                   svc_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q;
    int row;
    store_stats_acc acc = {0};
    gs_status st = sql_prepare(s, err, "reading statistics", &q,
                               "SELECT status, megapixelsteps, created_ms, started_ms, finished_ms,"
                               " result FROM jobs WHERE finished_ms >= ?1"
                               " AND status IN ('succeeded', 'failed', 'cancelled')"
                               " AND (?3 IS NULL OR owner = ?3)"
                               " ORDER BY finished_ms DESC LIMIT ?2",
                               "Iis", since_ms, max_jobs, owner);
    job_status status;
    while (st == GS_OK && (st = sql_step(s, err, "reading statistics", q, &row)) == GS_OK && row &&
           (st = sql_status(q, 0, &status, err)) == GS_OK)
        store_stats_add(&acc, status, sqlite3_column_double(q, 1), sqlite3_column_int64(q, 2),
                        sqlite3_column_int64(q, 3), sqlite3_column_int64(q, 4), sql_text(q, 5));
    sqlite3_finalize(q);
    store_stats_end(&acc, out);
    return st;
}

/* The database file and its write-ahead log: the log holds pages not yet
   copied back, and keeps its largest size until a checkpoint truncates it. */
gs_status sq_disk_bytes(job_store *js, int64_t *bytes, svc_error *err)
{
    const char *file = sqlite3_db_filename(sq(js)->db, "main");
    if (!file || !file[0])
        return GS_OK; /* in memory: nothing on disk */
    char wal[4200];
    snprintf(wal, sizeof wal, "%s-wal", file);
    struct stat sb;
    if (stat(file, &sb) != 0)
        return svc_fail(err, GS_ERR_IO, "job store: cannot read the size of %s: %s", file,
                        strerror(errno));
    *bytes = (int64_t)sb.st_size;
    if (stat(wal, &sb) == 0)
        *bytes += (int64_t)sb.st_size;
    return GS_OK;
}

gs_status sq_purge(job_store *js, int64_t before_ms, void (*fn)(void *user, const char *id),
                   void *user, int *n, svc_error *err)
{
    sqlite_store *s = sq(js);
    gs_status st = sql_begin(s, err);
    if (st != GS_OK)
        return st;
    sqlite3_stmt *q;
    int row, cap = 0;
    char(*ids)[JOB_ID_LEN + 1] = NULL;
    st = sql_prepare(s, err, "purging old jobs", &q,
                     "DELETE FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled')"
                     " AND finished_ms < ?1 RETURNING id",
                     "I", before_ms);
    while (st == GS_OK && (st = sql_step(s, err, "purging old jobs", q, &row)) == GS_OK && row) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            void *grown = realloc(ids, (size_t)cap * sizeof ids[0]);
            if (!grown) {
                st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory purging jobs");
                break;
            }
            ids = grown;
        }
        const char *id = sql_text(q, 0);
        snprintf(ids[*n], sizeof ids[0], "%s", id ? id : "");
        (*n)++;
    }
    sqlite3_finalize(q);
    st = sql_end(s, st, err);
    /* files go only once the rows are gone for good: a crash in between leaves
       orphan files, never jobs whose images are missing */
    if (st == GS_OK && fn)
        for (int i = 0; i < *n; i++)
            fn(user, ids[i]);
    if (st != GS_OK)
        *n = 0;
    free(ids);
    return st;
}
