/*
 * store_sqlite - the job store's SQLite engine, on one file (WAL, busy
 * timeout), safe for several processes: every state change is one IMMEDIATE
 * transaction, so two workers can never claim the same job, and a result is
 * recorded only by the lease holder. Arrival order is the table's rowid.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "queue/store_sqlite_private.h"

#define SCHEMA_VERSION "3"

/* ---- open ---- */

/* The jobs table of the current schema, by the name given (a new table is
   built beside an old one while upgrading). */
#define JOBS_TABLE(name)                                                                           \
    "CREATE TABLE IF NOT EXISTS " name " ("                                                        \
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"                                                      \
    " id TEXT UNIQUE NOT NULL,"                                                                    \
    " owner TEXT NOT NULL DEFAULT '',"                                                             \
    " model TEXT NOT NULL DEFAULT '',"                                                             \
    " priority INTEGER NOT NULL DEFAULT 0,"                                                        \
    " status TEXT NOT NULL"                                                                        \
    "  CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),"               \
    " attempts INTEGER NOT NULL DEFAULT 0,"                                                        \
    " cancel_requested INTEGER NOT NULL DEFAULT 0,"                                                \
    " worker TEXT,"                                                                                \
    " lease_expires_ms INTEGER,"                                                                   \
    " step INTEGER NOT NULL DEFAULT 0,"                                                            \
    " steps INTEGER NOT NULL DEFAULT 0,"                                                           \
    " megapixelsteps REAL NOT NULL DEFAULT 0,"                                                     \
    " params TEXT NOT NULL,"                                                                       \
    " result TEXT,"                                                                                \
    " error TEXT,"                                                                                 \
    " created_ms INTEGER NOT NULL,"                                                                \
    " started_ms INTEGER,"                                                                         \
    " finished_ms INTEGER,"                                                                        \
    " preview_step INTEGER NOT NULL DEFAULT 0,"                                                    \
    " eta_s REAL NOT NULL DEFAULT -1);"

#define JOBS_INDEX "CREATE INDEX IF NOT EXISTS jobs_queue ON jobs(status, priority DESC, seq);"

/* The schema of the jobs table, read from the table itself: 1 lacked the
   preview and ETA columns, 2 kept statuses as numbers (0 queued .. 4
   cancelled), 3 keeps their names. */
static gs_status schema_of(sqlite_store *s, int *version, svc_error *err)
{
    int preview = 0, named = 0;
    gs_status st = sql_int(s, err, "reading the schema", &preview, NULL,
                           "SELECT count(*) FROM pragma_table_info('jobs')"
                           " WHERE name = 'preview_step'",
                           "");
    if (st == GS_OK)
        st = sql_int(s, err, "reading the schema", &named, NULL,
                     "SELECT count(*) FROM pragma_table_info('jobs')"
                     " WHERE name = 'status' AND upper(type) = 'TEXT'",
                     "");
    *version = !preview ? 1 : !named ? 2 : 3;
    return st;
}

/* Brings an older jobs table to the current schema in place, within the
   caller's transaction, so a data directory from an older gesso keeps its
   jobs and a failure leaves it as it was. SQLite cannot change a column's
   type, so the table is copied into a new one with the statuses named. */
