/* bridge - pop, run, upload, submit, with retries and back-off. */
#include "horde/bridge.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "horde/client.h"
#include "horde/lora_cache.h"
#include "horde/model_ref.h"
#include "horde/payload.h"
#include "horde/pop.h"
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

typedef struct bridge {
    const horde_bridge_options *o;
    horde_proc proc;
    char url_pop[600], url_submit[600];
    horde_stats stats;
    char lora_dir[1024]; /* cache_home/loras (or the models folder's) */
    horde_lora_options lora;
    int64_t hour_start_ms;
    long hour_jobs;
    double hour_kudos;
} bridge;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* Submits one image's result, retrying what can succeed later. */
static void submit_one(bridge *b, const char *id, const char *generation, horde_state state,
                       uint64_t seed, const char *why)
{
    char *body = horde_submit_body(id, generation, state, seed, why);
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

static void run_job(bridge *b, horde_job *job)
{
    if (job->decline[0]) {
        fault_all(b, job, job->decline);
        return;
    }
    char why[512];
    if (horde_safety_check(b->o->safety, job->spec.prompt, job->spec.negative_prompt, why,
                           sizeof why)) {
        log_warn("job %s refused: %s", job->ids[0], why);
        for (int i = 0; i < job->n_ids; i++)
            submit_one(b, job->ids[i], "", HORDE_CSAM, job->seed, why);
        return;
    }
    if (job->n_loras > 0) { /* fetched now; a LoRA that cannot be is the job's fault */
        if (horde_job_fetch_loras(job, &b->lora, why, sizeof why) != 0) {
            fault_all(b, job, why);
            return;
        }
        /* a trigger put before the prompt passes the filter too */
        if (horde_safety_check(b->o->safety, job->spec.prompt, job->spec.negative_prompt, why,
                               sizeof why)) {
            log_warn("job %s refused: %s", job->ids[0], why);
            for (int i = 0; i < job->n_ids; i++)
                submit_one(b, job->ids[i], "", HORDE_CSAM, job->seed, why);
            return;
        }
    }
    char *spec = job_spec_to_json(&job->spec);
    if (!spec) {
        fault_all(b, job, "out of memory");
        return;
    }
    horde_images im;
    int64_t t0 = mono_ms();
    int timeout = job->ttl > 0 ? job->ttl * 1000 : JOB_TIMEOUT_MS;
    int rc = horde_proc_run(&b->proc, spec, timeout, b->o->stop, &im, why, sizeof why);
    free(spec);
    if (rc != 0) {
        horde_stats_generated(&b->stats, 0, 0, b->proc.restarts);
        fault_all(b, job, why);
        return;
    }
    double secs = (double)(mono_ms() - t0) / 1000.0;
    log_info("job %s: %s %dx%d, %d steps, %d image(s), %.1f s", job->ids[0], job->model,
             job->spec.width, job->spec.height, job->spec.steps, im.n, secs);
    horde_stats_generated(&b->stats, job_spec_megapixelsteps(&job->spec), secs, b->proc.restarts);
    for (int i = 0; i < job->n_ids; i++) {
        if (i >= im.n) {
            submit_one(b, job->ids[i], "", HORDE_FAULTED, job->seed, "fewer images than ids");
            continue;
        }
        if (job->r2[i]) {
            if (upload(b, job->ids[i], job->r2[i], im.webp[i], im.len[i]) == 0)
                submit_one(b, job->ids[i], "R2", HORDE_OK, im.seed[i], NULL);
            else
                submit_one(b, job->ids[i], "", HORDE_FAULTED, im.seed[i],
                           "the image could not be uploaded");
        } else { /* no R2 link: the image travels in the submit itself */
            char *b64 = base64_encode(im.webp[i], im.len[i]);
            if (b64)
                submit_one(b, job->ids[i], b64, HORDE_OK, im.seed[i], NULL);
            else
                submit_one(b, job->ids[i], "", HORDE_FAULTED, im.seed[i], "out of memory");
            free(b64);
        }
    }
    horde_images_free(&im);
}

/* One pop. Returns 1 when a job was handled, 0 when none was offered, -1 on
   an error worth backing off for, -2 on a fatal one. */
static int pop_once(bridge *b, const char *body)
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
        run_job(b, &job);
    horde_job_clear(&job);
    return rc;
}

int horde_bridge_run(const horde_bridge_options *o)
{
    const horde_config *c = o->cfg;
    bridge b = {
        .o = o,
        .proc = {.self_exe = o->self_exe, .models_dir = o->models_dir, .threads = o->threads}};
    snprintf(b.url_pop, sizeof b.url_pop, "%s/api/v2/generate/pop", c->horde_url);
    snprintf(b.url_submit, sizeof b.url_submit, "%s/api/v2/generate/submit", c->horde_url);
    snprintf(b.lora_dir, sizeof b.lora_dir, "%s/loras",
             c->cache_home[0] ? c->cache_home : o->models_dir);
    b.lora = (horde_lora_options){.dir = b.lora_dir,
                                  .civitai_url = c->civitai_url,
                                  .token = c->civitai_api_token,
                                  .max_bytes = (long long)c->max_lora_cache_size * 1000000000LL,
                                  .nsfw = c->nsfw,
                                  .stop = o->stop};
    if (c->allow_lora && HORDE_CAN_LORA)
        b.proc.lora_dir = b.lora_dir;
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
    char *body = horde_pop_body(c, served, n);
    if (!body)
        return 1;
    log_info("serving %d model(s) to %s as '%s', max_pixels %ld", n, c->horde_url, c->dreamer_name,
             c->max_pixels);
    horde_stats_init(&b.stats);
    if (o->status_port && horde_stats_serve(&b.stats, o->status_port) != 0) {
        log_error("cannot serve /metrics on 127.0.0.1:%d", o->status_port);
        horde_stats_close(&b.stats);
        free(body);
        return 1;
    }
    b.hour_start_ms = mono_ms();
    int code = 0, wait = 1000;
    while (!*o->stop) {
        if (mono_ms() - b.hour_start_ms >= 3600 * 1000) {
            log_info("last hour: %ld job(s), %.1f kudos", b.hour_jobs, b.hour_kudos);
            b.hour_start_ms = mono_ms();
            b.hour_jobs = 0;
            b.hour_kudos = 0;
        }
        int rc = pop_once(&b, body);
        if (rc == -2) {
            code = 1;
            break;
        }
        if (rc == -1) {
            pause_ms(&b, wait, 0);
            wait = wait * 2 > o->backoff_max_ms ? o->backoff_max_ms : wait * 2;
            continue;
        }
        wait = 1000 < o->backoff_max_ms ? 1000 : o->backoff_max_ms;
        if (rc == 0)
            pause_ms(&b, o->idle_ms, 0);
    }
    free(body);
    horde_proc_stop(&b.proc, 5000);
    log_info("stopped: %ld ok, %ld faulted, %ld dropped, %.1f kudos", b.stats.jobs[HORDE_OK],
             b.stats.jobs[HORDE_FAULTED], b.stats.dropped, b.stats.kudos);
    horde_stats_close(&b.stats);
    return code;
}
