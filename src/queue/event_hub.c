/*
 * event_hub - a list of subscribers under one mutex, each with a pending flag
 * and its own condition variable: a publish sets the flags of the matching
 * subscribers and signals only them. The flag makes a publish that lands
 * before the wait count, so no wake-up is lost.
 */
#include "queue/event_hub.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue/store.h"

struct hub_sub {
    event_hub *hub;
    char id[JOB_ID_LEN + 1];
    int watch_queue;
    int pending;
    pthread_cond_t cond;
    void (*notify)(void *ctx); /* NULL: a waiter sleeping in hub_wait */
    void *ctx;
    hub_sub *next, *prev;
};

struct event_hub {
    pthread_mutex_t mu;
    hub_sub *subs;
    int n;
    int closed;
};

event_hub *hub_create(void)
{
    event_hub *h = calloc(1, sizeof *h);
    if (h)
        pthread_mutex_init(&h->mu, NULL);
    return h;
}

void hub_free(event_hub *h)
{
    if (!h)
        return;
    pthread_mutex_destroy(&h->mu);
    free(h);
}

/* With the hub's lock held. */
static void wake(hub_sub *s)
{
    if (s->notify)
        s->notify(s->ctx);
    else
        pthread_cond_signal(&s->cond);
}

void hub_close(event_hub *h)
{
    pthread_mutex_lock(&h->mu);
    h->closed = 1;
    for (hub_sub *s = h->subs; s; s = s->next)
        wake(s);
    pthread_mutex_unlock(&h->mu);
}

/* Wakes the subscribers for job_id (NULL: none by id), the queue's watchers
   when queue is set, or everyone when all is set. */
static void publish(event_hub *h, const char *job_id, int queue, int all)
{
    pthread_mutex_lock(&h->mu);
    for (hub_sub *s = h->subs; s; s = s->next)
        if (all || (queue && s->watch_queue) || (job_id && strcmp(s->id, job_id) == 0)) {
            s->pending = 1;
            wake(s);
        }
    pthread_mutex_unlock(&h->mu);
}

void hub_publish(event_hub *h, const char *job_id)
{
    publish(h, job_id, 0, 0);
}

void hub_publish_queue(event_hub *h)
{
    publish(h, NULL, 1, 0);
}

void hub_publish_all(event_hub *h)
{
    publish(h, NULL, 0, 1);
}

hub_sub *hub_subscribe(event_hub *h, const char *job_id)
{
    return hub_subscribe_notify(h, job_id, NULL, NULL);
}

hub_sub *hub_subscribe_notify(event_hub *h, const char *job_id, void (*notify)(void *ctx),
                              void *ctx)
{
    hub_sub *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->hub = h;
    s->notify = notify;
    s->ctx = ctx;
    strncat(s->id, job_id, JOB_ID_LEN);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_lock(&h->mu);
    s->next = h->subs;
    if (h->subs)
        h->subs->prev = s;
    h->subs = s;
    h->n++;
    if (h->closed && notify) /* a late subscriber learns of the stop at once */
        wake(s);
    pthread_mutex_unlock(&h->mu);
    return s;
}

void hub_watch_queue(hub_sub *s, int on)
{
    pthread_mutex_lock(&s->hub->mu);
    s->watch_queue = on;
    pthread_mutex_unlock(&s->hub->mu);
}

int hub_wait(hub_sub *s, int timeout_ms)
{
    event_hub *h = s->hub;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&h->mu);
    int rc = 0;
    while (!s->pending && !h->closed)
        if (pthread_cond_timedwait(&s->cond, &h->mu, &until) != 0)
            break;
    if (h->closed)
        rc = -1;
    else if (s->pending)
        rc = 1;
    s->pending = 0;
    pthread_mutex_unlock(&h->mu);
    return rc;
}

void hub_unsubscribe(hub_sub *s)
{
    if (!s)
        return;
    event_hub *h = s->hub;
    pthread_mutex_lock(&h->mu);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    h->n--;
    pthread_mutex_unlock(&h->mu);
    pthread_cond_destroy(&s->cond);
    free(s);
}

int hub_subscribers(event_hub *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->n;
    pthread_mutex_unlock(&h->mu);
    return n;
}
