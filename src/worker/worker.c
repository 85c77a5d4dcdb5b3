/* worker - claim, generate, record; one job at a time, loaded models kept in a cache. */
#include "worker/worker.h"

#include <jansson.h>
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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
    int cancelled, lost;
} run_ctx;

static void *heartbeat_main(void *arg)
{
    run_ctx *r = arg;
    pthread_mutex_lock(&r->mu);
    while (!r->done) {
        int step = r->step, steps = r->steps;
        pthread_mutex_unlock(&r->mu);
        gs_error err = {0};
        int cancel = 0, lost = 0;
        if (store_heartbeat(r->hb_store, r->id, r->o->name, now_ms(), r->o->lease_ms, step, steps,
                            &cancel, &lost, &err) != GS_OK)
            cancel = lost = 0; /* a store hiccup must not end the job; the lease covers it */
        /* a long job must not make the worker look gone */
        store_worker_report(r->hb_store, r->o->name, (int)getpid(), r->models_json, now_ms(), &err);
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

static int on_progress(const gs_progress *p, void *user)
{
    run_ctx *r = user;
    pthread_mutex_lock(&r->mu);
    r->step = p->step;
    r->steps = p->steps;
    int stop = r->cancelled || r->lost;
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
    if (job_params_parse(job->params, &p, &hold) != 0) {
        snprintf(msg, sizeof msg, "the job's parameters cannot be read");
        goto record;
    }
    if (model_cache_acquire(w->cache, job->model, now_ms(), &model, msg, sizeof msg) != GS_OK) {
        job_params_release(&hold);
        goto record;
    }
    presence = models_json(w->cache);
    run_ctx rc = {
        .o = o, .id = job->id, .models_json = presence ? presence : "[]", .hb_store = hb_store};
    pthread_mutex_init(&rc.mu, NULL);
    pthread_cond_init(&rc.wake, NULL);
    pthread_t hb;
    int hb_started = pthread_create(&hb, NULL, heartbeat_main, &rc) == 0;
    gs_status st = gs_generate(eng, model, &p, on_progress, &rc, &res);
    pthread_mutex_lock(&rc.mu);
    rc.done = 1;
    pthread_cond_signal(&rc.wake);
    pthread_mutex_unlock(&rc.mu);
    if (hb_started)
        pthread_join(hb, NULL);
    pthread_mutex_destroy(&rc.mu);
    pthread_cond_destroy(&rc.wake);
    job_params_release(&hold);
    model_cache_release(w->cache, model, now_ms());
    w->reported_ms = now_ms(); /* the heartbeat thread kept the report fresh */
    if (rc.lost)
        goto out; /* the job was requeued or ended elsewhere: nothing to record */
    if (st == GS_ERR_CANCELLED) {
        final = JOB_CANCELLED;
        goto record;
    }
    if (st != GS_OK) {
        snprintf(msg, sizeof msg, "%s", gs_engine_errmsg(eng));
        goto record;
    }
    result = json_object();
    json_t *images = json_array();
    json_object_set_new(result, "seed", json_integer((json_int_t)gs_result_seed(res)));
    json_object_set_new(result, "images", images);
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
    if (store_open_sqlite(o->db_path, &store, &err) != GS_OK ||
        store_open_sqlite(o->db_path, &hb_store, &err) != GS_OK) {
        fprintf(stderr, "gesso worker %s: %s\n", o->name, err.msg);
        goto out;
    }
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = o->threads;
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
            usleep(50000);
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
