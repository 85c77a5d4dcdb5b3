/*
 * test_serve_api - more of `gesso serve` over real HTTP on 127.0.0.1: the
 * Server-Sent Events of a job in order (queued, started, every step once,
 * previews, the end), priorities, API keys (401, 403, per-key 429), /v1/stats,
 * limits given as flags, retention, SIGTERM giving a running job back, a
 * seed past int64 from the request to the PNG, and big init images kept out
 * of the job database (the store cap, purge and the start-up sweep of their
 * files), and A1111's /sdapi/v1: the CLI's image from txt2img, a waiting
 * call that ends with its job, a job that outlives its client, progress and
 * interrupt.
 */
#include "testutil.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "job/base64.h"
#include "support/json_u64.h"

#include "gesso.h"

#define SLOW "{\"model\":\"tiny-sd15\",\"steps\":150,\"width\":128,\"height\":128}"
#define QUICK "{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64}"

static char dir[128], base[64];
static pid_t server = -1;
static const char *auth; /* "Bearer KEY" sent with requests, or NULL */

/* curl with the current key; returns the HTTP status, the body into *body when asked. */
static int http(const char *method, const char *path, const char *json, char **body)
{
    char req[256];
    snprintf(req, sizeof req, "%s/req.json", dir);
    if (json) {
        FILE *f = fopen(req, "wb");
        fputs(json, f);
        fclose(f);
    }
    return test_http_auth(base, dir, method, path, json ? req : NULL, auth, body);
}

/* Starts the server with --lease 2 and the space-separated flags in extra. */
static void start_server(const char *extra)
{
    static char words[1024];
    const char *argv[32] = {"--lease", "2"};
    int n = 2;
    snprintf(words, sizeof words, "%s", extra ? extra : "");
    char *save = NULL;
    for (char *w = strtok_r(words, " ", &save); w && n < 31; w = strtok_r(NULL, " ", &save))
        argv[n++] = w;
    argv[n] = NULL;
    server = test_serve_start(base, dir, argv);
}

/* Each test starts from an empty data directory. */
static void fresh_data(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s/data'", dir);
    assert_int_equal(system(cmd), 0);
}

static int stop_server(void)
{
    kill(server, SIGTERM);
    int status = -1;
    assert_int_equal(waitpid(server, &status, 0), server);
    server = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* After each test, whatever happened: a server left running would answer the next one. */
static int stop_leftovers(void **state)
{
    (void)state;
    auth = NULL;
    if (server > 0) { /* its workers end with it */
        kill(server, SIGKILL);
        waitpid(server, NULL, 0);
        server = -1;
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-serve-api-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return test_link_tiny_model(dir);
}

static int teardown(void **state)
{
    (void)state;
    if (server > 0)
        stop_server();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static json_t *get_json(const char *path, int expect)
{
    char *body;
    assert_int_equal(http("GET", path, NULL, &body), expect);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(j);
    return j;
}

static json_t *get_job(const char *id)
{
    return test_get_job(base, dir, auth, id);
}

static const char *status_of(json_t *j)
{
    return json_string_value(json_object_get(j, "status"));
}

/* Wall-clock milliseconds: waits are bounded in real time, however slow each poll is. */
static json_t *wait_job(const char *id, int timeout_ms)
{
    return test_wait_job(base, dir, auth, id, timeout_ms);
}

static void wait_running(const char *id)
{
    test_wait_step(base, dir, auth, id, 120000);
}

static char *submit(const char *json)
{
    return test_submit(base, dir, auth, json);
}

static void cancel(const char *id)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_int_equal(http("DELETE", path, NULL, NULL), 200);
}

static void events_in_order(void **state)
{
    (void)state;
    fresh_data();
    start_server(NULL);
    char *slow = submit(SLOW); /* holds the worker so the watched job waits first */
    wait_running(slow);
    char *id = submit("{\"model\":\"tiny-sd15\",\"steps\":6,\"width\":64,\"height\":64,"
                      "\"preview_every\":2}");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "curl -sN -m 300 '%s/v1/jobs/%s/events'", base, id);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1 << 16], event[32] = "";
    int n_queued = 0, n_started = 0, next_step = 1, previews = 0, ended = 0, order_ok = 1;
    while (fgets(line, sizeof line, p)) {
        if (strncmp(line, "event: ", 7) == 0) {
            snprintf(event, sizeof event, "%.31s", line + 7);
            event[strcspn(event, "\n")] = '\0';
            continue;
        }
        if (strncmp(line, "data: ", 6) != 0)
            continue;
        assert_false(ended); /* nothing after the end */
        json_t *d = json_loads(line + 6, 0, NULL);
        assert_non_null(d);
        if (strcmp(event, "queued") == 0) {
            order_ok &= n_started == 0;
            assert_int_equal(json_integer_value(json_object_get(d, "position")), 0);
            if (n_queued++ == 0) {
                /* the stream sleeps on the event hub, and says so in /metrics */
                char *metrics;
                assert_int_equal(http("GET", "/metrics", NULL, &metrics), 200);
                assert_non_null(strstr(metrics, "gesso_event_waiters 1\n"));
                free(metrics);
                cancel(slow); /* the stream has seen it wait: let it run */
            }
        } else if (strcmp(event, "started") == 0) {
            order_ok &= n_queued == 1 && next_step == 1;
            assert_int_equal(json_integer_value(json_object_get(d, "attempt")), 1);
            n_started++;
        } else if (strcmp(event, "progress") == 0) {
            order_ok &= n_started == 1;
            assert_int_equal(json_integer_value(json_object_get(d, "step")), next_step);
            assert_int_equal(json_integer_value(json_object_get(d, "steps")), 6);
            const char *pv = json_string_value(json_object_get(d, "preview"));
            if (pv) {
                assert_int_equal(next_step % 2, 0); /* previews every 2 steps */
                assert_int_equal(strncmp(pv, "data:image/png;base64,iVBORw0KGgo", 33), 0);
                previews++;
            }
            next_step++;
        } else if (strcmp(event, "succeeded") == 0) {
            order_ok &= next_step == 7;
            assert_int_equal(json_array_size(json_object_get(d, "images")), 1);
            ended = 1;
        } else {
            fail_msg("unexpected event '%s'", event);
        }
        json_decref(d);
    }
    assert_int_equal(pclose(p), 0);
    assert_true(order_ok);
    assert_int_equal(n_queued, 1);
    assert_int_equal(n_started, 1);
    assert_int_equal(next_step, 7);
    assert_true(previews >= 1);
    assert_true(ended);
    /* a finished job's stream is just its end */
    snprintf(cmd, sizeof cmd, "curl -sN -m 20 '%s/v1/jobs/%s/events'", base, id);
    p = popen(cmd, "r");
    int lines = 0;
    while (fgets(line, sizeof line, p))
        if (strncmp(line, "event: ", 7) == 0) {
            assert_string_equal(line, "event: succeeded\n");
            lines++;
        }
    pclose(p);
    assert_int_equal(lines, 1);
    free(slow);
    free(id);
    assert_int_equal(stop_server(), 0);
}

