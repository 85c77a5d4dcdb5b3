/* alloc - allocation hook with failure injection for tests. */
#include "common/alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

static _Atomic long fail_countdown = -1;

static int should_fail(void)
{
    long n = atomic_load(&fail_countdown);
    if (n < 0)
        return 0;
    if (n == 0)
        return 1;
    atomic_fetch_sub(&fail_countdown, 1);
    return 0;
}

void gi_alloc_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

void *gi_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

void *gi_calloc(size_t count, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

void *gi_realloc(void *ptr, size_t size)
{
    if (should_fail())
        return NULL;
    return realloc(ptr, size ? size : 1);
}

void *gi_aligned_alloc(size_t size)
{
    if (should_fail())
        return NULL;
    void *p = NULL;
    if (posix_memalign(&p, 64, size ? size : 64) != 0)
        return NULL;
    return p;
}

void *gi_huge_alloc(size_t size)
{
    const size_t huge = (size_t)2 << 20;
    if (should_fail())
        return NULL;
    void *p = NULL;
    size = (size + huge - 1) / huge * huge;
    if (posix_memalign(&p, huge, size ? size : huge) != 0)
        return NULL;
    madvise(p, size, MADV_HUGEPAGE); /* a hint: without THP it is 4 KiB pages as before */
    return p;
}

void gi_pages_drop(const void *ptr, size_t size)
{
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t b = ((uintptr_t)ptr + (uintptr_t)page - 1) & ~((uintptr_t)page - 1);
    uintptr_t e = ((uintptr_t)ptr + size) & ~((uintptr_t)page - 1);
    if (e > b)
        madvise((void *)b, e - b, MADV_DONTNEED);
}

#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer watches malloc'ed blocks only: sanitized builds keep the
   arena's overruns detectable by using malloc here. */
void *gi_pages_alloc(size_t size)
{
    return gi_aligned_alloc(size);
}

void gi_pages_free(void *ptr, size_t size)
{
    (void)size;
    gi_aligned_free(ptr);
}

void gi_pages_release(void *ptr, size_t size)
{
    (void)ptr, (void)size;
}
#else
void *gi_pages_alloc(size_t size)
{
    if (should_fail())
        return NULL;
    void *p =
        mmap(NULL, size ? size : 1, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void gi_pages_free(void *ptr, size_t size)
{
    if (ptr)
        munmap(ptr, size ? size : 1);
}

void gi_pages_release(void *ptr, size_t size)
{
    gi_pages_drop(ptr, size);
}
#endif

void gi_free(void *ptr)
{
    free(ptr);
}
void gi_aligned_free(void *ptr)
{
    free(ptr);
}

char *gi_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = gi_malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

int gi_mul_overflows(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > (size_t)-1 / a)
        return 1;
    *out = a * b;
    return 0;
}
