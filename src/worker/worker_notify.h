/*
 * worker_notify - how a local worker tells its supervisor that it changed a
 * job in the store, so the server's event hub wakes whoever watches that job
 * at once instead of polling. One fixed-size line per change over a pipe:
 * kind, job id, newline (shorter than PIPE_BUF, so lines never interleave).
 * A lost line costs latency only: watchers re-read the store now and then.
 */
#ifndef GS_WORKER_NOTIFY_H
#define GS_WORKER_NOTIFY_H

#include "queue/store.h"

#define NOTIFY_JOB 'j'   /* the job changed (progress, result) */
#define NOTIFY_QUEUE 'q' /* the job changed and so did the queue's order (claim, release) */
#define NOTIFY_LINE (1 + JOB_ID_LEN + 1)

/* Writes one line to fd without blocking; fd < 0 does nothing. Returns -1 when
   the reader is gone (the supervisor died), else 0. */
int worker_notify(int fd, char kind, const char *job_id);

#endif
