/*
 * config - the bridge's settings, read from the reGen worker's own
 * bridgeData.yaml (libyaml), so an operator can point gesso at the file they
 * already have. Keys gesso does not use are warned about once and ignored,
 * never fatal: the reGen file carries many (dynamic models, queue tuning) that
 * mean nothing here.
 */
#ifndef GS_HORDE_CONFIG_H
#define GS_HORDE_CONFIG_H

#include <stddef.h>

#define HORDE_MAX_MODELS 32
#define HORDE_MAX_WORDS 64
#define HORDE_NAME_MAX 256

typedef struct horde_config {
    char api_key[128];
    char dreamer_name[HORDE_NAME_MAX];
    char horde_url[512];
    char cache_home[512];
    char *models[HORDE_MAX_MODELS]; /* models_to_load, the Horde's names (owned) */
    int n_models;
    int max_power;     /* max_pixels = 64 * 64 * 8 * max_power */
    long max_pixels;   /* derived */
    int max_threads;   /* sent as `threads` */
    int queue_size;    /* jobs popped ahead (this increment runs one at a time) */
    int max_batch;     /* n_iter above this is declined */
    int allow_img2img; /* what the operator allows; the pop flags also need gesso's support */
    int allow_painting;
    int allow_lora;
    int allow_post_processing;
    int nsfw;
    int censor_nsfw;
    char *blacklist[HORDE_MAX_WORDS]; /* owned */
    int n_blacklist;
    char *censorlist[HORDE_MAX_WORDS]; /* owned */
    int n_censorlist;
    int require_upfront_kudos;
    /* downloads (model_ref.h, lora_cache.h) */
    char model_reference[1024];  /* stable_diffusion.json: a path or an http(s) URL; "": the Horde's
                                  */
    int download_budget_gb;      /* GB model downloads may add in all; 0: free disk space only */
    int max_lora_cache_size;     /* GB of LoRAs kept in cache_home/loras (reGen's key) */
    char civitai_api_token[256]; /* sent to CivitAI when set */
    char civitai_url[512];       /* CivitAI's base URL (a mirror, or a test server) */
    /* the image safety check: a CLIP ViT-L/14 in Hugging Face's layout; "": none,
       which a worker with censor_nsfw or nsfw false refuses (horde_config_check) */
    char safety_clip_model[1024];
} horde_config;

/* 0, or -1 with errmsg naming the key that is missing for what the config asks. */
int horde_config_check(const horde_config *c, char *errmsg, size_t errmsg_size);

/* Defaults as the reGen worker's (max_power 8, the public Horde's URL, ...). */
void horde_config_defaults(horde_config *c);

/* Reads the YAML file over the defaults. Unknown keys are written once each
   to the log as warnings. 0, or -1 with errmsg saying where and why. */
int horde_config_load(horde_config *c, const char *path, char *errmsg, size_t errmsg_size);

/* The same from text in memory (tests). */
int horde_config_parse(horde_config *c, const char *text, size_t len, char *errmsg,
                       size_t errmsg_size);

void horde_config_free(horde_config *c);

#endif
