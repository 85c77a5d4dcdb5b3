/*
 * server - `gesso serve` put together: the store, blob store and event hub,
 * the supervised local workers, and libmicrohttpd feeding requests (bodies
 * read up to a cap) to the router. The main thread supervises the workers,
 * publishes their reports, expires leases and purges old jobs, each on its
 * own store connection; the HTTP threads share another under a mutex.
 */
#include "api/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/http.h"
#include "api/protocols.h"
#include "api/server_private.h"
#include "support/log.h"

#define HOUSEKEEPING_MS 200 /* lease expiry and worker restarts at least this often */

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

int64_t server_now_ms(void)
{
    return store_clock_ms();
}

void serve_options_default(serve_options *o)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:7860";
    o->data_dir = "gesso-data";
    o->models_dir = "models";
    o->workers = 1;
    o->lease_ms = 15000;
    o->max_attempts = 3;
    o->max_body = 24u << 20;
    o->retention_ms = 7LL * 24 * 3600 * 1000;
    o->max_connections = 256;
    job_limits_default(&o->limits);
}

/* ---- requests ---- */

typedef struct request_body {
    char *body;
    size_t len, cap;
    int too_big;
} request_body;

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request_body *b = *con_cls;
    if (b) {
        free(b->body);
        free(b);
    }
    *con_cls = NULL;
}

/* Appends an upload chunk; past max_body the rest is dropped and the request refused. */
static int take_upload(request_body *b, const char *data, size_t n, size_t max)
{
    if (b->too_big || b->len + n > max) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->body, cap);
        if (!p)
            return -1;
        b->body = p;
        b->cap = cap;
    }
    memcpy(b->body + b->len, data, n);
    b->len += n;
    b->body[b->len] = '\0';
    return 0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    request_body *b = *con_cls;
    if (!b) {
        if (!(b = calloc(1, sizeof *b)))
            return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*upload_size) {
        if (take_upload(b, upload, *upload_size, s->o->max_body) != 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    http_request r = {.s = s, .c = c, .method = method, .path = url};
    r.body = b->body ? b->body : "";
    r.body_len = b->len;
    if (b->too_big) {
        r.proto = &native_protocol;
        return http_error(&r, 413, "body_too_large", "the request body is larger than allowed");
    }
    return router_dispatch(&r);
}

/* Decodes %HH escapes in paths and query values, except in one holding %00:
   decoded, the NUL would cut the path short (/v1/jobs/ID%00/images/0 read as
   /v1/jobs/ID), so it stays undecoded and the router refuses it. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls, (void)c;
    for (const char *p = s; (p = strchr(p, '%')); p++)
        if (p[1] == '0' && p[2] == '0')
            return strlen(s);
    return MHD_http_unescape(s);
}

/* ---- start-up ---- */

/* Every --preload model must be a checkpoint in the models directory. */
static int check_preload(const serve_options *o)
{
    for (int i = 0; i < o->n_preload; i++) {
        char path[8300];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s.safetensors", o->models_dir, o->preload[i]);
        if (!job_model_name_ok(o->preload[i]) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            log_error("--preload %s: no model named '%s' (no %s)", o->preload[i], o->preload[i],
                      path);
            return -1;
        }
    }
    return 0;
}

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* Removes a purged job's images and preview. */
static void remove_job_blobs(void *user, const char *id)
{
    server *s = user;
    svc_error err = {0};
    if (blob_delete_job(s->blobs, id, &err) != GS_OK)
        log_error("%s", err.msg);
}

/* Requeues jobs whose workers went silent and purges old jobs, on the main
   thread's own store connection. */
static void housekeeping(server *s, job_store *store, int64_t *next_purge)
{
    const serve_options *o = s->o;
    svc_error err = {0};
    int requeued = 0, failed = 0, purged = 0;
    if (store_expire_leases(store, server_now_ms(), o->max_attempts, &requeued, &failed, &err) !=
        GS_OK)
        log_error("%s", err.msg);
    if (o->retention_ms > 0 && server_now_ms() >= *next_purge) {
        if (store_purge(store, server_now_ms() - o->retention_ms, remove_job_blobs, s, &purged,
                        &err) != GS_OK)
            log_error("%s", err.msg);
        *next_purge = server_now_ms() + 1000;
    }
    if (requeued || failed || purged)
        hub_publish_all(s->hub);
}

/* The port the daemon listens on (the one the OS chose for port 0). */
static int bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? (int)info->port : -1;
}

