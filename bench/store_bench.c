/*
 * store_bench - what the job store itself costs, SQLite and PostgreSQL side
 * by side: submit → claim latency on an empty and on a deep queue, claims per
 * second with 8 claimers on connections of their own, and the database's
 * rows and bytes per job through a whole life cycle (submit, claim, a
 * heartbeat per step, finish); and claims per second while 16 running jobs
 * report a step every 10 ms each (what progress notifications cost claims).
 *
 *   store_bench [--iterations N] [--backlog N] [--jobs N] [--pg URL] [--only wake|claims]
 *
 * and how soon an idle worker on another connection claims a job just
 * submitted: woken by LISTEN/NOTIFY, or polling.
 *
 * PostgreSQL is a throwaway server with the durability settings of a real
 * installation (tests/pg_server.c) unless --pg names a database to use (its
 * tables must not exist yet: the bench makes and drops them). Timestamps are
 * the store's callers' own, so jobs move as fast as the engine lets them.
 */
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pg_server.h"
#include "queue/blob_store.h"
#include "queue/store.h"
#include "bench_util.h"

#define CLAIMERS 8
#define STEPS 20 /* heartbeats per job in the footprint: a 20-step job */

static const char params[] =
    "{\"model\":\"sd-v1-5\",\"prompt\":\"a lighthouse at dusk, (oil painting:1.2), highly "
    "detailed\",\"negative_prompt\":\"blurry, lowres\",\"seed\":42,\"steps\":20,\"cfg_scale\":7,"
    "\"sampler\":\"dpmpp_2m\",\"scheduler\":\"karras\",\"width\":512,\"height\":512,"
    "\"batch_size\":1,\"clip_skip\":1,\"precision\":\"auto\"}";

static const char result[] =
    "{\"images\":[0],\"step_ms\":[4101.2,4098.7,4102.9,4100.1,4099.5,4103.3,4097.8,4101.0,"
    "4100.6,4099.9,4102.2,4098.1,4100.4,4101.7,4099.2,4100.8,4098.9,4102.5,4100.3,4099.0],"
    "\"timings\":{\"load_s\":0.02,\"text_encode_s\":0.31,\"sampling_s\":82.01,"
    "\"vae_decode_s\":4.32,\"total_s\":86.71},\"seed\":42}";

static void die(const char *what, const svc_error *err)
{
    fprintf(stderr, "store_bench: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

/* ---- engines: a fresh database for each measurement ---- */

typedef struct engine {
    const char *name;
    char url[700];
    char dir[64];      /* SQLite: the file's directory */
    pg_server *server; /* PostgreSQL: our own server, unless given a database */
    const char *given;
    const char *options; /* PostgreSQL: session settings, as the URL's options= */
    int n;
} engine;

/* Drops what the bench made in a database it was given. */
static void pg_drop_tables(const char *url)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, "DROP TABLE IF EXISTS jobs, workers, meta, blobs");
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "store_bench: %s", PQerrorMessage(c));
        exit(1);
    }
    PQclear(r);
    PQfinish(c);
}

static void fresh(engine *e)
{
    e->n++;
    if (strcmp(e->name, "sqlite") == 0) {
        snprintf(e->url, sizeof e->url, "%s/jobs-%d.db", e->dir, e->n);
    } else if (e->given) {
        snprintf(e->url, sizeof e->url, "%s", e->given);
        pg_drop_tables(e->url);
    } else if (pg_server_new_db(e->server, e->url, sizeof e->url) != 0) {
        fprintf(stderr, "store_bench: %s\n", e->server->why);
        exit(1);
    }
    if (e->options) {
        size_t k = strlen(e->url);
        snprintf(e->url + k, sizeof e->url - k, "%coptions=%s", strchr(e->url, '?') ? '&' : '?',
                 e->options);
    }
}

static job_store *open_store(const engine *e)
{
    job_store *s;
    svc_error err = {0};
    if (store_open(e->url, &s, &err) != GS_OK)
        die("open", &err);
    return s;
}

