/*
 * store_pg - the job store's PostgreSQL engine, for many front ends and
 * workers on many machines sharing one database. Every state change is one
 * statement, atomic on its own: a claim locks the rows it looks at with
 * FOR UPDATE SKIP LOCKED, so concurrent claimers each take a different job
 * without waiting on one another; a result is recorded only by the lease
 * holder. Arrival order is the seq column; timestamps are the callers'
 * milliseconds, never the database server's clock.
 *
 * One connection per handle, used by one thread at a time (as for SQLite);
 * store_pg_conn.c reconnects after a lost connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_pg_private.h"

static const store_ops pg_ops;

/* ---- open ---- */

gs_status store_pg_open(const char *url, const char *rest, job_store **out, svc_error *err)
{
    *out = NULL;
    /* libpq reads "key=value" strings too, but a job store is named by URL */
    if (strncmp(rest, "//", 2) != 0)
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT,
                        "job store: write a PostgreSQL store as postgresql://[USER@]HOST[:PORT]/DB"
                        " (or postgresql:// alone to use the PG* environment variables)");
    pg_store *s = calloc(1, sizeof *s);
    if (!s)
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    gs_status st = pgs_connect(s, url, err);
    if (st == GS_OK)
        st = pgs_schema_open(s, err);
    if (st != GS_OK) {
        PQfinish(s->conn);
        free(s);
        return st;
    }
    s->base.ops = &pg_ops;
    *out = &s->base;
    return GS_OK;
}

static void pg_close(job_store *js)
{
    pg_store *s = pgs(js);
    PQfinish(s->conn);
    free(s);
}

/* ---- reading rows ---- */

#define JOB_COLUMNS                                                                                \
    "j.id, j.owner, j.model, j.worker, j.status, j.priority, j.attempts, j.cancel_requested,"      \
    " j.step, j.steps, j.megapixelsteps, j.created_ms, j.started_ms, j.finished_ms,"               \
    " j.lease_expires_ms, j.params, j.result, j.error, j.preview_step, j.eta_s"

static char *dup_text(const PGresult *r, int row, int col)
{
    const char *t = pgs_text(r, row, col);
    return t ? strdup(t) : NULL;
}

static void copy_text(char *dst, size_t n, const PGresult *r, int row, int col)
{
    const char *t = pgs_text(r, row, col);
    snprintf(dst, n, "%s", t ? t : "");
}

static gs_status read_row(const PGresult *r, int row, job_record *out, svc_error *err)
{
    memset(out, 0, sizeof *out);
    copy_text(out->id, sizeof out->id, r, row, 0);
    copy_text(out->owner, sizeof out->owner, r, row, 1);
    copy_text(out->model, sizeof out->model, r, row, 2);
    copy_text(out->worker, sizeof out->worker, r, row, 3);
    out->priority = pgs_col_int(r, row, 5);
    out->attempts = pgs_col_int(r, row, 6);
    out->cancel_requested = pgs_col_int(r, row, 7);
    out->step = pgs_col_int(r, row, 8);
    out->steps = pgs_col_int(r, row, 9);
    out->megapixelsteps = pgs_col_double(r, row, 10);
    out->created_ms = pgs_col_int64(r, row, 11);
    out->started_ms = pgs_col_int64(r, row, 12);
    out->finished_ms = pgs_col_int64(r, row, 13);
    out->lease_expires_ms = pgs_col_int64(r, row, 14);
    out->params = dup_text(r, row, 15);
    out->result = dup_text(r, row, 16);
    out->error = dup_text(r, row, 17);
    out->preview_step = pgs_col_int(r, row, 18);
    out->eta_s = pgs_col_double(r, row, 19);
    gs_status st = pgs_col_status(r, row, 4, &out->status, err);
    if (st != GS_OK) {
        job_record_clear(out);
        return st;
    }
    if (!out->params || (!PQgetisnull(r, row, 16) && !out->result) ||
        (!PQgetisnull(r, row, 17) && !out->error)) {
        job_record_clear(out);
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory reading a job");
    }
    return GS_OK;
}

static gs_status pg_get(job_store *js, const char *id, job_record *out, svc_error *err)
{
    PGresult *r;
    gs_status st = pgs_query(pgs(js), err, "reading a job", &r,
                             "SELECT " JOB_COLUMNS " FROM jobs j WHERE j.id = $1", "s", id);
    if (st != GS_OK)
        return st;
    if (PQntuples(r) == 0)
        st = svc_fail(err, GS_ERR_INVALID_ARGUMENT, "no job with id '%s'", id);
    else
        st = read_row(r, 0, out, err);
    PQclear(r);
    return st;
}

/* ---- submit ---- */

