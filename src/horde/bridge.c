/* bridge - pop, run, upload, submit, with retries and back-off. */
#include "horde/bridge.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "horde/client.h"
#include "horde/lora_cache.h"
#include "horde/model_ref.h"
#include "horde/pace.h"
#include "horde/payload.h"
#include "horde/pop.h"
#include "horde/censor.h"
#include "horde/proc.h"
#include "horde/stats.h"
#include "horde/submit.h"
#include "job/base64.h"
#include "support/log.h"

#define SUBMIT_TIMEOUT_S 60
#define UPLOAD_TIMEOUT_S 60
#define UPLOAD_TRIES 4
#define SUBMIT_TRIES 5
#define JOB_TIMEOUT_MS (20 * 60 * 1000) /* when the pop gives no ttl */

/* A popped job the bridge holds until it is answered: queued, running in
   the child, or generated and waiting for its upload and submit. */
typedef struct held {
    horde_job job;
    int64_t popped_ms;
    double est_s; /* pace.h's estimate when popped; 0 unknown */
    /* the generator's result: 0 ok, -1 faulted, -2 expired, -3 refused by the filter */
    int rc;
    char why[512];
    horde_images im;
    double secs;
    int restarts;
    struct held *next;
} held;

typedef struct bridge {
    const horde_bridge_options *o;
    horde_proc proc; /* the generator thread's alone */
    char url_pop[600], url_submit[600];
    horde_stats stats;
    char lora_dir[1024]; /* cache_home/loras (or the models folder's) */
    horde_lora_options lora;
    horde_pace pace; /* the bridge thread's alone */
    int64_t hour_start_ms;
    long hour_jobs;
    double hour_kudos;
    /* under mu: the queue the generator takes from, the job it runs, the
       results it hands back; work wakes the generator, done the bridge */
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    held *queue, *running, *finished;
    int64_t running_since_ms;
    int quit;
} bridge;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void append(held **list, held *h)
{
    h->next = NULL;
    while (*list)
        list = &(*list)->next;
    *list = h;
}

static int count(const held *h)
{
    int n = 0;
    for (; h; h = h->next)
        n++;
    return n;
}

/* Sleeps ms, or less when asked to stop. ignore_stop: a retry of a job the
   bridge holds, which must finish even when stopping. */
