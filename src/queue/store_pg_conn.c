/*
 * store_pg_conn - the PostgreSQL engine's connection: opened from a URL with
 * libpq's conventions (the PG* environment variables fill in what the URL
 * leaves out), a lost connection told apart from a failed statement, and one
 * reconnection tried before the next operation, so that a store outlives a
 * database restart without the caller doing anything.
 *
 * Messages name the server (host, port, database) and never carry the
 * password: libpq quotes the pieces of a URL it cannot parse, so the
 * passwords a URL holds are struck out of what it says.
 */
#include <ctype.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_pg_private.h"

/* ---- passwords in a URL ---- */

#define MAX_SECRETS 8

typedef struct secrets {
    const char *at[MAX_SECRETS];
    size_t len[MAX_SECRETS];
    int n;
} secrets;

static void add_secret(secrets *s, const char *p, size_t n)
{
    if (n > 0 && s->n < MAX_SECRETS) {
        s->at[s->n] = p;
        s->len[s->n++] = n;
    }
}

/* Finds the passwords url holds: the one after the user name, and the
   password= values of its query. libpq ends the user name and password at the
   first '@' or '/', so in a password with a raw '@' or '/' (not written %40 or
   %2F) it would take the rest for a host or a port and quote that piece in
   its message, where no search for the password finds it: such a URL is
   refused before libpq sees it. */
static gs_status find_secrets(const char *url, secrets *out, svc_error *err)
{
    memset(out, 0, sizeof *out);
    const char *p = strstr(url, "://");
    p = p ? p + 3 : url;
    const char *query = strchr(p, '?');
    const char *end = query ? query : p + strlen(p);
    const char *at = NULL;
    for (const char *c = p; c < end; c++)
        if (*c == '@')
            at = c;
    const char *colon = at ? memchr(p, ':', (size_t)(at - p)) : NULL;
    if (colon) {
        if (memchr(p, '@', (size_t)(at - p)) || memchr(p, '/', (size_t)(at - p)))
            return svc_fail(err, GS_ERR_INVALID_ARGUMENT,
                            "job store: the PostgreSQL URL has an '@' that is not the one before"
                            " its host (write '@' and '/' in a password or a database name as"
                            " %%40 and %%2F)");
        add_secret(out, colon + 1, (size_t)(at - colon - 1));
    }
    for (const char *q = query; q && *q;) {
        q++; /* past '?' or '&' */
        size_t n = strcspn(q, "&#");
        if (n > 9 && strncmp(q, "password=", 9) == 0)
            add_secret(out, q + 9, n - 9);
        q += n;
        if (*q != '&')
            break;
    }
    return GS_OK;
}

/* Replaces each occurrence of the n bytes at what in msg (of cap bytes) with
   with. */
static void strike(char *msg, size_t cap, const char *what, size_t n, const char *with)
{
    if (n == 0)
        return;
    char out[SVC_ERRMSG_MAX];
    size_t k = 0, w = strlen(with);
    for (const char *m = msg; *m && k + 1 < sizeof out;) {
        if (strncmp(m, what, n) == 0) {
            size_t c = w < sizeof out - 1 - k ? w : sizeof out - 1 - k;
            memcpy(out + k, with, c);
            k += c;
            m += n;
        } else {
            out[k++] = *m++;
        }
    }
    k = k < cap - 1 ? k : cap - 1;
    memcpy(msg, out, k);
    msg[k] = '\0';
}

/* libpq's message on one line, without its "ERROR:  " or "FATAL:  " and
   without the password the connection uses or the URL's (sec may be NULL). */
static void clean_message(pg_store *s, const char *m, const char *url, const secrets *sec,
                          char *out, size_t cap)
{
    const char *lead = strstr(m, ":  ");
    if (lead && lead - m < 12)
        m = lead + 3;
    size_t k = 0;
    for (; *m && k + 2 < cap; m++) {
        if (*m == '\n') { /* a hint on a line of its own */
            out[k++] = ';';
            out[k++] = ' ';
        } else if (*m != '\t' && *m != '\r') {
            out[k++] = *m;
        }
    }
    while (k > 0 && (out[k - 1] == ' ' || out[k - 1] == ';'))
        k--;
    out[k] = '\0';
    if (url)
        strike(out, cap, url, strlen(url), "(the URL)");
    for (int i = 0; sec && i < sec->n; i++)
        strike(out, cap, sec->at[i], sec->len[i], "***");
    const char *pass = s->conn ? PQpass(s->conn) : NULL;
    if (pass)
        strike(out, cap, pass, strlen(pass), "***");
}

/* ---- connecting ---- */

/* Notices and warnings ("relation already exists, skipping"), which libpq
   would print on stderr, are dropped: the store has nothing to say with them.
   A FATAL one is the server ending the session while it was idle (libpq
   hands an error that comes between queries to the notice receiver). */
