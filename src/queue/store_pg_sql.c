/*
 * store_pg_sql - the statement helpers of the PostgreSQL engine: values bound
 * from a string of type letters (never spliced into the SQL), each statement
 * prepared once per connection on first use, and results read by column, so
 * that an operation reads as its SQL and little else.
 *
 * Values go as text, which PostgreSQL parses exactly (integers, and doubles
 * written with 17 digits); a text array goes in the binary array format, so
 * no quoting of its elements is ever needed.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/store_pg_private.h"

#define MAX_VALUES 16

/* The type OIDs of PostgreSQL's catalog (pg_type.dat), fixed since 7.x. */
enum {
    OID_BYTEA = 17,
    OID_INT8 = 20,
    OID_INT4 = 23,
    OID_TEXT = 25,
    OID_FLOAT8 = 701,
    OID_TEXT_ARRAY = 1009
};

typedef struct values {
    int n;
    Oid types[MAX_VALUES];
    const char *v[MAX_VALUES];
    int len[MAX_VALUES];
    int format[MAX_VALUES]; /* 0 text, 1 binary */
    char num[MAX_VALUES][32];
    char *owned[MAX_VALUES]; /* binary arrays, freed with values_free */
} values;

static void values_free(values *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->owned[i]);
}

static void put_u32(char *p, uint32_t x)
{
    x = htonl(x);
    memcpy(p, &x, 4);
}

/* A one-dimensional text[] in the binary format of array_send: dimensions,
   no-nulls flag, element type, then each element as length and bytes. */
static char *text_array(const char *const *items, int n, int *len)
{
    size_t size = 12 + (n > 0 ? 8 : 0);
    for (int i = 0; i < n; i++)
        size += 4 + strlen(items[i]);
    char *buf = malloc(size), *p = buf;
    if (!buf)
        return NULL;
    put_u32(p, n > 0 ? 1 : 0), put_u32(p + 4, 0), put_u32(p + 8, OID_TEXT);
    p += 12;
    if (n > 0) {
        put_u32(p, (uint32_t)n), put_u32(p + 4, 1); /* length and lower bound */
        p += 8;
    }
    for (int i = 0; i < n; i++) {
        size_t k = strlen(items[i]);
        put_u32(p, (uint32_t)k);
        memcpy(p + 4, items[i], k);
        p += 4 + k;
    }
    *len = (int)size;
    return buf;
}

static gs_status bind_values(values *b, svc_error *err, const char *what, const char *types,
                             va_list ap)
{
    memset(b, 0, sizeof *b);
    int n = (int)strlen(types);
    if (n > MAX_VALUES)
        return svc_fail(err, GS_ERR_INTERNAL, "job store: %s: %d values, at most %d", what, n,
                        MAX_VALUES);
    for (int i = 0; i < n; i++, b->n++) {
        char *num = b->num[i];
        switch (types[i]) {
        case 'i':
            b->types[i] = OID_INT4;
            snprintf(num, sizeof b->num[i], "%d", va_arg(ap, int));
            b->v[i] = num;
            break;
        case 'I':
            b->types[i] = OID_INT8;
            snprintf(num, sizeof b->num[i], "%" PRId64, va_arg(ap, int64_t));
            b->v[i] = num;
            break;
        case 'd':
            b->types[i] = OID_FLOAT8;
            snprintf(num, sizeof b->num[i], "%.17g", va_arg(ap, double));
            b->v[i] = num;
            break;
        case 's':
            b->types[i] = OID_TEXT;
            b->v[i] = va_arg(ap, const char *);
            break;
        case 'b': /* bytes as they are: the binary format of bytea */
            b->types[i] = OID_BYTEA;
            b->format[i] = 1;
            b->v[i] = va_arg(ap, const char *);
            b->len[i] = va_arg(ap, int);
            break;
        case 'a': {
            const char *const *items = va_arg(ap, const char *const *);
            int count = va_arg(ap, int);
            b->types[i] = OID_TEXT_ARRAY;
            b->format[i] = 1;
            if (!items) /* SQL NULL */
                break;
            if (!(b->owned[i] = text_array(items, count, &b->len[i]))) {
                values_free(b);
                return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
            }
            b->v[i] = b->owned[i];
            break;
        }
        default:
            values_free(b);
            return svc_fail(err, GS_ERR_INTERNAL, "job store: %s: no value type '%c'", what,
                            types[i]);
        }
    }
    return GS_OK;
}

/* The name sql is prepared under on s->conn ("" when none: too many to keep,
   so it is parsed at each use), preparing it the first time. */
