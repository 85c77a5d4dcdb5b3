/*
 * native_jobs - /v1/jobs: submit (a job_spec from the body), read (optionally
 * waiting for the end on the event hub), cancel, list, and the result images
 * from the blob store.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/fleet_view.h"
#include "api/image_format.h"
#include "api/native.h"
#include "api/job_submit.h"
#include "api/park.h"
#include "job/job_spec.h"

#define MAX_WAIT_S 600 /* ?wait= upper bound: a proxy's idle timeout is rarely longer */

/* A job as GET /v1/jobs shows it, as reply text (NULL when out of memory);
   fleet (NULL: not read) says whether a queued job waits for a worker that
   has its model. */
static char *job_view(const job_record *r, const fleet_view *fleet)
{
    json_int_literal seed = {0};
    json_t *params =
        r->params ? json_u64_loadb(r->params, strlen(r->params), 0, "seed", &seed, NULL) : NULL;
    json_t *result =
        r->result ? json_u64_loadb(r->result, strlen(r->result), 0, NULL, NULL, NULL) : NULL;
    json_t *j = json_pack("{s:s,s:s,s:s,s:i,s:i,s:f,s:{s:i,s:i}}", "id", r->id, "status",
                          job_status_name(r->status), "model", r->model, "priority", r->priority,
                          "attempts", r->attempts, "megapixelsteps", r->megapixelsteps, "progress",
                          "step", r->step, "steps", r->steps);
    json_object_set_new(j, "created_ms", json_integer(r->created_ms));
    json_object_set_new(j, "started_ms", r->started_ms ? json_integer(r->started_ms) : json_null());
    json_object_set_new(j, "finished_ms",
                        r->finished_ms ? json_integer(r->finished_ms) : json_null());
    json_object_set_new(j, "images", native_image_urls(r->id, result));
    json_object_set_new(j, "error", r->error ? json_string(r->error) : json_null());
    json_object_set_new(json_object_get(j, "progress"), "eta_s",
                        r->status == JOB_RUNNING && r->eta_s >= 0 ? json_real(r->eta_s)
                                                                  : json_null());
    json_t *timings = result ? json_object_get(result, "timings") : NULL;
    if (timings)
        json_object_set(j, "timings", timings);
    if (r->owner[0])
        json_object_set_new(j, "owner", json_string(r->owner));
    /* the worker that runs it, or ran it last */
    json_object_set_new(j, "worker", r->worker[0] ? json_string(r->worker) : json_null());
    json_object_set_new(j, "waiting_for_model",
                        json_boolean(r->status == JOB_QUEUED && fleet &&
                                     fleet_view_workers_with(fleet, r->model) == 0));
    if (json_is_object(params)) {
        /* the job's settings as stored; the seed is the view's own "seed"
           (exact past int64), an input image its size, not its bytes */
        json_object_del(params, "seed");
        const char *const images[] = {"init_image", "mask"};
        for (int k = 0; k < 2; k++) {
            json_t *img = json_object_get(params, images[k]);
            if (json_is_string(img))
                json_object_set_new(
                    params, images[k],
                    json_pack("{s:I}", "base64_bytes", (json_int_t)json_string_length(img)));
        }
        json_object_set(j, "params", params);
    }
    json_decref(params);
    json_decref(result);
    char *text = j ? native_dumps_with_seed(j, &seed) : NULL;
    json_decref(j);
    return text;
}

/* {"jobs":[view,...]} as reply text (NULL when out of memory). */
static char *job_list_text(const job_record *list, int n, const fleet_view *fleet)
{
    char **views = calloc((size_t)n + 1, sizeof *views);
    size_t size = sizeof "{\"jobs\":[]}" + (size_t)n;
    int ok = views != NULL;
    for (int i = 0; ok && i < n; i++) {
        ok = (views[i] = job_view(&list[i], fleet)) != NULL;
        size += ok ? strlen(views[i]) : 0;
    }
    char *text = ok ? malloc(size) : NULL;
    if (text) {
        size_t k = (size_t)snprintf(text, size, "{\"jobs\":[");
        for (int i = 0; i < n; i++)
            k += (size_t)snprintf(text + k, size - k, "%s%s", i ? "," : "", views[i]);
        snprintf(text + k, size - k, "]}");
    }
    for (int i = 0; views && i < n; i++)
        free(views[i]);
    free(views);
    return text;
}

