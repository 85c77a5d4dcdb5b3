/*
 * park - the parked connections in one list under one lock, and a timer
 * thread that sleeps until the nearest deadline. A hub notification and the
 * timer both resume through wake_locked, which resumes a connection only if
 * it is suspended and otherwise leaves a "news" mark for the next
 * park_sleep: libmicrohttpd marks a connection suspended inside
 * MHD_suspend_connection, so with the lock held around both no wake-up is
 * lost and none resumes a connection that is not suspended.
 *
 * Lock order: the hub's lock, then the lot's (notify runs under the hub's).
 */
#include "api/park.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "support/clock.h"

struct parked {
    parking *pk;
    struct MHD_Connection *c;
    hub_sub *sub;
    int news;            /* a change since the last park_sleep */
    int suspended;       /* the connection is suspended here */
    int64_t deadline;    /* monotonic ms, while suspended */
    parked *next, *prev; /* the lot's list of suspended connections */
};

struct parking {
    pthread_mutex_t mu;
    pthread_cond_t cond; /* the timer's: a nearer deadline, or stop */
    parked *head;
    int n, stop;
    int64_t timer_wakes; /* when the timer will look next (monotonic ms) */
    pthread_t timer;
};

static void unlink_locked(parked *p)
{
    parking *pk = p->pk;
    if (p->prev)
        p->prev->next = p->next;
    else
        pk->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
    pk->n--;
}

/* With the lot's lock held. */
static void wake_locked(parked *p, int news)
{
    if (!p->suspended) {
        p->news |= news;
        return;
    }
    p->suspended = 0;
    p->news |= news;
    unlink_locked(p);
    MHD_resume_connection(p->c);
}

static void *timer_main(void *arg)
{
    parking *pk = arg;
    pthread_mutex_lock(&pk->mu);
    while (!pk->stop) {
        int64_t now = mono_ms(), next = now + 60000;
        for (parked *p = pk->head, *after; p; p = after) {
            after = p->next;
            if (p->deadline <= now)
                wake_locked(p, 0);
            else if (p->deadline < next)
                next = p->deadline;
        }
        pk->timer_wakes = next;
        struct timespec until = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000L};
        pthread_cond_timedwait(&pk->cond, &pk->mu, &until);
    }
    pthread_mutex_unlock(&pk->mu);
    return NULL;
}

parking *parking_start(void)
{
    parking *pk = calloc(1, sizeof *pk);
    if (!pk)
        return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pk->cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&pk->mu, NULL);
    if (pthread_create(&pk->timer, NULL, timer_main, pk) != 0) {
        pthread_cond_destroy(&pk->cond);
        pthread_mutex_destroy(&pk->mu);
        free(pk);
        return NULL;
    }
    return pk;
}

void parking_stop(parking *pk)
{
    if (!pk)
        return;
    pthread_mutex_lock(&pk->mu);
    pk->stop = 1;
    while (pk->head)
        wake_locked(pk->head, 1);
    pthread_cond_signal(&pk->cond);
    pthread_mutex_unlock(&pk->mu);
    pthread_join(pk->timer, NULL);
    pthread_cond_destroy(&pk->cond);
    pthread_mutex_destroy(&pk->mu);
    free(pk);
}

static void on_change(void *ctx)
{
    parked *p = ctx;
    pthread_mutex_lock(&p->pk->mu);
    wake_locked(p, 1);
    pthread_mutex_unlock(&p->pk->mu);
}

parked *park_create(parking *pk, event_hub *hub, struct MHD_Connection *c, const char *job_id)
{
    parked *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->pk = pk;
    p->c = c;
    if (!(p->sub = hub_subscribe_notify(hub, job_id, on_change, p))) {
        free(p);
        return NULL;
    }
    return p;
}

void park_free(parked *p)
{
    if (!p)
        return;
    hub_unsubscribe(p->sub); /* no notification runs after this */
    pthread_mutex_lock(&p->pk->mu);
    if (p->suspended) { /* only at a stop, when libmicrohttpd drops suspended connections */
        p->suspended = 0;
        unlink_locked(p);
    }
    pthread_mutex_unlock(&p->pk->mu);
    free(p);
}

void park_watch_queue(parked *p, int on)
{
    hub_watch_queue(p->sub, on);
}

int park_sleep(parked *p, int timeout_ms)
{
    parking *pk = p->pk;
    pthread_mutex_lock(&pk->mu);
    if (p->news || pk->stop) {
        p->news = 0;
        pthread_mutex_unlock(&pk->mu);
        return 1;
    }
    p->deadline = mono_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    p->suspended = 1;
    p->next = pk->head;
    if (pk->head)
        pk->head->prev = p;
    pk->head = p;
    pk->n++;
    MHD_suspend_connection(p->c);
    if (p->deadline < pk->timer_wakes)
        pthread_cond_signal(&pk->cond); /* the timer must look sooner */
    pthread_mutex_unlock(&pk->mu);
    return 0;
}

int parking_count(parking *pk)
{
    pthread_mutex_lock(&pk->mu);
    int n = pk->n;
    pthread_mutex_unlock(&pk->mu);
    return n;
}
