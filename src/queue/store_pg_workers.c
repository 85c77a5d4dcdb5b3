/*
 * store_pg_workers - the PostgreSQL engine's workers table: each worker
 * reports its name, pid and loaded models on a heartbeat-like cadence, and a
 * row not refreshed for a while counts as gone (the reader judges), as in the
 * SQLite engine. One table for every machine: names are unique across them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_pg_private.h"

gs_status pgs_worker_report(job_store *js, const char *name, int pid, const char *models_json,
                            const char *info_json, int64_t now_ms, svc_error *err)
{
    return pgs_run(pgs(js), err, "reporting a worker", NULL,
                   "INSERT INTO workers (name, models, pid, seen_ms, info)"
                   " VALUES ($1, $2, $3, $4, $5)"
                   " ON CONFLICT (name) DO UPDATE SET models = excluded.models,"
                   " pid = excluded.pid, seen_ms = excluded.seen_ms, info = excluded.info",
                   "ssiIs", name, models_json, pid, now_ms, info_json);
}

gs_status pgs_worker_remove(job_store *js, const char *name, svc_error *err)
{
    return pgs_run(pgs(js), err, "removing a worker", NULL, "DELETE FROM workers WHERE name = $1",
                   "s", name);
}

gs_status pgs_workers_list(job_store *js, int64_t since_ms, worker_record **out, int *n,
                           svc_error *err)
{
    PGresult *r;
    gs_status st =
        pgs_query(pgs(js), err, "listing workers", &r,
                  "SELECT name, pid, seen_ms, models, info FROM workers WHERE seen_ms >= $1"
                  " ORDER BY name COLLATE \"C\"",
                  "I", since_ms);
    if (st != GS_OK)
        return st;
    int rows = PQntuples(r);
    worker_record *list = calloc(rows > 0 ? (size_t)rows : 1, sizeof *list);
    if (!list)
        st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory listing workers");
    for (int i = 0; st == GS_OK && i < rows; i++) {
        worker_record *w = &list[i];
        const char *models = pgs_text(r, i, 3), *info = pgs_text(r, i, 4);
        snprintf(w->name, sizeof w->name, "%s", PQgetvalue(r, i, 0));
        w->pid = pgs_col_int(r, i, 1);
        w->seen_ms = pgs_col_int64(r, i, 2);
        w->models = strdup(models ? models : "[]");
        w->info = strdup(info ? info : "{}");
        (*n)++; /* freed with the list, whatever failed */
        if (!w->models || !w->info)
            st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory listing workers");
    }
    PQclear(r);
    if (st != GS_OK) {
        store_workers_free(list, *n);
        *n = 0;
        return st;
    }
    *out = list;
    return GS_OK;
}
