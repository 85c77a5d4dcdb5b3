/* server - HTTP routes, request bodies with a cap, worker supervision. */
#include "api/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/model_catalog.h"
#include "queue/store.h"

#define MAX_WORKERS 64

typedef struct server {
    const serve_options *o;
    job_store *store;
    model_catalog *catalog;
    pthread_mutex_t mu; /* guards store */
    char db_path[4096];
    char results_dir[4096];
} server;

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    job_limits_default(&o->limits);
}

/* ---- responses ---- */

static enum MHD_Result send_bytes(struct MHD_Connection *c, int status, const char *type,
                                  void *data, size_t n, enum MHD_ResponseMemoryMode mode)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(n, data, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, int status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text)
        return MHD_NO;
    return send_bytes(c, status, "application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result send_error(struct MHD_Connection *c, int status, const char *code,
                                  const char *message)
{
    return send_json(c, status,
                     json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message));
}

/* ---- job views ---- */

static json_t *job_view(const job_record *r)
{
    json_t *params = r->params ? json_loads(r->params, 0, NULL) : NULL;
    json_t *result = r->result ? json_loads(r->result, 0, NULL) : NULL;
    json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:i,s:f,s:{s:i,s:i}}", "id", r->id, "status",
                          job_status_name(r->status), "model", r->model, "priority", r->priority,
                          "attempts", r->attempts, "megapixelsteps", r->megapixelsteps, "progress",
                          "step", r->step, "steps", r->steps);
    json_object_set_new(j, "created_ms", json_integer(r->created_ms));
    json_object_set_new(j, "started_ms", r->started_ms ? json_integer(r->started_ms) : json_null());
    json_object_set_new(j, "finished_ms",
                        r->finished_ms ? json_integer(r->finished_ms) : json_null());
    json_t *seed = params ? json_object_get(params, "seed") : NULL;
    json_object_set(j, "seed", seed ? seed : json_null());
    json_t *urls = json_array();
    json_t *imgs = result ? json_object_get(result, "images") : NULL;
    size_t i;
    json_t *v;
    json_array_foreach(imgs, i, v)
    {
        char url[128];
        snprintf(url, sizeof url, "/v1/jobs/%s/images/%d", r->id, (int)json_integer_value(v));
        json_array_append_new(urls, json_string(url));
    }
    json_object_set_new(j, "images", urls);
    json_object_set_new(j, "error", r->error ? json_string(r->error) : json_null());
    json_decref(params);
    json_decref(result);
    return j;
}

/* ---- routes ---- */

static int id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n != JOB_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') || s[i] == '-'))
            return 0;
    return 1;
}

static enum MHD_Result post_job(server *s, struct MHD_Connection *c, const char *body, size_t len)
{
    job_error e;
    char *norm = NULL, model[256], id[JOB_ID_LEN + 1];
    double mps = 0;
    int prio = 0, pos = 0;
    if (job_params_validate(body, len, &s->o->limits, s->o->models_dir, &norm, model, sizeof model,
                            &mps, &prio, &e) != 0)
        return send_error(c, e.http, e.code, e.message);
    gs_error err = {0};
    pthread_mutex_lock(&s->mu);
    gs_status st = store_submit(s->store, "", model, prio, norm, mps, now_ms(), id, &pos, &err);
    pthread_mutex_unlock(&s->mu);
    free(norm);
    if (st != GS_OK)
        return send_error(c, 503, "store_unavailable", err.msg);
    return send_json(
        c, 202, json_pack("{s:s,s:s,s:i}", "id", id, "status", "queued", "queue_position", pos));
}

