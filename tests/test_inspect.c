/*
 * test_inspect - gs_checkpoint_inspect: the facts of the fixture, of prepared
 * files, of a safetensors file that is not Stable Diffusion, and the errors of
 * truncated, foreign and missing files, all from the header alone.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "gesso.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gesso-test-inspect-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A safetensors file: header as given, then data_bytes of zeros. */
static void write_safetensors(const char *path, const char *header, size_t data_bytes)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t n = strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(n >> (8 * i));
    assert_int_equal(fwrite(len, 1, 8, f), 8);
    assert_int_equal(fwrite(header, 1, n, f), n);
    for (size_t i = 0; i < data_bytes; i++)
        assert_int_not_equal(fputc(0, f), EOF);
    assert_int_equal(fclose(f), 0);
}

static size_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return (size_t)sb.st_size;
}

/* Asserts that inspecting path fails with code and a message holding needle,
   and leaves *out zeroed. */
static void expect_error(const char *path, gs_status code, const char *needle)
{
    gs_checkpoint_info info;
    memset(&info, 0xab, sizeof info);
    char msg[512] = "unchanged";
    gs_status st = gs_checkpoint_inspect(path, &info, msg, sizeof msg);
    if (st != code || !strstr(msg, needle)) {
        fprintf(stderr, "%s: status %d (%s), message '%s'; expected %d with '%s'\n", path, st,
                gs_strerror(st), msg, code, needle);
        fail();
    }
    gs_checkpoint_info zero;
    memset(&zero, 0, sizeof zero);
    assert_memory_equal(&info, &zero, sizeof info);
}

/* The numbers were counted from the fixture's header by a separate script
   (tensor shapes by name prefix), not by the code under test. */
static void fixture_facts(void **state)
{
    (void)state;
    const char *path = fixture_path("tiny-sd15.safetensors");
    gs_checkpoint_info info;
    char msg[256] = "unchanged";
    assert_int_equal(gs_checkpoint_inspect(path, &info, msg, sizeof msg), GS_OK);
    assert_string_equal(msg, "");
    assert_int_equal(info.family, GS_FAMILY_SD1);
    assert_string_equal(info.family_name, "sd1");
    assert_string_equal(info.weight_dtype, "f16");
    assert_int_equal(info.file_bytes, file_size(path));
    assert_int_equal(info.tensors, 987);
    assert_int_equal(info.unet_params, 8685156);
    assert_int_equal(info.unet_bytes, 17370312);
    assert_int_equal(info.text_params, 5086272); /* position ids are no parameters */
    assert_int_equal(info.text_bytes, 10173160);
    assert_int_equal(info.vae_params, 5252487);
    assert_int_equal(info.vae_bytes, 10504974);
    assert_false(info.prepared);
    assert_null(info.prepared_precision);

    /* the same answers as a load, which reads every weight */
    gs_engine *eng = NULL;
    gs_model *m = NULL;
    assert_int_equal(gs_engine_create(NULL, &eng), GS_OK);
    assert_int_equal(gs_model_load(eng, path, &m), GS_OK);
    gs_model_info mi;
    gs_model_get_info(m, &mi);
    assert_int_equal(info.family, mi.family);
    assert_string_equal(info.family_name, mi.family_name);
    assert_string_equal(info.weight_dtype, mi.weight_dtype);
    assert_int_equal(info.file_bytes, mi.file_bytes);
    gs_model_free(m);
    gs_engine_free(eng);
}

