/*
 * tcp_proxy - a TCP proxy for tests that cut a network link: it listens on
 * 127.0.0.1 (a free port) and forwards each connection to a unix socket (the
 * test's PostgreSQL), until told to cut: then every link it carries is
 * closed and new connections are accepted and closed at once, as a broken
 * network path looks to a client, until it is told to forward again.
 */
#ifndef GS_TCP_PROXY_H
#define GS_TCP_PROXY_H

typedef struct tcp_proxy tcp_proxy;

/* Starts the proxy's thread; *port gets its port. NULL on failure. */
tcp_proxy *tcp_proxy_start(const char *unix_path, int *port);
/* cut 1: close every link and refuse new ones; 0: forward again. Returns
   once the proxy has done it. */
void tcp_proxy_cut(tcp_proxy *p, int cut);
/* Links forwarded so far (connections accepted while not cut). */
int tcp_proxy_links(tcp_proxy *p);
void tcp_proxy_stop(tcp_proxy *p);

#endif
