/*
 * openai - the OpenAI Images API, so that OpenAI's SDKs and the tools built
 * on them (LibreChat, Open WebUI, n8n) can use gesso as they use OpenAI: the
 * route table and OpenAI's error shape {"error":{"message","type","param",
 * "code"}}. Requests become ordinary jobs in the store (openai_images.c);
 * GET /v1/models serves both gesso's list and OpenAI's (native_info.c).
 * docs/api.md documents what is taken, mapped and ignored.
 */
#include "api/openai.h"

#include "api/protocols.h"

/* The type OpenAI gives an error of this status (its SDKs pick the
   exception by the status; the type is for people and logs). */
static const char *error_type(int status)
{
    if (status >= 500)
        return "server_error";
    if (status == 429)
        return "rate_limit_error";
    return "invalid_request_error";
}

enum MHD_Result openai_error(http_request *r, int status, const char *code, const char *param,
                             const char *message, const char *extra_header)
{
    json_t *err = json_pack("{s:s,s:s,s:o,s:o}", "message", message, "type", error_type(status),
                            "param", param && param[0] ? json_string(param) : json_null(), "code",
                            code ? json_string(code) : json_null());
    return http_reply_json(r, status, json_pack("{s:o}", "error", err), extra_header);
}

static enum MHD_Result protocol_error(http_request *r, int status, const char *code,
                                      const char *message, const char *extra_header)
{
    return openai_error(r, status, code, NULL, message, extra_header);
}

static const route routes[] = {
    {"POST", "/v1/images/generations", AUTH_KEY, openai_generations, ROUTE_UPLOAD},
    {"POST", "/v1/images/edits", AUTH_KEY, openai_edits, ROUTE_UPLOAD},
    {"POST", "/v1/images/variations", AUTH_KEY, openai_variations, ROUTE_UPLOAD},
};

const protocol openai_protocol = {.name = "openai",
                                  .routes = routes,
                                  .n_routes = sizeof routes / sizeof routes[0],
                                  .error = protocol_error};
