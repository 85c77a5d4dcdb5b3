/*
 * submit - the SubmitInputStable body for /api/v2/generate/submit: one per
 * image id, with the state, the seed as an integer, and gen_metadata saying
 * why a job faulted or was censored.
 */
#ifndef GS_HORDE_SUBMIT_H
#define GS_HORDE_SUBMIT_H

#include <stdint.h>

typedef enum horde_state { HORDE_OK, HORDE_CENSORED, HORDE_FAULTED, HORDE_CSAM } horde_state;

const char *horde_state_name(horde_state s);

/* The body as JSON text (malloc'd). generation is "R2" when the image went to
   the R2 upload URL, else the image as base64 (or "" for a faulted job);
   why, when not NULL, goes into gen_metadata. NULL when out of memory. */
char *horde_submit_body(const char *id, const char *generation, horde_state state, uint64_t seed,
                        const char *why);

/* The body of an image the safety check judged (censor.h): gen_metadata holds
   one entry {type, value} (e.g. "censorship"/"csam", "information"/"nsfw"), or
   none when type is NULL, after note's "information"/"see_ref" entry when note
   is not NULL; censored is sent as reGen sends it. */
char *horde_submit_body_checked(const char *id, const char *generation, horde_state state,
                                uint64_t seed, int censored, const char *type, const char *value,
                                const char *note);

#endif
