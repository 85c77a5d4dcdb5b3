/*
 * test_fleet - several `gesso serve` front ends and workers sharing one real
 * PostgreSQL (tests/pg_server.c), as machines of a fleet would: events of a
 * job reach an event stream on a front end other than the one that took it,
 * live (LISTEN/NOTIFY), and any front end serves its images (blobs in the
 * database).
 */
#include "testutil.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg_server.h"
#include "tcp_proxy.h"

static pg_server pg;
static char url[512];

/* One front end: its own scratch directory (another machine's disk), the
   shared database. */
typedef struct front {
    char dir[128], base[64];
    pid_t pid;
} front;

/* store: a PostgreSQL URL, or NULL for the front end's own SQLite file */
static void front_start(front *f, const char *workers, const char *store)
{
    snprintf(f->dir, sizeof f->dir, "/tmp/gesso-fleet-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(test_link_tiny_model(f->dir), 0);
    f->pid =
        test_serve_start(f->base, f->dir,
                         store ? (const char *const[]){"--store", store, "--workers", workers, NULL}
                               : (const char *const[]){"--workers", workers, NULL});
}

static void front_stop(front *f)
{
    assert_int_equal(test_serve_stop(f->pid), 0);
    assert_int_equal(test_remove_tree(f->dir), 0);
}

static int setup(void **state)
{
    (void)state;
    if (pg_server_start(&pg, 0) != 0) {
        fprintf(stderr, "no PostgreSQL server for the test: %s\n", pg.why);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pg_server_stop(&pg);
    return 0;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* A job submitted through front end A while A's only worker is busy; its
   event stream is read through front end B, which has no workers and so
   learns of the job's changes from the database alone. The stream must see
   the start, each step and the end, and progress while the job still runs:
   only a notification wakes B's stream (its keep-alive is 15 s), and a job's
   progress notifies at most every 250 ms (the stream fills in the steps
   between), so a stream that saw progress only at the end would show
   notifications withheld. The deadline leaves a sanitized build on a loaded
   machine its time. */
static void events_reach_another_front_end(void **state)
{
    (void)state;
    assert_int_equal(pg_server_new_db(&pg, url, sizeof url), 0);
    front a, b;
    front_start(&a, "1", url);
    front_start(&b, "0", url);
    char *blocker = test_submit(a.base, a.dir, NULL,
                                "{\"model\":\"tiny-sd15\",\"steps\":150,\"width\":128,"
                                "\"height\":128}");
    test_wait_step(a.base, a.dir, NULL, blocker, 60000);
    char *id = test_submit(a.base, a.dir, NULL,
                           "{\"model\":\"tiny-sd15\",\"steps\":24,\"width\":128,"
                           "\"height\":128,\"seed\":7}");
    char events[300], cmd[1024], path[160];
    snprintf(events, sizeof events, "%s/events.txt", b.dir);
    snprintf(cmd, sizeof cmd, "curl -sN -m 150 -o '%s' '%s/v1/jobs/%s/events' &", events, b.base,
             id);
    assert_int_equal(system(cmd), 0);
    /* the stream is open and has said "queued" before the job can move */
    for (int64_t end = test_mono_ms() + 5000;; test_sleep_ms(20)) {
        char *t = read_text(events);
        if (t && strstr(t, "event: queued"))
            break;
        if (test_mono_ms() > end)
            fail_msg("B's stream said nothing: %s", t ? t : "(no file)");
    }
    int64_t t0 = test_mono_ms();
    snprintf(path, sizeof path, "/v1/jobs/%s", blocker);
    assert_int_equal(test_http(a.base, a.dir, "DELETE", path, NULL, NULL), 200);
    char *t = NULL;
    const char *live = NULL; /* the job's status when B first said progress */
    for (int64_t end = t0 + 120000; test_mono_ms() < end; test_sleep_ms(20)) {
        t = read_text(events);
        if (!live && t && strstr(t, "event: progress")) {
            json_t *now = test_get_job(a.base, a.dir, NULL, id);
            live = strcmp(json_string_value(json_object_get(now, "status")), "running") == 0
                       ? "running"
                       : "ended";
            json_decref(now);
        }
        if (t && strstr(t, "event: succeeded"))
            break;
    }
    if (!t || !strstr(t, "event: succeeded"))
        fail_msg("B's stream did not see the job end within 120 s:\n%s", t ? t : "");
    fprintf(stderr, "B saw the job end %d ms after the blocker was cancelled\n",
            (int)(test_mono_ms() - t0));
    assert_int_equal(count_of(t, "event: started"), 1);
    assert_int_equal(count_of(t, "event: progress"), 24);
    /* progress reached B while the job ran (its notifications are rate-limited
       per job, never withheld to the end) */
    assert_non_null(live);
    assert_string_equal(live, "running");
    json_t *j = test_get_job(b.base, b.dir, NULL, id);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    /* the image is in the database: B serves it, the same bytes as A */
    snprintf(path, sizeof path, "/v1/jobs/%s/images/0", id);
    assert_int_equal(test_http(b.base, b.dir, "GET", path, NULL, NULL), 200);
    assert_int_equal(test_http(a.base, a.dir, "GET", path, NULL, NULL), 200);
    snprintf(cmd, sizeof cmd, "cmp -s '%s/resp' '%s/resp' && ! ls '%s'/data/results/*.png", a.dir,
             b.dir, a.dir);
    assert_int_equal(system(cmd), 0);
    free(blocker);
    free(id);
    front_stop(&a);
    front_stop(&b);
}

/* Workers of the fleet as an operator runs them: `gesso worker --store URL
   --models DIR`, each its own process with its own models directory, beside
   a front end with no workers (serve --workers 0). Killed at the end of a
   case whatever happened, so a failed case leaves none behind. */
static pid_t kids[8];

static int kill_workers(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++)
        if (kids[i] > 0) {
            kill(kids[i], SIGKILL);
            waitpid(kids[i], NULL, 0);
            kids[i] = 0;
        }
    return 0;
}

static void forget_worker(pid_t pid)
{
    for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++)
        if (kids[i] == pid)
            kids[i] = 0;
}

/* store: the front end's (a PostgreSQL URL, or its SQLite file, then blobs
   says where its images are). */
static pid_t worker_start(const char *dir, const char *name, const char *store, const char *blobs,
                          const char *lease)
{
    char models[300], log[300];
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(log, sizeof log, "%s/worker.log", dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen(log, "a", stderr))
            _exit(126);
        const char *argv[20] = {GS_GESSO_BIN, "worker", "--store", store, "--models",  models,
                                "--name",     name,     "--lease", lease, "--threads", "2"};
        int n = 12;
        if (blobs)
            argv[n++] = "--blobs", argv[n++] = blobs;
        argv[n] = NULL;
        execv(GS_GESSO_BIN, (char *const *)argv);
        _exit(127);
    }
    for (size_t i = 0; i < sizeof kids / sizeof kids[0]; i++)
        if (kids[i] == 0) {
            kids[i] = pid;
            break;
        }
    return pid;
}

