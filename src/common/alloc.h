/*
 * alloc - the one allocation hook of libgesso.
 *
 * Every heap allocation of the engine goes through these functions so tests can
 * make the Nth allocation fail and check that the engine reports GS_ERR_NO_MEMORY
 * instead of crashing (libuv's and curl's habit).
 */
#ifndef GS_ALLOC_H
#define GS_ALLOC_H

#include <stddef.h>

void *gi_malloc(size_t size);
void *gi_calloc(size_t count, size_t size);
void *gi_realloc(void *ptr, size_t size);
/* 64-byte aligned (cache line and AVX-512 width); free with gi_free. */
void *gi_aligned_alloc(size_t size);
void gi_free(void *ptr);
void gi_aligned_free(void *ptr);
/* 2 MiB aligned and marked for transparent huge pages: for large buffers
   written once and read often (weights), where 4 KiB pages cost a fault each
   and a TLB entry each. Free with gi_aligned_free. */
void *gi_huge_alloc(size_t size);
/* Pages straight from the kernel, given back by gi_pages_free (with the same
   size). For large scratch that comes and goes: malloc raises its mmap
   threshold after the first large free and then keeps such blocks in its heap,
   where freed memory stays resident. Blocks of 2 MiB and more are 2 MiB
   aligned and marked for transparent huge pages, as gi_huge_alloc's. */
void *gi_pages_alloc(size_t size);
void gi_pages_free(void *ptr, size_t size);
/* Gives the whole pages inside [ptr, ptr + size) of a gi_pages_alloc block
   back to the kernel, the block staying mapped: they read as zeros when next
   touched. A no-op in sanitized builds (their blocks are malloc'ed). */
void gi_pages_release(void *ptr, size_t size);
/* MADV_DONTNEED over the whole pages inside [ptr, ptr + size) of any mapping
   (in every build): anonymous pages read as zeros next time, a private file
   mapping's as the file has them. */
void gi_pages_drop(const void *ptr, size_t size);
char *gi_strdup(const char *s);

/* Test hook: after n more successful allocations, every allocation fails.
 * n < 0 turns failure injection off. Not thread-safe by design: tests only. */
void gi_alloc_fail_after(long n);

/* size * count with overflow check; returns 0 and sets *out on success. */
int gi_mul_overflows(size_t a, size_t b, size_t *out);

#endif
