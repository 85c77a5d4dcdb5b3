/* error - filling a svc_error. */
#include "support/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

gs_status svc_fail(svc_error *err, gs_status code, const char *fmt, ...)
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

gs_status svc_error_prefix(svc_error *err, const char *fmt, ...)
{
    if (!err)
        return GS_ERR_INTERNAL;
    char joined[SVC_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(joined, sizeof joined, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof joined)
        snprintf(joined + n, sizeof joined - (size_t)n, ": %.*s", (int)(sizeof joined) - n,
                 err->msg);
    memcpy(err->msg, joined, sizeof err->msg);
    return err->code;
}
