/*
 * worker - a generation worker process: claims jobs from the store, keeps the
 * last model loaded, runs gs_generate with a heartbeat (and cancel check) per
 * step, publishes previews, writes the PNGs into the data directory and
 * records the result. Asked to stop, it abandons the running job at the next
 * step and gives it back to the queue.
 * Runs in its own process so a crash cannot take the API down; the
 * supervisor in `gesso serve` restarts it and the store requeues its job.
 */
#ifndef GS_WORKER_H
#define GS_WORKER_H

typedef struct worker_options {
    const char *db_path;
    const char *models_dir;
    const char *results_dir;
    const char *name; /* worker id recorded on claimed jobs */
    int lease_ms;
    int threads;
    int wake_fd;        /* readable when jobs were queued (-1: poll the store) */
    volatile int *stop; /* set to stop: the running job is given back */
} worker_options;

/* Runs until *stop; returns the process exit code. */
int worker_run(const worker_options *o);

#endif
