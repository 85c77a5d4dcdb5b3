/* test_prompt - A1111 prompt semantics: emphasis weights, escapes, BREAK, 75-token chunks
 * with the comma rule, and the weight rescale. Expected weights are the float32 of the
 * doubles A1111's parser produces (its own doctest values where it gives them). */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "text/prompt.h"

static clip_tokenizer *tok;

static int setup(void **state)
{
    (void)state;
    gi_error err = {0};
    return clip_tokenizer_create(&tok, &err) == GS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    clip_tokenizer_free(tok);
    return 0;
}

/* The chunks of prompt; every test of them also checks that counting agrees. */
static prompt_chunks chunks_of(const char *prompt)
{
    prompt_chunks pc;
    gi_error err = {0};
    if (prompt_to_chunks(tok, prompt, &pc, &err) != GS_OK)
        fail_msg("prompt_to_chunks(\"%.60s\"): %s", prompt, err.msg);
    int counted = -1;
    assert_int_equal(prompt_count_chunks(tok, prompt, &counted, &err), GS_OK);
    if (counted != pc.n_chunks)
        fail_msg("\"%.60s\": %d chunks counted, %d made", prompt, counted, pc.n_chunks);
    return pc;
}

/* The single id of a one-token word. */
static int32_t id_of(const char *word)
{
    int32_t *ids;
    size_t n;
    gi_error err = {0};
    assert_int_equal(clip_tokenize(tok, word, &ids, &n, &err), GS_OK);
    assert_int_equal(n, 1);
    int32_t id = ids[0];
    gi_free(ids);
    return id;
}

/* Expected text tokens of one chunk, by (word, weight) pairs; words may tokenize to
 * several ids, all with the word's weight. */
typedef struct expect {
    const char *text;
    float weight;
} expect;

static void assert_chunk(const prompt_chunks *pc, int chunk, const expect *e, int n_e)
{
    const int32_t *ids = pc->ids + (size_t)chunk * PROMPT_CHUNK_LEN;
    const float *w = pc->weights + (size_t)chunk * PROMPT_CHUNK_LEN;
    assert_int_equal(ids[0], CLIP_BOS);
    assert_true(w[0] == 1.0f);
    int pos = 1;
    for (int k = 0; k < n_e; k++) {
        int32_t *t;
        size_t n;
        gi_error err = {0};
        assert_int_equal(clip_tokenize(tok, e[k].text, &t, &n, &err), GS_OK);
        for (size_t i = 0; i < n; i++, pos++) {
            assert_true(pos < PROMPT_CHUNK_LEN - 1);
            if (ids[pos] != t[i] || w[pos] != e[k].weight)
                fail_msg("chunk %d pos %d: got id %d w %.9g, want id %d w %.9g (\"%s\")", chunk,
                         pos, ids[pos], (double)w[pos], t[i], (double)e[k].weight, e[k].text);
        }
        gi_free(t);
    }
    for (; pos < PROMPT_CHUNK_LEN; pos++) {
        assert_int_equal(ids[pos], CLIP_EOS);
        assert_true(w[pos] == 1.0f);
    }
}

/* ---- emphasis ---- */

static void emphasis_weights(void **state)
{
    (void)state;
    prompt_chunks pc = chunks_of("(masterpiece:1.2), [blurry], ((detailed))");
    assert_int_equal(pc.n_chunks, 1);
    const expect e[] = {
        {"masterpiece", 1.2f},
        {",", 1.0f},
        {"blurry", (float)(1 / 1.1)},
        {",", 1.0f},
        {"detailed", (float)(1.1 * 1.1)},
    };
    assert_chunk(&pc, 0, e, 5);
    /* 1.2100000000000002 in A1111 rounds to this float32. */
    assert_true(pc.weights[5] == 1.21000004f);
    assert_true(pc.weights[3] == 0.909090936f);
    prompt_chunks_free(&pc);
}

