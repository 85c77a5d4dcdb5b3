/*
 * store - the job store of `gesso serve`: a persistent priority queue with
 * leases. One interface with engines behind it, chosen by the URL given to
 * store_open: an embedded file database for one machine, a database server
 * for many, with the same semantics (store_engine.h says what an engine
 * provides).
 *
 * Semantics: jobs run at least once and record exactly one result. A worker
 * claims the best queued job (priority, then arrival) with a lease it renews
 * by heartbeats; a job whose lease expires goes back to the queue with its
 * attempt counted, and ends failed once it has used up its attempts. A result
 * is recorded only by the worker that holds the job's current lease.
 */
#ifndef GS_STORE_H
#define GS_STORE_H

#include <stdint.h>

#include "support/error.h"

#define JOB_ID_LEN 36 /* UUIDv7, text form */

/* True when s has the form of a job id (36 of 0-9, a-f, '-'): safe to use as
   a file name or a row key. */
int job_id_ok(const char *s);

typedef enum job_status {
    JOB_QUEUED = 0,
    JOB_RUNNING = 1,
    JOB_SUCCEEDED = 2,
    JOB_FAILED = 3,
    JOB_CANCELLED = 4
} job_status;

/* Wall-clock Unix milliseconds: the clock of every timestamp and lease in the
   store (wall time, because several processes, and later machines, compare them). */
int64_t store_clock_ms(void);

const char *job_status_name(job_status s);
/* -1 when the name is unknown */
int job_status_parse(const char *name);

typedef struct job_record {
    char id[JOB_ID_LEN + 1];
    char owner[64];
    char model[256];
    char worker[64];
    job_status status;
    int priority;
    int attempts;
    int cancel_requested;
    int step, steps;
    int preview_step; /* step of the newest preview image, 0 when none */
    double eta_s;     /* the worker's estimate of the time left, -1 when unknown */
    double megapixelsteps;
    int64_t created_ms, started_ms, finished_ms, lease_expires_ms;
    char *params; /* JSON text; owned by the record */
    char *result; /* JSON text or NULL; owned by the record */
    char *error;  /* message or NULL; owned by the record */
} job_record;

void job_record_clear(job_record *r); /* frees the owned strings */

typedef struct job_store job_store;

/* Opens the store at url, creating it if needed. The URL's scheme picks the
   engine (the table in store.c lists them); a plain path, without a scheme,
   is a database file of the embedded engine. An unknown scheme, or an engine
   this build lacks, fails with GS_ERR_INVALID_ARGUMENT and says which. */
GS_NODISCARD gs_status store_open(const char *url, job_store **out, svc_error *err);
void store_close(job_store *s); /* s may be NULL */

/* Whether the engine of url keeps a job's blobs in its own database (a
   database server: blob_open takes the same URL), so that every machine
   reaches them; else they are files beside the store. */
int store_holds_blobs(const char *url);

/* Queues a job; id gets its UUIDv7, *position its place among queued jobs (0 = next). */
GS_NODISCARD gs_status store_submit(job_store *s, const char *owner, const char *model,
                                    int priority, const char *params_json, double megapixelsteps,
                                    int64_t now_ms, char id[JOB_ID_LEN + 1], int *position,
                                    svc_error *err);

/* A new job id (UUIDv7 of now_ms), for a caller that must store things under
   the id before the job is queued (its input blobs): then store_submit_as. */
void store_new_id(int64_t now_ms, char id[JOB_ID_LEN + 1]);

/* store_submit under an id from store_new_id; GS_ERR_INVALID_ARGUMENT when id
   is not a job id or a job has it already (that job is left as it was). */
GS_NODISCARD gs_status store_submit_as(job_store *s, const char *id, const char *owner,
                                       const char *model, int priority, const char *params_json,
                                       double megapixelsteps, int64_t now_ms, int *position,
                                       svc_error *err);

/* GS_ERR_INVALID_ARGUMENT when no such job. */
GS_NODISCARD gs_status store_get(job_store *s, const char *id, job_record *out, svc_error *err);

#define STORE_MAX_PREFER 64 /* models a claim can prefer; later ones are ignored */

/* Claims the best queued job: the best one for any of the n_prefer models in
   prefer (the worker's loaded models; prefer may be NULL when n_prefer is 0),
   unless the best job overall outranks it or has waited longer than starve_ms,
   else the best overall. *claimed = 0 when the queue is empty. */
