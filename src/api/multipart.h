/*
 * multipart - reads a multipart/form-data body (RFC 7578), as OpenAI's image
 * edits and variations send it, once the whole body is in memory (routes
 * flagged ROUTE_UPLOAD have it buffered under --max-body). Parts point into
 * the body, so nothing is copied; every malformed shape (no boundary, a part
 * without its closing boundary, headers without end, too many parts) is an
 * error with a sentence for the client, never a guess.
 */
#ifndef GS_MULTIPART_H
#define GS_MULTIPART_H

#include <stddef.h>

#define MULTIPART_MAX_PARTS 64
#define MULTIPART_MAX_HEADERS 8192 /* bytes of one part's header block */

typedef struct multipart_part {
    char name[64];      /* the form field's name */
    char filename[256]; /* as sent (never used as a path); "" when none */
    int has_filename;   /* a file upload, even with filename="" */
    char type[128];     /* the part's Content-Type, "" when none */
    const char *data;   /* the part's bytes, inside the body */
    size_t len;
} multipart_part;

/* Parses body[0..len) as multipart/form-data with the boundary that
   content_type names into parts[0..max). 0 with *n set, or -1 with the reason
   in msg. */
int multipart_parse(const char *content_type, const char *body, size_t len, multipart_part *parts,
                    int max, int *n, char *msg, size_t msg_size);

/* The first part named name, or NULL. */
const multipart_part *multipart_find(const multipart_part *parts, int n, const char *name);

#endif
