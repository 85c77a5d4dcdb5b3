/*
 * test_tokenizer - CLIP BPE ids for every prompt of tests/fixtures/tokenizer.json
 * (unicode, entities, curly quotes, numbers, a 1000-character word ...), plus
 * invalid UTF-8 and very long input.
 */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "text/tokenizer.h"

static clip_tokenizer *tok;

static int setup(void **state)
{
    (void)state;
    gs_error err = {0};
    return clip_tokenizer_create(&tok, &err) == GS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    clip_tokenizer_free(tok);
    return 0;
}

static void fixture_prompts_match(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(fixture_path("tokenizer.json"), 0, &jerr);
    assert_non_null(root);
    size_t i;
    json_t *item;
    int matched = 0, total = 0;
    json_array_foreach(root, i, item)
    {
        const char *prompt = json_string_value(json_object_get(item, "prompt"));
        json_t *want = json_object_get(item, "ids");
        json_t *want_sd = json_object_get(item, "sd_ids");
        int32_t *ids;
        size_t n;
        gs_error err = {0};
        assert_int_equal(clip_tokenize(tok, prompt, &ids, &n, &err), GS_OK);
        int ok = n == json_array_size(want);
        for (size_t k = 0; ok && k < n; k++)
            ok = ids[k] == json_integer_value(json_array_get(want, k));
        /* SD's 77-token form: BOS, the first 75 ids, EOS, EOS padding */
        assert_int_equal(json_array_size(want_sd), 77);
        assert_int_equal(json_integer_value(json_array_get(want_sd, 0)), CLIP_BOS);
        for (size_t k = 0; ok && k < 76; k++) {
            long expect = k < n && k < 75 ? ids[k] : CLIP_EOS;
            ok = json_integer_value(json_array_get(want_sd, k + 1)) == expect;
        }
        if (!ok) {
            fprintf(stderr, "mismatch for %s: got", prompt);
            for (size_t k = 0; k < n && k < 20; k++)
                fprintf(stderr, " %d", ids[k]);
            fprintf(stderr, " (%zu ids, want %zu)\n", n, json_array_size(want));
        }
        matched += ok;
        total++;
        gs_free(ids);
    }
    printf("tokenizer: %d of %d fixture prompts match exactly\n", matched, total);
    assert_int_equal(matched, total);
    json_decref(root);
}

static void odd_input_is_handled(void **state)
{
    (void)state;
    gs_error err = {0};
    int32_t *ids;
    size_t n;
    /* invalid UTF-8: replacement characters, no crash */
    assert_int_equal(clip_tokenize(tok, "bad \xff\xfe utf8 \xc3", &ids, &n, &err), GS_OK);
    assert_true(n >= 2);
    gs_free(ids);
    /* empty and whitespace-only */
    assert_int_equal(clip_tokenize(tok, " \t\n ", &ids, &n, &err), GS_OK);
    assert_int_equal(n, 0);
    gs_free(ids);
    /* 100k characters, including one 50k-letter word (BPE must not be quadratic) */
    size_t len = 100000;
    char *big = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        big[i] = i < 50000 ? "abcdefgh"[i % 8] : (i % 6 == 0 ? ' ' : "xyzw"[i % 4]);
    big[len] = '\0';
    assert_int_equal(clip_tokenize(tok, big, &ids, &n, &err), GS_OK);
    assert_true(n > 1000);
    gs_free(ids);
    free(big);
    /* special tokens in the text are recognised */
    assert_int_equal(clip_tokenize(tok, "a <|endoftext|> b", &ids, &n, &err), GS_OK);
    assert_int_equal(n, 3);
    assert_int_equal(ids[1], CLIP_EOS);
    gs_free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fixture_prompts_match),
        cmocka_unit_test(odd_input_is_handled),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
