/*
 * store_sqlite - the job store's SQLite engine, on one file (WAL, busy timeout), safe
 * for several processes: every state change is one IMMEDIATE transaction, so
 * two workers can never claim the same job, and a result is recorded only by
 * the lease holder. Arrival order is the table's rowid.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "queue/store_sqlite_private.h"

#define SCHEMA_VERSION "2"

gs_status sql_fail(sqlite_store *s, gs_error *err, const char *what)
{
    return gs_fail(err, GS_ERR_IO, "job store: %s: %s", what, sqlite3_errmsg(s->db));
}

gs_status sql_exec(sqlite_store *s, const char *sql, gs_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        gs_status st = gs_fail(err, GS_ERR_IO, "job store: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return st;
    }
    return GS_OK;
}

/* ---- open ---- */

/* Schema 1 lacked the preview and ETA columns; add them in place, so a
   data directory from an older gesso keeps its jobs. */
static gs_status migrate(sqlite_store *s, gs_error *err)
{
    sqlite3_stmt *q = NULL;
    int have = 0;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT count(*) FROM pragma_table_info('jobs')"
                           " WHERE name = 'preview_step'",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "reading the schema");
    if (sqlite3_step(q) == SQLITE_ROW)
        have = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (have)
        return GS_OK;
    return sql_exec(s,
                    "BEGIN IMMEDIATE;"
                    "ALTER TABLE jobs ADD COLUMN preview_step INTEGER NOT NULL DEFAULT 0;"
                    "ALTER TABLE jobs ADD COLUMN eta_s REAL NOT NULL DEFAULT -1;"
                    "UPDATE meta SET value = '" SCHEMA_VERSION "' WHERE key = 'schema';"
                    "COMMIT;",
                    err);
}

static const store_ops sqlite_ops;

gs_status store_sqlite_open(const char *url, const char *rest, job_store **out, gs_error *err)
{
    (void)url;
    /* sqlite://PATH as well as sqlite:PATH, so sqlite:///abs/path reads as a URL should */
    const char *path = strncmp(rest, "//", 2) == 0 ? rest + 2 : rest;
    *out = NULL;
    if (!path[0])
        return gs_fail(err, GS_ERR_INVALID_ARGUMENT, "job store: no file path in the URL");
    sqlite_store *s = gs_calloc(1, sizeof *s);
    if (!s)
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    gs_status st = GS_OK;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        st = gs_fail(err, GS_ERR_IO, "cannot open job store '%s': %s", path,
                     s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(s->db, 10000);
    if ((st = sql_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err)) != GS_OK ||
        (st = sql_exec(s,
                       "CREATE TABLE IF NOT EXISTS jobs ("
                       " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                       " id TEXT UNIQUE NOT NULL,"
                       " owner TEXT NOT NULL DEFAULT '',"
                       " model TEXT NOT NULL DEFAULT '',"
                       " priority INTEGER NOT NULL DEFAULT 0,"
                       " status INTEGER NOT NULL,"
                       " attempts INTEGER NOT NULL DEFAULT 0,"
                       " cancel_requested INTEGER NOT NULL DEFAULT 0,"
                       " worker TEXT,"
                       " lease_expires_ms INTEGER,"
                       " step INTEGER NOT NULL DEFAULT 0,"
                       " steps INTEGER NOT NULL DEFAULT 0,"
                       " megapixelsteps REAL NOT NULL DEFAULT 0,"
                       " params TEXT NOT NULL,"
                       " result TEXT,"
                       " error TEXT,"
                       " created_ms INTEGER NOT NULL,"
                       " started_ms INTEGER,"
                       " finished_ms INTEGER);"
                       "CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(status, priority DESC, seq);"
                       "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"
                       "INSERT OR IGNORE INTO meta VALUES ('schema', '" SCHEMA_VERSION "');",
                       err)) != GS_OK ||
        (st = sq_workers_schema(s, err)) != GS_OK)
        goto out;
    if ((st = migrate(s, err)) != GS_OK)
        goto out;
    s->base.ops = &sqlite_ops;
    *out = &s->base;
    return GS_OK;
out:
    sqlite3_close(s->db);
    gs_free(s);
    return st;
}

static void sq_close(job_store *js)
{
    sqlite_store *s = sq(js);
    sqlite3_close(s->db);
    gs_free(s);
}

/* ---- reading rows ---- */

