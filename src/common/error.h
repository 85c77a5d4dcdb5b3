/*
 * error - status plus a readable message, carried through the engine.
 *
 * Internal calls take a gi_error* and fill it on failure with gi_fail(); public
 * calls copy the message into their handle's last-error buffer.
 */
#ifndef GS_ERROR_H
#define GS_ERROR_H

#include "gesso.h"

#define GS_ERRMSG_MAX 512

typedef struct gi_error {
    gs_status code;
    char msg[GS_ERRMSG_MAX];
} gi_error;

/* Records code and a printf-style message in err (err may be NULL); returns code. */
gs_status gi_fail(gi_error *err, gs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with context ("loading unet: ..."); returns err->code. */
gs_status gi_error_prefix(gi_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static inline void gi_error_clear(gi_error *err)
{
    if (err) {
        err->code = GS_OK;
        err->msg[0] = '\0';
    }
}

#endif
