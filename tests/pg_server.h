/*
 * pg_server - a throwaway PostgreSQL server for a test run: initdb into a
 * temporary directory, postgres listening on a unix socket there only (no
 * port on the network to collide with), one empty database per case, and
 * at the end a fast shutdown and the directory removed. Never a mock: the
 * binaries of Debian's postgresql package (pg_config --bindir, else
 * /usr/lib/postgresql/VERSION/bin, else the PATH).
 *
 * initdb and postgres refuse to run as root: as root they run as the
 * postgres system user (which that package creates), owning the directory.
 */
#ifndef GS_PG_SERVER_H
#define GS_PG_SERVER_H

#include <sys/types.h>

typedef struct pg_server {
    pid_t pid;    /* the postmaster; 0 when not running */
    char dir[64]; /* data/, the socket and the logs */
    char bindir[512];
    unsigned flags; /* of pg_server_start */
    int next_db;    /* databases made so far: gesso_1, gesso_2, ... */
    char why[512];  /* why the server could not start */
} pg_server;

/* Flags of pg_server_start. */
enum {
    /* fsync and synchronous commits as a real installation has them (for
       benchmarks); without it, a test server syncs nothing */
    PG_SERVER_DURABLE = 1
};

/* Starts the server (about a second: initdb is most of it); 0, or -1 with
   the reason in s->why (no binaries, no postgres user, initdb failed ...). */
int pg_server_start(pg_server *s, unsigned flags);

/* Creates an empty database, dropping the one made before it (with every
   connection to it), and writes a postgresql:// URL for it to url; 0 or -1. */
int pg_server_new_db(pg_server *s, char *url, size_t n);

/* A URL for database db of the server (an existing one, e.g. "postgres"). */
void pg_server_url(const pg_server *s, const char *db, char *url, size_t n);

/* Stops the server and keeps its data, as a database restart or outage
   would (fast shutdown: sessions are cut); pg_server_resume starts it again
   on the same data and socket (0, or -1 with s->why). */
void pg_server_halt(pg_server *s);
int pg_server_resume(pg_server *s);

/* Fast shutdown, then the directory goes. Safe on a server not started. */
void pg_server_stop(pg_server *s);

#endif
