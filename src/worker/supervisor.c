/*
 * supervisor - one slot per local worker: its process, the wake pipe the
 * server writes to, and the report pipe it reads. The slot's pipes are made
 * anew for each process, so a restarted worker starts clean.
 */
#include "worker/supervisor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "worker/worker.h"
#include "worker/worker_notify.h"
#include "support/clock.h"
#include "support/log.h"
#include "support/pipes.h"

typedef struct slot {
    pid_t pid; /* 0 when not running */
    char name[64];
    int wake_w;   /* server's end: a byte says "jobs were queued" */
    int report_r; /* server's end: the worker's change reports */
    char partial[NOTIFY_LINE];
    int n_partial;
} slot;

struct supervisor {
    supervisor_options o;
    /* the workers' environment: this process's, plus WORKER_STORE_ENV (a
       store URL may hold a password, and a command line is readable by
       every user of the machine, an environment by its owner only) */
    char **env;
    char *store_var;
    job_store *store;
    event_hub *hub;
    pthread_mutex_t mu; /* guards the wake_w fds against a restart swapping them */
    slot slots[SUPERVISOR_MAX_WORKERS];
    int n;
};

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Starts slot k's process; its pipe ends are inherited across exec, every
   other descriptor of the server closes (all are made close-on-exec). */
static int start_worker(supervisor *s, int k)
{
    slot *w = &s->slots[k];
    int wake[2], report[2];
    if (pipes_cloexec(wake, report) != 0)
        return -1;
    fcntl(wake[1], F_SETFL, O_NONBLOCK);
    fcntl(report[0], F_SETFL, O_NONBLOCK);
    fcntl(report[1], F_SETFL, O_NONBLOCK);
    char lease[32], threads[32], budget[32], idle[32], wake_fd[32], report_fd[32];
    snprintf(wake_fd, sizeof wake_fd, "%d", wake[0]);
    snprintf(report_fd, sizeof report_fd, "%d", report[1]);
    snprintf(lease, sizeof lease, "%d", s->o.lease_ms);
    snprintf(threads, sizeof threads, "%d", s->o.threads);
    snprintf(budget, sizeof budget, "%zu", s->o.ram_budget);
    snprintf(idle, sizeof idle, "%d", s->o.idle_unload_s);
    const char *argv[40 + 2 * SUPERVISOR_MAX_PRELOAD];
    int n = 0;
    enum { NAME_AT = 5 }; /* the worker's name, known once it has a pid */
    const char *fixed[] = {
        s->o.self_exe,   "worker",        "--models",
        s->o.models_dir, "--name",        NULL,
        "--lease-ms",    lease,           "--threads",
        threads,         "--idle-unload", idle,
        "--wake-fd",     wake_fd,         "--notify-fd",
        report_fd,       "--precision",   s->o.precision ? s->o.precision : "auto"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        argv[n++] = fixed[i];
    if (s->o.blob_url) { /* else in the store's database, reached by its URL */
        argv[n++] = "--blobs";
        argv[n++] = s->o.blob_url;
    }
    if (s->o.ram_budget) {
        argv[n++] = "--ram-budget";
        argv[n++] = budget;
    }
    if (s->o.lora_dir) {
        argv[n++] = "--lora-dir";
        argv[n++] = s->o.lora_dir;
    }
    for (int i = 0; i < s->o.n_preload && i < SUPERVISOR_MAX_PRELOAD; i++) {
        argv[n++] = "--preload";
        argv[n++] = s->o.preload[i];
    }
    argv[n] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        pipes_close(wake, report);
        return -1;
    }
    if (pid == 0) {
        /* the worker ends with the server, even one killed with SIGKILL */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0); /* the server died before the line above */
        fcntl(wake[0], F_SETFD, 0);
        fcntl(report[1], F_SETFD, 0);
        char name[64];
        snprintf(name, sizeof name, "w%d-%d", k, (int)getpid());
        argv[NAME_AT] = name;
        execve(s->o.self_exe, (char *const *)argv, s->env);
        _exit(127);
    }
    close(wake[0]);
    close(report[1]);
    pthread_mutex_lock(&s->mu);
    w->pid = pid;
    snprintf(w->name, sizeof w->name, "w%d-%d", k, (int)pid);
    w->wake_w = wake[1];
    pthread_mutex_unlock(&s->mu);
    w->report_r = report[0];
    w->n_partial = 0;
    return 0;
}

/* environ without WORKER_STORE_ENV, then var; NULL without memory. */
static char **worker_env(char *var)
{
    extern char **environ;
    size_t n = 0, k = 0, name = strlen(WORKER_STORE_ENV);
    while (environ[n])
        n++;
    char **env = malloc((n + 2) * sizeof *env);
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(strncmp(environ[i], WORKER_STORE_ENV, name) == 0 && environ[i][name] == '='))
            env[k++] = environ[i];
    env[k++] = var;
    env[k] = NULL;
    return env;
}

