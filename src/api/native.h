/* native - what the files of gesso's own /v1 API share. */
#ifndef GS_NATIVE_H
#define GS_NATIVE_H

#include <jansson.h>

#include "api/http.h"
#include "api/server_private.h"
#include "job/job_spec.h"
#include "support/json_u64.h"

/* ---- native_jobs.c ---- */
enum MHD_Result native_post_job(http_request *r);
enum MHD_Result native_get_job(http_request *r);
enum MHD_Result native_cancel_job(http_request *r);
enum MHD_Result native_get_image(http_request *r);
enum MHD_Result native_list_jobs(http_request *r);
enum MHD_Result native_job_events(http_request *r); /* job_events.c */

/* ---- native_info.c ---- */
enum MHD_Result native_list_models(http_request *r);
enum MHD_Result native_get_queue(http_request *r);
enum MHD_Result native_get_stats(http_request *r);
enum MHD_Result native_get_metrics(http_request *r);
enum MHD_Result native_healthz(http_request *r);
enum MHD_Result native_list_workers(http_request *r); /* native_workers.c */

/* ---- shared ---- */

/* o as reply text with the member "seed" added: its exact value when seed
   holds one in 0..2^64-1, else null. Text, since jansson cannot hold a seed
   past 2^63-1. NULL when out of memory. */
char *native_dumps_with_seed(json_t *o, const json_int_literal *seed);

/* The image URLs of a job from its result JSON (may be NULL: none). */
json_t *native_image_urls(const char *id, const json_t *result);

/* Reads job id into *out if r's key may see it; otherwise queues the error
   reply, sets *ret and returns -1. */
int native_job_access(http_request *r, const char *id, job_record *out, enum MHD_Result *ret);
/* native_job_access for a check only: 0 when r's key may act on the job. */
int native_job_allowed(http_request *r, const char *id, enum MHD_Result *ret);

/* The HTTP status a refused job spec gets. */
int native_spec_status(job_reason reason);

#endif
