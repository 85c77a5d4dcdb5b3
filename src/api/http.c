/* http - request accessors and replies over libmicrohttpd. */
#include "api/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *http_query(const http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
}

const char *http_header(const http_request *r, const char *name)
{
    return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

void http_add_common_headers(const http_request *r, struct MHD_Response *resp)
{
    /* a browser must not read a reply as anything but its type (a PNG as HTML) */
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->cors_origin) {
        MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->cors_origin);
        MHD_add_response_header(resp, "Vary", "Origin");
    }
}

enum MHD_Result http_reply_bytes(http_request *r, int status, const char *type, void *data,
                                 size_t n, enum MHD_ResponseMemoryMode mode,
                                 const char *extra_header)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(n, data, mode);
    if (!resp) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(data);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    http_add_common_headers(r, resp);
    for (const char *h = extra_header; h && *h;) {
        size_t line = strcspn(h, "\n");
        const char *colon = memchr(h, ':', line);
        char name[64], value[256];
        size_t len = colon ? (size_t)(colon - h) : 0;
        if (colon && len < sizeof name) {
            memcpy(name, h, len);
            name[len] = '\0';
            const char *v = colon + 1 + (colon[1] == ' ');
            snprintf(value, sizeof value, "%.*s", (int)(h + line - v), v);
            MHD_add_response_header(resp, name, value);
        }
        h += line + (h[line] == '\n');
    }
    enum MHD_Result ret = MHD_queue_response(r->c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result http_reply_json(http_request *r, int status, json_t *j, const char *extra_header)
{
    char *text = j ? json_dumps(j, HTTP_JSON_FLAGS) : NULL;
    json_decref(j);
    return http_reply_json_text(r, status, text, extra_header);
}

enum MHD_Result http_reply_json_text(http_request *r, int status, char *text,
                                     const char *extra_header)
{
    if (!text)
        return MHD_NO;
    return http_reply_bytes(r, status, "application/json", text, strlen(text),
                            MHD_RESPMEM_MUST_FREE, extra_header);
}

enum MHD_Result http_error_with(http_request *r, int status, const char *code, const char *message,
                                const char *extra_header)
{
    return r->proto->error(r, status, code, message, extra_header);
}

enum MHD_Result http_error(http_request *r, int status, const char *code, const char *message)
{
    return http_error_with(r, status, code, message, NULL);
}
