/*
 * conn_guard - a deadline for receiving each request. libmicrohttpd only
 * times out idle connections, so a client that sends one header byte every
 * few seconds would hold its connection forever; here every connection is
 * tracked from accept, and one that has not delivered its headers within
 * header_ms, or its whole request within request_ms, is cut (its socket shut
 * down, which libmicrohttpd then closes). Answering takes no deadline: event
 * streams and long polls live as long as they need.
 *
 * Thread-safe: libmicrohttpd's threads report, the server's main thread reaps.
 */
#ifndef GS_CONN_GUARD_H
#define GS_CONN_GUARD_H

#include <microhttpd.h>
#include <stdint.h>

typedef struct conn_guard conn_guard;

conn_guard *conn_guard_create(int header_ms, int request_ms);
void conn_guard_free(conn_guard *g);

/* For MHD_OPTION_NOTIFY_CONNECTION, with the guard as its closure. */
void conn_guard_notify(void *cls, struct MHD_Connection *c, void **socket_context,
                       enum MHD_ConnectionNotificationCode code);

/* The request's headers are in: the body's deadline runs on. */
void conn_guard_headers_in(struct MHD_Connection *c);
/* The whole request is in (or answered early): no deadline while answering. */
void conn_guard_request_in(struct MHD_Connection *c);
/* The response went out: the connection may carry another request, whose
   headers must arrive within header_ms from now. */
void conn_guard_response_out(struct MHD_Connection *c);

/* Cuts the connections past their deadlines; returns how many (now: mono_ms()). */
int conn_guard_reap(conn_guard *g, int64_t now_ms);
/* Connections cut so far. */
long conn_guard_cut_total(conn_guard *g);

#endif
