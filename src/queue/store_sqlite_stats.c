/*
 * store_sqlite_stats - the SQLite engine's accounting over the job table:
 * per-owner activity for API-key limits, queue positions, the finished jobs
 * behind /v1/stats (summed by store_stats.c), and the purge that enforces
 * result retention.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "queue/store_sqlite_private.h"

gs_status sq_active_count(job_store *js, const char *owner, int *n, gs_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM jobs WHERE owner = ? AND status IN (0, 1)",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "counting a key's jobs");
    sqlite3_bind_text(q, 1, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? GS_OK : sql_fail(s, err, "counting a key's jobs");
}

gs_status sq_queue_position(job_store *js, const char *id, int *position, gs_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q = NULL;
    *position = -1;
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT (SELECT count(*) FROM jobs o WHERE o.status = 0 AND"
            " (o.priority > j.priority OR (o.priority = j.priority AND o.seq < j.seq)))"
            " FROM jobs j WHERE j.id = ? AND j.status = 0",
            -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "reading a queue position");
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *position = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? GS_OK
                                                 : sql_fail(s, err, "reading a queue position");
}

gs_status sq_stats(job_store *js, int64_t since_ms, int max_jobs, job_stats *out, gs_error *err)
{
    sqlite_store *s = sq(js);
    memset(out, 0, sizeof *out);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT status, megapixelsteps, created_ms, started_ms, finished_ms,"
                           " result FROM jobs WHERE finished_ms >= ? AND status >= 2"
                           " ORDER BY finished_ms DESC LIMIT ?",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "reading statistics");
    sqlite3_bind_int64(q, 1, since_ms);
    sqlite3_bind_int(q, 2, max_jobs);
    store_stats_acc acc = {0};
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        store_stats_add(&acc, (job_status)sqlite3_column_int(q, 0), sqlite3_column_double(q, 1),
                        sqlite3_column_int64(q, 2), sqlite3_column_int64(q, 3),
                        sqlite3_column_int64(q, 4), (const char *)sqlite3_column_text(q, 5));
    sqlite3_finalize(q);
    store_stats_end(&acc, out);
    return rc == SQLITE_DONE ? GS_OK : sql_fail(s, err, "reading statistics");
}

gs_status sq_purge(job_store *js, int64_t before_ms, void (*fn)(void *user, const char *id),
                   void *user, int *n, gs_error *err)
{
    sqlite_store *s = sq(js);
    *n = 0;
    gs_status st = sql_exec(s, "BEGIN IMMEDIATE", err);
    if (st != GS_OK)
        return st;
    sqlite3_stmt *q = NULL;
    char(*ids)[JOB_ID_LEN + 1] = NULL;
    int cap = 0;
    if (sqlite3_prepare_v2(s->db,
                           "DELETE FROM jobs WHERE status >= 2 AND finished_ms < ? RETURNING id",
                           -1, &q, NULL) != SQLITE_OK) {
        st = sql_fail(s, err, "purging old jobs");
        goto out;
    }
    sqlite3_bind_int64(q, 1, before_ms);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            void *grown = gs_realloc(ids, (size_t)cap * sizeof ids[0]);
            if (!grown) {
                st = gs_fail(err, GS_ERR_NO_MEMORY, "out of memory purging jobs");
                goto out;
            }
            ids = grown;
        }
        const unsigned char *id = sqlite3_column_text(q, 0);
        snprintf(ids[*n], sizeof ids[0], "%s", id ? (const char *)id : "");
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        st = sql_fail(s, err, "purging old jobs");
out:
    sqlite3_finalize(q);
    if (st == GS_OK)
        st = sql_exec(s, "COMMIT", err);
    else
        sql_exec(s, "ROLLBACK", NULL);
    /* files go only once the rows are gone for good: a crash in between leaves
       orphan files, never jobs whose images are missing */
    if (st == GS_OK && fn)
        for (int i = 0; i < *n; i++)
            fn(user, ids[i]);
    if (st != GS_OK)
        *n = 0;
    gs_free(ids);
    return st;
}
