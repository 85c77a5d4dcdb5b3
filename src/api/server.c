/* server - HTTP routes, request bodies with a cap, API keys, worker supervision. */
#include "api/server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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

#include "api/http_reply.h"
#include "api/model_catalog.h"
#include "api/server_private.h"
#include "queue/store.h"

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

/* ---- job views ---- */

json_t *job_image_urls(const char *id, const json_t *result)
{
    json_t *urls = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(result, "images"), i, v)
    {
        char url[128];
        snprintf(url, sizeof url, "/v1/jobs/%s/images/%d", id, (int)json_integer_value(v));
        json_array_append_new(urls, json_string(url));
    }
    return urls;
}

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
    json_object_set_new(j, "images", job_image_urls(r->id, result));
    json_object_set_new(j, "error", r->error ? json_string(r->error) : json_null());
    json_object_set_new(json_object_get(j, "progress"), "eta_s",
                        r->status == JOB_RUNNING && r->eta_s >= 0 ? json_real(r->eta_s)
                                                                  : json_null());
    json_t *timings = result ? json_object_get(result, "timings") : NULL;
    if (timings)
        json_object_set(j, "timings", timings);
    if (r->owner[0])
        json_object_set_new(j, "owner", json_string(r->owner));
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

/* Tells the idle workers that work arrived, so a job starts without waiting
   for their next look at the store. */
static void wake_workers(server *s)
{
    for (int k = 0; k < s->nw; k++)
        if (s->wake_w[k] >= 0 && write(s->wake_w[k], "j", 1) < 0 && errno != EAGAIN)
            continue; /* a full pipe already says it */
}

static enum MHD_Result post_job(server *s, struct MHD_Connection *c, const api_key *key,
                                const char *body, size_t len)
{
    job_error e;
    char *norm = NULL, model[256], id[JOB_ID_LEN + 1];
    double mps = 0;
    int prio = 0, pos = 0;
    if (job_params_validate(body, len, &s->o->limits, s->o->models_dir, &norm, model, sizeof model,
                            &mps, &prio, &e) != 0)
        return reply_error(c, e.http, e.code, e.message);
    gs_error err = {0};
    int active = 0, counts[5] = {0};
    char msg[160];
    pthread_mutex_lock(&s->mu);
    gs_status st = GS_OK;
    if (key && key->max_active > 0)
        st = store_active_count(s->store, key->name, &active, &err);
    if (st == GS_OK && s->o->max_queued > 0)
        st = store_counts(s->store, counts, &err);
    int over_key = key && key->max_active > 0 && active >= key->max_active;
    int over_all = s->o->max_queued > 0 && counts[JOB_QUEUED] >= s->o->max_queued;
    if (st == GS_OK && !over_key && !over_all)
        st = store_submit(s->store, key ? key->name : "", model, prio, norm, mps, server_now_ms(),
                          id, &pos, &err);
    pthread_mutex_unlock(&s->mu);
    free(norm);
    if (st != GS_OK)
        return reply_error(c, 503, "store_unavailable", err.msg);
    if (over_key) {
        snprintf(msg, sizeof msg, "this key already has %d queued or running jobs (its limit)",
                 active);
        return reply_error_with(c, 429, "too_many_jobs", msg, "Retry-After: 5");
    }
    if (over_all)
        return reply_error_with(c, 503, "queue_full", "the queue is full; try again later",
                                "Retry-After: 10");
    wake_workers(s);
    return reply_json(
        c, 202, json_pack("{s:s,s:s,s:i}", "id", id, "status", "queued", "queue_position", pos));
}

/* Reads job id into *r if the key may see it; otherwise queues the error
   response, sets *ret and returns -1. */
static int job_access(server *s, struct MHD_Connection *c, const api_key *key, const char *id,
                      job_record *r, enum MHD_Result *ret)
{
    gs_error err = {0};
    if (!id_ok(id)) {
        *ret = reply_error(c, 404, "not_found", "no such job");
        return -1;
    }
    pthread_mutex_lock(&s->mu);
    gs_status st = store_get(s->store, id, r, &err);
    pthread_mutex_unlock(&s->mu);
    if (st == GS_ERR_INVALID_ARGUMENT) {
        *ret = reply_error(c, 404, "not_found", "no such job");
        return -1;
    }
    if (st != GS_OK) {
        *ret = reply_error(c, 503, "store_unavailable", err.msg);
        return -1;
    }
    if (key && !key->admin && strcmp(r->owner, key->name) != 0) {
        job_record_clear(r);
        *ret = reply_error(c, 403, "forbidden", "the job belongs to another API key");
        return -1;
    }
    return 0;
}