static void priorities_then_arrival(void **state)
{
    (void)state;
    fresh_data();
    start_server(NULL);
    char *slow = submit(SLOW);
    wait_running(slow);
    char *low = submit("{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64}");
    char *high =
        submit("{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64,\"priority\":5}");
    char *mid =
        submit("{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64,\"priority\":2}");
    char *low2 = submit("{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64}");
    cancel(slow);
    const char *order[4] = {high, mid, low, low2};
    int64_t started[4];
    for (int i = 0; i < 4; i++) {
        json_t *j = wait_job(order[i], 120000);
        assert_string_equal(status_of(j), "succeeded");
        started[i] = json_integer_value(json_object_get(j, "started_ms"));
        json_decref(j);
    }
    for (int i = 1; i < 4; i++)
        assert_true(started[i - 1] <= started[i]);
    /* stats see these jobs */
    json_t *st = get_json("/v1/stats", 200);
    assert_true(json_integer_value(json_object_get(json_object_get(st, "jobs"), "succeeded")) >= 4);
    json_t *steps = json_object_get(st, "step_s");
    assert_true(json_integer_value(json_object_get(steps, "samples")) >= 8);
    double p50 = json_real_value(json_object_get(steps, "p50")),
           p99 = json_real_value(json_object_get(steps, "p99"));
    assert_true(p50 > 0 && p50 <= p99);
    assert_true(json_real_value(json_object_get(st, "megapixelsteps_per_s")) > 0);
    json_decref(st);
    json_decref(get_json("/v1/stats?window=0", 400));
    free(slow), free(low), free(high), free(mid), free(low2);
    assert_int_equal(stop_server(), 0);
}

