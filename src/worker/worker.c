/* worker - claim, generate, record; one job at a time, loaded models kept in a cache. */
#include "worker/worker.h"

#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/job_params.h"
#include "gesso.h"
#include "queue/store.h"
#include "worker/model_cache.h"

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
    job_store *hb_store;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int step, steps, done;
    int preview_step;
    double eta_s;
    int cancelled, lost, stopped;
    int64_t reported_ms; /* last presence report from this thread */
} run_ctx;

static void *heartbeat_main(void *arg)
{
    run_ctx *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        job_progress jp = {r->step, r->steps, r->preview_step, r->eta_s};
        const char *models = r->models_json;
        int64_t t = now_ms();
        int report = t - r->reported_ms >= r->o->lease_ms / 3; /* not on every fast step */
        if (report)
            r->reported_ms = t;
        pthread_mutex_unlock(&r->mu);
        gs_error err = {0};
        int cancel = 0, lost = 0;
        if (store_heartbeat(r->hb_store, r->id, r->o->name, now_ms(), r->o->lease_ms, &jp, &cancel,
                            &lost, &err) != GS_OK)
            cancel = lost = 0; /* a store hiccup must not end the job; the lease covers it */
        /* a long job must not make the worker look gone */
        if (report)
            store_worker_report(r->hb_store, r->o->name, (int)getpid(), models, t, &err);
        pthread_mutex_lock(&r->mu);
        r->cancelled |= cancel;
        r->lost |= lost;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long wait_ms = r->o->lease_ms / 3 > 0 ? r->o->lease_ms / 3 : 1;
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        if (!r->done)
            pthread_cond_timedwait(&r->wake, &r->mu, &until);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void preview_path(const run_ctx *r, char *path, size_t n, const char *suffix)
{
    snprintf(path, n, "%s/%s.preview.png%s", r->o->results_dir, r->id, suffix);
}

/* Written beside the results and renamed into place, so the server never
   reads half a file. */
static int publish_preview(const run_ctx *r, const gs_image *img)
{
    char tmp[4200], path[4200], msg[160];
    preview_path(r, tmp, sizeof tmp, ".tmp");
    preview_path(r, path, sizeof path, "");
    if (gs_image_save_png(img, tmp, NULL, msg, sizeof msg) != GS_OK)
        return -1;
    return rename(tmp, path);
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
    int stop = r->cancelled || r->lost || r->stopped;
    pthread_cond_signal(&r->wake); /* report progress (and pick up a cancel) promptly */
    pthread_mutex_unlock(&r->mu);
    return stop;
}

/* ---- presence ---- */

typedef struct worker_state {
    const worker_options *o;
    job_store *store;
    model_cache *cache;
    int64_t reported_ms;
} worker_state;

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
    gs_error err = {0};
    char *text = models_json(w->cache);
    if (store_worker_report(w->store, w->o->name, (int)getpid(), text ? text : "[]", now_ms(),
                            &err) != GS_OK)
        fprintf(stderr, "gesso worker %s: %s\n", w->o->name, err.msg);
    free(text);
    w->reported_ms = now_ms();
}

static void on_cache_change(void *user)
{
    report(user);
}

/* ---- one job ---- */

