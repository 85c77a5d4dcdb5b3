/*
 * vocab_blob - OpenAI CLIP's BPE merge list, compiled into the library.
 *
 * data/clip/bpe_simple_vocab_16e6.txt.gz is embedded byte for byte at build time
 * (an assembler .incbin of the path CMake passes as GESSO_CLIP_VOCAB_PATH), so a
 * gesso binary tokenizes from any directory without a data file beside it.
 */
#ifndef GS_TEXT_VOCAB_BLOB_H
#define GS_TEXT_VOCAB_BLOB_H

#include <stddef.h>
#include <stdint.h>

/* The gzip-compressed merges file; *size gets its length in bytes. */
const uint8_t *clip_vocab_gz(size_t *size);

#endif
