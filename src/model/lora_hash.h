/* lora_hash - SHA-256 of a buffer, for A1111's LoRA hashes. */
#ifndef GS_LORA_HASH_H
#define GS_LORA_HASH_H

#include <stddef.h>

/* The digest of n bytes as 64 lowercase hex digits, NUL-terminated. */
void lora_sha256_hex(const void *data, size_t n, char out[65]);

#endif
