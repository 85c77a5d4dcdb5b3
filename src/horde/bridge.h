/*
 * bridge - the bridge's loop: pop a job, run it in the generation child,
 * upload its images, submit them; until asked to stop. Every job it pops is
 * answered (ok, or faulted with the reason), including when the child dies
 * or the operator stops the bridge: a popped job left unanswered is what
 * puts a worker into the Horde's maintenance mode.
 *
 * Two threads: the bridge's own pops, uploads and submits; and a generator
 * that runs the held jobs one after another in the child, so the next held
 * job starts the moment the engine is free while this thread pops ahead
 * (up to queue_size jobs besides the running one, as paced by pace.h).
 */
#ifndef GS_HORDE_BRIDGE_H
#define GS_HORDE_BRIDGE_H

#include "horde/config.h"
#include "horde/safety.h"

typedef struct horde_bridge_options {
    const horde_config *cfg;
    const char *models_dir;     /* DIR/STEM.safetensors (payload.h's horde_model_stem) */
    const char *self_exe;       /* for the generation child */
    int threads;                /* compute threads of the child; 0 = all */
    const char *precision;      /* the child's engine precision by name; NULL = auto */
    int idle_ms;                /* between pops that found no job */
    int backoff_max_ms;         /* longest wait after an error */
    int pop_timeout_s;          /* a pop reply slower than this is given up on */
    int status_port;            /* /metrics on 127.0.0.1:PORT; 0 = none */
    const horde_safety *safety; /* the prompt filter every job passes first */
    double ttl_scale;           /* 1; tests shrink the time-out the pacing plans for (pace.h) */
    /* 0 run; 1 pop no more, finish every held job, submit them, return;
       2 stop the running job, fault it and every held one, return */
    volatile int *stop;
} horde_bridge_options;

/* Runs until *stop or a fatal error (the Horde rejects the api_key, no model
   on disk). Returns the process exit code. */
int horde_bridge_run(const horde_bridge_options *o);

#endif
