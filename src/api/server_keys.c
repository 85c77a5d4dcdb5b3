/*
 * server_keys - which keys `gesso serve` takes: those of --api-keys FILE and
 * those in the job store (api_keys_store.h says how they combine). Keys are
 * on while either has any, so a server started without keys asks for them
 * within a second or two of the first `gesso keys add`.
 */
#include <stdio.h>

#include "api/api_keys_store.h"
#include "api/server_private.h"

/* The store's copy, read again when due on the calling thread's connection. */
static api_keys_store *fresh_copy(server *s)
{
    if (!s->store_keys)
        return NULL;
    int64_t now = server_now_ms();
    svc_error err = {0};
    api_keys_store_refresh(s->store_keys, server_store(s, &err), now);
    return s->store_keys;
}

int server_keys_on(server *s)
{
    if (s->keys.n > 0)
        return 1;
    api_keys_store *c = fresh_copy(s);
    return c && api_keys_store_any(c);
}

const api_key *server_key_match(server *s, const char *authorization, api_key *slot,
                                int *unavailable)
{
    *unavailable = 0;
    if (!authorization)
        return NULL;
    const api_key *k = api_keys_match(&s->keys, authorization);
    api_keys_store *c = k ? NULL : fresh_copy(s);
    if (k || !c)
        return k;
    char tok[API_KEY_MAX + 1];
    long n = api_keys_token(authorization, tok, sizeof tok);
    if (n <= 0)
        return NULL;
    switch (api_keys_store_match(c, &s->keys, tok, (size_t)n, server_now_ms(), slot)) {
    case API_KEYS_STORE_FOUND: return slot;
    case API_KEYS_STORE_UNAVAILABLE: *unavailable = 1; return NULL;
    default: return NULL;
    }
}
