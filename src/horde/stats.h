/*
 * stats - the bridge's counters (jobs by state, dropped jobs, kudos, work
 * done) and the HTTP endpoint that shows them: GET /metrics in Prometheus'
 * text format on 127.0.0.1:--status-port (loopback only: scrape it through
 * the machine's own agent or a tunnel). Counters are updated from the
 * bridge's thread and read from the server's, under one mutex.
 */
#ifndef GS_HORDE_STATS_H
#define GS_HORDE_STATS_H

#include <pthread.h>

#include "horde/submit.h"

typedef struct horde_stats {
    pthread_mutex_t mu;
    long jobs[4];       /* submitted, by horde_state */
    long dropped;       /* popped but never accepted back by the Horde (submit refused/failed) */
    long restarts;      /* generation processes that died */
    double kudos;       /* rewards of accepted submits */
    double mps;         /* megapixel-steps generated */
    double gen_seconds; /* time spent generating them */
    long expired;       /* held jobs whose Horde time-out passed before they could start */
    long pops_skipped;  /* pops not sent: the held jobs would not finish in time (pace.h) */
    long max_pixels;    /* the max_pixels of the last pop */
    double paced_mps;   /* the smoothed sampler speed pace.h uses (megapixel-steps/s) */
    int held;           /* jobs popped and not yet answered */
    struct MHD_Daemon *d;
} horde_stats;

void horde_stats_init(horde_stats *s);

/* Serves /metrics on 127.0.0.1:port; 0, or -1 when the port cannot be had. */
int horde_stats_serve(horde_stats *s, int port);

void horde_stats_submitted(horde_stats *s, horde_state state, double kudos);
void horde_stats_dropped(horde_stats *s);
void horde_stats_generated(horde_stats *s, double megapixelsteps, double seconds, int restarts);

/* The pacing's figures (bridge.c, pace.h). */
void horde_stats_pace(horde_stats *s, long max_pixels, double paced_mps, int held);
void horde_stats_skipped(horde_stats *s);
/* A held job given up unstarted: its time-out on the Horde passed (it is
   submitted faulted; a 404 to that counts it dropped as well). */
void horde_stats_expired(horde_stats *s);

/* The metrics text (malloc'd). */
char *horde_stats_text(horde_stats *s);

/* Stops the server. */
void horde_stats_close(horde_stats *s);

#endif
