/*
 * api_keys_store - a front end's copy of the keys in the store, read again
 * each second, and a tiny cache of the keys that matched lately.
 *
 * Checking a key against the copy hashes it with each row's salt: about
 * 1.4 us a row here, so 1,000 keys would cost 1.4 ms a request. The cache
 * keeps, for the last few keys that matched, a plain SHA-256 of the key (in
 * this process's memory only) beside the row's salted hash; a request whose
 * key is there costs one hash, and is let in only while the copy still holds
 * that row, unrevoked, with the same salted hash.
 */
#include "api/api_keys_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash/sha256.h"
#include "queue/store_keys.h"

#define HITS 16 /* keys remembered: a front end's busy callers */

typedef struct hit {
    char digest[SHA256_HEX_LEN + 1];   /* SHA-256 of the key; "" for an empty slot */
    char name[STORE_KEY_NAME_MAX + 1]; /* the row it matched */
    char hash[STORE_KEY_HASH_LEN + 1]; /* and that row's salted hash then */
} hit;

struct api_keys_store {
    pthread_mutex_t mu;
    store_key *rows; /* the copy, by name */
    int n;
    int64_t read_ms;  /* when the copy was read; 0: never */
    int64_t tried_ms; /* the last attempt to read it */
    int reading;      /* a thread is reading it now */
    hit hits[HITS];
    int next_hit; /* the slot the next match takes */
};

api_keys_store *api_keys_store_create(void)
{
    api_keys_store *c = calloc(1, sizeof *c);
    if (c && pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

void api_keys_store_free(api_keys_store *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c->rows);
    free(c);
}

/* Puts rows read at now_ms in place of the copy (taking them over). */
static void replace(api_keys_store *c, store_key *rows, int n, int64_t now_ms)
{
    pthread_mutex_lock(&c->mu);
    free(c->rows);
    c->rows = rows;
    c->n = n;
    c->read_ms = now_ms;
    pthread_mutex_unlock(&c->mu);
}

gs_status api_keys_store_load(api_keys_store *c, job_store *store, int64_t now_ms, svc_error *err)
{
    store_key *rows;
    int n;
    gs_status st = store_keys_list(store, &rows, &n, err);
    if (st == GS_OK)
        replace(c, rows, n, now_ms);
    c->tried_ms = now_ms;
    return st;
}

void api_keys_store_refresh(api_keys_store *c, job_store *store, int64_t now_ms)
{
    pthread_mutex_lock(&c->mu);
    int due = !c->reading && now_ms - c->tried_ms >= API_KEYS_STORE_TTL_MS;
    if (due) {
        c->reading = 1;
        c->tried_ms = now_ms;
    }
    pthread_mutex_unlock(&c->mu);
    if (!due)
        return;
    /* read without the lock: the other threads match against the old copy */
    store_key *rows = NULL;
    int n = 0;
    svc_error err = {0};
    if (store && store_keys_list(store, &rows, &n, &err) == GS_OK)
        replace(c, rows, n, now_ms);
    pthread_mutex_lock(&c->mu);
    c->reading = 0;
    pthread_mutex_unlock(&c->mu);
}

int api_keys_store_any(api_keys_store *c)
{
    pthread_mutex_lock(&c->mu);
    int any = c->n > 0;
    pthread_mutex_unlock(&c->mu);
    return any;
}

static int file_has_name(const api_keys *file, const char *name)
{
    for (int i = 0; file && i < file->n; i++)
        if (strcmp(file->keys[i].name, name) == 0)
            return 1;
    return 0;
}

/* The row of the copy that a remembered match still stands for, or NULL. */
static const store_key *remembered(const api_keys_store *c, const char *digest)
{
    for (int h = 0; h < HITS; h++) {
        const hit *e = &c->hits[h];
        if (!e->digest[0] || strcmp(e->digest, digest) != 0)
            continue;
        for (int i = 0; i < c->n; i++)
            if (strcmp(c->rows[i].name, e->name) == 0)
                return c->rows[i].revoked_ms == 0 && strcmp(c->rows[i].hash, e->hash) == 0
                           ? &c->rows[i]
                           : NULL;
        return NULL;
    }
    return NULL;
}

/* The row whose salted hash token matches, hashing it with every row's
   salt, found or not: the time says nothing of which matched. */
static const store_key *scan(const api_keys_store *c, const char *token, size_t n)
{
    const store_key *found = NULL;
    for (int i = 0; i < c->n; i++)
        if (store_key_accepts(&c->rows[i], token, n) && !found)
            found = &c->rows[i];
    return found;
}

api_keys_store_result api_keys_store_match(api_keys_store *c, const api_keys *file,
                                           const char *token, size_t n, int64_t now_ms,
                                           api_key *out)
{
    api_keys_store_result res = API_KEYS_STORE_NONE;
    pthread_mutex_lock(&c->mu);
    if (c->read_ms == 0 || now_ms - c->read_ms > API_KEYS_STORE_STALE_MS) {
        res = API_KEYS_STORE_UNAVAILABLE;
    } else {
        char digest[SHA256_HEX_LEN + 1];
        sha256_hex(token, n, digest);
        const store_key *found = remembered(c, digest);
        if (!found && (found = scan(c, token, n))) {
            hit *e = &c->hits[c->next_hit];
            c->next_hit = (c->next_hit + 1) % HITS;
            memcpy(e->digest, digest, sizeof digest);
            snprintf(e->name, sizeof e->name, "%s", found->name);
            snprintf(e->hash, sizeof e->hash, "%s", found->hash);
        }
        if (found && !file_has_name(file, found->name)) {
            memset(out, 0, sizeof *out);
            snprintf(out->name, sizeof out->name, "%s", found->name);
            out->max_active = found->max_active;
            out->max_cost = found->max_cost;
            out->admin = found->admin;
            res = API_KEYS_STORE_FOUND;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return res;
}
