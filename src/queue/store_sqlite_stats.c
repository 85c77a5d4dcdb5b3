/*
 * store_sqlite_stats - accounting over the job table: per-owner activity for
 * API-key limits, throughput and latency figures for /v1/stats, and the purge
 * that enforces result retention.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "queue/store_sqlite_private.h"

gs_status store_active_count(job_store *s, const char *owner, int *n, gs_error *err)
{
    sqlite3_stmt *q = NULL;
    *n = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*) FROM jobs WHERE owner = ? AND status IN (0, 1)",
                           -1, &q, NULL) != SQLITE_OK)
        return store_sql_fail(s, err, "counting a key's jobs");
    sqlite3_bind_text(q, 1, owner, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? GS_OK : store_sql_fail(s, err, "counting a key's jobs");
}

gs_status store_queue_position(job_store *s, const char *id, int *position, gs_error *err)
{
    sqlite3_stmt *q = NULL;
    *position = -1;
    if (sqlite3_prepare_v2(
            s->db,
            "SELECT (SELECT count(*) FROM jobs o WHERE o.status = 0 AND"
            " (o.priority > j.priority OR (o.priority = j.priority AND o.seq < j.seq)))"
            " FROM jobs j WHERE j.id = ? AND j.status = 0",
            -1, &q, NULL) != SQLITE_OK)
        return store_sql_fail(s, err, "reading a queue position");
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        *position = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW || rc == SQLITE_DONE
               ? GS_OK
               : store_sql_fail(s, err, "reading a queue position");
}

/* A growable array of samples. */
typedef struct samples {
    double *v;
    int n, cap;
} samples;

static int samples_add(samples *s, double x)
{
    if (s->n == s->cap) {
        int cap = s->cap ? s->cap * 2 : 256;
        double *v = gs_realloc(s->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentiles 50, 90, 99. */
static void percentiles(samples *s, double out[3])
{
    static const double ranks[3] = {0.50, 0.90, 0.99};
    memset(out, 0, 3 * sizeof out[0]);
    if (s->n == 0)
        return;
    qsort(s->v, (size_t)s->n, sizeof s->v[0], cmp_double);
    for (int k = 0; k < 3; k++) {
        int i = (int)(ranks[k] * s->n + 0.999999) - 1;
        out[k] = s->v[i < 0 ? 0 : i >= s->n ? s->n - 1 : i];
    }
}

static void add_step_times(samples *steps, const unsigned char *result)
{
    if (!result)
        return;
    json_t *j = json_loads((const char *)result, 0, NULL);
    json_t *arr = j ? json_object_get(j, "step_ms") : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (json_is_number(v))
            samples_add(steps, json_number_value(v) / 1000.0);
    }
    json_decref(j);
}

gs_status store_stats(job_store *s, int64_t since_ms, int max_jobs, job_stats *out, gs_error *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT status, megapixelsteps, created_ms, started_ms, finished_ms,"
                           " result FROM jobs WHERE finished_ms >= ? AND status >= 2"
                           " ORDER BY finished_ms DESC LIMIT ?",
                           -1, &q, NULL) != SQLITE_OK)
        return store_sql_fail(s, err, "reading statistics");
    sqlite3_bind_int64(q, 1, since_ms);
    sqlite3_bind_int(q, 2, max_jobs);
    samples steps = {0}, waits = {0};
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int status = sqlite3_column_int(q, 0);
        int64_t created = sqlite3_column_int64(q, 2), started = sqlite3_column_int64(q, 3),
                finished = sqlite3_column_int64(q, 4);
        if (status == 3)
            out->failed++;
        else if (status == 4)
            out->cancelled++;
        if (status != 2)
            continue;
        out->succeeded++;
        out->megapixelsteps += sqlite3_column_double(q, 1);
        if (started > 0) {
            out->busy_s += (double)(finished - started) / 1000.0;
            if (!out->first_start_ms || started < out->first_start_ms)
                out->first_start_ms = started;
            samples_add(&waits, (double)(started - created) / 1000.0);
        }
        add_step_times(&steps, sqlite3_column_text(q, 5));
    }
    sqlite3_finalize(q);
    percentiles(&steps, out->step_s);
    percentiles(&waits, out->wait_s);
    out->step_samples = steps.n;
    out->wait_samples = waits.n;
    gs_free(steps.v);
    gs_free(waits.v);
    return rc == SQLITE_DONE ? GS_OK : store_sql_fail(s, err, "reading statistics");
}

gs_status store_purge(job_store *s, int64_t before_ms, void (*fn)(void *user, const char *id),
                      void *user, int *n, gs_error *err)
{
    *n = 0;
    gs_status st = store_sql_exec(s, "BEGIN IMMEDIATE", err);
    if (st != GS_OK)
        return st;
    sqlite3_stmt *q = NULL;
    char(*ids)[JOB_ID_LEN + 1] = NULL;
    int cap = 0;
    if (sqlite3_prepare_v2(s->db,
                           "DELETE FROM jobs WHERE status >= 2 AND finished_ms < ? RETURNING id",
                           -1, &q, NULL) != SQLITE_OK) {
        st = store_sql_fail(s, err, "purging old jobs");
        goto out;
    }
    sqlite3_bind_int64(q, 1, before_ms);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            void *grown = gs_realloc(ids, (size_t)cap * sizeof ids[0]);
            if (!grown) {
                st = gs_fail(err, GS_ERR_NO_MEMORY, "out of memory purging jobs");
                goto out;
            }
            ids = grown;
        }
        const unsigned char *id = sqlite3_column_text(q, 0);
        snprintf(ids[*n], sizeof ids[0], "%s", id ? (const char *)id : "");
        (*n)++;
    }
    if (rc != SQLITE_DONE)
        st = store_sql_fail(s, err, "purging old jobs");
out:
    sqlite3_finalize(q);
    if (st == GS_OK)
        st = store_sql_exec(s, "COMMIT", err);
    else
        store_sql_exec(s, "ROLLBACK", NULL);
    /* files go only once the rows are gone for good: a crash in between leaves
       orphan files, never jobs whose images are missing */
    if (st == GS_OK && fn)
        for (int i = 0; i < *n; i++)
            fn(user, ids[i]);
    if (st != GS_OK)
        *n = 0;
    gs_free(ids);
    return st;
}
