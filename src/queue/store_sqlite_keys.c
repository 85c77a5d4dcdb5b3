/*
 * store_sqlite_keys - the SQLite engine's API keys table (store_keys.h): a
 * name, its limits and a salted hash, never the key. Created if missing at
 * open, as the workers table is: a table of its own, so a store from an older
 * gesso gains it without touching its jobs.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_keys.h"
#include "queue/store_sqlite_private.h"

gs_status sq_keys_schema(sqlite_store *s, svc_error *err)
{
    return sql_exec(s,
                    "CREATE TABLE IF NOT EXISTS api_keys ("
                    " name TEXT PRIMARY KEY,"
                    " salt TEXT NOT NULL,"
                    " hash TEXT NOT NULL,"
                    " max_active INTEGER NOT NULL DEFAULT 0,"
                    " max_cost REAL NOT NULL DEFAULT 0,"
                    " admin INTEGER NOT NULL DEFAULT 0,"
                    " created_ms INTEGER NOT NULL,"
                    " revoked_ms INTEGER);",
                    err);
}

gs_status sq_key_add(job_store *js, const store_key *k, svc_error *err)
{
    int changes = 0;
    gs_status st = sql_run(sq(js), err, "adding an API key", &changes,
                           "INSERT INTO api_keys (name, salt, hash, max_active, max_cost, admin,"
                           " created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                           " ON CONFLICT(name) DO NOTHING",
                           "sssidiI", k->name, k->salt, k->hash, k->max_active, k->max_cost,
                           k->admin, k->created_ms);
    if (st == GS_OK && changes == 0)
        st = svc_fail(err, GS_ERR_INVALID_ARGUMENT, "a key named '%s' exists already", k->name);
    return st;
}

gs_status sq_keys_list(job_store *js, store_key **out, int *n, svc_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q;
    int row, cap = 0;
    store_key *list = NULL;
    gs_status st = sql_prepare(s, err, "listing API keys", &q,
                               "SELECT name, salt, hash, max_active, max_cost, admin, created_ms,"
                               " coalesce(revoked_ms, 0) FROM api_keys ORDER BY name",
                               "");
    while (st == GS_OK && (st = sql_step(s, err, "listing API keys", q, &row)) == GS_OK && row) {
        if (*n == cap) {
            int ncap = cap ? cap * 2 : 8;
            store_key *b = realloc(list, (size_t)ncap * sizeof *b);
            if (!b) {
                st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory listing API keys");
                break;
            }
            list = b;
            cap = ncap;
        }
        store_key *k = &list[(*n)++];
        memset(k, 0, sizeof *k);
        const char *name = sql_text(q, 0), *salt = sql_text(q, 1), *hash = sql_text(q, 2);
        snprintf(k->name, sizeof k->name, "%s", name ? name : "");
        snprintf(k->salt, sizeof k->salt, "%s", salt ? salt : "");
        snprintf(k->hash, sizeof k->hash, "%s", hash ? hash : "");
        k->max_active = sqlite3_column_int(q, 3);
        k->max_cost = sqlite3_column_double(q, 4);
        k->admin = sqlite3_column_int(q, 5);
        k->created_ms = sqlite3_column_int64(q, 6);
        k->revoked_ms = sqlite3_column_int64(q, 7);
    }
    sqlite3_finalize(q);
    if (st != GS_OK) {
        free(list);
        *n = 0;
        return st;
    }
    *out = list;
    return GS_OK;
}

gs_status sq_key_revoke(job_store *js, const char *name, int64_t now_ms, int *revoked,
                        svc_error *err)
{
    return sql_run(sq(js), err, "revoking an API key", revoked,
                   "UPDATE api_keys SET revoked_ms = ?2 WHERE name = ?1 AND revoked_ms IS NULL",
                   "sI", name, now_ms);
}
