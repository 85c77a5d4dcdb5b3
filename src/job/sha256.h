/* sha256 - SHA-256 (FIPS 180-4): the digest that ties a stored job to its input blobs. */
#ifndef GS_JOB_SHA256_H
#define GS_JOB_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 64 /* digits of a digest in hex */

/* The digest of n bytes as lowercase hex, NUL-terminated. */
void sha256_hex(const void *data, size_t n, char out[SHA256_HEX_LEN + 1]);

#endif