static void nesting_multiplies(void **state)
{
    (void)state;
    /* A1111's doctest: a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).
     * -> a 1.0 | house 1.5730000000000004 | ' ' 1.1 | on 1.0 | ' a ' 1.1 | hill 0.55 |
     *    ', sun, ' 1.1 | sky 1.4641000000000006 | '.' 1.1 */
    prompt_chunks pc = chunks_of("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).");
    const expect e[] = {
        {"a", 1.0f},
        {"house", (float)1.5730000000000004},
        {"on", 1.0f},
        {"a", (float)1.1},
        {"hill", (float)0.55},
        {", sun,", (float)1.1},
        {"sky", (float)1.4641000000000006},
        {".", (float)1.1},
    };
    assert_chunk(&pc, 0, e, 8);
    prompt_chunks_free(&pc);

    pc = chunks_of("[[x]] ((y:1.5) z)");
    const expect e2[] = {
        {"x", (float)((1 / 1.1) * (1 / 1.1))},
        {"y", (float)(1.5 * 1.1)},
        {"z", (float)1.1},
    };
    assert_chunk(&pc, 0, e2, 3);
    prompt_chunks_free(&pc);

    /* Weight syntax details: spaces around the number, signs, leading dot. */
    pc = chunks_of("(a: 1.5 ) (b:-1) (c:+.5) (d:2.)");
    const expect e3[] = {{"a", 1.5f}, {"b", -1.0f}, {"c", 0.5f}, {"d", 2.0f}};
    assert_chunk(&pc, 0, e3, 4);
    prompt_chunks_free(&pc);
}

static void escapes_and_unbalanced_brackets(void **state)
{
    (void)state;
    /* \( \] are literals; the whole is one run tokenized together. */
    prompt_chunks pc = chunks_of("\\(literal\\]");
    const expect e[] = {{"(literal]", 1.0f}};
    assert_chunk(&pc, 0, e, 1);
    prompt_chunks_free(&pc);

    /* \\ is a backslash; a lone backslash vanishes. */
    pc = chunks_of("a\\\\b c\\d");
    const expect e2[] = {{"a\\b cd", 1.0f}};
    assert_chunk(&pc, 0, e2, 1);
    prompt_chunks_free(&pc);

    /* Unclosed brackets close at the end; stray closers are text. */
    pc = chunks_of("(unbalanced");
    const expect e3[] = {{"unbalanced", (float)1.1}};
    assert_chunk(&pc, 0, e3, 1);
    prompt_chunks_free(&pc);

    pc = chunks_of("x) y] [z");
    const expect e4[] = {{"x) y]", 1.0f}, {"z", (float)(1 / 1.1)}};
    assert_chunk(&pc, 0, e4, 2);
    prompt_chunks_free(&pc);

    /* ']' closes no '(' : it is text inside the round bracket. */
    pc = chunks_of("(a]");
    const expect e5[] = {{"a]", (float)1.1}};
    assert_chunk(&pc, 0, e5, 1);
    prompt_chunks_free(&pc);

    /* A weight with no bracket open is text, and so is a lone colon. */
    pc = chunks_of("a:1.2) b:c");
    const expect e6[] = {{"a:1.2) b:c", 1.0f}};
    assert_chunk(&pc, 0, e6, 1);
    prompt_chunks_free(&pc);
}

static void runs_of_equal_weight_merge(void **state)
{
    (void)state;
    /* A1111's doctest: (unnecessary)(parens) -> [['unnecessaryparens', 1.1]]: one run,
     * tokenized as one word, which differs from tokenizing the halves apart. */
    prompt_chunks pc = chunks_of("(unnecessary)(parens)");
    const expect e[] = {{"unnecessaryparens", (float)1.1}};
    assert_chunk(&pc, 0, e, 1);
    int32_t *whole, *half1, *half2;
    size_t nw, n1, n2;
    gi_error err = {0};
    assert_int_equal(clip_tokenize(tok, "unnecessaryparens", &whole, &nw, &err), GS_OK);
    assert_int_equal(clip_tokenize(tok, "unnecessary", &half1, &n1, &err), GS_OK);
    assert_int_equal(clip_tokenize(tok, "parens", &half2, &n2, &err), GS_OK);
    assert_true(nw != n1 + n2 || memcmp(whole, half1, n1 * 4) != 0 ||
                memcmp(whole + n1, half2, n2 * 4) != 0);
    gi_free(whole);
    gi_free(half1);
    gi_free(half2);
    prompt_chunks_free(&pc);

    /* (a)(b:1.1) also merges: both are exactly 1.1. */
    pc = chunks_of("(red)(cat:1.1) dog");
    const expect e2[] = {{"redcat", (float)1.1}, {"dog", 1.0f}};
    assert_chunk(&pc, 0, e2, 2);
    prompt_chunks_free(&pc);
}

