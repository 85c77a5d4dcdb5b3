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

/* ---- statement helpers (store_sqlite_sql.c) ----
   what says what was being done, for the message of a failure (GS_ERR_IO
   with SQLite's words). The values to bind follow types, one letter each:
     i int   I int64_t   d double   s const char * (NULL binds SQL NULL)
   and must be of exactly those types (varargs convert nothing). Text is bound
   without a copy: it must outlive the statement. */

gs_status sql_fail(sqlite_store *s, svc_error *err, const char *what);
/* Runs SQL text without values or results; err may be NULL. */
gs_status sql_exec(sqlite_store *s, const char *sql, svc_error *err);
/* BEGIN IMMEDIATE: takes the write lock up front, so that what a transaction
   reads (the best queued job) is still so when it writes, in every process. */
gs_status sql_begin(sqlite_store *s, svc_error *err);
/* Commits when st is GS_OK, else rolls back; returns st or the commit's failure. */
gs_status sql_end(sqlite_store *s, gs_status st, svc_error *err);
/* Prepares sql and binds the values: *q for sql_step, finalized by the caller
   (NULL after a failure). */
gs_status sql_prepare(sqlite_store *s, svc_error *err, const char *what, sqlite3_stmt **q,
                      const char *sql, const char *types, ...);
/* Steps q: *row = 1 with a row to read, 0 when done. */
gs_status sql_step(sqlite_store *s, svc_error *err, const char *what, sqlite3_stmt *q, int *row);
/* sql_prepare and one sql_step: *row says whether *q holds a first row to read. */
gs_status sql_first(sqlite_store *s, svc_error *err, const char *what, sqlite3_stmt **q, int *row,
                    const char *sql, const char *types, ...);
/* Steps q past its remaining rows (a RETURNING statement is done only then). */
gs_status sql_drain(sqlite_store *s, svc_error *err, const char *what, sqlite3_stmt *q);
/* Runs a statement to completion; *changes (may be NULL) gets how many rows
   it inserted, updated or deleted. */
gs_status sql_run(sqlite_store *s, svc_error *err, const char *what, int *changes, const char *sql,
                  const char *types, ...);
/* Runs a statement whose first column is an integer (count(*), RETURNING x)
   and puts the first row's into *value, which no row leaves alone; *found
   (may be NULL) says whether there was a row. */
gs_status sql_int(sqlite_store *s, svc_error *err, const char *what, int *value, int *found,
                  const char *sql, const char *types, ...);
/* A text column, NULL for SQL NULL. */
const char *sql_text(sqlite3_stmt *q, int col);
/* A status column: the table keeps each status by its name (job_status_name),
   so that the rows read the same to a person and to every engine. */
gs_status sql_status(sqlite3_stmt *q, int col, job_status *out, svc_error *err);

/* Creates the workers table if needed (store_sqlite_workers.c); called once on open. */
gs_status sq_workers_schema(sqlite_store *s, svc_error *err);

/* store_sqlite_stats.c */
gs_status sq_queue_position(job_store *js, const char *id, int *position, svc_error *err);
gs_status sq_active_count(job_store *js, const char *owner, int *n, svc_error *err);
gs_status sq_stats(job_store *js, const char *owner, int64_t since_ms, int max_jobs, job_stats *out,
                   svc_error *err);
gs_status sq_disk_bytes(job_store *js, int64_t *bytes, svc_error *err);
gs_status sq_purge(job_store *js, int64_t before_ms, void (*fn)(void *user, const char *id),
                   void *user, int *n, svc_error *err);

/* store_sqlite_workers.c */
gs_status sq_worker_report(job_store *js, const char *name, int pid, const char *models_json,
                           const char *info_json, int64_t now_ms, svc_error *err);
gs_status sq_worker_remove(job_store *js, const char *name, svc_error *err);
gs_status sq_workers_list(job_store *js, int64_t since_ms, worker_record **out, int *n,
                          svc_error *err);

/* store_sqlite_keys.c: the API keys table, created if missing on open */
gs_status sq_keys_schema(sqlite_store *s, svc_error *err);
gs_status sq_key_add(job_store *js, const struct store_key *k, svc_error *err);
gs_status sq_keys_list(job_store *js, struct store_key **out, int *n, svc_error *err);
gs_status sq_key_revoke(job_store *js, const char *name, int64_t now_ms, int *revoked,
                        svc_error *err);

#endif
