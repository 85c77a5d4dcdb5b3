/*
 * safety - the prompt filter the Horde requires of its workers, applied
 * before generation: sexual content involving minors is refused, and the job
 * submitted with state "csam" (nothing is generated). Rules are PCRE2
 * patterns in classes (underage, sexual, adult) from data/horde/safety.rules,
 * built into the binary, plus any the operator adds from a file of the same
 * format. A job trips when its prompt matches a sexual rule and either its
 * prompt matches an underage rule or its negative prompt an adult one.
 */
#ifndef GS_HORDE_SAFETY_H
#define GS_HORDE_SAFETY_H

#include <stddef.h>

typedef struct horde_safety horde_safety;

/* The built-in rules, plus the file's when extra_path is not NULL. NULL with
   errmsg saying which line of which file is wrong. */
horde_safety *horde_safety_load(const char *extra_path, char *errmsg, size_t errmsg_size);

/* Adds the rules in text (the file format); 0, or -1 with errmsg. what names
   the source in messages. */
int horde_safety_add(horde_safety *s, const char *text, size_t len, const char *what, char *errmsg,
                     size_t errmsg_size);

/* 1 when the job must be refused as csam, with why (the rules that matched)
   filled; 0 when it may run. */
int horde_safety_check(const horde_safety *s, const char *prompt, const char *negative, char *why,
                       size_t why_size);

void horde_safety_free(horde_safety *s);

/* The rules file built into the binary. */
const char *horde_safety_builtin(size_t *len);

#endif
