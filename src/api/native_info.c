/*
 * native_info - what the service knows about itself: models (and which
 * workers hold them), queue depth, statistics, Prometheus metrics, health.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/conn_guard.h"
#include "api/fleet_view.h"
#include "api/native.h"
#include "api/park.h"

/* Model name -> JSON array of the live workers holding it loaded (a gone
   worker, whose last report is older than its lease, holds nothing). */
static gs_status holders_by_model(server *s, json_t *holders, svc_error *err)
{
    fleet_view v;
    gs_status st = fleet_view_load(s, server_now_ms(), &v, err);
    if (st != GS_OK)
        return st;
    for (int i = 0; i < v.n; i++) {
        if (strcmp(v.w[i].state, "gone") == 0)
            continue;
        size_t k;
        json_t *m;
        json_array_foreach(v.w[i].loaded, k, m)
        {
            const char *name = json_string_value(m);
            if (!name)
                continue;
            json_t *names = json_object_get(holders, name);
            if (!names) {
                names = json_array();
                json_object_set_new(holders, name, names);
            }
            json_array_append_new(names, json_string(v.w[i].name));
        }
    }
    fleet_view_free(&v);
    return GS_OK;
}

enum MHD_Result native_list_models(http_request *r)
{
    server *s = r->s;
    svc_error err = {0};
    json_t *holders = json_object();
    if (holders_by_model(s, holders, &err) != GS_OK) {
        json_decref(holders);
        return http_error(r, 503, "store_unavailable", err.msg);
    }
    /* OpenAI's list shape rides along in "object" and "data", so OpenAI's
       SDKs (models.list()) and gesso's clients share the path */
    json_t *arr = json_array(), *openai = json_array();
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
        json_array_append_new(openai,
                              json_pack("{s:s,s:s,s:I,s:s}", "id", name, "object", "model",
                                        "created", (json_int_t)sb.st_mtime, "owned_by", "gesso"));
    }
    if (d)
        closedir(d);
    json_decref(holders);
    return http_reply_json(
        r, 200, json_pack("{s:o,s:s,s:o}", "models", arr, "object", "list", "data", openai), NULL);
}

typedef struct depth_ctx {
    json_t *per_model;
    const fleet_view *fleet;
} depth_ctx;

/* A model's queue, and whether any live worker has it: queued jobs of a
   model none has wait for a worker that has (waiting_for_model). */
static void add_depth(void *user, const char *model, int queued, int running)
{
    depth_ctx *c = user;
    int workers = fleet_view_workers_with(c->fleet, model);
    json_object_set_new(c->per_model, model,
                        json_pack("{s:i,s:i,s:i,s:b}", "queued", queued, "running", running,
                                  "workers", workers, "waiting_for_model",
                                  queued > 0 && workers == 0));
}

/* Whose jobs a reply may count: a key that is not an admin sees only its own. */
static const char *scope(const http_request *r)
{
    return r->key && !r->key->admin ? r->key->name : NULL;
}

enum MHD_Result native_get_queue(http_request *r)
{
    server *s = r->s;
    int counts[5];
    svc_error err = {0};
    json_t *per_model = json_object();
    fleet_view fleet = {0};
    depth_ctx ctx = {per_model, &fleet};
    job_store *store = server_store(s, &err);
    gs_status st = store ? store_counts(store, scope(r), counts, &err) : GS_ERR_IO;
    if (st == GS_OK)
        st = fleet_view_load(s, server_now_ms(), &fleet, &err);
    if (st == GS_OK)
        st = store_depth_by_model(store, scope(r), add_depth, &ctx, &err);
    fleet_view_free(&fleet);
    if (st != GS_OK) {
        json_decref(per_model);
        return http_error(r, 503, "store_unavailable", err.msg);
    }
    json_t *by = json_object();
    for (int k = 0; k < 5; k++)
        json_object_set_new(by, job_status_name((job_status)k), json_integer(counts[k]));
    return http_reply_json(r, 200, json_pack("{s:o,s:o}", "by_status", by, "by_model", per_model),
                           NULL);
}

/* Stats over the jobs that finished in the last window_s seconds. */
static int read_stats(server *s, const char *owner, long window_s, job_stats *js, int counts[5],
                      svc_error *err)
{
    job_store *store = server_store(s, err);
    gs_status st =
        store ? store_stats(store, owner, server_now_ms() - window_s * 1000, 100000, js, err)
              : GS_ERR_IO;
    if (st == GS_OK)
        st = store_counts(store, owner, counts, err);
    return st == GS_OK ? 0 : -1;
}

static json_t *percentile_view(const double v[3], int samples)
{
    return json_pack("{s:f,s:f,s:f,s:i}", "p50", v[0], "p90", v[1], "p99", v[2], "samples",
                     samples);
}

