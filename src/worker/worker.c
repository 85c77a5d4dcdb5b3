/* worker - claim, generate, record; one job at a time, one model kept warm. */
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
        job_progress jp = {step, steps, 0, -1};
        if (store_heartbeat(r->hb_store, r->id, r->o->name, now_ms(), r->o->lease_ms, &jp, &cancel,
                            &lost, &err) != GS_OK)
            cancel = lost = 0; /* a store hiccup must not end the job; the lease covers it */
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

static void run_job(job_store *store, job_store *hb_store, const worker_options *o, gs_engine *eng,
                    gs_model **model, char *loaded, size_t loaded_size, job_record *job)
{
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
    if (!*model || strcmp(loaded, job->model) != 0) {
        gs_model_free(*model);
        *model = NULL;
        loaded[0] = '\0';
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.safetensors", o->models_dir, job->model);
        if (gs_model_load(eng, path, model) != GS_OK) {
            snprintf(msg, sizeof msg, "%s", gs_engine_errmsg(eng));
            job_params_release(&hold);
            goto record;
        }
        snprintf(loaded, loaded_size, "%s", job->model);
    }
    run_ctx rc = {.o = o, .id = job->id, .hb_store = hb_store};
    pthread_mutex_init(&rc.mu, NULL);
    pthread_cond_init(&rc.wake, NULL);
    pthread_t hb;
    int hb_started = pthread_create(&hb, NULL, heartbeat_main, &rc) == 0;
    gs_status st = gs_generate(eng, *model, &p, on_progress, &rc, &res);
    pthread_mutex_lock(&rc.mu);
    rc.done = 1;
    pthread_cond_signal(&rc.wake);
    pthread_mutex_unlock(&rc.mu);
    if (hb_started)
        pthread_join(hb, NULL);
    pthread_mutex_destroy(&rc.mu);
    pthread_cond_destroy(&rc.wake);
    job_params_release(&hold);
    if (rc.lost)
        return; /* the job was requeued or ended elsewhere: nothing to record */
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
    gs_result_free(res);
}

int worker_run(const worker_options *o)
{
    job_store *store = NULL, *hb_store = NULL;
    gs_engine *eng = NULL;
    gs_model *model = NULL;
    char loaded[256] = "";
    gs_error err = {0};
    if (store_open_sqlite(o->db_path, &store, &err) != GS_OK ||
        store_open_sqlite(o->db_path, &hb_store, &err) != GS_OK) {
        fprintf(stderr, "gesso worker %s: %s\n", o->name, err.msg);
        store_close(store);
        return 1;
    }
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = o->threads;
    if (gs_engine_create(&eo, &eng) != GS_OK) {
        store_close(store);
        store_close(hb_store);
        return 1;
    }
    while (!*o->stop) {
        job_record job;
        int claimed = 0;
        if (store_claim(store, o->name, loaded[0] ? loaded : NULL, now_ms(), o->lease_ms, 60000,
                        &job, &claimed, &err) != GS_OK) {
            usleep(200000);
            continue;
        }
        if (!claimed) {
            usleep(50000);
            continue;
        }
        run_job(store, hb_store, o, eng, &model, loaded, sizeof loaded, &job);
        job_record_clear(&job);
    }
    gs_model_free(model);
    gs_engine_free(eng);
    store_close(store);
    store_close(hb_store);
    return 0;
}
