#define _GNU_SOURCE /* memmem, nftw */
/*
 * test_store - the job store's conformance suite, run once against each
 * engine in the engines table (each case gets a fresh database from the
 * row's factory): priorities and arrival order, leases and heartbeats,
 * expiry and attempts, exactly one recorded result, cancellation, restart
 * persistence, model preference (one or several loaded models) without
 * starvation, the workers table, two processes claiming at once, release on
 * shutdown, per-owner counts, listing and queue depth, statistics and
 * retention purge, jobs queued under an id made beforehand, the bytes the
 * database takes, API keys (salted hashes; never the key on disk). Then the SQLite-only cases:
 * store_open's URLs and the upgrades of schema-1 and schema-2 files; and the PostgreSQL-only ones:
 * concurrent claimers, concurrent first opens (the migration lock), a lost
 * connection, passwords kept out of messages, schemas it does not know.
 *
 * PostgreSQL runs for real (pg_server.h): started once, by the first case
 * that needs it; without its binaries those cases fail, never skip.
 */
#include "testutil.h"

#include <ftw.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_server.h"
#include "queue/blob_store.h"
#include "queue/blob_sweep.h"
#include "queue/store.h"
#include "queue/store_keys.h"
#include "hash/sha256.h"

/* The group's scratch directory (databases of file engines, files the cases
   write), and the SQLite file there that the SQLite-only cases use. */
static char dir[128], path[256];

/* ---- engines ---- */

typedef struct engine {
    const char *name;
    /* Points url at a fresh, empty database of this engine. A factory that
       cannot have its database server fails the case, never skips it: CI
       installs every engine's server, and an engine skipped without a word
       would be a hole in the suite. */
    void (*fresh_db)(struct engine *e);
    char url[512];
} engine;

static void rm_sqlite_file(const char *file)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", file, file, file);
    assert_int_equal(system(cmd), 0);
}

static void sqlite_fresh_db(engine *e)
{
    rm_sqlite_file(path);
    snprintf(e->url, sizeof e->url, "sqlite:%s", path);
}

/* One server for the whole run, started by the first case that needs it
   (starting takes about a second; a database per case, a tenth of that). */
static pg_server pgsrv;
static int pg_tried;

static void pg_fresh_db(engine *e)
{
    if (!pg_tried) {
        pg_tried = 1;
        if (pg_server_start(&pgsrv, 0) != 0)
            fprintf(stderr, "PostgreSQL: %s\n", pgsrv.why);
    }
    if (!pgsrv.pid)
        fail_msg("no PostgreSQL server for the test: %s", pgsrv.why);
    if (pg_server_new_db(&pgsrv, e->url, sizeof e->url) != 0)
        fail_msg("cannot make a database: %s", pgsrv.why);
}

/* One row per engine: the conformance cases run against each. */
static engine engines[] = {
    {"sqlite", sqlite_fresh_db, ""},
    {"postgres", pg_fresh_db, ""},
};

#define N_ENGINES (sizeof engines / sizeof engines[0])

static engine *group_engine; /* the engine of the group being run */

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/gesso-store-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/jobs.db", dir);
    *state = group_engine;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A store on a fresh database of the case's engine. */
static job_store *fresh(void **state)
{
    engine *e = *state;
    e->fresh_db(e);
    job_store *s;
    svc_error err = {0};
    assert_int_equal(store_open(e->url, &s, &err), GS_OK);
    return s;
}

/* The URL of the database fresh gave last: to open it again, or from another process. */
static const char *url_of(void **state)
{
    return ((engine *)*state)->url;
}

static void submit(job_store *s, const char *model, int prio, int64_t now, char id[JOB_ID_LEN + 1],
                   int *pos)
{
    svc_error err = {0};
    assert_int_equal(
        store_submit(s, "key1", model, prio, "{\"prompt\":\"x\"}", 1.5, now, id, pos, &err), GS_OK);
}

static void claim(job_store *s, const char *worker, const char *prefer, int64_t now, job_record *r,
                  int *claimed)
{
    svc_error err = {0};
    assert_int_equal(
        store_claim(s, worker, &prefer, prefer ? 1 : 0, now, 1000, 60000, r, claimed, &err), GS_OK);
}

static void priority_then_arrival(void **state)
{
    job_store *s = fresh(state);
    char a[40], b[40], c[40];
    int pa, pb, pc, got;
    submit(s, "m", 0, 1000, a, &pa);
    submit(s, "m", 5, 1001, b, &pb);
    submit(s, "m", 0, 1002, c, &pc);
    assert_int_equal(pa, 0);
    assert_int_equal(pb, 0); /* ahead of a */
    assert_int_equal(pc, 2);
    assert_true(strcmp(a, c) < 0); /* UUIDv7 sorts by time */
    job_record r;
    claim(s, "w1", NULL, 2000, &r, &got);
    assert_int_equal(got, 1);
    assert_string_equal(r.id, b);
    assert_int_equal(r.status, JOB_RUNNING);
    assert_int_equal(r.attempts, 1);
    assert_string_equal(r.params, "{\"prompt\":\"x\"}");
    job_record_clear(&r);
    claim(s, "w1", NULL, 2000, &r, &got);
    assert_string_equal(r.id, a);
    job_record_clear(&r);
    claim(s, "w1", NULL, 2000, &r, &got);
    assert_string_equal(r.id, c);
    job_record_clear(&r);
    claim(s, "w1", NULL, 2000, &r, &got);
    assert_int_equal(got, 0);
    store_close(s);
}

