/* base64 - RFC 4648 text for images carried in JSON (init images, previews). */
#ifndef GS_JOB_BASE64_H
#define GS_JOB_BASE64_H

#include <stddef.h>

/* Standard base64 of n bytes, NUL-terminated; malloc'd, NULL when out of memory. */
char *base64_encode(const unsigned char *data, size_t n);

/* Decodes s (standard or URL-safe alphabet, padding and line breaks ignored,
   an optional "data:...;base64," prefix skipped) into a malloc'd buffer;
   NULL when s is not base64 or would decode to more than max bytes. */
unsigned char *base64_decode(const char *s, size_t max, size_t *out_len);

#endif