/* A refused spec: the native error shape plus the field it is about. */
static enum MHD_Result spec_error(http_request *r, const job_error *e)
{
    json_t *err = json_pack("{s:s,s:s}", "code", job_reason_code(e->reason), "message", e->message);
    if (e->field[0])
        json_object_set_new(err, "field", json_string(e->field));
    return http_reply_json(r, native_spec_status(e->reason), json_pack("{s:o}", "error", err),
                           NULL);
}

/* Reads, checks and normalises the body into spec. */
static int spec_from_body(http_request *r, job_spec *spec, job_error *e)
{
    if (job_spec_init(spec) != 0) {
        *e = (job_error){.reason = JOB_ERR_NO_MEMORY, .message = "out of memory"};
        return -1;
    }
    if (job_spec_from_json(spec, r->body, r->body_len, &r->s->o->limits, e) != 0)
        return -1;
    return job_submit_check(r, spec, e);
}

enum MHD_Result native_post_job(http_request *r)
{
    job_spec spec;
    job_error e;
    char id[JOB_ID_LEN + 1];
    int pos = 0;
    enum MHD_Result refused;
    if (spec_from_body(r, &spec, &e) != 0) {
        job_spec_clear(&spec);
        return spec_error(r, &e);
    }
    int rc = job_submit(r, &spec, id, &pos, &refused);
    job_spec_clear(&spec);
    if (rc != 0)
        return refused;
    return http_reply_json(
        r, 202, json_pack("{s:s,s:s,s:i}", "id", id, "status", "queued", "queue_position", pos),
        NULL);
}

/* ?wait=S: seconds to wait for the job to finish before answering (0: don't). */
static int wait_arg(http_request *r, int *wait_s)
{
    const char *w = http_query(r, "wait");
    *wait_s = 0;
    if (!w)
        return 0;
    char *end;
    long v = strtol(w, &end, 10);
    if (*end || end == w || v < 0 || v > MAX_WAIT_S)
        return -1;
    *wait_s = (int)v;
    return 0;
}

/* Called again after each wake-up while it waits: r->park holds the wait. */
enum MHD_Result native_get_job(http_request *r)
{
    server *s = r->s;
    const char *id = r->params[0];
    if (!r->park) {
        int wait_s;
        if (wait_arg(r, &wait_s) != 0)
            return http_error(r, 400, "invalid_query", "wait must be 0..600 seconds");
        /* parked before the first read, so a change in between still wakes us */
        if (wait_s > 0 && job_id_ok(id) && !(r->park = park_create(s->parking, s->hub, r->c, id)))
            return MHD_NO;
        r->wait_until_ms = server_now_ms() + (int64_t)wait_s * 1000;
    }
    job_record rec;
    enum MHD_Result ret;
    for (;;) {
        if (native_job_access(r, id, &rec, &ret) != 0)
            return ret;
        int64_t left = r->wait_until_ms - server_now_ms();
        if (!r->park || rec.status >= JOB_SUCCEEDED || left <= 0 || *s->stopping)
            break;
        job_record_clear(&rec);
        if (park_sleep(r->park, (int)left) == 0)
            return MHD_YES; /* suspended: libmicrohttpd calls again on news or at the deadline */
    }
    /* only a queued job needs the fleet read (an extra query) */
    fleet_view fleet = {0};
    svc_error err = {0};
    int have_fleet =
        rec.status == JOB_QUEUED && fleet_view_load(s, server_now_ms(), &fleet, &err) == GS_OK;
    char *view = job_view(&rec, have_fleet ? &fleet : NULL);
    fleet_view_free(&fleet);
    job_record_clear(&rec);
    return http_reply_json_text(r, 200, view, NULL);
}

enum MHD_Result native_cancel_job(http_request *r)
{
    server *s = r->s;
    const char *id = r->params[0];
    enum MHD_Result ret;
    if (native_job_allowed(r, id, &ret) != 0)
        return ret;
    svc_error err = {0};
    job_status status;
    job_store *store = server_store(s, &err);
    gs_status st = store ? store_cancel(store, id, server_now_ms(), &status, &err) : GS_ERR_IO;
    if (st == GS_ERR_INVALID_ARGUMENT)
        return http_error(r, 404, "not_found", "no such job");
    if (st != GS_OK)
        return http_error(r, 503, "store_unavailable", err.msg);
    hub_publish(s->hub, id);
    hub_publish_queue(s->hub);
    return http_reply_json(
        r, 200, json_pack("{s:s,s:s}", "id", id, "status", job_status_name(status)), NULL);
}

