/* test_safetensors - the reader on the real fixture and on hostile files. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/weights.h"

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

/* Copies a fixture to a scratch file of this process's; returns its size. */
static size_t copy_fixture(const char *name, const char *to)
{
    FILE *in = fopen(fixture_path(name), "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    static char buf[1 << 16];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        assert_int_equal(fwrite(buf, 1, n, out), n);
        total += n;
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);
    return total;
}

/* st_read gives the bytes the mapping holds, for every tensor and for spans at
   odd offsets; a file cut short after it was opened is an I/O error for the
   reader and for a loader converting from it, not a SIGBUS. */
static void reads_match_the_mapping_and_a_shortened_file_is_an_error(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/gesso-st-read-%d.safetensors", (int)getpid());
    size_t size = copy_fixture("tiny-sd15.safetensors", path);
    st_file *f = NULL;
    gi_error err = {0};
    assert_int_equal(st_open(path, &f, &err), GS_OK);
    uint8_t *buf = malloc(size);
    assert_non_null(buf);
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        assert_int_equal(st_read(f, t, 0, t->nbytes, buf, &err), GS_OK);
        assert_memory_equal(buf, t->data, t->nbytes);
        size_t off = t->nbytes / 3, len = t->nbytes - off - t->nbytes / 5;
        assert_int_equal(st_read(f, t, off, len, buf, &err), GS_OK);
        if (len)
            assert_memory_equal(buf, t->data + off, len);
    }
    const char *name = "model.diffusion_model.input_blocks.1.1.proj_in.weight";
    const st_tensor *t = st_find(f, name);
    assert_non_null(t);
    assert_int_equal(st_read(f, t, 1, t->nbytes, buf, &err), GS_ERR_INTERNAL);

    /* cut the file off before the tensor's bytes */
    assert_int_equal(
        truncate(path, (off_t)((const uint8_t *)t->data - (const uint8_t *)st_file_bytes(f))), 0);
    assert_int_equal(st_read(f, t, 0, t->nbytes, buf, &err), GS_ERR_IO);
    assert_non_null(strstr(err.msg, "shorter than when it was opened"));
    weight_store store = {0};
    gi_error lerr = {0};
    weight_loader l = wl_begin(f, "model.diffusion_model.", &store, WL_BF16, NULL, &lerr);
    int64_t cout = t->shape[0], cin = t->shape[1];
    conv_weights cw;
    wl_conv(&l, "input_blocks.1.1.proj_in", (int)cout, (int)cin, 1, &cw);
    assert_int_equal(l.st, GS_ERR_IO);
    assert_non_null(strstr(lerr.msg, "proj_in.weight"));
    weight_store_free(&store);
    free(buf);
    st_close(f);
    unlink(path);
}

/* A layer whose rows are empty (a hostile file's [64, 0] weight) loads as
   nothing to read, in every precision, rather than dividing by its row size. */
static void empty_rows_load_as_nothing(void **state)
{
    (void)state;
    static uint8_t buf[256];
    size_t n =
        build(buf, "{\"w.weight\":{\"dtype\":\"F16\",\"shape\":[64,0],\"data_offsets\":[0,0]}}", 0);
    st_file *f = NULL;
    gi_error err = {0};
    assert_int_equal(st_open_memory(buf, n, &f, &err), GS_OK);
    for (int half = WL_F32; half <= WL_F16; half++) {
        weight_store store = {0};
        weight_loader l = wl_begin(f, "", &store, half, NULL, &err);
        linear_weights lw;
        wl_linear(&l, "w", 64, 0, 0, &lw);
        assert_int_equal(l.st, GS_OK);
        weight_store_free(&store);
    }
    st_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(f16_conversion_is_exact),
        cmocka_unit_test(opens_fixture_model),
        cmocka_unit_test(hostile_headers),
        cmocka_unit_test(truncated_fixture_is_refused),
        cmocka_unit_test(missing_file_is_io_error),
        cmocka_unit_test(reads_match_the_mapping_and_a_shortened_file_is_an_error),
        cmocka_unit_test(empty_rows_load_as_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
