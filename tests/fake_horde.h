/*
 * fake_horde - a stand-in for the AI Horde's v2 worker API on 127.0.0.1 (a
 * free port), for tests: serves a scripted list of replies to
 * POST /api/v2/generate/pop, takes the images PUT to its R2 upload URLs and
 * the POST /api/v2/generate/submit bodies, and checks every request the
 * bridge sends against the API's models (PopInputStable, SubmitInputStable,
 * GenerationMetadataStable in AI-Horde's horde/apis/models): a field
 * missing, of the wrong type, out of its enum or unknown is written to
 * `violations`. Faults are injected by the script (any status, body and
 * delay for a pop), by put_fail_once (a 500 on the first PUT of an id) and
 * submit_gone (a 404 at submit: the job timed out on the Horde's side).
 */
#ifndef GS_TEST_FAKE_HORDE_H
#define GS_TEST_FAKE_HORDE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define FAKE_MAX 128

typedef struct fake_pop {
    int status;   /* 200, 401, 403, ... */
    char *body;   /* owned; the reply */
    int delay_ms; /* before replying */
} fake_pop;

typedef struct fake_submit {
    char id[64];
    char state[16];
    int64_t seed;
    int r2;        /* generation was "R2" */
    char ref[256]; /* gen_metadata[0].ref, "" when none */
    char meta[64]; /* gen_metadata[0] as "type/value", "" when none */
    int censored;  /* the censored field: 1 true, 0 false, -1 absent */
    int64_t ms;    /* test_mono_ms() when it came */
} fake_submit;

typedef struct fake_upload {
    char id[64];
    unsigned char *data;
    size_t len;
} fake_upload;

typedef struct fake_horde {
    struct MHD_Daemon *d;
    int port;
    char base[64];   /* http://127.0.0.1:PORT */
    char apikey[64]; /* expected in every API request */
    long max_pixels; /* the most a pop may ask (the pacing may ask less) */
    pthread_mutex_t mu;
    fake_pop script[FAKE_MAX];
    int n_script, next;                   /* the next pop gets script[next]; past the end: no job */
    int pops;                             /* pop requests seen */
    int64_t last_job_pop_ms;              /* test_mono_ms() when a scripted reply went out */
    int64_t popped_ms[FAKE_MAX];          /* test_mono_ms() when script[i] went out */
    long last_max_pixels, min_max_pixels; /* of the pops seen */
    int last_limit_max_steps;
    fake_submit submits[FAKE_MAX];
    int n_submits;
    fake_upload uploads[FAKE_MAX];
    int n_uploads;
    char put_fail_once[64]; /* id whose first PUT gets a 500 */
    int put_failed;
    char submit_gone[64]; /* id whose submit gets a 404 */
    char violations[4096];
} fake_horde;

/* Starts it; 0 or -1. */
int fake_horde_start(fake_horde *h, const char *apikey, long max_pixels);
void fake_horde_stop(fake_horde *h);

/* Appends a pop reply to the script (body copied). */
void fake_horde_script(fake_horde *h, int status, const char *body, int delay_ms);

/* A pop reply with one job: ids (n, with R2 URLs on this server), the model
   and the payload object's members (JSON text without braces). extra: more
   top-level members ("" or ",\"source_image\":..."). malloc'd. */
char *fake_horde_job(const fake_horde *h, const char *const *ids, int n, const char *payload,
                     const char *extra);

/* The submit for id, or NULL; waits up to timeout_ms for it. */
const fake_submit *fake_horde_wait_submit(fake_horde *h, const char *id, int timeout_ms);
const fake_upload *fake_horde_upload(fake_horde *h, const char *id);

/* ---- the bridge under test: `gesso horde` in DIR ---- */

/* Writes DIR/bridgeData.yaml (printf-style text). 0 or -1. */
int fake_horde_write_config(const char *dir, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Starts `gesso horde --config DIR/bridgeData.yaml --models DIR/models -t 2`
   against h, its stderr appended to DIR/bridge.log, with GESSO_HORDE_FAST=1,
   GESSO_HORDE_TTL_SCALE=ttl_scale unless NULL, --status-port status_port
   when > 0 and --precision precision unless NULL. Its pid (-1 when fork fails). */
pid_t fake_horde_bridge_start(const fake_horde *h, const char *dir, const char *ttl_scale,
                              int status_port, const char *precision);

/* SIGKILLs and reaps *pid when it is > 0, then sets it to -1. */
void fake_horde_bridge_kill(pid_t *pid);

/* The last 40 lines of DIR/bridge.log, to stderr. */
void fake_horde_show_log(const char *dir);

#endif
