/*
 * pop - the PopInputStable body the bridge sends to /api/v2/generate/pop:
 * who it is (name, bridge_agent), what it serves (models, max_pixels) and
 * which kinds of job it takes. Each allow_* flag is the operator's setting
 * AND what gesso can really do today, so the Horde never sends a job gesso
 * would have to fail.
 */
#ifndef GS_HORDE_POP_H
#define GS_HORDE_POP_H

#include "horde/config.h"

#ifndef GESSO_PROJECT_URL /* set by CMake (-DGESSO_PROJECT_URL=...) */
#define GESSO_PROJECT_URL "https://github.com/gesso-engine/gesso"
#endif
#define HORDE_PROJECT_URL GESSO_PROJECT_URL
#define HORDE_BRIDGE_AGENT "gesso:" GESSO_VERSION ":" HORDE_PROJECT_URL

/* What this build can run when the Horde asks (the pop flags' upper bound). */
#define HORDE_CAN_IMG2IMG 1
#define HORDE_CAN_PAINTING 0        /* inpainting: the engine has it, the bridge maps it later */
#define HORDE_CAN_LORA 1            /* fetched on demand from CivitAI (lora_cache.h) */
#define HORDE_CAN_POST_PROCESSING 0 /* no upscalers / face fixers */

/* The pop body as JSON text (malloc'd), for the models found on disk
   (served[n_served], the Horde's names). NULL when out of memory. */
char *horde_pop_body(const horde_config *c, const char *const *served, int n_served);

#endif
