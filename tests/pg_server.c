/* pg_server - a throwaway PostgreSQL server for a test run (pg_server.h). */
#include "pg_server.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PORT 5432 /* only names the socket file: the directory is ours alone */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- finding the binaries ---- */

static int has_server(const char *bindir)
{
    char p[600], q[600];
    snprintf(p, sizeof p, "%s/initdb", bindir);
    snprintf(q, sizeof q, "%s/postgres", bindir);
    return access(p, X_OK) == 0 && access(q, X_OK) == 0;
}

/* Where initdb and postgres are; 0, or -1 when nowhere. pg_config comes with
   the client library's headers, so the directory it names may lack the
   server: each place is checked for the binaries themselves. */
static int find_bindir(char *out, size_t n)
{
    FILE *p = popen("pg_config --bindir 2>/dev/null", "r");
    if (p) {
        int got = fgets(out, (int)n, p) != NULL;
        pclose(p);
        out[strcspn(out, "\n")] = '\0';
        if (got && has_server(out))
            return 0;
    }
    glob_t g;
    long best = -1;
    if (glob("/usr/lib/postgresql/*/bin", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            long v = strtol(g.gl_pathv[i] + strlen("/usr/lib/postgresql/"), NULL, 10);
            if (v > best && has_server(g.gl_pathv[i])) {
                best = v;
                snprintf(out, n, "%s", g.gl_pathv[i]);
            }
        }
        globfree(&g);
    }
    if (best >= 0)
        return 0;
    const char *path = getenv("PATH");
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path ? path : "/usr/bin:/bin");
    for (char *save = NULL, *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
        if (has_server(d)) {
            snprintf(out, n, "%s", d);
            return 0;
        }
    return -1;
}

/* ---- running them ---- */

typedef struct runner {
    const struct passwd *as; /* NULL: as ourselves */
    const char *dir;         /* working directory */
} runner;

/* Starts argv[0] with output to log, as r->as when set; the child ends with
   this process (a crashed test leaves no server behind). */
