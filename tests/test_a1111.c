/*
 * test_a1111 - the pieces of A1111's API that need no server: the sampler
 * and scheduler names (A1111's, their aliases, the pre-1.9 names that carry
 * a scheduler) and the PNG text-chunk reader, which reads bytes a client
 * sent: valid files, truncated ones, lying lengths and random damage.
 */
#include "testutil.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "api/a1111.h"
#include "api/png_text.h"

/* ---- samplers ---- */

static void expect_map(const char *name, const char *sched, const char *engine,
                       const char *engine_sched)
{
    const char *e = NULL, *es = NULL;
    char why[300];
    if (a1111_map_sampler(name, sched, &e, &es, why, sizeof why) != 0)
        fail_msg("%s / %s: %s", name ? name : "(null)", sched ? sched : "(null)", why);
    assert_string_equal(e, engine);
    assert_string_equal(es, engine_sched);
}

static void sampler_names(void **state)
{
    (void)state;
    expect_map(NULL, NULL, "euler", "default"); /* A1111's API default */
    expect_map("", "", "euler", "default");
    expect_map("Euler a", NULL, "euler_a", "default");
    expect_map("euler a", "automatic", "euler_a", "default");
    expect_map("k_euler_ancestral", NULL, "euler_a", "default");
    expect_map("DPM++ 2M", "Karras", "dpmpp_2m", "karras");
    expect_map("DPM++ 2M", "karras", "dpmpp_2m", "karras");
    expect_map("DPM++ 2M Karras", NULL, "dpmpp_2m", "karras");
    expect_map("DPM++ 2M Karras", "Exponential", "dpmpp_2m", "karras"); /* the name wins */
    expect_map("Euler Exponential", NULL, "euler", "exponential");
    expect_map("Heun", "Uniform", "heun", "normal");
    expect_map("DDIM", "Normal", "ddim", "default"); /* timestep samplers ignore it, as A1111 */
    expect_map("LCM", NULL, "lcm", "default");
    expect_map("dpmpp_2m", "karras", "dpmpp_2m", "karras"); /* gesso's own names */
    /* the rows of the engine's table: A1111 names, aliases, AI Horde names */
    expect_map("LMS Karras", NULL, "lms", "karras");
    expect_map("DPM2 a Karras", NULL, "dpm_2_a", "karras");
    expect_map("DPM2", NULL, "dpm_2", "karras"); /* "Automatic": the sampler's own option */
    expect_map("DPM++ 2M", NULL, "dpmpp_2m", "karras");
    expect_map("DPM++ 2M", "Automatic", "dpmpp_2m", "karras");
    expect_map("DPM++ 2S a", "Exponential", "dpmpp_2s_a", "exponential");
    expect_map("DPM fast", NULL, "dpm_fast", "default");
    expect_map("k_dpm_ad", NULL, "dpm_adaptive", "default");       /* A1111's alias */
    expect_map("k_dpm_adaptive", NULL, "dpm_adaptive", "default"); /* the Horde's name */
    expect_map("Euler SGM Uniform", NULL, "euler", "sgm_uniform");
    expect_map("Euler", "sgm_uniform", "euler", "sgm_uniform");
    expect_map("Euler", "Simple", "euler", "simple");
    expect_map("DPM++ SDE Karras", NULL, "dpmpp_sde", "karras");
    expect_map("DPM++ 2M SDE", "Exponential", "dpmpp_2m_sde", "exponential");
    expect_map("k_dpmpp_2m_sde", NULL, "dpmpp_2m_sde", "exponential");
    const char *e, *es;
    char why[300];
    assert_int_equal(a1111_map_sampler("DPM++ 3M SDE", NULL, &e, &es, why, sizeof why), -1);
    assert_non_null(strstr(why, "DPM++ 3M SDE"));
    assert_non_null(strstr(why, "DPM adaptive")); /* the known names, from the table */
    assert_int_equal(a1111_map_sampler("Karras", NULL, &e, &es, why, sizeof why), -1);
    assert_int_equal(a1111_map_sampler("Euler", "Beta", &e, &es, why, sizeof why), -2);
    assert_non_null(strstr(why, "Beta"));
    assert_non_null(strstr(why, "SGM Uniform"));
    assert_string_equal(a1111_sampler_label("dpmpp_2m"), "DPM++ 2M");
    assert_string_equal(a1111_sampler_label("euler_a"), "Euler a");
    assert_string_equal(a1111_sampler_label("dpm_2_a"), "DPM2 a");
}