/* job_access for a check only: 0 when the key may act on the job. */
static int job_allowed(server *s, struct MHD_Connection *c, const api_key *key, const char *id,
                       enum MHD_Result *ret)
{
    job_record r;
    if (job_access(s, c, key, id, &r, ret) != 0)
        return -1;
    job_record_clear(&r);
    return 0;
}

static enum MHD_Result get_job(server *s, struct MHD_Connection *c, const api_key *key,
                               const char *id)
{
    job_record r;
    enum MHD_Result ret;
    if (job_access(s, c, key, id, &r, &ret) != 0)
        return ret;
    json_t *j = job_view(&r);
    job_record_clear(&r);
    return reply_json(c, 200, j);
}

static enum MHD_Result cancel_job(server *s, struct MHD_Connection *c, const api_key *key,
                                  const char *id)
{
    gs_error err = {0};
    job_status status;
    enum MHD_Result ret;
    if (job_allowed(s, c, key, id, &ret) != 0)
        return ret;
    pthread_mutex_lock(&s->mu);
    gs_status st = store_cancel(s->store, id, server_now_ms(), &status, &err);
    pthread_mutex_unlock(&s->mu);
    if (st == GS_ERR_INVALID_ARGUMENT)
        return reply_error(c, 404, "not_found", "no such job");
    if (st != GS_OK)
        return reply_error(c, 503, "store_unavailable", err.msg);
    return reply_json(c, 200, json_pack("{s:s,s:s}", "id", id, "status", job_status_name(status)));
}

static enum MHD_Result get_image(server *s, struct MHD_Connection *c, const api_key *key,
                                 const char *id, const char *k)
{
    char *end;
    long idx = strtol(k, &end, 10);
    if (!id_ok(id) || *end || end == k || idx < 0 || idx > 1000)
        return reply_error(c, 404, "not_found", "no such image");
    enum MHD_Result ret;
    if (job_allowed(s, c, key, id, &ret) != 0)
        return ret;
    char path[8300];
    snprintf(path, sizeof path, "%s/%s-%ld.png", s->results_dir, id, idx);
    size_t n;
    unsigned char *buf = file_read(path, (size_t)1 << 30, &n);
    if (!buf)
        return access(path, F_OK) != 0 ? reply_error(c, 404, "not_found", "no such image")
                                       : reply_error(c, 500, "internal", "cannot read the image");
    return reply_bytes(c, 200, "image/png", buf, n, MHD_RESPMEM_MUST_FREE, NULL);
}

/* Model name -> JSON array of the live workers holding it loaded. A worker
   counts as gone when it has not reported for 3 leases (it reports every lease/3). */
static gs_status holders_by_model(server *s, json_t *holders, gs_error *err)
{
    worker_record *list = NULL;
    int n = 0;
    pthread_mutex_lock(&s->mu);
    gs_status st =
        store_workers_list(s->store, server_now_ms() - 3 * (int64_t)s->o->lease_ms, &list, &n, err);
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
        return reply_error(c, 503, "store_unavailable", err.msg);
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
    return reply_json(c, 200, json_pack("{s:o}", "models", arr));
}

static enum MHD_Result list_jobs(server *s, struct MHD_Connection *c, const api_key *key)
{
    const char *status = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status");
    const char *limit = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    int st_filter = -1;
    long max = 50;
    if (status && (st_filter = job_status_parse(status)) < 0)
        return reply_error(c, 400, "invalid_query",
                           "status must be queued, running, succeeded, failed or cancelled");
    if (limit) {
        char *end;
        max = strtol(limit, &end, 10);
        if (*end || end == limit || max < 1 || max > 1000)
            return reply_error(c, 400, "invalid_query", "limit must be in 1..1000");
    }
    job_record *list = NULL;
    int n = 0;
    gs_error err = {0};
    pthread_mutex_lock(&s->mu);
    gs_status st = store_list(s->store, st_filter, key && !key->admin ? key->name : NULL, (int)max,
                              &list, &n, &err);
    pthread_mutex_unlock(&s->mu);
    if (st != GS_OK)
        return reply_error(c, 503, "store_unavailable", err.msg);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, job_view(&list[i]));
    store_list_free(list, n);
    return reply_json(c, 200, json_pack("{s:o}", "jobs", arr));
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
        return reply_error(c, 503, "store_unavailable", err.msg);
    }
    json_t *by = json_object();
    for (int k = 0; k < 5; k++)
        json_object_set_new(by, job_status_name((job_status)k), json_integer(counts[k]));
    return reply_json(c, 200, json_pack("{s:o,s:o}", "by_status", by, "by_model", per_model));
}

