/*
 * store_watch - a front end's ear on the store: a thread with a store
 * connection of its own that listens for changes (store_listen) and passes
 * each to the event hub, so event streams and waiting calls move for jobs
 * that any front end took and any worker, on any machine, runs. With an
 * engine without notifications (SQLite) it starts no thread: one machine's
 * supervisor pipes carry the news there.
 *
 * A lost connection is made anew with backoff (100 ms doubling to 5 s), and
 * then everything is published once, as changes may have been missed.
 */
#ifndef GS_STORE_WATCH_H
#define GS_STORE_WATCH_H

#include "queue/event_hub.h"
#include "queue/store.h"

typedef struct store_watch store_watch;

/* Starts watching the store at url for hub; *out = NULL (and GS_OK) when its
   engine has no notifications. Both must outlive the watch. */
GS_NODISCARD gs_status store_watch_start(const char *url, event_hub *hub, store_watch **out,
                                         svc_error *err);
/* Stops the thread and frees w (may be NULL). */
void store_watch_stop(store_watch *w);

#endif
