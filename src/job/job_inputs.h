/*
 * job_inputs - a job's input images (its init image; a mask later) live in
 * the blob store, never in its stored spec. The API moves a client's inline
 * images there before the job is queued: image i of the spec becomes the
 * job's input blob i, and the spec keeps a reference to it (size, SHA-256).
 * The worker reads them back before it runs the job, checking both. They go
 * with the job's other blobs (blob_delete_job) when it is purged. So the job
 * database grows by a few hundred bytes a job whatever its images, and
 * reading or listing jobs reads none.
 */
#ifndef GS_JOB_INPUTS_H
#define GS_JOB_INPUTS_H

#include <stddef.h>

#include "job/job_spec.h"
#include "queue/blob_store.h"

/* At most the bytes job_inputs_put would add to the blob store for s (its
   inline images, sized from their base64 text without decoding it). */
size_t job_inputs_bytes(job_spec *s);

/* Puts each inline image of s into b as an input blob of job id, and puts
   its reference in its place in s. On failure none of the job's blobs is
   left in b (s is for refusing the job then). */
GS_NODISCARD gs_status job_inputs_put(blob_store *b, const char *id, job_spec *s, svc_error *err);

/* Reads each stored image of s back from job id's input blobs in b, into
   the image's data: GS_ERR_INVALID_ARGUMENT when a blob is missing,
   GS_ERR_FORMAT when its size or SHA-256 is not the reference's. */
GS_NODISCARD gs_status job_inputs_load(blob_store *b, const char *id, job_spec *s, svc_error *err);

#endif