GS_NODISCARD gs_status store_claim(job_store *s, const char *worker, const char *const *prefer,
                                   int n_prefer, int64_t now_ms, int lease_ms, int64_t starve_ms,
                                   job_record *out, int *claimed, svc_error *err);

#define STORE_MAX_ONLY 256 /* models a claim can be restricted to; later ones are ignored */

/* store_claim among the jobs for the n_only models in only alone (a worker
   that has those models' files, and no others): the rest wait for workers
   that have theirs. only NULL: any job, as store_claim. */
GS_NODISCARD gs_status store_claim_among(job_store *s, const char *worker,
                                         const char *const *prefer, int n_prefer,
                                         const char *const *only, int n_only, int64_t now_ms,
                                         int lease_ms, int64_t starve_ms, job_record *out,
                                         int *claimed, svc_error *err);

/* What a worker reports of a running job. */
typedef struct job_progress {
    int step, steps;
    int preview_step; /* 0 = no preview yet */
    double eta_s;     /* -1 = unknown */
} job_progress;

/* Renews the lease and records progress. *lost = 1 when the worker no longer
   holds the job (expired and requeued, or finished); *cancel = 1 when a cancel
   was asked for. */
GS_NODISCARD gs_status store_heartbeat(job_store *s, const char *id, const char *worker,
                                       int64_t now_ms, int lease_ms, const job_progress *p,
                                       int *cancel, int *lost, svc_error *err);

/* Gives a running job back to the queue without counting the attempt (a
   worker that was asked to stop). *released = 0 when worker did not hold it. */
GS_NODISCARD gs_status store_release(job_store *s, const char *id, const char *worker,
                                     int *released, svc_error *err);

/* Records the one result (status succeeded/failed/cancelled) if worker still
   holds the job; *recorded = 0 otherwise (a stale worker's result is dropped). */
GS_NODISCARD gs_status store_finish(job_store *s, const char *id, const char *worker,
                                    job_status status, const char *result_json, const char *error,
                                    int64_t now_ms, int *recorded, svc_error *err);

/* Cancels: a queued job ends cancelled at once; a running one gets
   cancel_requested (its worker stops at the next step). *status gets the
   job's status after the call. GS_ERR_INVALID_ARGUMENT when no such job. */
GS_NODISCARD gs_status store_cancel(job_store *s, const char *id, int64_t now_ms,
                                    job_status *status, svc_error *err);

/* Requeues running jobs whose lease expired before now; those that used
   max_attempts end failed with the reason. Counts are returned. */
GS_NODISCARD gs_status store_expire_leases(job_store *s, int64_t now_ms, int max_attempts,
                                           int *requeued, int *failed, svc_error *err);

/* The same for the running jobs of one worker known to be dead (its process
   was seen to exit), without waiting for their leases: each attempt counts,
   as a crash may be the job's doing. */
GS_NODISCARD gs_status store_expire_worker(job_store *s, const char *worker, int64_t now_ms,
                                           int max_attempts, int *requeued, int *failed,
                                           svc_error *err);

/* Up to max jobs, newest first, all or with one status (status < 0: all), of
   one owner or of all (owner NULL). *out (malloc'd, *n records) is freed
   with store_list_free. */
GS_NODISCARD gs_status store_list(job_store *s, int status, const char *owner, int max,
                                  job_record **out, int *n, svc_error *err);
void store_list_free(job_record *list, int n);

/* Queued and running jobs per model, of one owner or of all (owner NULL),
   calling fn for each (model, queued, running). */
GS_NODISCARD gs_status store_depth_by_model(job_store *s, const char *owner,
                                            void (*fn)(void *user, const char *model, int queued,
                                                       int running),
                                            void *user, svc_error *err);

/* Number of jobs with each status (array indexed by job_status), of one
   owner or of all (owner NULL). */
GS_NODISCARD gs_status store_counts(job_store *s, const char *owner, int counts[5], svc_error *err);

/* ---- accounting and housekeeping ---- */

/* Jobs ahead of a queued job (0 = next); -1 when it is not queued. */
GS_NODISCARD gs_status store_queue_position(job_store *s, const char *id, int *position,
                                            svc_error *err);

/* Queued plus running jobs of one owner (per-key limits). */
GS_NODISCARD gs_status store_active_count(job_store *s, const char *owner, int *n, svc_error *err);

/* What the jobs that finished since since_ms did. */
typedef struct job_stats {
    int succeeded, failed, cancelled;
    double megapixelsteps;  /* of the succeeded jobs */
    double busy_s;          /* summed run time (start to finish) of the succeeded jobs */
    int64_t first_start_ms; /* earliest start among them, 0 when none */
    double step_s[3];       /* p50, p90, p99 of the sampler step times, 0 when none */
    double wait_s[3];       /* p50, p90, p99 of submit-to-start waits, 0 when none */
    int step_samples, wait_samples;
} job_stats;

