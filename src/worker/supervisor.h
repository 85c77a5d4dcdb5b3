/*
 * supervisor - the local worker processes of `gesso serve`: starts them
 * (fork + exec of `gesso worker`), restarts the ones that die, wakes them
 * when jobs are queued, and turns their change reports into event-hub
 * publishes. Workers are known to the store by name ("w<slot>-<pid>", unique
 * per process so a restarted worker never inherits its predecessor's rows);
 * pids and pipes are this module's business alone, so a worker on another
 * machine is the same thing to everyone else.
 *
 * A worker seen to die has its job requeued at once (the attempt counts: the
 * job may be what killed it) rather than when its lease runs out.
 *
 * A local worker dies with its supervisor: it gets SIGTERM when the server
 * process ends however it ends (parent-death signal), and also stops when its
 * wake pipe reaches end-of-file, giving its job back to the queue.
 *
 * supervisor_wake may be called from any thread; the rest from one thread.
 */
#ifndef GS_SUPERVISOR_H
#define GS_SUPERVISOR_H

#include <stddef.h>

#include "queue/event_hub.h"
#include "queue/store.h"

#define SUPERVISOR_MAX_WORKERS 64
#define SUPERVISOR_MAX_PRELOAD 64

typedef struct supervisor_options {
    const char *self_exe;   /* the gesso binary, for `gesso worker` */
    const char *store_url;  /* where the workers find the job store */
    const char *blob_url;   /* where they put images and previews; NULL: in the store */
    const char *models_dir; /* NAME.safetensors */
    const char *lora_dir;   /* LoRAs by NAME.safetensors, or NULL */
    int workers;
    int threads;           /* compute threads per worker */
    const char *precision; /* "auto", "f32", "bf16" or "f16" */
    int lease_ms;
    int max_attempts;  /* a dead worker's job fails after this many attempts */
    size_t ram_budget; /* per worker; 0 = no limit */
    int idle_unload_s;
    const char *const *preload; /* [n_preload] */
    int n_preload;
    int stop_grace_ms; /* at a stop, how long a worker may finish its step before SIGKILL */
} supervisor_options;

typedef struct supervisor supervisor;

/* Starts the workers. store is the supervisor's own connection (it removes a
   dead worker's presence row); hub gets the workers' change reports. Both
   must outlive the supervisor. NULL with err filled on failure. */
supervisor *supervisor_start(const supervisor_options *o, job_store *store, event_hub *hub,
                             svc_error *err);

/* Tells the idle workers that jobs were queued. */
void supervisor_wake(supervisor *s);

/* Waits up to timeout_ms for the workers' reports and publishes them; then
   restarts workers that died. */
void supervisor_poll(supervisor *s, int timeout_ms);

/* SIGTERMs every worker (each gives its job back at the end of its step),
   waits up to o.stop_grace_ms for them, SIGKILLs the rest, frees s. */
void supervisor_stop(supervisor *s);

#endif
