/*
 * worker - a generation worker process: claims jobs from the store (those for
 * its loaded models first), keeps models loaded in a model_cache under a RAM
 * budget, runs gs_generate with a heartbeat (and cancel check) per step,
 * puts previews and result PNGs in the blob store and records the result.
 * Each change it makes to a job is reported on the notify pipe (when it has
 * one), so the server's event streams move at once. It reports its loaded models to the store's
 * workers table at start, after every change and every lease/3, and removes its row when it exits.
 * Asked to stop, it abandons the running job at the next step and gives it back to the queue. Runs
 * in its own process so a crash cannot take the API down; the supervisor in `gesso serve` restarts
 * it and the store requeues its job. A local worker stops when its server is gone (its wake or
 * notify pipe closes), so none outlives the server it was started by.
 */
#ifndef GS_WORKER_H
#define GS_WORKER_H

#include <stddef.h>

#include "gesso.h"

/* The environment variable that gives `gesso worker` its store URL when no
   --store is given: how gesso serve passes it, so that a password in it is
   not on a command line every user of the machine can read. */
#define WORKER_STORE_ENV "GESSO_STORE"

typedef struct worker_options {
    const char *store_url; /* the job store: a path, sqlite:PATH or postgresql://... */
    const char *blob_url;  /* where images and previews go (a directory or file:DIR) */
    const char *models_dir;
    const char *lora_dir; /* LoRAs by NAME.safetensors (gesso serve --lora-dir), or NULL */
    const char *name;     /* worker id recorded on claimed jobs */
    int lease_ms;
    int threads;
    gs_precision precision;     /* of the worker's engine (GS_PRECISION_AUTO by default) */
    size_t ram_budget;          /* bytes of model weights kept loaded; 0 = no limit */
    int idle_unload_s;          /* free models unused this long; 0 = never */
    const char *const *preload; /* [n_preload] models loaded at start */
    int n_preload;
    int wake_fd;         /* readable when jobs were queued (-1: poll the store); EOF: the
                            server is gone */
    int notify_fd;       /* change reports to the supervisor (worker_notify.h), or -1 */
    volatile int *stop;  /* set to stop: the running job is given back */
    int only_own_models; /* claim only jobs for models in models_dir (a fleet's worker, which
                            other workers may back with other models) */
} worker_options;

/* Runs until *stop; returns the process exit code. */
int worker_run(const worker_options *o);

#endif
