/*
 * store_sqlite_workers - the SQLite engine's workers table: each worker process reports its
 * name, pid and loaded models on a heartbeat-like cadence, so the API can say
 * which models are warm and where without asking the workers. Liveness is
 * judged by the reader (a row not refreshed for a while counts as gone), so a
 * worker killed without a chance to clean up just fades out.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_sqlite_private.h"

gs_status sq_workers_schema(sqlite_store *s, svc_error *err)
{
    gs_status st = sql_exec(s,
                            "CREATE TABLE IF NOT EXISTS workers ("
                            " name TEXT PRIMARY KEY,"
                            " models TEXT NOT NULL DEFAULT '[]',"
                            " pid INTEGER NOT NULL DEFAULT 0,"
                            " seen_ms INTEGER NOT NULL,"
                            " info TEXT NOT NULL DEFAULT '{}');",
                            err);
    /* a table from before the info column: rows are reports, so no version
       is needed, only the column */
    sqlite3_stmt *q;
    int row = 0;
    if (st == GS_OK && (st = sql_prepare(s, err, "reading the workers table", &q,
                                         "SELECT count(*) FROM pragma_table_info('workers')"
                                         " WHERE name = 'info'",
                                         "")) == GS_OK) {
        st = sql_step(s, err, "reading the workers table", q, &row);
        int have = row && sqlite3_column_int(q, 0) > 0;
        sqlite3_finalize(q);
        if (st == GS_OK && !have)
            st = sql_exec(s, "ALTER TABLE workers ADD COLUMN info TEXT NOT NULL DEFAULT '{}'", err);
    }
    return st;
}

gs_status sq_worker_report(job_store *js, const char *name, int pid, const char *models_json,
                           const char *info_json, int64_t now_ms, svc_error *err)
{
    return sql_run(sq(js), err, "reporting a worker", NULL,
                   "INSERT INTO workers (name, models, pid, seen_ms, info)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)"
                   " ON CONFLICT(name) DO UPDATE SET models = excluded.models,"
                   " pid = excluded.pid, seen_ms = excluded.seen_ms, info = excluded.info",
                   "ssiIs", name, models_json, pid, now_ms, info_json);
}

gs_status sq_worker_remove(job_store *js, const char *name, svc_error *err)
{
    return sql_run(sq(js), err, "removing a worker", NULL, "DELETE FROM workers WHERE name = ?1",
                   "s", name);
}

gs_status sq_workers_list(job_store *js, int64_t since_ms, worker_record **out, int *n,
                          svc_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q;
    int row, cap = 0;
    worker_record *list = NULL;
    gs_status st = sql_prepare(s, err, "listing workers", &q,
                               "SELECT name, pid, seen_ms, models, info FROM workers"
                               " WHERE seen_ms >= ?1"
                               " ORDER BY name",
                               "I", since_ms);
    while (st == GS_OK && (st = sql_step(s, err, "listing workers", q, &row)) == GS_OK && row) {
        if (*n == cap) {
            int ncap = cap ? cap * 2 : 8;
            worker_record *b = realloc(list, (size_t)ncap * sizeof *b);
            if (!b) {
                st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory listing workers");
                break;
            }
            list = b;
            cap = ncap;
        }
        worker_record *w = &list[*n];
        memset(w, 0, sizeof *w);
        const char *name = sql_text(q, 0), *models = sql_text(q, 3), *info = sql_text(q, 4);
        snprintf(w->name, sizeof w->name, "%s", name ? name : "");
        w->pid = sqlite3_column_int(q, 1);
        w->seen_ms = sqlite3_column_int64(q, 2);
        w->models = strdup(models ? models : "[]");
        w->info = strdup(info ? info : "{}");
        if (!w->models || !w->info) {
            (*n)++; /* freed with the list */
            st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory listing workers");
            break;
        }
        (*n)++;
    }
    sqlite3_finalize(q);
    if (st != GS_OK) {
        store_workers_free(list, *n);
        *n = 0;
        return st;
    }
    *out = list;
    return GS_OK;
}