static enum MHD_Result get_job(server *s, struct MHD_Connection *c, const char *id)
{
    job_record r;
    gs_error err = {0};
    if (!id_ok(id))
        return send_error(c, 404, "not_found", "no such job");
    pthread_mutex_lock(&s->mu);
    gs_status st = store_get(s->store, id, &r, &err);
    pthread_mutex_unlock(&s->mu);
    if (st == GS_ERR_INVALID_ARGUMENT)
        return send_error(c, 404, "not_found", "no such job");
    if (st != GS_OK)
        return send_error(c, 503, "store_unavailable", err.msg);
    json_t *j = job_view(&r);
    job_record_clear(&r);
    return send_json(c, 200, j);
}

static enum MHD_Result cancel_job(server *s, struct MHD_Connection *c, const char *id)
{
    gs_error err = {0};
    job_status status;
    if (!id_ok(id))
        return send_error(c, 404, "not_found", "no such job");
    pthread_mutex_lock(&s->mu);
    gs_status st = store_cancel(s->store, id, now_ms(), &status, &err);
    pthread_mutex_unlock(&s->mu);
    if (st == GS_ERR_INVALID_ARGUMENT)
        return send_error(c, 404, "not_found", "no such job");
    if (st != GS_OK)
        return send_error(c, 503, "store_unavailable", err.msg);
    return send_json(c, 200, json_pack("{s:s,s:s}", "id", id, "status", job_status_name(status)));
}

static enum MHD_Result get_image(server *s, struct MHD_Connection *c, const char *id, const char *k)
{
    char *end;
    long idx = strtol(k, &end, 10);
    if (!id_ok(id) || *end || end == k || idx < 0 || idx > 1000)
        return send_error(c, 404, "not_found", "no such image");
    char path[8300];
    snprintf(path, sizeof path, "%s/%s-%ld.png", s->results_dir, id, idx);
    FILE *f = fopen(path, "rb");
    if (!f)
        return send_error(c, 404, "not_found", "no such image");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return send_error(c, 500, "internal", "cannot read the image");
    }
    fclose(f);
    return send_bytes(c, 200, "image/png", buf, (size_t)n, MHD_RESPMEM_MUST_FREE);
}

/* Model name -> JSON array of the live workers holding it loaded. A worker
   counts as gone when it has not reported for 3 leases (it reports every lease/3). */
static gs_status holders_by_model(server *s, json_t *holders, gs_error *err)
{
    worker_record *list = NULL;
    int n = 0;
    pthread_mutex_lock(&s->mu);
    gs_status st =
        store_workers_list(s->store, now_ms() - 3 * (int64_t)s->o->lease_ms, &list, &n, err);
    pthread_mutex_unlock(&s->mu);
    if (st != GS_OK)
        return st;
    for (int i = 0; i < n; i++) {
        json_t *models = json_loads(list[i].models, 0, NULL);
        size_t k;
        json_t *m;
        json_array_foreach(models, k, m)
        {
            const char *name = json_string_value(m);
            if (!name)
                continue;
            json_t *names = json_object_get(holders, name);
            if (!names) {
                names = json_array();
                json_object_set_new(holders, name, names);
            }
            json_array_append_new(names, json_string(list[i].name));
        }
        json_decref(models);
    }
    store_workers_free(list, n);
    return GS_OK;
}

static enum MHD_Result list_models(server *s, struct MHD_Connection *c)
{
    gs_error err = {0};
    json_t *holders = json_object();
    if (holders_by_model(s, holders, &err) != GS_OK) {
        json_decref(holders);
        return send_error(c, 503, "store_unavailable", err.msg);
    }
    json_t *arr = json_array();
    DIR *d = opendir(s->o->models_dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 12 || strcmp(de->d_name + n - 12, ".safetensors") != 0)
            continue;
        char path[8300], name[256];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", s->o->models_dir, de->d_name);
        if (n - 12 >= sizeof name || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        memcpy(name, de->d_name, n - 12);
        name[n - 12] = '\0';
        model_facts f;
        model_catalog_facts(s->catalog, name, path, &sb, &f);
        json_t *workers = json_object_get(holders, name);
        json_t *m = json_pack("{s:s,s:s,s:o,s:I,s:b}", "name", name, "family", f.family, "dtype",
                              f.dtype[0] ? json_string(f.dtype) : json_null(), "size",
                              (json_int_t)sb.st_size, "loaded", workers != NULL);
        json_object_set_new(m, "workers", workers ? json_incref(workers) : json_array());
        json_array_append_new(arr, m);
    }
    if (d)
        closedir(d);
    json_decref(holders);
    return send_json(c, 200, json_pack("{s:o}", "models", arr));
}