static gs_status pg_submit(job_store *js, const char *id, const char *owner, const char *model,
                           int priority, const char *params_json, double megapixelsteps,
                           int64_t now_ms, int *position, svc_error *err)
{
    /* one statement: the row and its place in the queue, or no row when the
       id is taken. The sum reads the counts as they were before the insert
       (one snapshot for the whole statement): every job queued then at this
       priority or above is ahead of the newest. */
    int found = 0, ahead = 0;
    gs_status st =
        pgs_int(pgs(js), err, "queueing a job", &ahead, &found,
                "WITH ins AS ("
                " INSERT INTO jobs (id, owner, model, priority, status, params,"
                " megapixelsteps, created_ms)"
                " VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7)"
                " ON CONFLICT (id) DO NOTHING RETURNING seq, priority)"
                " SELECT (SELECT coalesce(sum(n), 0)::integer FROM queue_counts c"
                "  WHERE c.priority >= ins.priority) FROM ins",
                "sssisdI", id, owner, model, priority, params_json, megapixelsteps, now_ms);
    if (st == GS_OK && !found)
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "a job with id '%s' exists already", id);
    if (st == GS_OK && position)
        *position = ahead;
    return st;
}

/* ---- claim ---- */

/* The best queued job and the best one for the preferred models, each
   locked or passed over when another claimer holds it; the preferred one is
   taken unless the best outranks it or has waited past starve_ms. The
   preferred models are looked up one by one, each the head of its own range
   of jobs_queue_model: a model rare in a long queue is then found at once,
   where one scan of the whole queue in order would read past every job of
   the others (the price: a row locked per model for the statement). */
static gs_status pg_claim(job_store *js, const char *worker, const char *const *prefer,
                          int n_prefer, const char *const *only, int n_only, int64_t now_ms,
                          int lease_ms, int64_t starve_ms, job_record *out, int *claimed,
                          svc_error *err)
{
    PGresult *r;
    gs_status st = pgs_query(
        pgs(js), err, "claiming a job", &r,
        "WITH best AS MATERIALIZED ("
        "  SELECT id, priority, created_ms FROM jobs WHERE status = 'queued'"
        "  AND ($6::text[] IS NULL OR model = ANY($6))"
        "  ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED),"
        " pref AS MATERIALIZED ("
        "  SELECT c.id, c.priority FROM unnest($4::text[]) AS m(model) CROSS JOIN LATERAL ("
        "   SELECT id, priority, seq FROM jobs WHERE status = 'queued' AND model = m.model"
        "   ORDER BY priority DESC, seq LIMIT 1 FOR UPDATE SKIP LOCKED) c"
        "  WHERE $6::text[] IS NULL OR m.model = ANY($6)"
        "  ORDER BY c.priority DESC, c.seq LIMIT 1),"
        " pick AS ("
        "  SELECT CASE WHEN pref.id IS NOT NULL AND best.priority <= pref.priority"
        "   AND $3 - best.created_ms <= $5 THEN pref.id ELSE best.id END AS id"
        "  FROM best LEFT JOIN pref ON true)"
        " UPDATE jobs j SET status = 'running', worker = $1, lease_expires_ms = $2,"
        " started_ms = $3, attempts = j.attempts + 1, step = 0, preview_step = 0, eta_s = -1"
        " FROM pick WHERE j.id = pick.id AND j.status = 'queued'"
        " RETURNING " JOB_COLUMNS,
        "sIIaIa", worker, now_ms + lease_ms, now_ms, prefer, n_prefer, starve_ms, only, n_only);
    if (st != GS_OK)
        return st;
    if (PQntuples(r) > 0 && (st = read_row(r, 0, out, err)) == GS_OK)
        *claimed = 1;
    PQclear(r);
    return st;
}

/* ---- heartbeat, finish, release, cancel ---- */

static gs_status pg_heartbeat(job_store *js, const char *id, const char *worker, int64_t now_ms,
                              int lease_ms, const job_progress *p, int *cancel, int *lost,
                              svc_error *err)
{
    int held = 0;
    gs_status st = pgs_int(pgs(js), err, "renewing a lease", cancel, &held,
                           "UPDATE jobs SET lease_expires_ms = $1, step = $2, steps = $3,"
                           " preview_step = $4, eta_s = $5"
                           " WHERE id = $6 AND status = 'running' AND worker = $7"
                           " RETURNING cancel_requested",
                           "Iiiidss", now_ms + lease_ms, p->step, p->steps, p->preview_step,
                           p->eta_s, id, worker);
    *lost = !held;
    return st;
}

static gs_status pg_finish(job_store *js, const char *id, const char *worker, job_status status,
                           const char *result_json, const char *error, int64_t now_ms,
                           int *recorded, svc_error *err)
{
    int n = 0;
    gs_status st =
        pgs_run(pgs(js), err, "recording a result", &n,
                "UPDATE jobs SET status = $1, result = $2, error = $3, finished_ms = $4,"
                " lease_expires_ms = NULL WHERE id = $5 AND status = 'running' AND worker = $6",
                "sssIss", job_status_name(status), result_json, error, now_ms, id, worker);
    *recorded = n == 1;
    return st;
}

static gs_status pg_release(job_store *js, const char *id, const char *worker, int *released,
                            svc_error *err)
{
    int n = 0;
    gs_status st =
        pgs_run(pgs(js), err, "releasing a job", &n,
                "UPDATE jobs SET status = 'queued', worker = NULL, lease_expires_ms = NULL,"
                " step = 0, preview_step = 0, eta_s = -1, attempts = greatest(attempts - 1, 0)"
                " WHERE id = $1 AND status = 'running' AND worker = $2",
                "ss", id, worker);
    *released = n == 1;
    return st;
}

