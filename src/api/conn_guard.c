/*
 * conn_guard - the open connections in a list under one lock. The list entry
 * is the connection's socket context; it leaves the list in the CLOSED
 * notification, which libmicrohttpd sends before it closes the socket, so a
 * reap (under the same lock) never shuts down a socket number already reused.
 */
#include "api/conn_guard.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "support/clock.h"

typedef enum phase { WAIT_HEADERS, WAIT_BODY, ANSWERING } phase;

typedef struct tracked {
    conn_guard *g;
    int fd;
    phase phase;
    int64_t since_ms; /* accept, or the end of the previous response */
    int cut;
    struct tracked *next, *prev;
} tracked;

struct conn_guard {
    pthread_mutex_t mu;
    tracked *head;
    int header_ms, request_ms;
    long cut_total;
};

conn_guard *conn_guard_create(int header_ms, int request_ms)
{
    conn_guard *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    pthread_mutex_init(&g->mu, NULL);
    g->header_ms = header_ms;
    g->request_ms = request_ms;
    return g;
}

void conn_guard_free(conn_guard *g)
{
    if (!g)
        return;
    while (g->head) { /* normally empty: the daemon closed every connection */
        tracked *t = g->head;
        g->head = t->next;
        free(t);
    }
    pthread_mutex_destroy(&g->mu);
    free(g);
}

void conn_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code)
{
    conn_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        tracked *t = calloc(1, sizeof *t);
        if (!t || !info) { /* untracked: only the idle timeout applies */
            free(t);
            *socket_context = NULL;
            return;
        }
        t->g = g;
        t->fd = info->connect_fd;
        t->since_ms = mono_ms();
        pthread_mutex_lock(&g->mu);
        t->next = g->head;
        if (g->head)
            g->head->prev = t;
        g->head = t;
        pthread_mutex_unlock(&g->mu);
        *socket_context = t;
        return;
    }
    tracked *t = *socket_context;
    if (!t)
        return;
    pthread_mutex_lock(&g->mu);
    if (t->prev)
        t->prev->next = t->next;
    else
        g->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    pthread_mutex_unlock(&g->mu);
    free(t);
    *socket_context = NULL;
}

static void set_phase(struct MHD_Connection *c, phase ph, int restart)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    tracked *t = info ? info->socket_context : NULL;
    if (!t)
        return;
    pthread_mutex_lock(&t->g->mu);
    t->phase = ph;
    if (restart)
        t->since_ms = mono_ms();
    pthread_mutex_unlock(&t->g->mu);
}

void conn_guard_headers_in(struct MHD_Connection *c)
{
    set_phase(c, WAIT_BODY, 0);
}

void conn_guard_request_in(struct MHD_Connection *c)
{
    set_phase(c, ANSWERING, 0);
}

void conn_guard_response_out(struct MHD_Connection *c)
{
    set_phase(c, WAIT_HEADERS, 1);
}

int conn_guard_reap(conn_guard *g, int64_t now_ms)
{
    int n = 0;
    pthread_mutex_lock(&g->mu);
    for (tracked *t = g->head; t; t = t->next) {
        int64_t limit = t->phase == WAIT_HEADERS ? g->header_ms : g->request_ms;
        if (t->phase == ANSWERING || t->cut || now_ms - t->since_ms < limit)
            continue;
        shutdown(t->fd, SHUT_RDWR); /* libmicrohttpd sees the end and closes it */
        t->cut = 1;
        n++;
    }
    g->cut_total += n;
    pthread_mutex_unlock(&g->mu);
    return n;
}

long conn_guard_cut_total(conn_guard *g)
{
    pthread_mutex_lock(&g->mu);
    long n = g->cut_total;
    pthread_mutex_unlock(&g->mu);
    return n;
}
