/*
 * server - `gesso serve` put together: the store, blob store and event hub,
 * the supervised local workers, and libmicrohttpd feeding requests to the
 * router: route, key and body size are settled on the headers, bodies are
 * read within a server-wide memory budget, and every request has a deadline
 * (conn_guard). The main thread supervises the workers, publishes their
 * reports, expires leases, purges old jobs and cuts overdue connections; each
 * HTTP thread has its own store connection.
 */
#include "api/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/conn_guard.h"
#include "api/http.h"
#include "api/native_inputs.h"
#include "api/a1111.h"
#include "api/api_keys_store.h"
#include "api/park.h"
#include "api/protocols.h"
#include "api/server_private.h"
#include "queue/store_watch.h"
#include "support/clock.h"
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
    o->max_connections = 1024;
    o->max_per_ip = 128;
    o->http_threads = 4;
    o->header_timeout_s = 10;
    o->request_timeout_s = 60;
    o->max_body_memory = 256u << 20;
    o->stop_grace_s = 10;
    o->max_queued = 10000;
    o->max_store_bytes = -1;
    job_limits_default(&o->limits);
}

/* ---- requests ---- */

typedef struct request_state {
    http_request r;
    char *body;
    size_t len, cap;
    size_t reserved; /* of the server's body budget */
    size_t max_len;  /* the route's body cap */
    int too_big, over_budget, answered_early;
} request_state;

/* Takes n more bytes from the server-wide body budget; -1 when it is spent. */
static int reserve_body(server *s, request_state *st, size_t n)
{
    size_t held = atomic_fetch_add(&s->body_bytes, n);
    if (held + n > s->o->max_body_memory) {
        atomic_fetch_sub(&s->body_bytes, n);
        return -1;
    }
    st->reserved += n;
    return 0;
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    server *s = cls;
    request_state *st = *con_cls;
    if (st) {
        park_free(st->r.park);
        if (st->r.state_free)
            st->r.state_free(st->r.state);
        atomic_fetch_sub(&s->body_bytes, st->reserved);
        free(st->body);
        free(st);
    }
    *con_cls = NULL;
    conn_guard_response_out(c);
}

void http_drop_body(http_request *r)
{
    request_state *st = (request_state *)(void *)r; /* r is its first member */
    atomic_fetch_sub(&r->s->body_bytes, st->reserved);
    st->reserved = 0;
    free(st->body);
    st->body = NULL;
    st->len = st->cap = 0;
    r->body = "";
    r->body_len = 0;
}

/* Appends an upload chunk; past the cap or the budget the rest is dropped and
   the request refused once it is in (no reply may be queued mid-upload). */
static int take_upload(server *s, request_state *st, const char *data, size_t n, size_t cap)
{
    if (st->too_big || st->over_budget)
        return 0;
    if (st->len + n > cap) {
        st->too_big = 1;
        return 0;
    }
    if (st->len + n + 1 > st->cap) { /* no Content-Length, or more than it said */
        size_t want = (st->len + n + 1) * 2;
        want = want > cap + 1 ? cap + 1 : want;
        if (want > st->reserved && reserve_body(s, st, want - st->reserved) != 0) {
            st->over_budget = 1;
            return 0;
        }
        char *p = realloc(st->body, want);
        if (!p)
            return -1;
        st->body = p;
        st->cap = want;
    }
    memcpy(st->body + st->len, data, n);
    st->len += n;
    st->body[st->len] = '\0';
    return 0;
}

/* The body budget is spent: the client is asked to come back. */
static enum MHD_Result busy_reply(http_request *r)
{
    return http_error_with(r, 503, "server_busy",
                           "too many large requests at once; try again shortly", "Retry-After: 2");
}

/* The first call, on the headers: route, key, size and budget are settled
   before a byte of the body is read (and before "100 Continue"). */
