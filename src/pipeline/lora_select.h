/*
 * lora_select - a generation's LoRA set (gs_params' list + the prompt's tags)
 * resolved, hashed and folded into the model, kept there for the next
 * generation that asks for the same set (same files by identity, same
 * multipliers).
 */
#ifndef GS_LORA_SELECT_H
#define GS_LORA_SELECT_H

#include "pipeline/engine.h"

typedef struct lora_cache lora_cache;

typedef struct lora_request {
    char *prompt;   /* the positive prompt without its tags: what is encoded */
    char *hashes;   /* "name: hash, ..." for the infotext's "Lora hashes", or NULL */
    char *warnings; /* modules left out (lora_strict = 0), or NULL */
    double apply_s; /* time spent folding (0 when the set was already in place) */
} lora_request;

/* Resolves p's LoRAs and makes them the set folded into m's weights (m's
   networks loaded). On failure the weights are as they were. */
gs_status lora_select(gs_model *m, const gs_params *p, lora_request *out, gi_error *err);
void lora_request_free(lora_request *r);

/* The model's networks are being loaded again (as base): whatever set was
   applied is forgotten, so the next lora_select folds it in anew. */
void lora_select_forget(gs_model *m);
void lora_cache_free(lora_cache *c);

#endif
