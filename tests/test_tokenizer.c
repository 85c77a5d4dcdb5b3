/* test_tokenizer - CLIP BPE ids against tokenizer.json and the golden ids, cleaning rules,
 * hostile input and allocation failures. */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "text/tokenizer.h"

static clip_tokenizer *tok;

static int setup(void **state)
{
    (void)state;
    gi_error err = {0};
    if (clip_tokenizer_create(&tok, &err) != GS_OK) {
        fprintf(stderr, "clip_tokenizer_create: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    clip_tokenizer_free(tok);
    return 0;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Tokenizes text; fails the test on error. */
static int32_t *tokenize(const char *text, size_t *n)
{
    int32_t *ids = NULL;
    gi_error err = {0};
    gs_status st = clip_tokenize(tok, text, &ids, n, &err);
    if (st != GS_OK)
        fail_msg("clip_tokenize(\"%.40s\"): %s", text, err.msg);
    return ids;
}

static void assert_same_tokens(const char *a, const char *b)
{
    size_t na, nb;
    int32_t *ia = tokenize(a, &na), *ib = tokenize(b, &nb);
    if (na != nb || (na && memcmp(ia, ib, na * sizeof *ia) != 0)) {
        fprintf(stderr, "\"%s\" (%zu ids) != \"%s\" (%zu ids)\n", a, na, b, nb);
        fail();
    }
    gi_free(ia);
    gi_free(ib);
}

static void assert_tokens(const char *text, const int32_t *want, size_t nwant)
{
    size_t n;
    int32_t *ids = tokenize(text, &n);
    assert_int_equal(n, nwant);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ids[i], want[i]);
    gi_free(ids);
}

/* ---- fixtures ---- */

static void matches_every_fixture_prompt(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(fixture_path("tokenizer.json"), 0, &jerr);
    assert_non_null(root);
    size_t total = json_array_size(root), exact = 0;
    assert_true(total >= 18);
    for (size_t k = 0; k < total; k++) {
        json_t *e = json_array_get(root, k);
        const char *prompt = json_string_value(json_object_get(e, "prompt"));
        json_t *want = json_object_get(e, "ids"), *want_sd = json_object_get(e, "sd_ids");
        size_t n;
        int32_t *ids = tokenize(prompt, &n);
        int ok = n == json_array_size(want);
        for (size_t i = 0; ok && i < n; i++)
            ok = ids[i] == json_integer_value(json_array_get(want, i));
        /* SD's 77-token form: BOS, ids[:75], EOS, EOS padding. */
        assert_int_equal(json_array_size(want_sd), 77);
        for (size_t i = 0; ok && i < 77; i++) {
            int32_t sd = i == 0 ? CLIP_BOS : (i - 1 < n && i - 1 < 75 ? ids[i - 1] : CLIP_EOS);
            ok = sd == json_integer_value(json_array_get(want_sd, i));
        }
        if (!ok)
            fprintf(stderr, "fixture prompt %zu differs: \"%s\"\n", k, prompt);
        exact += (size_t)ok;
        gi_free(ids);
    }
    fprintf(stderr, "tokenizer.json: %zu/%zu prompts match exactly\n", exact, total);
    assert_int_equal(exact, total);
    json_decref(root);
}

static void matches_golden_text_ids(void **state)
{
    (void)state;
    static const char *const prompts[] = {
        "a photo of an astronaut riding a horse on mars",
        "A lighthouse at dusk, oil painting, highly detailed",
        "masterpiece, best quality, 1girl, solo, long hair, looking at viewer",
        "  multiple   spaces\tand\ttabs  ",
    };
    for (int k = 0; k < 4; k++) {
        char name[32];
        snprintf(name, sizeof name, "text.%d.ids", k);
        const st_tensor *t = st_find(golden(), name);
        assert_non_null(t);
        assert_int_equal(t->dtype, ST_I32);
        assert_int_equal(t->numel, 77);
        size_t n;
        int32_t *ids = tokenize(prompts[k], &n);
        for (size_t i = 0; i < 77; i++) {
            int32_t want;
            memcpy(&want, t->data + 4 * i, 4);
            int32_t got = i == 0 ? CLIP_BOS : (i - 1 < n ? ids[i - 1] : CLIP_EOS);
            assert_int_equal(got, want);
        }
        gi_free(ids);
    }
}

/* ---- cleaning rules ---- */

static void cleans_like_clip(void **state)
{
    (void)state;
    /* HTML references: named, numeric, legacy prefix, ftfy's upper-case names. */
    assert_same_tokens("&lt;b&gt; &quot;x&quot; &apos;y&apos;", "<b> \"x\" 'y'");
    assert_same_tokens("&#65;&#x42;&#X43; caf&eacute; na&iuml;ve", "abc café naïve");
    assert_same_tokens("&ampx &copy2024", "&x ©2024");
    assert_same_tokens("CAF&EACUTE; STRA&SZLIG;E", "café strasse");
    assert_same_tokens("a&nbsp;b &#160;c", "a b c");
    assert_same_tokens("&#0; &#x110000; &#1;", "\xef\xbf\xbd \xef\xbf\xbd");
    assert_same_tokens("&#150; &#x80;", "\xe2\x80\x93 \xe2\x82\xac"); /* cp1252 quirks */
    assert_same_tokens("&unknown; & &#; &#x;", "&unknown; & &#; &#x;");
    /* ftfy unescapes to a fixed point unless the text has a '<'; then only html.unescape
     * twice applies. */
    assert_same_tokens("&amp;amp;amp;lt;", "<");
    assert_same_tokens("< &amp;amp;amp;lt;", "< & amp ; lt ;");
    /* ftfy: ligatures, widths, quotes, C1 controls, terminal escapes, controls, NFC. */
    assert_same_tokens("\xef\xac\x81ne \xef\xac\x82ow", "fine flow");
    assert_same_tokens("\xef\xbc\xa1\xef\xbc\xa2\xef\xbc\xa3\xe3\x80\x80\xef\xbc\x91", "abc 1");
    assert_same_tokens("\xe2\x80\x9cquoted\xe2\x80\x9d it\xe2\x80\x99s", "\"quoted\" it's");
    assert_same_tokens("\xc2\x93quote\xc2\x94 \xc2\x80", "\"quote\" \xe2\x82\xac");
    assert_same_tokens("\x1b[1;31mred\x1b[0m text", "red text");
    assert_same_tokens("a\x01\x7f"
                       "b \xef\xbb\xbf"
                       "c",
                       "ab c");
    assert_same_tokens("cafe\xcc\x81", "caf\xc3\xa9");
    /* Whitespace: every Unicode space collapses, ends are stripped. */
    assert_same_tokens("\xe2\x80\x83 a\r\n\x0b b\xc2\xa0\xe3\x80\x80 c \xe2\x80\xa8", "a b c");
    /* Lower case: full mapping with final sigma, as Python's str.lower(). */
    assert_same_tokens("\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xc3\x84PFEL", "\xce\xbf\xce\xb4\xce\xbf"
                                                                        "\xcf\x82 \xc3\xa4pfel");
    /* Python (unlike libunistring) sees the apostrophe as case-ignorable: no final sigma
     * before "'s"; and U+0130 lowers to "i" + combining dot. */
    assert_same_tokens("\xce\x9f\xce\x94\xce\x9f\xce\xa3'S", "\xce\xbf\xce\xb4\xce\xbf\xcf\x83's");
    assert_same_tokens("\xc4\xb0stanbul", "i\xcc\x87stanbul");
}

static void pre_tokenizer_rules(void **state)
{
    (void)state;
    /* Contractions split only at the apostrophe; numbers one digit at a time. */
    assert_same_tokens("don't", "don 't");
    assert_same_tokens("it's", "it 's");
    assert_same_tokens("2024", "2 0 2 4");
    /* Special tokens are recognised in the text, as CLIP does. */
    static const int32_t specials[] = {320, CLIP_EOS, 320};
    assert_tokens("a<|endoftext|>a", specials, 3);
    static const int32_t bos[] = {CLIP_BOS};
    assert_tokens("<|STARTOFTEXT|>", bos, 1);
    size_t n;
    int32_t *ids = tokenize("", &n);
    assert_int_equal(n, 0);
    gi_free(ids);
    ids = tokenize(" \t\n ", &n);
    assert_int_equal(n, 0);
    gi_free(ids);
}

/* ---- hostile and large input ---- */

static void invalid_utf8_reads_as_replacement(void **state)
{
    (void)state;
    /* Lone continuation, truncated sequence, overlong, surrogate, out of range. */
    assert_same_tokens("a\x80 b\xc3 c\xe2\x82 d", "a\xef\xbf\xbd b\xef\xbf\xbd c\xef\xbf\xbd d");
    assert_same_tokens("\xc0\xaf \xed\xa0\x80 \xf4\x90\x80\x80",
                       "\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd "
                       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    size_t n;
    int32_t *ids = tokenize("\xff\xfe\xfd", &n);
    assert_true(n > 0);
    for (size_t i = 0; i < n; i++)
        assert_true(ids[i] >= 0 && ids[i] < CLIP_VOCAB_SIZE);
    gi_free(ids);
}

static void very_long_input(void **state)
{
    (void)state;
    size_t len = 100000;
    char *text = malloc(len + 1);
    assert_non_null(text);
    /* 20000 words */
    for (size_t i = 0; i < len; i += 5)
        memcpy(text + i, "cat, ", 5);
    text[len] = '\0';
    double t0 = now_ms();
    size_t n;
    int32_t *ids = tokenize(text, &n);
    assert_int_equal(n, 40000);
    assert_int_equal(ids[0], 2368); /* cat</w> */
    assert_int_equal(ids[1], 267);  /* ,</w> */
    assert_int_equal(ids[39998], 2368);
    gi_free(ids);
    /* One 100000-letter word: the heap keeps BPE O(n log n). */
    memset(text, 'x', len);
    ids = tokenize(text, &n);
    assert_true(n > 0 && n < len);
    gi_free(ids);
    /* A 100000-character run of punctuation is one piece too. */
    for (size_t i = 0; i < len; i++)
        text[i] = "!?.-"[i % 4];
    ids = tokenize(text, &n);
    assert_true(n > 0 && n < len);
    gi_free(ids);
    fprintf(stderr, "three 100k-character texts tokenized in %.0f ms\n", now_ms() - t0);
    free(text);
}

/* The BPE of 'x' * k is CLIP's, checked against the fixture's long-word prompt
 * for the 75-token case; here its length must grow linearly and ids stay valid. */
static void repeated_letters_are_consistent(void **state)
{
    (void)state;
    char buf[65];
    size_t prev = 0;
    for (int k = 1; k <= 64; k++) {
        memset(buf, 'x', (size_t)k);
        buf[k] = '\0';
        size_t n;
        int32_t *ids = tokenize(buf, &n);
        assert_true(n >= 1 && n <= (size_t)k);
        assert_true(n + 1 >= prev);
        prev = n;
        gi_free(ids);
    }
}

static void create_is_fast(void **state)
{
    (void)state;
    gi_error err = {0};
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        clip_tokenizer *t = NULL;
        double t0 = now_ms();
        assert_int_equal(clip_tokenizer_create(&t, &err), GS_OK);
        double dt = now_ms() - t0;
        best = dt < best ? dt : best;
        clip_tokenizer_free(t);
    }
    fprintf(stderr, "clip_tokenizer_create: %.1f ms (best of 3)\n", best);
    /* Well under 100 ms in a Release build; the bound here leaves room for sanitizers. */
    assert_true(best < 1000.0);
}

static void survives_allocation_failures(void **state)
{
    (void)state;
    int created = 0, tokenized = 0;
    for (long k = 0; k < 200 && !created; k++) {
        gi_error err = {0};
        clip_tokenizer *t = NULL;
        gi_alloc_fail_after(k);
        gs_status st = clip_tokenizer_create(&t, &err);
        gi_alloc_fail_after(-1);
        if (st != GS_OK) {
            assert_int_equal(st, GS_ERR_NO_MEMORY);
            assert_null(t);
            continue;
        }
        created = 1;
        clip_tokenizer_free(t);
    }
    for (long k = 0; k < 200 && !tokenized; k++) {
        gi_error err = {0};
        int32_t *ids = NULL;
        size_t n = 0;
        gi_alloc_fail_after(k);
        gs_status st =
            clip_tokenize(tok, "Caf&eacute; \xef\xac\x81ne, (word:1.2) don't", &ids, &n, &err);
        gi_alloc_fail_after(-1);
        if (st != GS_OK) {
            assert_int_equal(st, GS_ERR_NO_MEMORY);
            assert_null(ids);
            continue;
        }
        tokenized = 1;
        assert_true(n > 5);
        gi_free(ids);
    }
    assert_true(created && tokenized);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(matches_every_fixture_prompt),
        cmocka_unit_test(matches_golden_text_ids),
        cmocka_unit_test(cleans_like_clip),
        cmocka_unit_test(pre_tokenizer_rules),
        cmocka_unit_test(invalid_utf8_reads_as_replacement),
        cmocka_unit_test(very_long_input),
        cmocka_unit_test(repeated_letters_are_consistent),
        cmocka_unit_test(create_is_fast),
        cmocka_unit_test(survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