static pid_t spawn(const runner *r, char *const argv[], const char *log)
{
    static char *const env[] = {"LC_ALL=C", "TZ=UTC", "PATH=/usr/bin:/bin", NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    int null = open("/dev/null", O_RDONLY);
    if (fd < 0 || null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        _exit(126);
    if (r->as) {
        gid_t gid = r->as->pw_gid;
        if (fchown(fd, r->as->pw_uid, gid) != 0 || setgroups(1, &gid) != 0 || setgid(gid) != 0 ||
            setuid(r->as->pw_uid) != 0)
            _exit(126);
    }
    /* after setuid, which clears it */
    prctl(PR_SET_PDEATHSIG, SIGQUIT);
    if (getppid() != parent || chdir(r->dir) != 0)
        _exit(126);
    execve(argv[0], argv, env);
    _exit(127);
}

/* The end of a log file, for a message. */
static void log_tail(const char *log, char *out, size_t n)
{
    out[0] = '\0';
    FILE *f = fopen(log, "r");
    if (!f)
        return;
    char buf[320];
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : 0;
    long from = size > 300 ? size - 300 : 0;
    size_t k = fseek(f, from, SEEK_SET) == 0 ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[k] = '\0';
    fclose(f);
    for (char *c = buf; *c; c++)
        if (*c == '\n')
            *c = ' ';
    snprintf(out, n, "%s", buf);
}

/* ---- the server ---- */

static void conninfo(const pg_server *s, const char *db, char *out, size_t n)
{
    snprintf(out, n, "host=%s port=%d dbname=%s user=postgres connect_timeout=5", s->dir, PORT, db);
}

void pg_server_url(const pg_server *s, const char *db, char *url, size_t n)
{
    snprintf(url, n, "postgresql:///%s?host=%s&port=%d&user=postgres", db, s->dir, PORT);
}

/* PostgreSQL refuses to run as root: then it runs as the postgres user. */
static runner runner_for(const pg_server *s)
{
    runner r = {geteuid() == 0 ? getpwnam("postgres") : NULL, s->dir};
    return r;
}

/* Starts the postmaster on s->dir/data and waits until it takes
   connections; 0, or -1 with s->why. */
static int launch(pg_server *s)
{
    char postgres[600], data[128], log[128], tail[320];
    runner r = runner_for(s);
    snprintf(postgres, sizeof postgres, "%s/postgres", s->bindir);
    snprintf(data, sizeof data, "%s/data", s->dir);
    snprintf(log, sizeof log, "%s/postgres.log", s->dir);
    /* a server for one test run need not survive a power cut: no syncs */
    static const char *const fast[] = {"fsync=off", "synchronous_commit=off",
                                       "full_page_writes=off"};
    char *run_argv[16] = {postgres,           "-D", data, "-k", s->dir, "-p", "5432", "-c",
                          "listen_addresses="};
    int k = 9, status;
    for (int i = 0; i < 3 && !(s->flags & PG_SERVER_DURABLE); i++) {
        run_argv[k++] = "-c";
        run_argv[k++] = (char *)fast[i];
    }
    run_argv[k] = NULL;
    s->pid = spawn(&r, run_argv, log);
    if (s->pid < 0) {
        s->pid = 0;
        snprintf(s->why, sizeof s->why, "cannot start postgres: %s", strerror(errno));
        return -1;
    }
    char ci[256];
    conninfo(s, "postgres", ci, sizeof ci);
    for (int waited = 0; waited < 30000; waited += 20) {
        if (PQping(ci) == PQPING_OK)
            return 0;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            s->pid = 0;
            break;
        }
        sleep_ms(20);
    }
    log_tail(log, tail, sizeof tail);
    snprintf(s->why, sizeof s->why, "postgres did not start accepting connections: %s", tail);
    return -1;
}

int pg_server_start(pg_server *s, unsigned flags)
{
    char initdb[600], data[128], log[128], tail[320];
    memset(s, 0, sizeof *s);
    s->flags = flags;
    if (find_bindir(s->bindir, sizeof s->bindir) != 0) {
        snprintf(s->why, sizeof s->why,
                 "no PostgreSQL server binaries (initdb, postgres) in pg_config --bindir,"
                 " /usr/lib/postgresql/*/bin or the PATH: install Debian's postgresql package"
                 " (scripts/deps.sh does)");
        return -1;
    }
    runner r = runner_for(s);
    if (geteuid() == 0 && !r.as) {
        snprintf(s->why, sizeof s->why,
                 "running as root, and PostgreSQL refuses to: no 'postgres' user to run it as"
                 " (Debian's postgresql package creates one)");
        return -1;
    }
    snprintf(s->dir, sizeof s->dir, "/tmp/gesso-pg-XXXXXX");
    if (!mkdtemp(s->dir)) {
        snprintf(s->why, sizeof s->why, "cannot make a temporary directory: %s", strerror(errno));
        return -1;
    }
    if (r.as && chown(s->dir, r.as->pw_uid, r.as->pw_gid) != 0) {
        snprintf(s->why, sizeof s->why, "cannot give %s to postgres: %s", s->dir, strerror(errno));
        pg_server_stop(s);
        return -1;
    }
    snprintf(initdb, sizeof initdb, "%s/initdb", s->bindir);
    snprintf(data, sizeof data, "%s/data", s->dir);
    snprintf(log, sizeof log, "%s/initdb.log", s->dir);
    /* --no-sync: the files initdb writes are as disposable as the server */
    char *init_argv[] = {initdb,  "-D", data,   "-U",         "postgres",  "-A",
                         "trust", "-E", "UTF8", "--locale=C", "--no-sync", NULL};
    pid_t pid = spawn(&r, init_argv, log);
    int status = -1;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0) {
        log_tail(log, tail, sizeof tail);
        snprintf(s->why, sizeof s->why, "initdb failed: %s", tail);
        pg_server_stop(s);
        return -1;
    }
    if (launch(s) != 0) {
        pg_server_stop(s);
        return -1;
    }
    return 0;
}

/* Runs one statement on the maintenance database; 0 or -1 (in s->why). */
static int admin(pg_server *s, const char *sql)
{
    char ci[256];
    conninfo(s, "postgres", ci, sizeof ci);
    PGconn *c = PQconnectdb(ci);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(s->why, sizeof s->why, "%s: %s", sql, PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : -1;
}

int pg_server_new_db(pg_server *s, char *url, size_t n)
{
    char sql[128], db[32];
    if (!s->pid)
        return -1;
    if (s->next_db > 0) { /* the last case's, so they do not pile up on disk */
        snprintf(sql, sizeof sql, "DROP DATABASE gesso_%d WITH (FORCE)", s->next_db);
        if (admin(s, sql) != 0)
            return -1;
    }
    snprintf(db, sizeof db, "gesso_%d", ++s->next_db);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s", db);
    if (admin(s, sql) != 0)
        return -1;
    pg_server_url(s, db, url, n);
    return 0;
}

void pg_server_halt(pg_server *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGINT); /* fast shutdown: sessions are cut, not waited for */
        int status, gone = 0;
        for (int waited = 0; !gone && waited < 10000; waited += 10) {
            gone = waitpid(s->pid, &status, WNOHANG) == s->pid;
            if (!gone)
                sleep_ms(10);
        }
        if (!gone) { /* immediate shutdown */
            kill(s->pid, SIGQUIT);
            waitpid(s->pid, &status, 0);
        }
        s->pid = 0;
    }
}

int pg_server_resume(pg_server *s)
{
    return s->pid ? 0 : launch(s);
}

void pg_server_stop(pg_server *s)
{
    pg_server_halt(s);
    if (s->dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "pg_server: could not remove %s\n", s->dir);
        s->dir[0] = '\0';
    }
}
