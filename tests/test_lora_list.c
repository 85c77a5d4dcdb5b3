/*
 * test_lora_list - the LoRA lists (GET /v1/loras, GET /sdapi/v1/loras) over a
 * folder of hand-made files the fixture LoRAs do not cover: A1111's alias
 * (ss_output_name), its metadata order and JSON-in-a-string rule, and files
 * that must not be listed or must not break the listing (a name a job could
 * not give, a directory, a header that lies about its length, a stub).
 * tests/http/loras.cases lists the fixture folder.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

static char dir[128], base[64];

/* dir/loras/name holding an 8-byte length (len, or the header's when 0) and the header. */
static void write_lora(const char *name, const char *header, uint64_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/loras/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint64_t n = len ? len : strlen(header);
    for (int i = 0; i < 8; i++)
        fputc((int)(n >> (8 * i) & 0xff), f);
    fputs(header, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-lora-list-XXXXXX");
    if (!mkdtemp(dir) || test_link_tiny_model(dir) != 0)
        return -1;
    char loras[256];
    snprintf(loras, sizeof loras, "%s/loras", dir);
    if (mkdir(loras, 0755) != 0)
        return -1;
    /* kohya's training notes, in the order a trainer wrote them */
    write_lora("styled.safetensors",
               "{\"__metadata__\":{\"note\":\"hand-made\",\"ss_tag_frequency\":"
               "\"{\\\"1_img\\\": {\\\"red\\\": 3}}\",\"ss_output_name\":\"my_style\","
               "\"ss_broken\":\"{not json\",\"ss_resolution\":\"(512, 512)\"}}",
               0);
    write_lora("plain.safetensors", "{}", 0);
    write_lora("liar.safetensors", "{}", (uint64_t)1 << 40); /* claims a terabyte of header */
    write_lora("bad name.safetensors", "{}", 0);             /* no job could name it */
    write_lora("notes.txt", "{}", 0);
    char sub[300];
    snprintf(sub, sizeof sub, "%s/loras/folder.safetensors", dir);
    return mkdir(sub, 0755);
}

static int teardown(void **state)
{
    (void)state;
    return test_remove_tree(dir);
}

static json_t *get(const char *path)
{
    char *body = NULL;
    assert_int_equal(test_http(base, dir, "GET", path, NULL, &body), 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(j);
    return j;
}

static void lists_follow_a1111(void **state)
{
    (void)state;
    char loras[256];
    snprintf(loras, sizeof loras, "%s/loras", dir);
    const char *extra[] = {"--lora-dir", loras, NULL};
    pid_t server = test_serve_start(base, dir, extra);

    json_t *list = get("/v1/loras"), *native = json_object_get(list, "loras");
    assert_int_equal(json_array_size(native), 3);
    const char *names[] = {"liar", "plain", "styled"};
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(native, i), "name")),
                            names[i]);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(native, 1), "bytes")), 10);
    json_decref(list);

    json_t *a = get("/sdapi/v1/loras");
    assert_int_equal(json_array_size(a), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *l = json_array_get(a, i);
        assert_string_equal(json_string_value(json_object_get(l, "name")), names[i]);
        assert_true(json_is_object(json_object_get(l, "metadata")));
    }
    /* no metadata, or a header that cannot be read: the name is the alias */
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "alias")), "liar");
    assert_int_equal(json_object_size(json_object_get(json_array_get(a, 0), "metadata")), 0);
    json_t *styled = json_array_get(a, 2);
    assert_string_equal(json_string_value(json_object_get(styled, "alias")), "my_style");
    char want_path[300];
    snprintf(want_path, sizeof want_path, "%s/loras/styled.safetensors", dir);
    char real[4096];
    assert_non_null(realpath(want_path, real));
    assert_string_equal(json_string_value(json_object_get(styled, "path")), real);
    /* A1111's metadata_tags_order first (ss_resolution before ss_tag_frequency), then
       the file's order; a string opening with '{' is its JSON when it parses */
    json_t *meta = json_object_get(styled, "metadata");
    const char *order[] = {"ss_resolution", "ss_tag_frequency", "note", "ss_output_name",
                           "ss_broken"};
    size_t k = 0;
    for (void *it = json_object_iter(meta); it; it = json_object_iter_next(meta, it), k++) {
        assert_true(k < 5);
        assert_string_equal(json_object_iter_key(it), order[k]);
    }
    assert_int_equal(k, 5);
    json_t *freq = json_object_get(meta, "ss_tag_frequency");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(freq, "1_img"), "red")), 3);
    assert_string_equal(json_string_value(json_object_get(meta, "ss_broken")), "{not json");
    assert_string_equal(json_string_value(json_object_get(meta, "ss_resolution")), "(512, 512)");
    json_decref(a);
    assert_int_equal(test_serve_stop(server), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(lists_follow_a1111)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