static gs_status migrate(sqlite_store *s, svc_error *err)
{
    int version;
    gs_status st = schema_of(s, &version, err);
    if (st != GS_OK || version == 3)
        return st;
    if (version == 1)
        st = sql_exec(s,
                      "ALTER TABLE jobs ADD COLUMN preview_step INTEGER NOT NULL DEFAULT 0;"
                      "ALTER TABLE jobs ADD COLUMN eta_s REAL NOT NULL DEFAULT -1;",
                      err);
    if (st == GS_OK)
        st = sql_exec(s, JOBS_TABLE("jobs_new"), err);
    if (st == GS_OK)
        st = sql_exec(s,
                      "INSERT INTO jobs_new (seq, id, owner, model, priority, status, attempts,"
                      " cancel_requested, worker, lease_expires_ms, step, steps, megapixelsteps,"
                      " params, result, error, created_ms, started_ms, finished_ms, preview_step,"
                      " eta_s)"
                      " SELECT seq, id, owner, model, priority,"
                      " CASE status WHEN 0 THEN 'queued' WHEN 1 THEN 'running'"
                      "  WHEN 2 THEN 'succeeded' WHEN 3 THEN 'failed' WHEN 4 THEN 'cancelled' END,"
                      " attempts, cancel_requested, worker, lease_expires_ms, step, steps,"
                      " megapixelsteps, params, result, error, created_ms, started_ms,"
                      " finished_ms, preview_step, eta_s"
                      " FROM jobs;"
                      /* arrival order must survive: keep the highest seq ever handed
                         out, which may be above every row left (purged jobs) */
                      "DELETE FROM sqlite_sequence WHERE name = 'jobs_new';"
                      "UPDATE sqlite_sequence SET name = 'jobs_new' WHERE name = 'jobs';"
                      "DROP TABLE jobs;"
                      "ALTER TABLE jobs_new RENAME TO jobs;"
                      "UPDATE meta SET value = '" SCHEMA_VERSION "' WHERE key = 'schema';",
                      err);
    if (st == GS_OK)
        st = sql_exec(s, JOBS_INDEX, err);
    if (st != GS_OK && err)
        svc_error_prefix(err, "upgrading the job store from schema %d", version);
    return st;
}

static const store_ops sqlite_ops;

gs_status store_sqlite_open(const char *url, const char *rest, job_store **out, svc_error *err)
{
    (void)url;
    /* sqlite://PATH as well as sqlite:PATH, so sqlite:///abs/path reads as a URL should */
    const char *path = strncmp(rest, "//", 2) == 0 ? rest + 2 : rest;
    *out = NULL;
    if (!path[0])
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "job store: no file path in the URL");
    /* SQLite takes an empty file for a new database: a store truncated by
       accident would come back empty with no word said */
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 0)
        return svc_fail(err, GS_ERR_FORMAT,
                        "job store '%s' is an empty file, not a job store (move it away to "
                        "start a new store)",
                        path);
    sqlite_store *s = calloc(1, sizeof *s);
    if (!s)
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    gs_status st = GS_OK;
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        st = svc_fail(err, GS_ERR_IO, "cannot open job store '%s': %s", path,
                      s->db ? sqlite3_errmsg(s->db) : "out of memory");
        goto out;
    }
    sqlite3_busy_timeout(s->db, 10000);
    if ((st = sql_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err)) != GS_OK)
        goto out;
    /* one transaction, so that processes opening the same file at once create
       or upgrade it once, one after the other */
    if ((st = sql_begin(s, err)) != GS_OK)
        goto out;
    if ((st = sql_exec(s, JOBS_TABLE("jobs"), err)) == GS_OK &&
        (st = sql_exec(s, JOBS_INDEX, err)) == GS_OK &&
        (st = sql_exec(s,
                       "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"
                       "INSERT OR IGNORE INTO meta VALUES ('schema', '" SCHEMA_VERSION "');",
                       err)) == GS_OK &&
        (st = sq_workers_schema(s, err)) == GS_OK && (st = sq_keys_schema(s, err)) == GS_OK)
        st = migrate(s, err);
    if ((st = sql_end(s, st, err)) != GS_OK)
        goto out;
    s->base.ops = &sqlite_ops;
    *out = &s->base;
    return GS_OK;
out:
    if (err && !strstr(err->msg, path)) /* "file is not a database": which file */
        svc_error_prefix(err, "'%s'", path);
    sqlite3_close(s->db);
    free(s);
    return st;
}

static void sq_close(job_store *js)
{
    sqlite_store *s = sq(js);
    sqlite3_close(s->db);
    free(s);
}

/* ---- reading rows ---- */

#define JOB_COLUMNS                                                                                \
    "id, owner, model, worker, status, priority, attempts, cancel_requested, step, steps,"         \
    " megapixelsteps, created_ms, started_ms, finished_ms, lease_expires_ms, params, result,"      \
    " error, preview_step, eta_s"

