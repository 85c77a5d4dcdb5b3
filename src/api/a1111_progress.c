/*
 * a1111_progress - GET /sdapi/v1/progress, POST /sdapi/v1/interrupt and
 * /skip. A1111 runs one job at a time and reports "the" job; gesso runs many,
 * so these are about the caller's: with API keys, the key's jobs (an admin
 * key's: all), without keys the server's. progress reports the newest
 * running one; interrupt and skip cancel every running one (queued jobs stay
 * queued, as A1111's queue does), which ends their waiting txt2img calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/a1111.h"
#include "job/base64.h"

#define MAX_INTERRUPT 1000 /* running jobs one call cancels; more than any worker pool runs */

static const char *scope(const http_request *r)
{
    return r->key && !r->key->admin ? r->key->name : NULL;
}

/* The newest preview of the job as raw base64 (A1111's current_image), or NULL. */
static json_t *preview_of(server *s, const job_record *rec)
{
    unsigned char *png = NULL;
    size_t n = 0;
    svc_error err = {0};
    if (rec->preview_step <= 0 ||
        blob_get(s->blobs, rec->id, BLOB_PREVIEW, 0, (size_t)32 << 20, &png, &n, &err) != GS_OK)
        return json_null();
    char *b64 = base64_encode(png, n);
    free(png);
    json_t *v = b64 ? json_string(b64) : json_null();
    free(b64);
    return v;
}

static void stamp_of(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    out[0] = '\0';
    if (ms > 0 && localtime_r(&t, &tm))
        strftime(out, 32, "%Y%m%d%H%M%S", &tm);
}

enum MHD_Result a1111_progress(http_request *r)
{
    server *s = r->s;
    const char *skip = http_query(r, "skip_current_image");
    int want_image = !(skip && (strcasecmp(skip, "true") == 0 || strcmp(skip, "1") == 0));
    job_record *list = NULL;
    int n = 0, counts[5] = {0};
    svc_error err = {0};
    job_store *store = server_store(s, &err);
    gs_status st = store ? store_list(store, JOB_RUNNING, scope(r), 1, &list, &n, &err) : GS_ERR_IO;
    if (st == GS_OK)
        st = store_counts(store, scope(r), counts, &err);
    if (st != GS_OK) {
        store_list_free(list, n);
        return http_error(r, 503, "store_unavailable", err.msg);
    }
    const job_record *rec = n > 0 ? &list[0] : NULL;
    char stamp[32] = "", textinfo[96] = "";
    double progress = 0, eta = 0;
    if (rec) {
        stamp_of(rec->started_ms, stamp);
        progress = rec->steps > 0 ? (double)rec->step / rec->steps : 0;
        eta = rec->eta_s >= 0 ? rec->eta_s : 0;
        snprintf(textinfo, sizeof textinfo, "Sampling step %d/%d", rec->step, rec->steps);
    }
    json_t *state = json_pack(
        "{s:b,s:b,s:b,s:s,s:i,s:s,s:i,s:i,s:i}", "skipped", 0, "interrupted",
        rec ? rec->cancel_requested : 0, "stopping_generation", 0, "job", rec ? rec->id : "",
        "job_count", counts[JOB_QUEUED] + counts[JOB_RUNNING], "job_timestamp", stamp, "job_no", 0,
        "sampling_step", rec ? rec->step : 0, "sampling_steps", rec ? rec->steps : 0);
    json_t *reply =
        json_pack("{s:f,s:f,s:o,s:o,s:o}", "progress", progress, "eta_relative", eta, "state",
                  state, "current_image", rec && want_image ? preview_of(s, rec) : json_null(),
                  "textinfo", rec ? json_string(textinfo) : json_null());
    store_list_free(list, n);
    return http_reply_json(r, 200, reply, NULL);
}

enum MHD_Result a1111_interrupt(http_request *r)
{
    server *s = r->s;
    job_record *list = NULL;
    int n = 0;
    svc_error err = {0};
    job_store *store = server_store(s, &err);
    gs_status st = store ? store_list(store, JOB_RUNNING, scope(r), MAX_INTERRUPT, &list, &n, &err)
                         : GS_ERR_IO;
    for (int i = 0; st == GS_OK && i < n; i++) {
        job_status now;
        gs_status c = store_cancel(store, list[i].id, server_now_ms(), &now, &err);
        if (c == GS_OK)
            hub_publish(s->hub, list[i].id);
        else if (c != GS_ERR_INVALID_ARGUMENT) /* gone meanwhile: nothing to cancel */
            st = c;
    }
    store_list_free(list, n);
    if (st != GS_OK)
        return http_error(r, 503, "store_unavailable", err.msg);
    hub_publish_queue(s->hub);
    return http_reply_json(r, 200, json_object(), NULL);
}