static void prepared_facts(gs_precision precision, const char *name, const char *dtype)
{
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.precision = precision;
    gs_engine *eng = NULL;
    gs_status st = gs_engine_create(&eo, &eng);
    if (st == GS_ERR_UNSUPPORTED) {
        test_note_skip("test_inspect prepared %s file: no %s engine on this CPU", dtype, dtype);
        return;
    }
    assert_int_equal(st, GS_OK);
    const char *path = tmp_path(name);
    assert_int_equal(gs_checkpoint_prepare(eng, fixture_path("tiny-sd15.safetensors"), path),
                     GS_OK);
    gs_engine_free(eng);

    gs_checkpoint_info info;
    assert_int_equal(gs_checkpoint_inspect(path, &info, NULL, 0), GS_OK);
    assert_int_equal(info.family, GS_FAMILY_SD1);
    assert_true(info.prepared);
    assert_non_null(info.prepared_precision);
    assert_string_equal(info.prepared_precision, dtype);
    assert_string_equal(info.weight_dtype, dtype); /* the UNet's GEMM weights are converted */
    assert_int_equal(info.file_bytes, file_size(path));
    /* every weight is there in another dtype and order, none added or lost
       (the position ids, read by no loader, are not written) */
    assert_int_equal(info.unet_params, 8685156);
    assert_int_equal(info.text_params, 5086272);
    assert_int_equal(info.vae_params, 5252487);
    assert_int_equal(info.tensors, 986);
}

static void prepared_files(void **state)
{
    (void)state;
    prepared_facts(GS_PRECISION_F32, "prep-f32.safetensors", "f32");
    prepared_facts(GS_PRECISION_BF16, "prep-bf16.safetensors", "bf16");

    /* the mark alone says it, on CPUs that cannot write a bf16 file too */
    const char *path = tmp_path("marked-bf16.safetensors");
    write_safetensors(path,
                      "{\"__metadata__\":{\"gesso.prepared\":\"bf16\",\"gesso.layout\":\"1\"},"
                      "\"w\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}",
                      4);
    gs_checkpoint_info info;
    assert_int_equal(gs_checkpoint_inspect(path, &info, NULL, 0), GS_OK);
    assert_true(info.prepared);
    assert_string_equal(info.prepared_precision, "bf16");
}

/* A valid safetensors file holding something else is a fact, not an error. */
static void other_safetensors(void **state)
{
    (void)state;
    const char *path = tmp_path("classifier.safetensors");
    write_safetensors(path,
                      "{\"__metadata__\":{\"format\":\"pt\"},"
                      "\"fc.weight\":{\"dtype\":\"BF16\",\"shape\":[10,100],"
                      "\"data_offsets\":[0,2000]},"
                      "\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[2000,2040]},"
                      "\"steps\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[2040,2048]}}",
                      2048);
    gs_checkpoint_info info;
    char msg[256];
    assert_int_equal(gs_checkpoint_inspect(path, &info, msg, sizeof msg), GS_OK);
    assert_int_equal(info.family, GS_FAMILY_UNKNOWN);
    assert_string_equal(info.family_name, "unknown");
    assert_string_equal(info.weight_dtype, "bf16"); /* most of the file's bytes */
    assert_int_equal(info.tensors, 3);
    assert_int_equal(info.file_bytes, file_size(path));
    assert_int_equal(info.unet_params + info.text_params + info.vae_params, 0);
    assert_int_equal(info.unet_bytes + info.text_bytes + info.vae_bytes, 0);
    assert_false(info.prepared);

    /* a model gesso cannot run yet is not mistaken for one it can */
    const char *xl = tmp_path("sdxl-like.safetensors");
    write_safetensors(xl,
                      "{\"conditioner.embedders.0.transformer.text_model.embeddings."
                      "token_embedding.weight\":{\"dtype\":\"F16\",\"shape\":[4,2],"
                      "\"data_offsets\":[0,16]},"
                      "\"model.diffusion_model.input_blocks.0.0.weight\":{\"dtype\":\"F16\","
                      "\"shape\":[2,1,1,1],\"data_offsets\":[16,20]},"
                      "\"first_stage_model.decoder.conv_in.weight\":{\"dtype\":\"F16\","
                      "\"shape\":[2,1,1,1],\"data_offsets\":[20,24]}}",
                      24);
    assert_int_equal(gs_checkpoint_inspect(xl, &info, NULL, 0), GS_OK);
    assert_int_equal(info.family, GS_FAMILY_UNKNOWN);
    assert_string_equal(info.weight_dtype, "f16");
}

