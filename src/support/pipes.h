/*
 * pipes - the pipes a process makes to talk to a child it forks and execs
 * (the Horde's generation child, the server's workers). Every end is
 * close-on-exec, so a child forked later never inherits another's pipe and
 * keeps it open past its owner's end; a child that must keep an end clears
 * the flag on it after the fork.
 */
#ifndef GS_SUPPORT_PIPES_H
#define GS_SUPPORT_PIPES_H

/* Two close-on-exec pipes, a and b: 0, or -1 (errno set) with neither open. */
int pipes_cloexec(int a[2], int b[2]);

/* Closes the four ends pipes_cloexec opened (after a failed fork). */
void pipes_close(int a[2], int b[2]);

#endif