#define JOB_COLUMNS                                                                                \
    "id, owner, model, worker, status, priority, attempts, cancel_requested, step, steps,"         \
    " megapixelsteps, created_ms, started_ms, finished_ms, lease_expires_ms, params, result,"      \
    " error, preview_step, eta_s"

static char *dup_text(sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    return t ? gs_strdup((const char *)t) : NULL;
}

static void copy_text(char *dst, size_t n, sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    snprintf(dst, n, "%s", t ? (const char *)t : "");
}

static gs_status read_row(sqlite3_stmt *q, job_record *r, gs_error *err)
{
    memset(r, 0, sizeof *r);
    copy_text(r->id, sizeof r->id, q, 0);
    copy_text(r->owner, sizeof r->owner, q, 1);
    copy_text(r->model, sizeof r->model, q, 2);
    copy_text(r->worker, sizeof r->worker, q, 3);
    r->status = (job_status)sqlite3_column_int(q, 4);
    r->priority = sqlite3_column_int(q, 5);
    r->attempts = sqlite3_column_int(q, 6);
    r->cancel_requested = sqlite3_column_int(q, 7);
    r->step = sqlite3_column_int(q, 8);
    r->steps = sqlite3_column_int(q, 9);
    r->megapixelsteps = sqlite3_column_double(q, 10);
    r->created_ms = sqlite3_column_int64(q, 11);
    r->started_ms = sqlite3_column_int64(q, 12);
    r->finished_ms = sqlite3_column_int64(q, 13);
    r->lease_expires_ms = sqlite3_column_int64(q, 14);
    r->params = dup_text(q, 15);
    r->result = dup_text(q, 16);
    r->error = dup_text(q, 17);
    r->preview_step = sqlite3_column_int(q, 18);
    r->eta_s = sqlite3_column_double(q, 19);
    if (!r->params || (sqlite3_column_type(q, 16) != SQLITE_NULL && !r->result) ||
        (sqlite3_column_type(q, 17) != SQLITE_NULL && !r->error)) {
        job_record_clear(r);
        return gs_fail(err, GS_ERR_NO_MEMORY, "out of memory reading a job");
    }
    return GS_OK;
}

static gs_status get_locked(sqlite_store *s, const char *id, job_record *out, int *found,
                            gs_error *err)
{
    sqlite3_stmt *q = NULL;
    *found = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?", -1, &q, NULL) !=
        SQLITE_OK)
        return sql_fail(s, err, "reading a job");
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    gs_status st = GS_OK;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        st = read_row(q, out, err);
        *found = st == GS_OK;
    } else if (rc != SQLITE_DONE) {
        st = sql_fail(s, err, "reading a job");
    }
    sqlite3_finalize(q);
    return st;
}

static gs_status sq_get(job_store *js, const char *id, job_record *out, gs_error *err)
{
    sqlite_store *s = sq(js);
    int found;
    gs_status st = get_locked(s, id, out, &found, err);
    if (st == GS_OK && !found)
        return gs_fail(err, GS_ERR_INVALID_ARGUMENT, "no job with id '%s'", id);
    return st;
}

/* ---- submit ---- */

static gs_status sq_submit(job_store *js, const char *id, const char *owner, const char *model,
                           int priority, const char *params_json, double megapixelsteps,
                           int64_t now_ms, int *position, gs_error *err)
{
    sqlite_store *s = sq(js);
    gs_status st = sql_exec(s, "BEGIN IMMEDIATE", err);
    if (st != GS_OK)
        return st;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO jobs (id, owner, model, priority, status, params,"
                           " megapixelsteps, created_ms) VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                           -1, &q, NULL) != SQLITE_OK) {
        st = sql_fail(s, err, "queueing a job");
        goto out;
    }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, model, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 4, priority);
    sqlite3_bind_text(q, 5, params_json, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 6, megapixelsteps);
    sqlite3_bind_int64(q, 7, now_ms);
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = sql_fail(s, err, "queueing a job");
        goto out;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (position) {
        int64_t seq = sqlite3_last_insert_rowid(s->db);
        if (sqlite3_prepare_v2(s->db,
                               "SELECT count(*) FROM jobs WHERE status = 0 AND"
                               " (priority > ? OR (priority = ? AND seq < ?))",
                               -1, &q, NULL) != SQLITE_OK) {
            st = sql_fail(s, err, "counting the queue");
            goto out;
        }
        sqlite3_bind_int(q, 1, priority);
        sqlite3_bind_int(q, 2, priority);
        sqlite3_bind_int64(q, 3, seq);
        *position = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int(q, 0) : 0;
    }