static json_t *get_json(const front *f, const char *path)
{
    char *body = NULL;
    assert_int_equal(test_http(f->base, f->dir, "GET", path, NULL, &body), 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(j);
    return j;
}

/* The worker named in /v1/workers, or NULL (a new reference). */
static json_t *listed_worker(const front *f, const char *name)
{
    json_t *all = get_json(f, "/v1/workers"), *found = NULL;
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(all, "workers"), i, w)
    {
        const char *n = json_string_value(json_object_get(w, "name"));
        assert_non_null(n);
        if (strcmp(n, name) == 0)
            found = json_incref(w);
    }
    json_decref(all);
    return found;
}

/* Waits up to ms for /v1/workers to give worker name the state. */
static void wait_worker_state(const front *f, const char *name, const char *state, int ms)
{
    const char *now = "(not listed)";
    for (int64_t end = test_mono_ms() + ms;; test_sleep_ms(100)) {
        json_t *me = listed_worker(f, name);
        static char seen[32];
        snprintf(seen, sizeof seen, "%s",
                 me ? json_string_value(json_object_get(me, "state")) : "(not listed)");
        now = seen;
        json_decref(me);
        if (strcmp(now, state) == 0)
            return;
        if (test_mono_ms() > end)
            fail_msg("worker %s is %s, not %s, after %d ms", name, now, state, ms);
    }
}