/* Stats over the jobs that finished in the last window_s seconds. */
static int read_stats(server *s, long window_s, job_stats *js, int counts[5], gs_error *err)
{
    pthread_mutex_lock(&s->mu);
    gs_status st = store_stats(s->store, server_now_ms() - window_s * 1000, 100000, js, err);
    if (st == GS_OK)
        st = store_counts(s->store, counts, err);
    pthread_mutex_unlock(&s->mu);
    return st == GS_OK ? 0 : -1;
}

static json_t *percentile_view(const double v[3], int samples)
{
    return json_pack("{s:f,s:f,s:f,s:i}", "p50", v[0], "p90", v[1], "p99", v[2], "samples",
                     samples);
}

static enum MHD_Result get_stats(server *s, struct MHD_Connection *c)
{
    const char *w = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "window");
    long window = 3600;
    if (w) {
        char *end;
        window = strtol(w, &end, 10);
        if (*end || end == w || window < 1 || window > 30L * 24 * 3600)
            return reply_error(c, 400, "invalid_query", "window must be 1..2592000 seconds");
    }
    job_stats js;
    int counts[5];
    gs_error err = {0};
    if (read_stats(s, window, &js, counts, &err) != 0)
        return reply_error(c, 503, "store_unavailable", err.msg);
    /* rates over the part of the window the service has been working, so a
       fresh server does not report a tenth of its speed */
    double span = (double)window;
    if (js.first_start_ms) {
        double since = (double)(server_now_ms() - js.first_start_ms) / 1000.0;
        span = since < span ? since : span;
    }
    span = span < 1.0 ? 1.0 : span;
    json_t *j =
        json_pack("{s:I,s:{s:i,s:i,s:i},s:f,s:f,s:f,s:f}", "window_s", (json_int_t)window, "jobs",
                  "succeeded", js.succeeded, "failed", js.failed, "cancelled", js.cancelled,
                  "jobs_per_hour", js.succeeded * 3600.0 / span, "megapixelsteps",
                  js.megapixelsteps, "megapixelsteps_per_s", js.megapixelsteps / span,
                  "busy_megapixelsteps_per_s", js.busy_s > 0 ? js.megapixelsteps / js.busy_s : 0.0);
    json_object_set_new(j, "step_s", percentile_view(js.step_s, js.step_samples));
    json_object_set_new(j, "queue_wait_s", percentile_view(js.wait_s, js.wait_samples));
    json_object_set_new(
        j, "queue",
        json_pack("{s:i,s:i}", "queued", counts[JOB_QUEUED], "running", counts[JOB_RUNNING]));
    return reply_json(c, 200, j);
}

/* Prometheus text exposition: job counts, and step and wait quantiles over the last hour. */
static enum MHD_Result get_metrics(server *s, struct MHD_Connection *c)
{
    job_stats js;
    int counts[5];
    gs_error err = {0};
    if (read_stats(s, 3600, &js, counts, &err) != 0)
        return reply_error(c, 503, "store_unavailable", err.msg);
    size_t cap = 4096;
    char *buf = malloc(cap);
    if (!buf)
        return MHD_NO;
    size_t n = 0;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        int k_ = snprintf(buf + n, cap - n, __VA_ARGS__);                                          \
        if (k_ > 0 && (size_t)k_ < cap - n)                                                        \
            n += (size_t)k_;                                                                       \
    } while (0)
    EMIT("# HELP gesso_jobs Jobs in the store by status.\n# TYPE gesso_jobs gauge\n");
    for (int k = 0; k < 5; k++)
        EMIT("gesso_jobs{status=\"%s\"} %d\n", job_status_name((job_status)k), counts[k]);
    EMIT("# HELP gesso_step_seconds Sampler step time over the last hour.\n"
         "# TYPE gesso_step_seconds summary\n");
    static const char *const q[3] = {"0.5", "0.9", "0.99"};
    for (int k = 0; k < 3; k++)
        EMIT("gesso_step_seconds{quantile=\"%s\"} %.6f\n", q[k], js.step_s[k]);
    EMIT("gesso_step_seconds_count %d\n", js.step_samples);
    EMIT("# HELP gesso_queue_wait_seconds Submit-to-start time over the last hour.\n"
         "# TYPE gesso_queue_wait_seconds summary\n");
    for (int k = 0; k < 3; k++)
        EMIT("gesso_queue_wait_seconds{quantile=\"%s\"} %.6f\n", q[k], js.wait_s[k]);
    EMIT("gesso_queue_wait_seconds_count %d\n", js.wait_samples);
    EMIT("# HELP gesso_megapixelsteps_hour Megapixel-steps of jobs finished in the last hour.\n"
         "# TYPE gesso_megapixelsteps_hour gauge\ngesso_megapixelsteps_hour %.3f\n",
         js.megapixelsteps);
