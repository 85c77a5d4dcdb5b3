/*
 * store_keys - the engine-independent half of the keys in the store: making
 * a key, its salt and hash, and checking a presented key against a row. The
 * engines only keep and read rows (store_engine.h).
 *
 * Why a salted SHA-256 and not a slow password hash (bcrypt, scrypt,
 * Argon2): those make each guess costly because a person's password has few
 * bits to guess. A key here is 256 random bits, so an attacker holding a copy
 * of the table still faces 2^256 guesses per key whatever the hash's speed,
 * and a fast hash keeps the per-request check cheap. The random 128-bit salt
 * per key makes each row's hash unique: equal hashes never reveal equal keys,
 * and no table computed in advance (or from another installation) applies.
 */
#include "queue/store_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "hash/sha256.h"
#include "queue/store_engine.h"

/* n random bytes as 2n lowercase hex digits into out; -1 when the kernel's
   generator fails (no key is better than a guessable one). */
static int random_hex(char *out, size_t n)
{
    unsigned char b[32];
    if (n > sizeof b || getrandom(b, n, 0) != (ssize_t)n)
        return -1;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

/* SHA-256 of the salt's hex digits followed by the key. */
static void salted_hash(const char *salt, const char *key, size_t n,
                        char out[STORE_KEY_HASH_LEN + 1])
{
    char buf[STORE_KEY_SALT_LEN + 512];
    if (n > sizeof buf - STORE_KEY_SALT_LEN)
        n = sizeof buf - STORE_KEY_SALT_LEN; /* longer than any key: cannot match anyway */
    memcpy(buf, salt, STORE_KEY_SALT_LEN);
    memcpy(buf + STORE_KEY_SALT_LEN, key, n);
    sha256_hex(buf, STORE_KEY_SALT_LEN + n, out);
}

int store_key_accepts(const store_key *row, const char *key, size_t n)
{
    if (row->revoked_ms != 0 || n == 0 || n > 512 || strlen(row->salt) != STORE_KEY_SALT_LEN)
        return 0;
    char h[STORE_KEY_HASH_LEN + 1];
    salted_hash(row->salt, key, n, h);
    unsigned diff = strlen(row->hash) != STORE_KEY_HASH_LEN;
    for (int i = 0; i < STORE_KEY_HASH_LEN && row->hash[i]; i++)
        diff |= (unsigned char)(h[i] ^ row->hash[i]);
    return diff == 0;
}

gs_status store_key_add(job_store *s, const char *name, int max_active, double max_cost, int admin,
                        int64_t now_ms, char key_out[STORE_KEY_LEN + 1], svc_error *err)
{
    key_out[0] = '\0';
    size_t len = name ? strlen(name) : 0;
    if (len < 1 || len > STORE_KEY_NAME_MAX)
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "a key's name must be 1..%d bytes",
                        STORE_KEY_NAME_MAX);
    if (max_active < 0 || !(max_cost >= 0))
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "a key's limits cannot be negative");
    store_key row = {0};
    snprintf(row.name, sizeof row.name, "%s", name);
    row.max_active = max_active;
    row.max_cost = max_cost;
    row.admin = admin != 0;
    row.created_ms = now_ms;
    char key[STORE_KEY_LEN + 1];
    memcpy(key, STORE_KEY_PREFIX, 4);
    if (random_hex(key + 4, 32) != 0 || random_hex(row.salt, STORE_KEY_SALT_LEN / 2) != 0)
        return svc_fail(err, GS_ERR_IO, "cannot read random bytes for a key");
    salted_hash(row.salt, key, STORE_KEY_LEN, row.hash);
    gs_status st = s->ops->key_add(s, &row, err);
    if (st == GS_OK)
        memcpy(key_out, key, sizeof key);
    memset(key, 0, sizeof key);
    return st;
}

gs_status store_keys_list(job_store *s, store_key **out, int *n, svc_error *err)
{
    *out = NULL;
    *n = 0;
    return s->ops->keys_list(s, out, n, err);
}

gs_status store_key_revoke(job_store *s, const char *name, int64_t now_ms, int *revoked,
                           svc_error *err)
{
    *revoked = 0;
    if (!name || !name[0])
        return GS_OK;
    /* 0 is "not revoked" in a row: a clock that says 0 still revokes */
    return s->ops->key_revoke(s, name, now_ms > 0 ? now_ms : 1, revoked, err);
}

gs_status store_key_lookup(job_store *s, const char *key, size_t n, store_key *out, int *found,
                           svc_error *err)
{
    *found = 0;
    store_key *rows;
    int count;
    gs_status st = store_keys_list(s, &rows, &count, err);
    if (st != GS_OK)
        return st;
    /* every row is hashed, found or not: the time says nothing of which matched */
    for (int i = 0; i < count; i++)
        if (store_key_accepts(&rows[i], key, n) && !*found) {
            *out = rows[i];
            *found = 1;
        }
    free(rows);
    return GS_OK;
}
