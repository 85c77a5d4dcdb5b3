/*
 * browser_guard - what keeps web pages away from a keyless local server.
 *
 * A page on any site can make the visitor's browser send requests to
 * 127.0.0.1: a form or fetch() with Content-Type text/plain needs no CORS
 * preflight, so without a check any site could queue jobs; and with DNS
 * rebinding (a name of the attacker's that first points at the attacker,
 * then at 127.0.0.1) the page becomes "same-origin" and can read results. The
 * browser always tells the truth in two headers: Origin (which page sent the
 * request) and Host (which name it thinks it is talking to). So, while no API
 * keys are set, a request is refused when its Host is a name not allowed
 * (IP literals and localhost are always allowed: rebinding needs a name), or
 * when it carries an Origin that is neither the server itself nor one the
 * operator allowed with --cors-origin. With keys set, the key is the
 * protection and only the CORS headers depend on the list.
 */
#ifndef GS_BROWSER_GUARD_H
#define GS_BROWSER_GUARD_H

typedef struct browser_policy {
    const char *const *cors_origins; /* exact "scheme://host[:port]", or "*" */
    int n_cors_origins;
    const char *const *allowed_hosts; /* names (any port), or "*" for any */
    int n_allowed_hosts;
} browser_policy;

/* 1 when a Host header value may be served (NULL: HTTP/1.0 without Host, allowed). */
int browser_host_allowed(const browser_policy *p, const char *host);

/* 1 when origin is on the --cors-origin list (the reply gets CORS headers). */
int browser_origin_listed(const browser_policy *p, const char *origin);

/* 1 when a request with this Origin (NULL: none) and Host may run on a
   keyless server: no Origin, the server's own, or a listed one. */
int browser_origin_allowed(const browser_policy *p, const char *origin, const char *host);

#endif