#undef EMIT
    return reply_bytes(c, 200, "text/plain; version=0.0.4", buf, n, MHD_RESPMEM_MUST_FREE, NULL);
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
        return reply_error(c, 413, "body_too_large", "the request body is larger than allowed");
    int get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0,
        del = strcmp(method, "DELETE") == 0;
    if (strcmp(url, "/healthz") == 0)
        return get ? reply_json(c, 200, json_pack("{s:s}", "status", "ok"))
                   : reply_error(c, 405, "method_not_allowed", "use GET");
    const api_key *key = NULL;
    if (s->keys.n > 0) {
        const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        key = api_keys_match(&s->keys, auth);
        if (!key)
            return reply_error_with(c, 401, auth ? "invalid_api_key" : "missing_api_key",
                                    auth ? "the API key is not valid"
                                         : "send an API key: Authorization: Bearer KEY",
                                    "WWW-Authenticate: Bearer realm=\"gesso\"");
    }
    if (strcmp(url, "/v1/models") == 0)
        return get ? list_models(s, c) : reply_error(c, 405, "method_not_allowed", "use GET");
    if (strcmp(url, "/v1/jobs") == 0) {
        if (get)
            return list_jobs(s, c, key);
        if (!post)
            return reply_error(c, 405, "method_not_allowed", "use GET or POST");
        return post_job(s, c, key, r->body ? r->body : "", r->len);
    }
    if (strcmp(url, "/v1/stats") == 0)
        return get ? get_stats(s, c) : reply_error(c, 405, "method_not_allowed", "use GET");
    if (strcmp(url, "/v1/queue") == 0)
        return get ? get_queue(s, c) : reply_error(c, 405, "method_not_allowed", "use GET");
    if (strcmp(url, "/metrics") == 0) {
        if (key && !key->admin)
            return reply_error(c, 403, "forbidden", "metrics need an admin key");
        return get ? get_metrics(s, c) : reply_error(c, 405, "method_not_allowed", "use GET");
    }
    if (strncmp(url, "/v1/jobs/", 9) == 0) {
        char id[64];
        const char *rest = url + 9, *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (n >= sizeof id)
            return reply_error(c, 404, "not_found", "no such job");
        memcpy(id, rest, n);
        id[n] = '\0';
        if (!slash) {
            if (get)
                return get_job(s, c, key, id);
            if (del)
                return cancel_job(s, c, key, id);
            return reply_error(c, 405, "method_not_allowed", "use GET or DELETE");
        }
        if (strncmp(slash, "/images/", 8) == 0) {
            if (!get)
                return reply_error(c, 405, "method_not_allowed", "use GET");
            return get_image(s, c, key, id, slash + 8);
        }
        if (strcmp(slash, "/events") == 0) {
            if (!get)
                return reply_error(c, 405, "method_not_allowed", "use GET");
            enum MHD_Result ret;
            if (job_allowed(s, c, key, id, &ret) != 0)
                return ret;
            return job_events(s, c, id);
        }
    }
    return reply_error(c, 404, "not_found", "no such endpoint");
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
    char name[32], lease[32], threads[32], budget[32], idle[32], wake[32];
    /* this worker's end of its wake pipe survives exec; every other end closes */
    fcntl(s->wake_r[k], F_SETFD, 0);
    snprintf(wake, sizeof wake, "%d", s->wake_r[k]);
    worker_name(k, getpid(), name, sizeof name);
    snprintf(lease, sizeof lease, "%d", s->o->lease_ms);
    snprintf(threads, sizeof threads, "%d", s->o->worker_threads);
    snprintf(budget, sizeof budget, "%zu", s->o->ram_budget);
    snprintf(idle, sizeof idle, "%d", s->o->idle_unload_s);
    const char *argv[32 + 2 * SERVE_MAX_PRELOAD];
    int n = 0;
    const char *fixed[] = {
        s->o->self_exe,  "worker",
        "--db",          s->db_path,
        "--models",      s->o->models_dir,
        "--results",     s->results_dir,
        "--name",        name,
        "--lease-ms",    lease,
        "--threads",     threads,
        "--idle-unload", idle,
        "--wake-fd",     wake,
        "--precision",   s->o->worker_precision ? s->o->worker_precision : "auto"};
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

