/*
 * blob_store - result images and previews, put/get/delete by job and index,
 * behind an operations table so the fleet can keep them in the database or an
 * object store. The files on one machine are the first engine; no module but
 * the blob store knows where the bytes live.
 *
 * A put is atomic: a reader sees the old blob or the whole new one, never half.
 * Safe for several processes (workers put, the API gets and deletes).
 */
#ifndef GS_BLOB_STORE_H
#define GS_BLOB_STORE_H

#include <stddef.h>

#include "support/error.h"

#define BLOB_MAX_INDEX 64 /* indices are 0..BLOB_MAX_INDEX-1: a job's images */

typedef enum blob_kind {
    BLOB_IMAGE,  /* a result image (PNG), one per index */
    BLOB_PREVIEW /* the newest preview of a running job (PNG), index 0 */
} blob_kind;

typedef struct blob_store blob_store;

/* Opens the blob store at url: "file:DIR" or a plain directory path (created
   if missing). Free with blob_close. */
GS_NODISCARD gs_status blob_open(const char *url, blob_store **out, svc_error *err);
void blob_close(blob_store *b);

GS_NODISCARD gs_status blob_put(blob_store *b, const char *job_id, blob_kind kind, int index,
                                const void *data, size_t n, svc_error *err);

/* The blob's bytes (malloc'd, *n of them) when it exists and is at most max
   bytes; GS_ERR_INVALID_ARGUMENT when there is none, GS_ERR_IO when it cannot
   be read. */
GS_NODISCARD gs_status blob_get(blob_store *b, const char *job_id, blob_kind kind, int index,
                                size_t max, unsigned char **data, size_t *n, svc_error *err);

/* Deletes every blob of the job (images and preview); none is not an error. */
GS_NODISCARD gs_status blob_delete_job(blob_store *b, const char *job_id, svc_error *err);

#endif
