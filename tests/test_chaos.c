/*
 * test_chaos - a fleet under faults at random moments (issue 13): one real
 * PostgreSQL (tests/pg_server.c), two `gesso serve --workers 0` front ends,
 * three `gesso worker` processes with the tiny model, one of them reaching
 * the database through a TCP proxy (tests/tcp_proxy.c). 300 jobs are
 * submitted through both front ends; front end A is killed with SIGKILL
 * and restarted at a random point of the submission; while the jobs run,
 * workers are killed with SIGKILL at random moments (busy or not) and
 * restarted under their names, and the proxied worker's database link is
 * cut for 2-4 s at a random moment. Then: every job ended succeeded,
 * recorded once (the workers' logs say "succeeded" once per job, across
 * restarts), none lost or added (the store lists exactly the jobs
 * submitted), each image equals the CLI's for its settings, and the jobs
 * the kills hit had their attempts counted.
 *
 * The schedule comes from a seed printed at the start: GESSO_CHAOS_SEED=N
 * makes the same decisions again (their moments still move with the
 * machine's speed). GESSO_CHAOS_JOBS=N changes the size: the sanitized
 * suite runs fewer jobs (tests/CMakeLists.txt says why), a Release build
 * the 300.
 */
#include "testutil.h"

#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "pg_server.h"
#include "tcp_proxy.h"

#define MAX_JOBS 1000      /* what one GET /v1/jobs lists */
#define SEEDS 6            /* settings differ by seed only: one CLI image per seed */
#define WORKERS 3          /* worker 0 goes through the proxy */
#define LEASE "3"          /* seconds: a killed worker's job is requeued soon */
#define KILLS 8            /* workers killed at random moments */
#define DEADLINE_MS 900000 /* for the jobs to end, once all are submitted */

static pg_server pg;
static char url[512], purl[512];
static uint64_t rng;

/* xorshift64*: the schedule's only source of chance, so a seed replays it */
static unsigned chance(unsigned n)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (unsigned)((rng * 0x2545F4914F6CDD1DULL) >> 33) % n;
}

static long long env_ll(const char *name, long long fallback)
{
    const char *v = getenv(name);
    return v && *v ? strtoll(v, NULL, 10) : fallback;
}

typedef struct proc {
    pid_t pid;
    char name[32], dir[256];
} proc;

static proc workers[WORKERS];

typedef struct front {
    char dir[128], base[64];
    pid_t pid;
} front;

static void front_start(front *f)
{
    f->pid = test_serve_start(f->base, f->dir,
                              (const char *const[]){"--store", url, "--workers", "0", NULL});
}

static void worker_start(proc *w, int proxied)
{
    char models[300], log[300];
    snprintf(models, sizeof models, "%s/models", w->dir);
    snprintf(log, sizeof log, "%s/worker.log", w->dir);
    w->pid = fork();
    assert_true(w->pid >= 0);
    if (w->pid == 0) {
        if (!freopen(log, "a", stderr))
            _exit(126);
        execl(GS_GESSO_BIN, GS_GESSO_BIN, "worker", "--store", proxied ? purl : url, "--models",
              models, "--name", w->name, "--lease", LEASE, "--threads", "1", (char *)NULL);
        _exit(127);
    }
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
    for (int i = 0; i < WORKERS; i++)
        if (workers[i].pid > 0) {
            kill(workers[i].pid, SIGKILL);
            waitpid(workers[i].pid, NULL, 0);
            workers[i].pid = 0;
        }
    pg_server_stop(&pg);
    return 0;
}

static const char *str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "(none)";
}

/* The job a worker runs now, as the store says (into job; "" when none). */
static void job_of(const front *f, const char *worker, char *job, size_t cap)
{
    char *body = NULL;
    job[0] = '\0';
    if (test_http(f->base, f->dir, "GET", "/v1/jobs?status=running&limit=100", NULL, &body) !=
        200) {
        free(body);
        return;
    }
    json_t *all = json_loads(body, 0, NULL), *j;
    free(body);
    size_t k;
    json_array_foreach(json_object_get(all, "jobs"), k, j)
    {
        if (strcmp(str(j, "worker"), worker) == 0)
            snprintf(job, cap, "%s", str(j, "id"));
    }
    json_decref(all);
}

/* Kills (SIGKILL) worker i whatever it does, and starts it again under its
   name; the job it was running, if any, is in hit (job_of). */
static void kill_worker(int i, const char *hit)
{
    kill(workers[i].pid, SIGKILL);
    waitpid(workers[i].pid, NULL, 0);
    fprintf(stderr, "killed %s%s%s\n", workers[i].name, hit[0] ? " running " : " (idle)", hit);
    worker_start(&workers[i], i == 0);
}

/* Queued plus running jobs, as front end f counts them; -1 when it cannot. */
static int jobs_left(const front *f)
{
    char *body = NULL;
    if (test_http(f->base, f->dir, "GET", "/v1/queue", NULL, &body) != 200) {
        free(body);
        return -1;
    }
    json_t *q = json_loads(body, 0, NULL);
    free(body);
    json_t *by = json_object_get(q, "by_status");
    int n = (int)(json_integer_value(json_object_get(by, "queued")) +
                  json_integer_value(json_object_get(by, "running")));
    json_decref(q);
    return n;
}

