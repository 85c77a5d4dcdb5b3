/*
 * test_prompt - A1111 prompt semantics: the emphasis parse, chunking with BREAK
 * and the comma backtrack, and the mean-preserving weighting. Expected values
 * follow A1111's parse_prompt_attention / tokenize_line rules.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "text/prompt.h"

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

typedef struct expect_seg {
    const char *text;
    double weight;
} expect_seg;

static void check_parse(const char *prompt, const expect_seg *want, int n_want)
{
    prompt_segment *s;
    int n;
    gs_error err = {0};
    assert_int_equal(prompt_parse(prompt, &s, &n, &err), GS_OK);
    int ok = n == n_want;
    for (int i = 0; ok && i < n; i++)
        ok = strcmp(s[i].text, want[i].text) == 0 && fabs(s[i].weight - want[i].weight) < 1e-12;
    if (!ok) {
        fprintf(stderr, "parse of '%s':", prompt);
        for (int i = 0; i < n; i++)
            fprintf(stderr, " ['%s' %.17g]", s[i].text, s[i].weight);
        fprintf(stderr, "\n");
        fail();
    }
    prompt_segments_free(s, n);
}

#define CHECK(prompt, ...)                                                                         \
    do {                                                                                           \
        const expect_seg w_[] = {__VA_ARGS__};                                                     \
        check_parse(prompt, w_, (int)(sizeof w_ / sizeof w_[0]));                                  \
    } while (0)

static void emphasis_parse(void **state)
{
    (void)state;
    CHECK("(masterpiece:1.2), [blurry], ((detailed))", {"masterpiece", 1.2}, {", ", 1.0},
          {"blurry", 1 / 1.1}, {", ", 1.0}, {"detailed", 1.1 * 1.1});
    CHECK("a (b (c) d) e", {"a ", 1.0}, {"b ", 1.1}, {"c", 1.1 * 1.1}, {" d", 1.1}, {" e", 1.0});
    CHECK("\\(x\\) \\[y\\] a\\\\b", {"(x) [y] a\\b", 1.0});
    CHECK("(unclosed [also", {"unclosed ", 1.1}, {"also", 1.1 / 1.1});
    CHECK("a BREAK b", {"a", 1.0}, {"BREAK", -1.0}, {"b", 1.0});
    CHECK("aBREAK BREAKb", {"aBREAK BREAKb", 1.0});
    CHECK("no bracket:1.2) here", {"no bracket:1.2) here", 1.0});
    CHECK("(x:0.5) (y: 1.5 ) [[z]]", {"x", 0.5}, {" ", 1.0}, {"y", 1.5}, {" ", 1.0},
          {"z", 1 / 1.1 / 1.1});
    CHECK("a:b", {"a:b", 1.0});
    CHECK("stray ) and ]", {"stray ) and ]", 1.0});
    CHECK("(a:1.2.3)", {"a:1.2.3", 1.1});
    CHECK("", {"", 1.0});
    CHECK("(a)(a)", {"aa", 1.1});
}

static int32_t single_id(const char *word)
{
    int32_t *ids;
    size_t n;
    gs_error err = {0};
    assert_int_equal(clip_tokenize(tok, word, &ids, &n, &err), GS_OK);
    assert_int_equal(n, 1);
    int32_t id = ids[0];
    gs_free(ids);
    return id;
}

static void append(char *buf, size_t size, const char *s)
{
    size_t a = strlen(buf), b = strlen(s);
    assert_true(a + b < size);
    memcpy(buf + a, s, b + 1);
}

static void chunking(void **state)
{
    (void)state;
    gs_error err = {0};
    prompt_chunks pc;
    int32_t cat = single_id("cat"), dog = single_id("dog");

    /* empty prompt: one chunk of BOS + EOS padding */
    assert_int_equal(prompt_to_chunks(tok, "", &pc, &err), GS_OK);
    assert_int_equal(pc.n_chunks, 1);
    assert_int_equal(pc.ids[0], CLIP_BOS);
    for (int i = 1; i < 77; i++)
        assert_int_equal(pc.ids[i], CLIP_EOS);
    prompt_chunks_free(&pc);

    /* weights land on their tokens; BOS/EOS/padding keep 1 */
    assert_int_equal(prompt_to_chunks(tok, "(cat:1.5) [dog]", &pc, &err), GS_OK);
    assert_int_equal(pc.ids[1], cat);
    assert_int_equal(pc.ids[2], dog);
    assert_float_equal(pc.weights[1], 1.5f, 1e-6);
    assert_float_equal(pc.weights[2], (float)(1 / 1.1), 1e-6);
    assert_float_equal(pc.weights[0], 1.0f, 0);
    assert_float_equal(pc.weights[3], 1.0f, 0);
    prompt_chunks_free(&pc);

    /* BREAK starts a new chunk */
    assert_int_equal(prompt_to_chunks(tok, "cat BREAK dog", &pc, &err), GS_OK);
    assert_int_equal(pc.n_chunks, 2);
    assert_int_equal(pc.ids[1], cat);
    assert_int_equal(pc.ids[2], CLIP_EOS);
    assert_int_equal(pc.ids[77], CLIP_BOS);
    assert_int_equal(pc.ids[78], dog);
    prompt_chunks_free(&pc);

    /* 80 plain tokens: 75 + 5, nothing lost */
    char buf[4096] = "";
    for (int i = 0; i < 80; i++)
        append(buf, sizeof buf, "cat ");
    assert_int_equal(prompt_to_chunks(tok, buf, &pc, &err), GS_OK);
    assert_int_equal(pc.n_chunks, 2);
    assert_int_equal(pc.ids[75], cat);
    assert_int_equal(pc.ids[76], CLIP_EOS);
    for (int i = 1; i <= 5; i++)
        assert_int_equal(pc.ids[77 + i], cat);
    assert_int_equal(pc.ids[77 + 6], CLIP_EOS);
    prompt_chunks_free(&pc);

    /* comma backtrack: 70 cats, a comma, 10 dogs -> the dogs move to chunk 2 */
    buf[0] = '\0';
    for (int i = 0; i < 70; i++)
        append(buf, sizeof buf, "cat ");
    append(buf, sizeof buf, ", ");
    for (int i = 0; i < 10; i++)
        append(buf, sizeof buf, "dog ");
    assert_int_equal(prompt_to_chunks(tok, buf, &pc, &err), GS_OK);
    assert_int_equal(pc.n_chunks, 2);
    assert_int_equal(pc.ids[70], cat);
    assert_int_equal(pc.ids[71], CLIP_COMMA);
    for (int i = 72; i < 77; i++)
        assert_int_equal(pc.ids[i], CLIP_EOS);
    for (int i = 1; i <= 10; i++)
        assert_int_equal(pc.ids[77 + i], dog);
    assert_int_equal(pc.ids[77 + 11], CLIP_EOS);
    prompt_chunks_free(&pc);

    /* a comma further back than 20 tokens does not move anything */
    buf[0] = '\0';
    for (int i = 0; i < 40; i++)
        append(buf, sizeof buf, "cat ");
    append(buf, sizeof buf, ", ");
    for (int i = 0; i < 40; i++)
        append(buf, sizeof buf, "dog ");
    assert_int_equal(prompt_to_chunks(tok, buf, &pc, &err), GS_OK);
    assert_int_equal(pc.n_chunks, 2);
    assert_int_equal(pc.ids[41], CLIP_COMMA);
    assert_int_equal(pc.ids[75], dog);
    assert_int_equal(pc.ids[77 + 1], dog);
    prompt_chunks_free(&pc);
}

static void weighting_keeps_the_mean(void **state)
{
    (void)state;
    float z[3 * 2] = {1, 2, 3, 4, 5, 6};
    float w[3] = {1.0f, 2.0f, 0.5f};
    prompt_apply_weights(z, w, 3, 2);
    /* weighted: 1 2 6 8 2.5 3 (sum 22.5); the original sum is 21 */
    float s = 21.0f / 22.5f;
    const float want[6] = {1 * s, 2 * s, 6 * s, 8 * s, 2.5f * s, 3 * s};
    for (int i = 0; i < 6; i++)
        assert_float_equal(z[i], want[i], 1e-6);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emphasis_parse),
        cmocka_unit_test(chunking),
        cmocka_unit_test(weighting_keeps_the_mean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
