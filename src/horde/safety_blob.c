/*
 * safety_blob - embeds data/horde/safety.rules with .incbin, as vocab_blob.c
 * does the CLIP vocabulary: the path comes from CMake, which also makes this
 * object depend on the file. A NUL follows the text.
 */
#include <stddef.h>

#include "horde/safety.h"

#ifndef GESSO_SAFETY_RULES_PATH
#error "GESSO_SAFETY_RULES_PATH must name data/horde/safety.rules (set by CMake)"
#endif

__asm__(".section .rodata.gi_safety_rules,\"a\",@progbits\n"
        ".globl gi_safety_rules_begin\n"
        ".hidden gi_safety_rules_begin\n"
        "gi_safety_rules_begin:\n"
        ".incbin \"" GESSO_SAFETY_RULES_PATH "\"\n"
        ".globl gi_safety_rules_end\n"
        ".hidden gi_safety_rules_end\n"
        "gi_safety_rules_end:\n"
        ".byte 0\n"
        ".previous\n");

extern const char gi_safety_rules_begin[];
extern const char gi_safety_rules_end[];

const char *horde_safety_builtin(size_t *len)
{
    *len = (size_t)(gi_safety_rules_end - gi_safety_rules_begin);
    return gi_safety_rules_begin;
}