out:
    sqlite3_finalize(q);
    if (st == GS_OK)
        st = sql_exec(s, "COMMIT", err);
    else
        sql_exec(s, "ROLLBACK", NULL);
    return st;
}

/* ---- claim ---- */

/* The best queued job's id (restricted to the n models when n > 0); "" when none. */
static gs_status best_queued(sqlite_store *s, const char *const *models, int n,
                             char id[JOB_ID_LEN + 1], int *priority, int64_t *created,
                             gs_error *err)
{
    sqlite3_stmt *q = NULL;
    /* "model IN (?,?,...)": two bytes a placeholder */
    char sql[200 + 2 * STORE_MAX_PREFER];
    int k = snprintf(sql, sizeof sql, "SELECT id, priority, created_ms FROM jobs WHERE status = 0");
    if (n > 0) {
        k += snprintf(sql + k, sizeof sql - (size_t)k, " AND model IN (?");
        for (int i = 1; i < n; i++)
            k += snprintf(sql + k, sizeof sql - (size_t)k, ",?");
        k += snprintf(sql + k, sizeof sql - (size_t)k, ")");
    }
    snprintf(sql + k, sizeof sql - (size_t)k, " ORDER BY priority DESC, seq LIMIT 1");
    id[0] = '\0';
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "looking for a job");
    for (int i = 0; i < n; i++)
        sqlite3_bind_text(q, i + 1, models[i], -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        copy_text(id, JOB_ID_LEN + 1, q, 0);
        *priority = sqlite3_column_int(q, 1);
        *created = sqlite3_column_int64(q, 2);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? GS_OK : sql_fail(s, err, "looking for a job");
}

static gs_status sq_claim(job_store *js, const char *worker, const char *const *prefer,
                          int n_prefer, int64_t now_ms, int lease_ms, int64_t starve_ms,
                          job_record *out, int *claimed, gs_error *err)
{
    sqlite_store *s = sq(js);
    *claimed = 0;
    gs_status st = sql_exec(s, "BEGIN IMMEDIATE", err);
    if (st != GS_OK)
        return st;
    char best[JOB_ID_LEN + 1], pref[JOB_ID_LEN + 1];
    int bp = 0, pp = 0;
    int64_t bc = 0, pc = 0;
    sqlite3_stmt *q = NULL;
    if ((st = best_queued(s, NULL, 0, best, &bp, &bc, err)) != GS_OK)
        goto out;
    pref[0] = '\0';
    if (n_prefer > STORE_MAX_PREFER)
        n_prefer = STORE_MAX_PREFER;
    if (prefer && n_prefer > 0 && best[0] &&
        (st = best_queued(s, prefer, n_prefer, pref, &pp, &pc, err)) != GS_OK)
        goto out;
    /* a loaded model's job goes first, unless the best job outranks it or has starved */
    const char *pick = best;
    if (pref[0] && bp <= pp && now_ms - bc <= starve_ms)
        pick = pref;
    if (!pick[0])
        goto out;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE jobs SET status = 1, worker = ?, lease_expires_ms = ?,"
                           " started_ms = ?, attempts = attempts + 1, step = 0, preview_step = 0,"
                           " eta_s = -1"
                           " WHERE id = ? AND status = 0",
                           -1, &q, NULL) != SQLITE_OK) {
        st = sql_fail(s, err, "claiming a job");
        goto out;
    }
    sqlite3_bind_text(q, 1, worker, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, now_ms + lease_ms);
    sqlite3_bind_int64(q, 3, now_ms);
    sqlite3_bind_text(q, 4, pick, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = sql_fail(s, err, "claiming a job");
        goto out;
    }
    int found = 0;
    if ((st = get_locked(s, pick, out, &found, err)) != GS_OK)
        goto out;
    *claimed = found;
out:
    sqlite3_finalize(q);
    if (st == GS_OK)
        st = sql_exec(s, "COMMIT", err);
    else
        sql_exec(s, "ROLLBACK", NULL);
    if (st != GS_OK && *claimed) {
        job_record_clear(out);
        *claimed = 0;
    }
    return st;
}

/* ---- heartbeat, finish, cancel ---- */

