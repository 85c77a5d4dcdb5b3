/*
 * job_submit - checks and queues a job_spec for any protocol (job_submit.h).
 * The key's count of active jobs and the insert happen under one lock, so two
 * submits at once cannot both pass a max_active of one.
 */
#include "api/job_submit.h"

#include <stdio.h>
#include <stdlib.h>

#include "api/native_inputs.h"
#include "api/server_private.h"

/* The job's cost estimate against the tighter of the server's --max-job-cost
   and the key's max_cost. */
static int check_cost(const http_request *r, const job_spec *spec, job_error *e)
{
    double server_max = r->s->o->limits.max_cost, key_max = r->key ? r->key->max_cost : 0;
    int key_binds = key_max > 0 && (server_max <= 0 || key_max < server_max);
    return job_spec_check_cost(spec, key_binds ? key_max : server_max,
                               key_binds ? "this key's" : "the server's", e);
}

int job_submit_check(http_request *r, job_spec *spec, job_error *e)
{
    const serve_options *o = r->s->o;
    if (job_spec_validate(spec, &o->limits, o->models_dir, e) != 0 || check_cost(r, spec, e) != 0 ||
        job_spec_check_prompts(spec, &o->limits, r->s->tok, e) != 0)
        return -1;
    job_spec_normalise(spec);
    return 0;
}

int job_submit(http_request *r, job_spec *spec, char id[JOB_ID_LEN + 1], int *position,
               enum MHD_Result *ret)
{
    server *s = r->s;
    char *norm = NULL;
    if (native_inputs_put(r, spec, &norm, id, ret) != 0)
        return -1;
    const api_key *key = r->key;
    svc_error err = {0};
    int active = 0, counts[5] = {0};
    job_store *store = server_store(s, &err);
    gs_status st = store ? GS_OK : GS_ERR_IO;
    pthread_mutex_lock(&s->submit_mu); /* the counts hold until the insert */
    if (st == GS_OK && key && key->max_active > 0)
        st = store_active_count(store, key->name, &active, &err);
    if (st == GS_OK && s->o->max_queued > 0)
        st = store_counts(store, NULL, counts, &err);
    int over_key = key && key->max_active > 0 && active >= key->max_active;
    int over_all = s->o->max_queued > 0 && counts[JOB_QUEUED] >= s->o->max_queued;
    if (st == GS_OK && !over_key && !over_all)
        st = store_submit_as(store, id, key ? key->name : "", spec->model, spec->priority, norm,
                             job_spec_megapixelsteps(spec), server_now_ms(), position, &err);
    pthread_mutex_unlock(&s->submit_mu);
    free(norm);
    if (st != GS_OK || over_key || over_all)
        native_inputs_drop(r, id);
    if (st != GS_OK) {
        *ret = http_error(r, 503, "store_unavailable", err.msg);
        return -1;
    }
    if (over_key) {
        char msg[160];
        snprintf(msg, sizeof msg, "this key already has %d queued or running jobs (its limit)",
                 active);
        *ret = http_error_with(r, 429, "too_many_jobs", msg, "Retry-After: 5");
        return -1;
    }
    if (over_all) {
        *ret = http_error_with(r, 503, "queue_full", "the queue is full; try again later",
                               "Retry-After: 10");
        return -1;
    }
    supervisor_wake(s->sup);
    hub_publish_queue(s->hub);
    return 0;
}
