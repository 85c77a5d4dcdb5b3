/* openai - what the files of the OpenAI Images API (/v1/images/...) share. */
#ifndef GS_OPENAI_H
#define GS_OPENAI_H

#include <jansson.h>

#include "api/http.h"
#include "api/image_format.h"
#include "job/job_spec.h"
#include "support/json_u64.h"

/* ---- openai.c: the error shape ---- */

/* {"error":{"message","type","param","code"}} with the type OpenAI gives the
   status; param may be NULL; extra_header as for http_reply_bytes. */
enum MHD_Result openai_error(http_request *r, int status, const char *code, const char *param,
                             const char *message, const char *extra_header);

/* ---- openai_request.c: a request into a job_spec ---- */

typedef enum openai_kind { OPENAI_GENERATE = 1, OPENAI_EDIT = 2, OPENAI_VARIATION = 4 } openai_kind;

/* What a request asks of the reply, besides the job. */
typedef struct openai_ask {
    int want_url;        /* response_format "url" (else b64_json) */
    image_format format; /* output_format (PNG when not asked) */
    int compression;     /* output_compression, taken as a quality, 1..100 (WebP 100: lossless) */
    char quality[16];    /* as asked, "auto" when not */
} openai_ask;

/* A refusal, in OpenAI's terms. */
typedef struct openai_refusal {
    int status;
    const char *code;
    char param[64]; /* "" when about the whole request */
    char message[320];
} openai_refusal;

/* Reads the fields of req (an object; form: they came as multipart text, so
   numbers and booleans arrive as strings), the init image (edits and
   variations; NULL for generations) and an edit's mask (NULL for none: the
   whole image is changed) into spec, which must be job_spec_init'ed, and
   checks it as a submit does (job_submit_check). seed: the literal of req's
   "seed" (json_u64.h; NULL for a form). why must start zeroed. 0, or -1 with
   why. */
int openai_read_request(http_request *r, openai_kind kind, json_t *req,
                        const json_int_literal *seed, int form, const unsigned char *image,
                        size_t image_len, const unsigned char *mask, size_t mask_len,
                        job_spec *spec, openai_ask *ask, openai_refusal *why);

/* ---- openai_images.c ---- */
enum MHD_Result openai_generations(http_request *r);
enum MHD_Result openai_edits(http_request *r);
enum MHD_Result openai_variations(http_request *r);

#endif