static void invalid_weight_is_an_error(void **state)
{
    (void)state;
    const char *bad[] = {"(a:1.2.3)", "(a:.)", "(a:..5)", "(a:-.)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        prompt_chunks pc;
        gi_error err = {0};
        assert_int_equal(prompt_to_chunks(tok, bad[i], &pc, &err), GS_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(err.msg, "weight"));
        assert_null(pc.ids);
        assert_int_equal(pc.n_chunks, 0);
        int n = -1;
        assert_int_equal(prompt_count_chunks(tok, bad[i], &n, &err), GS_ERR_INVALID_ARGUMENT);
        assert_int_equal(n, 0);
    }
}

/* ---- BREAK ---- */

static void break_ends_the_chunk(void **state)
{
    (void)state;
    prompt_chunks pc = chunks_of("red cat BREAK blue dog");
    assert_int_equal(pc.n_chunks, 2);
    const expect c0[] = {{"red cat", 1.0f}}, c1[] = {{"blue dog", 1.0f}};
    assert_chunk(&pc, 0, c0, 1);
    assert_chunk(&pc, 1, c1, 1);
    prompt_chunks_free(&pc);

    /* Only the upper-case word of its own. */
    const char *not_break[] = {"red break dog", "redBREAK dog", "BREAKS", "BREAK_x"};
    for (size_t i = 0; i < 4; i++) {
        pc = chunks_of(not_break[i]);
        assert_int_equal(pc.n_chunks, 1);
        prompt_chunks_free(&pc);
    }
    /* Punctuation is a word boundary. */
    pc = chunks_of("a,BREAK,b");
    assert_int_equal(pc.n_chunks, 2);
    const expect p0[] = {{"a,", 1.0f}}, p1[] = {{",b", 1.0f}};
    assert_chunk(&pc, 0, p0, 1);
    assert_chunk(&pc, 1, p1, 1);
    prompt_chunks_free(&pc);

    /* A leading BREAK closes an empty chunk; a trailing one adds nothing. */
    pc = chunks_of("BREAK cat");
    assert_int_equal(pc.n_chunks, 2);
    assert_chunk(&pc, 0, NULL, 0);
    prompt_chunks_free(&pc);
    pc = chunks_of("cat BREAK");
    assert_int_equal(pc.n_chunks, 1);
    prompt_chunks_free(&pc);
    pc = chunks_of("a BREAK BREAK b");
    assert_int_equal(pc.n_chunks, 3);
    prompt_chunks_free(&pc);

    /* Inside brackets the marker's weight is no longer -1: A1111 then encodes the
     * word "break" with that weight. */
    pc = chunks_of("(a BREAK b)");
    assert_int_equal(pc.n_chunks, 1);
    const expect b[] = {{"a", (float)1.1}, {"break", (float)(-1 * 1.1)}, {"b", (float)1.1}};
    assert_chunk(&pc, 0, b, 3);
    prompt_chunks_free(&pc);
}

/* ---- chunks ---- */

static char *repeat_words(const char *const *words, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(words[i]) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t w = strlen(words[i]);
        memcpy(s + at, words[i], w);
        s[at + w] = ' ';
        at += w + 1;
    }
    s[at] = '\0';
    return s;
}

static void empty_prompt_is_one_chunk(void **state)
{
    (void)state;
    const char *empties[] = {"", "   ", "()", "[]"};
    for (size_t i = 0; i < 4; i++) {
        prompt_chunks pc = chunks_of(empties[i]);
        assert_int_equal(pc.n_chunks, 1);
        assert_chunk(&pc, 0, NULL, 0);
        prompt_chunks_free(&pc);
    }
}

