/*
 * fleet_view - the workers of a fleet as the job store knows them, judged
 * once for a reply: each worker's state (what it last said, or "gone" when
 * its last report is older than its lease), and which models the live
 * workers advertise, so that a queued job no live worker can run is said to
 * be waiting for its model (GET /v1/queue, GET /v1/jobs/{id}).
 */
#ifndef GS_FLEET_VIEW_H
#define GS_FLEET_VIEW_H

#include <jansson.h>
#include <stdint.h>

#include "api/server_private.h"

/* Workers that reported within this long are listed (gone ones included). */
#define FLEET_LISTED_MS (3600LL * 1000)

typedef struct fleet_worker {
    const char *name, *host;
    const char *state; /* idle, loading, working or gone */
    json_t *loaded;    /* array of model names (borrowed from the view) */
    json_t *available; /* array of model names the worker has files for */
    const char *job;   /* the job it runs, or NULL */
    double mps;        /* megapixel-steps per second of its last job; 0: none yet */
    int64_t seen_ms;   /* its last report (Unix ms) */
} fleet_worker;

typedef struct fleet_view {
    fleet_worker *w;
    int n;
    json_t *keep;       /* what the fleet_worker pointers point into */
    json_t *advertised; /* object: model name -> number of live workers with it */
} fleet_view;

/* Reads the workers table at now_ms; default_lease_ms judges workers that
   did not say their lease. GS_OK, or the store's failure in err. */
gs_status fleet_view_load(server *s, int64_t now_ms, fleet_view *out, svc_error *err);
void fleet_view_free(fleet_view *v);

/* Live workers that have model's file (0: a job of it waits for one). */
int fleet_view_workers_with(const fleet_view *v, const char *model);

#endif