static void api_keys(void **state)
{
    (void)state;
    fresh_data();
    char keys[256], extra[400];
    snprintf(keys, sizeof keys, "%s/keys", dir);
    FILE *f = fopen(keys, "w");
    fputs("# test keys\n"
          "alice-key-0123456789 alice max_active=1\n"
          "bob-key-0123456789abc bob\n"
          "ops-key-0123456789abc ops admin\n",
          f);
    fclose(f);
    snprintf(extra, sizeof extra, "--api-keys %s", keys);
    auth = NULL;
    start_server(extra);
    char *body;
    assert_int_equal(http("GET", "/v1/jobs", NULL, &body), 401);
    assert_non_null(strstr(body, "missing_api_key"));
    free(body);
    auth = "Bearer alice-key-0123456789x";
    assert_int_equal(http("GET", "/v1/jobs", NULL, &body), 401);
    assert_non_null(strstr(body, "invalid_api_key"));
    free(body);
    assert_int_equal(http("POST", "/v1/jobs", QUICK, NULL), 401); /* nothing queued */
    auth = "Bearer alice-key-0123456789";
    char *a = submit(SLOW);
    assert_int_equal(http("POST", "/v1/jobs", QUICK, &body), 429); /* over max_active=1 */
    assert_non_null(strstr(body, "too_many_jobs"));
    free(body);
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s", a);
    auth = "Bearer bob-key-0123456789abc";
    assert_int_equal(http("GET", path, NULL, NULL), 403);
    assert_int_equal(http("DELETE", path, NULL, NULL), 403);
    snprintf(path, sizeof path, "/v1/jobs/%s/events", a);
    assert_int_equal(http("GET", path, NULL, NULL), 403);
    snprintf(path, sizeof path, "/v1/jobs/%s/images/0", a);
    assert_int_equal(http("GET", path, NULL, NULL), 403);
    assert_int_equal(http("GET", "/metrics", NULL, NULL), 403);
    json_t *list = get_json("/v1/jobs", 200);
    assert_int_equal(json_array_size(json_object_get(list, "jobs")), 0); /* only bob's */
    json_decref(list);
    char *b = submit(QUICK); /* bob has no bound */
    auth = "Bearer ops-key-0123456789abc";
    list = get_json("/v1/jobs", 200);
    assert_int_equal(json_array_size(json_object_get(list, "jobs")), 2);
    json_decref(list);
    assert_int_equal(http("GET", "/metrics", NULL, NULL), 200);
    json_t *j = get_job(a);
    assert_string_equal(json_string_value(json_object_get(j, "owner")), "alice");
    json_decref(j);
    auth = "Bearer alice-key-0123456789";
    cancel(a);
    json_decref(wait_job(a, 120000));
    char *a2 = submit(QUICK); /* room again once the first ended */
    json_decref(wait_job(a2, 120000));
    auth = NULL;
    assert_int_equal(http("GET", "/healthz", NULL, NULL), 200); /* open for health checks */
    auth = "Bearer bob-key-0123456789abc";
    json_decref(wait_job(b, 120000));
    free(a), free(a2), free(b);
    assert_int_equal(stop_server(), 0);
    auth = NULL;
    /* a broken key file stops the server at once, with the line named */
    f = fopen(keys, "w");
    fputs("short alice\n", f);
    fclose(f);
    snprintf(extra, sizeof extra, "'%s' serve --api-keys '%s' --listen %s 2>&1", GS_GESSO_BIN, keys,
             base + 7);
    FILE *p = popen(extra, "r");
    char out[512] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    assert_int_not_equal(pclose(p), 0);
    assert_non_null(strstr(out, ":1:"));
}

static void limits_retention_and_sigterm(void **state)
{
    (void)state;
    fresh_data();
    start_server(
        "--max-steps 40 --max-side 128 --max-queued 1 --retention 2s --max-prompt-chunks 2");
    char *body;
    assert_int_equal(http("POST", "/v1/jobs", "{\"model\":\"tiny-sd15\",\"steps\":41}", NULL), 422);
    assert_int_equal(http("POST", "/v1/jobs",
                          "{\"model\":\"tiny-sd15\",\"prompt\":\"a BREAK b BREAK c\"}", &body),
                     422);
    assert_non_null(strstr(body, "makes 3 chunks of 75 tokens; the limit is 2"));
    free(body);
    assert_int_equal(http("POST", "/v1/jobs", "{\"model\":\"tiny-sd15\",\"width\":136}", NULL),
                     422);
    /* a job asking for a tiled VAE decode runs (64 px tiles of a 128 px image) */
    char *tiled = submit(
        "{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":128,\"height\":128,\"vae_tile\":64}");
    json_t *tj = wait_job(tiled, 120000);
    assert_string_equal(status_of(tj), "succeeded");
    json_decref(tj);
    free(tiled);
    /* retention: a finished job and its image go after 2 s */
    char *old = submit(QUICK);
    json_decref(wait_job(old, 120000));
    char png[300];
    snprintf(png, sizeof png, "%s/data/results/%s-0.png", dir, old);
    struct stat sb;
    assert_int_equal(stat(png, &sb), 0);
    /* SIGTERM while a job runs: the server exits cleanly and the job waits, unpenalised */
    char *run = submit("{\"model\":\"tiny-sd15\",\"steps\":40,\"width\":64,\"height\":64}");
    wait_running(run);
    char *q1 = submit(QUICK);
    assert_int_equal(http("POST", "/v1/jobs", QUICK, &body), 503); /* one queued at most */
    assert_non_null(strstr(body, "queue_full"));
    free(body);
    /* a stream open at the stop ends with "stopping" and a whole chunked body */
    char cmd[600], line[4096], last[64] = "";
    snprintf(cmd, sizeof cmd, "curl -sN -m 60 '%s/v1/jobs/%s/events'", base, run);
    FILE *sse = popen(cmd, "r");
    assert_non_null(sse);
    while (fgets(line, sizeof line, sse) && strncmp(line, "event: ", 7) != 0)
        ; /* connected: the first event is in */
    assert_int_equal(stop_server(), 0);
    while (fgets(line, sizeof line, sse))
        if (strncmp(line, "event: ", 7) == 0)
            snprintf(last, sizeof last, "%.63s", line + 7);
    assert_string_equal(last, "stopping\n");
    assert_int_equal(pclose(sse), 0); /* curl saw the body end: not cut mid-chunk (18) */
    start_server("--retention 0");    /* restarted without retention, jobs stay */
    json_t *j = wait_job(run, 300000);
    assert_string_equal(status_of(j), "succeeded");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 1);
    json_decref(j);
    json_decref(wait_job(q1, 120000));
    assert_int_equal(stop_server(), 0);
    start_server("--retention 2s");
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", old);
    int code = 200; /* it finished more than 2 s ago: it goes at the first purge */
    for (int64_t end = test_mono_ms() + 10000; code == 200 && test_mono_ms() < end;
         test_sleep_ms(50))
        code = http("GET", path, NULL, NULL);
    assert_int_equal(code, 404);
    assert_int_not_equal(stat(png, &sb), 0);
    free(old), free(run), free(q1);
    assert_int_equal(stop_server(), 0);
}

