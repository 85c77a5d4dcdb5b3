/* test_safetensors - the reader on the real fixture and on hostile files. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every f16 value (normals, subnormals, zeros, infinities) converts to the f32
   it denotes, whichever kernel this CPU takes (F16C or the portable bit
   trick), at every offset of a span (the vector body and its scalar tail);
   NaNs stay NaN. The reference is computed from the fields. */
static void f16_conversion_is_exact(void **state)
{
    (void)state;
    enum { N = 65536 + 7 };
    static uint16_t bits[N];
    static float out[N];
    for (int i = 0; i < N; i++)
        bits[i] = (uint16_t)(i % 65536);
    st_tensor t = {.name = "all",
                   .dtype = ST_F16,
                   .ndim = 1,
                   .shape = {N},
                   .numel = N,
                   .data = (const uint8_t *)bits,
                   .nbytes = sizeof bits};
    for (size_t first = 0; first < 3; first++) {
        gi_error err = {0};
        assert_int_equal(st_span_to_f32(&t, first, N - first, out, &err), GS_OK);
        for (size_t i = 0; i < N - first; i++) {
            uint16_t h = bits[first + i];
            int e = (h >> 10) & 31, m = h & 1023;
            float want = e == 0   ? ldexpf((float)m, -24)
                         : e < 31 ? ldexpf((float)(m + 1024), e - 25)
                                  : (m ? NAN : INFINITY);
            want = h & 0x8000 ? -want : want;
            if (isnan(want))
                assert_true(isnan(out[i]));
            else
                assert_memory_equal(&out[i], &want, sizeof want); /* -0 too */
        }
    }
}

static void opens_fixture_model(void **state)
{
    (void)state;
    st_file *f = NULL;
    gi_error err = {0};
    assert_int_equal(st_open(fixture_path("tiny-sd15.safetensors"), &f, &err), GS_OK);
    assert_true(st_count(f) > 100);
    const st_tensor *t = st_find(f, "model.diffusion_model.input_blocks.0.0.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F16);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[1], 4);
    assert_null(st_find(f, "no.such.tensor"));
    st_close(f);
}

/* Builds a file: 8-byte length + header + data. */
static size_t build(uint8_t *buf, const char *header, size_t data_bytes)
{
    size_t h = strlen(header);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, 0, data_bytes);
    return 8 + h + data_bytes;
}

static gs_status open_buf(const uint8_t *buf, size_t n, gi_error *err)
{
    st_file *f = NULL;
    gs_status st = st_open_memory(buf, n, &f, err);
    if (st == GS_OK)
        st_close(f);
    else
        assert_null(f);
    return st;
}

static void hostile_headers(void **state)
{
    (void)state;
    static uint8_t buf[1 << 16];
    gi_error err;
    struct {
        const char *header;
        size_t data;
        const char *expect; /* substring of the message */
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, NULL},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "truncated"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "need"},
        {"{\"a\":{\"dtype\":\"Q9\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "unknown dtype"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "invalid"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],"
         "\"data_offsets\":[0,8]}}",
         8, "overflow"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "data_offsets"},
        {"{\"a\":[1,2]}", 8, "not a JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "JSON"},
        {"[1,2,3]", 0, "JSON object"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
         8, "JSON"},
        {"{\"__metadata__\":{\"k\":5}}", 0, "metadata"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         "dimensions"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = build(buf, cases[i].header, cases[i].data);
        gs_status st = open_buf(buf, n, &err);
        if (!cases[i].expect) {
            assert_int_equal(st, GS_OK);
            continue;
        }
        if (st != GS_ERR_FORMAT || !strstr(err.msg, cases[i].expect)) {
            fprintf(stderr, "case %zu: status %d, message '%s', expected '%s'\n", i, st, err.msg,
                    cases[i].expect);
            fail();
        }
    }
    /* header length beyond the file, absurd header length, tiny files */
    size_t n = build(buf, "{}", 0);
    buf[0] = 200;
    assert_int_equal(open_buf(buf, n, &err), GS_ERR_FORMAT);
    buf[7] = 0x7f;
    assert_int_equal(open_buf(buf, n, &err), GS_ERR_FORMAT);
    assert_int_equal(open_buf(buf, 3, &err), GS_ERR_FORMAT);
}

static void truncated_fixture_is_refused(void **state)
{
    (void)state;
    FILE *in = fopen(fixture_path("tiny-sd15.safetensors"), "rb");
    assert_non_null(in);
    size_t cap = 1 << 20;
    uint8_t *buf = malloc(cap);
    size_t n = fread(buf, 1, cap, in);
    fclose(in);
    assert_int_equal(n, cap);
    gi_error err = {0};
    assert_int_equal(open_buf(buf, n, &err), GS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "truncated"));
    free(buf);
}

static void missing_file_is_io_error(void **state)
{
    (void)state;
    st_file *f = NULL;
    gi_error err = {0};
    assert_int_equal(st_open("/nonexistent/model.safetensors", &f, &err), GS_ERR_IO);
    assert_null(f);
    assert_non_null(strstr(err.msg, "cannot open"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(f16_conversion_is_exact),  cmocka_unit_test(opens_fixture_model),
        cmocka_unit_test(hostile_headers),          cmocka_unit_test(truncated_fixture_is_refused),
        cmocka_unit_test(missing_file_is_io_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
