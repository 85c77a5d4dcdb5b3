/*
 * a1111_generate - POST /sdapi/v1/txt2img and /img2img. The request becomes
 * a native job (a1111_request.c), queued like any other; the call then
 * waits for its end as A1111's does, its connection parked on the event
 * hub (park.h) so a waiting client costs no thread, and answers A1111's
 * {"images","parameters","info"} (a1111_reply.c). A client that goes away
 * leaves the job to finish; /v1/jobs shows it and its images.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/a1111.h"
#include "api/job_submit.h"
#include "api/native.h"
#include "api/park.h"

#define WAIT_SLICE_MS 60000 /* parked this long at a time; a change wakes it sooner */

typedef struct waiting {
    char id[JOB_ID_LEN + 1];
    json_t *parameters;    /* the request as echoed, without its seed */
    json_int_literal seed; /* the seed as sent */
    int send_images, img2img;
} waiting;

static void waiting_free(void *p)
{
    waiting *w = p;
    if (w)
        json_decref(w->parameters);
    free(w);
}

/* A spec the job module refused, in FastAPI's shape under A1111's names. */
static enum MHD_Result refuse_spec(http_request *r, const job_error *e)
{
    if (e->reason == JOB_ERR_NO_MEMORY)
        return http_error(r, 500, "internal", "out of memory");
    char type[64];
    snprintf(type, sizeof type, "value_error.%s", job_reason_code(e->reason));
    return a1111_invalid(r, a1111_field_name(e->field), e->message, type);
}

/* The native job text into a spec, checked and queued as r's caller's job
   (job_submit.h); 0 with id, or -1 with the refusal queued in *ret. */
static int queue_job(http_request *r, const char *text, char id[JOB_ID_LEN + 1],
                     enum MHD_Result *ret)
{
    job_spec spec;
    job_error e;
    int pos = 0, rc = -1;
    if (job_spec_init(&spec) != 0)
        *ret = http_error(r, 500, "internal", "out of memory");
    else if (job_spec_from_json(&spec, text, strlen(text), &r->s->o->limits, &e) != 0 ||
             job_submit_check(r, &spec, &e) != 0)
        *ret = refuse_spec(r, &e);
    else
        rc = job_submit(r, &spec, id, &pos, ret);
    job_spec_clear(&spec);
    return rc;
}

/* Reads the request and queues its job; 0 with r->state set, or -1 with the
   refusal queued in *ret. */
static int submit(http_request *r, int img2img, enum MHD_Result *ret)
{
    a1111_job job;
    if (a1111_request_read(r, img2img, &job, ret) != 0)
        return -1;
    uint64_t seed = 0;
    char *text = json_int_literal_u64(&job.seed, &seed)
                     ? json_u64_dumps(job.native, JSON_COMPACT, "seed", seed)
                     : json_dumps(job.native, JSON_COMPACT);
    waiting *w = text ? calloc(1, sizeof *w) : NULL;
    int rc = -1;
    if (!w)
        *ret = http_error(r, 500, "internal", "out of memory");
    else if (queue_job(r, text, w->id, ret) == 0) {
        w->parameters = job.parameters;
        job.parameters = NULL;
        w->seed = job.seed;
        w->send_images = job.send_images;
        w->img2img = img2img;
        r->state = w;
        r->state_free = waiting_free;
        w = NULL;
        rc = 0;
    }
    free(w);
    free(text);
    a1111_job_clear(&job);
    return rc;
}

/* Called again after each wake-up while the job runs: r->state holds it. */
static enum MHD_Result generate(http_request *r, int img2img)
{
    server *s = r->s;
    enum MHD_Result ret;
    if (!r->state) {
        if (submit(r, img2img, &ret) != 0)
            return ret;
        http_drop_body(r); /* the job has it all: a long wait holds no upload budget */
        waiting *w = r->state;
        if (!(r->park = park_create(s->parking, s->hub, r->c, w->id)))
            return MHD_NO;
    }
    waiting *w = r->state;
    job_record rec;
    for (;;) {
        if (native_job_access(r, w->id, &rec, &ret) != 0)
            return ret;
        if (rec.status >= JOB_SUCCEEDED)
            break;
        job_record_clear(&rec);
        if (*s->stopping) {
            char msg[160];
            snprintf(msg, sizeof msg,
                     "the server is stopping; the job goes on: GET /v1/jobs/%s for its result",
                     w->id);
            return http_error_with(r, 503, "stopping", msg, "Retry-After: 10");
        }
        if (park_sleep(r->park, WAIT_SLICE_MS) == 0)
            return MHD_YES; /* suspended: libmicrohttpd calls again on news */
    }
    if (rec.status == JOB_FAILED) {
        char msg[600];
        snprintf(msg, sizeof msg, "job %s failed: %s", w->id, rec.error ? rec.error : "");
        job_record_clear(&rec);
        return http_error(r, 500, "job_failed", msg);
    }
    char *text = a1111_reply_text(s, &rec, w->parameters, &w->seed, w->send_images, w->img2img);
    job_record_clear(&rec);
    return http_reply_json_text(r, 200, text, NULL);
}

enum MHD_Result a1111_txt2img(http_request *r)
{
    return generate(r, 0);
}

enum MHD_Result a1111_img2img(http_request *r)
{
    return generate(r, 1);
}
