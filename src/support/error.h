/*
 * error - the service's status plus a readable message: the public gs_status
 * codes (include/gesso.h) with text saying what failed and why. The engine
 * keeps its own error type behind its API; the service sees only gesso.h.
 */
#ifndef GS_SVC_ERROR_H
#define GS_SVC_ERROR_H

#include "gesso.h"

#define SVC_ERRMSG_MAX 512

typedef struct svc_error {
    gs_status code;
    char msg[SVC_ERRMSG_MAX];
} svc_error;

/* Records code and a printf-style message in err (err may be NULL); returns code. */
gs_status svc_fail(svc_error *err, gs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the message with context ("upgrading the store: ..."); returns err->code. */
gs_status svc_error_prefix(svc_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