/* Plain prompts of <= 75 tokens are exactly SD's 77-token form of the fixture. */
static void plain_prompts_match_fixture(void **state)
{
    (void)state;
    json_error_t jerr;
    json_t *root = json_load_file(fixture_path("tokenizer.json"), 0, &jerr);
    assert_non_null(root);
    int checked = 0;
    for (size_t k = 0; k < json_array_size(root); k++) {
        json_t *e = json_array_get(root, k);
        const char *p = json_string_value(json_object_get(e, "prompt"));
        json_t *ids = json_object_get(e, "ids"), *sd = json_object_get(e, "sd_ids");
        if (strpbrk(p, "()[]:\\"))
            continue; /* emphasis syntax: not plain text for A1111 */
        size_t n = json_array_size(ids);
        prompt_chunks pc = chunks_of(p);
        assert_int_equal(pc.n_chunks, n == 0 ? 1 : (int)((n + 74) / 75));
        for (size_t i = 0; i < 77; i++)
            assert_int_equal(pc.ids[i], json_integer_value(json_array_get(sd, i)));
        /* No comma in the long prompt: chunk c holds ids[75c : 75c + 75]. */
        for (int c = 1; c < pc.n_chunks; c++)
            for (size_t i = 0; i < 75 && 75 * (size_t)c + i < n; i++)
                assert_int_equal(pc.ids[77 * c + 1 + (int)i],
                                 json_integer_value(json_array_get(ids, 75 * (size_t)c + i)));
        for (int i = 0; i < 77 * pc.n_chunks; i++)
            assert_true(pc.weights[i] == 1.0f);
        prompt_chunks_free(&pc);
        checked++;
    }
    assert_true(checked >= 14);
    json_decref(root);
}

static void comma_moves_the_tail_to_the_next_chunk(void **state)
{
    (void)state;
    int32_t cat = id_of("cat"), dog = id_of("dog");
    assert_int_equal(id_of(","), CLIP_COMMA);
    const char *words[128];

    /* 70 cats, a comma, 10 dogs: the chunk fills at 4 dogs, the comma is 5 from the end,
     * so those 4 dogs move on: chunk 0 = 70 cats + ',' + EOS padding, chunk 1 = 10 dogs. */
    int n = 0;
    for (int i = 0; i < 70; i++)
        words[n++] = "cat";
    words[n++] = ",";
    for (int i = 0; i < 10; i++)
        words[n++] = "dog";
    char *p = repeat_words(words, n);
    prompt_chunks pc = chunks_of(p);
    assert_int_equal(pc.n_chunks, 2);
    for (int i = 1; i <= 70; i++)
        assert_int_equal(pc.ids[i], cat);
    assert_int_equal(pc.ids[71], CLIP_COMMA);
    for (int i = 72; i < 77; i++)
        assert_int_equal(pc.ids[i], CLIP_EOS);
    for (int i = 1; i <= 10; i++)
        assert_int_equal(pc.ids[77 + i], dog);
    assert_int_equal(pc.ids[77 + 11], CLIP_EOS);
    prompt_chunks_free(&pc);
    free(p);

    /* Comma 25 tokens before the end: beyond the 20-token window, a plain cut. */
    n = 0;
    for (int i = 0; i < 50; i++)
        words[n++] = "cat";
    words[n++] = ",";
    for (int i = 0; i < 40; i++)
        words[n++] = "dog";
    p = repeat_words(words, n);
    pc = chunks_of(p);
    assert_int_equal(pc.n_chunks, 2);
    assert_int_equal(pc.ids[51], CLIP_COMMA);
    assert_int_equal(pc.ids[75], dog);
    assert_int_equal(pc.ids[76], CLIP_EOS);
    for (int i = 1; i <= 16; i++)
        assert_int_equal(pc.ids[77 + i], dog);
    assert_int_equal(pc.ids[77 + 17], CLIP_EOS);
    prompt_chunks_free(&pc);
    free(p);

    /* Comma exactly 20 from the end still moves (<= 20). */
    n = 0;
    for (int i = 0; i < 55; i++)
        words[n++] = "cat";
    words[n++] = ",";
    for (int i = 0; i < 25; i++)
        words[n++] = "dog";
    p = repeat_words(words, n);
    pc = chunks_of(p);
    assert_int_equal(pc.n_chunks, 2);
    assert_int_equal(pc.ids[56], CLIP_COMMA);
    assert_int_equal(pc.ids[57], CLIP_EOS);
    for (int i = 1; i <= 25; i++)
        assert_int_equal(pc.ids[77 + i], dog);
    prompt_chunks_free(&pc);
    free(p);
}

