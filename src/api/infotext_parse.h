/*
 * infotext_parse - an A1111 infotext ("prompt\nNegative prompt: ...\nSteps:
 * 20, Sampler: ...") read back into its fields, as A1111's PNG Info does.
 */
#ifndef GS_INFOTEXT_PARSE_H
#define GS_INFOTEXT_PARSE_H

#include <jansson.h>

/* A new object: "Prompt", "Negative prompt" and each setting of the last
   line ("Size" split into "Size-1" and "Size-2"), all as strings. */
json_t *infotext_parse(const char *text);

#endif
