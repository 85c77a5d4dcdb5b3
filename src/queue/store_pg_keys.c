/*
 * store_pg_keys - the PostgreSQL engine's API keys table (store_keys.h): one
 * table that every front end of a fleet reads, so a key added or revoked
 * anywhere holds everywhere. A name, its limits and a salted hash, never the
 * key.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_keys.h"
#include "queue/store_pg_private.h"

gs_status pgs_key_add(job_store *js, const store_key *k, svc_error *err)
{
    int changes = 0;
    gs_status st = pgs_run(pgs(js), err, "adding an API key", &changes,
                           "INSERT INTO api_keys (name, salt, hash, max_active, max_cost, admin,"
                           " created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                           " ON CONFLICT (name) DO NOTHING",
                           "sssidiI", k->name, k->salt, k->hash, k->max_active, k->max_cost,
                           k->admin, k->created_ms);
    if (st == GS_OK && changes == 0)
        st = svc_fail(err, GS_ERR_INVALID_ARGUMENT, "a key named '%s' exists already", k->name);
    return st;
}

gs_status pgs_keys_list(job_store *js, store_key **out, int *n, svc_error *err)
{
    PGresult *r;
    gs_status st = pgs_query(pgs(js), err, "listing API keys", &r,
                             "SELECT name, salt, hash, max_active, max_cost, admin, created_ms,"
                             " coalesce(revoked_ms, 0) FROM api_keys ORDER BY name COLLATE \"C\"",
                             "");
    if (st != GS_OK)
        return st;
    int rows = PQntuples(r);
    store_key *list = rows > 0 ? calloc((size_t)rows, sizeof *list) : NULL;
    if (rows > 0 && !list)
        st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory listing API keys");
    for (int i = 0; st == GS_OK && i < rows; i++) {
        store_key *k = &list[i];
        snprintf(k->name, sizeof k->name, "%s", PQgetvalue(r, i, 0));
        snprintf(k->salt, sizeof k->salt, "%s", PQgetvalue(r, i, 1));
        snprintf(k->hash, sizeof k->hash, "%s", PQgetvalue(r, i, 2));
        k->max_active = pgs_col_int(r, i, 3);
        k->max_cost = pgs_col_double(r, i, 4);
        k->admin = pgs_col_int(r, i, 5);
        k->created_ms = pgs_col_int64(r, i, 6);
        k->revoked_ms = pgs_col_int64(r, i, 7);
    }
    PQclear(r);
    if (st != GS_OK) {
        free(list);
        return st;
    }
    *out = list;
    *n = rows;
    return GS_OK;
}

gs_status pgs_key_revoke(job_store *js, const char *name, int64_t now_ms, int *revoked,
                         svc_error *err)
{
    return pgs_run(pgs(js), err, "revoking an API key", revoked,
                   "UPDATE api_keys SET revoked_ms = $2 WHERE name = $1 AND revoked_ms IS NULL",
                   "sI", name, now_ms);
}
