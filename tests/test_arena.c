/*
 * test_arena - the scratch arena: stack order and alignment, a pass that
 * overflows its block keeps what it holds live, and the idle part of the
 * block goes back to the kernel before an overflow maps new pages (a VAE
 * decode after UNet steps held the steps' block and spares beside its own
 * region: 208 MB of a kept SD1.5 worker's peak at 512x512).
 */
#include "testutil.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "compute/arena.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define MB ((size_t)1 << 20)

/* Resident bytes of this process (statm's second field, in pages). */
static size_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    assert_non_null(f);
    unsigned long size = 0, res = 0;
    assert_int_equal(fscanf(f, "%lu %lu", &size, &res), 2);
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}

static void stack_order_and_alignment(void **state)
{
    (void)state;
    arena a;
    arena_init(&a);
    unsigned char *p = arena_alloc(&a, 3);
    arena_mark m = arena_get_mark(&a);
    unsigned char *q = arena_alloc(&a, 100);
    assert_non_null(p);
    assert_non_null(q);
    assert_int_equal((uintptr_t)p % 64, 0);
    assert_int_equal((uintptr_t)q % 64, 0);
    arena_release(&a, m);
    assert_ptr_equal(arena_alloc(&a, 100), q); /* the same place again */
    /* the first pass overflowed its empty block: the next one gets a block of
       the peak and no overflow */
    assert_int_equal(arena_reset(&a), 0);
    assert_true(a.cap >= 64 + 128);
    void *r = arena_alloc(&a, 150);
    assert_ptr_equal(r, a.base);
    assert_int_equal(a.n_extra, 0);
    arena_destroy(&a);
}

/* A block of 64 MB from a first pass; the second fills 8 MB and a bit of it
   with a pattern (its last page partly live), touches the rest, releases it
   and then asks for more than the block holds. The live bytes must survive
   the idle pages' release; the released ones are given back. */
static void overflow_keeps_live_data_and_gives_idle_pages_back(void **state)
{
    (void)state;
    arena a;
    arena_init(&a);
    assert_non_null(arena_alloc(&a, 64 * MB));
    assert_int_equal(arena_reset(&a), 0);
    assert_true(a.cap >= 64 * MB);
    size_t live = 8 * MB + 1000;
    unsigned char *keep = arena_alloc(&a, live);
    assert_ptr_equal(keep, a.base);
    for (size_t i = 0; i < live; i++)
        keep[i] = (unsigned char)(i * 131u + 7u);
    arena_mark m = arena_get_mark(&a);
    unsigned char *idle = arena_alloc(&a, a.cap - a.used);
    assert_non_null(idle);
    memset(idle, 0xab, a.cap - m.used); /* resident now */
    arena_release(&a, m);
    size_t before = resident_bytes();
    unsigned char *big = arena_alloc(&a, 100 * MB); /* overflow: new pages */
    assert_non_null(big);
    size_t after = resident_bytes();
    for (size_t i = 0; i < live; i++)
        if (keep[i] != (unsigned char)(i * 131u + 7u))
            fail_msg("live byte %zu changed by the overflow", i);
    memset(big, 1, 100 * MB);
    arena_release(&a, m);
    /* the block's tail is usable again (zeros where it was given back) */
    unsigned char *again = arena_alloc(&a, 16 * MB);
    assert_ptr_equal(again, idle);
    memset(again, 2, 16 * MB);
    printf("resident before the overflow %zu MB, after %zu MB (idle tail %zu MB)\n", before / MB,
           after / MB, (a.cap - m.used) / MB);
    if (SANITIZED)
        test_note_skip("test_arena: pages are not given back in sanitized builds (malloc'ed)");
    else
        assert_true((long)before - (long)after >= (long)((a.cap - m.used) * 3 / 4));
    arena_destroy(&a);
}

/* Whether the mapping holding p carries MADV_HUGEPAGE ("hg" in smaps'
   VmFlags): the hint is recorded whether or not the kernel then finds huge
   pages, so this holds on any machine. */
static int marked_for_huge_pages(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    assert_non_null(f);
    char line[512];
    int inside = 0, marked = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) /* a mapping's first line */
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (inside && strncmp(line, "VmFlags:", 8) == 0)
            marked = strstr(line, " hg") != NULL;
    }
    fclose(f);
    return marked;
}

/* Scratch blocks of 2 MiB and more start on a 2 MiB boundary and are marked
   for huge pages (a fresh arena block otherwise costs a fault per 4 KiB: the
   second UNet step of a run took 0.3 s longer than the third); smaller ones
   stay plain pages. Every byte of both is writable. */
static void large_page_blocks_are_huge_page_ready(void **state)
{
    (void)state;
    size_t sizes[] = {5 * MB + 12345, 2 * MB, 64 * 1024};
    for (int i = 0; i < 3; i++) {
        unsigned char *p = gi_pages_alloc(sizes[i]);
        assert_non_null(p);
        memset(p, 0x5a, sizes[i]);
        assert_int_equal(p[sizes[i] - 1], 0x5a);
        if (sizes[i] >= 2 * MB) {
            assert_int_equal((uintptr_t)p % (2 * MB), 0);
            assert_true(marked_for_huge_pages(p));
            assert_true(marked_for_huge_pages(p + sizes[i] - 1));
        }
        gi_pages_free(p, sizes[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stack_order_and_alignment),
        cmocka_unit_test(overflow_keeps_live_data_and_gives_idle_pages_back),
        cmocka_unit_test(large_page_blocks_are_huge_page_ready),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