/* ---- big init images ---- */

/* The fixture init image with a private chunk of extra bytes after its
   header (a careless client's camera metadata, say): decoders skip it. */
static unsigned char *png_with_private_chunk(size_t extra, size_t *n)
{
    FILE *f = fopen(fixture_path("init-img2img_euler_a.png"), "rb");
    assert_non_null(f);
    unsigned char small[1 << 16];
    size_t len = fread(small, 1, sizeof small, f);
    fclose(f);
    const size_t after_ihdr = 8 + 25; /* signature, then IHDR: length, type, 13 bytes, CRC */
    assert_true(len > after_ihdr && memcmp(small + 12, "IHDR", 4) == 0);
    *n = len + 12 + extra;
    unsigned char *png = malloc(*n), *chunk = png + after_ihdr;
    memcpy(png, small, after_ihdr);
    for (int i = 0; i < 4; i++)
        chunk[i] = (unsigned char)(extra >> (24 - 8 * i));
    memcpy(chunk + 4, "prVt", 4); /* ancillary, private, safe to copy */
    uint32_t x = 12345;
    for (size_t i = 0; i < extra; i++) {
        x = x * 1103515245u + 12345u;
        chunk[8 + i] = (unsigned char)(x >> 24);
    }
    uLong crc = crc32(crc32(0L, Z_NULL, 0), chunk + 4, (uInt)(4 + extra));
    for (int i = 0; i < 4; i++)
        chunk[8 + extra + i] = (unsigned char)(crc >> (24 - 8 * i));
    memcpy(chunk + 12 + extra, small + after_ihdr, len - after_ihdr);
    return png;
}

/* The job database's files. */
static long long db_bytes(void)
{
    char path[300];
    struct stat sb;
    long long n = 0;
    snprintf(path, sizeof path, "%s/data/jobs.db", dir);
    if (stat(path, &sb) == 0)
        n += sb.st_size;
    snprintf(path, sizeof path, "%s/data/jobs.db-wal", dir);
    if (stat(path, &sb) == 0)
        n += sb.st_size;
    return n;
}

