/*
 * test_serve - `gesso serve` over real HTTP on 127.0.0.1 with a real SQLite
 * file: the job life cycle (image byte-identical to the CLI's), cancellation,
 * kill -9 of a worker mid-job (the job finishes exactly once), kill -9 of the
 * server (its workers end with it, give their job back) and restart (nothing
 * lost), SIGTERM; and a server on a real PostgreSQL (--store), the URL's
 * password on no worker's command line and in no log. Malformed and hostile
 * requests are data: tests/http/.
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
#include "queue/store.h"

static char dir[128], base[64];
static pid_t server = -1;

static int http(const char *method, const char *path, const char *data_file, char **body)
{
    return test_http(base, dir, method, path, data_file, body);
}

static void start_server(int lease_s)
{
    char lease[16];
    snprintf(lease, sizeof lease, "%d", lease_s);
    server = test_serve_start(base, dir, (const char *const[]){"--lease", lease, NULL});
}

static void stop_server(int sig)
{
    kill(server, sig);
    int status;
    assert_int_equal(waitpid(server, &status, 0), server);
    if (sig == SIGTERM)
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    server = -1;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-serve-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (test_link_tiny_model(dir) != 0)
        return -1;
    start_server(60); /* leases longer than any wait below: recovery must not need them */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (server > 0)
        stop_server(SIGTERM);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static json_t *get_job(const char *id)
{
    return test_get_job(base, dir, NULL, id);
}

static json_t *wait_job(const char *id, int timeout_ms)
{
    return test_wait_job(base, dir, NULL, id, timeout_ms);
}

static char *submit(const char *json)
{
    return test_submit(base, dir, NULL, json);
}

static void life_cycle_matches_cli(void **state)
{
    (void)state;
    char *id = submit("{\"model\":\"tiny-sd15\",\"prompt\":\"A lighthouse at dusk\","
                      "\"negative_prompt\":\"blurry\",\"seed\":42,\"steps\":8,\"cfg_scale\":7,"
                      "\"sampler\":\"euler\",\"width\":64,\"height\":64,\"batch_size\":2}");
    json_t *j = wait_job(id, 60000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(j, "seed")), 42);
    assert_int_equal(json_array_size(json_object_get(j, "images")), 2);
    json_decref(j);
    /* the same settings through the CLI give the same bytes */
    char cmd[1024], path[160];
    snprintf(cmd, sizeof cmd,
             "'%s' generate -m %s/models/tiny-sd15.safetensors -p 'A lighthouse at dusk' -n "
             "blurry -s 42 --steps 8 --cfg-scale 7 --sampler euler -W 64 -H 64 -b 2 -t 2 -q "
             "-o %s/cli.png > /dev/null",
             GS_GESSO_BIN, dir, dir);
    assert_int_equal(system(cmd), 0);
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "/v1/jobs/%s/images/%d", id, k);
        assert_int_equal(http("GET", path, NULL, NULL), 200);
        snprintf(cmd, sizeof cmd, "cmp -s %s/resp %s/cli-%d.png", dir, dir, k);
        assert_int_equal(system(cmd), 0);
    }
    snprintf(path, sizeof path, "/v1/jobs/%s/images/7", id);
    assert_int_equal(http("GET", path, NULL, NULL), 404);
    free(id);
}

static void listing_queue_and_metrics(void **state)
{
    (void)state;
    char *body;
    assert_int_equal(http("GET", "/v1/jobs?status=succeeded&limit=1", NULL, &body), 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    json_t *jobs = json_object_get(j, "jobs");
    assert_int_equal(json_array_size(jobs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(jobs, 0), "status")),
                        "succeeded");
    json_decref(j);
    assert_int_equal(http("GET", "/v1/jobs?status=bogus", NULL, NULL), 400);
    assert_int_equal(http("GET", "/v1/jobs?limit=0", NULL, NULL), 400);
    assert_int_equal(http("GET", "/v1/queue", NULL, &body), 200);
    j = json_loads(body, 0, NULL);
    free(body);
    assert_true(json_integer_value(json_object_get(json_object_get(j, "by_status"), "succeeded")) >=
                1);
    json_decref(j);
    assert_int_equal(http("GET", "/metrics", NULL, &body), 200);
    assert_non_null(strstr(body, "gesso_jobs{status=\"succeeded\"}"));
    free(body);
}

static void wait_step(const char *id)
{
    test_wait_step(base, dir, NULL, id, 60000);
}

static void cancel_queued_and_running(void **state)
{
    (void)state;
    /* a long job occupies the single worker; the next one waits and is cancelled */
    char *slow = submit("{\"model\":\"tiny-sd15\",\"steps\":150,\"width\":128,\"height\":128}");
    char *queued = submit("{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64}");
    char path[128], *body;
    snprintf(path, sizeof path, "/v1/jobs/%s", queued);
    assert_int_equal(http("DELETE", path, NULL, &body), 200);
    assert_non_null(strstr(body, "cancelled"));
    free(body);
    wait_step(slow); /* it runs: cancel it */
    snprintf(path, sizeof path, "/v1/jobs/%s", slow);
    assert_int_equal(http("DELETE", path, NULL, NULL), 200);
    json_t *j = wait_job(slow, 20000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "cancelled");
    json_decref(j);
    j = get_job(queued);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "cancelled");
    json_decref(j);
    free(slow);
    free(queued);
}

