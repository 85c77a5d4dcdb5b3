/* server_private - the state the route files of `gesso serve` share. */
#ifndef GS_SERVER_PRIVATE_H
#define GS_SERVER_PRIVATE_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "api/api_keys.h"
#include "api/model_catalog.h"
#include "api/server.h"
#include "queue/store.h"

#define MAX_WORKERS 64

typedef struct server {
    const serve_options *o;
    job_store *store;
    model_catalog *catalog; /* family and dtype of model files, by name */
    pthread_mutex_t mu;     /* guards store */
    char db_path[4096];
    char results_dir[4096];
    api_keys keys; /* n == 0: no keys, every request is let in */
    int wake_w[MAX_WORKERS], wake_r[MAX_WORKERS];
    int nw;
    volatile sig_atomic_t *stopping;
} server;

int64_t server_now_ms(void);

/* The image URLs of a job from its result JSON (may be NULL: none). */
json_t *job_image_urls(const char *id, const json_t *result);

/* GET /v1/jobs/{id}/events: a Server-Sent Events stream of the job's life. */
enum MHD_Result job_events(server *s, struct MHD_Connection *c, const char *id);

#endif
