/*
 * test_job_inputs - a job's input images outside its stored spec: SHA-256
 * against known digests, the stored reference form of an image field (read,
 * written back, refused from clients, malformed), inline images moved into
 * the blob store and read back by the worker's path to the same pixels
 * (a changed or missing file refused), and the start-up sweep of blobs whose
 * job the store does not have.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/base64.h"
#include "job/job_inputs.h"
#include "job/job_spec.h"
#include "hash/sha256.h"
#include "queue/blob_store.h"
#include "queue/blob_sweep.h"
#include "queue/store.h"

static char dir[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-inputs-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_tree(dir);
}

static void sha256_matches_known_digests(void **state)
{
    (void)state;
    char hex[SHA256_HEX_LEN + 1];
    sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex(two_blocks, strlen(two_blocks), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    sha256_hex(million, 1000000, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
    /* the lengths where the padding takes one block or two, against sha256sum */
    static const size_t lengths[] = {1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000};
    unsigned char data[1000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    char path[200], cmd[300], line[128];
    snprintf(path, sizeof path, "%s/data", dir);
    for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
        FILE *f = fopen(path, "wb");
        assert_int_equal(fwrite(data, 1, lengths[i], f), lengths[i]);
        fclose(f);
        snprintf(cmd, sizeof cmd, "sha256sum '%s'", path);
        FILE *p = popen(cmd, "r");
        assert_non_null(fgets(line, sizeof line, p));
        pclose(p);
        line[SHA256_HEX_LEN] = '\0';
        sha256_hex(data, lengths[i], hex);
        assert_string_equal(hex, line);
        /* in pieces of every size from 1 to 70 bytes (a download's chunks): the same digest */
        for (size_t piece = 1; piece <= 70; piece++) {
            sha256_ctx c;
            sha256_init(&c);
            for (size_t at = 0; at < lengths[i]; at += piece)
                sha256_update(&c, data + at, lengths[i] - at < piece ? lengths[i] - at : piece);
            sha256_final_hex(&c, hex);
            assert_string_equal(hex, line);
        }
    }
}

static int from(job_spec *s, const char *json, const job_limits *lim, job_error *e)
{
    assert_int_equal(job_spec_init(s), 0);
    return job_spec_from_json(s, json, strlen(json), lim, e);
}

#define DIGEST "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

static void references_in_stored_specs(void **state)
{
    (void)state;
    job_spec s;
    job_error e;
    const char *stored =
        "{\"model\":\"m\",\"init_image\":{\"blob\":0,\"bytes\":5,\"sha256\":\"" DIGEST "\"}}";
    assert_int_equal(from(&s, stored, NULL, &e), 0);
    assert_true(s.init_image.stored);
    assert_null(s.init_image.base64);
    assert_int_equal(s.init_image.blob, 0);
    assert_int_equal(s.init_image.bytes, 5);
    assert_string_equal(s.init_image.sha256, DIGEST);
    assert_ptr_equal(job_spec_image(&s, 0), &s.init_image);
    assert_ptr_equal(job_spec_image(&s, 1), &s.mask); /* the inpainting mask */
    assert_null(job_spec_image(&s, 2));
    char *text = job_spec_to_json(&s);
    assert_non_null(
        strstr(text, "\"init_image\":{\"blob\":0,\"bytes\":5,\"sha256\":\"" DIGEST "\"}"));
    job_spec again;
    assert_int_equal(from(&again, text, NULL, &e), 0);
    char *text2 = job_spec_to_json(&again);
    assert_string_equal(text, text2);
    free(text), free(text2);
    job_spec_clear(&again);
    /* not read back from the blob store: nothing for the engine */
    gs_params p;
    gs_image *init = NULL;
    assert_int_equal(job_spec_to_params(&s, &p, &init), -1);
    assert_null(init);
    /* a client may not send one: the server writes references */
    assert_int_equal(job_spec_validate(&s, NULL, NULL, &e), -1);
    assert_int_equal(e.reason, JOB_ERR_WRONG_TYPE);
    assert_string_equal(e.field, "init_image");
    job_spec_clear(&s);
    static const char *const malformed[] = {
        "{\"model\":\"m\",\"init_image\":{\"blob\":0,\"bytes\":5}}",
        "{\"model\":\"m\",\"init_image\":{\"blob\":0,\"bytes\":5,\"sha256\":\"" DIGEST
        "\",\"path\":\"/etc/passwd\"}}",
        "{\"model\":\"m\",\"init_image\":{\"blob\":\"0\",\"bytes\":5,\"sha256\":\"" DIGEST "\"}}",
        "{\"model\":\"m\",\"init_image\":{\"blob\":0,\"bytes\":5,\"sha256\":\"ABC\"}}",
        "{\"model\":\"m\",\"init_image\":{\"blob\":0,\"bytes\":5,\"sha256\":"
        "\"2CF24DBA5FB0A30E26E83B2AC5B9E29E1B161E5C1FA7425E73043362938B9824\"}}",
        "{\"model\":\"m\",\"init_image\":{\"blob\":9,\"bytes\":5,\"sha256\":\"" DIGEST "\"}}",
        "{\"model\":\"m\",\"init_image\":{\"blob\":0,\"bytes\":0,\"sha256\":\"" DIGEST "\"}}",
        "{\"model\":\"m\",\"init_image\":[1]}",
    };
    for (size_t i = 0; i < sizeof malformed / sizeof malformed[0]; i++) {
        assert_int_equal(from(&s, malformed[i], NULL, &e), -1);
        assert_string_equal(e.field, "init_image");
        job_spec_clear(&s);
    }
    assert_int_equal(from(&s, "{\"model\":\"m\",\"init_image\":null}", NULL, &e), 0);
    assert_null(job_spec_image(&s, 0)->base64);
    assert_false(job_spec_image(&s, 0)->stored);
    job_spec_clear(&s);
}

