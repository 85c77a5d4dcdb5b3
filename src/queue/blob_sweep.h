/*
 * blob_sweep - deletes the blobs of jobs the job store does not have: the
 * inputs of a submit that a crash cut between putting them and queueing the
 * job, and the files of a purge that a crash cut after the rows went. Run at
 * a start, before the API takes submits (a submit puts its inputs before its
 * job exists).
 */
#ifndef GS_BLOB_SWEEP_H
#define GS_BLOB_SWEEP_H

#include "queue/blob_store.h"
#include "queue/store.h"

/* *removed gets how many jobs' blobs went. A job the store cannot be asked
   about keeps its blobs, and the first such failure is returned. */
GS_NODISCARD gs_status blob_sweep(blob_store *b, job_store *s, int *removed, svc_error *err);

#endif