/* How many input blobs the data directory holds. */
static int input_files(void)
{
    char cmd[300], line[32] = "";
    snprintf(cmd, sizeof cmd, "ls '%s/data/results' | grep -c '\\.input-'", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(fgets(line, sizeof line, p));
    pclose(p);
    return (int)strtol(line, NULL, 10);
}

#define BIG_CHUNK (6u << 20)
#define I2I                                                                                        \
    "\"model\":\"tiny-sd15\",\"prompt\":\"a harbour\",\"seed\":7,\"steps\":4,"                     \
    "\"sampler\":\"euler\",\"width\":64,\"height\":64,\"strength\":0.6"

static void big_init_images_stay_out_of_the_database(void **state)
{
    (void)state;
    fresh_data();
    size_t n;
    unsigned char *png = png_with_private_chunk(BIG_CHUNK, &n);
    char path[300];
    snprintf(path, sizeof path, "%s/big.png", dir);
    FILE *f = fopen(path, "wb");
    assert_int_equal(fwrite(png, 1, n, f), n);
    fclose(f);
    char *b64 = base64_encode(png, n);
    size_t len = strlen(b64) + 300;
    char *job = malloc(len);
    snprintf(job, len, "{" I2I ",\"init_image\":\"data:image/png;base64,%s\"}", b64);
    start_server(NULL);
    long long db_before = db_bytes();
    char *ids[3];
    for (int i = 0; i < 3; i++)
        ids[i] = submit(job);
    /* the database grows by a row a job, the image goes to the blob store once */
    long long grown = db_bytes() - db_before;
    assert_true(grown < (long long)n / 10);
    assert_int_equal(input_files(), 3);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s/data/results/%s.input-0'", path, dir, ids[0]);
    assert_int_equal(system(cmd), 0);
    /* listing and reading answer with summaries, never the images */
    char *body;
    int64_t t0 = test_mono_ms();
    assert_int_equal(http("GET", "/v1/jobs?limit=1000", NULL, &body), 200);
    int64_t list_ms = test_mono_ms() - t0;
    assert_true(strlen(body) < 8192);
    assert_true(list_ms < 1000);
    free(body);
    snprintf(path, sizeof path, "/v1/jobs/%s", ids[0]);
    assert_int_equal(http("GET", path, NULL, &body), 200);
    assert_true(strlen(body) < 2048);
    /* the job's settings come back with it; its image as the stored reference */
    json_t *view = json_loads(body, 0, NULL);
    free(body);
    json_t *params = json_object_get(view, "params");
    assert_string_equal(json_string_value(json_object_get(params, "prompt")), "a harbour");
    assert_int_equal(json_integer_value(json_object_get(params, "steps")), 4);
    assert_null(json_object_get(params, "seed")); /* the view's own, exact past int64 */
    assert_int_equal(json_integer_value(json_object_get(view, "seed")), 7);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(params, "init_image"), "bytes")),
        (json_int_t)n);
    json_decref(view);
    /* the worker reads the image back: the job makes the CLI's image */
    for (int i = 0; i < 3; i++) {
        json_t *j = wait_job(ids[i], 120000);
        assert_string_equal(status_of(j), "succeeded");
        json_decref(j);
    }
    snprintf(cmd, sizeof cmd,
             "'%s' generate -m %s/models/tiny-sd15.safetensors -p 'a harbour' -s 7 --steps 4 "
             "--sampler euler -W 64 -H 64 --strength 0.6 -i %s/big.png -t 2 -q -o %s/cli-i2i.png "
             "> /dev/null",
             GS_GESSO_BIN, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "/v1/jobs/%s/images/0", ids[2]);
    assert_int_equal(http("GET", path, NULL, NULL), 200);
    snprintf(cmd, sizeof cmd, "cmp -s %s/resp %s/cli-i2i.png", dir, dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(stop_server(), 0);

    /* the store cap: 18 MiB of inputs held, so another 6 MiB passes 22 MiB, a
       text-to-image job does not; a refused job leaves no input behind */
    start_server("--max-store-bytes 22M");
    assert_int_equal(http("POST", "/v1/jobs", job, &body), 507);
    assert_non_null(strstr(body, "store_full"));
    free(body);
    assert_int_equal(input_files(), 3);
    char *small = submit(QUICK);
    json_decref(wait_job(small, 120000));
    assert_int_equal(stop_server(), 0);

    /* blobs no job owns (a crash between a submit's put and its queueing) go
       at the next start; a purged job's input goes with it */
    char orphan[300];
    snprintf(orphan, sizeof orphan, "%s/data/results/0190d5a2-0000-7000-8000-000000000000.input-0",
             dir);
    f = fopen(orphan, "wb");
    fputs("orphan", f);
    fclose(f);
    start_server("--retention 1s");
    struct stat sb;
    assert_int_not_equal(stat(orphan, &sb), 0); /* swept before the server answered */
    snprintf(path, sizeof path, "/v1/jobs/%s", ids[0]);
    int code = 200;
    for (int64_t end = test_mono_ms() + 10000; code == 200 && test_mono_ms() < end;
         test_sleep_ms(50))
        code = http("GET", path, NULL, NULL);
    assert_int_equal(code, 404);
    for (int64_t end = test_mono_ms() + 5000; input_files() > 0 && test_mono_ms() < end;)
        test_sleep_ms(50);
    assert_int_equal(input_files(), 0);
    assert_int_equal(stop_server(), 0);
    for (int i = 0; i < 3; i++)
        free(ids[i]);
    free(small), free(job), free(b64), free(png);
}

/* The PNG of a finished job's image k (malloc'd, *n bytes). */
static unsigned char *fetch_image(const char *id, int k, size_t *n)
{
    char out[300], cmd[700];
    snprintf(out, sizeof out, "%s/image.png", dir);
    snprintf(cmd, sizeof cmd, "curl -sf -m 30 -o '%s' '%s/v1/jobs/%s/images/%d'", out, base, id, k);
    assert_int_equal(system(cmd), 0);
    FILE *f = fopen(out, "rb");
    assert_non_null(f);
    unsigned char *png = malloc(1 << 20);
    *n = fread(png, 1, 1 << 20, f);
    fclose(f);
    return png;
}

