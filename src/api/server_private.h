/* server_private - the state the protocol modules of `gesso serve` share. */
#ifndef GS_SERVER_PRIVATE_H
#define GS_SERVER_PRIVATE_H

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include "api/api_keys.h"
#include "api/browser_guard.h"
#include "api/model_catalog.h"
#include "api/server.h"
#include "queue/blob_store.h"
#include "queue/event_hub.h"
#include "queue/store.h"
#include "worker/supervisor.h"

typedef struct server {
    const serve_options *o;
    char store_url[4200];
    pthread_key_t store_key;   /* each HTTP thread's own store connection */
    pthread_mutex_t submit_mu; /* a key's active count and the insert, as one step */
    blob_store *blobs;         /* job inputs, result images and previews */
    event_hub *hub;            /* job changes, for event streams and waiting calls */
    supervisor *sup;           /* the local workers (woken on submit) */
    model_catalog *catalog;    /* family and dtype of model files, by name */
    api_keys keys;             /* of --api-keys FILE; n == 0: none */
    browser_policy browser;    /* Host and Origin checks */
    struct parking *parking;   /* waiting requests' suspended connections */
    struct conn_guard *guard;  /* request deadlines */
    _Atomic size_t body_bytes; /* held by request bodies being received, all together */
    gs_tokenizer *tok;         /* counts prompt chunks at submit; shared by the HTTP threads */
    volatile sig_atomic_t *stopping;
    int64_t max_store_bytes;   /* the store cap in effect (native_inputs.h); 0: none */
    struct a1111_state *a1111; /* A1111's options as clients set them (a1111.h) */

    /* the keys in the store (api_keys_store.h); keys are on while it or the file has any */
    struct api_keys_store *store_keys;
} server;

int64_t server_now_ms(void);

/* The calling thread's store connection, opened on first use; NULL with err
   when the store cannot be opened. Readers never wait behind each other
   (SQLite's WAL; a database server's own concurrency). */
job_store *server_store(server *s, svc_error *err);

/* ---- keys (server_keys.c): those of the file and those in the store ---- */

/* Whether requests need a key: the file or the store has keys. */
int server_keys_on(server *s);

/* The caller's key for an "Authorization" value (may be NULL), or NULL; a
   store key is copied into *slot. *unavailable = 1 when the key might be
   one in the store, which cannot be read now. */
const api_key *server_key_match(server *s, const char *authorization, api_key *slot,
                                int *unavailable);

#endif
