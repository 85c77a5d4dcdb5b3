/* sha256 - SHA-256 (FIPS 180-4): the digest that ties a stored job to its input blobs. */
#ifndef GS_JOB_SHA256_H
#define GS_JOB_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64 /* digits of a digest in hex */

/* The digest of n bytes as lowercase hex, NUL-terminated. */
void sha256_hex(const void *data, size_t n, char out[SHA256_HEX_LEN + 1]);

/* The same digest fed in pieces, for data too large to hold at once (a
   downloaded checkpoint read back from disk). */
typedef struct sha256_ctx {
    uint32_t h[8];
    unsigned char buf[64];
    size_t fill;
    uint64_t total; /* bytes fed */
} sha256_ctx;

void sha256_begin(sha256_ctx *c);
void sha256_feed(sha256_ctx *c, const void *data, size_t n);
void sha256_end(sha256_ctx *c, char out[SHA256_HEX_LEN + 1]);

#endif