int serve_run(const serve_options *o)
{
    server s = {0};
    s.o = o;
    s.stopping = &stopping;
    char store_url[4200], blob_url[4200];
    struct sockaddr_in sa;
    job_store *own = NULL; /* the main thread's store connection */
    struct MHD_Daemon *d = NULL;
    svc_error err = {0};
    int code = 3;
    pthread_mutex_init(&s.mu, NULL);
    if (parse_listen(o->listen, &sa) != 0) {
        log_error("--listen '%s' is not IPv4-ADDRESS:PORT", o->listen);
        code = 2;
        goto out;
    }
    if (check_preload(o) != 0) {
        code = 2;
        goto out;
    }
    if (o->api_keys_path) {
        char msg[512];
        if (api_keys_load(o->api_keys_path, &s.keys, msg, sizeof msg) != 0) {
            log_error("%s", msg);
            code = 2;
            goto out;
        }
    }
    snprintf(store_url, sizeof store_url, "%s/jobs.db", o->data_dir);
    snprintf(blob_url, sizeof blob_url, "%s/results", o->data_dir);
    mkdir(o->data_dir, 0755);
    if (store_open(store_url, &s.store, &err) != GS_OK ||
        store_open(store_url, &own, &err) != GS_OK ||
        blob_open(blob_url, &s.blobs, &err) != GS_OK) {
        log_error("%s", err.msg);
        goto out;
    }
    if (!(s.catalog = model_catalog_create()) || !(s.hub = hub_create()))
        goto out;
    if (gs_tokenizer_create(&s.tok) != GS_OK) {
        log_error("cannot create the prompt tokenizer: out of memory");
        goto out;
    }
    /* jobs that were running when a previous server died go back to the queue */
    int rq = 0, fl = 0;
    if (store_expire_leases(own, INT64_MAX / 2, o->max_attempts, &rq, &fl, &err) != GS_OK)
        log_error("%s", err.msg);
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_stop;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    signal(SIGPIPE, SIG_IGN);
    supervisor_options so = {.self_exe = o->self_exe,
                             .store_url = store_url,
                             .blob_url = blob_url,
                             .models_dir = o->models_dir,
                             .workers = o->workers,
                             .threads = o->worker_threads,
                             .precision = o->worker_precision,
                             .lease_ms = o->lease_ms,
                             .max_attempts = o->max_attempts,
                             .ram_budget = o->ram_budget,
                             .idle_unload_s = o->idle_unload_s,
                             .preload = o->preload,
                             .n_preload = o->n_preload};
    if (!(s.sup = supervisor_start(&so, own, s.hub, &err))) {
        log_error("%s", err.msg);
        goto out;
    }
    /* a thread per connection: event streams and waiting calls sleep on the
       hub without holding up other clients */
    d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections, MHD_OPTION_NOTIFY_COMPLETED,
        request_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30, MHD_OPTION_UNESCAPE_CALLBACK,
        unescape, NULL, MHD_OPTION_END);
    if (!d) {
        log_error("cannot listen on %s: %s", o->listen, strerror(errno));
        code = 4;
        goto out;
    }
    char where[96];
    snprintf(where, sizeof where, "%.*s:%d", (int)(strrchr(o->listen, ':') - o->listen), o->listen,
             bound_port(d));
    log_info("serving on http://%s (%d workers%s)", where, o->workers,
             s.keys.n ? ", API keys required" : "");
    if (o->port_file) { /* for scripts and tests that asked for port 0 */
        FILE *f = fopen(o->port_file, "w");
        if (f) {
            fprintf(f, "%d\n", bound_port(d));
            fclose(f);
        }
    }
    int64_t next_purge = 0;
    while (!stopping) {
        supervisor_poll(s.sup, HOUSEKEEPING_MS);
        housekeeping(&s, own, &next_purge);
    }
    code = 0;
out:
    if (s.hub) {
        hub_close(s.hub); /* event streams and waiting calls end now */
        /* let them send their last event and the chunked body's end before the
           connections close (they unsubscribe when done) */
        for (int64_t end = server_now_ms() + 2000;
             d && hub_subscribers(s.hub) > 0 && server_now_ms() < end;)
            usleep(10000);
        if (hub_subscribers(s.hub) > 0)
            log_warn("%d event streams did not end in 2 s; closing them", hub_subscribers(s.hub));
    }
    if (d)
        MHD_stop_daemon(d);
    supervisor_stop(s.sup);
    store_close(s.store);
    store_close(own);
    blob_close(s.blobs);
    model_catalog_free(s.catalog);
    hub_free(s.hub);
    gs_tokenizer_free(s.tok);
    pthread_mutex_destroy(&s.mu);
    api_keys_free(&s.keys);
    if (code == 0)
        log_info("stopped");
    return code;
}