static gs_status statement(pg_store *s, svc_error *err, const char *what, const char *sql,
                           const values *b, char name[24])
{
    name[0] = '\0';
    for (int i = 0; i < s->n_prepared; i++)
        if (s->prepared[i] == sql) {
            snprintf(name, 24, "gesso_%d", i);
            return GS_OK;
        }
    if (s->n_prepared == PG_MAX_STATEMENTS)
        return GS_OK;
    snprintf(name, 24, "gesso_%d", s->n_prepared);
    PGresult *r = PQprepare(s->conn, name, sql, b->n, b->types);
    gs_status st = PQresultStatus(r) == PGRES_COMMAND_OK ? GS_OK : pgs_fail(s, err, what, r);
    PQclear(r);
    if (st == GS_OK)
        s->prepared[s->n_prepared++] = sql;
    return st;
}

static gs_status vquery(pg_store *s, svc_error *err, const char *what, PGresult **res, int binary,
                        const char *sql, const char *types, va_list ap)
{
    *res = NULL;
    values b;
    char name[24];
    gs_status st = pgs_ready(s, err);
    if (st != GS_OK || (st = bind_values(&b, err, what, types, ap)) != GS_OK)
        return st;
    if ((st = statement(s, err, what, sql, &b, name)) == GS_OK) {
        PGresult *r = name[0]
                          ? PQexecPrepared(s->conn, name, b.n, b.v, b.len, b.format, binary)
                          : PQexecParams(s->conn, sql, b.n, b.types, b.v, b.len, b.format, binary);
        ExecStatusType t = PQresultStatus(r);
        if (t == PGRES_TUPLES_OK || t == PGRES_COMMAND_OK) {
            *res = r;
        } else {
            st = r ? pgs_fail(s, err, what, r) : svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
            PQclear(r);
        }
    }
    values_free(&b);
    return st;
}

gs_status pgs_query(pg_store *s, svc_error *err, const char *what, PGresult **res, const char *sql,
                    const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    gs_status st = vquery(s, err, what, res, 0, sql, types, ap);
    va_end(ap);
    return st;
}

gs_status pgs_query_binary(pg_store *s, svc_error *err, const char *what, PGresult **res,
                           const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    gs_status st = vquery(s, err, what, res, 1, sql, types, ap);
    va_end(ap);
    return st;
}

gs_status pgs_run(pg_store *s, svc_error *err, const char *what, int *changes, const char *sql,
                  const char *types, ...)
{
    PGresult *r;
    va_list ap;
    va_start(ap, types);
    gs_status st = vquery(s, err, what, &r, 0, sql, types, ap);
    va_end(ap);
    if (st == GS_OK && changes)
        *changes = (int)strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    return st;
}

gs_status pgs_int(pg_store *s, svc_error *err, const char *what, int *value, int *found,
                  const char *sql, const char *types, ...)
{
    PGresult *r;
    va_list ap;
    va_start(ap, types);
    gs_status st = vquery(s, err, what, &r, 0, sql, types, ap);
    va_end(ap);
    int row = st == GS_OK && PQntuples(r) > 0;
    if (row)
        *value = pgs_col_int(r, 0, 0);
    if (found)
        *found = row;
    PQclear(r);
    return st;
}

gs_status pgs_exec(pg_store *s, const char *what, const char *sql, svc_error *err)
{
    gs_status st = pgs_ready(s, err);
    if (st != GS_OK)
        return st;
    PGresult *r = PQexec(s->conn, sql);
    ExecStatusType t = PQresultStatus(r);
    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK)
        st = r ? pgs_fail(s, err, what, r) : svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    PQclear(r);
    return st;
}

/* ---- reading results ---- */

const char *pgs_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int pgs_col_int(const PGresult *r, int row, int col)
{
    return (int)strtol(PQgetvalue(r, row, col), NULL, 10);
}

int64_t pgs_col_int64(const PGresult *r, int row, int col)
{
    return (int64_t)strtoll(PQgetvalue(r, row, col), NULL, 10);
}

double pgs_col_double(const PGresult *r, int row, int col)
{
    return strtod(PQgetvalue(r, row, col), NULL);
}

gs_status pgs_col_status(const PGresult *r, int row, int col, job_status *out, svc_error *err)
{
    const char *name = pgs_text(r, row, col);
    int k = name ? job_status_parse(name) : -1;
    if (k < 0)
        return svc_fail(err, GS_ERR_FORMAT, "job store: a job has the unknown status '%s'",
                        name ? name : "(null)");
    *out = (job_status)k;
    return GS_OK;
}