/* Removes a purged job's images and preview. */
static void remove_job_files(void *user, const char *id)
{
    const server *s = user;
    char path[4200];
    for (int k = 0; k <= s->o->limits.max_batch; k++) {
        snprintf(path, sizeof path, "%s/%s-%d.png", s->results_dir, id, k);
        if (unlink(path) != 0 && errno == ENOENT && k > 0)
            break;
    }
    snprintf(path, sizeof path, "%s/%s.preview.png", s->results_dir, id);
    unlink(path);
}

static int open_wake_pipes(server *s)
{
    for (int k = 0; k < s->nw; k++) {
        int fd[2];
        if (pipe(fd) != 0)
            return -1;
        fcntl(fd[0], F_SETFD, FD_CLOEXEC);
        fcntl(fd[1], F_SETFD, FD_CLOEXEC);
        s->wake_r[k] = fd[0];
        s->wake_w[k] = fd[1];
        fcntl(fd[1], F_SETFL, O_NONBLOCK);
    }
    return 0;
}

int serve_run(const serve_options *o)
{
    server s = {0};
    s.o = o;
    s.stopping = &stopping;
    s.nw = o->workers < MAX_WORKERS ? o->workers : MAX_WORKERS;
    for (int k = 0; k < MAX_WORKERS; k++)
        s.wake_r[k] = s.wake_w[k] = -1;
    if (o->api_keys_path) {
        char msg[512];
        if (api_keys_load(o->api_keys_path, &s.keys, msg, sizeof msg) != 0) {
            fprintf(stderr, "gesso: %s\n", msg);
            return 2;
        }
    }
    if (open_wake_pipes(&s) != 0) {
        fprintf(stderr, "gesso: cannot make the workers' wake pipes: %s\n", strerror(errno));
        api_keys_free(&s.keys);
        return 3;
    }
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
    if (store_open(s.db_path, &s.store, &err) != GS_OK) {
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
    int nw = s.nw;
    for (int k = 0; k < nw; k++)
        workers[k] = start_worker(&s, k);

    /* a thread per connection: event streams wait on the store without
       holding up other clients */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, handle, &s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections, MHD_OPTION_NOTIFY_COMPLETED,
        request_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "gesso: cannot listen on %s: %s\n", o->listen, strerror(errno));
        for (int k = 0; k < nw; k++)
            kill(workers[k], SIGKILL);
        store_close(s.store);
        model_catalog_free(s.catalog);
        return 4;
    }
    fprintf(stderr, "gesso: serving on http://%s (%d workers%s)\n", o->listen, nw,
            s.keys.n ? ", API keys required" : "");
    int64_t next_purge = 0;
    while (!stopping) {
        usleep(200000);
        if (o->retention_ms > 0 && server_now_ms() >= next_purge) {
            int purged = 0;
            pthread_mutex_lock(&s.mu);
            store_purge(s.store, server_now_ms() - o->retention_ms, remove_job_files, &s, &purged,
                        &err);
            pthread_mutex_unlock(&s.mu);
            next_purge = server_now_ms() + 1000;
        }
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
        store_expire_leases(s.store, server_now_ms(), o->max_attempts, &rq, &fl, &err);
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
    for (int k = 0; k < nw; k++) {
        close(s.wake_r[k]);
        close(s.wake_w[k]);
    }
    api_keys_free(&s.keys);
    fprintf(stderr, "gesso: stopped\n");
    return 0;
}
