/*
 * http - one HTTP request as the protocol modules see it, the route table
 * they declare, and the replies they send. libmicrohttpd stays behind this
 * header and server.c: a handler reads the request, asks the store, replies.
 *
 * A protocol (the native /v1 API, OpenAI's /v1/images, A1111's /sdapi/v1,
 * the web page) is a table of routes plus its own error shape; router.c
 * lists the protocols. Adding an endpoint is one row and one handler in one module.
 */
#ifndef GS_HTTP_H
#define GS_HTTP_H

#include <jansson.h>
#include <microhttpd.h>
#include <stddef.h>

#include "api/api_keys.h"

struct server;

#define HTTP_MAX_PARAMS 4
#define HTTP_SMALL_BODY (64u << 10) /* the body cap of routes without ROUTE_UPLOAD */

struct route;
struct parked;

/* One request, from its headers to its reply. The handler may be called
   again for the same request after it parked the connection (park.h). */
typedef struct http_request {
    struct server *s;
    struct MHD_Connection *c;
    const char *method, *path;
    const char *body; /* NUL-terminated; "" when none */
    size_t body_len;
    const api_key *key; /* the caller's key; NULL when keys are off (or the route is public) */
    api_key key_copy;   /* a key from the store, which key points at */
    char params[HTTP_MAX_PARAMS][80]; /* the {name} segments of the route, in order */
    int n_params;
    const struct protocol *proto;    /* whose error shape replies use */
    const struct route *rt;          /* the route found on the headers */
    const char *cors_origin;         /* a listed Origin: replies carry CORS headers for it */
    struct parked *park;             /* a waiting handler's parking (freed with the request) */
    int64_t wait_until_ms;           /* a waiting handler's deadline (server_now_ms) */
    void *state;                     /* a waiting handler's own state between its calls */
    void (*state_free)(void *state); /* frees state with the request (NULL: nothing to free) */
} http_request;

typedef enum MHD_Result (*route_handler)(http_request *r);

typedef enum route_auth {
    AUTH_PUBLIC, /* no key needed, even when keys are on (health checks) */
    AUTH_KEY,    /* any valid key when keys are on */
    AUTH_ADMIN   /* an admin key when keys are on */
} route_auth;

enum route_flags {
    ROUTE_UPLOAD = 1 /* takes a body up to --max-body (others: HTTP_SMALL_BODY) */
};

typedef struct route {
    const char *method;  /* "GET", "POST", "DELETE" */
    const char *pattern; /* "/v1/jobs/{id}/images/{k}": {name} matches one path segment */
    route_auth auth;
    route_handler handler;
    unsigned flags; /* route_flags */
} route;

typedef struct protocol {
    const char *name;
    const route *routes;
    size_t n_routes;
    /* An error reply in the protocol's shape; extra_header ("Name: value") may be NULL. */
    enum MHD_Result (*error)(http_request *r, int status, const char *code, const char *message,
                             const char *extra_header);
    const char *prefix;    /* paths under it answer in this shape even when no route matches
                              (NULL: none but its routes') */
    const char *challenge; /* the WWW-Authenticate header of its 401s (NULL: Bearer) */
} protocol;

/* On the headers alone, before a byte of body is read: checks the path, the
   Host and Origin (browser_guard.h), finds the route for r's method and path
   across every protocol and checks the key. Returns 0 with r->rt set, or 1
   with an error (404/405/401/403/400, in the matching protocol's shape) or a
   CORS preflight reply queued and its result in *ret. */
int router_route(http_request *r, enum MHD_Result *ret);
/* Runs the route's handler on the whole request. */
enum MHD_Result router_run(http_request *r);

/* ---- reading ---- */

/* A query-string argument, NULL when absent. */
const char *http_query(const http_request *r, const char *name);
/* A request header, NULL when absent. */
const char *http_header(const http_request *r, const char *name);

/* Frees the request's body and gives its bytes back to the server's budget
   for bodies (--max-body-memory): for a handler that waits long after it
   has read the body (A1111's txt2img, img2img). r->body is "" after. */
void http_drop_body(http_request *r);

/* Headers every reply carries (nosniff, CORS for a listed origin). */
void http_add_common_headers(const http_request *r, struct MHD_Response *resp);

/* ---- replying ---- */

/* mode as for MHD_create_response_from_buffer; extra_header may be NULL, or
   hold several "Name: value" lines separated by '\n'. */
enum MHD_Result http_reply_bytes(http_request *r, int status, const char *type, void *data,
                                 size_t n, enum MHD_ResponseMemoryMode mode,
                                 const char *extra_header);
/* How replies write JSON: compact, reals to 6 significant digits. */
#define HTTP_JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6))

/* Takes the reference to j. */
enum MHD_Result http_reply_json(http_request *r, int status, json_t *j, const char *extra_header);
/* The same for JSON already written (malloc'd; taken, and NULL is a failure):
   for a reply that holds an integer jansson cannot (json_u64.h). */
enum MHD_Result http_reply_json_text(http_request *r, int status, char *text,
                                     const char *extra_header);
/* In the request's protocol's shape. */
enum MHD_Result http_error(http_request *r, int status, const char *code, const char *message);
enum MHD_Result http_error_with(http_request *r, int status, const char *code, const char *message,
                                const char *extra_header);

#endif
