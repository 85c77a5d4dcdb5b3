/*
 * client - the bridge's HTTP requests (libcurl): JSON to the Horde's API
 * with the worker's apikey, and the image PUT to the presigned R2 URL (no
 * apikey there: it is a storage URL, not the Horde). Every request has a
 * connect and a total time limit, so a stalled server costs a retry, never a
 * hang.
 */
#ifndef GS_HORDE_CLIENT_H
#define GS_HORDE_CLIENT_H

#include <stddef.h>

typedef struct horde_reply {
    long status; /* HTTP status; 0 when no reply came (connection, time-out) */
    char *body;  /* malloc'd, NUL-terminated (may be empty); NULL when status is 0 */
    size_t len;
    char error[256]; /* curl's reason when status is 0 */
} horde_reply;

/* Once per process, before any thread. */
int horde_client_init(void);

/* POST url with a JSON body and the apikey header. 0 when a reply came (any
   status), -1 when none did. timeout_s bounds the whole exchange. */
int horde_post_json(const char *url, const char *apikey, const char *json, int timeout_s,
                    horde_reply *r);

/* PUT data to url (Content-Type image/webp). As horde_post_json. */
int horde_put(const char *url, const void *data, size_t len, int timeout_s, horde_reply *r);

void horde_reply_free(horde_reply *r);

#endif
