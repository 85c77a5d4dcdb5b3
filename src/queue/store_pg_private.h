/*
 * store_pg_private - what the files of the PostgreSQL engine share: its
 * handle, the connection and statement helpers, and the operations that live
 * outside store_pg.c (pgs_ is the engine's prefix). Not for use outside
 * src/queue.
 */
#ifndef GS_STORE_PG_PRIVATE_H
#define GS_STORE_PG_PRIVATE_H

#include <libpq-fe.h>

#include "queue/store_engine.h"

/* Statements prepared on one connection; past this many, the rest are parsed
   at each use (still with their values bound, never spliced into the text). */
#define PG_MAX_STATEMENTS 48

typedef struct pg_store {
    job_store base; /* first: a job_store * is a pg_store * */
    PGconn *conn;
    /* "host:port/db" for messages: what an operator needs to find the server,
       and nothing that could hold the password */
    char where[256];
    /* the SQL texts prepared on conn, by address (each is a literal at its one
       call site), statement i named "gesso_i"; emptied when conn is reset */
    const char *prepared[PG_MAX_STATEMENTS];
    int n_prepared;
    int session_ended; /* the server said it ended the session: reconnect */
    int listening;     /* LISTEN was asked for (listen_what says on what): again after a reset */
    store_listen_what listen_what;
    int missed; /* the connection was made anew since the last store_changes */
} pg_store;

static inline pg_store *pgs(job_store *s)
{
    return (pg_store *)s;
}

/* ---- connecting (store_pg_conn.c) ---- */

/* Connects to url (a postgres:// or postgresql:// URL; libpq's PG* variables
   fill in what it leaves out) into s->conn and s->where. A failure's message
   names the server but never holds the password, nor the URL. */
gs_status pgs_connect(pg_store *s, const char *url, svc_error *err);
/* Before an operation: a connection found broken by the last one is reset,
   once; GS_ERR_IO when that fails too. */
gs_status pgs_ready(pg_store *s, svc_error *err);
/* The failure of a statement: GS_ERR_IO with what was being done and the
   server's words, or a lost connection said as such. */
gs_status pgs_fail(pg_store *s, svc_error *err, const char *what, const PGresult *r);

/* ---- statements (store_pg_sql.c) ----
   what says what was being done, for the message of a failure. The values to
   bind follow types, one letter each:
     i int   I int64_t   d double   s const char * (NULL binds SQL NULL)
     a text array: const char *const * then int (how many); a NULL array binds SQL NULL
     b bytes (bytea): const void * then int (how many)
   and must be of exactly those types (varargs convert nothing). The statement
   is prepared on first use, with those types. */

/* Runs sql with the values: *res (PQclear by the caller) holds the rows, or
   NULL after a failure. */
gs_status pgs_query(pg_store *s, svc_error *err, const char *what, PGresult **res, const char *sql,
                    const char *types, ...);
/* pgs_query with every column of the result in binary (bytea as its bytes,
   integers big-endian): for reading blobs. */
gs_status pgs_query_binary(pg_store *s, svc_error *err, const char *what, PGresult **res,
                           const char *sql, const char *types, ...);
/* Runs a statement for its effect; *changes (may be NULL) gets the rows it
   inserted, updated or deleted. */
gs_status pgs_run(pg_store *s, svc_error *err, const char *what, int *changes, const char *sql,
                  const char *types, ...);
/* Runs a statement whose first column is an integer and puts the first row's
   into *value, which no row leaves alone; *found (may be NULL) says whether
   there was a row. */
gs_status pgs_int(pg_store *s, svc_error *err, const char *what, int *value, int *found,
                  const char *sql, const char *types, ...);
/* Runs SQL text without values or results (several statements may be one
   text: the schema's). */
gs_status pgs_exec(pg_store *s, const char *what, const char *sql, svc_error *err);

/* Reading a row of text-format results; SQL NULL reads as 0 or NULL. */
const char *pgs_text(const PGresult *r, int row, int col);
int pgs_col_int(const PGresult *r, int row, int col);
int64_t pgs_col_int64(const PGresult *r, int row, int col);
double pgs_col_double(const PGresult *r, int row, int col);
/* A status column: kept by name, as in the SQLite engine's schema 3. */
gs_status pgs_col_status(const PGresult *r, int row, int col, job_status *out, svc_error *err);

/* ---- SQL shared by several operations ---- */

/* The jobs ahead of a queued one: higher priority, or the same and earlier.
   Two counts, each a range of the queue's index, so that neither reads the
   finished jobs (the most of the table). */
#define PG_AHEAD_OF(p, s)                                                                          \
    "((SELECT count(*) FROM jobs o WHERE o.status = 'queued' AND o.priority > " p ")"              \
    " + (SELECT count(*) FROM jobs o WHERE o.status = 'queued' AND o.priority = " p                \
    " AND o.seq < " s "))"

/* ---- schema (store_pg_schema.c) ---- */

/* Creates the tables or brings them to the current schema, in one
   transaction under an advisory lock, so that front ends starting together
   on a new database create it once. */
gs_status pgs_schema_open(pg_store *s, svc_error *err);
gs_status pgs_check(job_store *js, svc_error *err);

/* ---- store_pg_stats.c ---- */
gs_status pgs_counts(job_store *js, const char *owner, int counts[5], svc_error *err);
gs_status pgs_depth_by_model(job_store *js, const char *owner,
                             void (*fn)(void *user, const char *model, int queued, int running),
                             void *user, svc_error *err);
gs_status pgs_queue_position(job_store *js, const char *id, int *position, svc_error *err);
gs_status pgs_active_count(job_store *js, const char *owner, int *n, svc_error *err);
gs_status pgs_stats(job_store *js, const char *owner, int64_t since_ms, int max_jobs,
                    job_stats *out, svc_error *err);
gs_status pgs_disk_bytes(job_store *js, int64_t *bytes, svc_error *err);
gs_status pgs_purge(job_store *js, int64_t before_ms, void (*fn)(void *user, const char *id),
                    void *user, int *n, svc_error *err);

/* ---- change notifications (store_pg_notify.c) ---- */
gs_status pgs_listen(job_store *js, store_listen_what what, svc_error *err);
int pgs_listen_fd(job_store *js);
gs_status pgs_changes(job_store *js, void (*fn)(void *user, char kind, const char *id), void *user,
                      int *n, svc_error *err);
/* After a reset: listens again on the new session (notifications sent in
   between are lost: the next store_changes says so). 0, or -1. */
int pgs_relisten(pg_store *s);

/* ---- store_pg_workers.c ---- */
gs_status pgs_worker_report(job_store *js, const char *name, int pid, const char *models_json,
                            const char *info_json, int64_t now_ms, svc_error *err);
gs_status pgs_worker_remove(job_store *js, const char *name, svc_error *err);
gs_status pgs_workers_list(job_store *js, int64_t since_ms, worker_record **out, int *n,
                           svc_error *err);

/* ---- store_pg_keys.c ---- */
gs_status pgs_key_add(job_store *js, const struct store_key *k, svc_error *err);
gs_status pgs_keys_list(job_store *js, struct store_key **out, int *n, svc_error *err);
gs_status pgs_key_revoke(job_store *js, const char *name, int64_t now_ms, int *revoked,
                         svc_error *err);

#endif
