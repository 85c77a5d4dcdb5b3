/*
 * vocab_blob - embeds the gzip'd CLIP merges with .incbin (see vocab_blob.h).
 *
 * The two labels are hidden so that a shared libgesso does not export them. The
 * .incbin path comes from CMake, which also makes this object depend on the file.
 */
#include "text/vocab_blob.h"

#ifndef GESSO_CLIP_VOCAB_PATH
#error "GESSO_CLIP_VOCAB_PATH must name data/clip/bpe_simple_vocab_16e6.txt.gz (set by CMake)"
#endif
#ifndef __ELF__
#error "vocab_blob.c embeds data with ELF section directives; port it for this platform"
#endif

__asm__(".section .rodata.gi_clip_vocab,\"a\",@progbits\n"
        ".balign 16\n"
        ".globl gi_clip_vocab_gz_begin\n"
        ".hidden gi_clip_vocab_gz_begin\n"
        "gi_clip_vocab_gz_begin:\n"
        ".incbin \"" GESSO_CLIP_VOCAB_PATH "\"\n"
        ".globl gi_clip_vocab_gz_end\n"
        ".hidden gi_clip_vocab_gz_end\n"
        "gi_clip_vocab_gz_end:\n"
        ".previous\n");

extern const uint8_t gi_clip_vocab_gz_begin[];
extern const uint8_t gi_clip_vocab_gz_end[];

const uint8_t *clip_vocab_gz(size_t *size)
{
    *size = (size_t)(gi_clip_vocab_gz_end - gi_clip_vocab_gz_begin);
    return gi_clip_vocab_gz_begin;
}
