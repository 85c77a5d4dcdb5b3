/*
 * store_sqlite_private - what the files of the SQLite engine share: its
 * handle, the statement helpers, and the operations that live outside
 * store_sqlite.c (sq_ is the engine's prefix). Not for use outside src/queue.
 */
#ifndef GS_STORE_SQLITE_PRIVATE_H
#define GS_STORE_SQLITE_PRIVATE_H

#include <sqlite3.h>

#include "queue/store_engine.h"

typedef struct sqlite_store {
    job_store base; /* first: a job_store * is a sqlite_store * */
    sqlite3 *db;
} sqlite_store;

static inline sqlite_store *sq(job_store *s)
{
    return (sqlite_store *)s;
}

/* Fails with GS_ERR_IO and SQLite's message for what was being done. */
gs_status sql_fail(sqlite_store *s, gs_error *err, const char *what);
/* Runs SQL text without results; err may be NULL. */
gs_status sql_exec(sqlite_store *s, const char *sql, gs_error *err);

/* Creates the workers table if needed (store_sqlite_workers.c); called once on open. */
gs_status sq_workers_schema(sqlite_store *s, gs_error *err);

/* store_sqlite_stats.c */
gs_status sq_queue_position(job_store *js, const char *id, int *position, gs_error *err);
gs_status sq_active_count(job_store *js, const char *owner, int *n, gs_error *err);
gs_status sq_stats(job_store *js, int64_t since_ms, int max_jobs, job_stats *out, gs_error *err);
gs_status sq_purge(job_store *js, int64_t before_ms, void (*fn)(void *user, const char *id),
                   void *user, int *n, gs_error *err);

/* store_sqlite_workers.c */
gs_status sq_worker_report(job_store *js, const char *name, int pid, const char *models_json,
                           int64_t now_ms, gs_error *err);
gs_status sq_worker_remove(job_store *js, const char *name, gs_error *err);
gs_status sq_workers_list(job_store *js, int64_t since_ms, worker_record **out, int *n,
                          gs_error *err);

#endif