static char *dup_text(sqlite3_stmt *q, int col)
{
    const char *t = sql_text(q, col);
    return t ? strdup(t) : NULL;
}

static void copy_text(char *dst, size_t n, sqlite3_stmt *q, int col)
{
    const char *t = sql_text(q, col);
    snprintf(dst, n, "%s", t ? t : "");
}

static gs_status read_row(sqlite3_stmt *q, job_record *r, svc_error *err)
{
    memset(r, 0, sizeof *r);
    copy_text(r->id, sizeof r->id, q, 0);
    copy_text(r->owner, sizeof r->owner, q, 1);
    copy_text(r->model, sizeof r->model, q, 2);
    copy_text(r->worker, sizeof r->worker, q, 3);
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
    gs_status st = sql_status(q, 4, &r->status, err);
    if (st != GS_OK) {
        job_record_clear(r);
        return st;
    }
    if (!r->params || (sqlite3_column_type(q, 16) != SQLITE_NULL && !r->result) ||
        (sqlite3_column_type(q, 17) != SQLITE_NULL && !r->error)) {
        job_record_clear(r);
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory reading a job");
    }
    return GS_OK;
}

/* The job's row into out; *found = 0 when there is no such job. */
static gs_status get_row(sqlite_store *s, const char *id, job_record *out, int *found,
                         svc_error *err)
{
    sqlite3_stmt *q;
    int row;
    *found = 0;
    gs_status st = sql_first(s, err, "reading a job", &q, &row,
                             "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1", "s", id);
    if (st == GS_OK && row && (st = read_row(q, out, err)) == GS_OK)
        *found = 1;
    sqlite3_finalize(q);
    return st;
}

static gs_status sq_get(job_store *js, const char *id, job_record *out, svc_error *err)
{
    int found;
    gs_status st = get_row(sq(js), id, out, &found, err);
    if (st == GS_OK && !found)
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "no job with id '%s'", id);
    return st;
}

/* ---- submit ---- */

static gs_status sq_submit(job_store *js, const char *id, const char *owner, const char *model,
                           int priority, const char *params_json, double megapixelsteps,
                           int64_t now_ms, int *position, svc_error *err)
{
    sqlite_store *s = sq(js);
    gs_status st = sql_begin(s, err);
    if (st != GS_OK)
        return st;
    int added = 0;
    st = sql_run(s, err, "queueing a job", &added,
                 "INSERT INTO jobs (id, owner, model, priority, status, params, megapixelsteps,"
                 " created_ms) VALUES (?1, ?2, ?3, ?4, 'queued', ?5, ?6, ?7)"
                 " ON CONFLICT (id) DO NOTHING",
                 "sssisdI", id, owner, model, priority, params_json, megapixelsteps, now_ms);
    if (st == GS_OK && !added)
        st = svc_fail(err, GS_ERR_INVALID_ARGUMENT, "a job with id '%s' exists already", id);
    if (st == GS_OK && position)
        st = sql_int(s, err, "counting the queue", position, NULL,
                     "SELECT count(*) FROM jobs WHERE status = 'queued' AND"
                     " (priority > ?1 OR (priority = ?1 AND seq < ?2))",
                     "iI", priority, (int64_t)sqlite3_last_insert_rowid(s->db));
    return sql_end(s, st, err);
}

/* ---- claim ---- */

/* " AND model IN (?,?,...)" with n placeholders (n > 0) at sql + k; the new length. */
static int model_in(char *sql, size_t size, int k, int n)
{
    k += snprintf(sql + k, size - (size_t)k, " AND model IN (?");
    for (int i = 1; i < n; i++)
        k += snprintf(sql + k, size - (size_t)k, ",?");
    return k + snprintf(sql + k, size - (size_t)k, ")");
}

/* The best queued job's id (restricted to the n models when n > 0, and to
   the n_only models of only when only is not NULL); "" when none. The one
   statement built at run time, and so bound by hand: its number of values
   varies. */
