/*
 * payload - a pop reply of the AI Horde's v2 API (GenerationPayloadStable)
 * read into a gesso job spec. What gesso cannot run exactly as asked (an
 * unknown sampler, hires fix, LoRAs, post-processing, controlnet,
 * ...) is declined with a reason: the job is then submitted
 * faulted at once rather than run differently from what its user asked for.
 * The pop flags (pop.h) keep such jobs from being sent; this is the guard
 * for the ones that come anyway.
 */
#ifndef GS_HORDE_PAYLOAD_H
#define GS_HORDE_PAYLOAD_H

#include <jansson.h>
#include <stdint.h>

#include "horde/config.h"
#include "job/job_spec.h"

#define HORDE_MAX_IDS 20
#define HORDE_ID_MAX 64

/* A LoRA the payload asks for (ModelPayloadLorasStable); fetched by the
   bridge (lora_cache.h) before the job runs. */
typedef struct horde_job_lora {
    char name[256];  /* a CivitAI name, model id, or version id (is_version) */
    double model;    /* UNet strength */
    double clip;     /* text-encoder strength */
    int is_version;  /* name is a version id */
    char inject[64]; /* inject_trigger: "", "any", "all" or a trained word */
} horde_job_lora;

typedef struct horde_job {
    int n_ids; /* one id per image (n_iter); the first is `id` */
    char ids[HORDE_MAX_IDS][HORDE_ID_MAX];
    char *r2[HORDE_MAX_IDS];    /* owned presigned PUT URLs, NULL: none */
    char model[HORDE_NAME_MAX]; /* the Horde's name */
    int ttl;                    /* seconds before the Horde gives up on it; 0 unknown */
    uint64_t seed;              /* as submitted: the Horde's integer */
    job_spec spec;              /* ready for the child; valid when decline is "" */
    char decline[256];          /* why it cannot be run, "" when it can */
    char note[256];             /* what was left out of it (a LoRA), for the submit; "" */
    horde_job_lora loras[JOB_MAX_LORAS];
    int n_loras;
    int use_nsfw_censor; /* the payload asks for NSFW images to be censored */
} horde_job;

/* The local file stem for a Horde model name: characters outside
   [A-Za-z0-9._-] become '_' ("Anything Diffusion" -> "Anything_Diffusion"). */
void horde_model_stem(const char *name, char *out, size_t size);

/* The Horde's seed rule (seed_to_int): digits are the number, other text
   its UTF-8 bytes read little-endian; either is shifted right 32 bits at a
   time until below 2^32. */
uint64_t horde_seed_from_text(const char *s);

/* Reads a pop reply. Returns 0 when it holds no job (id null: nothing to do),
   1 with *job filled (check job->decline), -1 when the reply is not a pop
   reply at all (errmsg says why; job->n_ids > 0 when an id could still be
   read, so the job can be faulted). models_dir and cfg decide what is
   runnable. Free with horde_job_clear. */
int horde_payload_read(const char *json, const horde_config *cfg, const char *models_dir,
                       horde_job *job, char *errmsg, size_t errmsg_size);

void horde_job_clear(horde_job *job);

/* The payload's "loras" (payload_loras.c): 0 with job->loras filled, or a
   reason in job->decline (LoRAs not allowed, malformed, too many). */
int horde_payload_loras(const json_t *payload, const horde_config *cfg, horde_job *job);

#endif
