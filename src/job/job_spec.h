/*
 * job_spec - one generation job's settings, the one place they are parsed,
 * checked and given defaults. Every front door (the native /v1 API, the
 * compatibility APIs, the Horde bridge) builds a job_spec; the store keeps its
 * normalised JSON; the worker turns that JSON back into gs_params.
 *
 * Defaults come from gs_params_init, so the engine, the CLI and the service
 * agree. Errors name the field and a reason, never an HTTP status: each
 * protocol maps reasons to its own statuses and error shapes.
 */
#ifndef GS_JOB_SPEC_H
#define GS_JOB_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "gesso.h"

#define JOB_MODEL_MAX 200 /* bytes of a model name */

/* Bounds a client's request must stay within; the operator sets them. */
typedef struct job_limits {
    int max_side; /* width/height upper bound (multiples of 8) */
    int max_steps;
    int max_batch;
    size_t max_prompt;     /* bytes */
    size_t max_image;      /* decoded init image bytes of base64 input */
    int max_prompt_chunks; /* 75-token chunks of the prompt, and of the negative prompt */
    double max_cost;       /* job_spec_cost bound, megapixel-steps; 0 = none */
    const char *lora_dir;  /* the server's LoRA folder ("loras" and <lora:..> tags resolve
                              there as NAME.safetensors); NULL: none, "loras" refused */
} job_limits;

void job_limits_default(job_limits *l);

/* Why a spec was refused. The code names are part of the native API. */
typedef enum job_reason {
    JOB_ERR_INVALID_JSON,      /* not JSON, or not an object */
    JOB_ERR_UNKNOWN_FIELD,     /* a field the spec does not have */
    JOB_ERR_MISSING_FIELD,     /* a required field is absent */
    JOB_ERR_WRONG_TYPE,        /* e.g. a string where a number belongs */
    JOB_ERR_OUT_OF_RANGE,      /* a number outside its bounds */
    JOB_ERR_TOO_LONG,          /* a string over its limit */
    JOB_ERR_BAD_SIZE,          /* width/height not multiples of 8 */
    JOB_ERR_UNKNOWN_SAMPLER,   /* not in gs_sampler_names() */
    JOB_ERR_UNKNOWN_SCHEDULER, /* not in gs_scheduler_names() */
    JOB_ERR_UNKNOWN_MODEL,     /* no such checkpoint */
    JOB_ERR_BAD_IMAGE,         /* an input image that is not base64 or does not decode */
    JOB_ERR_BAD_PROMPT,        /* a prompt the engine refuses: "(word:1.2.3)" */
    JOB_ERR_TOO_COSTLY,        /* the cost estimate is over the operator's or the key's limit */
    JOB_ERR_NO_MEMORY,
    JOB_ERR_UNKNOWN_LORA /* a LoRA name not in the server's --lora-dir (or no folder) */
} job_reason;

typedef struct job_error {
    job_reason reason;
    char field[32];    /* the offending field, "" when the error is about the whole spec */
    char message[256]; /* for people: says what is wrong and what is allowed */
} job_error;

/* The machine-readable name of a reason ("out_of_range", ...). */
const char *job_reason_code(job_reason r);

/* An input image of a job (the init image; a mask later). A client sends it
   inline, as base64; before the job is queued it moves to the blob store as
   one of the job's input blobs (job_inputs.h), and the stored spec keeps only
   a reference to it, so that reading and listing jobs never reads images. In
   JSON the reference is {"blob": INDEX, "bytes": N, "sha256": "HEX"}. All
   zero: no image. */
typedef struct job_image {
    char *base64;        /* owned: inline, as sent (a data: URL prefix allowed), or NULL */
    int stored;          /* 1: the file is the job's input blob `blob`, described below */
    int blob;            /* its index among the job's input blobs */
    size_t bytes;        /* the file's size */
    char sha256[65];     /* the file's SHA-256, lowercase hex */
    unsigned char *data; /* owned: the stored file read back (job_inputs_load), or NULL */
} job_image;

/* A LoRA of the job (job_loras.h): a name, resolved in the server's LoRA
   folder as NAME.safetensors, and its text-encoder and UNet weights. */
#define JOB_MAX_LORAS 8
typedef struct job_lora {
    char name[JOB_MODEL_MAX + 1];
    double te, unet;
} job_lora;

typedef struct job_loras {
    job_lora l[JOB_MAX_LORAS];
    int n;
} job_loras;