static gs_status sq_heartbeat(job_store *js, const char *id, const char *worker, int64_t now_ms,
                              int lease_ms, const job_progress *p, int *cancel, int *lost,
                              gs_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q = NULL;
    *cancel = 0;
    *lost = 1;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE jobs SET lease_expires_ms = ?, step = ?, steps = ?,"
                           " preview_step = ?, eta_s = ?"
                           " WHERE id = ? AND status = 1 AND worker = ?"
                           " RETURNING cancel_requested",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "renewing a lease");
    sqlite3_bind_int64(q, 1, now_ms + lease_ms);
    sqlite3_bind_int(q, 2, p->step);
    sqlite3_bind_int(q, 3, p->steps);
    sqlite3_bind_int(q, 4, p->preview_step);
    sqlite3_bind_double(q, 5, p->eta_s);
    sqlite3_bind_text(q, 6, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 7, worker, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *lost = 0;
        *cancel = sqlite3_column_int(q, 0);
        rc = sqlite3_step(q);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? GS_OK : sql_fail(s, err, "renewing a lease");
}

static gs_status sq_finish(job_store *js, const char *id, const char *worker, job_status status,
                           const char *result_json, const char *error, int64_t now_ms,
                           int *recorded, gs_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE jobs SET status = ?, result = ?, error = ?, finished_ms = ?,"
                           " lease_expires_ms = NULL"
                           " WHERE id = ? AND status = 1 AND worker = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "recording a result");
    sqlite3_bind_int(q, 1, status);
    sqlite3_bind_text(q, 2, result_json, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, error, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 4, now_ms);
    sqlite3_bind_text(q, 5, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, worker, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return sql_fail(s, err, "recording a result");
    *recorded = sqlite3_changes(s->db) == 1;
    return GS_OK;
}

static gs_status sq_release(job_store *js, const char *id, const char *worker, int *released,
                            gs_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q = NULL;
    *released = 0;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE jobs SET status = 0, worker = NULL, lease_expires_ms = NULL,"
                           " step = 0, preview_step = 0, eta_s = -1,"
                           " attempts = max(attempts - 1, 0)"
                           " WHERE id = ? AND status = 1 AND worker = ?",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "releasing a job");
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, worker, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE)
        return sql_fail(s, err, "releasing a job");
    *released = sqlite3_changes(s->db) == 1;
    return GS_OK;
}

static gs_status sq_cancel(job_store *js, const char *id, int64_t now_ms, job_status *status,
                           gs_error *err)
{
    sqlite_store *s = sq(js);
    gs_status st = sql_exec(s, "BEGIN IMMEDIATE", err);
    if (st != GS_OK)
        return st;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE jobs SET"
                           " status = CASE status WHEN 0 THEN 4 ELSE status END,"
                           " finished_ms = CASE status WHEN 0 THEN ? ELSE finished_ms END,"
                           " cancel_requested = CASE status WHEN 1 THEN 1 ELSE cancel_requested END"
                           " WHERE id = ? RETURNING status",
                           -1, &q, NULL) != SQLITE_OK) {
        st = sql_fail(s, err, "cancelling a job");
        goto out;
    }
    sqlite3_bind_int64(q, 1, now_ms);
    sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *status = (job_status)sqlite3_column_int(q, 0);
        rc = sqlite3_step(q);
        if (rc != SQLITE_DONE)
            st = sql_fail(s, err, "cancelling a job");
    } else if (rc == SQLITE_DONE) {
        st = gs_fail(err, GS_ERR_INVALID_ARGUMENT, "no job with id '%s'", id);
    } else {
        st = sql_fail(s, err, "cancelling a job");
    }
out:
    sqlite3_finalize(q);
    if (st == GS_OK)
        st = sql_exec(s, "COMMIT", err);
    else
        sql_exec(s, "ROLLBACK", NULL);
    return st;
}

/* ---- lease expiry ---- */

