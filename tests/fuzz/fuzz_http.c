/*
 * fuzz_http - the server's request path on raw bytes. libmicrohttpd owns the
 * connection, so there is no narrower entry than a socket: the real server
 * (serve_run: router, protocols, body budget, store, blobs, event hub) is
 * started once, in this process, on 127.0.0.1 with no workers, and each
 * input is sent over loopback as a whole request (request line, query,
 * headers, body), the writing side then shut. The reply is read until the
 * server closes or a short wait ends (event streams and long polls never
 * end on their own). A crash on the server's threads is this process's.
 *
 * With no workers no job ends, and the calls that wait for their job
 * (A1111's txt2img, OpenAI's generations, ?wait=, event streams) would keep
 * their connections parked until every slot is taken; every CANCEL_EVERY
 * inputs the harness cancels the queued jobs through the API, which ends
 * those waits.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/server.h"
#include "fuzzutil.h"

/* libmicrohttpd keeps a connection whose request stopped short until its
   header deadline, even after the client shut its side, and event streams
   and long polls never end: a reply must start within REPLY_FIRST_MS and
   go on without a pause of REPLY_WAIT_MS, or the connection is reset. */
#define REPLY_FIRST_MS 30
#define REPLY_WAIT_MS 200
#define CANCEL_EVERY 100 /* inputs between two cancel_queued calls */

static serve_options opts;
static int port;

static void *serve(void *arg)
{
    (void)arg;
    int code = serve_run(&opts);
    fprintf(stderr, "fuzz_http: the server stopped (exit code %d)\n", code);
    abort(); /* it stops only on SIGINT/SIGTERM or when it cannot start */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    static char data[300], models[300], port_file[300], model[340], cmd[700];
    const char *dir = fuzz_tmpdir();
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(models, sizeof models, "%s/models", dir);
    snprintf(port_file, sizeof port_file, "%s/port", dir);
    snprintf(model, sizeof model, "%s/tiny-sd15.safetensors", models);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && ln -sf %s/tiny-sd15.safetensors %s", models,
             GESSO_FIXTURES, model);
    if (system(cmd) != 0)
        abort();
    setenv("GESSO_LOG", "error", 0); /* a line per request would drown libFuzzer's */
    serve_options_default(&opts);
    opts.listen = "127.0.0.1:0";
    opts.port_file = port_file;
    opts.data_dir = data;
    opts.models_dir = models;
    opts.workers = 0;
    opts.http_threads = 2;
    opts.max_body = 1u << 20;
    opts.max_body_memory = 4u << 20;
    opts.header_timeout_s = 2;
    opts.request_timeout_s = 5;
    opts.max_queued = 0; /* no workers: the queue only grows (cancel_queued empties it) */
    opts.max_per_ip = 0; /* every connection comes from 127.0.0.1 */
    pthread_t th;
    if (pthread_create(&th, NULL, serve, NULL) != 0)
        abort();
    for (int i = 0; i < 500 && port <= 0; i++) {
        usleep(20000);
        FILE *f = fopen(port_file, "r");
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
    }
    if (port <= 0)
        abort();
    return 0;
}

/* Whether reply[0..n) holds a whole final response (after any 1xx ones). */
static int reply_complete(const char *reply, size_t n, int head)
{
    const char *p = reply, *end = reply + n;
    for (;;) {
        const char *hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (!hdr_end)
            return 0;
        const char *body = hdr_end + 4;
        if (end - p > 9 && p[9] == '1') { /* "HTTP/1.1 100 Continue" */
            p = body;
            continue;
        }
        if (head)
            return 1;
        char headers[8192];
        snprintf(headers, sizeof headers, "%.*s", (int)(hdr_end - p), p);
        for (char *c = headers; *c; c++)
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
        const char *cl = strstr(headers, "\r\ncontent-length:");
        if (cl)
            return (size_t)(end - body) >= strtoull(cl + 17, NULL, 10);
        if (strstr(headers, "chunked"))
            return end - body >= 5 && memcmp(end - 5, "0\r\n\r\n", 5) == 0;
        return 0; /* ends at the close */
    }
}

/* Reads the reply until it is whole, the server closes, or it stalls. */
static void read_reply(int fd, int head)
{
    static char reply[1 << 20];
    size_t n = 0;
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    while (poll(&pf, 1, n ? REPLY_WAIT_MS : REPLY_FIRST_MS) > 0) {
        if (n == sizeof reply)
            n = 0; /* a long stream: only its end matters */
        ssize_t k = recv(fd, reply + n, sizeof reply - n, 0);
        if (k <= 0)
            return;
        n += (size_t)k;
        if (reply_complete(reply, n, head))
            return;
    }
}

/* A connection to the server, closed with a reset (thousands a second
   would otherwise use up the local ports in TIME_WAIT); -1 on failure. */
static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends a whole request with Connection: close; the reply into out (NUL-terminated). */
static void roundtrip(const char *req, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = dial();
    if (fd < 0)
        return;
    size_t n = 0;
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req)) {
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        ssize_t k;
        while (n + 1 < cap && poll(&pf, 1, 2000) > 0 && (k = recv(fd, out + n, cap - 1 - n, 0)) > 0)
            n += (size_t)k;
    }
    out[n] = '\0';
    close(fd);
}

/* Cancels every queued job (DELETE /v1/jobs/ID), which ends the waits on them. */
static void cancel_queued(void)
{
    static char reply[1 << 20];
    char req[256], ignored[4096];
    for (int round = 0; round < 50; round++) {
        roundtrip("GET /v1/jobs?status=queued&limit=100 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  "Connection: close\r\n\r\n",
                  reply, sizeof reply);
        int n = 0;
        for (const char *p = reply; (p = strstr(p, "\"id\":\"")); n++) {
            p += 6;
            size_t len = strcspn(p, "\"");
            snprintf(
                req, sizeof req,
                "DELETE /v1/jobs/%.*s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                (int)(len < 64 ? len : 64), p);
            roundtrip(req, ignored, sizeof ignored);
        }
        if (n == 0)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > (2u << 20))
        return 0;
    /* without the blank line ending the headers gesso's code never sees the
       request (libmicrohttpd waits for more): not worth a connection */
    if (!memmem(data, size, "\r\n\r\n", 4) && !memmem(data, size, "\n\n", 2))
        return -1;
    static unsigned long inputs;
    if (++inputs % CANCEL_EVERY == 0)
        cancel_queued();
    int fd = dial();
    if (fd < 0) {
        cancel_queued();
        if ((fd = dial()) < 0)
            abort(); /* the server no longer accepts */
    }
    for (size_t off = 0; off < size;) {
        ssize_t n = send(fd, data + off, size - off, MSG_NOSIGNAL);
        if (n <= 0)
            break; /* the server cut the request short */
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    read_reply(fd, size >= 5 && memcmp(data, "HEAD ", 5) == 0);
    close(fd);
    return 0;
}
