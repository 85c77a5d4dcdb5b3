/*
 * frame - the bridge's pipe to its generation child: length-prefixed
 * messages (a 4-byte little-endian length, then the bytes). Reads wait at
 * most a deadline, so a child that hangs is found out.
 */
#ifndef GS_HORDE_FRAME_H
#define GS_HORDE_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define HORDE_FRAME_MAX (256u << 20)

/* 0, or -1 when the pipe is closed or broken. */
int horde_frame_write(int fd, const void *data, size_t len);

/* Reads one message into *out (malloc'd, with a NUL after it). timeout_ms < 0:
   no limit. 0, -1 at end of file or on an error, -2 on time-out. stop, when
   not NULL, is checked each 100 ms: when it reads >= 2 the read gives up
   (-3). */
int horde_frame_read(int fd, unsigned char **out, size_t *len, int timeout_ms, volatile int *stop);

#endif
