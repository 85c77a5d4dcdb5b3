/*
 * job_events - GET /v1/jobs/{id}/events, a Server-Sent Events stream:
 *
 *   queued    {"position"}                  on connect and whenever the job waits
 *   started   {"attempt","worker"}          each time a worker takes it
 *   progress  {"step","steps","eta_s"[,"preview"]}  one per sampler step, in order
 *   succeeded {"seed","images"} | failed {"error"} | cancelled {}   then the stream ends
 *   stopping  {"reason"}      the server is stopping: the stream ends, the job goes on
 *
 * The stream parks its connection (park.h) until its job (or, while it
 * waits, the queue) changes, then reads the job's row once; steps that land
 * between two reads arrive together, still one event each. An idle stream
 * costs no thread, only a keep-alive comment every 15 s. The preview is a PNG
 * data URL of the newest preview the worker put in the blob store.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/native.h"
#include "api/park.h"
#include "job/base64.h"

#define KEEPALIVE_MS 15000
#define RETRY_MS 200 /* after a read the store could not answer */

typedef struct stream {
    server *s;
    char id[JOB_ID_LEN + 1];
    parked *park;      /* resumes the stream when the job changes */
    int observed;      /* the first look at the job has been taken */
    int last_status;   /* -1 before the first look */
    int last_position; /* last queued position sent */
    int attempt;       /* attempts seen when "started" was last sent */
    int last_step, last_preview;
    int done;
    int stale;  /* the job may have changed since the last read */
    int unread; /* the last read failed (the store was busy) */
    int64_t last_write_ms;
    char *buf; /* events built but not yet handed to libmicrohttpd */
    size_t len, off, cap;
} stream;

static void append(stream *st, const char *text, size_t n)
{
    if (st->len + n > st->cap) {
        size_t cap = (st->len + n) * 2;
        char *b = realloc(st->buf, cap);
        if (!b)
            return; /* an event is lost; the stream stays well-formed */
        st->buf = b;
        st->cap = cap;
    }
    memcpy(st->buf + st->len, text, n);
    st->len += n;
}

/* Appends one event whose data is text (malloc'd, taken; NULL: none). */
static void emit_text(stream *st, const char *event, char *text)
{
    if (!text)
        return;
    char head[64];
    int n = snprintf(head, sizeof head, "event: %s\ndata: ", event);
    append(st, head, (size_t)n);
    append(st, text, strlen(text));
    append(st, "\n\n", 2);
    free(text);
}

static void emit(stream *st, const char *event, json_t *data)
{
    char *text = data ? json_dumps(data, HTTP_JSON_FLAGS) : NULL;
    json_decref(data);
    emit_text(st, event, text);
}

/* The preview PNG as a data URL, or NULL when the file is gone (the job moved on). */
static char *preview_url(const stream *st)
{
    size_t n = 0;
    unsigned char *bytes = NULL;
    svc_error err = {0};
    if (blob_get(st->s->blobs, st->id, BLOB_PREVIEW, 0, (size_t)32 << 20, &bytes, &n, &err) !=
        GS_OK)
        return NULL;
    char *b64 = bytes ? base64_encode(bytes, n) : NULL, *url = NULL;
    size_t len = b64 ? strlen(b64) + 32 : 0;
    if (b64 && (url = malloc(len)))
        snprintf(url, len, "data:image/png;base64,%s", b64);
    free(b64);
    free(bytes);
    return url;
}

static void emit_progress(stream *st, const job_record *r)
{
    for (int step = st->last_step + 1; step <= r->step; step++) {
        json_t *d = json_pack("{s:i,s:i}", "step", step, "steps", r->steps);
        if (step == r->step && r->eta_s >= 0)
            json_object_set_new(d, "eta_s", json_real(r->eta_s));
        if (step == r->preview_step && r->preview_step > st->last_preview) {
            char *url = preview_url(st);
            if (url)
                json_object_set_new(d, "preview", json_string(url));
            free(url);
            st->last_preview = r->preview_step;
        }
        emit(st, "progress", d);
    }
    if (r->step > st->last_step)
        st->last_step = r->step;
}