static void pause_ms(const bridge *b, int ms, int ignore_stop)
{
    for (int64_t end = mono_ms() + ms; mono_ms() < end;) {
        if (!ignore_stop && *b->o->stop)
            return;
        struct timespec ts = {0, 20 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* Posts one image's submit body (freed here), retrying what can succeed later. */
static void post_submit(bridge *b, const char *id, horde_state state, uint64_t seed, char *body)
{
    if (!body) {
        log_error("job %s: out of memory building the submit", id);
        horde_stats_dropped(&b->stats);
        return;
    }
    int wait = 500;
    for (int attempt = 1;; attempt++) {
        horde_reply r;
        int rc = horde_post_json(b->url_submit, b->o->cfg->api_key, body, SUBMIT_TIMEOUT_S, &r);
        if (rc == 0 && r.status == 200) {
            json_t *j = json_loads(r.body, 0, NULL);
            double reward = json_number_value(json_object_get(j, "reward"));
            json_decref(j);
            horde_stats_submitted(&b->stats, state, reward);
            b->hour_jobs++;
            b->hour_kudos += reward;
            log_info("job %s submitted %s, seed %llu, %.1f kudos", id, horde_state_name(state),
                     (unsigned long long)seed, reward);
            horde_reply_free(&r);
            break;
        }
        /* 404: the Horde dropped the job (timed out, or aborted); 400: it
           will never be taken. Neither gets better by retrying. */
        if (rc == 0 && r.status >= 400 && r.status < 500 && r.status != 429) {
            log_warn("job %s: submit refused (%ld): %.200s", id, r.status, r.body);
            horde_stats_dropped(&b->stats);
            horde_reply_free(&r);
            break;
        }
        log_warn("job %s: submit failed (%s), try %d of %d", id, rc ? r.error : "server error",
                 attempt, SUBMIT_TRIES);
        horde_reply_free(&r);
        if (attempt == SUBMIT_TRIES) {
            horde_stats_dropped(&b->stats);
            break;
        }
        pause_ms(b, wait, 1);
        wait *= 2;
    }
    free(body);
}

/* Submits one image's result. */
static void submit_one(bridge *b, const char *id, const char *generation, horde_state state,
                       uint64_t seed, const char *why)
{
    post_submit(b, id, state, seed, horde_submit_body(id, generation, state, seed, why));
}

/* Submits image i of a job the safety check has judged (censor.h). */
static void submit_image(bridge *b, const char *id, const char *generation, uint64_t seed,
                         const horde_checked *ck, int i, const char *note)
{
    if (!ck->checked) {
        submit_one(b, id, generation, HORDE_OK, seed, note);
        return;
    }
    post_submit(b, id, ck->state, seed,
                horde_submit_body_checked(id, generation, ck->state, seed, ck->censored,
                                          ck->type[i], ck->value[i], note));
}

/* PUT to the presigned URL with retries. 0 on success. */
static int upload(bridge *b, const char *id, const char *url, const unsigned char *data, size_t len)
{
    int wait = 500;
    for (int attempt = 1; attempt <= UPLOAD_TRIES; attempt++) {
        horde_reply r;
        int rc = horde_put(url, data, len, UPLOAD_TIMEOUT_S, &r);
        long status = r.status;
        if (rc == 0 && status >= 200 && status < 300) {
            horde_reply_free(&r);
            return 0;
        }
        log_warn("job %s: upload failed (%s%ld), try %d of %d", id, rc ? r.error : "status ",
                 rc ? 0L : status, attempt, UPLOAD_TRIES);
        horde_reply_free(&r);
        pause_ms(b, wait, 1);
        wait *= 2;
    }
    return -1;
}

static void fault_all(bridge *b, const horde_job *job, const char *why)
{
    log_warn("job %s faulted: %s", job->ids[0], why);
    for (int i = 0; i < job->n_ids; i++)
        submit_one(b, job->ids[i], "", HORDE_FAULTED, job->seed, why);
}

/* The job's LoRAs, fetched on the generator thread: a slow CivitAI download
   holds back only the jobs queued behind this one, never the pops, uploads
   and submits of the bridge thread. 0, or -1 with h->rc -1 (the job faults)
   or -3 (a trigger put before the prompt trips the prompt filter). */
static int fetch_loras(bridge *b, held *h)
{
    horde_job *job = &h->job;
    if (horde_job_fetch_loras(job, &b->lora, h->why, sizeof h->why) != 0) {
        h->rc = -1;
        return -1;
    }
    if (horde_safety_check(b->o->safety, job->spec.prompt, job->spec.negative_prompt, h->why,
                           sizeof h->why)) {
        h->rc = -3;
        return -1;
    }
    return 0;
}

/* The generator thread: runs the queued jobs in the child, in pop order. */
static void *generator(void *arg)
{
    bridge *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->queue && !b->quit)
            pthread_cond_wait(&b->work, &b->mu);
        if (!b->queue)
            break;
        held *h = b->queue;
        b->queue = h->next;
        b->running = h;
        b->running_since_ms = mono_ms();
        pthread_mutex_unlock(&b->mu);
        horde_job *job = &h->job;
        int64_t t0 = mono_ms();
        int ttl_ms = job->ttl > 0 ? job->ttl * 1000 : JOB_TIMEOUT_MS;
        h->rc = -1;
        if (*b->o->stop >= 2) {
            snprintf(h->why, sizeof h->why, "stopped before the generation started");
        } else if (job->ttl > 0 && t0 - h->popped_ms > ttl_ms) {
            /* the Horde has given it to another worker already */
            snprintf(h->why, sizeof h->why,
                     "the Horde's time-out (%d s) passed before the engine was free", job->ttl);
            h->rc = -2;
        } else if (job->n_loras > 0 && fetch_loras(b, h) != 0) {
            /* h->rc and h->why say why (a LoRA that cannot be had, a trigger the filter refuses) */
        } else {
            char *spec = job_spec_to_json(&job->spec);
            if (!spec)
                snprintf(h->why, sizeof h->why, "out of memory");
            else
                h->rc = horde_proc_run(&b->proc, spec, ttl_ms, b->o->stop, &h->im, h->why,
                                       sizeof h->why);
            free(spec);
        }
        h->secs = (double)(mono_ms() - t0) / 1000.0;
        h->restarts = b->proc.restarts;
        pthread_mutex_lock(&b->mu);
        b->running = NULL;
        append(&b->finished, h);
        pthread_cond_broadcast(&b->done);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* Uploads and submits one generated job (or faults it). */
static void answer(bridge *b, held *h)
{
    horde_job *job = &h->job;
    if (h->rc == -2) {
        /* still answered: a Horde that has not yet reaped it hands it on at once
           (its 404 otherwise counts the job dropped) */
        log_warn("job %s dropped: %s", job->ids[0], h->why);
        horde_stats_expired(&b->stats);
        fault_all(b, job, h->why);
        return;
    }
    if (h->rc == -3) {
        log_warn("job %s refused: %s", job->ids[0], h->why);
        for (int i = 0; i < job->n_ids; i++)
            submit_one(b, job->ids[i], "", HORDE_CSAM, job->seed, h->why);
        return;
    }
    if (h->rc != 0) {
        horde_stats_generated(&b->stats, 0, 0, h->restarts);
        fault_all(b, job, h->why);
        return;
    }
    horde_images *im = &h->im;
    long px = (long)job->spec.width * job->spec.height;
    horde_pace_observe(&b->pace, px, im->n, im->steps, im->sample_s, im->total_s);
    log_info("job %s: %s %dx%d, %d steps, %d image(s), %.1f s (%.3f MPS/s, estimate %.1f s)",
             job->ids[0], job->model, job->spec.width, job->spec.height, job->spec.steps, im->n,
             h->secs, im->sample_s > 0 ? (double)px * im->n * im->steps / 1e6 / im->sample_s : 0,
             h->est_s);
    horde_stats_generated(&b->stats, job_spec_megapixelsteps(&job->spec), h->secs, h->restarts);
    horde_checked ck;
    const horde_config *c = b->o->cfg;
    if (horde_censor_job(im, c->safety_clip_model[0] != 0, !c->nsfw,
                         job->use_nsfw_censor || c->censor_nsfw, job->spec.width, job->spec.height,
                         &ck) != 0) {
        fault_all(b, job, "the images came back unchecked, or a censored image could not be made");
        return;
    }
    const char *note = job->note[0] ? job->note : NULL; /* a LoRA left out */
    for (int i = 0; i < job->n_ids; i++) {
        if (i >= im->n) {
            submit_one(b, job->ids[i], "", HORDE_FAULTED, job->seed, "fewer images than ids");
            continue;
        }
        if (job->r2[i]) {
            if (upload(b, job->ids[i], job->r2[i], im->webp[i], im->len[i]) == 0)
                submit_image(b, job->ids[i], "R2", im->seed[i], &ck, i, note);
            else
                submit_one(b, job->ids[i], "", HORDE_FAULTED, im->seed[i],
                           "the image could not be uploaded");
        } else { /* no R2 link: the image travels in the submit itself */
            char *b64 = base64_encode(im->webp[i], im->len[i]);
            if (b64)
                submit_image(b, job->ids[i], b64, im->seed[i], &ck, i, note);
            else
                submit_one(b, job->ids[i], "", HORDE_FAULTED, im->seed[i], "out of memory");
            free(b64);
        }
    }
}

/* Answers every job the generator has finished. */
static void answer_finished(bridge *b)
{
    for (;;) {
        pthread_mutex_lock(&b->mu);
        held *h = b->finished;
        if (h)
            b->finished = h->next;
        pthread_mutex_unlock(&b->mu);
        if (!h)
            return;
        answer(b, h);
        horde_images_free(&h->im);
        horde_job_clear(&h->job);
        free(h);
    }
}

/* Jobs held, and the seconds of generation they still need by the pacing's
   estimate. */
static int held_work(bridge *b, double *held_s)
{
    pthread_mutex_lock(&b->mu);
    double s = 0;
    for (const held *h = b->queue; h; h = h->next)
        s += h->est_s;
    if (b->running) {
        double left = b->running->est_s - (double)(mono_ms() - b->running_since_ms) / 1000.0;
        s += left > 0 ? left : 0;
    }
    int n = count(b->queue) + (b->running != NULL) + count(b->finished);
    pthread_mutex_unlock(&b->mu);
    *held_s = s;
    return n;
}

/* Waits up to ms for the generator to finish a job (or a stop). */
static void wait_finished(bridge *b, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->mu);
    if (!b->finished)
        pthread_cond_timedwait(&b->done, &b->mu, &ts);
    pthread_mutex_unlock(&b->mu);
}

/* Sleeps ms, or less when asked to stop, answering what the generator
   finishes meanwhile (a back-off must not hold an image back). */
static void pause_answering(bridge *b, int ms)
{
    for (int64_t end = mono_ms() + ms; mono_ms() < end && !*b->o->stop;) {
        int64_t left = end - mono_ms();
        wait_finished(b, left > 100 ? 100 : (int)(left > 0 ? left : 1));
        answer_finished(b);
    }
}

/* A popped job: answered at once when it cannot or must not run, else held
   for the generator. */
static void take(bridge *b, horde_job *job, double held_s)
{
    if (job->decline[0]) {
        fault_all(b, job, job->decline);
        horde_job_clear(job);
        return;
    }
    char why[512];
    if (horde_safety_check(b->o->safety, job->spec.prompt, job->spec.negative_prompt, why,
                           sizeof why)) {
        log_warn("job %s refused: %s", job->ids[0], why);
        for (int i = 0; i < job->n_ids; i++)
            submit_one(b, job->ids[i], "", HORDE_CSAM, job->seed, why);
        horde_job_clear(job);
        return;
    }
    if (job->use_nsfw_censor && !b->o->cfg->safety_clip_model[0]) {
        /* no image of it may go back unchecked, and nothing here can check one */
        fault_all(b, job, "use_nsfw_censor, and this worker has no safety_clip_model");
        horde_job_clear(job);
        return;
    }
    /* its LoRAs are fetched by the generator, just before it runs (fetch_loras) */
    held *h = calloc(1, sizeof *h);
    if (!h) {
        fault_all(b, job, "out of memory");
        horde_job_clear(job);
        return;
    }
    h->job = *job; /* the job's buffers move to h */
    h->popped_ms = mono_ms();
    h->est_s = horde_pace_estimate(&b->pace, (long)job->spec.width * job->spec.height,
                                   job->spec.steps, job->spec.batch_size);
    if (job->ttl > 0 && h->est_s > 0 && held_s + h->est_s > job->ttl * b->o->ttl_scale)
        log_warn("job %s: %.1f s of held work and %.1f s of its own may pass its time-out (%d s)",
                 job->ids[0], held_s, h->est_s, job->ttl);
    pthread_mutex_lock(&b->mu);
    append(&b->queue, h);
    pthread_cond_signal(&b->work);
    pthread_mutex_unlock(&b->mu);
}

/* One pop. Returns 1 when a job was popped (and taken), 0 when none was
   offered, -1 on an error worth backing off for, -2 on a fatal one. */
static int pop_once(bridge *b, const char *body, double held_s)
{
    horde_reply r;
    if (horde_post_json(b->url_pop, b->o->cfg->api_key, body, b->o->pop_timeout_s, &r) != 0) {
        log_warn("pop failed: %s", r.error);
        return -1;
    }
    if (r.status == 401) {
        log_error("the Horde rejects the api_key (401): %.200s", r.body);
        horde_reply_free(&r);
        return -2;
    }
    if (r.status != 200) {
        /* 403: maintenance mode or a worker the Horde refuses; 5xx: its trouble */
        log_warn("pop refused (%ld): %.300s", r.status, r.body);
        horde_reply_free(&r);
        return -1;
    }
    horde_job job;
    char err[256];
    int rc = horde_payload_read(r.body, b->o->cfg, b->o->models_dir, &job, err, sizeof err);
    horde_reply_free(&r);
    if (rc < 0) {
        log_warn("pop reply unusable: %s", err);
        if (job.n_ids > 0) { /* answer it anyway, so the Horde need not time it out */
            snprintf(job.decline, sizeof job.decline, "malformed payload: %.200s", err);
            fault_all(b, &job, job.decline);
        }
        horde_job_clear(&job);
        return job.n_ids > 0 ? 1 : -1;
    }
    if (rc == 1)
        take(b, &job, held_s);
    else
        horde_job_clear(&job);
    return rc;
}

int horde_bridge_run(const horde_bridge_options *o)
{
    const horde_config *c = o->cfg;
    bridge b = {.o = o,
                .proc = {.self_exe = o->self_exe,
                         .models_dir = o->models_dir,
                         .threads = o->threads,
                         .precision = o->precision}};
    snprintf(b.url_pop, sizeof b.url_pop, "%s/api/v2/generate/pop", c->horde_url);
    snprintf(b.url_submit, sizeof b.url_submit, "%s/api/v2/generate/submit", c->horde_url);
    snprintf(b.lora_dir, sizeof b.lora_dir, "%s/loras",
             c->cache_home[0] ? c->cache_home : o->models_dir);
    b.lora = (horde_lora_options){.dir = b.lora_dir,
                                  .civitai_url = c->civitai_url,
                                  .token = c->civitai_api_token,
                                  .max_bytes = (long long)c->max_lora_cache_size * 1000000000LL,
                                  .nsfw = c->nsfw,
                                  .stop = o->stop,
                                  .models_dir = o->models_dir};
    if (c->allow_lora && HORDE_CAN_LORA)
        b.proc.lora_dir = b.lora_dir;
    if (c->safety_clip_model[0])
        b.proc.safety_clip = c->safety_clip_model;
    /* models on disk are offered as they are; the rest are downloaded first */
    const char *served[HORDE_MAX_MODELS];
    horde_models_options mo = {.models_dir = o->models_dir,
                               .reference = c->model_reference,
                               .cache_dir = c->cache_home,
                               .budget = (long long)c->download_budget_gb * 1000000000LL,
                               .stop = o->stop};
    int n = horde_models_resolve((const char *const *)c->models, c->n_models, &mo, served);
    if (n == 0) {
        log_error("no model of models_to_load is on disk under %s", o->models_dir);
        return 1;
    }
    log_info("serving %d model(s) to %s as '%s', max_pixels %ld, queue_size %d", n, c->horde_url,
             c->dreamer_name, c->max_pixels, c->queue_size);
    horde_stats_init(&b.stats);
    if (o->status_port && horde_stats_serve(&b.stats, o->status_port) != 0) {
        log_error("cannot serve /metrics on 127.0.0.1:%d", o->status_port);
        horde_stats_close(&b.stats);
        return 1;
    }
    horde_pace_init(&b.pace);
    b.pace.ttl_scale = o->ttl_scale > 0 ? o->ttl_scale : 1;
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.work, NULL);
    pthread_cond_init(&b.done, NULL);
    pthread_t gen;
    if (pthread_create(&gen, NULL, generator, &b) != 0) {
        log_error("cannot start the generator thread");
        horde_stats_close(&b.stats);
        return 1;
    }
    b.hour_start_ms = mono_ms();
    int code = 0, wait = 1000, skipping = 0;
    for (;;) {
        answer_finished(&b);
        if (mono_ms() - b.hour_start_ms >= 3600 * 1000) {
            log_info("last hour: %ld job(s), %.1f kudos", b.hour_jobs, b.hour_kudos);
            b.hour_start_ms = mono_ms();
            b.hour_jobs = 0;
            b.hour_kudos = 0;
        }
        double held_s;
        int held_n = held_work(&b, &held_s);
        int measured = b.pace.jobs > 0;
        long max_pixels = horde_pace_pop_pixels(&b.pace, c->max_pixels, held_s, held_n,
                                                (double)mono_ms() / 1000.0);
        if (measured && b.pace.jobs == 0)
            log_info("pops paused with nothing held for %.0f s: measuring the speed again",
                     HORDE_PACE_RETRY_S * b.pace.ttl_scale);
        horde_stats_pace(&b.stats, max_pixels ? max_pixels : b.stats.max_pixels, b.pace.mps,
                         held_n);
        if (*o->stop || code) {
            if (held_n == 0)
                break;
            wait_finished(&b, 100); /* every held job is answered before the bridge ends */
            continue;
        }
        /* room to pop: the running job plus queue_size held; ahead of the
           running one only once a job has been timed */
        if (held_n > 0 && (held_n > c->queue_size || b.pace.mps <= 0)) {
            wait_finished(&b, 1000);
            continue;
        }
        if (max_pixels == 0) {
            if (!skipping)
                log_warn("pops paused: %.1f s of work held, and no job of %d steps finishes "
                         "within the Horde's time-out after it at %.3f MPS/s",
                         held_s, HORDE_PACE_REF_STEPS, b.pace.mps);
            skipping = 1;
            horde_stats_skipped(&b.stats);
            wait_finished(&b, held_n ? 1000 : o->idle_ms);
            continue;
        }
        if (skipping)
            log_info("pops resumed, max_pixels %ld", max_pixels);
        skipping = 0;
        char *body = horde_pop_body(c, served, n, max_pixels, max_pixels < c->max_pixels);
        int rc = body ? pop_once(&b, body, held_s) : -1;
        free(body);
        if (rc == -2) {
            code = 1; /* the held jobs are still answered */
            continue;
        }
        if (rc == -1) {
            pause_answering(&b, wait);
            wait = wait * 2 > o->backoff_max_ms ? o->backoff_max_ms : wait * 2;
            continue;
        }
        wait = 1000 < o->backoff_max_ms ? 1000 : o->backoff_max_ms;
        if (rc == 0)
            pause_answering(&b, o->idle_ms);
    }
    pthread_mutex_lock(&b.mu);
    b.quit = 1;
    pthread_cond_broadcast(&b.work);
    pthread_mutex_unlock(&b.mu);
    pthread_join(gen, NULL);
    /* the child's parent-death signal follows the thread that forked it: the
       generator's end has killed it already; this reaps it */
    horde_proc_stop(&b.proc, 5000);
    log_info("stopped: %ld ok, %ld faulted, %ld dropped, %.1f kudos", b.stats.jobs[HORDE_OK],
             b.stats.jobs[HORDE_FAULTED], b.stats.dropped, b.stats.kudos);
    horde_stats_close(&b.stats);
    pthread_cond_destroy(&b.work);
    pthread_cond_destroy(&b.done);
    pthread_mutex_destroy(&b.mu);
    return code;
}