static enum MHD_Result on_headers(server *s, request_state *st)
{
    http_request *r = &st->r;
    enum MHD_Result ret;
    if (router_route(r, &ret) != 0) {
        st->answered_early = 1;
        return ret;
    }
    size_t cap = st->max_len = r->rt->flags & ROUTE_UPLOAD ? s->o->max_body : HTTP_SMALL_BODY;
    const char *cl = http_header(r, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno || end == cl || *end || cl[0] == '-' || n > cap) {
            st->answered_early = 1;
            char msg[128];
            snprintf(msg, sizeof msg, "the request body may hold at most %zu bytes", cap);
            return http_error(r, 413, "body_too_large", msg);
        }
        if (n > 0) {
            if (reserve_body(s, st, (size_t)n + 1) != 0 || !(st->body = malloc((size_t)n + 1))) {
                st->answered_early = 1;
                return busy_reply(r);
            }
            st->cap = (size_t)n + 1;
        }
    }
    return MHD_YES;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    request_state *st = *con_cls;
    if (!st) {
        if (!(st = calloc(1, sizeof *st)))
            return MHD_NO;
        *con_cls = st;
        st->r = (http_request){.s = s, .c = c, .method = method, .path = url};
        conn_guard_headers_in(c);
        enum MHD_Result ret = on_headers(s, st);
        if (st->answered_early)
            conn_guard_request_in(c);
        return ret;
    }
    if (*upload_size) {
        if (take_upload(s, st, upload, *upload_size, st->max_len) != 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    conn_guard_request_in(c);
    http_request *r = &st->r;
    r->body = st->body ? st->body : "";
    r->body_len = st->len;
    if (st->too_big)
        return http_error(r, 413, "body_too_large", "the request body is larger than allowed");
    if (st->over_budget)
        return busy_reply(r);
    return router_run(r);
}

static void close_store(void *store)
{
    store_close(store);
}

job_store *server_store(server *s, svc_error *err)
{
    job_store *store = pthread_getspecific(s->store_key);
    if (store)
        return store;
    if (store_open(s->store_url, &store, err) != GS_OK)
        return NULL;
    pthread_setspecific(s->store_key, store);
    return store;
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

/* Removes a purged job's inputs, images and preview. */
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

/* Each connection is a file descriptor: lift the soft limit toward the hard
   one so --max-connections can be reached. */
static void raise_fd_limit(int connections)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)connections + 256; /* the store, blobs, workers' pipes */
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
        log_warn("open files limited to %llu: fewer than --max-connections %d can be served",
                 (unsigned long long)rl.rlim_cur, connections);
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
    char blob_url[4200];
    struct sockaddr_in sa;
    job_store *own = NULL;     /* the main thread's store connection */
    store_watch *watch = NULL; /* changes other front ends' workers make (a database server) */
    struct MHD_Daemon *d = NULL;
    svc_error err = {0};
    int code = 3;
    pthread_mutex_init(&s.submit_mu, NULL);
    int have_key = pthread_key_create(&s.store_key, close_store) == 0;
    int header_s =
        o->header_timeout_s < o->request_timeout_s ? o->header_timeout_s : o->request_timeout_s;
    s.browser =
        (browser_policy){o->cors_origins, o->n_cors_origins, o->allowed_hosts, o->n_allowed_hosts};
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
    int n = o->store_url ? snprintf(s.store_url, sizeof s.store_url, "%s", o->store_url)
                         : snprintf(s.store_url, sizeof s.store_url, "%s/jobs.db", o->data_dir);
    if (n < 0 || (size_t)n >= sizeof s.store_url) {
        log_error("the job store's URL or path is too long (at most %zu bytes)",
                  sizeof s.store_url - 1);
        code = 2;
        goto out;
    }
    /* a database server holds the blobs too: any front end serves any job's
       images, and a worker elsewhere needs nothing but the URL */
    int blobs_in_store = store_holds_blobs(s.store_url);
    snprintf(blob_url, sizeof blob_url, "%s/results", o->data_dir);
    mkdir(o->data_dir, 0755);
    if (store_open(s.store_url, &own, &err) != GS_OK || store_check(own, &err) != GS_OK ||
        blob_open(blobs_in_store ? s.store_url : blob_url, &s.blobs, &err) != GS_OK) {
        log_error("%s", err.msg);
        goto out;
    }
    /* keys in the store: read once now, so a store whose keys cannot be read
       stops the server here rather than refusing every request */
    if (!(s.store_keys = api_keys_store_create()) ||
        api_keys_store_load(s.store_keys, own, server_now_ms(), &err) != GS_OK) {
        log_error("%s", s.store_keys ? err.msg : "out of memory");
        goto out;
    }
    if (!have_key || !(s.catalog = model_catalog_create()) || !(s.hub = hub_create()) ||
        !(s.a1111 = a1111_state_create()) || !(s.parking = parking_start()) ||
        !(s.guard = conn_guard_create(header_s * 1000, o->request_timeout_s * 1000)))
        goto out;
    if (store_watch_start(s.store_url, s.hub, &watch, &err) != GS_OK) {
        log_error("%s", err.msg);
        goto out;
    }
    raise_fd_limit(o->max_connections);
    if (gs_tokenizer_create(&s.tok) != GS_OK) {
        log_error("cannot create the prompt tokenizer: out of memory");
        goto out;
    }
    /* jobs that were running when a previous server died go back to the
       queue; not with a store shared by a fleet (one with notifications),
       where running jobs are other machines' and go back only when their
       leases run out */
    int rq = 0, fl = 0;
    if (!watch && store_expire_leases(own, INT64_MAX / 2, o->max_attempts, &rq, &fl, &err) != GS_OK)
        log_error("%s", err.msg);
    native_inputs_start(&s, own);
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_stop;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    signal(SIGPIPE, SIG_IGN);
    supervisor_options so = {.self_exe = o->self_exe,
                             .store_url = s.store_url,
                             .blob_url = blobs_in_store ? NULL : blob_url,
                             .models_dir = o->models_dir,
                             .lora_dir = o->limits.lora_dir,
                             .workers = o->workers,
                             .threads = o->worker_threads,
                             .precision = o->worker_precision,
                             .lease_ms = o->lease_ms,
                             .max_attempts = o->max_attempts,
                             .ram_budget = o->ram_budget,
                             .idle_unload_s = o->idle_unload_s,
                             .preload = o->preload,
                             .n_preload = o->n_preload,
                             .stop_grace_ms = o->stop_grace_s * 1000};
    if (!(s.sup = supervisor_start(&so, own, s.hub, &err))) {
        log_error("%s", err.msg);
        goto out;
    }
    /* a few event-loop threads, not a thread per connection: a slow or idle
       client costs a socket and a few KB; waiting requests park (park.h) */
    d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)o->http_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)o->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)o->max_per_ip,
        MHD_OPTION_NOTIFY_COMPLETED, request_done, &s, MHD_OPTION_NOTIFY_CONNECTION,
        conn_guard_notify, s.guard, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)o->request_timeout_s,
        MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL, MHD_OPTION_END);
    if (!d) {
        log_error("cannot listen on %s: %s", o->listen, strerror(errno));
        code = 4;
        goto out;
    }
    char where[96];
    snprintf(where, sizeof where, "%.*s:%d", (int)(strrchr(o->listen, ':') - o->listen), o->listen,
             bound_port(d));
    log_info("serving on http://%s (%d workers%s)", where, o->workers,
             s.keys.n || api_keys_store_any(s.store_keys) ? ", API keys required" : "");
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
        conn_guard_reap(s.guard, mono_ms());
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
    store_watch_stop(watch);
    parking_stop(s.parking); /* libmicrohttpd must not stop with a connection suspended */
    if (d)
        MHD_stop_daemon(d);
    conn_guard_free(s.guard);
    supervisor_stop(s.sup);
    store_close(own);
    blob_close(s.blobs);
    model_catalog_free(s.catalog);
    a1111_state_free(s.a1111);
    hub_free(s.hub);
    gs_tokenizer_free(s.tok);
    pthread_mutex_destroy(&s.submit_mu);
    if (have_key)
        pthread_key_delete(s.store_key);
    api_keys_free(&s.keys);
    api_keys_store_free(s.store_keys);
    if (code == 0)
        log_info("stopped");
    return code;
}
