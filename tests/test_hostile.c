/*
 * test_hostile - `gesso serve` against hostile and careless clients, over raw
 * sockets on loopback: uploads without a key, bodies past the server's memory
 * budget, clients that trickle headers or bodies, many connections from one
 * address, hundreds of parked event streams and long polls on two HTTP
 * threads, and a damaged store. Each case asserts what the server does (a
 * status, a cut connection, memory that did not grow); none asserts a speed.
 *
 * The other rows of the hostile-client table (issue 19) are tested where
 * their code lives:
 *   big inputs            test_serve_api big_init_images_stay_out_of_the_database,
 *                         tests/http/store-full.cases
 *   work per job          test_job_spec (chunk and cost limits),
 *                         tests/http/native-limits.cases
 *   seeds                 test_job_spec, tests/http/native-seed.cases,
 *                         test_serve_api a_seed_past_int64
 *   browsers              tests/http/browser.cases, browser-keys.cases
 *   stops and deaths      test_serve_api limits_retention_and_sigterm (the last
 *                         event "stopping"), test_serve worker_killed_mid_job_finishes_once
 *   a broken store        test_store sqlite_refuses_broken_files and
 *                         sqlite_check_finds_damaged_pages; damaged_store_stops_the_start here
 *   smaller things        tests/http/native.cases (%00, images/+0, HEAD, nosniff),
 *                         native-keys.cases (queue and stats scoped to the key),
 *                         test_job_spec key_file_refuses_duplicates
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

static char dir[256];

/* ---- raw clients ---- */

static int port_of(const char *base)
{
    const char *colon = strrchr(base, ':');
    assert_non_null(colon);
    return (int)strtol(colon + 1, NULL, 10);
}

/* A connected socket from source address from (NULL: the kernel's choice); -1 on failure. */
static int dial(const char *base, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (from) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        inet_pton(AF_INET, from, &src.sin_addr);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port_of(base))};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_text(int fd, const char *text)
{
    size_t n = strlen(text), off = 0;
    while (off < n) {
        ssize_t k = send(fd, text + off, n - off, MSG_NOSIGNAL);
        if (k <= 0)
            return; /* the server may close first: what it answered is what counts */
        off += (size_t)k;
    }
}

/* Reads what arrives within timeout_ms (until the peer closes or the reply's
   head is in when head_only); returns the bytes read, -1 on a reset. */