static unsigned char *read_fixture(const char *name, size_t *n)
{
    FILE *f = fopen(fixture_path(name), "rb");
    assert_non_null(f);
    unsigned char *bytes = malloc(1 << 20);
    *n = fread(bytes, 1, 1 << 20, f);
    fclose(f);
    return bytes;
}

/* The spec of an img2img job carrying png inline, as a client sends it. */
static void inline_spec(job_spec *s, const unsigned char *png, size_t n)
{
    char *b64 = base64_encode(png, n);
    size_t len = strlen(b64) + 100;
    char *json = malloc(len);
    snprintf(json, len, "{\"model\":\"m\",\"init_image\":\"data:image/png;base64,%s\"}", b64);
    job_error e;
    assert_int_equal(from(s, json, NULL, &e), 0);
    assert_int_equal(job_spec_validate(s, NULL, NULL, &e), 0);
    free(json);
    free(b64);
}

static void assert_same_pixels(const gs_image *a, const gs_image *b)
{
    assert_int_equal(a->width, b->width);
    assert_int_equal(a->height, b->height);
    assert_int_equal(a->channels, b->channels);
    assert_memory_equal(a->pixels, b->pixels, (size_t)a->width * a->height * a->channels);
}

static void inputs_go_to_the_blob_store_and_back(void **state)
{
    (void)state;
    size_t n;
    unsigned char *png = read_fixture("init-img2img_euler_a.png", &n);
    char blobs_dir[200];
    snprintf(blobs_dir, sizeof blobs_dir, "%s/blobs", dir);
    blob_store *b;
    svc_error err = {0};
    assert_int_equal(blob_open(blobs_dir, &b, &err), GS_OK);
    char id[JOB_ID_LEN + 1];
    store_new_id(store_clock_ms(), id);

    /* what the engine gets from the inline image... */
    job_spec s;
    inline_spec(&s, png, n);
    gs_params p;
    gs_image *inline_init = NULL, *stored_init = NULL;
    assert_int_equal(job_spec_to_params(&s, &p, &inline_init), 0);
    /* ...moved to the blob store, the spec keeps a reference */
    assert_true(job_inputs_bytes(&s) >= n);
    assert_int_equal(job_inputs_put(b, id, &s, &err), GS_OK);
    assert_true(s.init_image.stored);
    assert_null(s.init_image.base64);
    assert_int_equal(s.init_image.bytes, n);
    char want[SHA256_HEX_LEN + 1];
    sha256_hex(png, n, want);
    assert_string_equal(s.init_image.sha256, want);
    assert_int_equal(job_inputs_bytes(&s), 0); /* nothing inline left */
    assert_int_equal(blob_bytes(b), (int64_t)n);
    char *text = job_spec_to_json(&s);
    assert_true(strlen(text) < 1000); /* the stored spec stays small */
    assert_null(strstr(text, "base64"));
    job_spec_clear(&s);
    unsigned char *data;
    size_t got;
    assert_int_equal(blob_get(b, id, BLOB_INPUT, 0, n, &data, &got, &err), GS_OK);
    assert_int_equal(got, n);
    assert_memory_equal(data, png, n);
    free(data);

    /* ...and the worker's path reads it back to the same pixels */
    job_error e;
    assert_int_equal(from(&s, text, NULL, &e), 0);
    assert_int_equal(job_inputs_load(b, id, &s, &err), GS_OK);
    assert_int_equal(job_spec_to_params(&s, &p, &stored_init), 0);
    assert_ptr_equal(p.init_image, stored_init);
    assert_same_pixels(stored_init, inline_init);
    gs_image_free(stored_init);
    job_spec_clear(&s);

    /* a file that is not the one the job was given is refused, as is none */
    unsigned char *changed = malloc(n);
    memcpy(changed, png, n);
    changed[n / 2] ^= 1;
    assert_int_equal(blob_put(b, id, BLOB_INPUT, 0, changed, n, &err), GS_OK);
    assert_int_equal(from(&s, text, NULL, &e), 0);
    assert_int_equal(job_inputs_load(b, id, &s, &err), GS_ERR_FORMAT);
    assert_non_null(strstr(err.msg, "not the file it was given"));
    job_spec_clear(&s);
    assert_int_equal(blob_delete_job(b, id, &err), GS_OK);
    assert_int_equal(from(&s, text, NULL, &e), 0);
    assert_int_equal(job_inputs_load(b, id, &s, &err), GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "missing"));
    job_spec_clear(&s);
    assert_int_equal(blob_bytes(b), 0);

    /* a put that fails leaves nothing of the job behind */
    inline_spec(&s, png, n);
    assert_int_not_equal(job_inputs_put(b, "../not-an-id", &s, &err), GS_OK);
    assert_int_equal(blob_bytes(b), 0);
    job_spec_clear(&s);
    /* a spec without images puts nothing */
    assert_int_equal(from(&s, "{\"model\":\"m\"}", NULL, &e), 0);
    assert_int_equal(job_inputs_bytes(&s), 0);
    assert_int_equal(job_inputs_put(b, id, &s, &err), GS_OK);
    assert_int_equal(job_inputs_load(b, id, &s, &err), GS_OK);
    assert_int_equal(blob_bytes(b), 0);
    job_spec_clear(&s);

    gs_image_free(inline_init);
    free(changed);
    free(text);
    free(png);
    blob_close(b);
}

