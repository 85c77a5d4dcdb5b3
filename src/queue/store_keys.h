/*
 * store_keys - API keys kept in the job store, so that every front end of a
 * fleet (one database) accepts the same keys, managed with `gesso keys`
 * while the front ends run. The store keeps a key's name, limits and a salted
 * hash of it; the key itself exists only in the hands of whoever was given
 * it (store_key_add returns it once).
 *
 * A name owns the jobs its key submits, so names are unique, and a revoked
 * key's name stays taken: a new key under it would see the old key's jobs.
 */
#ifndef GS_STORE_KEYS_H
#define GS_STORE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "queue/store.h"

#define STORE_KEY_PREFIX "gsk_"
#define STORE_KEY_LEN 68      /* "gsk_" and 64 hex digits: 256 random bits */
#define STORE_KEY_SALT_LEN 32 /* hex digits of a key's salt: 128 random bits */
#define STORE_KEY_HASH_LEN 64 /* hex digits of SHA-256 */
#define STORE_KEY_NAME_MAX 63

typedef struct store_key {
    char name[STORE_KEY_NAME_MAX + 1];
    int max_active;  /* queued plus running jobs of the key; 0 = no bound */
    double max_cost; /* megapixel-steps per job; 0 = no bound */
    int admin;
    int64_t created_ms;
    int64_t revoked_ms; /* 0 while the key is valid */
    char salt[STORE_KEY_SALT_LEN + 1];
    char hash[STORE_KEY_HASH_LEN + 1]; /* SHA-256 of salt and key, in hex */
} store_key;

/* Makes a new random key named name (1..63 bytes) with those limits, keeps
   its salted hash, and writes the key to key_out: the only time it is seen.
   GS_ERR_INVALID_ARGUMENT when the name is taken (by a revoked key too). */
GS_NODISCARD gs_status store_key_add(job_store *s, const char *name, int max_active,
                                     double max_cost, int admin, int64_t now_ms,
                                     char key_out[STORE_KEY_LEN + 1], svc_error *err);

/* Every key, revoked ones too, by name. *out (malloc'd, *n rows; NULL when
   none) is freed with free(). */
GS_NODISCARD gs_status store_keys_list(job_store *s, store_key **out, int *n, svc_error *err);

/* Revokes the key named name at now_ms; *revoked = 0 when there is no such
   key, or it was revoked already. */
GS_NODISCARD gs_status store_key_revoke(job_store *s, const char *name, int64_t now_ms,
                                        int *revoked, svc_error *err);

/* The valid (not revoked) key whose hash the n bytes of key match, into
 *out; *found = 0 when none. */
GS_NODISCARD gs_status store_key_lookup(job_store *s, const char *key, size_t n, store_key *out,
                                        int *found, svc_error *err);

/* Whether row is a valid key and the n bytes of key are its key: the one
   check behind store_key_lookup, for callers that keep rows read with
   store_keys_list (a front end's cache). Its time does not depend on where
   the hashes differ. */
int store_key_accepts(const store_key *row, const char *key, size_t n);

#endif
