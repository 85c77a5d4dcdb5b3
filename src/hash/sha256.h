/* sha256 - SHA-256 (FIPS 180-4), in one call or over pieces as they arrive. */
#ifndef GS_HASH_SHA256_H
#define GS_HASH_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64 /* digits of a digest in hex */

typedef struct sha256_ctx {
    uint32_t h[8];
    uint64_t bytes;          /* fed so far */
    unsigned char block[64]; /* a partial block waiting for more */
    size_t held;
} sha256_ctx;

void sha256_init(sha256_ctx *c);
void sha256_update(sha256_ctx *c, const void *data, size_t n);
/* The digest as lowercase hex, NUL-terminated; the context is spent. */
void sha256_final_hex(sha256_ctx *c, char out[SHA256_HEX_LEN + 1]);

/* The digest of n bytes in one call. */
void sha256_hex(const void *data, size_t n, char out[SHA256_HEX_LEN + 1]);

#endif