static gs_status best_queued(sqlite_store *s, const char *const *models, int n,
                             const char *const *only, int n_only, char id[JOB_ID_LEN + 1],
                             int *priority, int64_t *created, svc_error *err)
{
    /* "model IN (?,?,...)": two bytes a placeholder */
    char sql[300 + 2 * (STORE_MAX_PREFER + STORE_MAX_ONLY)];
    int k = snprintf(sql, sizeof sql,
                     "SELECT id, priority, created_ms FROM jobs WHERE status = 'queued'");
    if (n > 0)
        k = model_in(sql, sizeof sql, k, n);
    if (only)
        k = model_in(sql, sizeof sql, k, n_only);
    snprintf(sql + k, sizeof sql - (size_t)k, " ORDER BY priority DESC, seq LIMIT 1");
    id[0] = '\0';
    sqlite3_stmt *q;
    int row;
    gs_status st = GS_OK;
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
        return sql_fail(s, err, "looking for a job");
    for (int i = 0; st == GS_OK && i < n; i++)
        if (sqlite3_bind_text(q, i + 1, models[i], -1, SQLITE_STATIC) != SQLITE_OK)
            st = sql_fail(s, err, "looking for a job");
    for (int i = 0; st == GS_OK && only && i < n_only; i++)
        if (sqlite3_bind_text(q, n + i + 1, only[i], -1, SQLITE_STATIC) != SQLITE_OK)
            st = sql_fail(s, err, "looking for a job");
    if (st == GS_OK && (st = sql_step(s, err, "looking for a job", q, &row)) == GS_OK && row) {
        copy_text(id, JOB_ID_LEN + 1, q, 0);
        *priority = sqlite3_column_int(q, 1);
        *created = sqlite3_column_int64(q, 2);
    }
    sqlite3_finalize(q);
    return st;
}

static gs_status sq_claim(job_store *js, const char *worker, const char *const *prefer,
                          int n_prefer, const char *const *only, int n_only, int64_t now_ms,
                          int lease_ms, int64_t starve_ms, job_record *out, int *claimed,
                          svc_error *err)
{
    sqlite_store *s = sq(js);
    gs_status st = sql_begin(s, err);
    if (st != GS_OK)
        return st;
    char best[JOB_ID_LEN + 1], pref[JOB_ID_LEN + 1] = "";
    int bp = 0, pp = 0;
    int64_t bc = 0, pc = 0;
    st = best_queued(s, NULL, 0, only, n_only, best, &bp, &bc, err);
    if (st == GS_OK && n_prefer > 0 && best[0])
        st = best_queued(s, prefer, n_prefer, only, n_only, pref, &pp, &pc, err);
    /* a loaded model's job goes first, unless the best job outranks it or has starved */
    const char *pick = best;
    if (pref[0] && bp <= pp && now_ms - bc <= starve_ms)
        pick = pref;
    if (st == GS_OK && pick[0])
        st = sql_run(s, err, "claiming a job", NULL,
                     "UPDATE jobs SET status = 'running', worker = ?1, lease_expires_ms = ?2,"
                     " started_ms = ?3, attempts = attempts + 1, step = 0, preview_step = 0,"
                     " eta_s = -1 WHERE id = ?4 AND status = 'queued'",
                     "sIIs", worker, now_ms + lease_ms, now_ms, pick);
    if (st == GS_OK && pick[0])
        st = get_row(s, pick, out, claimed, err);
    st = sql_end(s, st, err);
    if (st != GS_OK && *claimed) {
        job_record_clear(out);
        *claimed = 0;
    }
    return st;
}

/* ---- heartbeat, finish, release, cancel ---- */

static gs_status sq_heartbeat(job_store *js, const char *id, const char *worker, int64_t now_ms,
                              int lease_ms, const job_progress *p, int *cancel, int *lost,
                              svc_error *err)
{
    int held = 0;
    gs_status st = sql_int(sq(js), err, "renewing a lease", cancel, &held,
                           "UPDATE jobs SET lease_expires_ms = ?1, step = ?2, steps = ?3,"
                           " preview_step = ?4, eta_s = ?5"
                           " WHERE id = ?6 AND status = 'running' AND worker = ?7"
                           " RETURNING cancel_requested",
                           "Iiiidss", now_ms + lease_ms, p->step, p->steps, p->preview_step,
                           p->eta_s, id, worker);
    *lost = !held;
    return st;
}