enum MHD_Result native_get_image(http_request *r)
{
    const char *id = r->params[0], *k = r->params[1];
    /* one spelling per image: digits only, no sign, no leading zero */
    int canonical = k[0] >= '0' && k[0] <= '9' && (k[0] != '0' || k[1] == '\0');
    for (const char *p = k; canonical && *p; p++)
        canonical = *p >= '0' && *p <= '9';
    long idx = canonical && strlen(k) < 4 ? strtol(k, NULL, 10) : -1;
    if (!job_id_ok(id) || idx < 0 || idx >= BLOB_MAX_INDEX)
        return http_error(r, 404, "not_found", "no such image");
    image_format fmt = IMAGE_PNG;
    const char *fq = http_query(r, "format"), *qq = http_query(r, "quality");
    long quality = 90;
    if (fq && image_format_parse(fq, &fmt) != 0)
        return http_error(r, 400, "invalid_query", "format must be png, jpeg or webp");
    if (qq) {
        char *end;
        quality = strtol(qq, &end, 10);
        if (*end || end == qq || quality < 1 || quality > 100)
            return http_error(r, 400, "invalid_query",
                              "quality must be in 1..100 (WebP: 100 = lossless)");
    }
    enum MHD_Result ret;
    if (native_job_allowed(r, id, &ret) != 0)
        return ret;
    unsigned char *png = NULL;
    size_t n = 0;
    svc_error err = {0};
    gs_status st = blob_get(r->s->blobs, id, BLOB_IMAGE, (int)idx, (size_t)1 << 30, &png, &n, &err);
    if (st == GS_ERR_INVALID_ARGUMENT)
        return http_error(r, 404, "not_found", "no such image");
    if (st != GS_OK)
        return http_error(r, 500, "internal", "cannot read the image");
    if (fmt == IMAGE_PNG)
        return http_reply_bytes(r, 200, "image/png", png, n, MHD_RESPMEM_MUST_FREE, NULL);
    unsigned char *enc = NULL;
    size_t enc_n = 0;
    int rc = image_transcode(png, n, fmt, (int)quality, &enc, &enc_n);
    free(png);
    if (rc != 0)
        return http_error(r, 500, "internal", "cannot encode the image");
    return http_reply_bytes(r, 200, image_format_mime(fmt), enc, enc_n, MHD_RESPMEM_MUST_FREE,
                            NULL);
}

enum MHD_Result native_list_jobs(http_request *r)
{
    server *s = r->s;
    const char *status = http_query(r, "status");
    const char *limit = http_query(r, "limit");
    int st_filter = -1;
    long max = 50;
    if (status && (st_filter = job_status_parse(status)) < 0)
        return http_error(r, 400, "invalid_query",
                          "status must be queued, running, succeeded, failed or cancelled");
    if (limit) {
        char *end;
        max = strtol(limit, &end, 10);
        if (*end || end == limit || max < 1 || max > 1000)
            return http_error(r, 400, "invalid_query", "limit must be in 1..1000");
    }
    job_record *list = NULL;
    int n = 0;
    svc_error err = {0};
    const api_key *key = r->key;
    job_store *store = server_store(s, &err);
    gs_status st = store ? store_list(store, st_filter, key && !key->admin ? key->name : NULL,
                                      (int)max, &list, &n, &err)
                         : GS_ERR_IO;
    if (st != GS_OK)
        return http_error(r, 503, "store_unavailable", err.msg);
    int any_queued = 0;
    for (int i = 0; i < n; i++)
        any_queued |= list[i].status == JOB_QUEUED;
    fleet_view fleet = {0};
    int have_fleet = any_queued && fleet_view_load(s, server_now_ms(), &fleet, &err) == GS_OK;
    char *text = job_list_text(list, n, have_fleet ? &fleet : NULL);
    fleet_view_free(&fleet);
    store_list_free(list, n);
    return http_reply_json_text(r, 200, text, NULL);
}
