/* pipes - close-on-exec pipe pairs (pipes.h). */
#include "support/pipes.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

/* Only the thread that forks makes pipes, so no child can inherit them
   between pipe() and the flag (pipe2 would close that gap in one call). */
static int one(int fd[2])
{
    if (pipe(fd) != 0)
        return -1;
    fcntl(fd[0], F_SETFD, FD_CLOEXEC);
    fcntl(fd[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

int pipes_cloexec(int a[2], int b[2])
{
    if (one(a) != 0)
        return -1;
    if (one(b) != 0) {
        int e = errno;
        close(a[0]);
        close(a[1]);
        errno = e;
        return -1;
    }
    return 0;
}

void pipes_close(int a[2], int b[2])
{
    close(a[0]);
    close(a[1]);
    close(b[0]);
    close(b[1]);
}
