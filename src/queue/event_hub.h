/*
 * event_hub - who is waiting for which job, and waking them when it changes.
 *
 * Publishers (the API after a submit or cancel, the supervisor when a worker
 * reports a change, housekeeping after lease expiry or purge) say which job
 * changed; subscribers (SSE streams, blocking "submit and wait" calls) sleep
 * on their own condition variable until their job, or the queue ahead of it,
 * changes, then read the store once. An idle connection costs no CPU and no
 * store reads. Events carry no data: the store stays the one truth, so a
 * missed or merged wake-up never shows stale state.
 *
 * Thread-safe.
 */
#ifndef GS_EVENT_HUB_H
#define GS_EVENT_HUB_H

typedef struct event_hub event_hub;
typedef struct hub_sub hub_sub;

/* NULL when out of memory. Every subscription must end before hub_free. */
event_hub *hub_create(void);
void hub_free(event_hub *h);

/* Wakes every waiter for good: their hub_wait returns -1 (the server stops). */
void hub_close(event_hub *h);

/* Job id changed (status, progress, result). */
void hub_publish(event_hub *h, const char *job_id);
/* The order of the queue changed (a job was queued, claimed, cancelled,
   requeued): subscribers watching the queue re-read their position. */
void hub_publish_queue(event_hub *h);
/* Anything may have changed (several jobs requeued or purged at once). */
void hub_publish_all(event_hub *h);

/* Subscribes to job_id's changes; NULL when out of memory. Subscribe before
   the first read of the job, so no change between the read and the first
   wait is lost. */
hub_sub *hub_subscribe(event_hub *h, const char *job_id);
/* The same for a subscriber that must not sleep (a connection on a shared
   event-loop thread): each change calls notify(ctx) instead of waking a
   waiter, with the hub's lock held, so notify must be quick and must not
   call back into the hub. hub_close calls it too. */
hub_sub *hub_subscribe_notify(event_hub *h, const char *job_id, void (*notify)(void *ctx),
                              void *ctx);
/* Whether queue-order changes wake this subscriber too (its job is queued). */
void hub_watch_queue(hub_sub *s, int on);
/* Sleeps until a change was published since the last wait (returns 1), the
   timeout passes (0), or the hub closes (-1). */
int hub_wait(hub_sub *s, int timeout_ms);
/* Once this returns, notify is not running and will not be called again. */
void hub_unsubscribe(hub_sub *s);

/* Subscribers now (for tests and /metrics). */
int hub_subscribers(event_hub *h);

#endif