supervisor *supervisor_start(const supervisor_options *o, job_store *store, event_hub *hub,
                             svc_error *err)
{
    supervisor *s = calloc(1, sizeof *s);
    size_t var_len = strlen(WORKER_STORE_ENV) + strlen(o->store_url) + 2;
    if (s && (s->store_var = malloc(var_len)) != NULL) {
        snprintf(s->store_var, var_len, "%s=%s", WORKER_STORE_ENV, o->store_url);
        s->env = worker_env(s->store_var);
    }
    if (!s || !s->env) {
        if (s)
            free(s->store_var);
        free(s);
        svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    s->o = *o;
    s->store = store;
    s->hub = hub;
    s->n = o->workers < SUPERVISOR_MAX_WORKERS ? o->workers : SUPERVISOR_MAX_WORKERS;
    pthread_mutex_init(&s->mu, NULL);
    for (int k = 0; k < SUPERVISOR_MAX_WORKERS; k++)
        s->slots[k].wake_w = s->slots[k].report_r = -1;
    for (int k = 0; k < s->n; k++)
        if (start_worker(s, k) != 0) {
            svc_fail(err, GS_ERR_IO, "cannot start worker %d: %s", k, strerror(errno));
            supervisor_stop(s);
            return NULL;
        }
    return s;
}

void supervisor_wake(supervisor *s)
{
    pthread_mutex_lock(&s->mu);
    for (int k = 0; k < s->n; k++)
        if (s->slots[k].wake_w >= 0 && write(s->slots[k].wake_w, "j", 1) < 0)
            continue; /* a full pipe already says it */
    pthread_mutex_unlock(&s->mu);
}

/* Publishes the complete lines that arrived from slot w. */
static void read_reports(supervisor *s, slot *w)
{
    char buf[NOTIFY_LINE * 64];
    ssize_t got;
    while ((got = read(w->report_r, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < got; i++) {
            w->partial[w->n_partial++] = buf[i];
            if (w->n_partial < NOTIFY_LINE)
                continue;
            w->n_partial = 0;
            if (w->partial[NOTIFY_LINE - 1] != '\n')
                continue;
            char id[JOB_ID_LEN + 1];
            memcpy(id, w->partial + 1, JOB_ID_LEN);
            id[JOB_ID_LEN] = '\0';
            hub_publish(s->hub, id);
            if (w->partial[0] == NOTIFY_QUEUE)
                hub_publish_queue(s->hub);
        }
    }
}

/* A dead worker: its presence goes, its job goes back to the queue now (the
   attempt counts: the job may be what killed it), a new process starts. */
static void restart_dead(supervisor *s)
{
    for (int k = 0; k < s->n; k++) {
        slot *w = &s->slots[k];
        int status;
        if (w->pid <= 0 || waitpid(w->pid, &status, WNOHANG) != w->pid)
            continue;
        if (WIFSIGNALED(status))
            log_warn("%s died of signal %d; restarting it", w->name, WTERMSIG(status));
        else
            log_warn("%s exited with status %d; restarting it", w->name, WEXITSTATUS(status));
        svc_error err = {0};
        int requeued = 0, failed = 0;
        if (store_worker_remove(s->store, w->name, &err) != GS_OK)
            log_warn("%s", err.msg); /* its row fades out unrefreshed */
        if (store_expire_worker(s->store, w->name, store_clock_ms(), s->o.max_attempts, &requeued,
                                &failed, &err) != GS_OK)
            log_warn("%s (its job waits for its lease instead)", err.msg);
        else if (requeued || failed)
            log_info("%s's job %s", w->name, failed ? "used its last attempt: failed" : "requeued");
        read_reports(s, w);
        pthread_mutex_lock(&s->mu);
        close_fd(&w->wake_w);
        w->pid = 0;
        pthread_mutex_unlock(&s->mu);
        close_fd(&w->report_r);
        hub_publish_all(s->hub); /* the job it ran stops moving */
        if (start_worker(s, k) != 0)
            log_error("cannot restart worker %d: %s", k, strerror(errno));
    }
}

void supervisor_poll(supervisor *s, int timeout_ms)
{
    struct pollfd pfd[SUPERVISOR_MAX_WORKERS];
    int idx[SUPERVISOR_MAX_WORKERS], m = 0;
    for (int k = 0; k < s->n; k++)
        if (s->slots[k].report_r >= 0) {
            pfd[m].fd = s->slots[k].report_r;
            pfd[m].events = POLLIN;
            idx[m++] = k;
        }
    if (poll(pfd, (nfds_t)m, timeout_ms) > 0)
        for (int i = 0; i < m; i++)
            if (pfd[i].revents & (POLLIN | POLLHUP))
                read_reports(s, &s->slots[idx[i]]);
    restart_dead(s);
}

void supervisor_stop(supervisor *s)
{
    if (!s)
        return;
    for (int k = 0; k < s->n; k++)
        if (s->slots[k].pid > 0)
            kill(s->slots[k].pid, SIGTERM);
    /* A worker gives its job back at the end of the step it is in; a step of
       a big image on a slow machine can take minutes, and a stop must not.
       Past the grace it is killed: its job's lease runs out and the next
       start requeues it. */
    int64_t t0 = mono_ms();
    for (int left = 1; left;) {
        left = 0;
        for (int k = 0; k < s->n; k++)
            if (s->slots[k].pid > 0 && waitpid(s->slots[k].pid, NULL, WNOHANG) == 0)
                left++;
            else
                s->slots[k].pid = 0;
        if (left && mono_ms() - t0 >= s->o.stop_grace_ms) {
            log_warn("%d worker%s did not stop within %d ms; killing %s", left, left > 1 ? "s" : "",
                     s->o.stop_grace_ms, left > 1 ? "them" : "it");
            for (int k = 0; k < s->n; k++)
                if (s->slots[k].pid > 0) {
                    kill(s->slots[k].pid, SIGKILL);
                    waitpid(s->slots[k].pid, NULL, 0);
                    s->slots[k].pid = 0;
                }
            left = 0;
        }
        if (left)
            usleep(20000);
    }
    for (int k = 0; k < s->n; k++) {
        slot *w = &s->slots[k];
        close_fd(&w->wake_w);
        close_fd(&w->report_r);
    }
    pthread_mutex_destroy(&s->mu);
    free(s->env);
    free(s->store_var);
    free(s);
}
