/*
 * job_submit - the one way a request becomes a queued job, whatever protocol
 * it came in by: every front door builds a job_spec its own way, then checks
 * it and queues it here, so limits, keys and the store behave the same for
 * all of them. Errors are replied in the request's protocol's shape.
 */
#ifndef GS_JOB_SUBMIT_H
#define GS_JOB_SUBMIT_H

#include "api/http.h"
#include "job/job_spec.h"
#include "queue/store.h"

/* What job_spec_from_json cannot check alone: the model, sizes, samplers and
   images (job_spec_validate), the cost against the server's and the key's
   limits, the prompts' chunks. Then normalises (draws the seed). 0, or -1
   with e. */
int job_submit_check(http_request *r, job_spec *spec, job_error *e);

/* Queues a checked spec as r's caller's job: its inputs into the blob store,
   the key's max_active and --max-queued, the insert, the workers woken. 0
   with the job's id and its queue position, or -1 with the error reply
   queued in *ret and nothing of the job kept. */
int job_submit(http_request *r, job_spec *spec, char id[JOB_ID_LEN + 1], int *position,
               enum MHD_Result *ret);

#endif