static void long_prompt_gives_several_chunks(void **state)
{
    (void)state;
    /* 200 words: 20 groups of "cat cat ... cat," (10 words + comma = 11 tokens). Each
     * chunk holds 6 groups (66 tokens); the 7th group does not fit and its comma
     * window moves it whole to the next chunk: 6 + 6 + 6 + 2 groups. */
    int32_t cat = id_of("cat");
    const char *words[220];
    int n = 0;
    for (int g = 0; g < 20; g++) {
        for (int i = 0; i < 9; i++)
            words[n++] = "cat";
        words[n++] = "cat,";
    }
    char *p = repeat_words(words, n);
    prompt_chunks pc = chunks_of(p);
    assert_int_equal(pc.n_chunks, 4);
    const int groups[4] = {6, 6, 6, 2};
    for (int c = 0; c < 4; c++) {
        const int32_t *ids = pc.ids + 77 * c;
        assert_int_equal(ids[0], CLIP_BOS);
        int pos = 1;
        for (int g = 0; g < groups[c]; g++) {
            for (int i = 0; i < 10; i++)
                assert_int_equal(ids[pos++], cat);
            assert_int_equal(ids[pos++], CLIP_COMMA);
        }
        while (pos < 77)
            assert_int_equal(ids[pos++], CLIP_EOS);
    }
    prompt_chunks_free(&pc);
    free(p);

    /* Weights travel with their tokens across chunks. */
    n = 0;
    for (int i = 0; i < 80; i++)
        words[n++] = i == 76 ? "(cat:1.3)" : "cat";
    p = repeat_words(words, n);
    pc = chunks_of(p);
    assert_int_equal(pc.n_chunks, 2);
    for (int i = 0; i < 77 * 2; i++)
        assert_true(pc.weights[i] == (i == 77 + 2 ? 1.3f : 1.0f));
    prompt_chunks_free(&pc);
    free(p);
}

/* ---- weights on the encoding ---- */

static void weight_rescale_arithmetic(void **state)
{
    (void)state;
    /* z [3 tokens, 2]: mean 3.5; weighted mean (1+2+6+8+2.5+3)/6 = 3.75; scale 3.5/3.75. */
    float z[6] = {1, 2, 3, 4, 5, 6};
    const float w[3] = {1.0f, 2.0f, 0.5f};
    prompt_apply_weights(z, w, 3, 2);
    const double want[6] = {1 * 3.5 / 3.75, 2 * 3.5 / 3.75,   6 * 3.5 / 3.75,
                            8 * 3.5 / 3.75, 2.5 * 3.5 / 3.75, 3 * 3.5 / 3.75};
    double mean = 0;
    for (int i = 0; i < 6; i++) {
        assert_true(fabs(z[i] - want[i]) < 1e-6);
        mean += z[i] / 6;
    }
    assert_true(fabs(mean - 3.5) < 1e-6);

    /* Weights of 1 leave z bit for bit. */
    float u[6] = {0.1f, -2.5f, 3.25f, 7.0f, -1e-3f, 42.0f}, u0[6];
    memcpy(u0, u, sizeof u);
    const float ones[3] = {1, 1, 1};
    prompt_apply_weights(u, ones, 3, 2);
    assert_memory_equal(u, u0, sizeof u);

    /* All-zero weights: no division by zero, z is left weighted (zeros). */
    float v[4] = {1, 2, 3, 4};
    const float zeros[2] = {0, 0};
    prompt_apply_weights(v, zeros, 2, 2);
    for (int i = 0; i < 4; i++)
        assert_true(v[i] == 0.0f);
}

/* ---- robustness ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void hostile_prompts(void **state)
{
    (void)state;
    /* Deep nesting, invalid UTF-8 and a long prompt: no crash, sane chunks. */
    size_t len = 20000;
    char *p = malloc(len + 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i++)
        p[i] = i < len / 2 ? '(' : 'a' + (char)(i % 3);
    p[len] = '\0';
    prompt_chunks pc = chunks_of(p);
    assert_true(pc.n_chunks >= 1);
    prompt_chunks_free(&pc);
    free(p);

    /* brackets nested thousands deep over as many runs: A1111's weighting is
     * quadratic there (a second for 128 KB), so the prompt is refused at once */
    len = 128 * 1024;
    p = malloc(len + 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i += 2)
        memcpy(p + i, i % 4 ? "[a" : "(a", 2);
    p[len] = '\0';
    gi_error err = {0};
    int n = -1;
    double t0 = now_ms();
    assert_int_equal(prompt_count_chunks(tok, p, &n, &err), GS_ERR_INVALID_ARGUMENT);
    assert_true(now_ms() - t0 < 2000);
    assert_non_null(strstr(err.msg, "nest too deeply"));
    /* a few hundred levels still parse: 300 runs of "a", each its own weight */
    p[600] = '\0';
    pc = chunks_of(p);
    assert_int_equal(pc.n_chunks, 4);
    prompt_chunks_free(&pc);
    free(p);

    pc = chunks_of("\xff(cat\xc3:1.2)\x80 BREAK \xed\xa0\x80");
    assert_int_equal(pc.n_chunks, 2);
    prompt_chunks_free(&pc);

    len = 100000;
    p = malloc(len + 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i += 10)
        memcpy(p + i, "(cat:1.1),", 10);
    p[len] = '\0';
    pc = chunks_of(p);
    /* 20000 tokens alternating cat/',': every comma sits at most 1 from a chunk's end, so
     * each chunk still takes 75 tokens (the move is empty or the comma opens the next). */
    assert_int_equal(pc.n_chunks, (20000 + 74) / 75);
    prompt_chunks_free(&pc);
    free(p);
}

