/*
 * child - the generation process of `gesso horde` (`gesso horde --child`):
 * reads job specs (the normalised JSON of job_spec) from stdin, runs them on
 * its own engine with its models kept loaded, and answers on stdout with
 * {"ok":true,"seeds":[...]} and one lossless WebP per image, or
 * {"ok":false,"error":"..."}. A crash here costs the bridge one job, never
 * itself. Ends at end of input; dies with the bridge (parent-death signal).
 */
#ifndef GS_HORDE_CHILD_H
#define GS_HORDE_CHILD_H

#include <stddef.h>

#include "gesso.h"

#define HORDE_CHILD_MAX_IMAGES 64 /* per job: more than the Horde's n_iter (20) allows */

typedef struct horde_child_options {
    const char *models_dir;
    const char *lora_dir;    /* where the spec's LoRAs are NAME.safetensors; NULL: none */
    const char *safety_clip; /* the image safety check's CLIP model (gs_safety); NULL: none */
    int threads;
    gs_precision precision;
} horde_child_options;

/* Encodes n images as lossless WebP into webp[i] (len[i] bytes; the caller
   frees them). 0, or -1 when one fails, with every buffer already encoded
   freed and all of webp[] NULL. */
int horde_encode_webps(const gs_image *const *im, int n, unsigned char **webp, size_t *len);

/* The child's main loop on fds 0 and 1; returns the exit code. */
int horde_child_run(const horde_child_options *o);

#endif
