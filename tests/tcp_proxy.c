/* tcp_proxy - one thread polls the listener, a control pipe and every link;
   see tcp_proxy.h. Every descriptor is close-on-exec: a worker the test
   forks must not hold a link open that the proxy closes. */
#define _GNU_SOURCE /* accept4, pipe2 */
#include "tcp_proxy.h"

#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LINKS 64

struct tcp_proxy {
    char path[108];
    int listen_fd;
    int ctl[2];           /* a byte: '1' cut, '0' forward, 'q' quit */
    int ack[2];           /* the thread's answer to each control byte */
    int fd[MAX_LINKS][2]; /* client, server; -1 when free */
    int cut, links;
    pthread_t thread;
};

static void close_link(tcp_proxy *p, int i)
{
    close(p->fd[i][0]);
    close(p->fd[i][1]);
    p->fd[i][0] = p->fd[i][1] = -1;
}

static void open_link(tcp_proxy *p)
{
    int c = accept4(p->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return;
    if (p->cut) {
        close(c); /* the path is broken: the client sees its connection end */
        return;
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", p->path);
    int slot = -1;
    for (int i = 0; i < MAX_LINKS && slot < 0; i++)
        if (p->fd[i][0] < 0)
            slot = i;
    if (s < 0 || slot < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(c);
        if (s >= 0)
            close(s);
        return;
    }
    p->fd[slot][0] = c;
    p->fd[slot][1] = s;
    p->links++;
}

/* Moves what is readable on one side to the other; 0 when the link ended. */
static int pump(int from, int to)
{
    char buf[65536];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0)
        return 0;
    for (ssize_t off = 0; off < n;) {
        ssize_t k = write(to, buf + off, (size_t)(n - off));
        if (k <= 0)
            return 0;
        off += k;
    }
    return 1;
}

static void *run(void *arg)
{
    tcp_proxy *p = arg;
    for (;;) {
        struct pollfd pf[2 + 2 * MAX_LINKS];
        int map[2 + 2 * MAX_LINKS], n = 0;
        pf[n] = (struct pollfd){.fd = p->ctl[0], .events = POLLIN}, map[n++] = -1;
        pf[n] = (struct pollfd){.fd = p->listen_fd, .events = POLLIN}, map[n++] = -1;
        for (int i = 0; i < MAX_LINKS; i++)
            if (p->fd[i][0] >= 0)
                for (int side = 0; side < 2; side++)
                    pf[n] = (struct pollfd){.fd = p->fd[i][side], .events = POLLIN},
                    map[n++] = 2 * i + side;
        if (poll(pf, (nfds_t)n, -1) < 0)
            continue;
        if (pf[0].revents) {
            char c = 'q';
            if (read(p->ctl[0], &c, 1) != 1 || c == 'q')
                break;
            p->cut = c == '1';
            if (p->cut)
                for (int i = 0; i < MAX_LINKS; i++)
                    if (p->fd[i][0] >= 0)
                        close_link(p, i);
            if (write(p->ack[1], &c, 1) != 1)
                break;
            continue; /* the links polled may be gone */
        }
        if (pf[1].revents)
            open_link(p);
        for (int k = 2; k < n; k++) {
            int i = map[k] / 2, side = map[k] % 2;
            if (pf[k].revents && p->fd[i][0] >= 0 && !pump(p->fd[i][side], p->fd[i][!side]))
                close_link(p, i);
        }
    }
    for (int i = 0; i < MAX_LINKS; i++)
        if (p->fd[i][0] >= 0)
            close_link(p, i);
    return NULL;
}

tcp_proxy *tcp_proxy_start(const char *unix_path, int *port)
{
    tcp_proxy *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->path, sizeof p->path, "%s", unix_path);
    for (int i = 0; i < MAX_LINKS; i++)
        p->fd[i][0] = p->fd[i][1] = -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (p->listen_fd < 0 || bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(p->listen_fd, 16) != 0 ||
        getsockname(p->listen_fd, (struct sockaddr *)&a, &len) != 0 ||
        pipe2(p->ctl, O_CLOEXEC) != 0 || pipe2(p->ack, O_CLOEXEC) != 0 ||
        pthread_create(&p->thread, NULL, run, p) != 0) {
        if (p->listen_fd >= 0)
            close(p->listen_fd);
        free(p);
        return NULL;
    }
    *port = ntohs(a.sin_port);
    return p;
}

void tcp_proxy_cut(tcp_proxy *p, int cut)
{
    char c = cut ? '1' : '0';
    if (write(p->ctl[1], &c, 1) == 1 && read(p->ack[0], &c, 1) == 1)
        return;
}

int tcp_proxy_links(tcp_proxy *p)
{
    return p->links;
}

void tcp_proxy_stop(tcp_proxy *p)
{
    if (!p)
        return;
    char c = 'q';
    if (write(p->ctl[1], &c, 1) == 1)
        pthread_join(p->thread, NULL);
    close(p->listen_fd);
    close(p->ctl[0]), close(p->ctl[1]), close(p->ack[0]), close(p->ack[1]);
    free(p);
}
