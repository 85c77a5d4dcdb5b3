/* error - status codes and formatted messages. */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

gs_status gi_fail(gi_error *err, gs_status code, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

gs_status gi_error_prefix(gi_error *err, const char *fmt, ...)
{
    if (!err)
        return GS_ERR_INTERNAL;
    char prefix[GS_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    if (n < 0)
        return err->code;
    char joined[2 * GS_ERRMSG_MAX + 2];
    snprintf(joined, sizeof joined, "%s: %s", prefix, err->msg);
    size_t len = strlen(joined);
    if (len >= sizeof err->msg)
        len = sizeof err->msg - 1;
    memcpy(err->msg, joined, len);
    err->msg[len] = '\0';
    return err->code;
}

const char *gs_strerror(gs_status code)
{
    switch (code) {
    case GS_OK: return "success";
    case GS_ERR_INVALID_ARGUMENT: return "invalid argument";
    case GS_ERR_IO: return "input/output error";
    case GS_ERR_FORMAT: return "malformed file";
    case GS_ERR_UNSUPPORTED: return "unsupported";
    case GS_ERR_NO_MEMORY: return "out of memory";
    case GS_ERR_CANCELLED: return "cancelled";
    case GS_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}
