/*
 * job_params - the parameters of a generation job: validated at the HTTP edge
 * into a normalised JSON text (what the store keeps), and turned back into
 * gs_params by the worker. Every limit a client can hit is named here.
 */
#ifndef GS_JOB_PARAMS_H
#define GS_JOB_PARAMS_H

#include <stddef.h>

#include "gesso.h"

typedef struct job_limits {
    int max_side; /* width/height upper bound (multiples of 8) */
    int max_steps;
    int max_batch;
    size_t max_prompt; /* bytes */
    size_t max_image;  /* decoded init image bytes of base64 input */
} job_limits;

void job_limits_default(job_limits *l);

/* True when s can name a model: letters, digits, '.', '_', '-', not starting
   with '.', so DIR/NAME.safetensors never leaves DIR. */
int job_model_name_ok(const char *s);

/* A validation failure: HTTP status, machine code, human message. */
typedef struct job_error {
    int http;
    char code[48];
    char message[256];
} job_error;

/* Validates a request body against the limits and the models directory;
   on success *normalized is a malloc'd JSON text with every field filled in
   (seed chosen when absent), *model the model name, *mps the megapixelsteps,
   *priority the queue priority. Returns 0, or -1 with e filled. */
int job_params_validate(const char *body, size_t len, const job_limits *lim, const char *models_dir,
                        char **normalized, char *model, size_t model_size, double *mps,
                        int *priority, job_error *e);

/* Parses a normalised params JSON into p; strings (and an init image) are
   allocated into *hold, freed with job_params_release. Returns 0 or -1. */
typedef struct job_params_hold {
    void *json;
    gs_image *init;
} job_params_hold;
int job_params_parse(const char *json, gs_params *p, job_params_hold *hold);
void job_params_release(job_params_hold *hold);

#endif
