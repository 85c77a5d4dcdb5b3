/*
 * openai_images - POST /v1/images/generations, edits and variations. Each
 * call queues an ordinary job (durable, listed in /v1/jobs, cancellable) and
 * then blocks, as OpenAI's does, until the job ends: the connection is parked
 * on the job's events (park.h) and the handler is called again when the job
 * changes. A client that goes away leaves the job to run; its images stay at
 * /v1/jobs/ID/images/K. Edits and variations come as multipart/form-data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "api/job_submit.h"
#include "api/multipart.h"
#include "api/native.h"
#include "api/openai.h"
#include "api/park.h"
#include "job/base64.h"

#define RECHECK_MS 60000 /* a parked call looks at its job at least this often */

/* A call between its submit and its reply (r->state). */
typedef struct openai_call {
    char id[JOB_ID_LEN + 1];
    openai_ask ask;
} openai_call;

static enum MHD_Result refused(http_request *r, const openai_refusal *why)
{
    return openai_error(r, why->status, why->code, why->param, why->message, NULL);
}

/* ---- the reply ---- */

/* "http://HOST" as the client reached the server: its Host header when that
   is a plain host[:port], else the socket's own address. */
static void url_base(http_request *r, char *out, size_t size)
{
    const char *host = http_header(r, "Host");
    const char *proto = http_header(r, "X-Forwarded-Proto");
    const char *scheme = proto && strcmp(proto, "https") == 0 ? "https" : "http";
    const char *ok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:[]";
    if (host && host[0] && strlen(host) < 256 && strspn(host, ok) == strlen(host)) {
        snprintf(out, size, "%s://%s", scheme, host);
        return;
    }
    char addr[INET_ADDRSTRLEN] = "127.0.0.1";
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof sa;
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(r->c, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (info && getsockname(info->connect_fd, (struct sockaddr *)&sa, &len) == 0 &&
        sa.sin_family == AF_INET)
        inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
    snprintf(out, size, "%s://%s:%d", scheme, addr, ntohs(sa.sin_port));
}

/* One image of the job as a data[] item; NULL when it cannot be read. */
static json_t *image_item(http_request *r, const char *id, int k, const char *base,
                          const openai_ask *ask)
{
    if (ask->want_url) {
        char url[400], query[64] = "";
        if (ask->format != IMAGE_PNG)
            snprintf(query, sizeof query, "?format=%s&quality=%d", image_format_name(ask->format),
                     ask->compression);
        snprintf(url, sizeof url, "%s/v1/jobs/%s/images/%d%s", base, id, k, query);
        return json_pack("{s:s}", "url", url);
    }
    unsigned char *png = NULL, *enc = NULL;
    size_t n = 0, enc_n = 0;
    svc_error err = {0};
    if (blob_get(r->s->blobs, id, BLOB_IMAGE, k, (size_t)1 << 30, &png, &n, &err) != GS_OK)
        return NULL;
    int rc = image_transcode(png, n, ask->format, ask->compression, &enc, &enc_n);
    free(png);
    char *b64 = rc == 0 ? base64_encode(enc, enc_n) : NULL;
    free(enc);
    json_t *item = b64 ? json_pack("{s:s}", "b64_json", b64) : NULL;
    free(b64);
    return item;
}

/* OpenAI's ImagesResponse for a finished job, plus gesso's job_id and seed. */
static enum MHD_Result reply_images(http_request *r, const openai_call *call, const job_record *rec)
{
    json_int_literal seed = {0};
    json_t *params = rec->params
                         ? json_u64_loadb(rec->params, strlen(rec->params), 0, "seed", &seed, NULL)
                         : NULL;
    json_t *result = rec->result ? json_loads(rec->result, 0, NULL) : NULL;
    json_t *data = json_array();
    char base[320], size[32];
    url_base(r, base, sizeof base);
    snprintf(size, sizeof size, "%dx%d", (int)json_integer_value(json_object_get(params, "width")),
             (int)json_integer_value(json_object_get(params, "height")));
    size_t i;
    json_t *v;
    int ok = data != NULL;
    json_array_foreach(json_object_get(result, "images"), i, v)
    {
        json_t *item =
            ok ? image_item(r, rec->id, (int)json_integer_value(v), base, &call->ask) : NULL;
        ok = item && json_array_append_new(data, item) == 0;
    }
    json_decref(params);
    json_decref(result);
    if (!ok) {
        json_decref(data);
        return openai_error(r, 500, "image_unreadable", NULL,
                            "the job's images cannot be read back", NULL);
    }
    json_t *o = json_pack("{s:I,s:o,s:s,s:s,s:s,s:s,s:s}", "created",
                          (json_int_t)(rec->created_ms / 1000), "data", data, "background",
                          "opaque", "output_format", image_format_name(call->ask.format), "quality",
                          call->ask.quality, "size", size, "job_id", rec->id);
    char *text = o ? native_dumps_with_seed(o, &seed) : NULL;
    json_decref(o);
    return http_reply_json_text(r, 200, text, NULL);
}

/* The reply to a job that ended: its images, or why there are none. A
   failed job would fail again, so OpenAI's SDKs are told not to retry. */
static enum MHD_Result reply_end(http_request *r, const openai_call *call, const job_record *rec)
{
    char msg[600];
    if (rec->status == JOB_SUCCEEDED)
        return reply_images(r, call, rec);
    if (rec->status == JOB_CANCELLED) {
        snprintf(msg, sizeof msg, "the job %s was cancelled", rec->id);
        return openai_error(r, 500, "job_cancelled", NULL, msg, "x-should-retry: false");
    }
    snprintf(msg, sizeof msg, "the job %s failed: %s", rec->id, rec->error ? rec->error : "");
    return openai_error(r, 500, "job_failed", NULL, msg, "x-should-retry: false");
}

/* Called again after each wake-up until the job ends. */
static enum MHD_Result wait_for_end(http_request *r)
{
    openai_call *call = r->state;
    job_record rec;
    enum MHD_Result ret;
    for (;;) {
        if (native_job_access(r, call->id, &rec, &ret) != 0)
            return ret;
        if (rec.status >= JOB_SUCCEEDED)
            break;
        job_record_clear(&rec);
        if (*r->s->stopping) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "the server is stopping; the job %s stays queued and runs after its restart "
                     "(GET /v1/jobs/%s)",
                     call->id, call->id);
            return openai_error(r, 503, "server_stopping", NULL, msg, "x-should-retry: false");
        }
        if (park_sleep(r->park, RECHECK_MS) == 0)
            return MHD_YES; /* suspended: libmicrohttpd calls again on news */
    }
    ret = reply_end(r, call, &rec);
    job_record_clear(&rec);
    return ret;
}

