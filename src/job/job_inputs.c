/* job_inputs - a job's input images moved into the blob store and read back, by reference. */
#include "job/job_inputs.h"

#include <stdlib.h>
#include <string.h>

#include "job/base64.h"
#include "job/job_image.h"
#include "hash/sha256.h"
#include "support/log.h"

/* The most an inline image may decode to here: the edge has held it to the
   operator's --max-image already; this only bounds the allocation. */
#define MAX_INPUT_BYTES ((size_t)1 << 30)

size_t job_inputs_bytes(job_spec *s)
{
    size_t n = 0;
    job_image *img;
    for (int i = 0; (img = job_spec_image(s, i)); i++)
        if (img->base64)
            n += (strlen(img->base64) + 3) / 4 * 3;
    return n;
}

/* One inline image to input blob i; img then holds its reference. */
static gs_status put_one(blob_store *b, const char *id, int i, job_image *img, svc_error *err)
{
    size_t n = 0;
    unsigned char *bytes = base64_decode(img->base64, MAX_INPUT_BYTES, &n);
    if (!bytes)
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "input image %d is not base64", i);
    gs_status st = blob_put(b, id, BLOB_INPUT, i, bytes, n, err);
    if (st == GS_OK) {
        char sha[SHA256_HEX_LEN + 1];
        sha256_hex(bytes, n, sha);
        job_image_clear(img);
        img->stored = 1;
        img->blob = i;
        img->bytes = n;
        memcpy(img->sha256, sha, sizeof sha);
    }
    free(bytes);
    return st;
}

gs_status job_inputs_put(blob_store *b, const char *id, job_spec *s, svc_error *err)
{
    gs_status st = GS_OK;
    job_image *img;
    for (int i = 0; st == GS_OK && (img = job_spec_image(s, i)); i++)
        if (img->base64)
            st = put_one(b, id, i, img, err);
    svc_error also = {0}; /* err keeps the first failure, the one to report */
    if (st != GS_OK && blob_delete_job(b, id, &also) != GS_OK)
        log_warn("%s", also.msg);
    return st;
}

gs_status job_inputs_load(blob_store *b, const char *id, job_spec *s, svc_error *err)
{
    job_image *img;
    for (int i = 0; (img = job_spec_image(s, i)); i++) {
        if (!img->stored || img->data)
            continue;
        unsigned char *data = NULL;
        size_t n = 0;
        svc_error why = {0};
        gs_status st = blob_get(b, id, BLOB_INPUT, img->blob, img->bytes, &data, &n, &why);
        if (st == GS_ERR_INVALID_ARGUMENT)
            return svc_fail(err, st, "the job's input image %d is missing from the blob store",
                            img->blob);
        if (st != GS_OK)
            return svc_fail(err, st, "cannot read the job's input image %d: %s", img->blob,
                            why.msg);
        char sha[SHA256_HEX_LEN + 1];
        sha256_hex(data, n, sha);
        if (n != img->bytes || strcmp(sha, img->sha256) != 0) {
            free(data);
            return svc_fail(err, GS_ERR_FORMAT,
                            "the job's input image %d is not the file it was given (%zu bytes, "
                            "SHA-256 %.12s…)",
                            img->blob, n, sha);
        }
        img->data = data;
    }
    return GS_OK;
}
