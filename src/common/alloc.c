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

#define HUGE_PAGE ((size_t)2 << 20)

void *gi_huge_alloc(size_t size)
{
    if (should_fail())
        return NULL;
    void *p = NULL;
    size = (size + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    if (posix_memalign(&p, HUGE_PAGE, size ? size : HUGE_PAGE) != 0)
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
    return size >= HUGE_PAGE ? gi_huge_alloc(size) : gi_aligned_alloc(size);
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
/* Blocks of 2 MiB and more start on a 2 MiB boundary and are marked for
   transparent huge pages: scratch is written once per pass in fresh blocks
   (an arena grown to the last pass's peak, a VAE decode's maps), and on a
   virtual machine each 4 KiB fault cost ~2 us of exception handling: the
   second UNet step of a run, which faults in the regrown arena, took 0.3 s
   longer than the third (bench/RESULTS.md section 38). */
void *gi_pages_alloc(size_t size)
{
    if (should_fail())
        return NULL;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t len = size ? (size + page - 1) / page * page : page;
    if (len < HUGE_PAGE) {
        void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
    unsigned char *m =
        mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    unsigned char *p =
        (unsigned char *)(((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (p > m) /* the slack before and after the aligned block goes back */
        munmap(m, (size_t)(p - m));
    if (p + len < m + len + HUGE_PAGE)
        munmap(p + len, (size_t)(m + len + HUGE_PAGE - (p + len)));
    madvise(p, len, MADV_HUGEPAGE); /* a hint: without THP it is 4 KiB pages as before */
    return p;
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
