/*
 * test_model_load - gs_model_load on the fixture and on broken, hostile and
 * wrong-kind files: each gets a clear error and nothing crashes or leaks.
 */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "gesso.h"

static gs_engine *eng;
static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gesso-test-model-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    return gs_engine_create(NULL, &eng) == GS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gs_engine_free(eng);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *tmp_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Writes a copy of the fixture, keeping tensors for which keep() says yes,
   optionally changing one tensor's first dimension (reshape_name), and
   optionally relabelling one tensor's 16-bit data as BF16 with its first value
   65536, beyond f16's range (huge_name). */
typedef int (*keep_fn)(const char *name);
static void rewrite_fixture(const char *path, keep_fn keep, const char *reshape_name,
                            const char *huge_name)
{
    st_file *src = NULL;
    gi_error err = {0};
    assert_int_equal(st_open(fixture_path("tiny-sd15.safetensors"), &src, &err), GS_OK);
    json_t *hdr = json_object();
    size_t off = 0;
    for (size_t i = 0; i < st_count(src); i++) {
        const st_tensor *t = st_at(src, i);
        if (keep && !keep(t->name))
            continue;
        json_t *shape = json_array();
        size_t nbytes = t->nbytes;
        for (int d = 0; d < t->ndim; d++) {
            int64_t v = t->shape[d];
            if (reshape_name && strcmp(t->name, reshape_name) == 0 && d == 0) {
                nbytes = nbytes / (size_t)v * (size_t)(v / 2);
                v /= 2;
            }
            json_array_append_new(shape, json_integer(v));
        }
        json_t *e = json_object();
        int huge = huge_name && strcmp(t->name, huge_name) == 0;
        json_object_set_new(e, "dtype", json_string(huge ? "BF16" : st_dtype_name(t->dtype)));
        json_object_set_new(e, "shape", shape);
        json_object_set_new(e, "data_offsets",
                            json_pack("[I,I]", (json_int_t)off, (json_int_t)(off + nbytes)));
        json_object_set_new(hdr, t->name, e);
        off += nbytes;
    }
    char *h = json_dumps(hdr, JSON_COMPACT);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t hl = strlen(h);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(hl >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(h, 1, hl, f);
    for (size_t i = 0; i < st_count(src); i++) {
        const st_tensor *t = st_at(src, i);
        if (keep && !keep(t->name))
            continue;
        size_t nbytes = t->nbytes;
        if (reshape_name && strcmp(t->name, reshape_name) == 0)
            nbytes = nbytes / (size_t)t->shape[0] * (size_t)(t->shape[0] / 2);
        if (huge_name && strcmp(t->name, huge_name) == 0) {
            static const uint8_t bf16_65536[2] = {0x80, 0x47}; /* little-endian 0x4780 */
            fwrite(bf16_65536, 1, 2, f);
            fwrite(t->data + 2, 1, nbytes - 2, f);
        } else {
            fwrite(t->data, 1, nbytes, f);
        }
    }
    fclose(f);
    free(h);
    json_decref(hdr);
    st_close(src);
}

static gs_status try_load(const char *path)
{
    gs_model *m = (gs_model *)0x1;
    gs_status st = gs_model_load(eng, path, &m);
    if (st == GS_OK)
        gs_model_free(m);
    else
        assert_null(m);
    return st;
}

static void expect_refusal(const char *path, gs_status code, const char *needle)
{
    gs_status st = try_load(path);
    const char *msg = gs_engine_errmsg(eng);
    if (st != code || !strstr(msg, needle)) {
        fprintf(stderr, "%s: status %d (%s), message '%s'; expected %d with '%s'\n", path, st,
                gs_strerror(st), msg, code, needle);
        fail();
    }
}

static void loads_fixture_and_reports_architecture(void **state)
{
    (void)state;
    gs_model *m = NULL;
    assert_int_equal(gs_model_load(eng, fixture_path("tiny-sd15.safetensors"), &m), GS_OK);
    gs_model_info info;
    gs_model_get_info(m, &info);
    assert_int_equal(info.family, GS_FAMILY_SD1);
    assert_string_equal(info.weight_dtype, "f16");
    assert_int_equal(info.unet_channels, 32);
    assert_int_equal(info.text_width, 96);
    assert_int_equal(info.latent_channels, 4);
    assert_string_equal(info.name, "tiny-sd15");
    gs_model_free(m);
}

static int drop_vae(const char *n)
{
    return strncmp(n, "first_stage_model.", 18) != 0;
}
static int only_vae(const char *n)
{
    return strncmp(n, "first_stage_model.", 18) == 0;
}
static int drop_one_unet(const char *n)
{
    return strcmp(n, "model.diffusion_model.output_blocks.3.0.in_layers.2.weight") != 0;
}
static int drop_text_layer(const char *n)
{
    return strcmp(n, "cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc1.weight") !=
           0;
}

static void broken_and_wrong_files_are_refused(void **state)
{
    (void)state;
    expect_refusal("/nonexistent/dir/model.safetensors", GS_ERR_IO, "cannot open");

    /* truncated copy */
    FILE *in = fopen(fixture_path("tiny-sd15.safetensors"), "rb");
    assert_non_null(in);
    size_t cap = 4 << 20;
    char *buf = malloc(cap);
    assert_int_equal(fread(buf, 1, cap, in), cap);
    fclose(in);
    write_bytes(tmp_path("truncated.safetensors"), buf, cap);
    expect_refusal(tmp_path("truncated.safetensors"), GS_ERR_FORMAT, "truncated");

    /* header length that lies */
    buf[5] = 0x10;
    write_bytes(tmp_path("liar.safetensors"), buf, cap);
    expect_refusal(tmp_path("liar.safetensors"), GS_ERR_FORMAT, "header");
    free(buf);

    /* pickle checkpoints, by magic and by extension */
    write_bytes(tmp_path("model.ckpt"), "PK\x03\x04junkjunk", 12);
    expect_refusal(tmp_path("model.ckpt"), GS_ERR_UNSUPPORTED, "pickle");
    write_bytes(tmp_path("renamed.safetensors"), "\x80\x02}q\x00.", 6);
    expect_refusal(tmp_path("renamed.safetensors"), GS_ERR_UNSUPPORTED, "pickle");

    /* empty file, text file */
    write_bytes(tmp_path("empty.safetensors"), "", 0);
    expect_refusal(tmp_path("empty.safetensors"), GS_ERR_FORMAT, "too short");
    write_bytes(tmp_path("text.safetensors"), "hello world, not a model at all\n", 32);
    expect_refusal(tmp_path("text.safetensors"), GS_ERR_FORMAT, "header");

    /* wrong kinds and missing or mis-shaped parts */
    rewrite_fixture(tmp_path("novae.safetensors"), drop_vae, NULL, NULL);
    expect_refusal(tmp_path("novae.safetensors"), GS_ERR_FORMAT, "VAE");
    rewrite_fixture(tmp_path("vae.safetensors"), only_vae, NULL, NULL);
    expect_refusal(tmp_path("vae.safetensors"), GS_ERR_UNSUPPORTED, "not a Stable Diffusion");
    rewrite_fixture(tmp_path("missing.safetensors"), drop_one_unet, NULL, NULL);
    expect_refusal(tmp_path("missing.safetensors"), GS_ERR_FORMAT,
                   "output_blocks.3.0.in_layers.2.weight");
    rewrite_fixture(tmp_path("missing-text.safetensors"), drop_text_layer, NULL, NULL);
    expect_refusal(tmp_path("missing-text.safetensors"), GS_ERR_FORMAT, "fc1");
    rewrite_fixture(tmp_path("shape.safetensors"), NULL,
                    "model.diffusion_model.middle_block.0.in_layers.2.weight", NULL);
    expect_refusal(tmp_path("shape.safetensors"), GS_ERR_FORMAT, "middle_block.0");

    /* a bf16 weight past f16's range: f16 engines refuse it by name, others load it */
    const char *big = "model.diffusion_model.middle_block.0.in_layers.2.weight";
    rewrite_fixture(tmp_path("huge.safetensors"), NULL, NULL, big);
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.precision = GS_PRECISION_F16;
    gs_engine *e16 = NULL;
    gs_model *m = NULL;
    assert_int_equal(gs_engine_create(&eo, &e16), GS_OK);
    assert_int_equal(gs_model_load(e16, tmp_path("huge.safetensors"), &m), GS_ERR_UNSUPPORTED);
    assert_null(m);
    assert_non_null(strstr(gs_engine_errmsg(e16), "middle_block.0.in_layers.2.weight"));
    assert_non_null(strstr(gs_engine_errmsg(e16), "beyond f16's range"));
    gs_engine_free(e16);
    eo.precision = GS_PRECISION_BF16;
    gs_engine *eb = NULL;
    assert_int_equal(gs_engine_create(&eo, &eb), GS_OK);
    assert_int_equal(gs_model_load(eb, tmp_path("huge.safetensors"), &m), GS_OK);
    gs_model_free(m);
    gs_engine_free(eb);

    /* a directory */
    expect_refusal(tmpdir, GS_ERR_IO, "not a regular file");
}

static void allocation_failures_are_reported(void **state)
{
    (void)state;
    static const long points[] = {0, 1, 2, 3, 5, 8, 13, 40, 100, 300};
    for (size_t i = 0; i < sizeof points / sizeof points[0]; i++) {
        gs_model *m = NULL;
        gi_alloc_fail_after(points[i]);
        gs_status st = gs_model_load(eng, fixture_path("tiny-sd15.safetensors"), &m);
        gi_alloc_fail_after(-1);
        if (st == GS_OK) {
            gs_model_free(m);
            continue;
        }
        assert_int_equal(st, GS_ERR_NO_MEMORY);
        assert_null(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loads_fixture_and_reports_architecture),
        cmocka_unit_test(broken_and_wrong_files_are_refused),
        cmocka_unit_test(allocation_failures_are_reported),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
