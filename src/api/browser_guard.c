/* browser_guard - Host and Origin checks against the operator's lists. */
#include "api/browser_guard.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* host without its ":port" into out (brackets of an IPv6 literal kept). */
static int host_name(const char *host, char *out, size_t cap)
{
    size_t n;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (!close)
            return -1;
        n = (size_t)(close - host) + 1;
    } else {
        n = strcspn(host, ":");
    }
    if (n == 0 || n >= cap)
        return -1;
    memcpy(out, host, n);
    out[n] = '\0';
    return 0;
}

static int is_ip_literal(const char *name)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, name, buf) == 1)
        return 1;
    size_t n = strlen(name);
    if (n > 2 && name[0] == '[' && name[n - 1] == ']' && n - 2 < 64) {
        char v6[64];
        memcpy(v6, name + 1, n - 2);
        v6[n - 2] = '\0';
        return inet_pton(AF_INET6, v6, buf) == 1;
    }
    return 0;
}

static int is_localhost(const char *name)
{
    size_t n = strlen(name);
    return strcasecmp(name, "localhost") == 0 ||
           (n > 10 && strcasecmp(name + n - 10, ".localhost") == 0);
}

int browser_host_allowed(const browser_policy *p, const char *host)
{
    char name[256];
    if (!host)
        return 1;
    if (host_name(host, name, sizeof name) != 0)
        return 0;
    if (is_ip_literal(name) || is_localhost(name))
        return 1;
    for (int i = 0; i < p->n_allowed_hosts; i++)
        if (strcmp(p->allowed_hosts[i], "*") == 0 || strcasecmp(p->allowed_hosts[i], name) == 0)
            return 1;
    return 0;
}

int browser_origin_listed(const browser_policy *p, const char *origin)
{
    if (!origin)
        return 0;
    for (int i = 0; i < p->n_cors_origins; i++)
        if (strcmp(p->cors_origins[i], "*") == 0 || strcasecmp(p->cors_origins[i], origin) == 0)
            return 1;
    return 0;
}

int browser_origin_allowed(const browser_policy *p, const char *origin, const char *host)
{
    if (!origin)
        return 1;
    if (browser_origin_listed(p, origin))
        return 1;
    /* the server's own page: scheme://HOST with the Host the browser sent */
    const char *rest = strncmp(origin, "http://", 7) == 0    ? origin + 7
                       : strncmp(origin, "https://", 8) == 0 ? origin + 8
                                                             : NULL;
    return rest && host && strcasecmp(rest, host) == 0;
}
