/*
 * blob_tally - a byte count that every process with the blob store open
 * shares: a 64-bit integer in a small file beside the blobs, mapped shared
 * and changed by atomic adds, so that a worker's put is in the total the API
 * reads at its next submit, without a walk over the directory. Not for use
 * outside src/queue.
 */
#ifndef GS_BLOB_TALLY_H
#define GS_BLOB_TALLY_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct blob_tally {
    _Atomic int64_t *count; /* into the mapping, or at own when the file cannot be mapped */
    _Atomic int64_t own;
    int mapped;
} blob_tally;

/* Maps the count kept in file path (created holding 0). When the file cannot
   be made or mapped the count is this process's alone: accounting degrades,
   blobs still work. Free with tally_close. */
void tally_open(blob_tally *t, const char *path);
void tally_close(blob_tally *t);

void tally_add(blob_tally *t, int64_t delta);
int64_t tally_get(blob_tally *t); /* never below 0 */
void tally_set(blob_tally *t, int64_t value);

#endif
