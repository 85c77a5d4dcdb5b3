/*
 * native - gesso's own HTTP API, /v1: the route table (the index of every
 * endpoint) and the error shape {"error":{"code","message"[,"field"]}}.
 * docs/api.md documents each route.
 */
#include "api/native.h"

#include <string.h>

#include "api/lora_list.h"
#include "api/protocols.h"

static enum MHD_Result native_error(http_request *r, int status, const char *code,
                                    const char *message, const char *extra_header)
{
    return http_reply_json(r, status,
                           json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message),
                           extra_header);
}

static const route routes[] = {
    {"POST", "/v1/jobs", AUTH_KEY, native_post_job, ROUTE_UPLOAD},
    {"GET", "/v1/jobs", AUTH_KEY, native_list_jobs, 0},
    {"GET", "/v1/jobs/{id}", AUTH_KEY, native_get_job, 0},
    {"DELETE", "/v1/jobs/{id}", AUTH_KEY, native_cancel_job, 0},
    {"GET", "/v1/jobs/{id}/events", AUTH_KEY, native_job_events, 0},
    {"GET", "/v1/jobs/{id}/images/{k}", AUTH_KEY, native_get_image, 0},
    {"GET", "/v1/models", AUTH_KEY, native_list_models, 0},
    {"GET", "/v1/loras", AUTH_KEY, native_list_loras, 0},
    {"GET", "/v1/queue", AUTH_KEY, native_get_queue, 0},
    {"GET", "/v1/workers", AUTH_KEY, native_list_workers, 0},
    {"GET", "/v1/stats", AUTH_KEY, native_get_stats, 0},
    {"GET", "/metrics", AUTH_ADMIN, native_get_metrics, 0},
    {"GET", "/healthz", AUTH_PUBLIC, native_healthz, 0},
};

const protocol native_protocol = {.name = "native",
                                  .routes = routes,
                                  .n_routes = sizeof routes / sizeof routes[0],
                                  .error = native_error,
                                  .prefix = "/v1/"};

int native_spec_status(job_reason reason)
{
    switch (reason) {
    case JOB_ERR_INVALID_JSON:
    case JOB_ERR_UNKNOWN_FIELD:
    case JOB_ERR_MISSING_FIELD:
    case JOB_ERR_WRONG_TYPE: return 400;
    case JOB_ERR_NO_MEMORY: return 500;
    default: return 422;
    }
}

char *native_dumps_with_seed(json_t *o, const json_int_literal *seed)
{
    uint64_t v;
    if (json_int_literal_u64(seed, &v))
        return json_u64_dumps(o, HTTP_JSON_FLAGS, "seed", v);
    json_object_set_new(o, "seed", json_null());
    return json_dumps(o, HTTP_JSON_FLAGS);
}

json_t *native_image_urls(const char *id, const json_t *result)
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

int native_job_access(http_request *r, const char *id, job_record *out, enum MHD_Result *ret)
{
    server *s = r->s;
    svc_error err = {0};
    if (!job_id_ok(id)) {
        *ret = http_error(r, 404, "not_found", "no such job");
        return -1;
    }
    job_store *store = server_store(s, &err);
    gs_status st = store ? store_get(store, id, out, &err) : GS_ERR_IO;
    if (st == GS_ERR_INVALID_ARGUMENT) {
        *ret = http_error(r, 404, "not_found", "no such job");
        return -1;
    }
    if (st != GS_OK) {
        *ret = http_error(r, 503, "store_unavailable", err.msg);
        return -1;
    }
    if (r->key && !r->key->admin && strcmp(out->owner, r->key->name) != 0) {
        job_record_clear(out);
        *ret = http_error(r, 403, "forbidden", "the job belongs to another API key");
        return -1;
    }
    return 0;
}

int native_job_allowed(http_request *r, const char *id, enum MHD_Result *ret)
{
    job_record rec;
    if (native_job_access(r, id, &rec, ret) != 0)
        return -1;
    job_record_clear(&rec);
    return 0;
}