static int count_of(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p += strlen(what))
        n++;
    return n;
}

/* Every worker's log, one text (static; the logs are small). */
static const char *all_logs(void)
{
    static char buf[1 << 21];
    size_t n = 0;
    for (int i = 0; i < WORKERS; i++) {
        char path[320];
        snprintf(path, sizeof path, "%s/worker.log", workers[i].dir);
        FILE *f = fopen(path, "rb");
        if (f) {
            n += fread(buf + n, 1, sizeof buf - 1 - n, f);
            fclose(f);
        }
    }
    buf[n] = '\0';
    return buf;
}

static void fleet_under_faults(void **state)
{
    (void)state;
    int64_t t0 = test_mono_ms();
    assert_int_equal(pg_server_new_db(&pg, url, sizeof url), 0);
    char root[] = "/tmp/gesso-chaos-XXXXXX", cmd[1200], sock[200];
    assert_non_null(mkdtemp(root));
    front a, b;
    snprintf(a.dir, sizeof a.dir, "%s/a", root);
    snprintf(b.dir, sizeof b.dir, "%s/b", root);
    assert_int_equal(test_link_tiny_model(a.dir), 0);
    assert_int_equal(test_link_tiny_model(b.dir), 0);
    front_start(&a);
    front_start(&b);
    snprintf(sock, sizeof sock, "%s/.s.PGSQL.5432", pg.dir);
    int port = 0;
    tcp_proxy *proxy = tcp_proxy_start(sock, &port);
    assert_non_null(proxy);
    const char *db = url + strlen("postgresql:///");
    snprintf(purl, sizeof purl, "postgresql://postgres@127.0.0.1:%d/%.*s", port,
             (int)strcspn(db, "?"), db);
    for (int i = 0; i < WORKERS; i++) {
        snprintf(workers[i].name, sizeof workers[i].name, "chaos-%d", i);
        snprintf(workers[i].dir, sizeof workers[i].dir, "%s/w%d", root, i);
        assert_int_equal(test_link_tiny_model(workers[i].dir), 0);
        worker_start(&workers[i], i == 0);
    }
    /* the CLI's image for each seed */
    for (int s = 0; s < SEEDS; s++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' generate -m %s/models/tiny-sd15.safetensors -p 'a fleet under faults' -s "
                 "%d --steps 4 --sampler euler -W 64 -H 64 -t 1 -q -o %s/cli-%d.png > /dev/null",
                 GS_GESSO_BIN, a.dir, s, root, s);
        assert_int_equal(system(cmd), 0);
    }

    static char *ids[MAX_JOBS];
    static char hit[KILLS][64];
    int jobs = (int)env_ll("GESSO_CHAOS_JOBS", 300);
    assert_true(jobs >= 10 && jobs <= MAX_JOBS);
    unsigned long long seed = (unsigned long long)env_ll("GESSO_CHAOS_SEED", 0);
    if (seed == 0)
        seed = (unsigned long long)test_mono_ms() ^ ((unsigned long long)getpid() << 20);
    rng = seed | 1;
    fprintf(stderr,
            "chaos: %d jobs, seed %llu (GESSO_CHAOS_SEED=%llu makes these decisions again)\n", jobs,
            seed, seed);
    int kill_front_at = jobs / 4 + (int)chance((unsigned)jobs / 2);
    for (int i = 0; i < jobs; i++) {
        char job[300];
        snprintf(job, sizeof job,
                 "{\"model\":\"tiny-sd15\",\"prompt\":\"a fleet under faults\",\"seed\":%d,"
                 "\"steps\":4,\"sampler\":\"euler\",\"width\":64,\"height\":64}",
                 i % SEEDS);
        const front *via = i % 2 ? &b : &a;
        ids[i] = test_submit(via->base, via->dir, NULL, job);
        if (i == kill_front_at) { /* front end A dies mid-stream, and comes back */
            kill(a.pid, SIGKILL);
            test_serve_stop(a.pid);
            fprintf(stderr, "killed front end A after job %d\n", i);
            front_start(&a);
        }
    }

    /* faults while the jobs run, spread over the whole run whatever the
       machine's speed: each fault waits for the queue to fall to a level
       drawn from the seed. KILLS workers killed (one of three, busy or not),
       and the proxied worker cut off once for 2-4 s. */
    int at[KILLS], kills = 0, left0 = jobs_left(&b);
    if (left0 < 2)
        left0 = 2;
    for (int k = 0; k < KILLS; k++) {
        at[k] = 1 + (int)chance((unsigned)left0 - 1);
        for (int m = k; m > 0 && at[m] > at[m - 1]; m--) { /* highest level first */
            int t = at[m];
            at[m] = at[m - 1];
            at[m - 1] = t;
        }
    }
    int cut_at = 1 + (int)chance((unsigned)left0 - 1), cut_done = 0;
    int64_t cut_until = 0;
    for (;;) {
        test_sleep_ms(100 + (int)chance(200));
        int left = jobs_left(&b);
        if (cut_until && (test_mono_ms() >= cut_until || left == 0)) {
            tcp_proxy_cut(proxy, 0);
            fprintf(stderr, "chaos-0 back on the database\n");
            cut_until = 0;
        }
        if (left == 0 || (kills == KILLS && cut_done && !cut_until))
            break;
        if (left < 0)
            continue; /* B did not answer: ask again */
        if (!cut_done && left <= cut_at) {
            int ms = 2000 + (int)chance(2000);
            tcp_proxy_cut(proxy, 1);
            fprintf(stderr, "cut chaos-0 off for %d ms (%d jobs left)\n", ms, left);
            cut_until = test_mono_ms() + ms;
            cut_done = 1;
        }
        if (kills < KILLS && left <= at[kills]) {
            /* a job whose worker dies on each of its 3 attempts ends failed, as
               it should: the monkey spares a worker whose job it hit twice
               (a slow machine keeps one job running across several kills) */
            int first = (int)chance(WORKERS), victim = -1;
            for (int k = 0; k < WORKERS && victim < 0; k++) {
                int i = (first + k) % WORKERS, times = 0;
                job_of(&b, workers[i].name, hit[kills], sizeof hit[0]);
                for (int m = 0; m < kills && hit[kills][0]; m++)
                    times += strcmp(hit[m], hit[kills]) == 0;
                if (times < 2)
                    victim = i;
            }
            if (victim >= 0) {
                fprintf(stderr, "%d jobs left: ", left);
                kill_worker(victim, hit[kills]);
                kills++;
            }
        }
    }

    /* every job ends, succeeded, with the CLI's image: the jobs take ~40 s
       of 3 workers in a Release build, several times that sanitized on a
       loaded machine */
    int64_t submitted = test_mono_ms();
    int retried = 0;
    for (int i = 0; i < jobs; i++) {
        int left = (int)(submitted + DEADLINE_MS - test_mono_ms());
        json_t *j = test_wait_job(a.base, a.dir, NULL, ids[i], left > 1000 ? left : 1000);
        if (strcmp(str(j, "status"), "succeeded") != 0)
            fail_msg("job %s ended %s: %s", ids[i], str(j, "status"), str(j, "error"));
        int attempts = (int)json_integer_value(json_object_get(j, "attempts"));
        assert_true(attempts >= 1 && attempts <= 3);
        retried += attempts > 1;
        json_decref(j);
        char path[160];
        snprintf(path, sizeof path, "/v1/jobs/%s/images/0", ids[i]);
        assert_int_equal(test_http(b.base, b.dir, "GET", path, NULL, NULL), 200);
        snprintf(cmd, sizeof cmd, "cmp -s %s/resp %s/cli-%d.png", b.dir, root, i % SEEDS);
        if (system(cmd) != 0)
            fail_msg("job %s (seed %d): not the CLI's image", ids[i], i % SEEDS);
    }
    /* attempts counted: the jobs the kills hit went back and ran again (a
       job can end between the look and the kill, so not every one) */
    int hits = 0, hits_retried = 0;
    for (int k = 0; k < KILLS; k++) {
        int again = 0; /* a job stays listed under a killed worker's name until its lease ends */
        for (int m = 0; m < k; m++)
            again |= strcmp(hit[m], hit[k]) == 0;
        if (!hit[k][0] || again)
            continue;
        hits++;
        json_t *j = test_get_job(a.base, a.dir, NULL, hit[k]);
        hits_retried += json_integer_value(json_object_get(j, "attempts")) > 1;
        json_decref(j);
    }
    if (hits > 0)
        assert_true(hits_retried >= 1);
    /* recorded once each, whoever ran it, across restarts; none lost or added */
    const char *logs = all_logs();
    for (int i = 0; i < jobs; i++) {
        char line[80];
        snprintf(line, sizeof line, "job %s: succeeded", ids[i]);
        if (count_of(logs, line) != 1)
            fail_msg("job %s recorded %d times by the workers", ids[i], count_of(logs, line));
    }
    json_t *list = NULL;
    char *body = NULL;
    assert_int_equal(test_http(a.base, a.dir, "GET", "/v1/jobs?limit=1000", NULL, &body), 200);
    list = json_loads(body, 0, NULL);
    free(body);
    assert_int_equal(json_array_size(json_object_get(list, "jobs")), jobs);
    json_decref(list);
    fprintf(stderr,
            "%d jobs; %d workers killed; %d jobs hit (%d of them retried); %d jobs retried in all;"
            " %d s\n",
            jobs, KILLS, hits, hits_retried, retried, (int)((test_mono_ms() - t0) / 1000));
    for (int i = 0; i < jobs; i++)
        free(ids[i]);
    tcp_proxy_stop(proxy);
    test_serve_stop(a.pid);
    test_serve_stop(b.pid);
    assert_int_equal(test_remove_tree(root), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fleet_under_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
