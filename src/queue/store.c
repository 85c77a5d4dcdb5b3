/*
 * store - the engine-independent half of the job store: store_open picks an
 * engine by the URL's scheme, and each store_* call does what is the same for
 * every engine (ids, defaults, argument checks, the outputs of a call that
 * finds nothing) before it goes through the handle's ops table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "queue/store.h"
#include "queue/store_engine.h"

/* ---- engines ---- */

typedef struct store_engine {
    const char *scheme; /* as written before the colon, compared ignoring case */
    const char *name;   /* for messages */
    store_open_fn open; /* NULL: known, but not in this build */
    int plain_paths;    /* takes a URL without a scheme, as a file path */
    int holds_blobs;    /* a server every machine reaches: blobs go in it too */
} store_engine;

static const store_engine engines[] = {
    {"sqlite", "SQLite", store_sqlite_open, 1, 0},
    {"postgres", "PostgreSQL", store_pg_open, 0, 1},
    {"postgresql", "PostgreSQL", store_pg_open, 0, 1},
};

#define N_ENGINES (int)(sizeof engines / sizeof engines[0])

/* Length of the scheme url starts with, 0 when none. RFC 3986: a letter, then
   letters, digits, '+', '-' or '.', then ':'; so "/a:b" and "./a:b" are paths. */
static size_t scheme_len(const char *url)
{
    char c = url[0];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
        return 0;
    size_t n = strspn(url, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.");
    return url[n] == ':' ? n : 0;
}

gs_status store_open(const char *url, job_store **out, svc_error *err)
{
    *out = NULL;
    if (!url || !url[0])
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "job store: no URL or path given");
    size_t n = scheme_len(url);
    for (int i = 0; i < N_ENGINES; i++) {
        const store_engine *e = &engines[i];
        int match =
            n ? strlen(e->scheme) == n && strncasecmp(url, e->scheme, n) == 0 : e->plain_paths;
        if (!match)
            continue;
        if (!e->open)
            return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "job store: %s store not built yet",
                            e->name);
        return e->open(url, n ? url + n + 1 : url, out, err);
    }
    /* the URL itself is not repeated: one for a server may carry a password */
    char known[128];
    size_t k = 0;
    for (int i = 0; i < N_ENGINES && k < sizeof known; i++)
        k +=
            (size_t)snprintf(known + k, sizeof known - k, "%s%s", i ? ", " : "", engines[i].scheme);
    return svc_fail(err, GS_ERR_INVALID_ARGUMENT,
                    "job store: unknown URL scheme '%.*s' (known: %s; write a relative file"
                    " path with a colon in its first part as ./PATH)",
                    (int)(n < 32 ? n : 32), url, known);
}

int store_holds_blobs(const char *url)
{
    size_t n = url ? scheme_len(url) : 0;
    for (int i = 0; n && i < N_ENGINES; i++)
        if (strlen(engines[i].scheme) == n && strncasecmp(url, engines[i].scheme, n) == 0)
            return engines[i].holds_blobs;
    return 0;
}

void store_close(job_store *s)
{
    if (s)
        s->ops->close(s);
}

/* ---- what every engine shares ---- */

static const char *const status_names[] = {"queued", "running", "succeeded", "failed", "cancelled"};

int64_t store_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *job_status_name(job_status s)
{
    return (unsigned)s < 5 ? status_names[s] : "unknown";
}

int job_status_parse(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (strcmp(name, status_names[i]) == 0)
            return i;
    return -1;
}

void job_record_clear(job_record *r)
{
    free(r->params);
    free(r->result);
    free(r->error);
    memset(r, 0, sizeof *r);
}

void store_list_free(job_record *list, int n)
{
    for (int i = 0; i < n; i++)
        job_record_clear(&list[i]);
    free(list);
}

void store_workers_free(worker_record *list, int n)
{
    for (int i = 0; i < n; i++) {
        free(list[i].models);
        free(list[i].info);
    }
    free(list);
}

/* UUIDv7: 48-bit Unix milliseconds, version 7, random bits: sorts by creation,
   and is unique across processes and machines without asking the database. */
