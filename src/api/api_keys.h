/*
 * api_keys - the optional bearer keys of `gesso serve`, read from a file:
 *
 *   # KEY                               NAME    [max_active=N] [max_cost=MPS] [admin]
 *   3f9c2a7d51e04b8c9e6f1a2b3c4d5e6f    alice   max_active=4 max_cost=100
 *   9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a    ops     admin
 *
 * A key is 16..256 printable characters without spaces; NAME (1..63 of
 * [A-Za-z0-9._-]) becomes the owner of the jobs it submits. max_active bounds
 * the key's queued plus running jobs (0 = no bound); max_cost bounds the cost
 * estimate of each job it submits, in megapixel-steps (job_spec_cost; a
 * decimal, 0 = no bound; the server's --max-job-cost applies too, the lower
 * wins); admin keys see and cancel every job and read /metrics.
 */
#ifndef GS_API_KEYS_H
#define GS_API_KEYS_H

#include <stddef.h>

#define API_KEY_MAX 256 /* the longest key, in bytes */

typedef struct api_key {
    char *key;
    size_t key_len;
    char name[64];
    int max_active;
    double max_cost; /* megapixel-steps per job; 0 = no bound */
    int admin;
} api_key;

typedef struct api_keys {
    api_key *keys;
    int n;
} api_keys;

/* Reads the file; returns 0, or -1 with msg saying which line is wrong. */
int api_keys_load(const char *path, api_keys *out, char *msg, size_t msg_size);
void api_keys_free(api_keys *k);

/* The key matching an "Authorization" header value ("Bearer KEY", or HTTP
   Basic with the key as the password and any user name, as A1111's clients
   send --api-auth credentials), or NULL.
   Compares in time independent of where keys differ. */
const api_key *api_keys_match(const api_keys *k, const char *authorization);

/* The key that an "Authorization" value carries ("Bearer KEY", or the
   password of "Basic base64(USER:KEY)"; the user name is not checked) into
   buf, not terminated; its length, or -1 when there is none or it does not
   fit in size bytes. */
long api_keys_token(const char *authorization, char *buf, size_t size);

/* Whether s is a good key NAME: 1..63 of [A-Za-z0-9._-]. */
int api_key_name_ok(const char *s);

#endif