/* ---- figures ---- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Nearest rank, of sorted v. */
static double pct(const double *v, int n, double p)
{
    int i = (int)(p * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void print_ms(const char *name, const char *what, int backlog, double *v, int n)
{
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    printf("%-8s %-16s backlog %6d   p50 %7.3f ms   p99 %7.3f ms   max %7.3f ms\n", name, what,
           backlog, pct(v, n, 0.50) * 1e3, pct(v, n, 0.99) * 1e3, v[n - 1] * 1e3);
}

/* ---- submit → claim latency ---- */

/* With backlog jobs queued ahead, each iteration submits one job and claims
   one (the oldest: the queue stays backlog deep), then finishes it. */
static void latency(engine *e, int backlog, int iterations)
{
    fresh(e);
    job_store *s = open_store(e);
    svc_error err = {0};
    char id[JOB_ID_LEN + 1];
    int64_t t = 1;
    for (int i = 0; i < backlog; i++)
        if (store_submit(s, "", "sd-v1-5", 0, params, 10.5, t++, id, NULL, &err) != GS_OK)
            die("submit", &err);
    double *submit = malloc(sizeof(double) * (size_t)iterations);
    double *claim = malloc(sizeof(double) * (size_t)iterations);
    double *both = malloc(sizeof(double) * (size_t)iterations);
    double *finish = malloc(sizeof(double) * (size_t)iterations);
    int warm = iterations / 10;
    for (int i = -warm; i < iterations; i++) {
        job_record r;
        int pos, got, rec;
        double t0 = now_s();
        if (store_submit(s, "", "sd-v1-5", 0, params, 10.5, t, id, &pos, &err) != GS_OK)
            die("submit", &err);
        double t1 = now_s();
        if (store_claim(s, "w1", NULL, 0, t, 15000, 60000, &r, &got, &err) != GS_OK || !got)
            die("claim", &err);
        double t2 = now_s();
        if (store_finish(s, r.id, "w1", JOB_SUCCEEDED, result, NULL, t, &rec, &err) != GS_OK ||
            !rec)
            die("finish", &err);
        double t3 = now_s();
        job_record_clear(&r);
        t++;
        if (i >= 0) {
            submit[i] = t1 - t0, claim[i] = t2 - t1, both[i] = t2 - t0, finish[i] = t3 - t2;
        }
    }
    print_ms(e->name, "submit", backlog, submit, iterations);
    print_ms(e->name, "claim", backlog, claim, iterations);
    print_ms(e->name, "submit->claim", backlog, both, iterations);
    print_ms(e->name, "finish", backlog, finish, iterations);
    free(submit), free(claim), free(both), free(finish);
    store_close(s);
}

/* ---- an idle worker woken: submit → claim across connections ---- */

/* One worker thread on its own connection, idle between jobs as gesso
   worker is: it claims, and when the queue is empty it waits for a
   notification (notify) or sleeps a poll interval, then claims again. The
   main thread submits one job at a time once the worker is idle and times
   submit → claimed. */
typedef struct waker {
    const engine *e;
    int notify, poll_ms;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int ready, claimed, stop;
    double claimed_at;
} waker;

static void drop_change(void *user, char kind, const char *id)
{
    (void)kind, (void)id;
    ++*(int *)user;
}

static void *wake_worker(void *arg)
{
    waker *w = arg;
    job_store *s = open_store(w->e);
    svc_error err = {0};
    int listening = 0;
    if (w->notify && store_listen(s, STORE_LISTEN_QUEUED, &listening, &err) != GS_OK)
        die("listen", &err);
    pthread_mutex_lock(&w->mu);
    w->ready = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
    while (!w->stop) {
        job_record r;
        int got, news = 0;
        if (store_claim(s, "w1", NULL, 0, 1000, 15000, 60000, &r, &got, &err) != GS_OK)
            die("claim", &err);
        if (got) {
            double t = now_s();
            job_record_clear(&r);
            pthread_mutex_lock(&w->mu);
            w->claimed_at = t;
            w->claimed = 1;
            pthread_cond_signal(&w->cond);
            pthread_mutex_unlock(&w->mu);
            continue;
        }
        if (!listening) {
            usleep((useconds_t)w->poll_ms * 1000);
            continue;
        }
        if (store_changes(s, drop_change, &news, NULL, &err) != GS_OK)
            die("changes", &err);
        if (news)
            continue;
        struct pollfd p = {.fd = store_listen_fd(s), .events = POLLIN};
        if (poll(&p, 1, 200) > 0 && store_changes(s, drop_change, &news, NULL, &err) != GS_OK)
            die("changes", &err);
    }
    store_close(s);
    return NULL;
}

static void wake_latency(engine *e, int notify, int poll_ms, int iterations)
{
    fresh(e);
    job_store *s = open_store(e);
    svc_error err = {0};
    waker w = {.e = e, .notify = notify, .poll_ms = poll_ms};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, NULL);
    pthread_t t;
    pthread_create(&t, NULL, wake_worker, &w);
    pthread_mutex_lock(&w.mu);
    while (!w.ready)
        pthread_cond_wait(&w.cond, &w.mu);
    pthread_mutex_unlock(&w.mu);
    double *lat = malloc(sizeof(double) * (size_t)iterations);
    int warm = iterations / 10;
    for (int i = -warm; i < iterations; i++) {
        usleep(3000); /* the worker has found the queue empty and waits */
        char id[JOB_ID_LEN + 1];
        double t0 = now_s();
        if (store_submit(s, "", "sd-v1-5", 0, params, 10.5, 1000 + i, id, NULL, &err) != GS_OK)
            die("submit", &err);
        pthread_mutex_lock(&w.mu);
        while (!w.claimed)
            pthread_cond_wait(&w.cond, &w.mu);
        w.claimed = 0;
        double dt = w.claimed_at - t0;
        pthread_mutex_unlock(&w.mu);
        if (i >= 0)
            lat[i] = dt;
    }
    w.stop = 1;
    pthread_join(t, NULL);
    char what[32];
    snprintf(what, sizeof what, notify ? "woken by NOTIFY" : "polling %d ms", poll_ms);
    print_ms(e->name, what, 0, lat, iterations);
    free(lat);
    store_close(s);
}

/* ---- claims per second ---- */

typedef struct claimer {
    const engine *e;
    pthread_barrier_t *start;
    int finish; /* finish each job too (a worker's whole round trip) */
    char name[16];
    int claimed;
} claimer;

static void *claim_all(void *arg)
{
    claimer *c = arg;
    job_store *s = open_store(c->e);
    svc_error err = {0};
    pthread_barrier_wait(c->start);
    for (;;) {
        job_record r;
        int got, rec;
        if (store_claim(s, c->name, NULL, 0, 1000, 15000, 60000, &r, &got, &err) != GS_OK)
            die("claim", &err);
        if (!got)
            break;
        if (c->finish &&
            store_finish(s, r.id, c->name, JOB_SUCCEEDED, result, NULL, 2000, &rec, &err) != GS_OK)
            die("finish", &err);
        job_record_clear(&r);
        c->claimed++;
    }
    store_close(s);
    return NULL;
}

/* A running job's worker stepping: a progress heartbeat every STEP_MS, as
   a fast machine's worker reports its sampler steps, until told to stop. */
#define STEPPERS 16
#define STEP_MS 10

typedef struct stepper {
    const engine *e;
    pthread_barrier_t *start;
    volatile int *stop;
    char name[16];
    int beats;
} stepper;

static void *step_on(void *arg)
{
    stepper *w = arg;
    job_store *s = open_store(w->e);
    svc_error err = {0};
    job_record r;
    int got, cancel, lost;
    if (store_claim(s, w->name, NULL, 0, 1000, 15000, 60000, &r, &got, &err) != GS_OK || !got)
        die("stepper claim", &err);
    pthread_barrier_wait(w->start);
    for (int k = 1; !*w->stop; k++) {
        job_progress p = {k % 1000, 1000, k % 1000, 1.0};
        if (store_heartbeat(s, r.id, w->name, 1000 + k, 15000, &p, &cancel, &lost, &err) != GS_OK)
            die("heartbeat", &err);
        w->beats++;
        usleep(STEP_MS * 1000);
    }
    job_record_clear(&r);
    store_close(s);
    return NULL;
}

/* steppers: that many running jobs report progress while the claimers claim */
static void throughput(engine *e, int jobs, int finish, int steppers)
{
    fresh(e);
    job_store *s = open_store(e);
    svc_error err = {0};
    char id[JOB_ID_LEN + 1];
    for (int i = 0; i < jobs + steppers; i++)
        if (store_submit(s, "", "sd-v1-5", 0, params, 10.5, i, id, NULL, &err) != GS_OK)
            die("submit", &err);
    store_close(s);
    stepper w[STEPPERS];
    pthread_t wt[STEPPERS];
    volatile int stop = 0;
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, (unsigned)steppers + 1);
    for (int k = 0; k < steppers; k++) {
        w[k] = (stepper){.e = e, .start = &ready, .stop = &stop};
        snprintf(w[k].name, sizeof w[k].name, "s%d", k);
        pthread_create(&wt[k], NULL, step_on, &w[k]);
    }
    pthread_barrier_wait(&ready); /* each holds its job: the rest is the claimers' */
    pthread_barrier_destroy(&ready);
    claimer c[CLAIMERS];
    pthread_t t[CLAIMERS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, CLAIMERS + 1);
    for (int k = 0; k < CLAIMERS; k++) {
        c[k] = (claimer){.e = e, .start = &start, .finish = finish};
        snprintf(c[k].name, sizeof c[k].name, "w%d", k);
        pthread_create(&t[k], NULL, claim_all, &c[k]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s();
    int total = 0;
    for (int k = 0; k < CLAIMERS; k++) {
        pthread_join(t[k], NULL);
        total += c[k].claimed;
    }
    double dt = now_s() - t0;
    stop = 1;
    int beats = 0;
    for (int k = 0; k < steppers; k++) {
        pthread_join(wt[k], NULL);
        beats += w[k].beats;
    }
    pthread_barrier_destroy(&start);
    if (total != jobs) {
        fprintf(stderr, "store_bench: %d of %d jobs claimed\n", total, jobs);
        exit(1);
    }
    printf("%-8s %d claimers, %s: %d jobs in %.2f s = %.0f /s", e->name, CLAIMERS,
           finish ? "claim+finish" : "claim only  ", jobs, dt, jobs / dt);
    if (steppers)
        printf("   while %d jobs step (%.0f progress writes/s)", steppers, beats / dt);
    printf("\n");
}

/* ---- rows and bytes per job ---- */

static int64_t bytes_of(job_store *s)
{
    int64_t b;
    svc_error err = {0};
    if (store_disk_bytes(s, &b, &err) != GS_OK)
        die("disk bytes", &err);
    return b;
}

/* PostgreSQL: VACUUM (what autovacuum does in its own time), and how many
   of the updates were HOT (no index entries written). */
static void pg_vacuum(const char *url, long *hot, long *updates)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, "VACUUM jobs");
    PQclear(r);
    r = PQexec(c, "SELECT pg_stat_force_next_flush()"); /* PostgreSQL 15: stats are deferred */
    PQclear(r);
    r = PQexec(c, "SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables"
                  " WHERE relname = 'jobs'");
    *hot = PQntuples(r) ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    *updates = PQntuples(r) ? strtol(PQgetvalue(r, 0, 1), NULL, 10) : -1;
    PQclear(r);
    PQfinish(c);
}