static void uuid7(int64_t now_ms, char out[JOB_ID_LEN + 1])
{
    uint8_t b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
        for (int i = 0; i < 16; i++)
            b[i] = (uint8_t)(rand() >> 7);
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)((uint64_t)now_ms >> (8 * (5 - i)));
    b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
    snprintf(out, JOB_ID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

/* ---- operations ---- */

void store_new_id(int64_t now_ms, char id[JOB_ID_LEN + 1])
{
    uuid7(now_ms, id);
}

gs_status store_submit(job_store *s, const char *owner, const char *model, int priority,
                       const char *params_json, double megapixelsteps, int64_t now_ms,
                       char id[JOB_ID_LEN + 1], int *position, svc_error *err)
{
    uuid7(now_ms, id);
    return store_submit_as(s, id, owner, model, priority, params_json, megapixelsteps, now_ms,
                           position, err);
}

gs_status store_submit_as(job_store *s, const char *id, const char *owner, const char *model,
                          int priority, const char *params_json, double megapixelsteps,
                          int64_t now_ms, int *position, svc_error *err)
{
    if (!job_id_ok(id))
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "'%.40s' is not a job id", id);
    return s->ops->submit(s, id, owner ? owner : "", model ? model : "", priority, params_json,
                          megapixelsteps, now_ms, position, err);
}

gs_status store_get(job_store *s, const char *id, job_record *out, svc_error *err)
{
    return s->ops->get(s, id, out, err);
}

gs_status store_claim(job_store *s, const char *worker, const char *const *prefer, int n_prefer,
                      int64_t now_ms, int lease_ms, int64_t starve_ms, job_record *out,
                      int *claimed, svc_error *err)
{
    return store_claim_among(s, worker, prefer, n_prefer, NULL, 0, now_ms, lease_ms, starve_ms, out,
                             claimed, err);
}

gs_status store_claim_among(job_store *s, const char *worker, const char *const *prefer,
                            int n_prefer, const char *const *only, int n_only, int64_t now_ms,
                            int lease_ms, int64_t starve_ms, job_record *out, int *claimed,
                            svc_error *err)
{
    *claimed = 0;
    if (!prefer || n_prefer < 0)
        n_prefer = 0;
    if (n_prefer > STORE_MAX_PREFER)
        n_prefer = STORE_MAX_PREFER;
    if (only && n_only <= 0)
        return GS_OK; /* no model: no job it could run */
    if (n_only > STORE_MAX_ONLY)
        n_only = STORE_MAX_ONLY;
    return s->ops->claim(s, worker, prefer, n_prefer, only, only ? n_only : 0, now_ms, lease_ms,
                         starve_ms, out, claimed, err);
}

gs_status store_heartbeat(job_store *s, const char *id, const char *worker, int64_t now_ms,
                          int lease_ms, const job_progress *p, int *cancel, int *lost,
                          svc_error *err)
{
    *cancel = 0;
    *lost = 1;
    return s->ops->heartbeat(s, id, worker, now_ms, lease_ms, p, cancel, lost, err);
}

gs_status store_release(job_store *s, const char *id, const char *worker, int *released,
                        svc_error *err)
{
    *released = 0;
    return s->ops->release(s, id, worker, released, err);
}

gs_status store_finish(job_store *s, const char *id, const char *worker, job_status status,
                       const char *result_json, const char *error, int64_t now_ms, int *recorded,
                       svc_error *err)
{
    *recorded = 0;
    if (status < JOB_SUCCEEDED || status > JOB_CANCELLED)
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "a job cannot finish as '%s'",
                        job_status_name(status));
    return s->ops->finish(s, id, worker, status, result_json, error, now_ms, recorded, err);
}

gs_status store_cancel(job_store *s, const char *id, int64_t now_ms, job_status *status,
                       svc_error *err)
{
    return s->ops->cancel(s, id, now_ms, status, err);
}

