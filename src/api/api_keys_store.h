/*
 * api_keys_store - the API keys of `gesso serve` that live in the job store
 * (queue/store_keys.h), beside those of --api-keys FILE. A front end keeps a
 * copy of the store's key rows (names, limits, salted hashes) and reads it
 * again once it is a second old, so a key added or revoked with `gesso keys`
 * holds on every front end within a second or two, with no restart and no
 * query per request.
 *
 * Precedence: a key of the file is matched first; a store key whose name a
 * file key has is refused (one name, one owner of jobs, as in the file).
 * While the store cannot be read, the last copy serves for
 * API_KEYS_STORE_STALE_MS, then store keys are refused as unavailable: a
 * revoked key never works for long because the database is away.
 */
#ifndef GS_API_KEYS_STORE_H
#define GS_API_KEYS_STORE_H

#include <stdint.h>

#include "api/api_keys.h"
#include "queue/store.h"

#define API_KEYS_STORE_TTL_MS 1000    /* the copy's age at which it is read again */
#define API_KEYS_STORE_STALE_MS 10000 /* the oldest copy used while reading fails */

typedef struct api_keys_store api_keys_store;

api_keys_store *api_keys_store_create(void); /* NULL without memory */
void api_keys_store_free(api_keys_store *c); /* c may be NULL */

/* Reads the store's keys now: at a server's start, so that a store whose
   keys cannot be read stops it there. */
GS_NODISCARD gs_status api_keys_store_load(api_keys_store *c, job_store *store, int64_t now_ms,
                                           svc_error *err);

/* Reads them again when the copy is API_KEYS_STORE_TTL_MS old (one thread
   at a time; the others go on with the copy meanwhile). store NULL: it
   could not be opened, which counts as a failed read. */
void api_keys_store_refresh(api_keys_store *c, job_store *store, int64_t now_ms);

/* Whether the store holds any key, revoked ones too: revoking the last key
   locks the server rather than opening it to everyone. */
int api_keys_store_any(api_keys_store *c);

typedef enum api_keys_store_result {
    API_KEYS_STORE_NONE,       /* no valid store key is this one */
    API_KEYS_STORE_FOUND,      /* *out is the key's */
    API_KEYS_STORE_UNAVAILABLE /* the copy is too old to say */
} api_keys_store_result;

/* The store key whose hash the n bytes of token match, as an api_key in
   *out (its key field NULL: the key itself is not kept), unless a key of
   file (may be NULL) has its name. */
api_keys_store_result api_keys_store_match(api_keys_store *c, const api_keys *file,
                                           const char *token, size_t n, int64_t now_ms,
                                           api_key *out);

#endif
