/* worker - claim, generate, record; one job at a time, loaded models kept in a cache. */
#include "worker/worker.h"

#include <dirent.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gesso.h"
#include "job/job_inputs.h"
#include "job/job_loras.h"
#include "job/job_spec.h"
#include "queue/blob_store.h"
#include "queue/store.h"
#include "support/json_u64.h"
#include "worker/model_cache.h"
#include "worker/worker_notify.h"
#include "support/log.h"

static int64_t now_ms(void)
{
    return store_clock_ms();
}

/* A job's heartbeat runs on its own thread with its own store connection, so
   the lease is renewed every lease/3 however long a step takes; the progress
   callback only publishes the step and reads the cancel/lost flags. */
typedef struct run_ctx {
    const worker_options *o;
    const char *id;
    const char *models_json; /* the worker's presence report, refreshed with the lease */
    const char *info_json;   /* and the rest of it (state, job) */
    job_store *hb_store;
    blob_store *blobs;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int step, steps, done;
    int preview_step;
    double eta_s;
    int cancelled, lost, stopped;
    int moved;           /* progress since the last beat */
    int64_t reported_ms; /* last presence report from this thread */
} run_ctx;

/* Progress is written at most this often: a fast sampler's steps are
   batched, so a fleet of workers stepping does not flood the database (an
   event stream sends each step it missed when it reads the job). */
#define PROGRESS_MS 250

/* Waits on r->wake (r->mu held) until deadline_ms or a signal. */
static void wait_until(run_ctx *r, int64_t deadline_ms)
{
    int64_t left = deadline_ms - now_ms();
    if (left <= 0)
        return;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += left / 1000;
    until.tv_nsec += (left % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&r->wake, &r->mu, &until);
}

