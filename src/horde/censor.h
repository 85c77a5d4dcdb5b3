/*
 * censor - what the worker does with the image safety check's verdict, as the
 * reference worker (reGen's safety process and process manager) does: an
 * image judged CSAM is replaced, whatever was asked; an NSFW image is
 * replaced on an SFW worker (nsfw: false) or when the job asked for
 * censoring (use_nsfw_censor, or the worker's censor_nsfw); an NSFW image
 * left as it is only gets an "information"/"nsfw" note. The job's state is
 * "csam" if any image was CSAM, else "censored" if any was replaced.
 */
#ifndef GS_HORDE_CENSOR_H
#define GS_HORDE_CENSOR_H

#include <stddef.h>

#include "horde/proc.h"
#include "horde/submit.h"

typedef enum horde_censor {
    HORDE_CENSOR_NONE,
    HORDE_CENSOR_CSAM,       /* reGen's CensorReason.CSAM */
    HORDE_CENSOR_SFW_WORKER, /* ... SFW_WORKER */
    HORDE_CENSOR_SFW_REQUEST /* ... SFW_REQUEST */
} horde_censor;

/* Which replacement one image takes; NONE: it stays. */
horde_censor horde_censor_decide(int nsfw, int csam, int sfw_worker, int censor_request);

/* A replacement image of w x h: one flat colour per reason (no text), as a
   lossless WebP (malloc'd). 0, or -1 when it cannot be made. */
int horde_censor_image(horde_censor why, int w, int h, unsigned char **webp, size_t *len);

/* A job's images after the check: the state every one of its ids is submitted
   with, and each image's gen_metadata entry (type NULL: none). */
typedef struct horde_checked {
    int checked; /* the child checked the images; 0: submitted as before (ok, no entry) */
    horde_state state;
    int censored;
    const char *type[20], *value[20];
} horde_checked;

/* Applies the verdicts in im: replaced images are swapped in im (w x h
   replacements). 0, or -1 when a replacement cannot be made, or when the
   worker has a check (required) and the images came back unchecked: nothing
   may then be submitted (fault the job). */
int horde_censor_job(horde_images *im, int required, int sfw_worker, int censor_request, int w,
                     int h, horde_checked *out);

#endif
