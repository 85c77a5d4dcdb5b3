/*
 * model_ref - models_to_load resolved against the Horde's model reference
 * (AI-Horde-image-model-reference's stable_diffusion.json): a model already on
 * disk is served as it is, with no reference and no network; a missing one is
 * looked up and downloaded (download.h) before the bridge offers it. What gesso
 * cannot run is skipped with a warning: a baseline other than Stable Diffusion
 * 1, 2 or XL, and a checkpoint the reference has only as a pickle (.ckpt),
 * which gesso refuses to load. A model whose download fails is not offered;
 * the others still are.
 */
#ifndef GS_HORDE_MODEL_REF_H
#define GS_HORDE_MODEL_REF_H

#include <jansson.h>
#include <stddef.h>

/* Where the Horde's reference is published; the default of model_reference. */
#define HORDE_MODEL_REFERENCE_URL                                                                  \
    "https://raw.githubusercontent.com/Haidra-Org/AI-Horde-image-model-reference/main/"            \
    "stable_diffusion.json"

/* One model's download, as the reference gives it. */
typedef struct horde_ref_entry {
    char family[8];      /* gesso's: "sd1", "sd2", "sdxl" */
    char file_name[256]; /* the reference's (the file is stored under gesso's own name) */
    char url[2048];
    char sha256[65]; /* "" when the reference has none */
    long long size;  /* size_on_disk_bytes; 0 unknown */
} horde_ref_entry;

/* Reads a reference: a file path, or an http(s) URL downloaded into
   cache_dir/stable_diffusion.json first (a copy kept there from an earlier
   run is used when the download fails). NULL with err on failure. */
json_t *horde_model_ref_load(const char *where, const char *cache_dir, char *err, size_t err_size);

/* name's download in ref. 0, or -1 with why (not in the reference, a family
   gesso cannot run, only a pickle, no download URL). */
int horde_model_ref_find(const json_t *ref, const char *name, horde_ref_entry *e, char *why,
                         size_t why_size);

typedef struct horde_models_options {
    const char *models_dir; /* DIR/STEM.safetensors (payload.h's horde_model_stem) */
    const char *reference;  /* path or URL; NULL or "": HORDE_MODEL_REFERENCE_URL */
    const char *cache_dir;  /* where a fetched reference is kept; NULL: models_dir */
    long long budget;       /* bytes the downloads may add in all; 0: no limit but the disk's */
    long long reserve;      /* bytes of free disk space never used; 0: 1 GiB */
    int tries, backoff_ms;  /* per download (download.h); 0: its defaults */
    const volatile int *stop;
} horde_models_options;

/* The models of names[n] that can be served, downloading the missing ones.
   served[] receives pointers into names, in order; returns their count. */
int horde_models_resolve(const char *const *names, int n, const horde_models_options *o,
                         const char **served);

#endif