static enum MHD_Result list_jobs(server *s, struct MHD_Connection *c)
{
    const char *status = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
    const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    int st_filter = -1;
    long max = 50;
    if (status && (st_filter = job_status_parse(status)) < 0)
        return send_error(c, 400, "invalid_query",
                          "status must be queued, running, succeeded, failed or cancelled");
    if (limit) {
        char *end;
        max = strtol(limit, &end, 10);
        if (*end || end == limit || max < 1 || max > 1000)
            return send_error(c, 400, "invalid_query", "limit must be in 1..1000");
    }
    job_record *list = NULL;
    int n = 0;
    gs_error err = {0};
    pthread_mutex_lock(&s->mu);
    gs_status st = store_list(s->store, st_filter, (int)max, &list, &n, &err);
    pthread_mutex_unlock(&s->mu);
    if (st != GS_OK)
        return send_error(c, 503, "store_unavailable", err.msg);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, job_view(&list[i]));
    store_list_free(list, n);
    return send_json(c, 200, json_pack("{s:o}", "jobs", arr));
}

static void add_depth(void *user, const char *model, int queued, int running)
{
    json_object_set_new(user, model, json_pack("{s:i,s:i}", "queued", queued, "running", running));
}

static enum MHD_Result get_queue(server *s, struct MHD_Connection *c)
{
    int counts[5];
    gs_error err = {0};
    json_t *per_model = json_object();
    pthread_mutex_lock(&s->mu);
    gs_status st = store_counts(s->store, counts, &err);
    if (st == GS_OK)
        st = store_depth_by_model(s->store, add_depth, per_model, &err);
    pthread_mutex_unlock(&s->mu);
    if (st != GS_OK) {
        json_decref(per_model);
        return send_error(c, 503, "store_unavailable", err.msg);
    }
    json_t *by = json_object();
    for (int k = 0; k < 5; k++)
        json_object_set_new(by, job_status_name((job_status)k), json_integer(counts[k]));
    return send_json(c, 200, json_pack("{s:o,s:o}", "by_status", by, "by_model", per_model));
}

/* Prometheus text exposition of the job counts. */
static enum MHD_Result get_metrics(server *s, struct MHD_Connection *c)
{
    int counts[5];
    gs_error err = {0};
    pthread_mutex_lock(&s->mu);
    gs_status st = store_counts(s->store, counts, &err);
    pthread_mutex_unlock(&s->mu);
    if (st != GS_OK)
        return send_error(c, 503, "store_unavailable", err.msg);
    char *buf = malloc(1024);
    if (!buf)
        return MHD_NO;
    int n = snprintf(buf, 1024,
                     "# HELP gesso_jobs Jobs in the store by status.\n"
                     "# TYPE gesso_jobs gauge\n");
    for (int k = 0; k < 5 && n < 1024; k++)
        n += snprintf(buf + n, 1024 - (size_t)n, "gesso_jobs{status=\"%s\"} %d\n",
                      job_status_name((job_status)k), counts[k]);
    return send_bytes(c, 200, "text/plain; version=0.0.4", buf, strlen(buf), MHD_RESPMEM_MUST_FREE);
}

/* ---- request dispatch ---- */

