/*
 * blob_store - a job's big bytes: its inputs (an init image, later a mask),
 * result images and previews, put/get/delete by job and index, behind an
 * operations table so the fleet can keep them in the database or an object
 * store. The files on one machine are the first engine; no module but the
 * blob store knows where the bytes live.
 *
 * A put is atomic: a reader sees the old blob or the whole new one, never half.
 * Safe for several processes (the API puts inputs, workers put results, the
 * API gets and deletes). The store keeps a running total of the bytes it
 * holds, shared by those processes, so a cap can be checked without a walk.
 */
#ifndef GS_BLOB_STORE_H
#define GS_BLOB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "support/error.h"

#define BLOB_MAX_INDEX 64 /* image indices are 0..BLOB_MAX_INDEX-1: a job's images */
#define BLOB_MAX_INPUTS 4 /* input indices are 0..BLOB_MAX_INPUTS-1 (the job spec's order) */

typedef enum blob_kind {
    BLOB_IMAGE,   /* a result image (PNG), one per index */
    BLOB_PREVIEW, /* the newest preview of a running job (PNG), index 0 */
    BLOB_INPUT    /* a file the client sent with the job (PNG, JPEG, WebP), as sent */
} blob_kind;

typedef struct blob_store blob_store;

/* Opens the blob store at url: "file:DIR" or a plain directory path (created
   if missing), or a job store's postgresql:// URL (blobs in its database).
   Free with blob_close. */
GS_NODISCARD gs_status blob_open(const char *url, blob_store **out, svc_error *err);
void blob_close(blob_store *b);

GS_NODISCARD gs_status blob_put(blob_store *b, const char *job_id, blob_kind kind, int index,
                                const void *data, size_t n, svc_error *err);

/* The blob's bytes (malloc'd, *n of them) when it exists and is at most max
   bytes; GS_ERR_INVALID_ARGUMENT when there is none, GS_ERR_IO when it cannot
   be read. */
GS_NODISCARD gs_status blob_get(blob_store *b, const char *job_id, blob_kind kind, int index,
                                size_t max, unsigned char **data, size_t *n, svc_error *err);

/* Deletes every blob of the job (inputs, images and preview); none is not an error. */
GS_NODISCARD gs_status blob_delete_job(blob_store *b, const char *job_id, svc_error *err);

/* ---- accounting ---- */

/* The bytes the store holds: a running total that every process's puts and
   deletes keep, read without a walk. It drifts only when a process dies
   between writing a blob and counting it; blob_recount puts it right. */
int64_t blob_bytes(blob_store *b);

/* Counts the bytes held anew (a walk over every blob) and sets the running
   total to it: for a start, when no other process is writing. */
GS_NODISCARD gs_status blob_recount(blob_store *b, svc_error *err);

/* Calls fn(user, id) once for each job that has any blob, in no set order;
   fn may delete that job's blobs. */
GS_NODISCARD gs_status blob_each_job(blob_store *b, void (*fn)(void *user, const char *job_id),
                                     void *user, svc_error *err);

#endif
