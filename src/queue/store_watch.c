/* store_watch - the listening thread: poll the connection and a stop pipe, hand changes to the hub.
 */
#include "queue/store_watch.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "support/log.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct store_watch {
    job_store *store;
    event_hub *hub;
    int stop_r, stop_w; /* a byte (or the close) on stop_w ends the thread */
    pthread_t thread;
};

static void publish(void *user, char kind, const char *id)
{
    event_hub *hub = user;
    if (kind == STORE_CHANGE_ALL) {
        hub_publish_all(hub);
        return;
    }
    hub_publish(hub, id);
    if (kind == STORE_CHANGE_QUEUE)
        hub_publish_queue(hub);
}

/* Sleeps ms unless asked to stop; 1 when asked. */
static int stop_within(const store_watch *w, int fd, int ms)
{
    struct pollfd p[2] = {{.fd = w->stop_r, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    if (poll(p, fd >= 0 ? 2 : 1, ms) < 0)
        return 0;
    return (p[0].revents & (POLLIN | POLLHUP)) != 0;
}

static void *watch_main(void *arg)
{
    store_watch *w = arg;
    int backoff = 0, failing = 0;
    for (;;) {
        int fd = store_listen_fd(w->store);
        /* no timeout needed for correctness: a connection that ends turns
           readable; the look every few seconds only retries a lost one */
        if (stop_within(w, fd, backoff ? backoff : (fd >= 0 ? 5000 : BACKOFF_MIN_MS)))
            break;
        svc_error err = {0};
        if (store_changes(w->store, publish, w->hub, NULL, &err) != GS_OK) {
            if (!failing)
                log_warn("%s (event streams fall back to slow polling until it is back)", err.msg);
            failing = 1;
            backoff = backoff ? (backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2)
                              : BACKOFF_MIN_MS;
            continue;
        }
        if (failing)
            log_info("change notifications are back");
        failing = backoff = 0;
    }
    return NULL;
}

gs_status store_watch_start(const char *url, event_hub *hub, store_watch **out, svc_error *err)
{
    *out = NULL;
    store_watch *w = calloc(1, sizeof *w);
    if (!w)
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    w->hub = hub;
    int fds[2] = {-1, -1}, supported = 0;
    gs_status st = store_open(url, &w->store, err);
    if (st == GS_OK)
        st = store_listen(w->store, STORE_LISTEN_JOBS, &supported, err);
    if (st == GS_OK && supported && pipe(fds) != 0)
        st = svc_fail(err, GS_ERR_IO, "cannot make a pipe for the store watch");
    if (st == GS_OK && supported) {
        fcntl(fds[0], F_SETFD, FD_CLOEXEC);
        fcntl(fds[1], F_SETFD, FD_CLOEXEC);
        w->stop_r = fds[0];
        w->stop_w = fds[1];
        if (pthread_create(&w->thread, NULL, watch_main, w) == 0) {
            *out = w;
            return GS_OK;
        }
        st = svc_fail(err, GS_ERR_IO, "cannot start the store watch thread");
        close(fds[0]);
        close(fds[1]);
    }
    store_close(w->store);
    free(w);
    return st;
}

void store_watch_stop(store_watch *w)
{
    if (!w)
        return;
    close(w->stop_w); /* end of file: the thread's poll wakes */
    pthread_join(w->thread, NULL);
    close(w->stop_r);
    store_close(w->store);
    free(w);
}