static gs_status sq_finish(job_store *js, const char *id, const char *worker, job_status status,
                           const char *result_json, const char *error, int64_t now_ms,
                           int *recorded, svc_error *err)
{
    int n = 0;
    gs_status st =
        sql_run(sq(js), err, "recording a result", &n,
                "UPDATE jobs SET status = ?1, result = ?2, error = ?3, finished_ms = ?4,"
                " lease_expires_ms = NULL WHERE id = ?5 AND status = 'running' AND worker = ?6",
                "sssIss", job_status_name(status), result_json, error, now_ms, id, worker);
    *recorded = n == 1;
    return st;
}

static gs_status sq_release(job_store *js, const char *id, const char *worker, int *released,
                            svc_error *err)
{
    int n = 0;
    gs_status st =
        sql_run(sq(js), err, "releasing a job", &n,
                "UPDATE jobs SET status = 'queued', worker = NULL, lease_expires_ms = NULL,"
                " step = 0, preview_step = 0, eta_s = -1,"
                " attempts = max(attempts - 1, 0)"
                " WHERE id = ?1 AND status = 'running' AND worker = ?2",
                "ss", id, worker);
    *released = n == 1;
    return st;
}

static gs_status sq_cancel(job_store *js, const char *id, int64_t now_ms, job_status *status,
                           svc_error *err)
{
    sqlite_store *s = sq(js);
    gs_status st = sql_begin(s, err);
    if (st != GS_OK)
        return st;
    sqlite3_stmt *q;
    int row;
    st = sql_first(s, err, "cancelling a job", &q, &row,
                   "UPDATE jobs SET"
                   " status = CASE status WHEN 'queued' THEN 'cancelled' ELSE status END,"
                   " finished_ms = CASE status WHEN 'queued' THEN ?1 ELSE finished_ms END,"
                   " cancel_requested = CASE status WHEN 'running' THEN 1"
                   "  ELSE cancel_requested END"
                   " WHERE id = ?2 RETURNING status",
                   "Is", now_ms, id);
    if (st == GS_OK && !row)
        st = svc_fail(err, GS_ERR_INVALID_ARGUMENT, "no job with id '%s'", id);
    if (st == GS_OK && (st = sql_status(q, 0, status, err)) == GS_OK)
        st = sql_drain(s, err, "cancelling a job", q);
    sqlite3_finalize(q);
    return sql_end(s, st, err);
}

/* ---- lease expiry ---- */

/* A running job is expired when its lease ran out (?worker NULL) or its
   worker is the dead one named. */
#define EXPIRED_JOB                                                                                \
    " status = 'running' AND (CASE WHEN ?4 IS NULL THEN lease_expires_ms < ?2"                     \
    " ELSE worker = ?4 END)"

static gs_status sq_expire_leases(job_store *js, int64_t now_ms, const char *worker,
                                  int max_attempts, const char *reason, int *requeued, int *failed,
                                  svc_error *err)
{
    sqlite_store *s = sq(js);
    gs_status st = sql_begin(s, err);
    if (st != GS_OK)
        return st;
    /* used-up attempts first, so a job is never both requeued and failed */
    st = sql_run(s, err, "expiring leases", failed,
                 "UPDATE jobs SET status = 'failed', error = ?1, finished_ms = ?2, worker = NULL,"
                 " lease_expires_ms = NULL WHERE" EXPIRED_JOB " AND attempts >= ?3",
                 "sIis", reason, now_ms, max_attempts, worker);
    if (st == GS_OK)
        st = sql_run(s, err, "expiring leases", requeued,
                     "UPDATE jobs SET status = 'queued', worker = NULL, lease_expires_ms = NULL,"
                     " step = 0, preview_step = 0, eta_s = -1"
                     " WHERE" EXPIRED_JOB, /* ?1 and ?3 unused: bound for the numbering */
                     "sIis", reason, now_ms, max_attempts, worker);
    st = sql_end(s, st, err);
    if (st != GS_OK)
        *requeued = *failed = 0;
    return st;
}