static gs_status pg_cancel(job_store *js, const char *id, int64_t now_ms, job_status *status,
                           svc_error *err)
{
    PGresult *r;
    gs_status st =
        pgs_query(pgs(js), err, "cancelling a job", &r,
                  "UPDATE jobs SET"
                  " status = CASE status WHEN 'queued' THEN 'cancelled' ELSE status END,"
                  " finished_ms = CASE status WHEN 'queued' THEN $1 ELSE finished_ms END,"
                  " cancel_requested = CASE status WHEN 'running' THEN 1"
                  "  ELSE cancel_requested END"
                  " WHERE id = $2 RETURNING status",
                  "Is", now_ms, id);
    if (st != GS_OK)
        return st;
    if (PQntuples(r) == 0)
        st = svc_fail(err, GS_ERR_INVALID_ARGUMENT, "no job with id '%s'", id);
    else
        st = pgs_col_status(r, 0, 0, status, err);
    PQclear(r);
    return st;
}

/* ---- lease expiry ---- */

/* A running job is expired when its lease ran out ($4 NULL) or its worker is
   the dead one named. */
#define EXPIRED_JOB                                                                                \
    " status = 'running' AND (($4 IS NULL AND lease_expires_ms < $2) OR worker = $4)"

/* One statement, so two front ends reaping at once never both act on a job:
   the second waits for the first's row locks, then finds the job no longer
   running. Used-up attempts fail and the rest requeue, never both. */
static gs_status pg_expire_leases(job_store *js, int64_t now_ms, const char *worker,
                                  int max_attempts, const char *reason, int *requeued, int *failed,
                                  svc_error *err)
{
    PGresult *r;
    gs_status st = pgs_query(
        pgs(js), err, "expiring leases", &r,
        "WITH failed AS ("
        "  UPDATE jobs SET status = 'failed', error = $1, finished_ms = $2, worker = NULL,"
        "  lease_expires_ms = NULL WHERE" EXPIRED_JOB " AND attempts >= $3 RETURNING 1),"
        " requeued AS ("
        "  UPDATE jobs SET status = 'queued', worker = NULL, lease_expires_ms = NULL,"
        "  step = 0, preview_step = 0, eta_s = -1"
        "  WHERE" EXPIRED_JOB " AND attempts < $3 RETURNING 1)"
        " SELECT (SELECT count(*) FROM failed), (SELECT count(*) FROM requeued)",
        "sIis", reason, now_ms, max_attempts, worker);
    if (st != GS_OK)
        return st;
    *failed = pgs_col_int(r, 0, 0);
    *requeued = pgs_col_int(r, 0, 1);
    PQclear(r);
    return GS_OK;
}

/* ---- lists ---- */

static gs_status pg_list(job_store *js, int status, const char *owner, int max, job_record **out,
                         int *n, svc_error *err)
{
    PGresult *r;
    /* a filter bound as NULL means any, so one statement serves every filter */
    gs_status st =
        pgs_query(pgs(js), err, "listing jobs", &r,
                  "SELECT " JOB_COLUMNS " FROM jobs j WHERE ($1 IS NULL OR j.status = $1)"
                  " AND ($2 IS NULL OR j.owner = $2) ORDER BY j.seq DESC LIMIT greatest($3, 0)",
                  "ssi", status < 0 ? NULL : job_status_name((job_status)status), owner, max);
    if (st != GS_OK)
        return st;
    int rows = PQntuples(r);
    job_record *list = calloc(rows > 0 ? (size_t)rows : 1, sizeof *list);
    if (!list)
        st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    for (int i = 0; st == GS_OK && i < rows; i++)
        if ((st = read_row(r, i, &list[i], err)) == GS_OK)
            (*n)++;
    PQclear(r);
    if (st != GS_OK) {
        store_list_free(list, *n);
        *n = 0;
        return st;
    }
    *out = list;
    return GS_OK;
}

static const store_ops pg_ops = {
    .check = pgs_check,
    .close = pg_close,
    .submit = pg_submit,
    .get = pg_get,
    .claim = pg_claim,
    .heartbeat = pg_heartbeat,
    .release = pg_release,
    .finish = pg_finish,
    .cancel = pg_cancel,
    .expire_leases = pg_expire_leases,
    .list = pg_list,
    .depth_by_model = pgs_depth_by_model,
    .counts = pgs_counts,
    .queue_position = pgs_queue_position,
    .active_count = pgs_active_count,
    .stats = pgs_stats,
    .disk_bytes = pgs_disk_bytes,
    .purge = pgs_purge,
    .worker_report = pgs_worker_report,
    .worker_remove = pgs_worker_remove,
    .workers_list = pgs_workers_list,
    .listen = pgs_listen,
    .listen_fd = pgs_listen_fd,
    .changes = pgs_changes,
    .key_add = pgs_key_add,
    .keys_list = pgs_keys_list,
    .key_revoke = pgs_key_revoke,
};