static void worker_killed_mid_job_finishes_once(void **state)
{
    (void)state;
    char *id = submit("{\"model\":\"tiny-sd15\",\"steps\":30,\"width\":64,\"height\":64}");
    wait_step(id);
    pid_t workers[4];
    assert_int_equal(test_children(server, workers, 4), 1);
    kill(workers[0], SIGKILL);
    /* 45 s: well under the 60 s lease, so the job is back because the
       supervisor saw its worker die, not because a lease ran out */
    json_t *j = wait_job(id, 45000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "images")), 1);
    json_decref(j);
    free(id);
}

static void server_killed_and_restarted_loses_nothing(void **state)
{
    (void)state;
    char *done = submit("{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64}");
    json_decref(wait_job(done, 30000));
    char *running = submit("{\"model\":\"tiny-sd15\",\"steps\":30,\"width\":64,\"height\":64}");
    char *queued = submit("{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64}");
    wait_step(running);
    /* killed outright, the server takes its workers with it: none lives on with
       a model in memory, and the running job goes back to the queue */
    pid_t workers[4];
    int n = test_children(server, workers, 4);
    assert_int_equal(n, 1);
    stop_server(SIGKILL);
    for (int i = 0; i < n; i++)
        assert_int_equal(test_wait_gone(workers[i], 2000), 0);
    start_server(60); /* leases longer than any wait below: recovery must not need them */
    json_t *j = get_job(done);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    j = wait_job(running, 180000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    /* its worker saw the server die and gave the job back, which does not count
       as an attempt: the run that finished is its one attempt */
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 1);
    json_decref(j);
    j = wait_job(queued, 180000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 1);
    json_decref(j);
    free(done);
    free(running);
    free(queued);
}

/* Whether file holds the bytes of what (a command line holds NULs). */
static int file_holds(const char *file, const char *what)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t k = strlen(what);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(buf + i, what, k) == 0)
            return 1;
    return 0;
}

/* gesso serve --store postgresql://...: a job runs through PostgreSQL, and a
   password in the URL reaches the workers by their environment (a command
   line is readable by every user), never a log or /metrics. */
static void serves_from_postgres(void **state)
{
    (void)state;
    pg_server pg;
    if (pg_server_start(&pg, 0) != 0)
        fail_msg("no PostgreSQL server for the test: %s", pg.why);
    char url[512], with_password[600], pdir[128], pbase[64], path[256], *body;
    assert_int_equal(pg_server_new_db(&pg, url, sizeof url), 0);
    /* the test server trusts local connections, so the password is never asked for */
    snprintf(with_password, sizeof with_password, "postgresql://postgres:s3cret-pw@%s",
             url + strlen("postgresql://"));
    snprintf(pdir, sizeof pdir, "/tmp/gesso-serve-pg-XXXXXX");
    assert_non_null(mkdtemp(pdir));
    assert_int_equal(test_link_tiny_model(pdir), 0);
    pid_t srv =
        test_serve_start(pbase, pdir, (const char *const[]){"--store", with_password, NULL});
    char *id = test_submit(pbase, pdir, NULL,
                           "{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64}");
    json_t *j = test_wait_job(pbase, pdir, NULL, id, 60000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    snprintf(path, sizeof path, "/v1/jobs/%s/images/0", id);
    assert_int_equal(test_http(pbase, pdir, "GET", path, NULL, NULL), 200);

    pid_t workers[4];
    assert_int_equal(test_children(srv, workers, 4), 1);
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)workers[0]);
    assert_true(file_holds(path, "worker"));
    assert_false(file_holds(path, "s3cret"));
    snprintf(path, sizeof path, "/proc/%d/environ", (int)workers[0]);
    assert_true(file_holds(path, with_password));
    assert_int_equal(test_http(pbase, pdir, "GET", "/metrics", NULL, &body), 200);
    assert_null(strstr(body, "s3cret"));
    free(body);
    assert_int_equal(test_serve_stop(srv), 0);
    snprintf(path, sizeof path, "%s/server.log", pdir);
    assert_false(file_holds(path, "s3cret"));

    /* the job is in the database, not in a file of the data directory */
    job_store *s;
    svc_error err = {0};
    job_record r;
    assert_int_equal(store_open(url, &s, &err), GS_OK);
    assert_int_equal(store_get(s, id, &r, &err), GS_OK);
    assert_int_equal(r.status, JOB_SUCCEEDED);
    job_record_clear(&r);
    store_close(s);
    snprintf(path, sizeof path, "%s/data/jobs.db", pdir);
    assert_int_not_equal(access(path, F_OK), 0);
    free(id);
    pg_server_stop(&pg);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", pdir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(life_cycle_matches_cli),
        cmocka_unit_test(listing_queue_and_metrics),
        cmocka_unit_test(cancel_queued_and_running),
        cmocka_unit_test(worker_killed_mid_job_finishes_once),
        cmocka_unit_test(server_killed_and_restarted_loses_nothing),
        cmocka_unit_test(serves_from_postgres),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