typedef struct job_spec {
    char model[JOB_MODEL_MAX + 1];
    char *prompt;          /* owned; never NULL after job_spec_init */
    char *negative_prompt; /* owned; never NULL after job_spec_init */
    char sampler[32];
    char scheduler[32]; /* "default": the sampler's own */
    int width, height, steps, batch_size, clip_skip;
    double cfg_scale, strength;
    double eta;     /* 0..10 as gs_params.eta; NaN when not given (the sampler's default) */
    int seed_given; /* 0: job_spec_normalise draws one (no seed, or -1) */
    uint64_t seed;  /* 0..2^64-1, exactly as written (json_u64.h) */
    job_image init_image;
    int priority;       /* queue priority, -100..100 */
    int preview_every;  /* 0 = no previews */
    int vae_tile;       /* as gs_params.vae_tile */
    char prediction[8]; /* "", "auto", "eps" or "v" ("": auto) */
    /* SDXL size conditioning, as gs_params (0: the image size / no crop) */
    int original_width, original_height, crop_top, crop_left, target_width, target_height;
    char empty_negative[8]; /* "", "zero" or "encode" ("": zero) */
    job_loras loras;        /* "loras": [{name, weight} or {name, te, unet}] */
    /* Inpainting (as gs_params; the four settings are stored only with a mask) */
    job_image mask;        /* white = repaint; needs init_image */
    int mask_blur;         /* 0..64, default 4 */
    char inpaint_fill[16]; /* "original" (default), "fill", "latent_noise", "latent_nothing" */
    int inpaint_full_res;  /* 0/1 */
    int inpaint_padding;   /* 0..256, default 32 */
    int mask_invert;       /* 0/1 */
    /* the hires fix, as gs_params (all 0: off); hires_denoise 0 = the engine's default
       (0.7), hires_upscaler "" = "latent" (short or A1111 names) */
    double hires_scale, hires_denoise;
    int hires_width, hires_height, hires_steps;
    char hires_upscaler[32];
} job_spec;

/* Defaults from gs_params_init; free with job_spec_clear. Returns -1 when out of memory. */
int job_spec_init(job_spec *s);
void job_spec_clear(job_spec *s);

/* Reads a native JSON object (the /v1 request or the stored text) into s,
   which must be job_spec_init'ed: fields present replace the defaults.
   Unknown fields, wrong types and out-of-range values fail with e filled;
   limits may be NULL (no operator limits: the hard ranges only). */
int job_spec_from_json(job_spec *s, const char *json, size_t len, const job_limits *lim,
                       job_error *e);

/* Checks what a single field cannot tell: size multiples, sampler and
   scheduler names, that the model exists in models_dir (models_dir NULL: not
   checked), that an init image decodes within the limits. 0 or -1 with e. */
int job_spec_validate(const job_spec *s, const job_limits *lim, const char *models_dir,
                      job_error *e);

/* Checks that each prompt makes at most lim->max_prompt_chunks chunks (too
   long otherwise) and that the engine can parse it (bad prompt otherwise),
   counted by tok with the engine's own rules. lim NULL: only the parse. */
int job_spec_check_prompts(const job_spec *s, const job_limits *lim, const gs_tokenizer *tok,
                           job_error *e);

/* Fills in what the spec leaves to chance (the seed), so the stored job
   reproduces exactly. */
void job_spec_normalise(job_spec *s);

/* The normalised JSON text the store keeps (every field), malloc'd; NULL when out of memory. */
char *job_spec_to_json(const job_spec *s);

/* The mask, decoded, and the inpainting settings into p (after
   job_spec_to_params); *mask NULL without one. -1 when it does not decode. */
int job_spec_mask_to_params(const job_spec *s, gs_params *p, gs_image **mask);

/* The spec's i-th input image field (0 the init image, 1 the mask), NULL past the last:
   the index its file has among the job's input blobs. */
job_image *job_spec_image(job_spec *s, int i);

/* Work of the job in megapixel-steps (width * height * steps * batch / 1e6,
   plus the hires pass's at its size). */
double job_spec_megapixelsteps(const job_spec *s);

/* What the job costs to run, in megapixel-steps of UNet work: width * height
   * batch / 1e6 * the steps it runs (img2img: A1111's floor(min(strength,
   0.999) * steps) + 1) * its UNet passes (2 with CFG, cfg_scale != 1), plus
   the hires fix's second pass: its size * batch / 1e6 * its steps * passes. */
double job_spec_cost(const job_spec *s);

/* Refuses (too costly) a job whose cost is over max_cost (0: no limit);
   whose names the limit in the message ("the server's"). */
int job_spec_check_cost(const job_spec *s, double max_cost, const char *whose, job_error *e);

/* True when name can name a model: letters, digits, '.', '_', '-', not
   starting with '.', so DIR/NAME.safetensors never leaves DIR. */
int job_model_name_ok(const char *name);

/* What gs_generate needs, borrowed from s plus an init image decoded into
   *init (free with gs_image_free after the run). Returns 0, or -1 when the
   init image does not decode or, stored, was not read back
   (job_inputs_load). p lives as long as s and *init. */
int job_spec_to_params(const job_spec *s, gs_params *p, gs_image **init);

#endif