/* A crash between putting a submit's inputs and queueing its job, or between
   a purge's rows and its files, leaves blobs no job owns: the sweep finds them. */
static void sweep_deletes_blobs_without_a_job(void **state)
{
    (void)state;
    char url[200], blobs_dir[200];
    snprintf(url, sizeof url, "sqlite:%s/jobs.db", dir);
    snprintf(blobs_dir, sizeof blobs_dir, "%s/sweep-blobs", dir);
    job_store *s;
    blob_store *b;
    svc_error err = {0};
    assert_int_equal(store_open(url, &s, &err), GS_OK);
    assert_int_equal(blob_open(blobs_dir, &b, &err), GS_OK);
    char kept[JOB_ID_LEN + 1], orphan[JOB_ID_LEN + 1];
    assert_int_equal(store_submit(s, "", "m", 0, "{}", 1, 1000, kept, NULL, &err), GS_OK);
    store_new_id(2000, orphan);
    assert_int_equal(blob_put(b, kept, BLOB_INPUT, 0, "keep", 4, &err), GS_OK);
    assert_int_equal(blob_put(b, kept, BLOB_IMAGE, 0, "image", 5, &err), GS_OK);
    assert_int_equal(blob_put(b, orphan, BLOB_INPUT, 0, "lost", 4, &err), GS_OK);
    assert_int_equal(blob_put(b, orphan, BLOB_IMAGE, 0, "gone", 4, &err), GS_OK);
    int removed = -1;
    assert_int_equal(blob_sweep(b, s, &removed, &err), GS_OK);
    assert_int_equal(removed, 1);
    unsigned char *data;
    size_t n;
    assert_int_equal(blob_get(b, kept, BLOB_INPUT, 0, 100, &data, &n, &err), GS_OK);
    free(data);
    assert_int_equal(blob_get(b, orphan, BLOB_INPUT, 0, 100, &data, &n, &err),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_get(b, orphan, BLOB_IMAGE, 0, 100, &data, &n, &err),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_bytes(b), 9);
    assert_int_equal(blob_sweep(b, s, &removed, &err), GS_OK);
    assert_int_equal(removed, 0);
    blob_close(b);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sha256_matches_known_digests),
        cmocka_unit_test(references_in_stored_specs),
        cmocka_unit_test(inputs_go_to_the_blob_store_and_back),
        cmocka_unit_test(sweep_deletes_blobs_without_a_job),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