typedef struct request {
    char *body;
    size_t len, cap;
    int too_big;
} request;

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    request *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
    }
    *con_cls = NULL;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    server *s = cls;
    request *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->too_big || r->len + *upload_size > s->o->max_body) {
            r->too_big = 1;
        } else {
            if (r->len + *upload_size + 1 > r->cap) {
                size_t cap = (r->len + *upload_size + 1) * 2;
                char *b = realloc(r->body, cap);
                if (!b)
                    return MHD_NO;
                r->body = b;
                r->cap = cap;
            }
            memcpy(r->body + r->len, upload, *upload_size);
            r->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->too_big)
        return send_error(c, 413, "body_too_large", "the request body is larger than allowed");
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
        del = strcmp(method, "DELETE") == 0;
    if (strcmp(url, "/healthz") == 0)
        return get ? send_json(c, 200, json_pack("{s:s}", "status", "ok"))
                   : send_error(c, 405, "method_not_allowed", "use GET");
    if (strcmp(url, "/v1/models") == 0)
        return get ? list_models(s, c) : send_error(c, 405, "method_not_allowed", "use GET");
    if (strcmp(url, "/v1/jobs") == 0) {
        if (get)
            return list_jobs(s, c);
        if (!post)
            return send_error(c, 405, "method_not_allowed", "use GET or POST");
        return post_job(s, c, r->body ? r->body : "", r->len);
    }
    if (strcmp(url, "/v1/queue") == 0)
        return get ? get_queue(s, c) : send_error(c, 405, "method_not_allowed", "use GET");
    if (strcmp(url, "/metrics") == 0)
        return get ? get_metrics(s, c) : send_error(c, 405, "method_not_allowed", "use GET");
    if (strncmp(url, "/v1/jobs/", 9) == 0) {
        char id[64];
        const char *rest = url + 9, *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (n >= sizeof id)
            return send_error(c, 404, "not_found", "no such job");
        memcpy(id, rest, n);
        id[n] = '\0';
        if (!slash) {
            if (get)
                return get_job(s, c, id);
            if (del)
                return cancel_job(s, c, id);
            return send_error(c, 405, "method_not_allowed", "use GET or DELETE");
        }
        if (strncmp(slash, "/images/", 8) == 0) {
            if (!get)
                return send_error(c, 405, "method_not_allowed", "use GET");
            return get_image(s, c, id, slash + 8);
        }
    }
    return send_error(c, 404, "not_found", "no such endpoint");
}

/* ---- workers ---- */

/* Worker k's name in the store: unique per process, so a restarted worker
   never inherits its predecessor's jobs or workers row. */
static void worker_name(int k, pid_t pid, char *buf, size_t size)
{
    snprintf(buf, size, "w%d-%d", k, (int)pid);
}

static pid_t start_worker(const server *s, int k)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    char name[32], lease[32], threads[32], budget[32], idle[32];
    worker_name(k, getpid(), name, sizeof name);
    snprintf(lease, sizeof lease, "%d", s->o->lease_ms);
    snprintf(threads, sizeof threads, "%d", s->o->worker_threads);
    snprintf(budget, sizeof budget, "%zu", s->o->ram_budget);
    snprintf(idle, sizeof idle, "%d", s->o->idle_unload_s);
    const char *argv[20 + 2 * SERVE_MAX_PRELOAD];
    int n = 0;
    const char *fixed[] = {
        s->o->self_exe, "worker",       "--db",          s->db_path, "--models",   s->o->models_dir,
        "--results",    s->results_dir, "--name",        name,       "--lease-ms", lease,
        "--threads",    threads,        "--idle-unload", idle};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = fixed[i];
    if (s->o->ram_budget) {
        argv[n++] = "--ram-budget";
        argv[n++] = budget;
    }
    for (int i = 0; i < s->o->n_preload && i < SERVE_MAX_PRELOAD; i++) {
        argv[n++] = "--preload";
        argv[n++] = s->o->preload[i];
    }
    argv[n] = NULL;
    execv(s->o->self_exe, (char *const *)argv);
    _exit(127);
}

