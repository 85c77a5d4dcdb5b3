/*
 * fuzzutil - what the libFuzzer harnesses share: the input as a C string, and
 * as a file for the code that only opens paths (an anonymous memory file
 * named by /proc/self/fd/N, so no harness writes to disk).
 */
#ifndef GS_FUZZUTIL_H
#define GS_FUZZUTIL_H

#include <stddef.h>
#include <stdint.h>

/* data as a NUL-terminated string (malloc'd; aborts when out of memory). */
char *fuzz_cstr(const uint8_t *data, size_t size);

/* A memory file holding data; its path is written to path. Returns the
   descriptor (close it when done), or -1. */
int fuzz_memfile(const void *data, size_t size, char path[64]);

/* A fresh empty directory under $TMPDIR (or /tmp), made once per process. */
const char *fuzz_tmpdir(void);

#endif