static void broken_and_foreign_files(void **state)
{
    (void)state;
    /* the fixture cut short: the header promises data that is not there */
    FILE *in = fopen(fixture_path("tiny-sd15.safetensors"), "rb");
    assert_non_null(in);
    size_t cap = 4 << 20;
    char *buf = malloc(cap);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, cap, in), cap);
    fclose(in);
    write_bytes(tmp_path("truncated.safetensors"), buf, cap);
    expect_error(tmp_path("truncated.safetensors"), GS_ERR_FORMAT, "truncated");
    /* cut inside the header */
    write_bytes(tmp_path("short-header.safetensors"), buf, 1000);
    expect_error(tmp_path("short-header.safetensors"), GS_ERR_FORMAT, "truncated");
    free(buf);

    write_bytes(tmp_path("text.safetensors"), "hello world, not a model at all\n", 32);
    expect_error(tmp_path("text.safetensors"), GS_ERR_FORMAT, "header");
    static const unsigned char png[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                        0,    0,   0,   13,  'I',  'H',  'D',  'R'};
    write_bytes(tmp_path("image.png"), png, sizeof png);
    expect_error(tmp_path("image.png"), GS_ERR_FORMAT, "not a safetensors file");
    write_bytes(tmp_path("empty.safetensors"), "", 0);
    expect_error(tmp_path("empty.safetensors"), GS_ERR_FORMAT, "too short");
    write_safetensors(tmp_path("bad-json.safetensors"), "{\"a\":", 0);
    expect_error(tmp_path("bad-json.safetensors"), GS_ERR_FORMAT, "JSON");

    /* pickles are refused unread, as a load refuses them */
    write_bytes(tmp_path("model.ckpt"), "PK\x03\x04junkjunk", 12);
    expect_error(tmp_path("model.ckpt"), GS_ERR_UNSUPPORTED, "pickle");
    write_bytes(tmp_path("renamed.safetensors"), "\x80\x02}q\x00.", 6);
    expect_error(tmp_path("renamed.safetensors"), GS_ERR_UNSUPPORTED, "pickle");

    expect_error("/nonexistent/dir/model.safetensors", GS_ERR_IO, "cannot open");
    expect_error(tmpdir, GS_ERR_IO, "not a regular file");

    gs_checkpoint_info info;
    assert_int_equal(gs_checkpoint_inspect(NULL, &info, NULL, 0), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(gs_checkpoint_inspect(fixture_path("tiny-sd15.safetensors"), NULL, NULL, 0),
                     GS_ERR_INVALID_ARGUMENT);
    /* a message that does not fit is cut, not overrun */
    char small[8];
    assert_int_equal(gs_checkpoint_inspect("/nonexistent", &info, small, sizeof small), GS_ERR_IO);
    assert_int_equal(strlen(small), sizeof small - 1);
}

static void allocation_failures_are_reported(void **state)
{
    (void)state;
    int failed = 0;
    for (long n = 0; n < 20; n++) {
        gs_checkpoint_info info;
        char msg[256];
        gi_alloc_fail_after(n);
        gs_status st =
            gs_checkpoint_inspect(fixture_path("tiny-sd15.safetensors"), &info, msg, sizeof msg);
        gi_alloc_fail_after(-1);
        if (st == GS_OK)
            continue;
        failed++;
        assert_int_equal(st, GS_ERR_NO_MEMORY);
        assert_non_null(strstr(msg, "out of memory"));
    }
    assert_true(failed > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixture_facts),
        cmocka_unit_test(prepared_files),
        cmocka_unit_test(other_safetensors),
        cmocka_unit_test(broken_and_foreign_files),
        cmocka_unit_test(allocation_failures_are_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