static int contains(const unsigned char *bytes, size_t n, const char *text)
{
    size_t k = strlen(text);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(bytes + i, text, k) == 0)
            return 1;
    return 0;
}

/* `gesso generate` of QUICK's settings with seed, as the workers run it (2 threads). */
static gs_image *cli_image(const char *seed)
{
    char out[300], cmd[1200], msg[200];
    snprintf(out, sizeof out, "%s/cli-%s.png", dir, seed);
    snprintf(cmd, sizeof cmd,
             "'%s' generate -q -m '%s' -p '' -W 64 -H 64 --steps 2 --threads 2 --seed %s -o '%s'"
             " >/dev/null 2>&1",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), seed, out);
    assert_int_equal(system(cmd), 0);
    gs_image *im = NULL;
    assert_int_equal(gs_image_load(out, &im, msg, sizeof msg), GS_OK);
    return im;
}

static int same_pixels(const gs_image *a, const gs_image *b)
{
    return a->width == b->width && a->height == b->height && a->channels == b->channels &&
           memcmp(a->pixels, b->pixels, (size_t)a->width * a->height * a->channels) == 0;
}

/* A seed past int64 (2^64-1, which A1111 and ComfyUI take) runs and comes
   back exactly wherever it goes out: the job, the list, the event stream's
   end, the PNG's parameters. The image is the CLI's for the same seed, and,
   as torch's generator seeds mt19937 with the low 32 bits, the one of 2^32-1. */
static void a_seed_past_int64(void **state)
{
    (void)state;
    fresh_data();
    start_server(NULL);
    char *id = submit("{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64,"
                      "\"prompt\":\"\",\"seed\":18446744073709551615}");
    json_t *j = wait_job(id, 120000);
    assert_string_equal(status_of(j), "succeeded");
    json_decref(j);
    const char *exact = "\"seed\":18446744073709551615,";
    char path[160], *body;
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_int_equal(http("GET", path, NULL, &body), 200);
    assert_non_null(strstr(body, exact));
    free(body);
    assert_int_equal(http("GET", "/v1/jobs", NULL, &body), 200);
    assert_non_null(strstr(body, exact));
    free(body);
    char cmd[600], line[4096], end[4096] = "";
    snprintf(cmd, sizeof cmd, "curl -sN -m 20 '%s/v1/jobs/%s/events'", base, id);
    FILE *p = popen(cmd, "r");
    while (fgets(line, sizeof line, p))
        if (strncmp(line, "data: ", 6) == 0)
            snprintf(end, sizeof end, "%s", line);
    pclose(p);
    assert_non_null(strstr(end, exact));
    size_t n = 0;
    unsigned char *png = fetch_image(id, 0, &n);
    assert_true(contains(png, n, "Seed: 18446744073709551615,"));
    char msg[200];
    gs_image *served = NULL;
    assert_int_equal(gs_image_load_memory(png, n, &served, msg, sizeof msg), GS_OK);
    free(png);
    gs_image *cli = cli_image("18446744073709551615"), *low = cli_image("4294967295");
    assert_true(same_pixels(served, cli));
    assert_true(same_pixels(served, low));
    gs_image_free(served);
    gs_image_free(cli);
    gs_image_free(low);
    free(id);
    assert_int_equal(stop_server(), 0);
}

/* ---- A1111's API ---- */

/* POSTs json to path and returns the reply parsed (status 200 asserted);
 *text gets the reply's text when asked (malloc'd). */
static json_t *a1111_post(const char *path, const char *json, char **text)
{
    char *body;
    assert_int_equal(http("POST", path, json, &body), 200);
    json_t *j = json_u64_loadb(body, strlen(body), 0, NULL, NULL, NULL); /* seeds past int64 */
    if (!j)
        free(body);
    assert_non_null(j);
    if (text)
        *text = body;
    else
        free(body);
    return j;
}

/* images[k] of an A1111 reply, decoded. */
static gs_image *a1111_image(const json_t *reply, size_t k)
{
    const char *b64 = json_string_value(json_array_get(json_object_get(reply, "images"), k));
    assert_non_null(b64);
    size_t n = 0;
    unsigned char *png = base64_decode(b64, (size_t)64 << 20, &n);
    assert_non_null(png);
    gs_image *im = NULL;
    char msg[200];
    assert_int_equal(gs_image_load_memory(png, n, &im, msg, sizeof msg), GS_OK);
    free(png);
    return im;
}

/* txt2img with QUICK's settings gives `gesso generate`'s image for the same
   seed; the info string says what ran, and the job is in the store like any
   other. A seed past int64 comes back exactly in parameters and info. */