enum MHD_Result native_get_stats(http_request *r)
{
    server *s = r->s;
    const char *w = http_query(r, "window");
    long window = 3600;
    if (w) {
        char *end;
        window = strtol(w, &end, 10);
        if (*end || end == w || window < 1 || window > 30L * 24 * 3600)
            return http_error(r, 400, "invalid_query", "window must be 1..2592000 seconds");
    }
    job_stats js;
    int counts[5];
    svc_error err = {0};
    if (read_stats(s, scope(r), window, &js, counts, &err) != 0)
        return http_error(r, 503, "store_unavailable", err.msg);
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
    return http_reply_json(r, 200, j, NULL);
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void prom_label(const char *v, char *out, size_t cap)
{
    size_t k = 0;
    for (; *v && k + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') {
            out[k++] = '\\';
            out[k++] = *v;
        } else if (*v == '\n') {
            out[k++] = '\\';
            out[k++] = 'n';
        } else {
            out[k++] = *v;
        }
    }
    out[k] = '\0';
}

/* Prometheus text exposition: job counts, and step and wait quantiles over the last hour. */
enum MHD_Result native_get_metrics(http_request *r)
{
    server *s = r->s;
    job_stats js;
    int counts[5];
    svc_error err = {0};
    if (read_stats(s, NULL, 3600, &js, counts, &err) != 0)
        return http_error(r, 503, "store_unavailable", err.msg);
    size_t cap = 4096;
    char *buf = malloc(cap);
    if (!buf)
        return MHD_NO;
    size_t n = 0;
/* a line that does not fit grows the buffer and is written again (a fleet
   adds lines per worker); without memory it is left out */
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        int k_ = snprintf(buf + n, cap - n, __VA_ARGS__);                                          \
        if (k_ > 0 && (size_t)k_ >= cap - n) {                                                     \
            char *b_ = realloc(buf, cap + (size_t)k_ + 4096);                                      \
            if (b_) {                                                                              \
                buf = b_, cap += (size_t)k_ + 4096;                                                \
                k_ = snprintf(buf + n, cap - n, __VA_ARGS__);                                      \
            }                                                                                      \
        }                                                                                          \
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
    EMIT("# HELP gesso_event_waiters Event streams and waiting requests asleep on a job.\n"
         "# TYPE gesso_event_waiters gauge\ngesso_event_waiters %d\n",
         hub_subscribers(s->hub));
    EMIT("# HELP gesso_http_parked Connections parked until their job changes (no thread held).\n"
         "# TYPE gesso_http_parked gauge\ngesso_http_parked %d\n",
         parking_count(s->parking));
    fleet_view fleet;
    int64_t now = server_now_ms();
    if (fleet_view_load(s, now, &fleet, &err) == GS_OK) {
        /* per worker of the fleet, labelled with its name (unique across machines;
           at most 63 bytes, escaped at most twice as long) */
        char(*labels)[160] = calloc(fleet.n > 0 ? (size_t)fleet.n : 1, sizeof *labels);
        for (int i = 0; labels && i < fleet.n; i++)
            prom_label(fleet.w[i].name, labels[i], sizeof labels[i]);
        int nw = labels ? fleet.n : 0; /* without memory the per-worker lines are left out */
        EMIT(
            "# HELP gesso_worker_up 1 while the worker reports, 0 once its report is older than its"
            " lease.\n# TYPE gesso_worker_up gauge\n");
        for (int i = 0; i < nw; i++)
            EMIT("gesso_worker_up{worker=\"%s\"} %d\n", labels[i],
                 strcmp(fleet.w[i].state, "gone") != 0);
        EMIT("# HELP gesso_worker_busy 1 while the worker loads a model or runs a job.\n"
             "# TYPE gesso_worker_busy gauge\n");
        for (int i = 0; i < nw; i++)
            EMIT("gesso_worker_busy{worker=\"%s\"} %d\n", labels[i],
                 strcmp(fleet.w[i].state, "working") == 0 ||
                     strcmp(fleet.w[i].state, "loading") == 0);
        EMIT("# HELP gesso_worker_megapixelsteps_per_second The worker's speed in its last job.\n"
             "# TYPE gesso_worker_megapixelsteps_per_second gauge\n");
        for (int i = 0; i < nw; i++)
            EMIT("gesso_worker_megapixelsteps_per_second{worker=\"%s\"} %.4f\n", labels[i],
                 fleet.w[i].mps);
        EMIT("# HELP gesso_worker_heartbeat_age_seconds Time since the worker last reported.\n"
             "# TYPE gesso_worker_heartbeat_age_seconds gauge\n");
        for (int i = 0; i < nw; i++)
            EMIT("gesso_worker_heartbeat_age_seconds{worker=\"%s\"} %.3f\n", labels[i],
                 (double)(now - fleet.w[i].seen_ms) / 1000.0);
        free(labels);
        fleet_view_free(&fleet);
    }
    EMIT("# HELP gesso_http_cut_total Connections cut for not sending their request in time.\n"
         "# TYPE gesso_http_cut_total counter\ngesso_http_cut_total %ld\n",
         conn_guard_cut_total(s->guard));
    EMIT("# HELP gesso_http_body_bytes Bytes held for request bodies being received.\n"
         "# TYPE gesso_http_body_bytes gauge\ngesso_http_body_bytes %zu\n",
         (size_t)s->body_bytes);
#undef EMIT
    return http_reply_bytes(r, 200, "text/plain; version=0.0.4", buf, n, MHD_RESPMEM_MUST_FREE,
                            NULL);
}

enum MHD_Result native_healthz(http_request *r)
{
    return http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"), NULL);
}