static void footprint(engine *e, int jobs)
{
    fresh(e);
    job_store *s = open_store(e);
    svc_error err = {0};
    char id[JOB_ID_LEN + 1];
    int64_t empty = bytes_of(s);
    for (int i = 0; i < jobs; i++)
        if (store_submit(s, "key1", "sd-v1-5", 0, params, 10.5, i, id, NULL, &err) != GS_OK)
            die("submit", &err);
    int64_t queued = bytes_of(s);
    for (int i = 0; i < jobs; i++) {
        job_record r;
        int got, rec, cancel, lost;
        if (store_claim(s, "w1", NULL, 0, 1000, 15000, 60000, &r, &got, &err) != GS_OK || !got)
            die("claim", &err);
        for (int k = 1; k <= STEPS; k++) {
            job_progress p = {k, STEPS, k, (STEPS - k) * 4.1};
            if (store_heartbeat(s, r.id, "w1", 1000 + k, 15000, &p, &cancel, &lost, &err) != GS_OK)
                die("heartbeat", &err);
        }
        if (store_finish(s, r.id, "w1", JOB_SUCCEEDED, result, NULL, 2000, &rec, &err) != GS_OK)
            die("finish", &err);
        job_record_clear(&r);
    }
    int64_t done = bytes_of(s);
    printf("%-8s %d jobs, 1 row each: empty %" PRId64 " B; queued %.0f B/job; after claim, %d"
           " heartbeats and finish %.0f B/job",
           e->name, jobs, empty, (double)(queued - empty) / jobs, STEPS,
           (double)(done - empty) / jobs);
    if (e->server || e->given) {
        long hot, updates;
        pg_vacuum(e->url, &hot, &updates);
        printf("; after VACUUM %.0f B/job; %ld of %ld updates HOT",
               (double)(bytes_of(s) - empty) / jobs, hot, updates);
    }
    printf("\n");
    store_close(s);
}

