/* http_reply - response helpers shared by the routes. */
#include "api/http_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum MHD_Result reply_bytes(struct MHD_Connection *c, int status, const char *type, void *data,
                            size_t n, enum MHD_ResponseMemoryMode mode, const char *extra_header)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(n, data, mode);
    if (!r) {
        if (mode == MHD_RESPMEM_MUST_FREE)
            free(data);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", type);
    if (extra_header) {
        const char *colon = strchr(extra_header, ':');
        char name[64];
        size_t len = colon ? (size_t)(colon - extra_header) : 0;
        if (colon && len < sizeof name) {
            memcpy(name, extra_header, len);
            name[len] = '\0';
            MHD_add_response_header(r, name, colon + 1 + (colon[1] == ' '));
        }
    }
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

/* JSON text of j (reference taken) as the response. */
static enum MHD_Result reply_json_with(struct MHD_Connection *c, int status, json_t *j,
                                       const char *extra_header)
{
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(j);
    if (!text)
        return MHD_NO;
    return reply_bytes(c, status, "application/json", text, strlen(text), MHD_RESPMEM_MUST_FREE,
                       extra_header);
}

enum MHD_Result reply_json(struct MHD_Connection *c, int status, json_t *j)
{
    return reply_json_with(c, status, j, NULL);
}

enum MHD_Result reply_error_with(struct MHD_Connection *c, int status, const char *code,
                                 const char *message, const char *extra_header)
{
    return reply_json_with(c, status,
                           json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", message),
                           extra_header);
}

enum MHD_Result reply_error(struct MHD_Connection *c, int status, const char *code,
                            const char *message)
{
    return reply_error_with(c, status, code, message, NULL);
}

unsigned char *file_read(const char *path, size_t max, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char *buf = NULL;
    long len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    if (len > 0 && (size_t)len <= max && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)len)) && fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = buf ? (size_t)len : 0;
    return buf;
}

char *base64_encode(const unsigned char *data, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t k = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
        out[k++] = abc[v >> 18];
        out[k++] = abc[(v >> 12) & 63];
        out[k++] = abc[(v >> 6) & 63];
        out[k++] = abc[v & 63];
    }
    if (i < n) {
        unsigned v = (unsigned)data[i] << 16 | (i + 1 < n ? (unsigned)data[i + 1] << 8 : 0);
        out[k++] = abc[v >> 18];
        out[k++] = abc[(v >> 12) & 63];
        out[k++] = i + 1 < n ? abc[(v >> 6) & 63] : '=';
        out[k++] = '=';
    }
    out[k] = '\0';
    return out;
}