/* Queues spec and waits for its end. */
static enum MHD_Result start(http_request *r, job_spec *spec, const openai_ask *ask)
{
    openai_call *call = calloc(1, sizeof *call);
    enum MHD_Result ret;
    int position;
    if (!call)
        return openai_error(r, 500, NULL, NULL, "out of memory", NULL);
    if (job_submit(r, spec, call->id, &position, &ret) != 0) {
        free(call);
        return ret;
    }
    call->ask = *ask;
    r->state = call;
    r->state_free = free;
    /* parked after the submit: the first look at the job comes after it, so
       an end in between is still seen */
    if (!(r->park = park_create(r->s->parking, r->s->hub, r->c, call->id)))
        return MHD_NO;
    return wait_for_end(r);
}

/* ---- the calls ---- */

/* A request's fields (req), read and queued. */
static enum MHD_Result submit(http_request *r, openai_kind kind, json_t *req,
                              const json_int_literal *seed, int form, const multipart_part *image,
                              const multipart_part *mask)
{
    job_spec spec;
    openai_ask ask = {0};
    openai_refusal why = {0};
    enum MHD_Result ret;
    if (job_spec_init(&spec) != 0)
        return openai_error(r, 500, NULL, NULL, "out of memory", NULL);
    if (openai_read_request(r, kind, req, seed, form,
                            image ? (const unsigned char *)image->data : NULL,
                            image ? image->len : 0, mask ? (const unsigned char *)mask->data : NULL,
                            mask ? mask->len : 0, &spec, &ask, &why) != 0)
        ret = refused(r, &why);
    else
        ret = start(r, &spec, &ask);
    job_spec_clear(&spec);
    return ret;
}

