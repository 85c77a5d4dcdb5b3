/* worker_notify - the worker's end of the change-report pipe. */
#include "worker/worker_notify.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

int worker_notify(int fd, char kind, const char *job_id)
{
    if (fd < 0)
        return 0;
    char line[NOTIFY_LINE];
    memset(line, '0', sizeof line);
    line[0] = kind;
    size_t n = strlen(job_id);
    memcpy(line + 1, job_id, n < JOB_ID_LEN ? n : JOB_ID_LEN);
    line[NOTIFY_LINE - 1] = '\n';
    ssize_t k;
    do
        k = write(fd, line, sizeof line);
    while (k < 0 && errno == EINTR);
    return k < 0 && errno == EPIPE ? -1 : 0; /* EAGAIN: a full pipe, the line is dropped */
}