static const char *str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "(none)";
}

/* One front end with no workers, two standalone workers with a model each,
   on the engine given (a PostgreSQL URL, or NULL: the front end's SQLite
   file, which workers on the same machine can share): each worker claims
   only the jobs of the model it has, and its image is the CLI's; the fleet
   view says what each has, holds and does, which job waits for a model no
   live worker has (GET /v1/jobs/{id}, /v1/queue), who is gone (killed), and
   /metrics says it per worker; SIGTERM gives a running job back, exit 0. */
static void standalone_workers(const char *pg_url)
{
    front f;
    front_start(&f, "0", pg_url);
    char store[300], blobs[300], wdir[200], w2dir[200], cmd[1200], path[300];
    snprintf(store, sizeof store, "%s/data/jobs.db", f.dir);
    snprintf(blobs, sizeof blobs, "%s/data/results", f.dir);
    /* the front end knows two models; each worker has the file of one */
    snprintf(wdir, sizeof wdir, "%s/remote", f.dir);
    snprintf(w2dir, sizeof w2dir, "%s/remote2", f.dir);
    assert_int_equal(test_link_tiny_model(wdir), 0);
    snprintf(cmd, sizeof cmd,
             "ln -s %s %s/models/other-sd15.safetensors && mkdir -p %s/models && ln -s %s "
             "%s/models/other-sd15.safetensors",
             fixture_path("tiny-sd15.safetensors"), f.dir, w2dir,
             fixture_path("tiny-sd15.safetensors"), w2dir);
    assert_int_equal(system(cmd), 0);
    pid_t w = worker_start(wdir, "remote-1", pg_url ? pg_url : store, pg_url ? NULL : blobs, "15");
    char *id = test_submit(f.base, f.dir, NULL,
                           "{\"model\":\"tiny-sd15\",\"prompt\":\"A lighthouse at dusk\","
                           "\"negative_prompt\":\"blurry\",\"seed\":42,\"steps\":8,"
                           "\"cfg_scale\":7,\"sampler\":\"euler\",\"width\":64,\"height\":64}");
    char *other = test_submit(f.base, f.dir, NULL,
                              "{\"model\":\"other-sd15\",\"steps\":2,\"width\":64,"
                              "\"height\":64}");
    json_t *j = test_wait_job(f.base, f.dir, NULL, id, 60000);
    assert_string_equal(str(j, "status"), "succeeded");
    assert_string_equal(str(j, "worker"), "remote-1");
    assert_false(json_is_true(json_object_get(j, "waiting_for_model")));
    json_decref(j);
    /* the image a local worker (and the CLI) makes for these settings */
    snprintf(cmd, sizeof cmd,
             "'%s' generate -m %s/models/tiny-sd15.safetensors -p 'A lighthouse at dusk' -n "
             "blurry -s 42 --steps 8 --cfg-scale 7 --sampler euler -W 64 -H 64 -t 2 -q "
             "-o %s/cli.png > /dev/null",
             GS_GESSO_BIN, f.dir, f.dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "/v1/jobs/%s/images/0", id);
    assert_int_equal(test_http(f.base, f.dir, "GET", path, NULL, NULL), 200);
    snprintf(cmd, sizeof cmd, "cmp -s %s/resp %s/cli.png", f.dir, f.dir);
    assert_int_equal(system(cmd), 0);

    /* the fleet view: what the worker has, holds and did; it says it is idle
       as soon as the job is recorded */
    wait_worker_state(&f, "remote-1", "idle", 5000);
    json_t *me = listed_worker(&f, "remote-1");
    assert_non_null(me);
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    assert_string_equal(str(me, "host"), host);
    json_t *avail = json_object_get(me, "models_available");
    assert_int_equal(json_array_size(avail), 1);
    assert_string_equal(json_string_value(json_array_get(avail, 0)), "tiny-sd15");
    json_t *loaded = json_object_get(me, "models_loaded");
    assert_int_equal(json_array_size(loaded), 1);
    assert_string_equal(json_string_value(json_array_get(loaded, 0)), "tiny-sd15");
    assert_true(json_is_null(json_object_get(me, "job")));
    assert_true(json_real_value(json_object_get(me, "megapixelsteps_per_s")) > 0);
    json_int_t seen = json_integer_value(json_object_get(me, "last_heartbeat_ms"));
    assert_true(seen > 0 && (int64_t)time(NULL) * 1000 - seen < 30000);
    json_decref(me);

    /* the job of the model it lacks waits for a worker that has it, and says so */
    test_sleep_ms(1000);
    j = test_get_job(f.base, f.dir, NULL, other);
    assert_string_equal(str(j, "status"), "queued");
    assert_true(json_is_true(json_object_get(j, "waiting_for_model")));
    json_decref(j);
    j = get_json(&f, "/v1/queue");
    json_t *q = json_object_get(json_object_get(j, "by_model"), "other-sd15");
    assert_int_equal(json_integer_value(json_object_get(q, "queued")), 1);
    assert_int_equal(json_integer_value(json_object_get(q, "workers")), 0);
    assert_true(json_is_true(json_object_get(q, "waiting_for_model")));
    json_decref(j);
    char *metrics = NULL;
    assert_int_equal(test_http(f.base, f.dir, "GET", "/metrics", NULL, &metrics), 200);
    assert_non_null(strstr(metrics, "gesso_worker_up{worker=\"remote-1\"} 1\n"));
    assert_non_null(strstr(metrics, "gesso_worker_busy{worker=\"remote-1\"} 0\n"));
    free(metrics);

    /* a worker that has it comes (a short lease: it is soon gone once killed) */
    pid_t w2 = worker_start(w2dir, "remote-2", pg_url ? pg_url : store, pg_url ? NULL : blobs, "1");
    j = test_wait_job(f.base, f.dir, NULL, other, 60000);
    assert_string_equal(str(j, "status"), "succeeded");
    assert_string_equal(str(j, "worker"), "remote-2");
    json_decref(j);
    kill(w2, SIGKILL);
    waitpid(w2, NULL, 0);
    forget_worker(w2);
    wait_worker_state(&f, "remote-2", "gone", 10000);
    metrics = NULL;
    assert_int_equal(test_http(f.base, f.dir, "GET", "/metrics", NULL, &metrics), 200);
    assert_non_null(strstr(metrics, "gesso_worker_up{worker=\"remote-2\"} 0\n"));
    free(metrics);
    /* a gone worker's models count for nothing: the next such job waits */
    char *other2 = test_submit(f.base, f.dir, NULL,
                               "{\"model\":\"other-sd15\",\"steps\":2,\"width\":64,"
                               "\"height\":64}");
    j = test_get_job(f.base, f.dir, NULL, other2);
    assert_true(json_is_true(json_object_get(j, "waiting_for_model")));
    json_decref(j);
    free(other2);

    /* SIGTERM while it runs a job: the job goes back, the worker exits 0 */
    char *slow = test_submit(f.base, f.dir, NULL,
                             "{\"model\":\"tiny-sd15\",\"steps\":150,\"width\":128,"
                             "\"height\":128}");
    test_wait_step(f.base, f.dir, NULL, slow, 60000);
    wait_worker_state(&f, "remote-1", "working", 10000); /* with its next heartbeat */
    me = listed_worker(&f, "remote-1");
    assert_string_equal(str(me, "job"), slow);
    json_decref(me);
    kill(w, SIGTERM);
    int status;
    assert_int_equal(waitpid(w, &status, 0), w);
    forget_worker(w);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) { /* seen once in a busy run: say why */
        snprintf(cmd, sizeof cmd, "tail -n 30 '%s/worker.log' >&2", wdir);
        if (system(cmd) != 0)
            fprintf(stderr, "(no worker log)\n");
        fail_msg("worker after SIGTERM: exited %d, status %d, signal %d", WIFEXITED(status),
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    }
    j = test_get_job(f.base, f.dir, NULL, slow);
    assert_string_equal(str(j, "status"), "queued");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 0);
    json_decref(j);
    assert_null(listed_worker(&f, "remote-1")); /* a clean exit takes its row */
    snprintf(path, sizeof path, "%s/worker.log", wdir);
    snprintf(cmd, sizeof cmd, "grep -q 'given back to the queue' '%s'", path);
    assert_int_equal(system(cmd), 0);
    free(id);
    free(other);
    free(slow);
    front_stop(&f);
}

