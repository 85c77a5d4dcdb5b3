/*
 * job_image - the input image fields of the job spec (job_image in
 * job_spec.h): read from JSON as inline base64 or as a stored reference,
 * written back, checked at the edge, decoded for the engine. Used by
 * job_spec.c and job_inputs.c; not for use outside src/job.
 */
#ifndef GS_JOB_IMAGE_H
#define GS_JOB_IMAGE_H

#include <jansson.h>

#include "job/job_spec.h"

/* Reads v into img: a string is inline base64 of at most max_text bytes of
   text, an object a stored reference, null leaves img as it is. 0, or -1
   with e naming field. */
int job_image_read(job_image *img, const char *field, const json_t *v, size_t max_text,
                   job_error *e);

/* img as JSON (a new reference): its reference once stored, else its base64
   text; NULL when there is no image. */
json_t *job_image_json(const job_image *img);

void job_image_clear(job_image *img);

/* What a client may send: inline base64 of a file of at most max bytes that
   decodes as an image (a reference is the server's to write). 0 or -1 with e. */
int job_image_check(const job_image *img, const char *field, size_t max, job_error *e);

/* Decodes the image, inline (of at most max bytes) or stored and read back,
   into *out; keep_alpha: an alpha channel is kept (masks, gs_image_load_alpha).
   0, or -1 when it does not decode or was not read back. */
int job_image_decode(const job_image *img, size_t max, int keep_alpha, gs_image **out);

#endif