/* PostgreSQL with its blobs in the database (blob_pg.c): a job's rows and
   bytes with a result image and a preview per step, and the write-ahead log
   it costs (what a replica or a backup ships). Random bytes stand in for
   the PNGs, which do not compress either. */
#define RESULT_PNG 420000 /* a 512x512 SD1.5 PNG: 350-450 KB */
#define PREVIEW_PNG 8000  /* the 64x64 latent preview */

static int64_t pg_value(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQexec(c, sql);
    int64_t v = PQntuples(r) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : -1;
    PQclear(r);
    PQfinish(c);
    return v;
}

static void footprint_blobs(engine *e, int jobs)
{
    fresh(e);
    job_store *s = open_store(e);
    blob_store *b;
    svc_error err = {0};
    if (blob_open(e->url, &b, &err) != GS_OK)
        die("blob open", &err);
    unsigned char *png = malloc(RESULT_PNG);
    uint32_t x = 1;
    for (int i = 0; i < RESULT_PNG; i++) {
        x = x * 1664525u + 1013904223u;
        png[i] = (unsigned char)(x >> 24);
    }
    int64_t empty = bytes_of(s);
    int64_t wal0 = pg_value(e->url, "SELECT pg_current_wal_insert_lsn() - '0/0'");
    double t0 = now_s();
    for (int i = 0; i < jobs; i++) {
        job_record r;
        char id[JOB_ID_LEN + 1];
        int got, rec, cancel, lost;
        if (store_submit(s, "key1", "sd-v1-5", 0, params, 10.5, i, id, NULL, &err) != GS_OK ||
            store_claim(s, "w1", NULL, 0, 1000, 15000, 60000, &r, &got, &err) != GS_OK || !got)
            die("submit/claim", &err);
        for (int k = 1; k <= STEPS; k++) {
            job_progress p = {k, STEPS, k, (STEPS - k) * 4.1};
            png[0] = (unsigned char)k;
            if (blob_put(b, r.id, BLOB_PREVIEW, 0, png, PREVIEW_PNG, &err) != GS_OK ||
                store_heartbeat(s, r.id, "w1", 1000 + k, 15000, &p, &cancel, &lost, &err) != GS_OK)
                die("preview/heartbeat", &err);
        }
        if (blob_put(b, r.id, BLOB_IMAGE, 0, png, RESULT_PNG, &err) != GS_OK ||
            store_finish(s, r.id, "w1", JOB_SUCCEEDED, result, NULL, 2000, &rec, &err) != GS_OK)
            die("result", &err);
        job_record_clear(&r);
    }
    double dt = now_s() - t0;
    int64_t wal = pg_value(e->url, "SELECT pg_current_wal_insert_lsn() - '0/0'") - wal0;
    int64_t done = bytes_of(s);
    long hot, updates;
    pg_vacuum(e->url, &hot, &updates);
    int64_t rows = pg_value(e->url, "SELECT count(*) FROM blobs");
    printf("%-8s blobs in the database, %d jobs (a %d B result, %d previews of %d B each):"
           " %.0f B/job (%.2f x the image), %.1f blob rows/job, after VACUUM %.0f B/job;"
           " WAL %.0f B/job; %.1f ms/job\n",
           e->name, jobs, RESULT_PNG, STEPS, PREVIEW_PNG, (double)(done - empty) / jobs,
           (double)(done - empty) / jobs / RESULT_PNG, (double)rows / jobs,
           (double)(bytes_of(s) - empty) / jobs, (double)wal / jobs, dt * 1e3 / jobs);
    free(png);
    blob_close(b);
    store_close(s);
}

