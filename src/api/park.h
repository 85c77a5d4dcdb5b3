/*
 * park - connections that wait for a job to change (event streams, long
 * polls) without holding a thread. The HTTP threads run an event loop each;
 * a request that has nothing to say yet suspends its connection here and is
 * resumed when the event hub reports a change to its job, or when its
 * deadline (a keep-alive or the end of a ?wait) comes. A thousand idle
 * streams cost a thousand small records and no thread.
 */
#ifndef GS_PARK_H
#define GS_PARK_H

#include <microhttpd.h>
#include <stdint.h>

#include "queue/event_hub.h"

typedef struct parking parking;
typedef struct parked parked;

/* The lot and its timer thread; NULL when out of resources. */
parking *parking_start(void);
/* Resumes every parked connection and stops the timer. */
void parking_stop(parking *pk);

/* Connection c will wait for job_id's changes on hub; NULL when out of memory. */
parked *park_create(parking *pk, event_hub *hub, struct MHD_Connection *c, const char *job_id);
/* Unsubscribes; the connection must not be parked (the request is ending). */
void park_free(parked *p);
/* Whether the queue's changes count as news too (the job waits in it). */
void park_watch_queue(parked *p, int on);

/* Returns 1 when there is news since the last call (a change, or the hub
   closed): look at the job again. Otherwise suspends the connection until
   news or for timeout_ms and returns 0: the caller
   returns to libmicrohttpd, which calls it again once resumed. Call only
   from the connection's access handler or content reader. */
int park_sleep(parked *p, int timeout_ms);

/* Parked connections now (for /metrics). */
int parking_count(parking *pk);

#endif
