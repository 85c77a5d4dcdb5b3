/*
 * clip_vocab_data - the gzip'd CLIP BPE merges (data/clip/, MIT licence),
 * embedded at build time so the library needs no data files at run time.
 */
#include <stddef.h>

#ifndef GESSO_CLIP_VOCAB_PATH
#error "GESSO_CLIP_VOCAB_PATH must name data/clip/bpe_simple_vocab_16e6.txt.gz"
#endif

__asm__(".section .rodata\n"
        ".balign 16\n"
        ".global gs_clip_vocab_gz\n"
        "gs_clip_vocab_gz:\n"
        ".incbin \"" GESSO_CLIP_VOCAB_PATH "\"\n"
        ".global gs_clip_vocab_gz_end\n"
        "gs_clip_vocab_gz_end:\n"
        ".byte 0\n"
        ".previous\n");
