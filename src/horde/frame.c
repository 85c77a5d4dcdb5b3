/* frame - full writes and polled reads on a pipe. */
#include "horde/frame.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int horde_frame_write(int fd, const void *data, size_t len)
{
    unsigned char hdr[4] = {(unsigned char)len, (unsigned char)(len >> 8),
                            (unsigned char)(len >> 16), (unsigned char)(len >> 24)};
    return write_all(fd, hdr, 4) || write_all(fd, data, len) ? -1 : 0;
}

static int read_all(int fd, unsigned char *p, size_t n, int64_t deadline, volatile int *stop)
{
    while (n) {
        int wait = 100;
        if (deadline >= 0) {
            int64_t left = deadline - mono_ms();
            if (left <= 0)
                return -2;
            if (left < wait)
                wait = (int)left;
        }
        if (stop && *stop >= 2)
            return -3;
        struct pollfd pf = {fd, POLLIN, 0};
        int r = poll(&pf, 1, wait);
        if (r < 0 && errno != EINTR)
            return -1;
        if (r <= 0)
            continue;
        ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int horde_frame_read(int fd, unsigned char **out, size_t *len, int timeout_ms, volatile int *stop)
{
    int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
    unsigned char hdr[4];
    int rc = read_all(fd, hdr, 4, deadline, stop);
    if (rc)
        return rc;
    size_t n = hdr[0] | (size_t)hdr[1] << 8 | (size_t)hdr[2] << 16 | (size_t)hdr[3] << 24;
    if (n > HORDE_FRAME_MAX)
        return -1;
    unsigned char *buf = malloc(n + 1);
    if (!buf)
        return -1;
    if ((rc = read_all(fd, buf, n, deadline, stop)) != 0) {
        free(buf);
        return rc;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}
