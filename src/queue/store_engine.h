/*
 * store_engine - what a job store engine provides: one function per
 * operation of store.h, reached through the ops table that every handle
 * starts with. Not for use outside src/queue.
 *
 * store.c does what is the same for every engine before it calls one: it makes
 * the job ids, fills in defaults and checks arguments (listed below), so an
 * engine only stores and queries. An engine's own handle embeds struct
 * job_store as its first member.
 */
#ifndef GS_STORE_ENGINE_H
#define GS_STORE_ENGINE_H

#include "queue/store.h"

/* Each operation has the meaning of its store_* namesake in store.h, and may
   rely on what store.c does first:
     - outputs are already set as for a call that finds nothing (*claimed,
       *recorded, *released, *cancel, *n, *requeued, *failed = 0; *lost = 1;
       *position = -1; *out = NULL for lists; *bytes = 0; counts and stats zeroed);
     - submit: id is the new job's id (of job id form); owner and model are not
       NULL; an id in use fails with GS_ERR_INVALID_ARGUMENT;
     - claim: 0 <= n_prefer <= STORE_MAX_PREFER, prefer not NULL when n_prefer > 0;
       only NULL (any job) or 1 <= n_only <= STORE_MAX_ONLY;
     - finish: status is succeeded, failed or cancelled;
     - expire_leases: reason is the error recorded on the jobs that fail; worker
       NULL expires the leases that ran out before now_ms, else every running
       job of that worker whatever its lease;
     - worker_report: models_json and info_json are not NULL;
     - close: s is not NULL; close frees the handle. */
struct store_key; /* store_keys.h */

typedef struct store_ops {
    void (*close)(job_store *s);
    gs_status (*submit)(job_store *s, const char *id, const char *owner, const char *model,
                        int priority, const char *params_json, double megapixelsteps,
                        int64_t now_ms, int *position, svc_error *err);
    gs_status (*get)(job_store *s, const char *id, job_record *out, svc_error *err);
    gs_status (*claim)(job_store *s, const char *worker, const char *const *prefer, int n_prefer,
                       const char *const *only, int n_only, int64_t now_ms, int lease_ms,
                       int64_t starve_ms, job_record *out, int *claimed, svc_error *err);
    gs_status (*heartbeat)(job_store *s, const char *id, const char *worker, int64_t now_ms,
                           int lease_ms, const job_progress *p, int *cancel, int *lost,
                           svc_error *err);
    gs_status (*release)(job_store *s, const char *id, const char *worker, int *released,
                         svc_error *err);
    gs_status (*finish)(job_store *s, const char *id, const char *worker, job_status status,
                        const char *result_json, const char *error, int64_t now_ms, int *recorded,
                        svc_error *err);
    gs_status (*cancel)(job_store *s, const char *id, int64_t now_ms, job_status *status,
                        svc_error *err);
    gs_status (*expire_leases)(job_store *s, int64_t now_ms, const char *worker, int max_attempts,
                               const char *reason, int *requeued, int *failed, svc_error *err);
    gs_status (*list)(job_store *s, int status, const char *owner, int max, job_record **out,
                      int *n, svc_error *err);
    gs_status (*depth_by_model)(job_store *s, const char *owner,
                                void (*fn)(void *user, const char *model, int queued, int running),
                                void *user, svc_error *err);
    gs_status (*counts)(job_store *s, const char *owner, int counts[5], svc_error *err);
    gs_status (*queue_position)(job_store *s, const char *id, int *position, svc_error *err);
    gs_status (*active_count)(job_store *s, const char *owner, int *n, svc_error *err);
    gs_status (*stats)(job_store *s, const char *owner, int64_t since_ms, int max_jobs,
                       job_stats *out, svc_error *err);
    gs_status (*check)(job_store *s, svc_error *err);
    gs_status (*disk_bytes)(job_store *s, int64_t *bytes, svc_error *err);
    gs_status (*purge)(job_store *s, int64_t before_ms, void (*fn)(void *user, const char *id),
                       void *user, int *n, svc_error *err);
    gs_status (*worker_report)(job_store *s, const char *name, int pid, const char *models_json,
                               const char *info_json, int64_t now_ms, svc_error *err);
    gs_status (*worker_remove)(job_store *s, const char *name, svc_error *err);
    gs_status (*workers_list)(job_store *s, int64_t since_ms, worker_record **out, int *n,
                              svc_error *err);
    /* change notifications: NULL in an engine without them */
    gs_status (*listen)(job_store *s, store_listen_what what, svc_error *err);
    int (*listen_fd)(job_store *s);
    gs_status (*changes)(job_store *s, void (*fn)(void *user, char kind, const char *id),
                         void *user, int *n, svc_error *err);
    /* API keys (store_keys.h): add fails with GS_ERR_INVALID_ARGUMENT when the
       name is taken; list gives every row, revoked too, by name */
    gs_status (*key_add)(job_store *s, const struct store_key *row, svc_error *err);
    gs_status (*keys_list)(job_store *s, struct store_key **out, int *n, svc_error *err);
    gs_status (*key_revoke)(job_store *s, const char *name, int64_t now_ms, int *revoked,
                            svc_error *err);
} store_ops;

struct job_store {
    const store_ops *ops;
};

/* An engine's open: url as given to store_open, rest what follows the
   scheme's colon (the whole url for a plain path). */
typedef gs_status (*store_open_fn)(const char *url, const char *rest, job_store **out,
                                   svc_error *err);

/* The engines (each in its own files). */
gs_status store_sqlite_open(const char *url, const char *rest, job_store **out, svc_error *err);
gs_status store_pg_open(const char *url, const char *rest, job_store **out, svc_error *err);

/* ---- statistics of finished jobs, summed the same way by every engine (store_stats.c) ---- */

typedef struct store_samples {
    double *v;
    int n, cap;
} store_samples;

/* Starts zeroed ({0}); fed one finished job at a time, in any order. */
typedef struct store_stats_acc {
    job_stats stats;
    store_samples steps, waits;
} store_stats_acc;

/* One finished job: its status, megapixel-steps, timestamps and result JSON
   (NULL when none). A sample that finds no memory is left out, as figures
   from fewer samples beat no figures. */
void store_stats_add(store_stats_acc *a, job_status status, double megapixelsteps,
                     int64_t created_ms, int64_t started_ms, int64_t finished_ms,
                     const char *result_json);
/* Writes the figures to out and frees what a holds. */
void store_stats_end(store_stats_acc *a, job_stats *out);

#endif