/* Turns what changed since the last look into events. */
static void observe(stream *st, const job_record *r, int position)
{
    int first = !st->observed;
    st->observed = 1;
    if (first && r->status >= JOB_SUCCEEDED) { /* a finished job: only its end is news */
        st->attempt = r->attempts;
        st->last_step = r->step;
    }
    if (first && r->status == JOB_RUNNING && r->step > 0)
        st->last_step = r->step - 1; /* joining late: from the current step on */
    if (r->status == JOB_QUEUED) {
        if (st->last_status != JOB_QUEUED || position != st->last_position)
            emit(st, "queued", json_pack("{s:i}", "position", position));
        st->last_position = position;
        st->last_step = 0;
        st->last_preview = 0;
    }
    if (r->status != JOB_QUEUED && r->attempts > st->attempt) {
        st->attempt = r->attempts;
        st->last_step = r->status == JOB_RUNNING && !first ? 0 : st->last_step;
        st->last_preview = 0;
        emit(st, "started", json_pack("{s:i,s:s}", "attempt", r->attempts, "worker", r->worker));
    }
    if (r->status == JOB_RUNNING || r->status == JOB_SUCCEEDED)
        emit_progress(st, r);
    if (r->status == JOB_SUCCEEDED) {
        json_int_literal seed = {0};
        json_t *res =
            r->result ? json_u64_loadb(r->result, strlen(r->result), 0, "seed", &seed, NULL) : NULL;
        json_t *d = json_pack("{s:o}", "images", native_image_urls(r->id, res));
        emit_text(st, "succeeded", d ? native_dumps_with_seed(d, &seed) : NULL);
        json_decref(d);
        json_decref(res);
        st->done = 1;
    } else if (r->status == JOB_FAILED) {
        emit(st, "failed", json_pack("{s:s}", "error", r->error ? r->error : "failed"));
        st->done = 1;
    } else if (r->status == JOB_CANCELLED) {
        emit(st, "cancelled", json_object());
        st->done = 1;
    }
    st->last_status = (int)r->status;
}

/* Reads the job and turns what changed into events; -1 when the store could
   not answer (busy or failing: the caller looks again shortly). */
static int poll_job(stream *st)
{
    job_record r;
    svc_error err = {0};
    int position = -1;
    job_store *store = server_store(st->s, &err);
    gs_status ok = store ? store_get(store, st->id, &r, &err) : GS_ERR_IO;
    if (ok == GS_OK && r.status == JOB_QUEUED &&
        store_queue_position(store, st->id, &position, &err) != GS_OK) {
        job_record_clear(&r);
        ok = GS_ERR_IO;
    }
    if (ok == GS_ERR_INVALID_ARGUMENT) { /* purged while we watched */
        emit(st, "failed", json_pack("{s:s}", "error", "the job no longer exists"));
        st->done = 1;
        return 0;
    }
    if (ok != GS_OK)
        return -1;
    park_watch_queue(st->park, r.status == JOB_QUEUED); /* its position moves with the queue */
    observe(st, &r, position);
    job_record_clear(&r);
    return 0;
}

/* The last event of a stream the server ends: the client knows to reconnect
   (the job itself goes on, or back to the queue). */
static void emit_stopping(stream *st)
{
    emit(st, "stopping",
         json_pack("{s:s}", "reason", "the server is stopping; reconnect to follow the job"));
    st->done = 1;
}

/* libmicrohttpd asks for more of the body; 0 bytes with the connection
   parked means "nothing yet" (it asks again once resumed). */
static ssize_t read_events(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)pos;
    stream *st = cls;
    for (;;) {
        if (st->off < st->len) {
            size_t n = st->len - st->off < max ? st->len - st->off : max;
            memcpy(out, st->buf + st->off, n);
            st->off += n;
            if (st->off == st->len)
                st->off = st->len = 0;
            st->last_write_ms = server_now_ms();
            return (ssize_t)n;
        }
        if (st->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        if (*st->s->stopping) {
            emit_stopping(st);
            continue;
        }
        if (st->stale) {
            st->unread = poll_job(st) != 0;
            st->stale = 0;
            if (st->len > 0 || st->done)
                continue;
        }
        int64_t quiet = server_now_ms() - st->last_write_ms;
        if (quiet >= KEEPALIVE_MS) {
            append(st, ": keep-alive\n\n", 14); /* also finds clients that left */
            continue;
        }
        int wait_ms = (int)(KEEPALIVE_MS - quiet);
        if (st->unread && wait_ms > RETRY_MS)
            wait_ms = RETRY_MS; /* the store did not answer: ask again soon */
        st->stale = 1;          /* a change, or a quiet spell: look again either way */
        if (park_sleep(st->park, wait_ms) == 0)
            return 0;
    }
}

static void free_stream(void *cls)
{
    stream *st = cls;
    park_free(st->park);
    free(st->buf);
    free(st);
}

enum MHD_Result native_job_events(http_request *r)
{
    server *s = r->s;
    const char *id = r->params[0];
    enum MHD_Result ret;
    if (native_job_allowed(r, id, &ret) != 0)
        return ret;
    stream *st = calloc(1, sizeof *st);
    if (!st)
        return MHD_NO;
    st->s = s;
    st->stale = 1;
    if (!(st->park = park_create(s->parking, s->hub, r->c, id))) {
        free(st);
        return MHD_NO;
    }
    memcpy(st->id, id, JOB_ID_LEN); /* native_job_access checked its form */
    st->last_status = -1;
    st->last_position = -1;
    st->last_write_ms = server_now_ms();
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, read_events, st, free_stream);
    if (!resp) {
        free_stream(st);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    http_add_common_headers(r, resp);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    ret = MHD_queue_response(r->c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}
