/*
 * server - `gesso serve`: the HTTP API (libmicrohttpd, JSON in and out) over
 * the job store, plus the supervisor of the worker processes.
 *
 * Threads: a small pool of HTTP threads, each an event loop over many
 * connections (libmicrohttpd with epoll), each with its own store
 * connection; requests that wait for a job park their connection (park.h)
 * instead of a thread. The main thread supervises workers (restarts the
 * dead ones, publishes their reports to the event hub, requeues jobs whose
 * leases expired) and handles SIGTERM. Workers are separate processes (fork
 * + exec of `gesso worker`), so a crash in generation cannot take the API
 * down or lose a job.
 */
#ifndef GS_SERVER_H
#define GS_SERVER_H

#include <stdint.h>
#include <stddef.h>

#include "job/job_spec.h"
#include "worker/supervisor.h"

#define SERVE_MAX_PRELOAD SUPERVISOR_MAX_PRELOAD
#define SERVE_MAX_LIST 32 /* --cors-origin and --allowed-hosts values */

typedef struct serve_options {
    const char *listen;     /* "127.0.0.1:7860"; port 0: the OS picks one */
    const char *port_file;  /* when set, the port listened on is written there */
    const char *data_dir;   /* jobs.db and results/ */
    const char *store_url;  /* the job store; NULL: data_dir/jobs.db */
    const char *models_dir; /* NAME.safetensors */
    const char *self_exe;   /* the gesso binary, for `gesso worker` */
    int workers;
    int worker_threads;
    const char *worker_precision; /* "auto", "f32", "bf16" or "f16" (the CLI has checked it) */
    int lease_ms;
    int max_attempts;
    size_t ram_budget;          /* per worker; 0 = no limit */
    int idle_unload_s;          /* 0 = never */
    const char *const *preload; /* [n_preload] model names every worker loads at start */
    int n_preload;
    size_t max_body;
    job_limits limits;
    const char *api_keys_path; /* NULL: no keys asked for */
    int64_t retention_ms;      /* finished jobs and their images go after this; 0 = keep */
    int max_queued;            /* queued jobs beyond which submissions get 503; 0 = no bound */
    int64_t max_store_bytes;   /* bytes of blobs plus database beyond which submissions get
                                  507; 0 = no bound, -1 = auto (native_inputs.h) */
    int max_connections;       /* concurrent HTTP connections */
    int max_per_ip;            /* concurrent connections from one address; 0 = no bound */
    int http_threads;          /* event-loop threads serving HTTP */
    int header_timeout_s;      /* a request's headers must arrive within this */
    int request_timeout_s;     /* and the whole request (headers and body) within this */
    size_t max_body_memory;    /* bytes all request bodies being received may hold */
    const char *const *cors_origins; /* [n_cors_origins] origins allowed cross-site */
    int n_cors_origins;
    const char *const *allowed_hosts; /* [n_allowed_hosts] Host names allowed besides
                                         IP literals and localhost ("*": any) */
    int n_allowed_hosts;
    int stop_grace_s; /* at SIGTERM, how long workers may take to give their jobs back */
} serve_options;

void serve_options_default(serve_options *o);
/* Runs until SIGTERM/SIGINT; returns the process exit code. */
int serve_run(const serve_options *o);

#endif