/* Every --preload model must be a checkpoint in the models directory. */
static int check_preload(const serve_options *o)
{
    for (int i = 0; i < o->n_preload; i++) {
        char path[8300];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s.safetensors", o->models_dir, o->preload[i]);
        if (!job_model_name_ok(o->preload[i]) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            fprintf(stderr, "gesso: --preload %s: no model named '%s' (no %s)\n", o->preload[i],
                    o->preload[i], path);
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
    if (*end || port < 1 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int serve_run(const serve_options *o)
{
    server s = {0};
    s.o = o;
    pthread_mutex_init(&s.mu, NULL);
    struct sockaddr_in sa;
    if (parse_listen(o->listen, &sa) != 0) {
        fprintf(stderr, "gesso: --listen '%s' is not IPv4-ADDRESS:PORT\n", o->listen);
        return 2;
    }
    if (check_preload(o) != 0)
        return 2;
    snprintf(s.db_path, sizeof s.db_path, "%s/jobs.db", o->data_dir);
    snprintf(s.results_dir, sizeof s.results_dir, "%s/results", o->data_dir);
    mkdir(o->data_dir, 0755);
    mkdir(s.results_dir, 0755);
    gs_error err = {0};
    if (store_open_sqlite(s.db_path, &s.store, &err) != GS_OK) {
        fprintf(stderr, "gesso: %s\n", err.msg);
        return 3;
    }
    if (!(s.catalog = model_catalog_create())) {
        store_close(s.store);
        return 3;
    }
    /* jobs that were running when a previous server died go back to the queue */
    int rq = 0, fl = 0;
    store_expire_leases(s.store, INT64_MAX / 2, o->max_attempts, &rq, &fl, &err);
    struct sigaction act;
    memset(&act, 0, sizeof act);
    act.sa_handler = on_stop;
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);
    signal(SIGPIPE, SIG_IGN);

    pid_t workers[MAX_WORKERS] = {0};
    int nw = o->workers < MAX_WORKERS ? o->workers : MAX_WORKERS;
    for (int k = 0; k < nw; k++)
        workers[k] = start_worker(&s, k);

    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle,
                         &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                         MHD_OPTION_THREAD_POOL_SIZE, 4, MHD_OPTION_NOTIFY_COMPLETED, request_done,
                         NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "gesso: cannot listen on %s: %s\n", o->listen, strerror(errno));
        for (int k = 0; k < nw; k++)
            kill(workers[k], SIGKILL);
        store_close(s.store);
        model_catalog_free(s.catalog);
        return 4;
    }
    fprintf(stderr, "gesso: serving on http://%s (%d workers)\n", o->listen, nw);
    while (!stopping) {
        usleep(200000);
        for (int k = 0; k < nw; k++) {
            int status;
            if (workers[k] > 0 && waitpid(workers[k], &status, WNOHANG) == workers[k]) {
                char name[32];
                worker_name(k, workers[k], name, sizeof name);
                pthread_mutex_lock(&s.mu); /* it holds no models any more */
                store_worker_remove(s.store, name, &err);
                pthread_mutex_unlock(&s.mu);
                workers[k] = start_worker(&s, k); /* its job's lease will expire */
            }
        }
        pthread_mutex_lock(&s.mu);
        store_expire_leases(s.store, now_ms(), o->max_attempts, &rq, &fl, &err);
        pthread_mutex_unlock(&s.mu);
    }
    MHD_stop_daemon(d);
    for (int k = 0; k < nw; k++)
        if (workers[k] > 0)
            kill(workers[k], SIGTERM);
    for (int k = 0; k < nw; k++)
        if (workers[k] > 0)
            waitpid(workers[k], NULL, 0);
    store_close(s.store);
    model_catalog_free(s.catalog);
    pthread_mutex_destroy(&s.mu);
    fprintf(stderr, "gesso: stopped\n");
    return 0;
}