static void *heartbeat_main(void *arg)
{
    run_ctx *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        job_progress jp = {r->step, r->steps, r->preview_step, r->eta_s};
        const char *models = r->models_json, *info = r->info_json;
        int64_t t = now_ms();
        int report = t - r->reported_ms >= r->o->lease_ms / 3; /* not on every fast step */
        if (report)
            r->reported_ms = t;
        pthread_mutex_unlock(&r->mu);
        svc_error err = {0};
        int cancel = 0, lost = 0;
        if (store_heartbeat(r->hb_store, r->id, r->o->name, now_ms(), r->o->lease_ms, &jp, &cancel,
                            &lost, &err) != GS_OK)
            cancel = lost = 0; /* a store hiccup must not end the job; the lease covers it */
        else if (!lost && worker_notify(r->o->notify_fd, NOTIFY_JOB, r->id) != 0)
            *r->o->stop = 1; /* the server is gone: give the job back at the next step */
        /* a long job must not make the worker look gone */
        if (report && store_worker_report(r->hb_store, r->o->name, (int)getpid(), models, info, t,
                                          &err) != GS_OK)
            log_warn("%s", err.msg); /* the next beat reports again */
        pthread_mutex_lock(&r->mu);
        r->cancelled |= cancel;
        r->lost |= lost;
        /* the next beat: a third of the lease on, or sooner with progress,
           but never within PROGRESS_MS of this one */
        int64_t renew = t + (r->o->lease_ms / 3 > 0 ? r->o->lease_ms / 3 : 1);
        int64_t soonest = t + (PROGRESS_MS < renew - t ? PROGRESS_MS : renew - t);
        while (!r->done && now_ms() < soonest)
            wait_until(r, soonest);
        while (!r->done && !r->moved && now_ms() < renew)
            wait_until(r, renew);
        r->moved = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* The blob store makes the put atomic: a reader never sees half a PNG. */
static int publish_preview(const run_ctx *r, const gs_image *img)
{
    uint8_t *png = NULL;
    size_t n = 0;
    char msg[160];
    svc_error err = {0};
    if (gs_image_encode_png(img, NULL, &png, &n, msg, sizeof msg) != GS_OK)
        return -1;
    gs_status st = blob_put(r->blobs, r->id, BLOB_PREVIEW, 0, png, n, &err);
    free(png);
    return st == GS_OK ? 0 : -1;
}

static int on_progress(const gs_progress *p, void *user)
{
    run_ctx *r = user;
    int published = p->preview && publish_preview(r, p->preview) == 0;
    pthread_mutex_lock(&r->mu);
    r->step = p->step;
    r->steps = p->steps;
    r->eta_s = p->eta_s;
    if (published)
        r->preview_step = p->step;
    r->stopped |= *r->o->stop;
    r->moved = 1;
    int stop = r->cancelled || r->lost || r->stopped;
    pthread_cond_signal(&r->wake); /* report progress (and pick up a cancel) promptly */
    pthread_mutex_unlock(&r->mu);
    return stop;
}

/* ---- presence ---- */

#define MAX_AVAILABLE STORE_MAX_ONLY

typedef struct worker_state {
    const worker_options *o;
    job_store *store;
    blob_store *blobs;
    model_cache *cache;
    int64_t reported_ms;
    char host[256];
    /* the models the worker has files for (NAME.safetensors in its models
       directory), looked at again with each idle report: models come and go */
    char *available[MAX_AVAILABLE];
    int n_available;
    double mps;        /* megapixel-steps per second of the last job, 0 before one */
    const char *state; /* "idle", "loading" or "working" */
    const char *job;   /* the job it runs, or NULL */
} worker_state;

static void forget_available(worker_state *w)
{
    for (int i = 0; i < w->n_available; i++)
        free(w->available[i]);
    w->n_available = 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan_available(worker_state *w)
{
    forget_available(w);
    DIR *d = opendir(w->o->models_dir);
    struct dirent *de;
    while (d && (de = readdir(d)) && w->n_available < MAX_AVAILABLE) {
        size_t n = strlen(de->d_name);
        if (n <= 12 || strcmp(de->d_name + n - 12, ".safetensors") != 0 || de->d_name[0] == '.')
            continue;
        char *name = strndup(de->d_name, n - 12);
        if (name)
            w->available[w->n_available++] = name;
    }
    if (d)
        closedir(d);
    qsort(w->available, (size_t)w->n_available, sizeof w->available[0], by_name);
}

/* What the worker says of itself besides its loaded models (malloc'd JSON
   text; NULL without memory): GET /v1/workers shows it. */
static char *info_json(const worker_state *w)
{
    json_t *o =
        json_pack("{s:s,s:s,s:i}", "host", w->host, "state", w->state, "lease_ms", w->o->lease_ms);
    json_t *a = json_array();
    for (int i = 0; i < w->n_available; i++)
        json_array_append_new(a, json_string(w->available[i]));
    json_object_set_new(o, "models_available", a);
    json_object_set_new(o, "job", w->job ? json_string(w->job) : json_null());
    json_object_set_new(o, "megapixelsteps_per_s", w->mps > 0 ? json_real(w->mps) : json_null());
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

/* The loaded models as a JSON array text (malloc'd), or NULL when out of memory. */
static char *models_json(const model_cache *c)
{
    json_t *a = json_array();
    for (int i = 0; i < model_cache_count(c); i++)
        json_array_append_new(a, json_string(model_cache_name(c, i)));
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

static void report(worker_state *w)
{
    svc_error err = {0};
    char *text = models_json(w->cache), *info = info_json(w);
    if (store_worker_report(w->store, w->o->name, (int)getpid(), text ? text : "[]", info, now_ms(),
                            &err) != GS_OK)
        log_warn("%s", err.msg);
    free(text);
    free(info);
    w->reported_ms = now_ms();
}

static void on_cache_change(void *user)
{
    report(user);
}

/* ---- the database out of reach ---- */

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 5000

/* Sleeps *backoff_ms (doubling it up to the cap), in slices so a stop is
   seen; 0 when asked to stop. */
static int back_off(const worker_options *o, int *backoff_ms)
{
    for (int slept = 0; slept < *backoff_ms && !*o->stop; slept += 50)
        usleep(50000);
    *backoff_ms = *backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : *backoff_ms * 2;
    return !*o->stop;
}

/* Whether the job is still this worker's: its lease renewed (with progress
   p), so nothing else can take it for a lease from now, which covers the
   writes of its result. While the database cannot be reached (a cut
   network, a restart) it tries again with backoff: the job was generated,
   and the result counts if the lease held. 0 when the lease is lost (the
   reaper requeued the job and it runs, or ran, elsewhere: the result is
   dropped) or the worker is stopping. */
static int still_ours(const worker_state *w, const job_record *job, const job_progress *p)
{
    const worker_options *o = w->o;
    int backoff = BACKOFF_MIN_MS, failing = 0;
    for (;;) {
        svc_error err = {0};
        int cancel = 0, lost = 0;
        if (store_heartbeat(w->store, job->id, o->name, now_ms(), o->lease_ms, p, &cancel, &lost,
                            &err) == GS_OK) {
            if (failing)
                log_info("job %s: the job store is back", job->id);
            if (lost)
                log_warn("job %s: no longer ours (its lease ran out, or it ended elsewhere): its"
                         " result is dropped",
                         job->id);
            return !lost;
        }
        if (!failing)
            log_warn("job %s: %s; trying again with backoff, the result kept", job->id, err.msg);
        failing = 1;
        if (!back_off(o, &backoff))
            return 0;
    }
}

/* ---- one job ---- */

static void run_job(worker_state *w, job_store *hb_store, gs_engine *eng, job_record *job)
{
    job_store *store = w->store;
    const worker_options *o = w->o;
    gs_model *model = NULL;
    char *presence = NULL;
    svc_error err = {0};
    gs_params p;
    job_lora_params lora_params;
    job_spec spec;
    job_error jerr;
    gs_image *init = NULL, *mask = NULL;
    int recorded = 0, steps_done = 0;
    char msg[512] = "";
    gs_result *res = NULL;
    job_status final = JOB_FAILED;
    json_t *result = NULL;
    double load_s = 0;
    int spec_ok = job_spec_init(&spec) == 0;
    if (!spec_ok)
        snprintf(msg, sizeof msg, "out of memory reading the job's parameters");
    else if (job_spec_from_json(&spec, job->params, strlen(job->params), NULL, &jerr) != 0)
        snprintf(msg, sizeof msg, "the job's parameters cannot be read: %s", jerr.message);
    else if (job_inputs_load(w->blobs, job->id, &spec, &err) != GS_OK) /* stored images */
        snprintf(msg, sizeof msg, "%s", err.msg);
    else if (job_spec_to_params(&spec, &p, &init) != 0)
        snprintf(msg, sizeof msg, "the job's init image does not decode");
    else if (job_spec_mask_to_params(&spec, &p, &mask) != 0)
        snprintf(msg, sizeof msg, "the job's mask does not decode");
    else
        job_loras_params(&spec.loras, o->lora_dir, &lora_params, &p);
    if (msg[0]) {
        if (spec_ok)
            job_spec_clear(&spec);
        goto record;
    }
    /* the lease is renewed from here on: loading a large model can take
       longer than a lease, and must not cost the job an attempt */
    char *before = models_json(w->cache);
    w->job = job->id;
    w->state = "loading";
    for (int i = 0; i < model_cache_count(w->cache); i++)
        if (strcmp(model_cache_name(w->cache, i), job->model) == 0)
            w->state = "working";
    char *info_loading = info_json(w), *info_working = NULL;
    run_ctx rc = {.o = o,
                  .id = job->id,
                  .models_json = before ? before : "[]",
                  .info_json = info_loading,
                  .hb_store = hb_store,
                  .blobs = w->blobs,
                  .eta_s = -1};
    pthread_mutex_init(&rc.mu, NULL);
    pthread_cond_init(&rc.wake, NULL);
    pthread_t hb;
    int hb_started = pthread_create(&hb, NULL, heartbeat_main, &rc) == 0;
    int64_t t0 = now_ms();
    gs_status st = GS_ERR_IO;
    if (model_cache_acquire(w->cache, job->model, now_ms(), &model, msg, sizeof msg) == GS_OK) {
        load_s = (double)(now_ms() - t0) / 1000.0; /* ~0 when the model was loaded already */
        presence = models_json(w->cache);
        w->state = "working";
        info_working = info_json(w);
        pthread_mutex_lock(&rc.mu);
        rc.models_json = presence ? presence : "[]";
        rc.info_json = info_working;
        rc.reported_ms = 0; /* a new model: report it at the next beat */
        pthread_mutex_unlock(&rc.mu);
        st = gs_generate(eng, model, &p, on_progress, &rc, &res);
    }
    pthread_mutex_lock(&rc.mu);
    rc.done = 1;
    pthread_cond_signal(&rc.wake);
    pthread_mutex_unlock(&rc.mu);
    if (hb_started)
        pthread_join(hb, NULL);
    steps_done = rc.steps;
    pthread_mutex_destroy(&rc.mu);
    pthread_cond_destroy(&rc.wake);
    free(before);
    free(info_loading);
    free(info_working);
    w->state = "idle";
    w->job = NULL;
    gs_image_free(init);
    gs_image_free(mask);
    job_spec_clear(&spec);
    if (!model) /* the load failed: msg says why */
        goto record;
    model_cache_release(w->cache, model, now_ms());
    /* the heartbeat thread kept the report fresh, unless the model list
       changed after its last beat */
    w->reported_ms = rc.reported_ms ? now_ms() : 0;
    if (rc.lost) { /* the job was requeued or ended elsewhere: nothing to record */
        log_warn("job %s: no longer ours (its lease ran out, or it ended elsewhere): stopped",
                 job->id);
        goto out;
    }
    if (st == GS_ERR_CANCELLED && rc.stopped && !rc.cancelled) {
        if (store_release(store, job->id, o->name, &recorded, &err) == GS_OK)
            worker_notify(o->notify_fd, NOTIFY_QUEUE, job->id);
        if (o->only_own_models)
            log_info("job %s: %s", job->id,
                     recorded ? "given back to the queue (stopping)" : "no longer ours");
        goto out;
    }
    if (st == GS_ERR_CANCELLED) {
        final = JOB_CANCELLED;
        goto record;
    }
    if (st != GS_OK) {
        snprintf(msg, sizeof msg, "%s", gs_engine_errmsg(eng));
        goto record;
    }
    /* the last steps may have come faster than the heartbeat: record them, so
       the job's progress reads complete; and the lease must hold for the
       writes that follow */
    job_progress last = {rc.steps, rc.steps, rc.preview_step, 0};
    if (!still_ours(w, job, &last))
        goto out;
    result = json_object();
    json_t *images = json_array();
    json_object_set_new(result, "images", images);
    gs_timings tm;
    gs_result_timings(res, &tm);
    if (tm.total_s > 0) /* what a scheduler can expect of this worker */
        w->mps = job->megapixelsteps / tm.total_s;
    json_t *step_ms = json_array();
    for (int i = 0; i < tm.n_steps; i++)
        json_array_append_new(step_ms, json_real((double)(int64_t)(tm.step_s[i] * 1e4) / 10.0));
    json_object_set_new(result, "step_ms", step_ms);
    json_object_set_new(result, "timings",
                        json_pack("{s:f,s:f,s:f,s:f,s:f}", "load_s", load_s, "text_encode_s",
                                  tm.text_encode_s, "sampling_s", tm.sampling_s, "vae_decode_s",
                                  tm.vae_decode_s, "total_s", tm.total_s));
    for (int i = 0; i < gs_result_count(res); i++) {
        uint8_t *png = NULL;
        size_t n = 0;
        if (gs_image_encode_png(gs_result_image(res, i), gs_result_infotext(res, i), &png, &n, msg,
                                sizeof msg) != GS_OK)
            goto record;
        gs_status put = blob_put(w->blobs, job->id, BLOB_IMAGE, i, png, n, &err);
        /* a lost connection: again once the lease is known to hold */
        for (int backoff = BACKOFF_MIN_MS; put == GS_ERR_IO && store_holds_blobs(o->blob_url);) {
            log_warn("job %s: %s; trying again", job->id, err.msg);
            if (!back_off(o, &backoff) || !still_ours(w, job, &last)) {
                free(png);
                goto out;
            }
            put = blob_put(w->blobs, job->id, BLOB_IMAGE, i, png, n, &err);
        }
        free(png);
        if (put != GS_OK) {
            snprintf(msg, sizeof msg, "%s", err.msg);
            goto record;
        }
        json_array_append_new(images, json_integer(i));
    }
    final = JOB_SUCCEEDED;
    msg[0] = '\0';
record:;
    /* the seed goes in as digits: jansson's integers stop at 2^63-1 */
    char *text = result && final == JOB_SUCCEEDED
                     ? json_u64_dumps(result, JSON_COMPACT, "seed", gs_result_seed(res))
                     : NULL;
    /* recorded once at most: only the lease holder's finish changes the row,
       so a finish that reached the database but whose answer was lost finds
       the job no longer running when tried again, and stops */
    gs_status fin;
    job_progress now = {steps_done, steps_done, 0, 0};
    while ((fin = store_finish(store, job->id, o->name, final, text,
                               final == JOB_FAILED ? msg : NULL, now_ms(), &recorded, &err)) !=
               GS_OK &&
           still_ours(w, job, &now))
        log_warn("job %s: %s; trying again", job->id, err.msg);
    if (fin != GS_OK)
        log_error("%s", err.msg);
    else if (recorded)
        worker_notify(o->notify_fd, NOTIFY_JOB, job->id);
    if (o->only_own_models)
        log_info("job %s: %s%s%s", job->id, recorded ? job_status_name(final) : "not recorded",
                 final == JOB_FAILED ? ": " : "", final == JOB_FAILED ? msg : "");
    free(text);
    json_decref(result);
out:
    free(presence);
    gs_result_free(res);
}

static void count_change(void *user, char kind, const char *id)
{
    (void)kind, (void)id;
    ++*(int *)user;
}

/* How long an idle worker waits before it looks at the queue again without
   being told: jobs requeued by lease expiry or queued by another server
   raise no signal on the wake pipe, and a notification can be lost. */
#define FALLBACK_MS 1000        /* with a wake pipe */
#define FALLBACK_NOTIFY_MS 2000 /* with the store's notifications */
#define FALLBACK_POLL_MS 50     /* with neither */

/* Sleeps until jobs were queued (the server's wake pipe, or the store's
   notification that any front end queued one), or the fallback passes.
   End-of-file on the pipe means the server is gone: the worker stops. */
static void wait_for_work(const worker_options *o, job_store *store, int listening)
{
    svc_error err = {0};
    int news = 0;
    /* notifications that came while the last claim ran may be stale, or may
       be for a job queued just after it looked: look again at once */
    if (listening && store_changes(store, count_change, &news, NULL, &err) == GS_OK && news > 0)
        return;
    struct pollfd pfd[2];
    int n = 0;
    if (o->wake_fd >= 0)
        pfd[n++] = (struct pollfd){.fd = o->wake_fd, .events = POLLIN};
    int store_fd = listening ? store_listen_fd(store) : -1;
    if (store_fd >= 0)
        pfd[n++] = (struct pollfd){.fd = store_fd, .events = POLLIN};
    if (n == 0) {
        usleep(FALLBACK_POLL_MS * 1000);
        return;
    }
    if (poll(pfd, (nfds_t)n, listening ? FALLBACK_NOTIFY_MS : FALLBACK_MS) <= 0)
        return;
    if (o->wake_fd >= 0 && (pfd[0].revents & (POLLIN | POLLHUP))) {
        char buf[64];
        if (read(o->wake_fd, buf, sizeof buf) == 0) {
            log_info("the server is gone; stopping");
            *o->stop = 1;
        }
    }
    if (store_fd >= 0 && store_changes(store, count_change, &news, NULL, &err) != GS_OK)
        usleep(200000); /* the connection is lost: the claim says so, and retries */
}

/* Loads the models asked for at start; one that cannot load is skipped. */
static void preload(worker_state *w)
{
    for (int i = 0; i < w->o->n_preload && !*w->o->stop; i++) {
        char msg[512];
        if (model_cache_preload(w->cache, w->o->preload[i], now_ms(), msg, sizeof msg) != GS_OK)
            log_warn("cannot preload '%s', skipped: %s", w->o->preload[i], msg);
    }
}

int worker_run(const worker_options *o)
{
    job_store *store = NULL, *hb_store = NULL;
    gs_engine *eng = NULL;
    worker_state w = {.o = o, .state = "idle"};
    if (gethostname(w.host, sizeof w.host - 1) != 0)
        snprintf(w.host, sizeof w.host, "unknown");
    scan_available(&w);
    svc_error err = {0};
    int code = 1;
    if (store_open(o->store_url, &store, &err) != GS_OK ||
        store_open(o->store_url, &hb_store, &err) != GS_OK ||
        blob_open(o->blob_url, &w.blobs, &err) != GS_OK) {
        log_error("%s", err.msg);
        goto out;
    }
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = o->threads;
    eo.precision = o->precision;
    if (gs_engine_create(&eo, &eng) != GS_OK)
        goto out;
    model_cache_options co = {.models_dir = o->models_dir,
                              .budget_bytes = o->ram_budget,
                              .idle_ms = (int64_t)o->idle_unload_s * 1000,
                              .on_change = on_cache_change,
                              .user = &w};
    w.store = store;
    if (!(w.cache = model_cache_create(eng, &co)))
        goto out;
    int listening = 0; /* the store tells of queued jobs (a database server) */
    if (store_listen(store, STORE_LISTEN_QUEUED, &listening, &err) != GS_OK) {
        log_warn("%s (looking at the queue every %d ms instead)", err.msg, FALLBACK_NOTIFY_MS);
        listening = 0;
    }
    report(&w);
    if (o->only_own_models)
        log_info("on %s with %d model%s in %s; %s", w.host, w.n_available,
                 w.n_available == 1 ? "" : "s", o->models_dir,
                 listening ? "woken by the store's notifications" : "polling the store");
    preload(&w);
    int64_t report_every = o->lease_ms / 3 > 0 ? o->lease_ms / 3 : 1;
    int backoff = BACKOFF_MIN_MS;
    while (!*o->stop) {
        model_cache_unload_idle(w.cache, now_ms());
        if (now_ms() - w.reported_ms >= report_every) {
            scan_available(&w);
            report(&w);
        }
        const char *prefer[STORE_MAX_PREFER];
        int n_prefer = 0;
        while (n_prefer < model_cache_count(w.cache) && n_prefer < STORE_MAX_PREFER) {
            prefer[n_prefer] = model_cache_name(w.cache, n_prefer);
            n_prefer++;
        }
        job_record job;
        int claimed = 0;
        /* a worker of a fleet takes only the jobs whose models it has */
        const char *const *only = o->only_own_models ? (const char *const *)w.available : NULL;
        if (store_claim_among(store, o->name, prefer, n_prefer, only, w.n_available, now_ms(),
                              o->lease_ms, 60000, &job, &claimed, &err) != GS_OK) {
            /* the store is out of reach: each claim tries to reconnect */
            if (backoff == BACKOFF_MIN_MS)
                log_warn("%s (trying again with backoff)", err.msg);
            back_off(o, &backoff);
            continue;
        }
        if (backoff > BACKOFF_MIN_MS)
            log_info("the job store is back");
        backoff = BACKOFF_MIN_MS;
        if (!claimed) {
            wait_for_work(o, store, listening);
            continue;
        }
        if (o->only_own_models) /* on its own, its log is the one record of its work */
            log_info("job %s (%s): claimed, attempt %d", job.id, job.model, job.attempts);
        if (worker_notify(o->notify_fd, NOTIFY_QUEUE, job.id) != 0)
            *o->stop = 1; /* the server is gone: the job goes back at its first step */
        run_job(&w, hb_store, eng, &job);
        job_record_clear(&job);
        w.reported_ms = 0; /* say at once that it is idle again, and its speed */
    }
    code = 0;
out:
    /* a clean exit: it holds nothing now (if this fails, the row fades out unrefreshed) */
    if (w.cache && store_worker_remove(store, o->name, &err) != GS_OK)
        log_warn("%s", err.msg);
    model_cache_free(w.cache);
    forget_available(&w);
    gs_engine_free(eng);
    store_close(store);
    store_close(hb_store);
    blob_close(w.blobs);
    return code;
}
