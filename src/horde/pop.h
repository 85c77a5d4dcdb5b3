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
/* inpainting / outpainting: any checkpoint (A1111's masked img2img) and 9-channel
   inpainting ones. As the reGen worker, the flag is the operator's allow_painting:
   the Horde itself sends painting jobs only to a worker that serves an inpainting
   model (AI-Horde's can_generate: model_reference.has_inpainting_models). */
#define HORDE_CAN_PAINTING 1
#define HORDE_CAN_LORA 1            /* fetched on demand from CivitAI (lora_cache.h) */
#define HORDE_CAN_POST_PROCESSING 0 /* no upscalers / face fixers */

/* The pop body as JSON text (malloc'd), for the models found on disk
   (served[n_served], the Horde's names), with the max_pixels the pacing
   allows (pace.h; at most the config's) and limit_max_steps (set while the
   pacing holds max_pixels below the config's: a slow worker also asks the
   Horde for no more steps than the model's usual). NULL when out of memory. */
char *horde_pop_body(const horde_config *c, const char *const *served, int n_served,
                     long max_pixels, int limit_max_steps);

#endif
