/*
 * job_loras - the "loras" field of the job spec (job_loras in job_spec.h):
 * [{"name": N, "weight": W}] or [{"name": N, "te": T, "unet": U}], names
 * only (the files are the server's LoRA folder's NAME.safetensors), read,
 * written back, checked against the folder and handed to the engine. Used by
 * job_spec.c and by whoever validates and runs jobs; prompt tags
 * (<lora:NAME:W>) resolve in the same folder.
 */
#ifndef GS_JOB_LORAS_H
#define GS_JOB_LORAS_H

#include <jansson.h>

#include "job/job_spec.h"

#define JOB_LORA_WEIGHT_MAX 10.0 /* |weight|: A1111's UI slider goes to 2; past 10 is a typo */

/* Reads v (an array, or null for none) into ls; 0, or -1 with e naming field. */
int job_loras_read(job_loras *ls, const char *field, const json_t *v, job_error *e);
/* ls as JSON [{name, te, unet}] (a new reference), NULL when empty. */
json_t *job_loras_json(const job_loras *ls);
/* Every name is a file lora_dir/NAME.safetensors; with lora_dir NULL (a server
   without a LoRA folder) any LoRA is refused. 0 or -1 with e. */
int job_loras_check(const job_loras *ls, const char *lora_dir, job_error *e);

/* gs_params' LoRA fields for ls and lora_dir (NULL: none served); out holds
   the list and its paths, and must outlive p's use. */
typedef struct job_lora_params {
    gs_lora list[JOB_MAX_LORAS];
    char path[JOB_MAX_LORAS][4096];
} job_lora_params;
void job_loras_params(const job_loras *ls, const char *lora_dir, job_lora_params *out,
                      gs_params *p);

#endif
