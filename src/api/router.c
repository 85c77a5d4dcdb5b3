/*
 * router - the index of every HTTP endpoint: the protocols' route tables,
 * searched in order. A path that matches no route is a 404, one whose route
 * wants another method a 405 naming the methods it takes; keys are checked
 * before either is revealed to a caller without one. All of it runs on the
 * headers, so a refused request costs no body.
 */
#include <stdio.h>
#include <string.h>

#include "api/browser_guard.h"
#include "api/http.h"
#include "api/protocols.h"
#include "api/server_private.h"

static const protocol *const protocols[] = {
    &native_protocol,
    &web_protocol,
    &openai_protocol,
    &a1111_protocol,
};
#define N_PROTOCOLS (sizeof protocols / sizeof protocols[0])

/* Matches path against pattern, capturing {name} segments into r->params. */
static int match(const char *pattern, const char *path, http_request *r)
{
    int n = 0;
    while (*pattern && *path) {
        if (*pattern == '{') {
            const char *close = strchr(pattern, '}');
            size_t len = strcspn(path, "/");
            if (!close || len == 0 || len >= sizeof r->params[0] || n == HTTP_MAX_PARAMS)
                return 0;
            memcpy(r->params[n], path, len);
            r->params[n++][len] = '\0';
            pattern = close + 1;
            path += len;
        } else if (*pattern++ != *path++) {
            return 0;
        }
    }
    if (*pattern || *path)
        return 0;
    r->n_params = n;
    return 1;
}

/* 0 when the route may run for this caller; else the error is queued in *ret. */
static int authorize(http_request *r, route_auth auth, enum MHD_Result *ret)
{
    server *s = r->s;
    if (auth == AUTH_PUBLIC || !server_keys_on(s))
        return 0;
    const char *header = http_header(r, "Authorization");
    int unavailable = 0;
    r->key = server_key_match(s, header, &r->key_copy, &unavailable);
    if (!r->key && unavailable) {
        *ret =
            http_error_with(r, 503, "keys_unavailable",
                            "the job store's keys cannot be read now; try again", "Retry-After: 5");
        return -1;
    }
    if (!r->key) {
        *ret = http_error_with(
            r, 401, header ? "invalid_api_key" : "missing_api_key",
            header ? "the API key is not valid" : "send an API key: Authorization: Bearer KEY",
            r->proto->challenge ? r->proto->challenge : "WWW-Authenticate: Bearer realm=\"gesso\"");
        return -1;
    }
    if (auth == AUTH_ADMIN && !r->key->admin) {
        *ret = http_error(r, 403, "forbidden", "this endpoint needs an admin key");
        return -1;
    }
    return 0;
}

/* While no keys are set, a browser page of another site must not reach the
   server (browser_guard.h); 0 when r may go on, else the reply is queued. */
static int check_browser(http_request *r, enum MHD_Result *ret)
{
    server *s = r->s;
    const char *origin = http_header(r, "Origin"), *host = http_header(r, "Host");
    if (browser_origin_listed(&s->browser, origin))
        r->cors_origin = origin;
    if (server_keys_on(s))
        return 0;
    if (!browser_host_allowed(&s->browser, host)) {
        *ret = http_error(r, 403, "host_not_allowed",
                          "the Host header names a host this server does not answer for; "
                          "start it with --allowed-hosts NAME to allow it");
        return -1;
    }
    if (!browser_origin_allowed(&s->browser, origin, host)) {
        *ret = http_error(r, 403, "origin_not_allowed",
                          "requests from other web sites are refused; start the server with "
                          "--cors-origin ORIGIN (or API keys) to allow them");
        return -1;
    }
    return 0;
}

/* The answer to a CORS preflight: what a listed origin may send. */
static enum MHD_Result preflight(http_request *r)
{
    if (!r->cors_origin)
        return http_error(r, 403, "origin_not_allowed",
                          "cross-origin requests need the origin on --cors-origin");
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    http_add_common_headers(r, resp);
    MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, POST, DELETE");
    MHD_add_response_header(resp, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
    enum MHD_Result ret = MHD_queue_response(r->c, 204, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The protocol with the longest prefix of r's path: its shape answers
   errors on paths that no route has. */
static const protocol *owner_of(const http_request *r)
{
    const protocol *best = protocols[0];
    size_t best_len = 0;
    for (size_t p = 0; p < N_PROTOCOLS; p++) {
        const char *prefix = protocols[p]->prefix;
        size_t n = prefix ? strlen(prefix) : 0;
        if (n > best_len && strncmp(r->path, prefix, n) == 0) {
            best = protocols[p];
            best_len = n;
        }
    }
    return best;
}

int router_route(http_request *r, enum MHD_Result *ret)
{
    r->proto = owner_of(r);
    if (strstr(r->path, "%00")) { /* left undecoded on purpose (server.c's unescape) */
        *ret = http_error(r, 400, "invalid_path", "the path holds an encoded NUL (%00)");
        return 1;
    }
    if (check_browser(r, ret) != 0)
        return 1;
    if (strcmp(r->method, "OPTIONS") == 0) {
        *ret = preflight(r);
        return 1;
    }
    char allowed[64] = "";
    route_auth path_auth = AUTH_PUBLIC;
    const protocol *path_proto = NULL;
    for (size_t p = 0; p < N_PROTOCOLS; p++) {
        const protocol *proto = protocols[p];
        for (size_t i = 0; i < proto->n_routes; i++) {
            const route *rt = &proto->routes[i];
            if (!match(rt->pattern, r->path, r))
                continue;
            /* HEAD is GET without the body (libmicrohttpd leaves it out) */
            int head = strcmp(r->method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0;
            if (strcmp(rt->method, r->method) != 0 && !head) {
                size_t n = strlen(allowed);
                snprintf(allowed + n, sizeof allowed - n, "%s%s", n ? " or " : "", rt->method);
                path_auth = rt->auth > path_auth ? rt->auth : path_auth;
                path_proto = proto;
                continue;
            }
            r->proto = proto;
            if (authorize(r, rt->auth, ret) != 0)
                return 1;
            r->rt = rt;
            return 0;
        }
    }
    r->proto = path_proto ? path_proto : owner_of(r);
    if (authorize(r, path_proto ? path_auth : AUTH_KEY, ret) != 0)
        return 1;
    if (!path_proto) {
        *ret = http_error(r, 404, "not_found", "no such endpoint");
        return 1;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "use %s", allowed);
    *ret = http_error(r, 405, "method_not_allowed", msg);
    return 1;
}

enum MHD_Result router_run(http_request *r)
{
    return r->rt->handler(r);
}
