/*
 * lora_tags - AUTOMATIC1111's extra-network tags in a prompt.
 *
 * Every match of <(\w+):([^>]+)> is cut out of the positive prompt, whatever
 * its kind (modules/extra_networks.py); nothing else changes, so the spaces
 * and commas around a tag stay. The tags of kind "lora" (and its alias
 * "lyco") are kept: their text splits on ':' into items, k=v items named,
 * the others positional: name, te multiplier (default 1), unet multiplier
 * (default: te); named te= / unet= override (extra_networks_lora.py).
 */
#ifndef GS_LORA_TAGS_H
#define GS_LORA_TAGS_H

#include "common/error.h"

typedef struct lora_tag {
    char name[256];
    float te, unet;
} lora_tag;

/* *stripped: prompt without its tags; *tags: the LoRA ones (*n of them).
   Both gi_free'd by the caller. A LoRA tag without a name, or with a
   multiplier that is not a finite number, is refused naming the tag. */
gs_status lora_tags_parse(const char *prompt, char **stripped, lora_tag **tags, int *n,
                          gi_error *err);

#endif