/* The public count a service bounds jobs with: no engine, no model, and
   milliseconds for a prompt at the service's 16 KB limit. */
static void public_chunk_count(void **state)
{
    (void)state;
    gs_tokenizer *pt = NULL;
    assert_int_equal(gs_tokenizer_create(&pt), GS_OK);
    size_t len = 16 * 1024;
    char *p = malloc(len + 1);
    assert_non_null(p);
    for (size_t i = 0; i < len; i += 8)
        memcpy(p + i, "a BREAK ", 8);
    p[len] = '\0';
    int n = 0;
    char msg[128];
    double t0 = now_ms();
    assert_int_equal(gs_prompt_chunks(pt, p, &n, msg, sizeof msg), GS_OK);
    double ms = now_ms() - t0;
    assert_int_equal(n, 2048);
    printf("counted 2048 chunks of a 16 KB prompt in %.1f ms\n", ms);
    /* a bound for sanitized debug builds: release builds take ~2 ms */
    assert_true(ms < 2000);
    p[8 * 32] = '\0';
    assert_int_equal(gs_prompt_chunks(pt, p, &n, msg, sizeof msg), GS_OK);
    assert_int_equal(n, 32);
    assert_int_equal(gs_prompt_chunks(pt, "", &n, msg, sizeof msg), GS_OK);
    assert_int_equal(n, 1);
    assert_int_equal(gs_prompt_chunks(pt, "(a:1.2.3)", &n, msg, sizeof msg),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(n, 0);
    assert_non_null(strstr(msg, "weight"));
    assert_int_equal(gs_prompt_chunks(NULL, "a", &n, NULL, 0), GS_ERR_INVALID_ARGUMENT);
    free(p);
    gs_tokenizer_free(pt);
}

static void survives_allocation_failures(void **state)
{
    (void)state;
    int ok = 0;
    for (long k = 0; k < 400 && !ok; k++) {
        prompt_chunks pc;
        gi_error err = {0};
        gi_alloc_fail_after(k);
        gs_status st = prompt_to_chunks(tok, "(a:1.2) [b] BREAK c, d \\( e", &pc, &err);
        gi_alloc_fail_after(-1);
        if (st != GS_OK) {
            assert_int_equal(st, GS_ERR_NO_MEMORY);
            assert_null(pc.ids);
            continue;
        }
        ok = 1;
        assert_int_equal(pc.n_chunks, 2);
        prompt_chunks_free(&pc);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emphasis_weights),
        cmocka_unit_test(nesting_multiplies),
        cmocka_unit_test(escapes_and_unbalanced_brackets),
        cmocka_unit_test(runs_of_equal_weight_merge),
        cmocka_unit_test(invalid_weight_is_an_error),
        cmocka_unit_test(break_ends_the_chunk),
        cmocka_unit_test(empty_prompt_is_one_chunk),
        cmocka_unit_test(plain_prompts_match_fixture),
        cmocka_unit_test(comma_moves_the_tail_to_the_next_chunk),
        cmocka_unit_test(long_prompt_gives_several_chunks),
        cmocka_unit_test(weight_rescale_arithmetic),
        cmocka_unit_test(hostile_prompts),
        cmocka_unit_test(public_chunk_count),
        cmocka_unit_test(survives_allocation_failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
