/*
 * native_inputs - what a submit stores besides its job: the new job's input
 * images go to the blob store before the job is queued (job_inputs.h), and
 * the store-wide cap on bytes held (--max-store-bytes) is checked first.
 */
#ifndef GS_NATIVE_INPUTS_H
#define GS_NATIVE_INPUTS_H

#include "api/http.h"
#include "api/server_private.h"
#include "job/job_spec.h"

/* Makes the new job's id, refuses a job that would take the store past its
   cap (507 store_full), moves the spec's inline images into the blob store
   under the id, and writes the text the store keeps (with their references)
   into *norm (malloc'd). 0, or -1 with the error reply queued in *ret and
   nothing of the job's left in the blob store. */
int native_inputs_put(http_request *r, job_spec *spec, char **norm, char id[JOB_ID_LEN + 1],
                      enum MHD_Result *ret);

/* Deletes what native_inputs_put stored, for a job that was not queued after all. */
void native_inputs_drop(http_request *r, const char *id);

/* At a start, before requests: deletes blobs a crash left without a job,
   recounts the blob store's bytes, and sets s->max_store_bytes from the
   options (the auto default: what the store holds plus half the free disk
   space of the data directory). */
void native_inputs_start(server *s, job_store *own);

#endif