static void run_job(worker_state *w, job_store *hb_store, gs_engine *eng, job_record *job)
{
    job_store *store = w->store;
    const worker_options *o = w->o;
    gs_model *model = NULL;
    char *presence = NULL;
    gs_error err = {0};
    gs_params p;
    job_params_hold hold;
    int recorded = 0;
    char msg[512] = "";
    gs_result *res = NULL;
    job_status final = JOB_FAILED;
    json_t *result = NULL;
    double load_s = 0;
    if (job_params_parse(job->params, &p, &hold) != 0) {
        snprintf(msg, sizeof msg, "the job's parameters cannot be read");
        goto record;
    }
    /* the lease is renewed from here on: loading a large model can take
       longer than a lease, and must not cost the job an attempt */
    char *before = models_json(w->cache);
    run_ctx rc = {.o = o,
                  .id = job->id,
                  .models_json = before ? before : "[]",
                  .hb_store = hb_store,
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
        pthread_mutex_lock(&rc.mu);
        rc.models_json = presence ? presence : "[]";
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
    pthread_mutex_destroy(&rc.mu);
    pthread_cond_destroy(&rc.wake);
    free(before);
    job_params_release(&hold);
    if (!model) /* the load failed: msg says why */
        goto record;
    model_cache_release(w->cache, model, now_ms());
    /* the heartbeat thread kept the report fresh, unless the model list
       changed after its last beat */
    w->reported_ms = rc.reported_ms ? now_ms() : 0;
    if (rc.lost)
        goto out; /* the job was requeued or ended elsewhere: nothing to record */
    if (st == GS_ERR_CANCELLED && rc.stopped && !rc.cancelled) {
        store_release(store, job->id, o->name, &recorded, &err);
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
       the job's progress reads complete */
    int cancel = 0, lost = 0;
    job_progress last = {rc.steps, rc.steps, rc.preview_step, 0};
    store_heartbeat(store, job->id, o->name, now_ms(), o->lease_ms, &last, &cancel, &lost, &err);
    result = json_object();
    json_t *images = json_array();
    json_object_set_new(result, "seed", json_integer((json_int_t)gs_result_seed(res)));
    json_object_set_new(result, "images", images);
    gs_timings tm;
    gs_result_timings(res, &tm);
    json_t *step_ms = json_array();
    for (int i = 0; i < tm.n_steps; i++)
        json_array_append_new(step_ms, json_real((double)(int64_t)(tm.step_s[i] * 1e4) / 10.0));
    json_object_set_new(result, "step_ms", step_ms);
    json_object_set_new(result, "timings",
                        json_pack("{s:f,s:f,s:f,s:f,s:f}", "load_s", load_s, "text_encode_s",
                                  tm.text_encode_s, "sampling_s", tm.sampling_s, "vae_decode_s",
                                  tm.vae_decode_s, "total_s", tm.total_s));
    for (int i = 0; i < gs_result_count(res); i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s-%d.png", o->results_dir, job->id, i);
        if (gs_image_save_png(gs_result_image(res, i), path, gs_result_infotext(res, i), msg,
                              sizeof msg) != GS_OK)
            goto record;
        json_array_append_new(images, json_integer(i));
    }
    final = JOB_SUCCEEDED;
    msg[0] = '\0';
record:;
    char *text = result && final == JOB_SUCCEEDED ? json_dumps(result, JSON_COMPACT) : NULL;
    store_finish(store, job->id, o->name, final, text, final == JOB_FAILED ? msg : NULL, now_ms(),
                 &recorded, &err);
    free(text);
    json_decref(result);
out:
    free(presence);
    gs_result_free(res);
}

/* Sleeps until the server says jobs were queued, or a second passes (jobs
   requeued by lease expiry or queued by another server raise no signal). */
static void wait_for_work(int fd)
{
    if (fd < 0) {
        usleep(50000);
        return;
    }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 1000) > 0) {
        char buf[64];
        if (read(fd, buf, sizeof buf) <= 0)
            usleep(50000); /* the server went away: don't spin */
    }
}

/* Loads the models asked for at start; one that cannot load is skipped. */
static void preload(worker_state *w)
{
    for (int i = 0; i < w->o->n_preload && !*w->o->stop; i++) {
        char msg[512];
        if (model_cache_preload(w->cache, w->o->preload[i], now_ms(), msg, sizeof msg) != GS_OK)
            fprintf(stderr, "gesso worker %s: cannot preload '%s', skipped: %s\n", w->o->name,
                    w->o->preload[i], msg);
    }
}

int worker_run(const worker_options *o)
{
    job_store *store = NULL, *hb_store = NULL;
    gs_engine *eng = NULL;
    worker_state w = {.o = o};
    gs_error err = {0};
    int code = 1;
    if (store_open(o->db_path, &store, &err) != GS_OK ||
        store_open(o->db_path, &hb_store, &err) != GS_OK) {
        fprintf(stderr, "gesso worker %s: %s\n", o->name, err.msg);
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
    report(&w);
    preload(&w);
    int64_t report_every = o->lease_ms / 3 > 0 ? o->lease_ms / 3 : 1;
    while (!*o->stop) {
        model_cache_unload_idle(w.cache, now_ms());
        if (now_ms() - w.reported_ms >= report_every)
            report(&w);
        const char *prefer[STORE_MAX_PREFER];
        int n_prefer = 0;
        while (n_prefer < model_cache_count(w.cache) && n_prefer < STORE_MAX_PREFER) {
            prefer[n_prefer] = model_cache_name(w.cache, n_prefer);
            n_prefer++;
        }
        job_record job;
        int claimed = 0;
        if (store_claim(store, o->name, prefer, n_prefer, now_ms(), o->lease_ms, 60000, &job,
                        &claimed, &err) != GS_OK) {
            usleep(200000);
            continue;
        }
        if (!claimed) {
            wait_for_work(o->wake_fd);
            continue;
        }
        run_job(&w, hb_store, eng, &job);
        job_record_clear(&job);
    }
    code = 0;
out:
    if (w.cache)
        store_worker_remove(store, o->name, &err); /* a clean exit: no longer holds anything */
    model_cache_free(w.cache);
    gs_engine_free(eng);
    store_close(store);
    store_close(hb_store);
    return code;
}