static gs_status sq_expire_leases(job_store *js, int64_t now_ms, int max_attempts,
                                  const char *reason, int *requeued, int *failed, gs_error *err)
{
    sqlite_store *s = sq(js);
    gs_status st = sql_exec(s, "BEGIN IMMEDIATE", err);
    if (st != GS_OK)
        return st;
    sqlite3_stmt *q = NULL;
    /* used-up attempts first, so a job is never both requeued and failed */
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE jobs SET status = 3, error = ?, finished_ms = ?, worker = NULL,"
                           " lease_expires_ms = NULL"
                           " WHERE status = 1 AND lease_expires_ms < ? AND attempts >= ?",
                           -1, &q, NULL) != SQLITE_OK) {
        st = sql_fail(s, err, "expiring leases");
        goto out;
    }
    sqlite3_bind_text(q, 1, reason, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, now_ms);
    sqlite3_bind_int64(q, 3, now_ms);
    sqlite3_bind_int(q, 4, max_attempts);
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = sql_fail(s, err, "expiring leases");
        goto out;
    }
    *failed = sqlite3_changes(s->db);
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "UPDATE jobs SET status = 0, worker = NULL, lease_expires_ms = NULL,"
                           " step = 0, preview_step = 0, eta_s = -1"
                           " WHERE status = 1 AND lease_expires_ms < ?",
                           -1, &q, NULL) != SQLITE_OK) {
        st = sql_fail(s, err, "expiring leases");
        goto out;
    }
    sqlite3_bind_int64(q, 1, now_ms);
    if (sqlite3_step(q) != SQLITE_DONE) {
        st = sql_fail(s, err, "expiring leases");
        goto out;
    }
    *requeued = sqlite3_changes(s->db);
out:
    sqlite3_finalize(q);
    if (st == GS_OK)
        st = sql_exec(s, "COMMIT", err);
    else
        sql_exec(s, "ROLLBACK", NULL);
    return st;
}

static gs_status sq_counts(job_store *js, int counts[5], gs_error *err)
{
    sqlite_store *s = sq(js);
    memset(counts, 0, 5 * sizeof counts[0]);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT status, count(*) FROM jobs GROUP BY status", -1, &q,
                           NULL) != SQLITE_OK)
        return sql_fail(s, err, "counting jobs");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int k = sqlite3_column_int(q, 0);
        if (k >= 0 && k < 5)
            counts[k] = sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? GS_OK : sql_fail(s, err, "counting jobs");
}

static gs_status sq_list(job_store *js, int status, const char *owner, int max, job_record **out,
                         int *n, gs_error *err)
{
    sqlite_store *s = sq(js);
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL;
    /* -1 and NULL bind as "any", so one statement serves every filter */
    if (sqlite3_prepare_v2(s->db,
                           "SELECT " JOB_COLUMNS " FROM jobs WHERE (?1 < 0 OR status = ?1)"
                           " AND (?2 IS NULL OR owner = ?2) ORDER BY seq DESC LIMIT ?3",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "listing jobs");
    sqlite3_bind_int(q, 1, status);
    if (owner)
        sqlite3_bind_text(q, 2, owner, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 3, max);
    job_record *list = gs_calloc(max > 0 ? (size_t)max : 1, sizeof *list);
    gs_status st = list ? GS_OK : gs_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    int rc = SQLITE_DONE;
    while (st == GS_OK && *n < max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        st = read_row(q, &list[*n], err);
        if (st == GS_OK)
            (*n)++;
    }
    if (st == GS_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
        st = sql_fail(s, err, "listing jobs");
    sqlite3_finalize(q);
    if (st != GS_OK) {
        store_list_free(list, *n);
        *n = 0;
        return st;
    }
    *out = list;
    return GS_OK;
}

static gs_status
sq_depth_by_model(job_store *js, void (*fn)(void *user, const char *model, int queued, int running),
                  void *user, gs_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT model, sum(status = 0), sum(status = 1) FROM jobs"
                           " WHERE status IN (0, 1) GROUP BY model ORDER BY model",
                           -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "counting the queue");
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        fn(user, (const char *)sqlite3_column_text(q, 0), sqlite3_column_int(q, 1),
           sqlite3_column_int(q, 2));
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? GS_OK : sql_fail(s, err, "counting the queue");
}

static const store_ops sqlite_ops = {
    .close = sq_close,
    .submit = sq_submit,
    .get = sq_get,
    .claim = sq_claim,
    .heartbeat = sq_heartbeat,
    .release = sq_release,
    .finish = sq_finish,
    .cancel = sq_cancel,
    .expire_leases = sq_expire_leases,
    .list = sq_list,
    .depth_by_model = sq_depth_by_model,
    .counts = sq_counts,
    .queue_position = sq_queue_position,
    .active_count = sq_active_count,
    .stats = sq_stats,
    .purge = sq_purge,
    .worker_report = sq_worker_report,
    .worker_remove = sq_worker_remove,
    .workers_list = sq_workers_list,
};
