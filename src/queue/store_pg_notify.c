/*
 * store_pg_notify - the PostgreSQL engine's change notifications: a trigger
 * on jobs (store_pg_schema.c, schema 2) calls pg_notify on every insert and
 * update, and this file LISTENs and reads what arrives.
 *
 * Two channels, both named from meta's notify_channel (C below): C itself
 * carries one notification per changed job ('q' or 'j' then the id), for
 * front ends; C_queued an empty one whenever a job becomes queued, for idle
 * workers, so that a worker busy with a long job is not sent every other
 * worker's progress. PostgreSQL folds equal notifications of one transaction
 * into one and delivers them at commit, so a listener never sees a change
 * before it can read it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_pg_private.h"

/* LISTEN on this session, the channel's name read from meta (an operator may
   give each gesso installation sharing a database its own). Text in, so that
   it may run inside pgs_ready without preparing statements. */
static int listen_now(pg_store *s, char *why, size_t n)
{
    PGresult *r = PQexec(s->conn, "SELECT value FROM meta WHERE key = 'notify_channel'");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        snprintf(why, n, "%s", PQntuples(r) == 0 ? "no notify_channel in meta" : "");
        PQclear(r);
        return -1;
    }
    char channel[128];
    snprintf(channel, sizeof channel, "%s%s", PQgetvalue(r, 0, 0),
             s->listen_what == STORE_LISTEN_QUEUED ? "_queued" : "");
    PQclear(r);
    char *quoted = PQescapeIdentifier(s->conn, channel, strlen(channel));
    if (!quoted) {
        snprintf(why, n, "out of memory");
        return -1;
    }
    char sql[300];
    snprintf(sql, sizeof sql, "LISTEN %s", quoted);
    PQfreemem(quoted);
    r = PQexec(s->conn, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    PQclear(r);
    if (!ok)
        snprintf(why, n, "LISTEN failed");
    return ok ? 0 : -1;
}

gs_status pgs_listen(job_store *js, store_listen_what what, svc_error *err)
{
    pg_store *s = pgs(js);
    gs_status st = pgs_ready(s, err);
    if (st != GS_OK)
        return st;
    s->listen_what = what;
    char why[128] = "";
    if (listen_now(s, why, sizeof why) != 0)
        return pgs_fail(s, err, "listening for changes", NULL);
    s->listening = 1;
    return GS_OK;
}

int pgs_relisten(pg_store *s)
{
    if (!s->listening)
        return 0;
    s->missed = 1; /* whatever was sent while no session listened */
    char why[128];
    return listen_now(s, why, sizeof why);
}

int pgs_listen_fd(job_store *js)
{
    pg_store *s = pgs(js);
    return s->listening && PQstatus(s->conn) == CONNECTION_OK ? PQsocket(s->conn) : -1;
}

gs_status pgs_changes(job_store *js, void (*fn)(void *user, char kind, const char *id), void *user,
                      int *n, svc_error *err)
{
    pg_store *s = pgs(js);
    if (!s->listening)
        return GS_OK;
    /* what came on the socket; a lost connection is made anew (and listens
       again) here rather than at the next operation, which may be far off */
    if (!PQconsumeInput(s->conn) || PQstatus(s->conn) != CONNECTION_OK || s->session_ended) {
        gs_status st = pgs_ready(s, err);
        if (st != GS_OK)
            return st;
    }
    if (s->missed) {
        s->missed = 0;
        fn(user, STORE_CHANGE_ALL, "");
        (*n)++;
    }
    PGnotify *m;
    while ((m = PQnotifies(s->conn)) != NULL) {
        const char *p = m->extra ? m->extra : "";
        if (s->listen_what == STORE_LISTEN_QUEUED)
            fn(user, STORE_CHANGE_QUEUE, "");
        else if ((p[0] == STORE_CHANGE_JOB || p[0] == STORE_CHANGE_QUEUE) &&
                 strlen(p + 1) == JOB_ID_LEN)
            fn(user, p[0], p + 1);
        (*n)++;
        PQfreemem(m);
    }
    return GS_OK;
}