static int read_reply(int fd, char *buf, size_t cap, int timeout_ms, int head_only)
{
    size_t n = 0;
    int64_t end = test_mono_ms() + timeout_ms;
    buf[0] = '\0';
    while (n + 1 < cap) {
        int left = (int)(end - test_mono_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            break;
        ssize_t k = recv(fd, buf + n, cap - 1 - n, 0);
        if (k < 0)
            return errno == ECONNRESET && n == 0 ? -1 : (int)n;
        if (k == 0)
            break;
        n += (size_t)k;
        buf[n] = '\0';
        if (head_only && strstr(buf, "\r\n\r\n"))
            break;
    }
    return (int)n;
}

/* 1 when the server closed fd within timeout_ms (end of file or reset). */
static int closed_by_server(int fd, int timeout_ms)
{
    char buf[4096];
    int64_t end = test_mono_ms() + timeout_ms;
    for (;;) {
        int left = (int)(end - test_mono_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0)
            return 0;
        ssize_t k = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return 1;
    }
}

static int status_of(const char *reply)
{
    int code = 0;
    return sscanf(reply, "HTTP/1.%*d %d", &code) == 1 ? code : 0;
}

/* One GET on a fresh connection; the status, 0 when none came within timeout_ms. */
static int get_status(const char *base, const char *path, int timeout_ms)
{
    int fd = dial(base, NULL);
    if (fd < 0)
        return 0;
    char req[512], buf[8192];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    send_text(fd, req);
    read_reply(fd, buf, sizeof buf, timeout_ms, 1);
    close(fd);
    return status_of(buf);
}

/* A value of the server's /metrics, -1 when absent. */
static long metric(const char *base, const char *name)
{
    char *body = NULL, key[128];
    if (test_http(base, dir, "GET", "/metrics", NULL, &body) != 200) {
        free(body);
        return -1;
    }
    snprintf(key, sizeof key, "\n%s ", name);
    const char *at = body ? strstr(body, key) : NULL;
    long v = at ? strtol(at + strlen(key), NULL, 10) : -1;
    free(body);
    return v;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static void write_keys(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "alice-key-0123456789 alice\n");
    fclose(f);
}

/* ---- cases ---- */

/* 40 clients without a key announce 25 MB bodies: each is refused on its
   headers (401, and no "100 Continue"), so the server never holds the bodies. */
static void uploads_without_a_key_are_refused_on_the_headers(void **state)
{
    (void)state;
    char base[64], keys[300];
    snprintf(keys, sizeof keys, "%s/keys", dir);
    write_keys(keys);
    const char *extra[] = {"--api-keys", keys, NULL};
    pid_t server = test_serve_start(base, dir, extra);
    long before = rss_kb(server);
    static char chunk[1 << 20];
    memset(chunk, 'a', sizeof chunk - 1);
    int fds[40];
    char reply[4096];
    for (int i = 0; i < 40; i++) {
        fds[i] = dial(base, NULL);
        assert_true(fds[i] >= 0);
        send_text(fds[i], i % 2 ? "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Content-Length: 25165000\r\nExpect: 100-continue\r\n\r\n"
                                : "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Content-Length: 25165000\r\n\r\n");
        /* the answer comes before any body byte is sent */
        assert_true(read_reply(fds[i], reply, sizeof reply, 5000, 1) > 0);
        assert_int_equal(status_of(reply), 401);
        assert_null(strstr(reply, "100 Continue"));
        send_text(fds[i], chunk); /* a careless client sends it anyway */
    }
    long after = rss_kb(server);
    for (int i = 0; i < 40; i++)
        close(fds[i]);
    assert_true(after - before < 50 * 1024); /* was +1 GB when bodies were read first */

    /* with a key, a body over --max-body is refused on its Content-Length */
    int fd = dial(base, NULL);
    send_text(fd, "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Authorization: Bearer alice-key-0123456789\r\n"
                  "Content-Length: 10000000000\r\nExpect: 100-continue\r\n\r\n");
    assert_true(read_reply(fd, reply, sizeof reply, 5000, 1) > 0);
    assert_int_equal(status_of(reply), 413);
    close(fd);
    /* a body on a route that takes none is capped small */
    fd = dial(base, NULL);
    send_text(fd, "DELETE /v1/jobs/x HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Authorization: Bearer alice-key-0123456789\r\n"
                  "Content-Length: 1000000\r\n\r\n");
    assert_true(read_reply(fd, reply, sizeof reply, 5000, 1) > 0);
    assert_int_equal(status_of(reply), 413);
    close(fd);
    assert_int_equal(get_status(base, "/healthz", 5000), 200);
    assert_int_equal(test_serve_stop(server), 0);
}

/* Bodies being received share one memory budget: past it a new upload gets
   503 with Retry-After on its headers; room comes back when one ends. */
static void bodies_share_a_memory_budget(void **state)
{
    (void)state;
    char base[64];
    const char *extra[] = {"--max-body", "1M", "--max-body-memory", "2M", NULL};
    pid_t server = test_serve_start(base, dir, extra);
    const char *head = "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Length: 900000\r\n\r\n{\"model\":";
    int a = dial(base, NULL), b = dial(base, NULL);
    send_text(a, head);
    send_text(b, head);
    test_sleep_ms(300); /* both hold their reservations now */
    char reply[4096];
    int c = dial(base, NULL);
    send_text(c, head);
    assert_true(read_reply(c, reply, sizeof reply, 5000, 1) > 0);
    assert_int_equal(status_of(reply), 503);
    assert_non_null(strstr(reply, "Retry-After"));
    assert_non_null(strstr(reply, "server_busy"));
    close(c);
    close(a); /* a leaves mid-body: its share comes back */
    int ok = 0;
    for (int64_t end = test_mono_ms() + 5000; !ok && test_mono_ms() < end; test_sleep_ms(50)) {
        int d = dial(base, NULL);
        send_text(d, "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 900000\r\n\r\n");
        ok = read_reply(d, reply, sizeof reply, 300, 1) == 0; /* no answer: it is reading */
        close(d);
    }
    assert_true(ok);
    close(b);

    /* a chunked body (no Content-Length to refuse on) is cut at --max-body */
    int e = dial(base, NULL);
    send_text(e, "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n");
    static char chunk[65536 + 32];
    memset(chunk, ' ', sizeof chunk);
    int len = snprintf(chunk, 16, "10000\r\n"); /* 64 KiB chunks */
    chunk[len] = ' ';
    memcpy(chunk + len + 65536, "\r\n", 2);
    chunk[len + 65536 + 2] = '\0';
    for (int i = 0; i < 20; i++) /* 1.25 MiB in all */
        send_text(e, chunk);
    send_text(e, "0\r\n\r\n");
    assert_true(read_reply(e, reply, sizeof reply, 10000, 1) > 0);
    assert_int_equal(status_of(reply), 413);
    close(e);
    assert_int_equal(test_serve_stop(server), 0);
}

/* 300 clients from another address trickle header lines: others are still
   served at once, and the server cuts each trickler at the header deadline. */
static void slow_clients_do_not_lock_others_out(void **state)
{
    (void)state;
    char base[64];
    const char *extra[] = {
        "--request-timeout", "3", "--max-per-ip", "0", "--http-threads", "2", NULL};
    pid_t server = test_serve_start(base, dir, extra);
    enum { SLOW = 300 };
    int fds[SLOW];
    for (int i = 0; i < SLOW; i++) {
        fds[i] = dial(base, "127.0.0.2");
        assert_true(fds[i] >= 0);
        send_text(fds[i], "GET /healthz HTTP/1.1\r\n");
    }
    int64_t started = test_mono_ms();
    for (int round = 0; round < 4; round++) { /* a header line per second each */
        for (int i = 0; i < SLOW; i++)
            send_text(fds[i], "X-Slow: 1\r\n");
        for (int k = 0; k < 5; k++) {
            assert_int_equal(get_status(base, "/healthz", 2000), 200);
            assert_int_equal(get_status(base, "/v1/jobs", 2000), 200);
        }
        test_sleep_ms(500);
    }
    /* the header deadline (3 s) has passed for all of them */
    int cut = 0;
    for (int i = 0; i < SLOW; i++)
        cut += closed_by_server(fds[i], (int)(started + 8000 - test_mono_ms()));
    for (int i = 0; i < SLOW; i++)
        close(fds[i]);
    assert_int_equal(cut, SLOW);
    assert_true(metric(base, "gesso_http_cut_total") >= SLOW);

    /* a body that trickles is cut at the request deadline too */
    int fd = dial(base, NULL);
    send_text(fd, "POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 1000\r\n\r\n{");
    int64_t t0 = test_mono_ms();
    int gone = 0;
    while (!gone && test_mono_ms() - t0 < 8000) {
        send_text(fd, " ");
        gone = closed_by_server(fd, 500);
    }
    assert_true(gone);
    close(fd);
    assert_int_equal(get_status(base, "/healthz", 2000), 200);
    assert_int_equal(test_serve_stop(server), 0);
}

/* One address gets --max-per-ip connections; the next is closed at once,
   and clients from other addresses do not notice. */
static void one_address_gets_its_share(void **state)
{
    (void)state;
    char base[64];
    const char *extra[] = {"--max-per-ip", "16", NULL};
    pid_t server = test_serve_start(base, dir, extra);
    int fds[16];
    for (int i = 0; i < 16; i++) {
        fds[i] = dial(base, "127.0.0.3");
        assert_true(fds[i] >= 0);
    }
    test_sleep_ms(200);
    int extra_fd = dial(base, "127.0.0.3");
    assert_true(extra_fd < 0 || closed_by_server(extra_fd, 3000));
    if (extra_fd >= 0)
        close(extra_fd);
    assert_int_equal(get_status(base, "/healthz", 2000), 200);
    for (int i = 0; i < 16; i++)
        close(fds[i]);
    assert_int_equal(test_serve_stop(server), 0);
}

/* 60 event streams and 60 long polls on one queued job, served by two HTTP
   threads: they park without holding a thread, health checks go on, and a
   cancel ends every stream and answers every poll. */
static void waiting_requests_hold_no_thread(void **state)
{
    (void)state;
    char base[64];
    const char *extra[] = {"--http-threads", "2", NULL};
    pid_t server = test_serve_start(base, dir, extra);
    /* the worker is kept busy, so the watched job waits in the queue, where a
       cancel ends it at once */
    char *busy = test_submit(base, dir, NULL,
                             "{\"model\":\"tiny-sd15\",\"prompt\":\"x\",\"steps\":150,"
                             "\"width\":128,\"height\":128}");
    char *id = test_submit(base, dir, NULL,
                           "{\"model\":\"tiny-sd15\",\"prompt\":\"x\",\"steps\":1,"
                           "\"width\":64,\"height\":64}");
    enum { N = 60 };
    int streams[N], polls[N];
    char req[512], reply[65536];
    for (int i = 0; i < N; i++) {
        streams[i] = dial(base, NULL);
        polls[i] = dial(base, NULL);
        assert_true(streams[i] >= 0 && polls[i] >= 0);
        snprintf(req, sizeof req, "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id);
        send_text(streams[i], req);
        snprintf(req, sizeof req, "GET /v1/jobs/%s?wait=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                 id);
        send_text(polls[i], req);
    }
    for (int i = 0; i < N; i++) { /* every stream is open and has said where the job is */
        assert_true(read_reply(streams[i], reply, sizeof reply, 10000, 1) > 0);
        assert_int_equal(status_of(reply), 200);
    }
    for (int k = 0; k < 5; k++)
        assert_int_equal(get_status(base, "/healthz", 2000), 200);
    test_sleep_ms(300);
    assert_true(metric(base, "gesso_http_parked") >= N); /* the polls at least */
    for (int i = 0; i < N; i++)                          /* the polls are still waiting */
        assert_int_equal(read_reply(polls[i], reply, sizeof reply, 1, 1), 0);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_int_equal(test_http(base, dir, "DELETE", path, NULL, NULL), 200);
    for (int i = 0; i < N; i++) {
        char all[65536] = "";
        size_t n = 0;
        int64_t end = test_mono_ms() + 10000;
        while (!strstr(all, "event: cancelled") && test_mono_ms() < end && n + 1 < sizeof all) {
            int k = read_reply(streams[i], all + n, sizeof all - n, 200, 0);
            n += k > 0 ? (size_t)k : 0;
        }
        assert_non_null(strstr(all, "event: cancelled"));
        assert_true(read_reply(polls[i], reply, sizeof reply, 10000, 0) > 0);
        assert_int_equal(status_of(reply), 200);
        assert_non_null(strstr(reply, "\"cancelled\""));
        close(streams[i]);
        close(polls[i]);
    }
    snprintf(path, sizeof path, "/v1/jobs/%s", busy);
    assert_int_equal(test_http(base, dir, "DELETE", path, NULL, NULL), 200);
    free(id);
    free(busy);
    assert_int_equal(test_serve_stop(server), 0);
}

/* SIGTERM while a worker is inside a long step (a 512x512 step under the
   sanitizers takes a minute): the server waits --stop-grace for the job to be
   given back, then kills the worker and exits; the next start requeues the
   job. Before, the stop waited for the step however long it took. */
static void a_stop_does_not_wait_for_a_long_step(void **state)
{
    (void)state;
    char base[64];
    const char *extra[] = {"--stop-grace", "1", NULL};
    pid_t server = test_serve_start(base, dir, extra);
    char *id = test_submit(base, dir, NULL,
                           "{\"model\":\"tiny-sd15\",\"prompt\":\"x\",\"steps\":1,"
                           "\"width\":512,\"height\":512}");
    for (int64_t end = test_mono_ms() + 60000;; test_sleep_ms(50)) {
        json_t *j = test_get_job(base, dir, NULL, id);
        int running = strcmp(json_string_value(json_object_get(j, "status")), "running") == 0;
        json_decref(j);
        if (running)
            break;
        if (test_mono_ms() > end)
            fail_msg("the job never started");
    }
    test_sleep_ms(500); /* into the step */
    int64_t t0 = test_mono_ms();
    assert_int_equal(test_serve_stop(server), 0);
    int64_t took = test_mono_ms() - t0;
    printf("stop with a worker inside a step: %lld ms\n", (long long)took);
    assert_true(took < 8000);
    server = test_serve_start(base, dir, extra); /* the job is queued again, not lost */
    json_t *j = test_get_job(base, dir, NULL, id);
    const char *st = json_string_value(json_object_get(j, "status"));
    assert_true(strcmp(st, "queued") == 0 || strcmp(st, "running") == 0);
    json_decref(j);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    assert_int_equal(test_http(base, dir, "DELETE", path, NULL, NULL), 200);
    free(id);
    assert_int_equal(test_serve_stop(server), 0);
}

/* A jobs.db with damaged pages stops the server at start, naming the file,
   instead of a server that answers 503 to everything. */
static void damaged_store_stops_the_start(void **state)
{
    (void)state;
    char base[64], data[300], db[320], log[320];
    pid_t server = test_serve_start(base, dir, NULL);
    for (int i = 0; i < 40; i++) { /* rows over several pages */
        char *id = test_submit(base, dir, NULL,
                               "{\"model\":\"tiny-sd15\",\"prompt\":\"a long prompt to fill the "
                               "pages of the database with rows and more rows\",\"steps\":1,"
                               "\"width\":64,\"height\":64,\"priority\":-100}");
        free(id);
    }
    assert_int_equal(test_serve_stop(server), 0);
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(db, sizeof db, "%s/jobs.db", data);
    snprintf(log, sizeof log, "%s/server.log", dir);
    struct stat sb;
    assert_int_equal(stat(db, &sb), 0);
    assert_true(sb.st_size >= 4 * 4096);
    FILE *f = fopen(db, "r+b");
    assert_non_null(f);
    fseek(f, sb.st_size - 4096, SEEK_SET);
    for (int i = 0; i < 4096; i++)
        fputc(0x5A, f);
    fclose(f);
    truncate(log, 0);
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(log, "a", stderr))
            _exit(126);
        execl(GS_GESSO_BIN, GS_GESSO_BIN, "serve", "--listen", "127.0.0.1:0", "--data", data,
              "--models", dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    char text[8192] = "";
    f = fopen(log, "r");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_non_null(strstr(text, db));
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-hostile-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    raise_fd_limit();
    signal(SIGPIPE, SIG_IGN);
    return test_link_tiny_model(dir);
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_tree(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(uploads_without_a_key_are_refused_on_the_headers),
        cmocka_unit_test(bodies_share_a_memory_budget),
        cmocka_unit_test(slow_clients_do_not_lock_others_out),
        cmocka_unit_test(one_address_gets_its_share),
        cmocka_unit_test(waiting_requests_hold_no_thread),
        cmocka_unit_test(a_stop_does_not_wait_for_a_long_step),
        cmocka_unit_test(damaged_store_stops_the_start),
    };
    if (getenv("GS_TEST_FILTER"))
        cmocka_set_test_filter(getenv("GS_TEST_FILTER"));
    return cmocka_run_group_tests(tests, setup, teardown);
}