/* Reads step times from each result's "step_ms" array; looks at the newest
   max_jobs finished jobs at most, of one owner or of all (owner NULL). */
GS_NODISCARD gs_status store_stats(job_store *s, const char *owner, int64_t since_ms, int max_jobs,
                                   job_stats *out, svc_error *err);

/* A quick check of the store's own integrity (SQLite: every page readable
   and well-formed), for a server's start: a damaged store is refused then,
   not found out by the first requests. */
GS_NODISCARD gs_status store_check(job_store *s, svc_error *err);

/* The bytes the store's database takes on disk (an embedded engine: its
   files); 0 for an engine that cannot tell. */
GS_NODISCARD gs_status store_disk_bytes(job_store *s, int64_t *bytes, svc_error *err);

/* Deletes finished jobs (succeeded, failed, cancelled) that finished before
   before_ms, calling fn(user, id) for each first (to remove its files).
   *n gets how many went. */
GS_NODISCARD gs_status store_purge(job_store *s, int64_t before_ms,
                                   void (*fn)(void *user, const char *id), void *user, int *n,
                                   svc_error *err);

/* ---- workers: who is alive and which models each holds loaded ---- */

typedef struct worker_record {
    char name[64];
    int pid;
    int64_t seen_ms; /* last report */
    char *models;    /* JSON array of model names; owned by the record */
    char *info;      /* JSON object, what the worker says of itself (worker.c: host, state,
                        job, models available...); owned by the record */
} worker_record;

/* Records that worker name (process pid) is alive at now_ms and holds the
   models in models_json (a JSON array of names), replacing its last report;
   info_json (a JSON object; NULL: {}) is the rest of what it says of itself,
   kept as it is for readers (GET /v1/workers). */
GS_NODISCARD gs_status store_worker_report(job_store *s, const char *name, int pid,
                                           const char *models_json, const char *info_json,
                                           int64_t now_ms, svc_error *err);

/* Drops worker name's row (it exited, or its process is known dead). */
GS_NODISCARD gs_status store_worker_remove(job_store *s, const char *name, svc_error *err);

/* Workers seen at or after since_ms (older rows count as gone), by name.
 *out (malloc'd, *n records) is freed with store_workers_free. */
GS_NODISCARD gs_status store_workers_list(job_store *s, int64_t since_ms, worker_record **out,
                                          int *n, svc_error *err);
void store_workers_free(worker_record *list, int n);

/* ---- change notifications across machines (engines that have them) ----
   A database server tells every connection that listens of each change to a
   job, committed by anyone: so a front end's event streams move for jobs that
   workers on other machines run, and idle workers wake when a job is queued
   through any front end. A notification carries no data (the store stays the
   one truth) and may be lost (a lost connection): listeners keep a slow
   fallback look of their own. The embedded engine has none: on one machine
   the supervisor's pipes carry the same news. */

#define STORE_CHANGE_JOB 'j'   /* job id changed (progress, result, cancel asked) */
#define STORE_CHANGE_QUEUE 'q' /* job id changed status: the queue's order moved */
#define STORE_CHANGE_ALL 'a'   /* notifications may have been missed: look at everything */

typedef enum store_listen_what {
    STORE_LISTEN_JOBS,  /* every change of every job (a front end's event hub) */
    STORE_LISTEN_QUEUED /* only "a job was queued" (an idle worker); id is "" */
} store_listen_what;

/* Starts listening on this handle's connection; *supported = 0 (and nothing
   else happens) for an engine without notifications. A lost connection made
   anew listens again, and reports STORE_CHANGE_ALL once. */
GS_NODISCARD gs_status store_listen(job_store *s, store_listen_what what, int *supported,
                                    svc_error *err);

/* The descriptor that turns readable when notifications arrive; -1 when not
   listening. It may change after any call on the handle: ask again each time. */
int store_listen_fd(job_store *s);

/* Hands the notifications that have arrived to fn(user, kind, id), without
   waiting; *n (may be NULL) gets how many. GS_ERR_IO when the connection was
   lost and cannot be made again (try later: the next call tries again). */
GS_NODISCARD gs_status store_changes(job_store *s,
                                     void (*fn)(void *user, char kind, const char *id), void *user,
                                     int *n, svc_error *err);

#endif
