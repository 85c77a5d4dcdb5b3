/*
 * job_image - an input image field of the job spec in its two forms: inline
 * base64, as a client sends it, and the reference to a stored file that
 * replaces it before the job is queued. The reference carries the file's
 * size and SHA-256 so that the worker can tell the file it reads back is the
 * one the client sent.
 */
#include "job/job_image.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/base64.h"
#include "queue/blob_store.h" /* BLOB_MAX_INPUTS: the indices a reference may name */

static int fail(job_error *e, job_reason reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(job_error *e, job_reason reason, const char *field, const char *fmt, ...)
{
    e->reason = reason;
    snprintf(e->field, sizeof e->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int is_hex_digest(const char *s)
{
    if (!s || strlen(s) != 64)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

/* {"blob": INDEX, "bytes": N, "sha256": "HEX"}, each member required, no other. */
static int read_reference(job_image *img, const char *field, const json_t *v, job_error *e)
{
    const json_t *blob = json_object_get(v, "blob"), *bytes = json_object_get(v, "bytes");
    const char *sha = json_string_value(json_object_get(v, "sha256"));
    if (json_object_size(v) != 3 || !json_is_integer(blob) || !json_is_integer(bytes) ||
        !is_hex_digest(sha))
        return fail(e, JOB_ERR_WRONG_TYPE, field,
                    "'%s' must be base64 text, or a stored image's {\"blob\", \"bytes\", "
                    "\"sha256\"}",
                    field);
    json_int_t index = json_integer_value(blob), n = json_integer_value(bytes);
    if (index < 0 || index >= BLOB_MAX_INPUTS || n < 1 || n > ((json_int_t)1 << 40))
        return fail(e, JOB_ERR_OUT_OF_RANGE, field, "'%s' names no stored image", field);
    job_image_clear(img);
    img->stored = 1;
    img->blob = (int)index;
    img->bytes = (size_t)n;
    memcpy(img->sha256, sha, 65);
    return 0;
}

int job_image_read(job_image *img, const char *field, const json_t *v, size_t max_text,
                   job_error *e)
{
    if (json_is_null(v))
        return 0; /* null reads as absent, as for every field */
    if (json_is_object(v))
        return read_reference(img, field, v, e);
    if (!json_is_string(v))
        return fail(e, JOB_ERR_WRONG_TYPE, field, "'%s' must be a string", field);
    if (json_string_length(v) > max_text)
        return fail(e, JOB_ERR_TOO_LONG, field, "'%s' is too long", field);
    char *copy = strdup(json_string_value(v));
    if (!copy)
        return fail(e, JOB_ERR_NO_MEMORY, field, "out of memory");
    job_image_clear(img);
    img->base64 = copy;
    return 0;
}

json_t *job_image_json(const job_image *img)
{
    if (img->stored)
        return json_pack("{s:i,s:I,s:s}", "blob", img->blob, "bytes", (json_int_t)img->bytes,
                         "sha256", img->sha256);
    return img->base64 ? json_string(img->base64) : NULL;
}

void job_image_clear(job_image *img)
{
    free(img->base64);
    free(img->data);
    memset(img, 0, sizeof *img);
}

int job_image_check(const job_image *img, const char *field, size_t max, job_error *e)
{
    if (img->stored)
        return fail(e, JOB_ERR_WRONG_TYPE, field,
                    "'%s' must be base64 image data (a stored image's reference is the "
                    "server's to write)",
                    field);
    if (!img->base64)
        return 0;
    size_t n = 0;
    unsigned char *bytes = base64_decode(img->base64, max, &n);
    if (!bytes)
        return fail(e, JOB_ERR_BAD_IMAGE, field, "'%s' is not base64 of at most the image limit",
                    field);
    gs_image *im = NULL;
    char msg[200];
    gs_status st = gs_image_load_memory(bytes, n, &im, msg, sizeof msg);
    free(bytes);
    gs_image_free(im);
    if (st != GS_OK)
        return fail(e, JOB_ERR_BAD_IMAGE, field, "'%s': %s", field, msg);
    return 0;
}

int job_image_decode(const job_image *img, size_t max, int keep_alpha, gs_image **out)
{
    gs_status (*load)(const void *, size_t, gs_image **, char *, size_t) =
        keep_alpha ? gs_image_load_memory_alpha : gs_image_load_memory;
    char msg[64];
    if (img->stored)
        return img->data && load(img->data, img->bytes, out, msg, sizeof msg) == GS_OK ? 0 : -1;
    size_t n = 0;
    unsigned char *bytes = base64_decode(img->base64, max, &n);
    gs_status st = bytes ? load(bytes, n, out, msg, sizeof msg) : GS_ERR_IO;
    free(bytes);
    return st == GS_OK ? 0 : -1;
}