static void a1111_txt2img_is_the_cli_image(void **state)
{
    (void)state;
    fresh_data();
    start_server(NULL);
    json_t *reply = a1111_post("/sdapi/v1/txt2img",
                               "{\"prompt\":\"\",\"steps\":2,\"width\":64,\"height\":64,"
                               "\"seed\":42,\"sampler_name\":\"Euler a\",\"cfg_scale\":7}",
                               NULL);
    gs_image *served = a1111_image(reply, 0), *cli = cli_image("42");
    assert_true(same_pixels(served, cli));
    gs_image_free(served);
    gs_image_free(cli);
    json_t *info = json_loads(json_string_value(json_object_get(reply, "info")), 0, NULL);
    assert_non_null(info);
    assert_int_equal(json_integer_value(json_object_get(info, "seed")), 42);
    assert_string_equal(json_string_value(json_object_get(info, "sampler_name")), "Euler a");
    const char *infotext = json_string_value(json_array_get(json_object_get(info, "infotexts"), 0));
    assert_non_null(infotext);
    assert_non_null(strstr(infotext, "Seed: 42,"));
    assert_non_null(strstr(infotext, "Sampler: Euler a,"));
    json_t *job = get_job(json_string_value(json_object_get(info, "job_id")));
    assert_string_equal(status_of(job), "succeeded");
    json_decref(job);
    json_decref(info);
    json_decref(reply);
    char *text = NULL;
    reply = a1111_post("/sdapi/v1/txt2img",
                       "{\"prompt\":\"\",\"steps\":1,\"width\":64,\"height\":64,"
                       "\"seed\":18446744073709551615,\"send_images\":false}",
                       &text);
    assert_non_null(strstr(text, "\"parameters\":{\"seed\":18446744073709551615,"));
    assert_non_null(strstr(text, "\"info\":\"{\\\"seed\\\":18446744073709551615,"));
    assert_non_null(strstr(text, "Seed: 18446744073709551615,"));
    free(text);
    json_decref(reply);
    assert_int_equal(stop_server(), 0);
}

/* img2img with a base64 init image gives `gesso generate --init-image`'s
   image for the same file, strength and seed. */
static void a1111_img2img_is_the_cli_image(void **state)
{
    (void)state;
    fresh_data();
    start_server(NULL);
    char init[1024]; /* fixture_path's buffer is reused by the next call */
    snprintf(init, sizeof init, "%s", fixture_path("init-img2img_euler_a.png"));
    FILE *f = fopen(init, "rb");
    assert_non_null(f);
    unsigned char *file = malloc(1 << 20);
    size_t n = fread(file, 1, 1 << 20, f);
    fclose(f);
    char *b64 = base64_encode(file, n);
    free(file);
    size_t size = strlen(b64) + 512;
    char *json = malloc(size);
    snprintf(json, size,
             "{\"init_images\":[\"data:image/png;base64,%s\"],\"prompt\":\"\",\"steps\":2,"
             "\"width\":64,\"height\":64,\"seed\":7,\"sampler_name\":\"Euler a\","
             "\"denoising_strength\":0.6}",
             b64);
    free(b64);
    json_t *reply = a1111_post("/sdapi/v1/img2img", json, NULL);
    free(json);
    char out[300], cmd[3000], msg[200];
    snprintf(out, sizeof out, "%s/cli-i2i.png", dir);
    snprintf(cmd, sizeof cmd,
             "'%s' generate -q -m '%s' -p '' -W 64 -H 64 --steps 2 --threads 2 --seed 7 "
             "--init-image '%s' --strength 0.6 -o '%s' >/dev/null 2>&1",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), init, out);
    assert_int_equal(system(cmd), 0);
    gs_image *cli = NULL, *served = a1111_image(reply, 0);
    assert_int_equal(gs_image_load(out, &cli, msg, sizeof msg), GS_OK);
    assert_true(same_pixels(served, cli));
    gs_image_free(served);
    gs_image_free(cli);
    json_decref(reply);
    assert_int_equal(stop_server(), 0);
}

/* The job id of the newest job the server has (the one just submitted). */
static char *newest_job(void)
{
    json_t *list = get_json("/v1/jobs?limit=1", 200);
    const char *id =
        json_string_value(json_object_get(json_array_get(json_object_get(list, "jobs"), 0), "id"));
    assert_non_null(id);
    char *copy = strdup(id);
    json_decref(list);
    return copy;
}

/* A client that gives up does not take its job along; a waiting call ends
   when its job does; /progress reports the running job and interrupt
   cancels it. */