static void standalone_workers_on_postgresql(void **state)
{
    (void)state;
    assert_int_equal(pg_server_new_db(&pg, url, sizeof url), 0);
    standalone_workers(url);
}

static void standalone_workers_on_sqlite(void **state)
{
    (void)state;
    standalone_workers(NULL);
}

/* The URL of the test's database through a proxy on 127.0.0.1:port. */
static void proxied_url(int port, char *out, size_t n)
{
    const char *db = url + strlen("postgresql:///");
    snprintf(out, n, "postgresql://postgres@127.0.0.1:%d/%.*s", port, (int)strcspn(db, "?"), db);
}

static void wait_running_on(const front *f, const char *id, const char *worker)
{
    for (int64_t end = test_mono_ms() + 60000;; test_sleep_ms(50)) {
        json_t *j = test_get_job(f->base, f->dir, NULL, id);
        int there = strcmp(str(j, "status"), "running") == 0 &&
                    strcmp(str(j, "worker"), worker) == 0 &&
                    json_integer_value(json_object_get(json_object_get(j, "progress"), "step")) > 0;
        json_decref(j);
        if (there)
            return;
        if (test_mono_ms() > end)
            fail_msg("job %s did not run on %s", id, worker);
    }
}

/* A worker whose database connection is cut (a TCP proxy between it and
   PostgreSQL drops every link and refuses new ones) keeps generating and
   reconnects with backoff: cut for less than its lease, it records its
   result; cut for longer, the front end's reaper requeues the job, another
   worker runs it, and the cut-off worker, back, finds the job no longer its
   own and drops its result: one result, attempts counted. */
