/* lora_arg - gesso generate's --lora FILE[:W | :TE:UNET] and --lora-strict on|off. */
#ifndef GS_CLI_LORA_ARG_H
#define GS_CLI_LORA_ARG_H

#include "gesso.h"

#define CLI_MAX_LORAS 16

/* Parses s, the index-th --lora (out of CLI_MAX_LORAS), into *out (its path
   a copy that lives as long as the process); 0, or -1 after printing why. A
   file name that itself ends in ":number" needs its weight spelled out. */
int arg_lora(const char *s, int index, gs_lora *out);
/* "on" (1) or "off" (0) */
int arg_on_off(const char *name, const char *s, int *out);

#endif