/* ---- counts and lists ---- */

static gs_status sq_counts(job_store *js, const char *owner, int counts[5], svc_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q;
    int row;
    gs_status st = sql_prepare(s, err, "counting jobs", &q,
                               "SELECT status, count(*) FROM jobs WHERE (?1 IS NULL OR owner = ?1)"
                               " GROUP BY status",
                               "s", owner);
    while (st == GS_OK && (st = sql_step(s, err, "counting jobs", q, &row)) == GS_OK && row) {
        job_status k;
        if ((st = sql_status(q, 0, &k, err)) == GS_OK)
            counts[k] = sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    return st;
}

static gs_status sq_list(job_store *js, int status, const char *owner, int max, job_record **out,
                         int *n, svc_error *err)
{
    sqlite_store *s = sq(js);
    job_record *list = calloc(max > 0 ? (size_t)max : 1, sizeof *list);
    if (!list)
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    sqlite3_stmt *q;
    int row = 1;
    /* a filter bound as NULL means any, so one statement serves every filter */
    gs_status st =
        sql_prepare(s, err, "listing jobs", &q,
                    "SELECT " JOB_COLUMNS " FROM jobs WHERE (?1 IS NULL OR status = ?1)"
                    " AND (?2 IS NULL OR owner = ?2) ORDER BY seq DESC LIMIT ?3",
                    "ssi", status < 0 ? NULL : job_status_name((job_status)status), owner, max);
    while (st == GS_OK && *n < max && (st = sql_step(s, err, "listing jobs", q, &row)) == GS_OK &&
           row)
        if ((st = read_row(q, &list[*n], err)) == GS_OK)
            (*n)++;
    sqlite3_finalize(q);
    if (st != GS_OK) {
        store_list_free(list, *n);
        *n = 0;
        return st;
    }
    *out = list;
    return GS_OK;
}

static gs_status sq_depth_by_model(job_store *js, const char *owner,
                                   void (*fn)(void *user, const char *model, int queued,
                                              int running),
                                   void *user, svc_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q;
    int row;
    gs_status st = sql_prepare(s, err, "counting the queue", &q,
                               "SELECT model, sum(status = 'queued'), sum(status = 'running')"
                               " FROM jobs WHERE status IN ('queued', 'running')"
                               " AND (?1 IS NULL OR owner = ?1) GROUP BY model ORDER BY model",
                               "s", owner);
    while (st == GS_OK && (st = sql_step(s, err, "counting the queue", q, &row)) == GS_OK && row)
        fn(user, sql_text(q, 0), sqlite3_column_int(q, 1), sqlite3_column_int(q, 2));
    sqlite3_finalize(q);
    return st;
}

/* PRAGMA quick_check reads every page (O(size), about a second per GB) but
   skips the index-to-table cross checks of integrity_check. */
static gs_status sq_check(job_store *js, svc_error *err)
{
    sqlite_store *s = sq(js);
    sqlite3_stmt *q;
    int row;
    gs_status st = sql_prepare(s, err, "checking the database", &q, "PRAGMA quick_check(1)", "");
    if (st == GS_OK && (st = sql_step(s, err, "checking the database", q, &row)) == GS_OK && row &&
        strcmp(sql_text(q, 0), "ok") != 0)
        st = svc_fail(err, GS_ERR_IO, "job store %s is damaged: %s",
                      sqlite3_db_filename(s->db, "main"), sql_text(q, 0));
    sqlite3_finalize(q);
    return st;
}

static const store_ops sqlite_ops = {
    .check = sq_check,
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
    .disk_bytes = sq_disk_bytes,
    .purge = sq_purge,
    .worker_report = sq_worker_report,
    .worker_remove = sq_worker_remove,
    .workers_list = sq_workers_list,
    .key_add = sq_key_add,
    .keys_list = sq_keys_list,
    .key_revoke = sq_key_revoke,
};