static void worker_cut_off_from_the_database(void **state)
{
    (void)state;
    assert_int_equal(pg_server_new_db(&pg, url, sizeof url), 0);
    front f;
    front_start(&f, "0", url);
    char sock[200], purl[300], wdir[200], ddir[200], cmd[600], path[300];
    snprintf(sock, sizeof sock, "%s/.s.PGSQL.5432", pg.dir);
    int port = 0;
    tcp_proxy *proxy = tcp_proxy_start(sock, &port);
    assert_non_null(proxy);
    proxied_url(port, purl, sizeof purl);
    snprintf(wdir, sizeof wdir, "%s/cut", f.dir);
    snprintf(ddir, sizeof ddir, "%s/direct", f.dir);
    assert_int_equal(test_link_tiny_model(wdir), 0);
    assert_int_equal(test_link_tiny_model(ddir), 0);

    /* cut off until it has generated the image and found the store out of
       reach (at most 20 s, within its lease of 30 s): it keeps the result,
       and records it once the link is back */
    pid_t w = worker_start(wdir, "cut-1", purl, NULL, "30");
    char *id = test_submit(f.base, f.dir, NULL,
                           "{\"model\":\"tiny-sd15\",\"steps\":10,\"width\":64,"
                           "\"height\":64,\"seed\":5}");
    wait_running_on(&f, id, "cut-1");
    tcp_proxy_cut(proxy, 1);
    snprintf(cmd, sizeof cmd, "grep -q 'job %s: .*trying again with backoff' '%s/worker.log'", id,
             wdir);
    for (int64_t end = test_mono_ms() + 20000; system(cmd) != 0; test_sleep_ms(100))
        if (test_mono_ms() > end)
            fail_msg("cut-1 did not find the store out of reach with job %s done", id);
    test_sleep_ms(1000); /* a backoff or two */
    tcp_proxy_cut(proxy, 0);
    json_t *j = test_wait_job(f.base, f.dir, NULL, id, 60000);
    assert_string_equal(str(j, "status"), "succeeded");
    assert_string_equal(str(j, "worker"), "cut-1");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 1);
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s/images/0", id);
    assert_int_equal(test_http(f.base, f.dir, "GET", path, NULL, NULL), 200);
    snprintf(cmd, sizeof cmd, "grep -q 'job %s: the job store is back' '%s/worker.log'", id, wdir);
    assert_int_equal(system(cmd), 0);
    kill(w, SIGTERM);
    assert_int_equal(waitpid(w, NULL, 0), w);
    forget_worker(w);

    /* cut for 8 s, its lease 3 s: the job goes to the other worker */
    w = worker_start(wdir, "cut-2", purl, NULL, "3");
    char *id2 = test_submit(f.base, f.dir, NULL,
                            "{\"model\":\"tiny-sd15\",\"steps\":20,\"width\":64,"
                            "\"height\":64,\"seed\":6}");
    wait_running_on(&f, id2, "cut-2");
    worker_start(ddir, "direct-1", url, NULL, "15");
    tcp_proxy_cut(proxy, 1);
    test_sleep_ms(8000);
    tcp_proxy_cut(proxy, 0);
    j = test_wait_job(f.base, f.dir, NULL, id2, 120000);
    assert_string_equal(str(j, "status"), "succeeded");
    assert_string_equal(str(j, "worker"), "direct-1");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 2);
    json_decref(j);
    /* the cut-off worker, back, drops its result and goes on claiming */
    snprintf(path, sizeof path, "%s/worker.log", wdir);
    snprintf(cmd, sizeof cmd, "grep -q 'job %s: no longer ours' '%s'", id2, path);
    for (int64_t end = test_mono_ms() + 30000; system(cmd) != 0; test_sleep_ms(200))
        if (test_mono_ms() > end)
            fail_msg("cut-2 did not say it dropped job %s (%s)", id2, path);
    wait_worker_state(&f, "cut-2", "idle", 10000);
    j = test_get_job(f.base, f.dir, NULL, id2);
    assert_string_equal(str(j, "worker"), "direct-1"); /* recorded once, by its lease holder */
    json_decref(j);
    assert_true(tcp_proxy_links(proxy) > 3); /* it did reconnect through the proxy */
    free(id);
    free(id2);
    tcp_proxy_stop(proxy);
    front_stop(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(events_reach_another_front_end),
        cmocka_unit_test_teardown(standalone_workers_on_postgresql, kill_workers),
        cmocka_unit_test_teardown(standalone_workers_on_sqlite, kill_workers),
        cmocka_unit_test_teardown(worker_cut_off_from_the_database, kill_workers),
    };
    if (getenv("GS_TEST_FILTER")) /* one case, while working on it */
        cmocka_set_test_filter(getenv("GS_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