/* ---- PNG text chunks ---- */

typedef struct buf {
    unsigned char d[4096];
    size_t n;
} buf;

static void put32(buf *b, uint32_t v)
{
    b->d[b->n++] = (unsigned char)(v >> 24);
    b->d[b->n++] = (unsigned char)(v >> 16);
    b->d[b->n++] = (unsigned char)(v >> 8);
    b->d[b->n++] = (unsigned char)v;
}

static void chunk(buf *b, const char *type, const void *data, size_t n)
{
    put32(b, (uint32_t)n);
    memcpy(b->d + b->n, type, 4);
    memcpy(b->d + b->n + 4, data, n);
    uint32_t crc = (uint32_t)crc32(0, b->d + b->n, (uInt)(n + 4));
    b->n += 4 + n;
    put32(b, crc);
}

/* A 1x1 PNG with a tEXt "parameters", a Latin-1 tEXt and an iTXt (UTF-8). */
static void sample_png(buf *b)
{
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const unsigned char ihdr[13] = {0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0};
    static const char params[] = "parameters\0a cat\nSteps: 20, Seed: 42";
    static const char latin[] = "Author\0Ren\xe9";
    static const char itxt[] = "Comment\0\0\0en\0\0caf\xc3\xa9";
    b->n = 0;
    memcpy(b->d, sig, 8);
    b->n = 8;
    chunk(b, "IHDR", ihdr, sizeof ihdr);
    chunk(b, "tEXt", params, sizeof params - 1);
    chunk(b, "tEXt", latin, sizeof latin - 1);
    chunk(b, "iTXt", itxt, sizeof itxt - 1);
    chunk(b, "IEND", "", 0);
}

static void png_text_reads_chunks(void **state)
{
    (void)state;
    buf b;
    sample_png(&b);
    json_t *o = png_text_chunks(b.d, b.n);
    assert_string_equal(json_string_value(json_object_get(o, "parameters")),
                        "a cat\nSteps: 20, Seed: 42");
    assert_string_equal(json_string_value(json_object_get(o, "Author")), "Ren\xc3\xa9");
    assert_string_equal(json_string_value(json_object_get(o, "Comment")), "caf\xc3\xa9");
    json_decref(o);
    o = png_text_chunks((const unsigned char *)"GIF89a", 6); /* not a PNG: no chunks */
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
}

/* Truncated files and lengths that point past the end read what came
   before; nothing is read out of bounds (ASan watches). */
static void png_text_survives_damage(void **state)
{
    (void)state;
    buf b;
    sample_png(&b);
    for (size_t n = 0; n <= b.n; n++) {
        unsigned char *copy = malloc(n ? n : 1); /* exactly n bytes: overreads are caught */
        memcpy(copy, b.d, n);
        json_t *o = png_text_chunks(copy, n);
        assert_non_null(o);
        json_decref(o);
        free(copy);
    }
    buf lie = b;
    lie.d[33] = 0xff; /* the first tEXt's length: ~4 GB */
    json_t *o = png_text_chunks(lie.d, lie.n);
    assert_int_equal(json_object_size(o), 0);
    json_decref(o);
    uint32_t seed = 12345;
    for (int round = 0; round < 20000; round++) {
        buf m = b;
        for (int k = 0; k < 4; k++) {
            seed = seed * 1103515245u + 12345u;
            m.d[8 + (seed >> 8) % (m.n - 8)] = (unsigned char)(seed >> 16);
        }
        unsigned char *copy = malloc(m.n);
        memcpy(copy, m.d, m.n);
        o = png_text_chunks(copy, m.n);
        assert_non_null(o);
        json_decref(o);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sampler_names),
        cmocka_unit_test(png_text_reads_chunks),
        cmocka_unit_test(png_text_survives_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