static void exactly_one_result(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char id[40];
    int got, cancel, lost, rec;
    submit(s, "m", 0, 0, id, NULL);
    job_record r;
    claim(s, "w1", NULL, 100, &r, &got);
    job_record_clear(&r);
    assert_int_equal(store_heartbeat(s, id, "w1", 500, 1000, &(job_progress){3, 20, 2, 4.5},
                                     &cancel, &lost, &err),
                     GS_OK);
    assert_int_equal(lost, 0);
    assert_int_equal(cancel, 0);
    assert_int_equal(store_get(s, id, &r, &err), GS_OK);
    assert_int_equal(r.step, 3);
    assert_int_equal(r.preview_step, 2);
    assert_true(r.eta_s == 4.5);
    assert_int_equal(r.lease_expires_ms, 1500);
    job_record_clear(&r);
    /* another worker cannot finish it; the holder can, once */
    assert_int_equal(store_finish(s, id, "w2", JOB_SUCCEEDED, "{}", NULL, 600, &rec, &err), GS_OK);
    assert_int_equal(rec, 0);
    assert_int_equal(
        store_finish(s, id, "w1", JOB_SUCCEEDED, "{\"images\":1}", NULL, 700, &rec, &err), GS_OK);
    assert_int_equal(rec, 1);
    assert_int_equal(store_finish(s, id, "w1", JOB_FAILED, NULL, "late", 800, &rec, &err), GS_OK);
    assert_int_equal(rec, 0);
    assert_int_equal(store_get(s, id, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_SUCCEEDED);
    assert_string_equal(r.result, "{\"images\":1}");
    assert_null(r.error);
    job_record_clear(&r);
    assert_int_equal(store_heartbeat(s, id, "w1", 900, 1000, &(job_progress){4, 20, 0, -1}, &cancel,
                                     &lost, &err),
                     GS_OK);
    assert_int_equal(lost, 1);
    assert_int_equal(store_finish(s, id, "w1", JOB_RUNNING, NULL, NULL, 900, &rec, &err),
                     GS_ERR_INVALID_ARGUMENT);
    store_close(s);
}

static void expired_leases_requeue_then_fail(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char id[40];
    int got, rq, fl, rec;
    submit(s, "m", 0, 0, id, NULL);
    job_record r;
    for (int attempt = 1; attempt <= 3; attempt++) {
        claim(s, "w1", NULL, attempt * 10000, &r, &got);
        assert_int_equal(got, 1);
        assert_int_equal(r.attempts, attempt);
        job_record_clear(&r);
        /* not yet expired */
        assert_int_equal(store_expire_leases(s, attempt * 10000 + 999, 3, &rq, &fl, &err), GS_OK);
        assert_int_equal(rq + fl, 0);
        assert_int_equal(store_expire_leases(s, attempt * 10000 + 1001, 3, &rq, &fl, &err), GS_OK);
        assert_int_equal(rq, attempt < 3 ? 1 : 0);
        assert_int_equal(fl, attempt < 3 ? 0 : 1);
    }
    assert_int_equal(store_get(s, id, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_FAILED);
    assert_non_null(strstr(r.error, "3 attempts"));
    job_record_clear(&r);
    /* the stale worker's late result is dropped */
    assert_int_equal(store_finish(s, id, "w1", JOB_SUCCEEDED, "{}", NULL, 50000, &rec, &err),
                     GS_OK);
    assert_int_equal(rec, 0);
    store_close(s);
}

/* A worker seen to exit: its running jobs go back now (the attempt counts), or
   fail once they used their attempts; other workers' jobs are untouched. */
static void dead_worker_jobs_requeue_at_once(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char a[JOB_ID_LEN + 1], b[JOB_ID_LEN + 1], c[JOB_ID_LEN + 1];
    int pos, got, rq, fl;
    submit(s, "m", 0, 1000, a, &pos);
    submit(s, "m", 0, 1001, b, &pos);
    submit(s, "m", 0, 1002, c, &pos);
    job_record r;
    claim(s, "dead", NULL, 2000, &r, &got); /* a */
    job_record_clear(&r);
    claim(s, "alive", NULL, 2000, &r, &got); /* b */
    job_record_clear(&r);
    /* leases run to 3000: nothing has expired, but "dead" is known dead */
    assert_int_equal(store_expire_worker(s, "dead", 2100, 3, &rq, &fl, &err), GS_OK);
    assert_int_equal(rq, 1);
    assert_int_equal(fl, 0);
    assert_int_equal(store_get(s, a, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_QUEUED);
    assert_int_equal(r.attempts, 1);
    job_record_clear(&r);
    /* a requeued job counts in the queue again: a new one has a and c ahead */
    char d[JOB_ID_LEN + 1];
    submit(s, "m", 0, 2150, d, &pos);
    assert_int_equal(pos, 2);
    assert_int_equal(store_cancel(s, d, 2160, &(job_status){0}, &err), GS_OK);
    assert_int_equal(store_get(s, b, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_RUNNING);
    assert_string_equal(r.worker, "alive");
    job_record_clear(&r);
    /* a second worker by that name (or a retry) finds nothing more to do */
    assert_int_equal(store_expire_worker(s, "dead", 2200, 3, &rq, &fl, &err), GS_OK);
    assert_int_equal(rq + fl, 0);
    /* with its attempts used, the job ends failed instead */
    claim(s, "dead2", NULL, 2300, &r, &got); /* a again: attempt 2 */
    assert_string_equal(r.id, a);
    job_record_clear(&r);
    assert_int_equal(store_expire_worker(s, "dead2", 2400, 2, &rq, &fl, &err), GS_OK);
    assert_int_equal(rq, 0);
    assert_int_equal(fl, 1);
    assert_int_equal(store_get(s, a, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_FAILED);
    assert_non_null(strstr(r.error, "2 attempts"));
    job_record_clear(&r);
    assert_int_equal(store_expire_worker(s, NULL, 2500, 3, &rq, &fl, &err),
                     GS_ERR_INVALID_ARGUMENT);
    /* failed, cancelled and running jobs are nobody's queue: c alone is ahead */
    submit(s, "m", 0, 2600, d, &pos);
    assert_int_equal(pos, 1);
    store_close(s);
}

static void cancellation(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char q[40], run[40];
    int got, cancel, lost;
    job_status st;
    submit(s, "m", 0, 0, run, NULL);
    submit(s, "m", 0, 1, q, NULL);
    job_record r;
    claim(s, "w1", NULL, 10, &r, &got);
    job_record_clear(&r);
    assert_int_equal(store_cancel(s, q, 20, &st, &err), GS_OK);
    assert_int_equal(st, JOB_CANCELLED);
    assert_int_equal(store_cancel(s, run, 20, &st, &err), GS_OK);
    assert_int_equal(st, JOB_RUNNING);
    assert_int_equal(
        store_heartbeat(s, run, "w1", 30, 1000, &(job_progress){1, 2, 0, -1}, &cancel, &lost, &err),
        GS_OK);
    assert_int_equal(cancel, 1);
    assert_int_equal(store_cancel(s, "no-such-id", 20, &st, &err), GS_ERR_INVALID_ARGUMENT);
    claim(s, "w2", NULL, 40, &r, &got);
    assert_int_equal(got, 0); /* the cancelled job is never claimed */
    int counts[5];
    assert_int_equal(store_counts(s, NULL, counts, &err), GS_OK);
    assert_int_equal(counts[JOB_RUNNING], 1);
    assert_int_equal(counts[JOB_CANCELLED], 1);
    store_close(s);
}

static void survives_restart(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char a[40], b[40];
    int got, rec;
    submit(s, "m", 0, 0, a, NULL);
    submit(s, "m", 0, 1, b, NULL);
    job_record r;
    claim(s, "w1", NULL, 10, &r, &got);
    job_record_clear(&r);
    assert_int_equal(store_finish(s, a, "w1", JOB_SUCCEEDED, "{\"ok\":1}", NULL, 20, &rec, &err),
                     GS_OK);
    store_close(s);
    assert_int_equal(store_open(url_of(state), &s, &err), GS_OK);
    assert_int_equal(store_get(s, a, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_SUCCEEDED);
    job_record_clear(&r);
    assert_int_equal(store_get(s, b, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_QUEUED);
    job_record_clear(&r);
    store_close(s);
}

static void preference_without_starvation(void **state)
{
    job_store *s = fresh(state);
    char old[40], mine[40];
    int got;
    submit(s, "other", 0, 0, old, NULL);
    submit(s, "loaded", 0, 10, mine, NULL);
    job_record r;
    /* soon after arrival the loaded model's job goes first */
    claim(s, "w1", "loaded", 1000, &r, &got);
    assert_string_equal(r.id, mine);
    job_record_clear(&r);
    submit(s, "loaded", 0, 1000, mine, NULL);
    /* once the other job has waited past the starvation bound, it goes first */
    claim(s, "w1", "loaded", 70000, &r, &got);
    assert_string_equal(r.id, old);
    job_record_clear(&r);
    store_close(s);
}

/* A worker holding several models prefers a job for any of them, the best of
   those first, and still yields to a starved or higher-priority job. */
static void preference_for_any_loaded_model(void **state)
{
    job_store *s = fresh(state);
    char old[40], a[40], b[40], urgent[40], id[40];
    int got;
    const char *loaded[] = {"a", "b"};
    svc_error err = {0};
    job_record r;
    submit(s, "other", 0, 0, old, NULL);
    submit(s, "b", 0, 10, b, NULL);
    submit(s, "a", 0, 20, a, NULL);
    /* either loaded model's job beats the older "other" one; arrival order among them */
    assert_int_equal(store_claim(s, "w1", loaded, 2, 1000, 1000, 60000, &r, &got, &err), GS_OK);
    assert_int_equal(got, 1);
    assert_string_equal(r.id, b);
    job_record_clear(&r);
    assert_int_equal(store_claim(s, "w1", loaded, 2, 1000, 1000, 60000, &r, &got, &err), GS_OK);
    assert_string_equal(r.id, a);
    job_record_clear(&r);
    /* a higher-priority job for an unloaded model outranks them */
    submit(s, "a", 0, 1000, id, NULL);
    submit(s, "other", 5, 1001, urgent, NULL);
    assert_int_equal(store_claim(s, "w1", loaded, 2, 2000, 1000, 60000, &r, &got, &err), GS_OK);
    assert_string_equal(r.id, urgent);
    job_record_clear(&r);
    /* and a starved job goes before them */
    assert_int_equal(store_claim(s, "w1", loaded, 2, 70000, 1000, 60000, &r, &got, &err), GS_OK);
    assert_string_equal(r.id, old);
    job_record_clear(&r);
    /* with nothing loaded, plain priority then arrival */
    assert_int_equal(store_claim(s, "w1", NULL, 0, 70000, 1000, 60000, &r, &got, &err), GS_OK);
    assert_string_equal(r.id, id);
    job_record_clear(&r);
    store_close(s);
}

/* A worker that has only some models' files claims only their jobs, the
   best of them (priority, then arrival), still preferring a loaded one; the
   others wait for workers that have theirs. */
static void claims_only_among_the_models_a_worker_has(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char top[JOB_ID_LEN + 1], b1[JOB_ID_LEN + 1], c1[JOB_ID_LEN + 1], b2[JOB_ID_LEN + 1];
    submit(s, "a", 5, 100, top, NULL); /* the best job, of a model it lacks */
    submit(s, "b", 0, 200, b1, NULL);
    submit(s, "c", 0, 300, c1, NULL);
    submit(s, "b", 1, 400, b2, NULL);
    const char *has[] = {"b", "c"}, *loaded[] = {"c"};
    job_record r;
    int got = 0;
    /* b2 outranks c1: priority first, even over the loaded model */
    assert_int_equal(
        store_claim_among(s, "w1", loaded, 1, has, 2, 1000, 15000, 60000, &r, &got, &err), GS_OK);
    assert_int_equal(got, 1);
    assert_string_equal(r.id, b2);
    job_record_clear(&r);
    assert_int_equal(
        store_claim_among(s, "w1", loaded, 1, has, 2, 1000, 15000, 60000, &r, &got, &err), GS_OK);
    assert_string_equal(r.id, c1); /* the loaded model's, over the older b1 */
    job_record_clear(&r);
    assert_int_equal(
        store_claim_among(s, "w1", NULL, 0, has, 2, 1000, 15000, 60000, &r, &got, &err), GS_OK);
    assert_string_equal(r.id, b1);
    job_record_clear(&r);
    assert_int_equal(
        store_claim_among(s, "w1", NULL, 0, has, 2, 1000, 15000, 60000, &r, &got, &err), GS_OK);
    assert_int_equal(got, 0); /* only "a" is left */
    assert_int_equal(
        store_claim_among(s, "w1", NULL, 0, has, 0, 1000, 15000, 60000, &r, &got, &err), GS_OK);
    assert_int_equal(got, 0);             /* no models at all: nothing */
    claim(s, "w2", NULL, 1000, &r, &got); /* a worker without a list takes it */
    assert_int_equal(got, 1);
    assert_string_equal(r.id, top);
    job_record_clear(&r);
    store_close(s);
}

/* Workers report what they hold; stale and removed ones are not listed. */
static void workers_report_and_list(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    worker_record *w;
    int n;
    assert_int_equal(store_worker_report(s, "w0-1", 11, "[]", NULL, 1000, &err), GS_OK);
    assert_int_equal(store_worker_report(s, "w1-2", 12, "[\"a\"]", "{\"host\":\"h\"}", 1000, &err),
                     GS_OK);
    assert_int_equal(
        store_worker_report(s, "w0-1", 11, "[\"a\",\"b\"]", "{\"state\":\"idle\"}", 5000, &err),
        GS_OK);
    assert_int_equal(store_workers_list(s, 0, &w, &n, &err), GS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(w[0].name, "w0-1");
    assert_string_equal(w[0].models, "[\"a\",\"b\"]");
    assert_string_equal(w[0].info, "{\"state\":\"idle\"}"); /* kept as it is */
    assert_string_equal(w[1].info, "{\"host\":\"h\"}");
    assert_int_equal(w[0].pid, 11);
    assert_int_equal(w[0].seen_ms, 5000);
    store_workers_free(w, n);
    /* only those seen since 2000 */
    assert_int_equal(store_workers_list(s, 2000, &w, &n, &err), GS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(w[0].name, "w0-1");
    store_workers_free(w, n);
    assert_int_equal(store_worker_remove(s, "w0-1", &err), GS_OK);
    assert_int_equal(store_workers_list(s, 2000, &w, &n, &err), GS_OK);
    assert_int_equal(n, 0);
    store_workers_free(w, n);
    store_close(s);
}

static void two_processes_never_share_a_job(void **state)
{
    job_store *s = fresh(state);
    enum { JOBS = 60 };
    char id[40];
    for (int i = 0; i < JOBS; i++)
        submit(s, "m", 0, i, id, NULL);
    store_close(s);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            char out[300], worker[16];
            snprintf(out, sizeof out, "%s/claims-%d", dir, k);
            snprintf(worker, sizeof worker, "w%d", k);
            FILE *f = fopen(out, "w");
            job_store *c;
            svc_error err = {0};
            if (!f || store_open(url_of(state), &c, &err) != GS_OK)
                _exit(1);
            for (;;) {
                job_record r;
                int got, rec;
                if (store_claim(c, worker, NULL, 0, 100, 100000, 60000, &r, &got, &err) != GS_OK)
                    _exit(2);
                if (!got)
                    break;
                fprintf(f, "%s\n", r.id);
                if (store_finish(c, r.id, worker, JOB_SUCCEEDED, "{}", NULL, 200, &rec, &err) !=
                        GS_OK ||
                    !rec)
                    _exit(3); /* the claimant must be the one to record */
                job_record_clear(&r);
            }
            fclose(f);
            store_close(c);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    char cmd[400], buf[64];
    snprintf(cmd, sizeof cmd, "cat %s/claims-0 %s/claims-1 | sort | uniq -d | wc -l", dir, dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(fgets(buf, sizeof buf, p));
    pclose(p);
    assert_int_equal(strtol(buf, NULL, 10), 0); /* no job claimed twice */
    snprintf(cmd, sizeof cmd, "cat %s/claims-0 %s/claims-1 | wc -l", dir, dir);
    p = popen(cmd, "r");
    assert_non_null(fgets(buf, sizeof buf, p));
    pclose(p);
    assert_int_equal(strtol(buf, NULL, 10), JOBS); /* and every job claimed */
}

static void release_gives_the_job_back(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char id[40];
    int got, rel;
    submit(s, "m", 0, 0, id, NULL);
    job_record r;
    claim(s, "w1", NULL, 10, &r, &got);
    assert_int_equal(r.attempts, 1);
    job_record_clear(&r);
    assert_int_equal(store_release(s, id, "w2", &rel, &err), GS_OK);
    assert_int_equal(rel, 0); /* only the holder can */
    assert_int_equal(store_release(s, id, "w1", &rel, &err), GS_OK);
    assert_int_equal(rel, 1);
    assert_int_equal(store_get(s, id, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_QUEUED);
    assert_int_equal(r.attempts, 0); /* a shutdown is not the job's fault */
    job_record_clear(&r);
    claim(s, "w2", NULL, 20, &r, &got);
    assert_int_equal(got, 1);
    assert_string_equal(r.id, id);
    job_record_clear(&r);
    store_close(s);
}

static void owners_stats_and_purge(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char a[40], b[40], c[40];
    int got, rec, n;
    submit(s, "m", 0, 0, a, NULL);   /* owner key1 */
    submit(s, "m", 0, 100, b, NULL); /* owner key1 */
    assert_int_equal(store_submit(s, "key2", "m", 0, "{}", 2.0, 200, c, NULL, &err), GS_OK);
    assert_int_equal(store_active_count(s, "key1", &n, &err), GS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(store_active_count(s, "nobody", &n, &err), GS_OK);
    assert_int_equal(n, 0);
    job_record *list;
    assert_int_equal(store_list(s, -1, "key2", 10, &list, &n, &err), GS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, c);
    store_list_free(list, n);
    assert_int_equal(store_list(s, JOB_QUEUED, NULL, 10, &list, &n, &err), GS_OK);
    assert_int_equal(n, 3);
    store_list_free(list, n);

    /* a waited 1000 ms and took 3000 ms with steps of 1, 2 and 3 s; b failed */
    job_record r;
    claim(s, "w1", NULL, 1000, &r, &got);
    assert_string_equal(r.id, a);
    job_record_clear(&r);
    assert_int_equal(store_finish(s, a, "w1", JOB_SUCCEEDED, "{\"step_ms\":[1000,2000,3000]}", NULL,
                                  4000, &rec, &err),
                     GS_OK);
    claim(s, "w1", NULL, 4000, &r, &got);
    job_record_clear(&r);
    assert_int_equal(store_finish(s, b, "w1", JOB_FAILED, NULL, "boom", 5000, &rec, &err), GS_OK);
    assert_int_equal(store_active_count(s, "key1", &n, &err), GS_OK);
    assert_int_equal(n, 0);
    job_stats js;
    assert_int_equal(store_stats(s, NULL, 0, 100, &js, &err), GS_OK);
    assert_int_equal(js.succeeded, 1);
    assert_int_equal(js.failed, 1);
    assert_true(js.megapixelsteps == 1.5);
    assert_true(js.busy_s == 3.0);
    assert_int_equal(js.first_start_ms, 1000);
    assert_int_equal(js.step_samples, 3);
    assert_true(js.step_s[0] == 2.0 && js.step_s[1] == 3.0 && js.step_s[2] == 3.0);
    assert_true(js.wait_s[0] == 1.0);
    assert_int_equal(store_stats(s, "nobody", 0, 100, &js, &err), GS_OK);
    assert_int_equal(js.succeeded + js.failed, 0);
    assert_int_equal(store_stats(s, NULL, 4500, 100, &js, &err), GS_OK); /* only b finished since */
    assert_int_equal(js.succeeded, 0);
    assert_int_equal(js.failed, 1);

    /* purge: finished before 4500 goes (a), later (b) and unfinished (c) stay */
    assert_int_equal(store_purge(s, 4500, NULL, NULL, &n, &err), GS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(store_get(s, a, &r, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(store_get(s, b, &r, &err), GS_OK);
    job_record_clear(&r);
    assert_int_equal(store_get(s, c, &r, &err), GS_OK);
    job_record_clear(&r);
    store_close(s);
}

/* Finishes a claimed job (claim picks id next: the queue holds nothing better). */
static void run_to(job_store *s, const char *id, job_status status)
{
    svc_error err = {0};
    job_record r;
    int got, rec;
    claim(s, "w1", NULL, 10, &r, &got);
    assert_int_equal(got, 1);
    assert_string_equal(r.id, id);
    job_record_clear(&r);
    if (status != JOB_RUNNING) {
        assert_int_equal(store_finish(s, id, "w1", status, NULL, NULL, 20, &rec, &err), GS_OK);
        assert_int_equal(rec, 1);
    }
}

typedef struct depth_row {
    char model[16];
    int queued, running;
} depth_row;

typedef struct depth_rows {
    depth_row row[8];
    int n;
} depth_rows;

static void add_depth(void *user, const char *model, int queued, int running)
{
    depth_rows *d = user;
    assert_true(d->n < 8);
    snprintf(d->row[d->n].model, sizeof d->row[0].model, "%s", model);
    d->row[d->n].queued = queued;
    d->row[d->n].running = running;
    d->n++;
}

/* Listing filters by status and owner, newest first and up to max; counts,
   depth per model and queue positions agree with the jobs' statuses. */
static void lists_counts_and_depth(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char id[7][40];
    job_status st;
    /* one job per status, then two more queued; owners alternate */
    const char *model[7] = {"b", "a", "a", "c", "a", "a", "b"};
    for (int i = 0; i < 7; i++)
        assert_int_equal(store_submit(s, i % 2 ? "key2" : "key1", model[i], i == 6 ? 3 : 0, "{}",
                                      1.0, i, id[i], NULL, &err),
                         GS_OK);
    /* claims take 6 (priority 3) first, then arrival order */
    run_to(s, id[6], JOB_RUNNING);
    run_to(s, id[0], JOB_SUCCEEDED);
    run_to(s, id[1], JOB_FAILED);
    run_to(s, id[2], JOB_RUNNING);
    assert_int_equal(store_cancel(s, id[3], 30, &st, &err), GS_OK);
    assert_int_equal(st, JOB_CANCELLED);
    /* now: 0 succeeded, 1 failed, 2 running, 3 cancelled, 4 and 5 queued, 6 running */

    job_record *list;
    int n;
    assert_int_equal(store_list(s, -1, NULL, 100, &list, &n, &err), GS_OK);
    assert_int_equal(n, 7);
    for (int i = 0; i < 7; i++)
        assert_string_equal(list[i].id, id[6 - i]); /* newest first */
    store_list_free(list, n);
    assert_int_equal(store_list(s, -1, NULL, 2, &list, &n, &err), GS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, id[6]);
    assert_string_equal(list[1].id, id[5]);
    store_list_free(list, n);
    assert_int_equal(store_list(s, JOB_RUNNING, NULL, 100, &list, &n, &err), GS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(list[0].id, id[6]);
    assert_string_equal(list[1].id, id[2]);
    assert_int_equal(list[0].status, JOB_RUNNING);
    store_list_free(list, n);
    assert_int_equal(store_list(s, JOB_QUEUED, "key2", 100, &list, &n, &err), GS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].id, id[5]);
    assert_string_equal(list[0].owner, "key2");
    store_list_free(list, n);
    assert_int_equal(store_list(s, -1, "key1", 100, &list, &n, &err), GS_OK);
    assert_int_equal(n, 4); /* 0, 2, 4, 6 */
    store_list_free(list, n);
    const job_status one_each[] = {JOB_SUCCEEDED, JOB_FAILED, JOB_CANCELLED};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(store_list(s, one_each[k], NULL, 100, &list, &n, &err), GS_OK);
        assert_int_equal(n, 1);
        assert_int_equal(list[0].status, one_each[k]);
        store_list_free(list, n);
    }
    assert_int_equal(store_list(s, -1, "nobody", 100, &list, &n, &err), GS_OK);
    assert_int_equal(n, 0);
    store_list_free(list, n);

    int counts[5];
    assert_int_equal(store_counts(s, NULL, counts, &err), GS_OK);
    assert_int_equal(counts[JOB_QUEUED], 2);
    assert_int_equal(counts[JOB_RUNNING], 2);
    assert_int_equal(counts[JOB_SUCCEEDED], 1);
    assert_int_equal(counts[JOB_FAILED], 1);
    assert_int_equal(counts[JOB_CANCELLED], 1);

    /* finished jobs count in no model's depth ("c" has only a cancelled one);
       models come in name order */
    depth_rows d = {0};
    assert_int_equal(store_depth_by_model(s, NULL, add_depth, &d, &err), GS_OK);
    assert_int_equal(d.n, 2);
    assert_string_equal(d.row[0].model, "a");
    assert_int_equal(d.row[0].queued, 2);
    assert_int_equal(d.row[0].running, 1);
    assert_string_equal(d.row[1].model, "b");
    assert_int_equal(d.row[1].queued, 0);
    assert_int_equal(d.row[1].running, 1);

    /* one owner's share (what a key that is not an admin is shown) */
    int mine[5], listed;
    assert_int_equal(store_counts(s, "key2", mine, &err), GS_OK);
    assert_int_equal(mine[JOB_QUEUED], 1); /* id[5] */
    assert_int_equal(store_list(s, -1, "key2", 100, &list, &listed, &err), GS_OK);
    store_list_free(list, listed);
    assert_int_equal(mine[0] + mine[1] + mine[2] + mine[3] + mine[4], listed);
    assert_true(listed < 7);
    assert_int_equal(store_counts(s, "nobody", mine, &err), GS_OK);
    assert_int_equal(mine[JOB_QUEUED] + mine[JOB_RUNNING] + mine[JOB_SUCCEEDED], 0);
    depth_rows own = {0};
    assert_int_equal(store_depth_by_model(s, "key2", add_depth, &own, &err), GS_OK);
    int own_queued = 0;
    for (int i = 0; i < own.n; i++)
        own_queued += own.row[i].queued;
    assert_int_equal(own_queued, 1);

    int pos;
    assert_int_equal(store_queue_position(s, id[4], &pos, &err), GS_OK);
    assert_int_equal(pos, 0);
    assert_int_equal(store_queue_position(s, id[5], &pos, &err), GS_OK);
    assert_int_equal(pos, 1);
    assert_int_equal(store_queue_position(s, id[2], &pos, &err), GS_OK);
    assert_int_equal(pos, -1); /* running */
    assert_int_equal(store_queue_position(s, "no-such-id", &pos, &err), GS_OK);
    assert_int_equal(pos, -1);
    /* a later job of higher priority goes ahead */
    char urgent[40];
    assert_int_equal(store_submit(s, "key1", "a", 1, "{}", 1.0, 40, urgent, &pos, &err), GS_OK);
    assert_int_equal(pos, 0);
    assert_int_equal(store_queue_position(s, id[5], &pos, &err), GS_OK);
    assert_int_equal(pos, 2);
    /* a submit's position agrees with the count of the queue after claims,
       a failure and a cancel: 4, 5 and the urgent one ahead at priority 0,
       the urgent one alone at its own priority 1, nobody at 9 */
    char late[40];
    const int prio_pos[][2] = {{0, 3}, {1, 1}, {9, 0}};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(
            store_submit(s, "key1", "a", prio_pos[k][0], "{}", 1.0, 50 + k, late, &pos, &err),
            GS_OK);
        assert_int_equal(pos, prio_pos[k][1]);
        int counted;
        assert_int_equal(store_queue_position(s, late, &counted, &err), GS_OK);
        assert_int_equal(counted, prio_pos[k][1]);
        assert_int_equal(store_cancel(s, late, 60, &st, &err), GS_OK);
    }
    store_close(s);
}

typedef struct purged {
    char id[4][40];
    int n;
} purged;

static void note_purged(void *user, const char *id)
{
    purged *p = user;
    assert_true(p->n < 4);
    snprintf(p->id[p->n++], sizeof p->id[0], "%s", id);
}

/* Cancelling a finished job changes nothing, cancelling twice neither; the
   purge calls back once with each job it removes, and only with those. */
static void cancel_finished_and_purge_callback(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char a[40], b[40], c[40];
    job_status st;
    submit(s, "m", 0, 0, a, NULL);
    submit(s, "m", 0, 1, b, NULL);
    submit(s, "m", 0, 2, c, NULL);
    run_to(s, a, JOB_FAILED); /* finished at 20 */
    assert_int_equal(store_cancel(s, a, 30, &st, &err), GS_OK);
    assert_int_equal(st, JOB_FAILED);
    assert_int_equal(store_cancel(s, b, 30, &st, &err), GS_OK);
    assert_int_equal(st, JOB_CANCELLED);
    assert_int_equal(store_cancel(s, b, 40, &st, &err), GS_OK);
    assert_int_equal(st, JOB_CANCELLED);
    job_record r;
    assert_int_equal(store_get(s, b, &r, &err), GS_OK);
    assert_int_equal(r.finished_ms, 30);
    job_record_clear(&r);
    assert_int_equal(store_get(s, a, &r, &err), GS_OK);
    assert_int_equal(r.finished_ms, 20);
    assert_int_equal(r.cancel_requested, 0);
    job_record_clear(&r);

    purged gone = {0};
    int n;
    assert_int_equal(store_purge(s, 1000, note_purged, &gone, &n, &err), GS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(gone.n, 2);
    int saw_a = !strcmp(gone.id[0], a) || !strcmp(gone.id[1], a);
    int saw_b = !strcmp(gone.id[0], b) || !strcmp(gone.id[1], b);
    assert_true(saw_a && saw_b);
    assert_int_equal(store_get(s, a, &r, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(store_get(s, c, &r, &err), GS_OK); /* still queued */
    job_record_clear(&r);
    store_close(s);
}

/* store_open: a plain path, sqlite:PATH and sqlite://PATH open the same file;
   other schemes are refused, saying which, without echoing the URL. */
/* A store file that is empty or not a database stops the open, naming the
   file; it never becomes a silently new store. */
static void sqlite_refuses_broken_files(void **state)
{
    (void)state;
    char bad[300];
    job_store *s = NULL;
    svc_error err = {0};
    snprintf(bad, sizeof bad, "%s/empty.db", dir);
    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(store_open(bad, &s, &err), GS_ERR_FORMAT);
    assert_null(s);
    assert_non_null(strstr(err.msg, bad));
    assert_non_null(strstr(err.msg, "empty"));
    struct stat sb;
    assert_int_equal(stat(bad, &sb), 0);
    assert_int_equal(sb.st_size, 0); /* left as it was */
    snprintf(bad, sizeof bad, "%s/garbage.db", dir);
    f = fopen(bad, "wb");
    assert_non_null(f);
    for (int i = 0; i < 4096; i++)
        fputc("not a database "[i % 15], f);
    fclose(f);
    err = (svc_error){0};
    assert_int_not_equal(store_open(bad, &s, &err), GS_OK);
    assert_null(s);
    assert_non_null(strstr(err.msg, bad));
    /* a new store still starts from nothing */
    snprintf(bad, sizeof bad, "%s/new.db", dir);
    assert_int_equal(store_open(bad, &s, &err), GS_OK);
    store_close(s);
    assert_int_equal(stat(bad, &sb), 0);
    assert_true(sb.st_size > 0); /* written at once: a second open does not see it empty */
}

/* A store whose header is sound but whose pages are damaged opens (SQLite
   reads pages lazily) and fails store_check, which names the file: the
   server refuses to start on it instead of answering 503 to everything. */
static void sqlite_check_finds_damaged_pages(void **state)
{
    (void)state;
    char file[300];
    snprintf(file, sizeof file, "%s/damaged.db", dir);
    job_store *s = NULL;
    svc_error err = {0};
    assert_int_equal(store_open(file, &s, &err), GS_OK);
    char params[2048], id[JOB_ID_LEN + 1];
    memset(params, 'x', sizeof params - 1);
    params[sizeof params - 1] = '\0';
    int pos;
    for (int i = 0; i < 64; i++) /* several pages of rows */
        assert_int_equal(store_submit(s, "", "m", 0, params, 1.0, 1000 + i, id, &pos, &err), GS_OK);
    assert_int_equal(store_check(s, &err), GS_OK);
    store_close(s);
    FILE *f = fopen(file, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 4096 * 3, SEEK_SET), 0); /* a page past the schema */
    for (int i = 0; i < 4096; i++)
        fputc(0xA5, f);
    fclose(f);
    err = (svc_error){0};
    assert_int_equal(store_open(file, &s, &err), GS_OK);
    assert_int_not_equal(store_check(s, &err), GS_OK);
    assert_non_null(strstr(err.msg, file));
    store_close(s);
}

static void sqlite_store_open_urls(void **state)
{
    (void)state;
    rm_sqlite_file(path);
    job_store *s;
    svc_error err = {0};
    char id[40], url[600];
    assert_int_equal(store_open(path, &s, &err), GS_OK);
    submit(s, "m", 0, 0, id, NULL);
    store_close(s);
    const char *forms[] = {"sqlite:%s", "sqlite://%s", "SQLite:%s"};
    for (int i = 0; i < 3; i++) {
        snprintf(url, sizeof url, forms[i], path);
        assert_int_equal(store_open(url, &s, &err), GS_OK);
        job_record r;
        assert_int_equal(store_get(s, id, &r, &err), GS_OK);
        job_record_clear(&r);
        store_close(s);
    }
    /* a colon after a slash is part of a path, not a scheme */
    snprintf(url, sizeof url, "%s/odd:name.db", dir);
    assert_int_equal(store_open(url, &s, &err), GS_OK);
    store_close(s);
    assert_int_equal(access(url, F_OK), 0);

    static const struct {
        const char *url, *says;
    } refused[] = {
        {"mysql://gesso:secret@db.example/jobs", "unknown URL scheme 'mysql'"},
        {"file:jobs.db", "unknown URL scheme 'file'"},
        {"", "no URL or path"},
        {"sqlite:", "no file path"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        err = (svc_error){0};
        assert_int_equal(store_open(refused[i].url, &s, &err), GS_ERR_INVALID_ARGUMENT);
        assert_null(s);
        assert_non_null(strstr(err.msg, refused[i].says));
        assert_null(strstr(err.msg, "secret"));
    }
}

/* A data directory written by the first schema opens with its jobs intact. */
static void sqlite_upgrades_schema_1(void **state)
{
    (void)state;
    char cmd[2048];
    rm_sqlite_file(path);
    snprintf(cmd, sizeof cmd,
             "sqlite3 '%s' \"CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
             " id TEXT UNIQUE NOT NULL, owner TEXT NOT NULL DEFAULT '', model TEXT NOT NULL"
             " DEFAULT '', priority INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL,"
             " attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
             " worker TEXT, lease_expires_ms INTEGER, step INTEGER NOT NULL DEFAULT 0,"
             " steps INTEGER NOT NULL DEFAULT 0, megapixelsteps REAL NOT NULL DEFAULT 0,"
             " params TEXT NOT NULL, result TEXT, error TEXT, created_ms INTEGER NOT NULL,"
             " started_ms INTEGER, finished_ms INTEGER);"
             " CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
             " INSERT INTO meta VALUES ('schema', '1');"
             " INSERT INTO jobs (id, model, status, params, created_ms) VALUES"
             " ('0190a0b0-0000-7000-8000-000000000001', 'm', 0, '{}', 5);\"",
             path);
    if (system("command -v sqlite3 >/dev/null") != 0)
        skip();
    assert_int_equal(system(cmd), 0);
    job_store *s;
    svc_error err = {0};
    assert_int_equal(store_open(path, &s, &err), GS_OK);
    job_record r;
    assert_int_equal(store_get(s, "0190a0b0-0000-7000-8000-000000000001", &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_QUEUED);
    assert_int_equal(r.preview_step, 0);
    job_record_clear(&r);
    int got;
    claim(s, "w1", NULL, 10, &r, &got);
    assert_int_equal(got, 1);
    job_record_clear(&r);
    store_close(s);
}

/* Runs cmd and reads the first line it prints into buf. */
static void read_command(const char *cmd, char *buf, size_t n)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(buf, (int)n, p));
    pclose(p);
    buf[strcspn(buf, "\n")] = '\0';
}

/* A schema-2 file (statuses as numbers 0..4) opens with every job in the
   status it had, its other fields kept, and arrival order going on from the
   highest number ever handed out. */
static void sqlite_upgrades_schema_2(void **state)
{
    (void)state;
    if (system("command -v sqlite3 >/dev/null") != 0)
        skip();
    char cmd[4096];
    rm_sqlite_file(path);
    snprintf(
        cmd, sizeof cmd,
        "sqlite3 '%s' \"CREATE TABLE jobs (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " id TEXT UNIQUE NOT NULL, owner TEXT NOT NULL DEFAULT '', model TEXT NOT NULL"
        " DEFAULT '', priority INTEGER NOT NULL DEFAULT 0, status INTEGER NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0, cancel_requested INTEGER NOT NULL DEFAULT 0,"
        " worker TEXT, lease_expires_ms INTEGER, step INTEGER NOT NULL DEFAULT 0,"
        " steps INTEGER NOT NULL DEFAULT 0, megapixelsteps REAL NOT NULL DEFAULT 0,"
        " params TEXT NOT NULL, result TEXT, error TEXT, created_ms INTEGER NOT NULL,"
        " started_ms INTEGER, finished_ms INTEGER,"
        " preview_step INTEGER NOT NULL DEFAULT 0, eta_s REAL NOT NULL DEFAULT -1);"
        " CREATE INDEX jobs_queue ON jobs(status, priority DESC, seq);"
        " CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);"
        " INSERT INTO meta VALUES ('schema', '2');"
        " INSERT INTO jobs (seq, id, owner, model, priority, status, params, created_ms) VALUES"
        " (1, 'j-queued-1', 'k1', 'm', 0, 0, '{}', 5);"
        " INSERT INTO jobs (seq, id, owner, model, priority, status, attempts, cancel_requested,"
        " worker, lease_expires_ms, step, steps, params, created_ms, started_ms, preview_step,"
        " eta_s) VALUES (2, 'j-running', 'k1', 'm', 0, 1, 1, 1, 'w1', 100000, 3, 20, '{}', 6,"
        " 10, 2, 4.5);"
        " INSERT INTO jobs (seq, id, model, status, attempts, params, result, created_ms,"
        " started_ms, finished_ms) VALUES (3, 'j-succeeded', 'm', 2, 1, '{}', '{\\\"images\\\":1}',"
        " 7, 8, 20);"
        " INSERT INTO jobs (seq, id, model, status, params, error, created_ms, finished_ms)"
        " VALUES (4, 'j-failed', 'm', 3, '{}', 'boom', 8, 21);"
        " INSERT INTO jobs (seq, id, model, status, params, created_ms, finished_ms)"
        " VALUES (5, 'j-cancelled', 'm', 4, '{}', 9, 22);"
        " INSERT INTO jobs (seq, id, model, priority, status, params, created_ms)"
        " VALUES (6, 'j-queued-2', 'm', 5, 0, '{}', 10);"
        " INSERT INTO jobs (seq, id, model, status, params, created_ms, finished_ms)"
        " VALUES (9, 'j-purged', 'm', 2, '{}', 11, 23);"
        " DELETE FROM jobs WHERE seq = 9;\"",
        path);
    assert_int_equal(system(cmd), 0);
    job_store *s;
    svc_error err = {0};
    assert_int_equal(store_open(path, &s, &err), GS_OK);

    static const struct {
        const char *id;
        job_status status;
    } want[] = {{"j-queued-1", JOB_QUEUED},     {"j-running", JOB_RUNNING},
                {"j-succeeded", JOB_SUCCEEDED}, {"j-failed", JOB_FAILED},
                {"j-cancelled", JOB_CANCELLED}, {"j-queued-2", JOB_QUEUED}};
    job_record r;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(store_get(s, want[i].id, &r, &err), GS_OK);
        assert_int_equal(r.status, want[i].status);
        job_record_clear(&r);
    }
    assert_int_equal(store_get(s, "j-running", &r, &err), GS_OK);
    assert_string_equal(r.worker, "w1");
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.cancel_requested, 1);
    assert_int_equal(r.step, 3);
    assert_int_equal(r.preview_step, 2);
    assert_true(r.eta_s == 4.5);
    assert_int_equal(r.lease_expires_ms, 100000);
    job_record_clear(&r);
    assert_int_equal(store_get(s, "j-succeeded", &r, &err), GS_OK);
    assert_string_equal(r.result, "{\"images\":1}");
    job_record_clear(&r);
    assert_int_equal(store_get(s, "j-failed", &r, &err), GS_OK);
    assert_string_equal(r.error, "boom");
    job_record_clear(&r);
    int counts[5];
    assert_int_equal(store_counts(s, NULL, counts, &err), GS_OK);
    assert_int_equal(counts[JOB_QUEUED], 2);
    assert_int_equal(counts[JOB_RUNNING], 1);
    assert_int_equal(counts[JOB_SUCCEEDED], 1);
    assert_int_equal(counts[JOB_FAILED], 1);
    assert_int_equal(counts[JOB_CANCELLED], 1);

    /* the running job's worker still holds it and can finish it */
    int cancel, lost, rec, got;
    assert_int_equal(store_heartbeat(s, "j-running", "w1", 1000, 1000,
                                     &(job_progress){4, 20, 0, -1}, &cancel, &lost, &err),
                     GS_OK);
    assert_int_equal(lost, 0);
    assert_int_equal(cancel, 1);
    assert_int_equal(
        store_finish(s, "j-running", "w1", JOB_CANCELLED, NULL, NULL, 1100, &rec, &err), GS_OK);
    assert_int_equal(rec, 1);
    /* the queued ones go by priority, then arrival */
    claim(s, "w2", NULL, 2000, &r, &got);
    assert_int_equal(got, 1);
    assert_string_equal(r.id, "j-queued-2");
    job_record_clear(&r);
    char id[40];
    submit(s, "m", 0, 3000, id, NULL);
    claim(s, "w2", NULL, 4000, &r, &got);
    assert_string_equal(r.id, "j-queued-1");
    job_record_clear(&r);
    store_close(s);

    char line[256];
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' \"SELECT value FROM meta WHERE key = 'schema'\"", path);
    read_command(cmd, line, sizeof line);
    assert_string_equal(line, "3");
    snprintf(cmd, sizeof cmd, "sqlite3 '%s' \"SELECT seq FROM jobs WHERE id = '%s'\"", path, id);
    read_command(cmd, line, sizeof line);
    assert_string_equal(line, "10"); /* after the purged 9, not after the last row left */
    snprintf(cmd, sizeof cmd,
             "sqlite3 '%s' \"SELECT group_concat(status, ',') FROM"
             " (SELECT status FROM jobs ORDER BY seq)\"",
             path);
    read_command(cmd, line, sizeof line);
    assert_string_equal(line, "running,cancelled,succeeded,failed,cancelled,running,queued");
}

/* A submit that stores things under its job's id first (its input images)
   makes the id, then queues the job under it; an id cannot be taken twice. */
static void submit_under_an_id_made_first(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char early[JOB_ID_LEN + 1], id[JOB_ID_LEN + 1], other[JOB_ID_LEN + 1];
    store_new_id(1000, early);
    store_new_id(2000, id);
    assert_true(job_id_ok(id));
    assert_true(strcmp(early, id) < 0); /* UUIDv7: sorts by time */
    int pos = -1;
    assert_int_equal(
        store_submit_as(s, id, "key1", "m", 0, "{\"prompt\":\"first\"}", 1.5, 2000, &pos, &err),
        GS_OK);
    assert_int_equal(pos, 0);
    submit(s, "m", 0, 2001, other, &pos);
    assert_int_equal(pos, 1);
    assert_int_equal(
        store_submit_as(s, id, "key2", "m", 9, "{\"prompt\":\"second\"}", 1.5, 3000, &pos, &err),
        GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, id));
    job_record r;
    assert_int_equal(store_get(s, id, &r, &err), GS_OK);
    assert_string_equal(r.params, "{\"prompt\":\"first\"}"); /* the first job is untouched */
    assert_string_equal(r.owner, "key1");
    assert_int_equal(r.status, JOB_QUEUED);
    job_record_clear(&r);
    int counts[5];
    assert_int_equal(store_counts(s, NULL, counts, &err), GS_OK);
    assert_int_equal(counts[JOB_QUEUED], 2);
    static const char *const bad[] = {"", "../../etc/passwd",
                                      "01A20C02-DF3B-710A-A5F4-94239FB89222",
                                      "01a20c02-df3b-710a-a5f4-94239fb8922"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(store_submit_as(s, bad[i], "", "m", 0, "{}", 1, 3000, NULL, &err),
                         GS_ERR_INVALID_ARGUMENT);
    /* the one it made first is claimed first */
    int got;
    claim(s, "w1", NULL, 4000, &r, &got);
    assert_int_equal(got, 1);
    assert_string_equal(r.id, id);
    job_record_clear(&r);
    store_close(s);
}

static void disk_bytes_count_the_database(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    int64_t empty = -1, full = -1;
    assert_int_equal(store_disk_bytes(s, &empty, &err), GS_OK);
    assert_true(empty > 0);
    /* letters that do not compress: an engine may compress what it stores */
    size_t big = 1 << 20;
    char *params = malloc(big + 16);
    memcpy(params, "{\"p\":\"", 6);
    uint32_t x = 12345;
    for (size_t i = 0; i < big; i++) {
        x = x * 1664525u + 1013904223u;
        params[6 + i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"[x >> 26];
    }
    memcpy(params + 6 + big, "\"}", 3);
    char id[JOB_ID_LEN + 1];
    assert_int_equal(store_submit(s, "", "m", 0, params, 1, 1000, id, NULL, &err), GS_OK);
    assert_int_equal(store_disk_bytes(s, &full, &err), GS_OK);
    assert_true(full >= empty + (int64_t)big);
    free(params);
    store_close(s);
}

/* ---- PostgreSQL only ---- */

/* A connection of the test's own to the case's database: to look at rows,
   or to act as the database's administrator. */
static PGconn *admin_conn(void **state)
{
    PGconn *c = PQconnectdb(url_of(state));
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    return c;
}

static void admin_exec(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType t = PQresultStatus(r);
    if (t != PGRES_COMMAND_OK && t != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

/* The first column of the first row, as an integer. */
static long admin_long(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) < 1)
        fail_msg("%s: %s", sql, PQerrorMessage(c));
    long v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

enum { CLAIM_JOBS = 200, CLAIMERS = 4 };

/* A thread with a store of its own, claiming and finishing until the queue
   is empty. cmocka's asserts belong to the main thread: failures are noted. */
typedef struct claimer {
    const char *url;
    pthread_barrier_t *start;
    char name[16];
    int prefer; /* prefers model "a", as a worker holding it would */
    char ids[CLAIM_JOBS][JOB_ID_LEN + 1];
    int n;
    char failed[SVC_ERRMSG_MAX + 32];
} claimer;

static void *claim_until_empty(void *arg)
{
    claimer *c = arg;
    job_store *s;
    svc_error err = {0};
    const char *models[] = {"a"};
    int opened = store_open(c->url, &s, &err) == GS_OK;
    pthread_barrier_wait(c->start);
    if (!opened) {
        snprintf(c->failed, sizeof c->failed, "open: %s", err.msg);
        return NULL;
    }
    for (;;) {
        job_record r;
        int got, rec;
        if (store_claim(s, c->name, models, c->prefer, 100, 100000, 60000, &r, &got, &err) !=
            GS_OK) {
            snprintf(c->failed, sizeof c->failed, "claim: %s", err.msg);
            break;
        }
        if (!got)
            break;
        if (c->n < CLAIM_JOBS)
            snprintf(c->ids[c->n], sizeof c->ids[0], "%s", r.id);
        c->n++;
        job_record_clear(&r);
        if (store_finish(s, c->ids[c->n - 1], c->name, JOB_SUCCEEDED, "{}", NULL, 200, &rec,
                         &err) != GS_OK ||
            !rec) {
            snprintf(c->failed, sizeof c->failed, "the claimant could not record: %s", err.msg);
            break;
        }
    }
    store_close(s);
    return NULL;
}

static int cmp_ids(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Four claimers at once, each on its own connection, two preferring a
   model: every job is claimed exactly once, by one of them, and recorded by
   it. A claim that does not lock its row (FOR UPDATE SKIP LOCKED) hands the
   same job to two of them here. */
static void pg_claimers_never_share_a_job(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char id[JOB_ID_LEN + 1];
    for (int i = 0; i < CLAIM_JOBS; i++)
        assert_int_equal(
            store_submit(s, "", i % 2 ? "a" : "b", i % 7 == 0, "{}", 1, i, id, NULL, &err), GS_OK);
    static claimer c[CLAIMERS];
    pthread_t t[CLAIMERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, CLAIMERS);
    for (int k = 0; k < CLAIMERS; k++) {
        memset(&c[k], 0, sizeof c[k]);
        c[k].url = url_of(state);
        c[k].start = &start;
        c[k].prefer = k < 2;
        snprintf(c[k].name, sizeof c[k].name, "w%d", k);
        assert_int_equal(pthread_create(&t[k], NULL, claim_until_empty, &c[k]), 0);
    }
    static char all[CLAIM_JOBS * 2][JOB_ID_LEN + 1];
    int total = 0;
    for (int k = 0; k < CLAIMERS; k++) {
        pthread_join(t[k], NULL);
        if (c[k].failed[0])
            fail_msg("claimer %d: %s", k, c[k].failed);
        for (int i = 0; i < c[k].n && total < CLAIM_JOBS * 2; i++)
            memcpy(all[total++], c[k].ids[i], sizeof all[0]);
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(total, CLAIM_JOBS);
    qsort(all, (size_t)total, sizeof all[0], cmp_ids);
    for (int i = 1; i < total; i++)
        if (strcmp(all[i - 1], all[i]) == 0)
            fail_msg("job %s claimed twice", all[i]);
    int counts[5];
    assert_int_equal(store_counts(s, NULL, counts, &err), GS_OK);
    assert_int_equal(counts[JOB_SUCCEEDED], CLAIM_JOBS);
    store_close(s);
}

typedef struct opener {
    const char *url;
    pthread_barrier_t *start;
    job_store *s;
    gs_status st;
    svc_error err;
} opener;

static void *open_at_once(void *arg)
{
    opener *o = arg;
    pthread_barrier_wait(o->start);
    o->st = store_open(o->url, &o->s, &o->err);
    return NULL;
}

/* Eight openers of a new database at the same moment all succeed, and the
   schema is made once: creating tables concurrently without the migration
   lock fails with duplicate catalog entries. */
static void pg_concurrent_opens_create_the_schema_once(void **state)
{
    enum { OPENERS = 8, ROUNDS = 3 };
    engine *e = *state;
    for (int round = 0; round < ROUNDS; round++) {
        e->fresh_db(e); /* a database nothing has opened yet */
        opener o[OPENERS];
        pthread_t t[OPENERS];
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, OPENERS);
        for (int k = 0; k < OPENERS; k++) {
            memset(&o[k], 0, sizeof o[k]);
            o[k].url = e->url;
            o[k].start = &start;
            assert_int_equal(pthread_create(&t[k], NULL, open_at_once, &o[k]), 0);
        }
        for (int k = 0; k < OPENERS; k++)
            pthread_join(t[k], NULL);
        pthread_barrier_destroy(&start);
        for (int k = 0; k < OPENERS; k++) {
            if (o[k].st != GS_OK)
                fail_msg("opener %d of round %d: %s", k, round, o[k].err.msg);
            svc_error err = {0};
            assert_int_equal(store_check(o[k].s, &err), GS_OK);
            store_close(o[k].s);
        }
        PGconn *a = admin_conn(state);
        assert_int_equal(admin_long(a, "SELECT count(*) FROM meta"), 2); /* schema, channel */
        assert_int_equal(admin_long(a, "SELECT value::int FROM meta WHERE key = 'schema'"), 7);
        PQfinish(a);
    }
}

/* Waits until sql (on c) counts 0 sessions of gesso's. */
static void wait_sessions(PGconn *c, const char *sql, long want)
{
    for (int i = 0; admin_long(c, sql) != want; i++) {
        assert_true(i < 1000);
        usleep(10000);
    }
}

#define GESSO_SESSIONS                                                                             \
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"                     \
    " AND application_name = 'gesso'"

typedef struct blocked_get {
    job_store *s;
    const char *id;
    gs_status st;
    svc_error err;
} blocked_get;

static void *get_job_in_thread(void *arg)
{
    blocked_get *b = arg;
    job_record r;
    b->st = store_get(b->s, b->id, &r, &b->err);
    if (b->st == GS_OK)
        job_record_clear(&r);
    return NULL;
}

/* A store outlives what happens to its connection: a session the server
   ended while idle is noticed before the next operation, which runs on a new
   one; a session cut in the middle of an operation fails that operation with
   GS_ERR_IO saying so, and the next reconnects; while the server is down each
   operation fails naming it, and the first after it is back works. */
static void pg_reconnects_after_losing_the_connection(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char id[JOB_ID_LEN + 1];
    job_record r;
    submit(s, "m", 0, 0, id, NULL);
    PGconn *a = admin_conn(state), *b = admin_conn(state);

    admin_exec(a, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE datname = current_database() AND application_name = 'gesso'");
    wait_sessions(a, GESSO_SESSIONS, 0);
    if (store_get(s, id, &r, &err) != GS_OK)
        fail_msg("after the session ended: %s", err.msg);
    job_record_clear(&r);

    /* cut while it waits for a lock the test holds */
    admin_exec(a, "BEGIN");
    admin_exec(a, "LOCK TABLE jobs");
    blocked_get g = {.s = s, .id = id};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, get_job_in_thread, &g), 0);
    wait_sessions(b, GESSO_SESSIONS " AND wait_event_type = 'Lock'", 1);
    admin_exec(b, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE datname = current_database() AND application_name = 'gesso'");
    pthread_join(t, NULL);
    admin_exec(a, "ROLLBACK");
    assert_int_equal(g.st, GS_ERR_IO);
    if (!strstr(g.err.msg, "connection was lost") || !strstr(g.err.msg, "reading a job"))
        fail_msg("%s", g.err.msg);
    assert_int_equal(store_get(s, id, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_QUEUED);
    job_record_clear(&r);
    PQfinish(a);
    PQfinish(b);

    /* the database restarted, and down for a while in between */
    pg_server_halt(&pgsrv);
    for (int i = 0; i < 2; i++) {
        err = (svc_error){0};
        assert_int_equal(store_get(s, id, &r, &err), GS_ERR_IO);
        if (!strstr(err.msg, "cannot reconnect") || !strstr(err.msg, pgsrv.dir))
            fail_msg("%s", err.msg);
    }
    if (pg_server_resume(&pgsrv) != 0)
        fail_msg("%s", pgsrv.why);
    assert_int_equal(store_get(s, id, &r, &err), GS_OK);
    job_record_clear(&r);
    int got;
    claim(s, "w1", NULL, 10, &r, &got); /* statements prepared anew on the new connection */
    assert_int_equal(got, 1);
    job_record_clear(&r);
    store_close(s);
}

/* The password of a URL never shows in a message, however the URL is
   wrong; the scheme is taken in any case; the PG* variables fill in what the
   URL leaves out (libpq's conventions). */
static void pg_urls_and_passwords(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char id[JOB_ID_LEN + 1];
    submit(s, "m", 0, 0, id, NULL);
    store_close(s);
    static const struct {
        const char *url, *says;
        gs_status code;
    } refused[] = {
        {"postgresql://gesso:s3cret-pw@127.0.0.1:1/jobs", "127.0.0.1", GS_ERR_IO},
        {"postgres://gesso:s3cret%zzpw@127.0.0.1:1/jobs", "malformed", GS_ERR_INVALID_ARGUMENT},
        {"postgresql://gesso:s3cret@pw@127.0.0.1:1/jobs", "%40", GS_ERR_INVALID_ARGUMENT},
        {"postgresql://gesso:s3cret/pw@127.0.0.1:1/jobs", "%2F", GS_ERR_INVALID_ARGUMENT},
        {"postgresql://gesso:s3cret-pw@[::1/jobs", "malformed", GS_ERR_INVALID_ARGUMENT},
        {"postgresql://127.0.0.1:1/jobs?password=s3cret-pw&port=x", "cannot connect", GS_ERR_IO},
        {"postgresql:jobs", "postgresql://", GS_ERR_INVALID_ARGUMENT},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        err = (svc_error){0};
        s = NULL;
        assert_int_equal(store_open(refused[i].url, &s, &err), refused[i].code);
        assert_null(s);
        if (!strstr(err.msg, refused[i].says) || strstr(err.msg, "s3cret"))
            fail_msg("%s: %s", refused[i].url, err.msg);
    }

    char url[600], db[32];
    snprintf(url, sizeof url, "POSTGRESQL%s", strchr(url_of(state), ':'));
    assert_int_equal(store_open(url, &s, &err), GS_OK);
    store_close(s);
    snprintf(db, sizeof db, "gesso_%d", pgsrv.next_db);
    setenv("PGHOST", pgsrv.dir, 1);
    setenv("PGPORT", "5432", 1);
    setenv("PGUSER", "postgres", 1);
    setenv("PGDATABASE", db, 1);
    gs_status st = store_open("postgresql://", &s, &err);
    unsetenv("PGHOST"), unsetenv("PGPORT"), unsetenv("PGUSER"), unsetenv("PGDATABASE");
    assert_int_equal(st, GS_OK);
    job_record r;
    assert_int_equal(store_get(s, id, &r, &err), GS_OK); /* the same database */
    job_record_clear(&r);
    store_close(s);
}

/* A database from a newer gesso, or with tables gesso did not make, is
   refused at open; store_check finds a schema changed under a running store. */
static void pg_refuses_schemas_it_does_not_know(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    PGconn *a = admin_conn(state);
    admin_exec(a, "UPDATE meta SET value = '99' WHERE key = 'schema'");
    assert_int_equal(store_check(s, &err), GS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "schema 99"));
    store_close(s);
    assert_int_equal(store_open(url_of(state), &s, &err), GS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "newer gesso"));
    admin_exec(a, "DROP TABLE meta, jobs, workers; CREATE TABLE jobs (x integer)");
    assert_int_equal(store_open(url_of(state), &s, &err), GS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "did not make"));
    assert_int_equal(admin_long(a, "SELECT count(*) FROM pg_tables WHERE tablename = 'meta'"), 0);
    PQfinish(a);
}

/* Schema 7 counts the queue in queue_counts: a database of schema 6 with
   jobs queued, running and finished comes up with their counts, so the next
   submit's position is right at once. */
static void pg_upgrade_counts_the_queue(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char id[5][JOB_ID_LEN + 1];
    int pos, got;
    for (int i = 0; i < 5; i++)
        submit(s, "m", i == 4 ? 2 : 0, 1000 + i, id[i], &pos);
    job_record r;
    claim(s, "w", NULL, 2000, &r, &got); /* the priority-2 one */
    job_record_clear(&r);
    assert_int_equal(store_cancel(s, id[1], 2100, &(job_status){0}, &err), GS_OK);
    store_close(s);
    /* back to schema 6, as a database of the last version holds these jobs */
    PGconn *a = admin_conn(state);
    admin_exec(a, "DROP TRIGGER jobs_counted_insert ON jobs; DROP TRIGGER jobs_counted_update ON"
                  " jobs; DROP TRIGGER jobs_counted_delete ON jobs; DROP FUNCTION"
                  " gesso_queue_counted(); DROP TABLE queue_counts;"
                  " UPDATE meta SET value = '6' WHERE key = 'schema'");
    assert_int_equal(store_open(url_of(state), &s, &err), GS_OK);
    assert_int_equal(admin_long(a, "SELECT value::int FROM meta WHERE key = 'schema'"), 7);
    assert_int_equal(admin_long(a, "SELECT sum(n) FROM queue_counts"), 3); /* 0, 2, 3 */
    PQfinish(a);
    char late[JOB_ID_LEN + 1];
    submit(s, "m", 0, 3000, late, &pos);
    assert_int_equal(pos, 3);
    submit(s, "m", 1, 3001, late, &pos);
    assert_int_equal(pos, 0);
    store_close(s);
}

/* ---- change notifications ---- */

typedef struct heard {
    char kinds[64];
    char ids[64][JOB_ID_LEN + 1];
    int n;
} heard;

static void hear(void *user, char kind, const char *id)
{
    heard *h = user;
    if (h->n < 64) {
        h->kinds[h->n] = kind;
        snprintf(h->ids[h->n], sizeof h->ids[0], "%s", id);
        h->n++;
    }
}

/* Waits up to ms for the listener's descriptor, then takes what came. */
static void listen_for(job_store *s, heard *h, int ms)
{
    memset(h, 0, sizeof *h);
    svc_error err = {0};
    for (int64_t end = test_mono_ms() + ms; h->n == 0 && test_mono_ms() < end;) {
        struct pollfd p = {.fd = store_listen_fd(s), .events = POLLIN};
        if (p.fd >= 0 && poll(&p, 1, 50) < 0)
            break;
        if (p.fd < 0)
            test_sleep_ms(20);
        if (store_changes(s, hear, h, NULL, &err) != GS_OK)
            fail_msg("store_changes: %s", err.msg);
    }
}

/* Whether h heard kind for id. */
static int heard_of(const heard *h, char kind, const char *id)
{
    for (int i = 0; i < h->n; i++)
        if (h->kinds[i] == kind && strcmp(h->ids[i], id) == 0)
            return 1;
    return 0;
}

/* Listens until kind for id is heard or ms pass: one change may notify more
   than once (a finish is a status and a queue change), and on a loaded
   machine those arrive in separate batches, so the tail of an earlier change
   can come first. */
static int listen_until(job_store *s, heard *h, char kind, const char *id, int ms)
{
    for (int64_t end = test_mono_ms() + ms; test_mono_ms() < end;) {
        listen_for(s, h, (int)(end - test_mono_ms()));
        if (heard_of(h, kind, id))
            return 1;
    }
    return 0;
}

/* The embedded engine has no notifications, and says so. */
static void sqlite_has_no_notifications(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    int supported = 1, n = 5;
    assert_int_equal(store_listen(s, STORE_LISTEN_JOBS, &supported, &err), GS_OK);
    assert_int_equal(supported, 0);
    assert_int_equal(store_listen_fd(s), -1);
    assert_int_equal(store_changes(s, hear, NULL, &n, &err), GS_OK);
    assert_int_equal(n, 0);
    store_close(s);
}

/* Every change any connection commits reaches each listener: a front end
   hears each job's status changes ('q') and progress ('j'), an idle worker
   hears only that jobs were queued (also a job requeued); a listener whose
   session ended listens again on its new one and says it may have missed
   some. */
static void pg_notifies_every_change(void **state)
{
    job_store *w = fresh(state), *front = NULL, *idle = NULL;
    svc_error err = {0};
    int supported = 0, got, cancel, lost, rec;
    assert_int_equal(store_open(url_of(state), &front, &err), GS_OK);
    assert_int_equal(store_open(url_of(state), &idle, &err), GS_OK);
    assert_int_equal(store_listen(front, STORE_LISTEN_JOBS, &supported, &err), GS_OK);
    assert_int_equal(supported, 1);
    assert_int_equal(store_listen(idle, STORE_LISTEN_QUEUED, &supported, &err), GS_OK);
    assert_true(store_listen_fd(front) >= 0);
    heard h;
    char id[JOB_ID_LEN + 1];
    submit(w, "m", 0, 0, id, NULL);
    assert_true(listen_until(front, &h, STORE_CHANGE_QUEUE, id, 2000));
    listen_for(idle, &h, 2000);
    assert_true(h.n >= 1 && h.kinds[0] == STORE_CHANGE_QUEUE && h.ids[0][0] == '\0');

    job_record r;
    claim(w, "w1", NULL, 10, &r, &got);
    assert_int_equal(got, 1);
    job_record_clear(&r);
    assert_true(listen_until(front, &h, STORE_CHANGE_QUEUE, id, 2000));
    job_progress p = {3, 10, 0, 1.5};
    assert_int_equal(store_heartbeat(w, id, "w1", 20, 15000, &p, &cancel, &lost, &err), GS_OK);
    assert_true(listen_until(front, &h, STORE_CHANGE_JOB, id, 2000));
    /* a requeue is news to idle workers; a claim and progress were not */
    int requeued = 0, failed = 0;
    assert_int_equal(store_expire_worker(w, "w1", 30, 3, &requeued, &failed, &err), GS_OK);
    assert_int_equal(requeued, 1);
    listen_for(idle, &h, 2000);
    assert_int_equal(h.n, 1);
    claim(w, "w1", NULL, 40, &r, &got);
    job_record_clear(&r);
    assert_int_equal(store_finish(w, id, "w1", JOB_SUCCEEDED, "{}", NULL, 50, &rec, &err), GS_OK);
    assert_true(listen_until(front, &h, STORE_CHANGE_QUEUE, id, 2000));
    listen_for(idle, &h, 300);
    assert_int_equal(h.n, 0);

    /* the sessions end (a database restart, an operator): the listener
       says it may have missed changes, and hears the next ones */
    do /* what is left of the changes above */
        listen_for(front, &h, 300);
    while (h.n > 0);
    PGconn *a = admin_conn(state);
    admin_exec(a, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                  " WHERE datname = current_database() AND application_name = 'gesso'");
    assert_true(listen_until(front, &h, STORE_CHANGE_ALL, "", 5000));
    submit(w, "m", 0, 60, id, NULL);
    assert_true(listen_until(front, &h, STORE_CHANGE_QUEUE, id, 2000));
    PQfinish(a);
    store_close(front);
    store_close(idle);
    store_close(w);
}

/* Progress notifies a job's first step, its last, and otherwise at most
   every 250 ms; a lease renewal alone never; a cancel request and a status
   change always (schema 5: notifying commits serialise, bench/RESULTS.md
   section 23). */
static void pg_progress_notifications_rate_limited(void **state)
{
    job_store *w = fresh(state), *front = NULL;
    svc_error err = {0};
    int supported = 0, got, cancel, lost, rec;
    assert_int_equal(store_open(url_of(state), &front, &err), GS_OK);
    assert_int_equal(store_listen(front, STORE_LISTEN_JOBS, &supported, &err), GS_OK);
    heard h;
    char id[JOB_ID_LEN + 1];
    submit(w, "m", 0, 0, id, NULL);
    job_record r;
    claim(w, "w1", NULL, 10, &r, &got);
    job_record_clear(&r);
    do /* the submit and the claim */
        listen_for(front, &h, 300);
    while (h.n > 0);
    job_progress p = {1, 10, 0, 1.5};
    assert_int_equal(store_heartbeat(w, id, "w1", 20, 15000, &p, &cancel, &lost, &err), GS_OK);
    listen_for(front, &h, 2000);
    assert_true(heard_of(&h, STORE_CHANGE_JOB, id)); /* the first step */
    p.step = 2;
    assert_int_equal(store_heartbeat(w, id, "w1", 21, 15000, &p, &cancel, &lost, &err), GS_OK);
    assert_int_equal(store_heartbeat(w, id, "w1", 22, 15000, &p, &cancel, &lost, &err), GS_OK);
    listen_for(front, &h, 150);
    assert_int_equal(h.n, 0); /* within 250 ms of the last, and a renewal */
    test_sleep_ms(300);
    p.step = 3;
    assert_int_equal(store_heartbeat(w, id, "w1", 23, 15000, &p, &cancel, &lost, &err), GS_OK);
    listen_for(front, &h, 2000);
    assert_true(heard_of(&h, STORE_CHANGE_JOB, id)); /* 250 ms on */
    assert_int_equal(store_heartbeat(w, id, "w1", 24, 15000, &p, &cancel, &lost, &err), GS_OK);
    listen_for(front, &h, 400);
    assert_int_equal(h.n, 0); /* a renewal alone, however late */
    p.step = 10;
    assert_int_equal(store_heartbeat(w, id, "w1", 25, 15000, &p, &cancel, &lost, &err), GS_OK);
    listen_for(front, &h, 2000);
    assert_true(heard_of(&h, STORE_CHANGE_JOB, id)); /* the last step, at once */
    job_status st;
    assert_int_equal(store_cancel(w, id, 26, &st, &err), GS_OK);
    listen_for(front, &h, 2000);
    assert_true(heard_of(&h, STORE_CHANGE_JOB, id)); /* a cancel request */
    assert_int_equal(store_finish(w, id, "w1", JOB_CANCELLED, NULL, NULL, 27, &rec, &err), GS_OK);
    listen_for(front, &h, 2000);
    assert_true(heard_of(&h, STORE_CHANGE_QUEUE, id));
    store_close(front);
    store_close(w);
}

/* ---- blobs in the database ---- */

static void count_blob_job(void *user, const char *id)
{
    (void)id;
    ++*(int *)user;
}

/* With PostgreSQL the blob store is the store's database (blob_pg.c): bytes
   go in and come back exactly (every byte value, NULs too), a put replaces,
   another handle (another machine) reads them, a blob over the reader's
   limit is refused unread, the database's size counts them, and a sweep
   lists only blobs old enough that their job's row must exist. */
static void pg_blobs_in_the_database(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    assert_true(store_holds_blobs(url_of(state)));
    assert_false(store_holds_blobs("sqlite:/tmp/x.db"));
    assert_false(store_holds_blobs("/tmp/x.db"));
    blob_store *api, *worker;
    assert_int_equal(blob_open(url_of(state), &api, &err), GS_OK);
    assert_int_equal(blob_open(url_of(state), &worker, &err), GS_OK);
    enum { BIG = 3 << 20 };
    unsigned char *bytes = malloc(BIG);
    uint32_t x = 12345;
    for (int i = 0; i < BIG; i++) { /* no run a compressor could shorten */
        x = x * 1664525u + 1013904223u;
        bytes[i] = (unsigned char)(x >> 24);
    }
    for (int i = 0; i < 256; i++)
        bytes[i] = (unsigned char)i;
    char id[JOB_ID_LEN + 1];
    store_new_id(store_clock_ms(), id);
    int64_t before = 0, after = 0;
    assert_int_equal(store_disk_bytes(s, &before, &err), GS_OK);
    assert_int_equal(blob_put(api, id, BLOB_INPUT, 0, bytes, 256, &err), GS_OK);
    assert_int_equal(blob_put(worker, id, BLOB_IMAGE, 1, bytes, BIG, &err), GS_OK);
    assert_int_equal(blob_put(worker, id, BLOB_PREVIEW, 0, "pv", 2, &err), GS_OK);
    assert_int_equal(blob_put(worker, id, BLOB_PREVIEW, 0, "pv2", 3, &err), GS_OK);
    unsigned char *data;
    size_t n;
    assert_int_equal(blob_get(worker, id, BLOB_INPUT, 0, 256, &data, &n, &err), GS_OK);
    assert_int_equal(n, 256);
    assert_memory_equal(data, bytes, 256);
    free(data);
    assert_int_equal(blob_get(api, id, BLOB_IMAGE, 1, BIG, &data, &n, &err), GS_OK);
    assert_int_equal(n, BIG);
    assert_memory_equal(data, bytes, BIG);
    free(data);
    assert_int_equal(blob_get(api, id, BLOB_PREVIEW, 0, 100, &data, &n, &err), GS_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(data, "pv2", 3);
    free(data);
    assert_int_equal(blob_get(api, id, BLOB_IMAGE, 1, BIG - 1, &data, &n, &err), GS_ERR_IO);
    assert_null(data);
    assert_int_equal(blob_get(api, id, BLOB_IMAGE, 0, 100, &data, &n, &err),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_not_equal(blob_put(api, "../x", BLOB_IMAGE, 0, "x", 1, &err), GS_OK);
    assert_int_equal(store_disk_bytes(s, &after, &err), GS_OK);
    assert_true(after - before >= BIG);   /* the database holds the bytes, uncompressed */
    assert_int_equal(blob_bytes(api), 0); /* counted there, not twice */
    int jobs = 0;
    assert_int_equal(blob_each_job(api, count_blob_job, &jobs, &err), GS_OK);
    assert_int_equal(jobs, 0); /* put just now: maybe a submit in flight */
    PGconn *a = admin_conn(state);
    admin_exec(a, "UPDATE blobs SET put_ms = put_ms - 3600000");
    assert_int_equal(blob_each_job(api, count_blob_job, &jobs, &err), GS_OK);
    assert_int_equal(jobs, 1);
    int removed = 0;
    assert_int_equal(blob_sweep(api, s, &removed, &err), GS_OK); /* no such job */
    assert_int_equal(removed, 1);
    assert_int_equal(admin_long(a, "SELECT count(*) FROM blobs"), 0);
    PQfinish(a);
    free(bytes);
    blob_close(api);
    blob_close(worker);
    store_close(s);
}

/* ---- API keys in the store (store_keys.h) ---- */

/* Whether any file under root holds text (nftw, so the callback's state is static). */
static const char *scan_text;
static int scan_found, scan_files;

static int scan_file(const char *fpath, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || !S_ISREG(sb->st_mode))
        return 0;
    FILE *f = fopen(fpath, "rb");
    if (!f)
        return 0;
    scan_files++;
    size_t tn = strlen(scan_text), keep = 0;
    static char buf[1 << 16];
    /* each read goes after the last tn - 1 bytes of the one before: a match
       across two reads is seen */
    for (size_t got; (got = fread(buf + keep, 1, sizeof buf - keep, f)) > 0;) {
        size_t n = keep + got;
        if (memmem(buf, n, scan_text, tn)) {
            scan_found = 1;
            break;
        }
        keep = n < tn - 1 ? n : tn - 1;
        memmove(buf, buf + n - keep, keep);
    }
    fclose(f);
    return scan_found;
}

/* Whether the case's database, on disk, holds text anywhere: the SQLite
   file and its WAL, or every file of the PostgreSQL cluster (tables, WAL,
   indexes) after a checkpoint wrote the tables out. */
static int database_holds(void **state, const char *text)
{
    engine *e = *state;
    char root[256];
    if (strcmp(e->name, "postgres") == 0) {
        PGconn *a = admin_conn(state);
        admin_exec(a, "CHECKPOINT");
        PQfinish(a);
        snprintf(root, sizeof root, "%s/data", pgsrv.dir);
    } else {
        snprintf(root, sizeof root, "%s", dir);
    }
    scan_text = text;
    scan_found = scan_files = 0;
    assert_int_equal(nftw(root, scan_file, 16, FTW_PHYS) < 0, 0);
    assert_true(scan_files > 0);
    return scan_found;
}

static void keys_add_list_revoke_lookup(void **state)
{
    job_store *s = fresh(state);
    svc_error err = {0};
    char alice[STORE_KEY_LEN + 1], ops[STORE_KEY_LEN + 1], again[STORE_KEY_LEN + 1];
    assert_int_equal(store_key_add(s, "alice", 3, 12.5, 0, 1000, alice, &err), GS_OK);
    assert_int_equal(store_key_add(s, "ops", 0, 0, 1, 2000, ops, &err), GS_OK);
    assert_int_equal(strlen(alice), STORE_KEY_LEN);
    assert_int_equal(strncmp(alice, STORE_KEY_PREFIX, 4), 0);
    assert_string_not_equal(alice, ops);

    store_key *rows;
    int n;
    assert_int_equal(store_keys_list(s, &rows, &n, &err), GS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(rows[0].name, "alice");
    assert_int_equal(rows[0].max_active, 3);
    assert_true(rows[0].max_cost == 12.5);
    assert_int_equal(rows[0].admin, 0);
    assert_int_equal(rows[0].created_ms, 1000);
    assert_int_equal(rows[0].revoked_ms, 0);
    assert_string_equal(rows[1].name, "ops");
    assert_int_equal(rows[1].admin, 1);
    /* a salt of its own per key, and the hash is not the key's bare SHA-256 */
    assert_int_equal(strlen(rows[0].salt), STORE_KEY_SALT_LEN);
    assert_string_not_equal(rows[0].salt, rows[1].salt);
    char bare[SHA256_HEX_LEN + 1];
    sha256_hex(alice, strlen(alice), bare);
    assert_string_not_equal(rows[0].hash, bare);
    char alice_salt[STORE_KEY_SALT_LEN + 1];
    snprintf(alice_salt, sizeof alice_salt, "%s", rows[0].salt);
    free(rows);

    store_key k;
    int found = 0;
    assert_int_equal(store_key_lookup(s, alice, strlen(alice), &k, &found, &err), GS_OK);
    assert_true(found);
    assert_string_equal(k.name, "alice");
    assert_int_equal(k.max_active, 3);
    assert_int_equal(store_key_lookup(s, ops, strlen(ops), &k, &found, &err), GS_OK);
    assert_true(found);
    assert_string_equal(k.name, "ops");
    assert_int_equal(k.admin, 1);
    /* one digit off, one short, one long, empty: none is a key */
    char wrong[STORE_KEY_LEN + 2];
    snprintf(wrong, sizeof wrong, "%s", alice);
    wrong[STORE_KEY_LEN - 1] = wrong[STORE_KEY_LEN - 1] == '0' ? '1' : '0';
    assert_int_equal(store_key_lookup(s, wrong, strlen(wrong), &k, &found, &err), GS_OK);
    assert_false(found);
    assert_int_equal(store_key_lookup(s, alice, STORE_KEY_LEN - 1, &k, &found, &err), GS_OK);
    assert_false(found);
    snprintf(wrong, sizeof wrong, "%sx", alice);
    assert_int_equal(store_key_lookup(s, wrong, strlen(wrong), &k, &found, &err), GS_OK);
    assert_false(found);
    assert_int_equal(store_key_lookup(s, "", 0, &k, &found, &err), GS_OK);
    assert_false(found);

    /* a name is taken once: the first key stays as it was */
    assert_int_equal(store_key_add(s, "alice", 0, 0, 1, 3000, again, &err),
                     GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "alice"));
    assert_string_equal(again, "");
    assert_int_equal(store_key_lookup(s, alice, strlen(alice), &k, &found, &err), GS_OK);
    assert_true(found);
    assert_int_equal(k.admin, 0);
    assert_int_equal(store_key_add(s, "", 0, 0, 0, 3000, again, &err), GS_ERR_INVALID_ARGUMENT);

    /* revoked: refused from then on, listed with the time, the name still taken */
    int revoked = 0;
    assert_int_equal(store_key_revoke(s, "alice", 4000, &revoked, &err), GS_OK);
    assert_int_equal(revoked, 1);
    assert_int_equal(store_key_revoke(s, "alice", 5000, &revoked, &err), GS_OK);
    assert_int_equal(revoked, 0);
    assert_int_equal(store_key_revoke(s, "nobody", 5000, &revoked, &err), GS_OK);
    assert_int_equal(revoked, 0);
    assert_int_equal(store_key_lookup(s, alice, strlen(alice), &k, &found, &err), GS_OK);
    assert_false(found);
    assert_int_equal(store_key_add(s, "alice", 0, 0, 0, 6000, again, &err),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(store_keys_list(s, &rows, &n, &err), GS_OK);
    assert_int_equal(n, 2);
    assert_int_equal(rows[0].revoked_ms, 4000);
    assert_int_equal(rows[1].revoked_ms, 0);
    free(rows);

    /* another handle (another process, another machine) sees the same keys */
    job_store *s2;
    assert_int_equal(store_open(url_of(state), &s2, &err), GS_OK);
    assert_int_equal(store_key_lookup(s2, ops, strlen(ops), &k, &found, &err), GS_OK);
    assert_true(found);
    assert_int_equal(store_key_lookup(s2, alice, strlen(alice), &k, &found, &err), GS_OK);
    assert_false(found);
    store_close(s2);
    store_close(s);

    /* on disk: the rows are there (the salt is found), the keys nowhere,
       with or without their prefix */
    assert_true(database_holds(state, alice_salt));
    assert_false(database_holds(state, alice));
    assert_false(database_holds(state, alice + 4));
    assert_false(database_holds(state, ops + 4));
}

/* Cases every engine must pass: each gets the engine as its state. */
static const struct CMUnitTest conformance[] = {
    cmocka_unit_test(priority_then_arrival),
    cmocka_unit_test(exactly_one_result),
    cmocka_unit_test(expired_leases_requeue_then_fail),
    cmocka_unit_test(dead_worker_jobs_requeue_at_once),
    cmocka_unit_test(cancellation),
    cmocka_unit_test(survives_restart),
    cmocka_unit_test(preference_without_starvation),
    cmocka_unit_test(preference_for_any_loaded_model),
    cmocka_unit_test(workers_report_and_list),
    cmocka_unit_test(claims_only_among_the_models_a_worker_has),
    cmocka_unit_test(two_processes_never_share_a_job),
    cmocka_unit_test(release_gives_the_job_back),
    cmocka_unit_test(owners_stats_and_purge),
    cmocka_unit_test(lists_counts_and_depth),
    cmocka_unit_test(cancel_finished_and_purge_callback),
    cmocka_unit_test(submit_under_an_id_made_first),
    cmocka_unit_test(disk_bytes_count_the_database),
    cmocka_unit_test(keys_add_list_revoke_lookup),
};

#define N_CONFORMANCE (sizeof conformance / sizeof conformance[0])

/* Cases about SQLite files themselves, run once. */
static const struct CMUnitTest sqlite_only[] = {
    cmocka_unit_test(sqlite_store_open_urls),
    cmocka_unit_test(sqlite_refuses_broken_files),
    cmocka_unit_test(sqlite_check_finds_damaged_pages),
    cmocka_unit_test(sqlite_upgrades_schema_1),
    cmocka_unit_test(sqlite_upgrades_schema_2),
    cmocka_unit_test(sqlite_has_no_notifications),
};

/* Cases about what only the PostgreSQL engine has: a server shared by
   processes on many machines. */
static const struct CMUnitTest postgres_only[] = {
    cmocka_unit_test(pg_claimers_never_share_a_job),
    cmocka_unit_test(pg_concurrent_opens_create_the_schema_once),
    cmocka_unit_test(pg_reconnects_after_losing_the_connection),
    cmocka_unit_test(pg_urls_and_passwords),
    cmocka_unit_test(pg_refuses_schemas_it_does_not_know),
    cmocka_unit_test(pg_upgrade_counts_the_queue),
    cmocka_unit_test(pg_notifies_every_change),
    cmocka_unit_test(pg_progress_notifications_rate_limited),
    cmocka_unit_test(pg_blobs_in_the_database),
};

int main(void)
{
    int failed = 0;
    for (size_t i = 0; i < N_ENGINES; i++) {
        /* each case named after its engine too, so a failure says which */
        struct CMUnitTest tests[N_CONFORMANCE];
        char names[N_CONFORMANCE][96];
        for (size_t k = 0; k < N_CONFORMANCE; k++) {
            tests[k] = conformance[k];
            snprintf(names[k], sizeof names[k], "%s/%s", engines[i].name, conformance[k].name);
            tests[k].name = names[k];
        }
        group_engine = &engines[i];
        failed += cmocka_run_group_tests_name(engines[i].name, tests, setup, teardown);
    }
    group_engine = &engines[0];
    failed += cmocka_run_group_tests_name("sqlite only", sqlite_only, setup, teardown);
    group_engine = &engines[1];
    failed += cmocka_run_group_tests_name("postgres only", postgres_only, setup, teardown);
    pg_server_stop(&pgsrv);
    return failed;
}