/* Both expiries: worker NULL for the leases that ran out. */
static gs_status expire(job_store *s, int64_t now_ms, const char *worker, int max_attempts,
                        int *requeued, int *failed, svc_error *err)
{
    *requeued = *failed = 0;
    char reason[160];
    snprintf(reason, sizeof reason,
             "the job's worker died or stopped responding on each of its %d attempts",
             max_attempts);
    return s->ops->expire_leases(s, now_ms, worker, max_attempts, reason, requeued, failed, err);
}

gs_status store_expire_leases(job_store *s, int64_t now_ms, int max_attempts, int *requeued,
                              int *failed, svc_error *err)
{
    return expire(s, now_ms, NULL, max_attempts, requeued, failed, err);
}

gs_status store_expire_worker(job_store *s, const char *worker, int64_t now_ms, int max_attempts,
                              int *requeued, int *failed, svc_error *err)
{
    if (!worker) {
        *requeued = *failed = 0;
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "no worker named");
    }
    return expire(s, now_ms, worker, max_attempts, requeued, failed, err);
}

gs_status store_list(job_store *s, int status, const char *owner, int max, job_record **out, int *n,
                     svc_error *err)
{
    *out = NULL;
    *n = 0;
    return s->ops->list(s, status, owner, max, out, n, err);
}

gs_status store_depth_by_model(job_store *s, const char *owner,
                               void (*fn)(void *user, const char *model, int queued, int running),
                               void *user, svc_error *err)
{
    return s->ops->depth_by_model(s, owner, fn, user, err);
}

gs_status store_counts(job_store *s, const char *owner, int counts[5], svc_error *err)
{
    memset(counts, 0, 5 * sizeof counts[0]);
    return s->ops->counts(s, owner, counts, err);
}

gs_status store_queue_position(job_store *s, const char *id, int *position, svc_error *err)
{
    *position = -1;
    return s->ops->queue_position(s, id, position, err);
}

gs_status store_active_count(job_store *s, const char *owner, int *n, svc_error *err)
{
    *n = 0;
    return s->ops->active_count(s, owner, n, err);
}

gs_status store_stats(job_store *s, const char *owner, int64_t since_ms, int max_jobs,
                      job_stats *out, svc_error *err)
{
    memset(out, 0, sizeof *out);
    return s->ops->stats(s, owner, since_ms, max_jobs, out, err);
}

gs_status store_check(job_store *s, svc_error *err)
{
    return s->ops->check(s, err);
}

gs_status store_disk_bytes(job_store *s, int64_t *bytes, svc_error *err)
{
    *bytes = 0;
    return s->ops->disk_bytes(s, bytes, err);
}

gs_status store_purge(job_store *s, int64_t before_ms, void (*fn)(void *user, const char *id),
                      void *user, int *n, svc_error *err)
{
    *n = 0;
    return s->ops->purge(s, before_ms, fn, user, n, err);
}

gs_status store_worker_report(job_store *s, const char *name, int pid, const char *models_json,
                              const char *info_json, int64_t now_ms, svc_error *err)
{
    return s->ops->worker_report(s, name, pid, models_json ? models_json : "[]",
                                 info_json ? info_json : "{}", now_ms, err);
}

gs_status store_worker_remove(job_store *s, const char *name, svc_error *err)
{
    return s->ops->worker_remove(s, name, err);
}

gs_status store_workers_list(job_store *s, int64_t since_ms, worker_record **out, int *n,
                             svc_error *err)
{
    *out = NULL;
    *n = 0;
    return s->ops->workers_list(s, since_ms, out, n, err);
}

gs_status store_listen(job_store *s, store_listen_what what, int *supported, svc_error *err)
{
    *supported = s->ops->listen != NULL;
    return *supported ? s->ops->listen(s, what, err) : GS_OK;
}

int store_listen_fd(job_store *s)
{
    return s->ops->listen_fd ? s->ops->listen_fd(s) : -1;
}

gs_status store_changes(job_store *s, void (*fn)(void *user, char kind, const char *id), void *user,
                        int *n, svc_error *err)
{
    int dummy;
    if (!n)
        n = &dummy;
    *n = 0;
    return s->ops->changes ? s->ops->changes(s, fn, user, n, err) : GS_OK;
}

int job_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n != JOB_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || s[i] == '-'))
            return 0;
    return 1;
}
