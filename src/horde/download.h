/*
 * download - one URL to one file (libcurl), made for multi-GB checkpoints on
 * flaky links: the bytes go to DEST.part, an interrupted transfer resumes from
 * there with a Range request (and starts over when the server ignores it), 5xx
 * replies and stalls are retried with back-off, the sha256 is checked before
 * DEST appears (by rename, so DEST is whole or absent), and a disk budget is
 * never exceeded: refused up front when the size is known, cut off when a
 * stream without a length crosses it.
 */
#ifndef GS_HORDE_DOWNLOAD_H
#define GS_HORDE_DOWNLOAD_H

#include <signal.h>
#include <stddef.h>

typedef enum horde_dl_result {
    HORDE_DL_OK = 0,
    HORDE_DL_FAILED = -1,   /* HTTP error, network, disk: err says which */
    HORDE_DL_BUDGET = -2,   /* would exceed the disk budget: nothing kept */
    HORDE_DL_CHECKSUM = -3, /* the bytes are not the expected ones: deleted */
    HORDE_DL_STOPPED = -4,  /* *stop was set: DEST.part kept for a later resume */
} horde_dl_result;

typedef struct horde_dl_options {
    long long budget;         /* bytes DEST may take; 0: no limit */
    long long size;           /* the size the caller expects (model reference); 0: unknown */
    const char *sha256;       /* expected digest, hex; NULL or "": not checked */
    const char *header;       /* one extra request header ("Authorization: Bearer ..."), or NULL */
    int tries;                /* attempts in all; 0: 5 */
    int backoff_ms;           /* first pause between attempts, doubled each time; 0: 1000 */
    int stall_s;              /* a transfer under 1 byte/s for this long is retried; 0: 60 */
    const volatile int *stop; /* set by a signal handler: give up now; may be NULL */
    int quiet;                /* no progress lines */
} horde_dl_options;

/* Downloads url to dest (through dest.part). Progress goes to the log (stderr)
   about every 2 s. err says why on failure. */
horde_dl_result horde_download(const char *url, const char *dest, const horde_dl_options *o,
                               char *err, size_t err_size);

/* mkdir -p: 0 when dir exists afterwards. */
int horde_mkdir_p(const char *dir);

/* The sha256 of a file as hex; 0, or -1 when it cannot be read. */
int horde_file_sha256(const char *path, char out[65]);

#endif