static void a1111_waits_and_interrupts(void **state)
{
    (void)state;
    fresh_data();
    start_server(NULL);
    char cmd[600], req[256];
    snprintf(req, sizeof req, "%s/slow.json", dir);
    FILE *f = fopen(req, "wb");
    fputs(SLOW, f);
    fclose(f);
    /* the client leaves after a second; the job stays */
    snprintf(cmd, sizeof cmd, "curl -s -m 1 -o /dev/null '%s/sdapi/v1/txt2img' -d @'%s'", base,
             req);
    assert_int_not_equal(system(cmd), 0);
    char *first = newest_job();
    wait_running(first);
    json_t *progress = get_json("/sdapi/v1/progress?skip_current_image=true", 200);
    json_t *st = json_object_get(progress, "state");
    assert_string_equal(json_string_value(json_object_get(st, "job")), first);
    assert_int_equal(json_integer_value(json_object_get(st, "sampling_steps")), 150);
    assert_int_equal(json_integer_value(json_object_get(st, "job_count")), 1);
    assert_true(json_real_value(json_object_get(progress, "progress")) > 0);
    json_decref(progress);
    /* previews come every show_progress_every_n_steps (10): current_image is one */
    int seen = 0;
    for (int64_t end = test_mono_ms() + 90000; !seen && test_mono_ms() < end;) {
        progress = get_json("/sdapi/v1/progress", 200);
        const char *image = json_string_value(json_object_get(progress, "current_image"));
        if ((seen = image != NULL)) {
            size_t n = 0;
            unsigned char *png = base64_decode(image, (size_t)1 << 24, &n);
            assert_non_null(png);
            assert_true(n > 8 && memcmp(png, "\x89PNG", 4) == 0);
            free(png);
        }
        json_decref(progress);
        test_sleep_ms(100);
    }
    assert_true(seen);
    assert_int_equal(http("POST", "/sdapi/v1/interrupt", NULL, NULL), 200);
    json_t *j = wait_job(first, 60000);
    assert_string_equal(status_of(j), "cancelled");
    json_decref(j);
    /* a call that waits: it answers once its job is interrupted */
    snprintf(cmd, sizeof cmd, "curl -s -m 120 -w ' %%{http_code}' '%s/sdapi/v1/txt2img' -d @'%s'",
             base, req);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    test_sleep_ms(500);
    char *second = newest_job();
    assert_string_not_equal(first, second);
    wait_running(second);
    assert_int_equal(http("POST", "/sdapi/v1/skip", NULL, NULL), 200);
    char out[8192] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(out, "{\"images\":[],"));
    assert_non_null(strstr(out, " 200"));
    free(first);
    free(second);
    assert_int_equal(stop_server(), 0);
}

/* A call waiting for its job gives its body's bytes back to the upload
   budget: a big img2img that waits minutes does not lock out uploads. */
static void a1111_waiting_call_holds_no_body_budget(void **state)
{
    (void)state;
    fresh_data();
    start_server("--max-body 1M --max-body-memory 1M");
    size_t pad = 700000;
    char *big = malloc(pad + 256);
    int k = snprintf(big, 256,
                     "{\"prompt\":\"\",\"steps\":150,\"width\":128,\"height\":128,\"pad\":\"");
    memset(big + k, 'x', pad);
    snprintf(big + k + pad, 8, "\"}");
    char req[256], cmd[600];
    snprintf(req, sizeof req, "%s/big.json", dir);
    FILE *f = fopen(req, "wb");
    fputs(big, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "curl -s -m 120 -o /dev/null '%s/sdapi/v1/txt2img' -d @'%s'", base,
             req);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    test_sleep_ms(500);
    char *id = newest_job();
    wait_running(id);
    char *body = NULL; /* 700 KB more: over the 1 MiB budget if the waiting call held its own */
    assert_int_equal(http("POST", "/v1/jobs", big, &body), 400);
    assert_non_null(strstr(body, "unknown_field"));
    free(body);
    assert_int_equal(http("POST", "/sdapi/v1/interrupt", NULL, NULL), 200);
    assert_int_equal(pclose(p), 0);
    free(id);
    free(big);
    assert_int_equal(stop_server(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(events_in_order, stop_leftovers),
        cmocka_unit_test_teardown(priorities_then_arrival, stop_leftovers),
        cmocka_unit_test_teardown(api_keys, stop_leftovers),
        cmocka_unit_test_teardown(limits_retention_and_sigterm, stop_leftovers),
        cmocka_unit_test_teardown(big_init_images_stay_out_of_the_database, stop_leftovers),
        cmocka_unit_test_teardown(a_seed_past_int64, stop_leftovers),
        cmocka_unit_test_teardown(a1111_txt2img_is_the_cli_image, stop_leftovers),
        cmocka_unit_test_teardown(a1111_img2img_is_the_cli_image, stop_leftovers),
        cmocka_unit_test_teardown(a1111_waits_and_interrupts, stop_leftovers),
        cmocka_unit_test_teardown(a1111_waiting_call_holds_no_body_budget, stop_leftovers),
    };
    if (getenv("GS_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GS_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