enum MHD_Result openai_generations(http_request *r)
{
    if (r->state)
        return wait_for_end(r);
    json_error_t jerr;
    json_int_literal seed = {0};
    json_t *req =
        json_u64_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, "seed", &seed, &jerr);
    if (!req || !json_is_object(req)) {
        char msg[300];
        snprintf(msg, sizeof msg, "The body of the request must be a JSON object%s%s",
                 req ? "" : ": ", req ? "" : jerr.text);
        json_decref(req);
        return openai_error(r, 400, "invalid_json", NULL, msg, NULL);
    }
    enum MHD_Result ret = submit(r, OPENAI_GENERATE, req, &seed, 0, NULL, NULL);
    json_decref(req);
    return ret;
}

/* The text fields of a form into req, the image part into *image and an
   edit's mask into *mask (NULL when none). 0, or -1 with why. */
static int read_form(openai_kind kind, const multipart_part *parts, int n, json_t *req,
                     const multipart_part **image, const multipart_part **mask, openai_refusal *why)
{
    int images = 0;
    *image = *mask = NULL;
    for (int i = 0; i < n; i++) {
        const multipart_part *p = &parts[i];
        if (strcmp(p->name, "image") == 0 || strcmp(p->name, "image[]") == 0) {
            *image = p;
            images++;
            continue;
        }
        snprintf(why->param, sizeof why->param, "%s", p->name);
        why->status = 400;
        if (strcmp(p->name, "mask") == 0) {
            why->code = kind == OPENAI_EDIT ? "invalid_value" : "unknown_parameter";
            snprintf(why->message, sizeof why->message,
                     kind != OPENAI_EDIT ? "Unknown parameter: 'mask' (only edits take a mask)."
                                         : "the form has more than one 'mask'");
            if (kind != OPENAI_EDIT || *mask)
                return -1;
            *mask = p;
            continue;
        }
        json_t *text = memchr(p->data, 0, p->len) ? NULL : json_stringn(p->data, p->len);
        if (!text || json_object_get(req, p->name)) {
            why->code = "invalid_value";
            snprintf(why->message, sizeof why->message,
                     text ? "the field '%s' is given twice" : "the field '%s' is not UTF-8 text",
                     p->name);
            json_decref(text);
            return -1;
        }
        json_object_set_new(req, p->name, text);
    }
    snprintf(why->param, sizeof why->param, "image");
    why->status = 400;
    if (images == 0) {
        why->code = "missing_required_parameter";
        snprintf(why->message, sizeof why->message, "Missing required parameter: 'image'.");
        return -1;
    }
    if (images > 1) {
        why->code = "unsupported_value";
        snprintf(why->message, sizeof why->message,
                 "gesso takes one image per call (it has %d): send a single 'image'", images);
        return -1;
    }
    memset(why, 0, sizeof *why);
    return 0;
}

static enum MHD_Result from_form(http_request *r, openai_kind kind)
{
    if (r->state)
        return wait_for_end(r);
    multipart_part *parts = calloc(MULTIPART_MAX_PARTS, sizeof *parts);
    json_t *req = json_object();
    const multipart_part *image, *mask;
    openai_refusal why = {0};
    char msg[200];
    int n = 0;
    enum MHD_Result ret;
    if (!parts || !req)
        ret = openai_error(r, 500, NULL, NULL, "out of memory", NULL);
    else if (multipart_parse(http_header(r, "Content-Type"), r->body, r->body_len, parts,
                             MULTIPART_MAX_PARTS, &n, msg, sizeof msg) != 0)
        ret = openai_error(r, 400, "invalid_multipart", NULL, msg, NULL);
    else if (read_form(kind, parts, n, req, &image, &mask, &why) != 0)
        ret = refused(r, &why);
    else
        ret = submit(r, kind, req, NULL, 1, image, mask);
    json_decref(req);
    free(parts);
    return ret;
}

enum MHD_Result openai_edits(http_request *r)
{
    return from_form(r, OPENAI_EDIT);
}

enum MHD_Result openai_variations(http_request *r)
{
    return from_form(r, OPENAI_VARIATION);
}
