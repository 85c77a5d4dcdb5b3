/* test_rng - the torch-compatible generator against torch's own draws. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/rng.h"

/* Distance in units in the last place between two finite floats of one sign. */
static long ulp_distance(float a, float b)
{
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    /* map to a monotonic integer line so that -0 and +0 are neighbours */
    int64_t la = ia < 0 ? -(int64_t)(ia & 0x7fffffff) : ia;
    int64_t lb = ib < 0 ? -(int64_t)(ib & 0x7fffffff) : ib;
    return (long)(la > lb ? la - lb : lb - la);
}

/* Every rng.{seed}.* tensor: small, latent, big, odd drawn in that order. */
static void matches_torch_golden(void **state)
{
    (void)state;
    static const char *const seeds[] = {"0",     "1",          "42",
                                        "12345", "4294967295", "9223372036854775807"};
    static const char *const parts[] = {"small", "latent", "big", "odd"};
    static const size_t sizes[] = {5, 1 * 4 * 8 * 8, 1 * 4 * 64 * 64, 3 * 7 * 5};
    size_t total = 0, exact = 0, off_by_one = 0;
    long worst = 0;
    for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++) {
        gi_rng rng;
        rng_seed(&rng, strtoull(seeds[s], NULL, 10));
        for (size_t p = 0; p < 4; p++) {
            char name[96];
            snprintf(name, sizeof name, "rng.%s.%s", seeds[s], parts[p]);
            size_t n;
            float *want = golden_f32(name, &n);
            assert_int_equal(n, sizes[p]);
            float *got = malloc(n * sizeof *got);
            assert_non_null(got);
            rng_randn(&rng, got, n);
            for (size_t i = 0; i < n; i++) {
                long d = ulp_distance(got[i], want[i]);
                if (d > worst)
                    worst = d;
                exact += d == 0;
                off_by_one += d == 1;
                if (d > 1)
                    fprintf(stderr, "%s[%zu]: %.9g, torch %.9g\n", name, i, got[i], want[i]);
            }
            total += n;
            free(got);
            free(want);
        }
    }
    printf("rng: %zu values, %zu bit-exact, %zu off by 1 ulp, worst %ld ulp\n", total, exact,
           off_by_one, worst);
    assert_true(worst <= 1);
    /* the polynomial log/sincos reproduce torch's AVX2 kernels exactly */
    assert_int_equal(exact, total);
}

/* mt19937 reference value: the 10000th output for the default seed 5489. */
static void mt19937_reference(void **state)
{
    (void)state;
    gi_rng rng;
    rng_seed(&rng, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++)
        v = rng_u32(&rng);
    assert_int_equal(v, 4123659995u);
}

/* Only the low 32 bits of the seed count, as in torch's CPU generator. */
static void seed_uses_low_32_bits(void **state)
{
    (void)state;
    gi_rng a, b;
    rng_seed(&a, 7);
    rng_seed(&b, (UINT64_C(123) << 32) | 7);
    float x[64], y[64];
    rng_randn(&a, x, 64);
    rng_randn(&b, y, 64);
    assert_memory_equal(x, y, sizeof x);
}

/* The scalar path keeps the pair's second value: randn(3) then randn(1) equals
 * randn(4), and reseeding drops the cached value. */
static void scalar_path_caches_second_value(void **state)
{
    (void)state;
    gi_rng a, b;
    float x[4], y[4];
    rng_seed(&a, 42);
    rng_randn(&a, x, 3);
    rng_randn(&a, x + 3, 1);
    rng_seed(&b, 42);
    rng_randn(&b, y, 4);
    assert_memory_equal(x, y, sizeof x);

    rng_seed(&a, 42);
    rng_randn(&a, x, 1); /* leaves a cached value */
    rng_seed(&a, 42);
    rng_randn(&a, x, 1);
    rng_seed(&b, 42);
    rng_randn(&b, y, 1);
    assert_memory_equal(x, y, sizeof(float));
}

/* Tensors of 16+ elements use one 24-bit word each, plus 16 more when the size
 * is not a multiple of 16; the vector path never touches the scalar cache. */
static void vector_path_consumes_expected_words(void **state)
{
    (void)state;
    const size_t sizes[] = {16, 17, 31, 32, 33, 256, 105};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        size_t words = n + (n % 16 ? 16 : 0);
        gi_rng a, b;
        rng_seed(&a, 3);
        rng_seed(&b, 3);
        float buf[512];
        rng_randn(&a, buf, n);
        for (size_t i = 0; i < words; i++)
            (void)rng_u32(&b);
        assert_int_equal(rng_u32(&a), rng_u32(&b));
    }
    /* a cached scalar value survives a vector draw in between */
    gi_rng a, b;
    float x[2], y[2], big[32];
    rng_seed(&a, 9);
    rng_randn(&a, x, 1);
    rng_randn(&a, big, 32);
    rng_randn(&a, x + 1, 1);
    rng_seed(&b, 9);
    rng_randn(&b, y, 2);
    assert_memory_equal(x, y, sizeof(float)); /* first values equal */
    assert_memory_equal(x + 1, y + 1, sizeof(float));
}

/* Moments of a large draw: a sanity net under the bit-exact check. */
static void large_draw_is_standard_normal(void **state)
{
    (void)state;
    enum { N = 1 << 16 };
    float *x = malloc(N * sizeof *x);
    assert_non_null(x);
    gi_rng rng;
    rng_seed(&rng, 2024);
    rng_randn(&rng, x, N);
    double m = 0, v = 0;
    for (int i = 0; i < N; i++)
        m += x[i];
    m /= N;
    for (int i = 0; i < N; i++)
        v += (x[i] - m) * (x[i] - m);
    v /= N;
    /* 5 standard errors */
    assert_true(m > -5.0 / 256 && m < 5.0 / 256);
    assert_true(v > 1 - 5 * 0.0055 && v < 1 + 5 * 0.0055);
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_torch_golden),
        cmocka_unit_test(mt19937_reference),
        cmocka_unit_test(seed_uses_low_32_bits),
        cmocka_unit_test(scalar_path_caches_second_value),
        cmocka_unit_test(vector_path_consumes_expected_words),
        cmocka_unit_test(large_draw_is_standard_normal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