static void on_notice(void *arg, const PGresult *r)
{
    pg_store *s = arg;
    const char *severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    if (severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0))
        s->session_ended = 1;
}

/* s->where: the server as libpq resolved it (a socket directory for a local one). */
static void describe(pg_store *s, const char *url, const secrets *sec)
{
    const char *host = PQhost(s->conn), *port = PQport(s->conn), *db = PQdb(s->conn);
    char where[sizeof s->where];
    snprintf(where, sizeof where, "%s%s%s/%s", host && *host ? host : "(default host)",
             port && *port ? ":" : "", port ? port : "", db && *db ? db : "(default database)");
    clean_message(s, where, url, sec, s->where, sizeof s->where);
}

gs_status pgs_connect(pg_store *s, const char *url, svc_error *err)
{
    secrets sec;
    gs_status st = find_secrets(url, &sec, err);
    if (st != GS_OK)
        return st;
    /* store_open takes the scheme in any case; libpq in lower case only */
    char *lower = strdup(url);
    if (!lower)
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    for (char *c = lower; *c && *c != ':'; c++)
        *c = (char)tolower((unsigned char)*c);
    /* a URL libpq cannot read is the caller's mistake, not the network's */
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(lower, &why);
    if (!opts) {
        char msg[SVC_ERRMSG_MAX - 64];
        clean_message(s, why ? why : "out of memory", url, &sec, msg, sizeof msg);
        PQfreemem(why);
        free(lower);
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT,
                        "job store: the PostgreSQL URL is malformed: %s", msg);
    }
    PQconninfoFree(opts);
    /* defaults placed before the URL, which overrides them; a setting left
       out of both falls to its PG* variable, so a default is given only
       where that variable is not set */
    const char *keys[5], *vals[5];
    int k = 0;
    keys[k] = "fallback_application_name", vals[k++] = "gesso";
    if (!getenv("PGCONNECT_TIMEOUT")) /* libpq's own default waits for TCP to give up */
        keys[k] = "connect_timeout", vals[k++] = "10";
    if (!getenv("PGCLIENTENCODING")) /* the job JSON is UTF-8 */
        keys[k] = "client_encoding", vals[k++] = "UTF8";
    keys[k] = "dbname", vals[k++] = lower;
    keys[k] = NULL, vals[k] = NULL;
    s->conn = PQconnectdbParams(keys, vals, 1);
    free(lower);
    if (!s->conn)
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    PQsetNoticeReceiver(s->conn, on_notice, s);
    describe(s, url, &sec);
    if (PQstatus(s->conn) != CONNECTION_OK) {
        char msg[SVC_ERRMSG_MAX - 128];
        clean_message(s, PQerrorMessage(s->conn), url, &sec, msg, sizeof msg);
        return svc_fail(err, GS_ERR_IO, "job store: cannot connect to PostgreSQL at %s: %s",
                        s->where, msg);
    }
    return GS_OK;
}

gs_status pgs_ready(pg_store *s, svc_error *err)
{
    /* a server that ended the session while it was idle (a restart,
       pg_terminate_backend) said so on the socket: reading that now runs the
       operation on a new connection instead of failing it on the old one. A
       connection gone without a word (a cut network) fails its next
       operation, and the one after reconnects. */
    struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
    if (PQstatus(s->conn) == CONNECTION_OK && p.fd >= 0 && poll(&p, 1, 0) > 0 &&
        PQconsumeInput(s->conn))
        PQisBusy(s->conn); /* parses what came: on_notice sees a FATAL */
    if (PQstatus(s->conn) == CONNECTION_OK && !s->session_ended)
        return GS_OK;
    s->session_ended = 0;
    PQreset(s->conn);
    s->n_prepared = 0; /* a new session has none of the old one's statements */
    if (PQstatus(s->conn) == CONNECTION_OK && pgs_relisten(s) == 0)
        return GS_OK;
    char msg[SVC_ERRMSG_MAX - 128];
    clean_message(s, PQerrorMessage(s->conn), NULL, NULL, msg, sizeof msg);
    return svc_fail(err, GS_ERR_IO, "job store: cannot reconnect to PostgreSQL at %s: %s", s->where,
                    msg);
}

gs_status pgs_fail(pg_store *s, svc_error *err, const char *what, const PGresult *r)
{
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!m || !m[0])
        m = r ? PQresultErrorMessage(r) : "";
    if (!m[0])
        m = PQerrorMessage(s->conn);
    char msg[SVC_ERRMSG_MAX - 160];
    clean_message(s, m, NULL, NULL, msg, sizeof msg);
    if (PQstatus(s->conn) == CONNECTION_BAD)
        return svc_fail(err, GS_ERR_IO,
                        "job store (PostgreSQL at %s): %s: the connection was lost (%s); the"
                        " next operation reconnects",
                        s->where, what, msg);
    return svc_fail(err, GS_ERR_IO, "job store (PostgreSQL at %s): %s: %s", s->where, what, msg);
}
