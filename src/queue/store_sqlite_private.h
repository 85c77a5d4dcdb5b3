/*
 * store_sqlite_private - what the files of the SQLite store share: the handle
 * and the two helpers every statement uses. Not for use outside src/queue.
 */
#ifndef GS_STORE_SQLITE_PRIVATE_H
#define GS_STORE_SQLITE_PRIVATE_H

#include <sqlite3.h>

#include "queue/store.h"

struct job_store {
    sqlite3 *db;
};

/* Fails with GS_ERR_IO and SQLite's message for what was being done. */
gs_status store_sql_fail(job_store *s, gs_error *err, const char *what);
/* Runs SQL text without results; err may be NULL. */
gs_status store_sql_exec(job_store *s, const char *sql, gs_error *err);

/* Creates the workers table if needed (store_sqlite_workers.c); called once on open. */
gs_status store_workers_schema(job_store *s, gs_error *err);

#endif