int main(int argc, char **argv)
{
    int iterations = 2000, backlog = 10000, jobs = 4000;
    const char *pg_url = NULL;
    enum { ALL, ONLY_WAKE, ONLY_CLAIMS } only = ALL; /* --only wake|claims: that part alone */
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--iterations") == 0)
            iterations = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--backlog") == 0)
            backlog = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--jobs") == 0)
            jobs = (int)strtol(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--pg") == 0)
            pg_url = argv[i + 1];
        else if (strcmp(argv[i], "--only") == 0)
            only = strcmp(argv[i + 1], "wake") == 0     ? ONLY_WAKE
                   : strcmp(argv[i + 1], "claims") == 0 ? ONLY_CLAIMS
                                                        : ALL;
    }
    if (iterations < 10 || jobs < 1 || backlog < 0) {
        fprintf(stderr,
                "usage: store_bench [--iterations N] [--backlog N] [--jobs N] [--pg URL]\n");
        return 2;
    }
    /* SQLite in WAL mode with synchronous=NORMAL syncs at checkpoints, not at
       each commit: PostgreSQL's nearest setting is synchronous_commit=off
       (a crash of the machine may lose the last commits, never consistency) */
    static pg_server server;
    pg_server *own = pg_url ? NULL : &server;
    engine engines[3] = {
        {.name = "sqlite"},
        {.name = "postgres", .server = own, .given = pg_url},
        {.name = "pg-async",
         .server = own,
         .given = pg_url,
         .options = "-csynchronous_commit%3Doff"},
    };
    snprintf(engines[0].dir, sizeof engines[0].dir, "/tmp/gesso-store-bench-XXXXXX");
    if (!mkdtemp(engines[0].dir))
        return 1;
    if (own && pg_server_start(own, PG_SERVER_DURABLE) != 0) {
        fprintf(stderr, "store_bench: %s\n", own->why);
        return 1;
    }
    if (only == ONLY_CLAIMS)
        goto claims;
    for (int k = 0; k < 3 && only != ONLY_WAKE; k++) {
        latency(&engines[k], 0, iterations);
        latency(&engines[k], backlog, iterations);
    }
    for (int k = 1; k < 3; k++) /* an idle worker's wake-up: PostgreSQL only (SQLite polls) */
        wake_latency(&engines[k], 1, 0, iterations / 4);
    wake_latency(&engines[2], 0, 50, iterations / 20);
    if (only == ONLY_WAKE)
        goto done;
claims:
    for (int k = 0; k < 3; k++) {
        throughput(&engines[k], jobs, 0, 0);
        if (only != ONLY_CLAIMS)
            throughput(&engines[k], jobs, 1, 0);
    }
    /* claims while running jobs report progress: what their notifications cost */
    for (int k = 0; k < 3; k++)
        throughput(&engines[k], jobs, 0, STEPPERS);
    if (only == ONLY_CLAIMS)
        goto done;
    for (int k = 0; k < 2; k++)
        footprint(&engines[k], jobs);
    footprint_blobs(&engines[1], jobs / 20 > 10 ? jobs / 20 : 10);
done:
    if (own)
        pg_server_stop(own);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", engines[0].dir);
    return system(cmd) == 0 ? 0 : 1;
}
