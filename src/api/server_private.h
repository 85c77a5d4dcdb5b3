/* server_private - the state the protocol modules of `gesso serve` share. */
#ifndef GS_SERVER_PRIVATE_H
#define GS_SERVER_PRIVATE_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "api/api_keys.h"
#include "api/model_catalog.h"
#include "api/server.h"
#include "queue/blob_store.h"
#include "queue/event_hub.h"
#include "queue/store.h"
#include "worker/supervisor.h"

typedef struct server {
    const serve_options *o;
    job_store *store;       /* the HTTP threads' connection */
    pthread_mutex_t mu;     /* guards store */
    blob_store *blobs;      /* result images and previews */
    event_hub *hub;         /* job changes, for event streams and waiting calls */
    supervisor *sup;        /* the local workers (woken on submit) */
    model_catalog *catalog; /* family and dtype of model files, by name */
    api_keys keys;          /* n == 0: no keys, every request is let in */
    gs_tokenizer *tok;      /* counts prompt chunks at submit; shared by the HTTP threads */
    volatile sig_atomic_t *stopping;
} server;

int64_t server_now_ms(void);

#endif
