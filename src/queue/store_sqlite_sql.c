/*
 * store_sqlite_sql - the statement helpers of the SQLite engine: prepare and
 * bind in one call from a string of type letters, step, run to completion,
 * and the transaction brackets, each failing with SQLite's message and what
 * was being done, so that an operation reads as its SQL and little else.
 */
#include <stdarg.h>
#include <string.h>

#include "queue/store_sqlite_private.h"

/* The database file, so an operator knows which one is at fault. */
static const char *db_file(sqlite_store *s)
{
    const char *f = sqlite3_db_filename(s->db, "main");
    return f && *f ? f : "(memory)";
}

gs_status sql_fail(sqlite_store *s, svc_error *err, const char *what)
{
    return svc_fail(err, GS_ERR_IO, "job store %s: %s: %s", db_file(s), what,
                    sqlite3_errmsg(s->db));
}

gs_status sql_exec(sqlite_store *s, const char *sql, svc_error *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        gs_status st =
            svc_fail(err, GS_ERR_IO, "job store %s: %s", db_file(s), msg ? msg : "error");
        sqlite3_free(msg);
        return st;
    }
    return GS_OK;
}

gs_status sql_begin(sqlite_store *s, svc_error *err)
{
    return sql_exec(s, "BEGIN IMMEDIATE", err);
}

gs_status sql_end(sqlite_store *s, gs_status st, svc_error *err)
{
    if (st == GS_OK)
        return sql_exec(s, "COMMIT", err);
    /* the first failure is the one worth reporting, so the rollback's own is dropped */
    sql_exec(s, "ROLLBACK", NULL);
    return st;
}

static gs_status vprepare(sqlite_store *s, svc_error *err, const char *what, sqlite3_stmt **q,
                          const char *sql, const char *types, va_list ap)
{
    *q = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, q, NULL) != SQLITE_OK)
        return sql_fail(s, err, what);
    /* a letter too many or too few is a bug here, not a NULL to store quietly */
    int n = (int)strlen(types), want = sqlite3_bind_parameter_count(*q);
    if (n != want) {
        sqlite3_finalize(*q);
        *q = NULL;
        return svc_fail(err, GS_ERR_INTERNAL, "job store: %s: %d values for %d parameters", what, n,
                        want);
    }
    int rc = SQLITE_OK;
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        switch (types[i]) {
        case 'i': rc = sqlite3_bind_int(*q, i + 1, va_arg(ap, int)); break;
        case 'I': rc = sqlite3_bind_int64(*q, i + 1, va_arg(ap, int64_t)); break;
        case 'd': rc = sqlite3_bind_double(*q, i + 1, va_arg(ap, double)); break;
        case 's':
            rc = sqlite3_bind_text(*q, i + 1, va_arg(ap, const char *), -1, SQLITE_STATIC);
            break;
        default: rc = SQLITE_MISUSE; break;
        }
    }
    if (rc != SQLITE_OK) {
        gs_status st = sql_fail(s, err, what);
        sqlite3_finalize(*q);
        *q = NULL;
        return st;
    }
    return GS_OK;
}

gs_status sql_prepare(sqlite_store *s, svc_error *err, const char *what, sqlite3_stmt **q,
                      const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    gs_status st = vprepare(s, err, what, q, sql, types, ap);
    va_end(ap);
    return st;
}

gs_status sql_step(sqlite_store *s, svc_error *err, const char *what, sqlite3_stmt *q, int *row)
{
    int rc = sqlite3_step(q);
    *row = rc == SQLITE_ROW;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? GS_OK : sql_fail(s, err, what);
}

gs_status sql_first(sqlite_store *s, svc_error *err, const char *what, sqlite3_stmt **q, int *row,
                    const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    gs_status st = vprepare(s, err, what, q, sql, types, ap);
    va_end(ap);
    *row = 0;
    if (st == GS_OK && (st = sql_step(s, err, what, *q, row)) != GS_OK) {
        sqlite3_finalize(*q);
        *q = NULL;
    }
    return st;
}

gs_status sql_drain(sqlite_store *s, svc_error *err, const char *what, sqlite3_stmt *q)
{
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        ;
    return rc == SQLITE_DONE ? GS_OK : sql_fail(s, err, what);
}

gs_status sql_run(sqlite_store *s, svc_error *err, const char *what, int *changes, const char *sql,
                  const char *types, ...)
{
    sqlite3_stmt *q;
    va_list ap;
    va_start(ap, types);
    gs_status st = vprepare(s, err, what, &q, sql, types, ap);
    va_end(ap);
    if (st != GS_OK)
        return st;
    if ((st = sql_drain(s, err, what, q)) == GS_OK && changes)
        *changes = sqlite3_changes(s->db);
    sqlite3_finalize(q);
    return st;
}

gs_status sql_int(sqlite_store *s, svc_error *err, const char *what, int *value, int *found,
                  const char *sql, const char *types, ...)
{
    sqlite3_stmt *q;
    va_list ap;
    va_start(ap, types);
    gs_status st = vprepare(s, err, what, &q, sql, types, ap);
    va_end(ap);
    if (st != GS_OK)
        return st;
    int row;
    if ((st = sql_step(s, err, what, q, &row)) == GS_OK && row) {
        *value = sqlite3_column_int(q, 0);
        st = sql_drain(s, err, what, q);
    }
    if (found)
        *found = st == GS_OK && row;
    sqlite3_finalize(q);
    return st;
}

const char *sql_text(sqlite3_stmt *q, int col)
{
    return (const char *)sqlite3_column_text(q, col);
}

gs_status sql_status(sqlite3_stmt *q, int col, job_status *out, svc_error *err)
{
    const char *name = sql_text(q, col);
    int k = name ? job_status_parse(name) : -1;
    if (k < 0)
        return svc_fail(err, GS_ERR_FORMAT, "job store: a job has the unknown status '%s'",
                        name ? name : "(null)");
    *out = (job_status)k;
    return GS_OK;
}
