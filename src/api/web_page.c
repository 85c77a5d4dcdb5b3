/*
 * web_page - the web page's routes: GET / and its script and style sheet,
 * public (the page asks for a key itself when the API needs one). A strict
 * Content-Security-Policy: the page runs only its own script and talks only
 * to this server, so an injected prompt or infotext can never run as code.
 */
#include <string.h>

#include "api/http.h"
#include "api/protocols.h"
#include "api/web_assets.h"

#define CSP                                                                                        \
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "        \
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

static enum MHD_Result serve_asset(http_request *r)
{
    web_asset a;
    if (web_asset_find(r->path, &a) != 0)
        return http_error(r, 404, "not_found", "no such file");
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(a.size, (void *)a.data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", a.type);
    http_add_common_headers(r, resp);
    MHD_add_response_header(resp, "Content-Security-Policy", CSP);
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    enum MHD_Result ret = MHD_queue_response(r->c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result web_error(http_request *r, int status, const char *code, const char *message,
                                 const char *extra_header)
{
    return http_reply_json(r, status,
                           json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message),
                           extra_header);
}

static const route routes[] = {
    {"GET", "/", AUTH_PUBLIC, serve_asset, 0},
    {"GET", "/app.js", AUTH_PUBLIC, serve_asset, 0},
    {"GET", "/app.css", AUTH_PUBLIC, serve_asset, 0},
};

const protocol web_protocol = {.name = "web",
                               .routes = routes,
                               .n_routes = sizeof routes / sizeof routes[0],
                               .error = web_error};
