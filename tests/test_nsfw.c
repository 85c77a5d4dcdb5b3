/* test_nsfw - the image safety check: CLIP's image and text features against
   OpenAI CLIP's own float64 ones (tests/fixtures/clip-vision, made by
   tools/reference/make_clip_vision.py), horde-safety's decisions on crafted
   similarities, and the errors of a bad CLIP file. */
#include "testutil.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compute/compute.h"
#include "safety/nsfw_decide.h"
#include "safety/safety_clip.h"
#include "text/tokenizer.h"

/* f32 against the f64 reference (AMD EPYC AVX2, 2026-12-06): image features
   measured rel-L2 2.5e-7 .. 3.1e-7, text features 0.9e-7 .. 5.6e-7 (both
   layouts); the bounds allow ~5-10x. Pixels after the transform: max 1.17e-7 off (f32 rounding of
   the same 8-bit levels: the bicubic resize matches PIL exactly). */
#define IMAGE_REL_L2 3e-6
#define TEXT_REL_L2 3e-6
#define PIXEL_MAX_ABS 1e-6

#define CLIP_FIXTURE "clip-vision/tiny-clip.safetensors"

static const st_tensor *gold_tensor(const char *name)
{
    const st_tensor *t = st_find(golden(), name);
    assert_non_null(t);
    return t;
}

static void image_features_of(const char *file)
{
    gi_error err = {0};
    golden_select("clip-vision/golden.safetensors");
    safety_clip *c;
    gi_compute *cx;
    assert_int_equal(safety_clip_open(fixture_path(file), &c, &err), GS_OK);
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    assert_int_equal(c->proj, 32);
    assert_int_equal(clip_vision_image_size(c->vision), 224);
    for (int i = 0; i < 3; i++) {
        char key[64];
        FORMAT_OR_FAIL(key, "image.%d.rgb", i);
        const st_tensor *rgb = gold_tensor(key);
        assert_int_equal(rgb->dtype, ST_U8);
        int h = (int)rgb->shape[0], w = (int)rgb->shape[1];
        /* the transform, on its first 8 rows */
        float *px = malloc(3 * 224 * 224 * sizeof *px);
        assert_int_equal(clip_preprocess(rgb->data, w, h, 3, 224, px, &err), GS_OK);
        FORMAT_OR_FAIL(key, "image.%d.pixels_rows0_8", i);
        size_t n;
        double *want_px = golden_f64(key, &n);
        assert_int_equal(n, 3 * 8 * 224);
        double worst = 0;
        for (int ch = 0; ch < 3; ch++)
            for (int k = 0; k < 8 * 224; k++)
                worst = fmax(worst, fabs(px[ch * 224 * 224 + k] - want_px[ch * 8 * 224 + k]));
        assert_true(worst < PIXEL_MAX_ABS);
        float feat[32];
        assert_int_equal(safety_clip_image(c, cx, rgb->data, w, h, 3, feat, &err), GS_OK);
        FORMAT_OR_FAIL(key, "image.%d.features", i);
        double *want = golden_f64(key, &n);
        assert_int_equal(n, 32);
        double rel = rel_l2_f32_f64(feat, want, 32);
        print_message("image %d (%dx%d): rel-L2 %.2e, pixels max %.2e\n", i, w, h, rel, worst);
        assert_true(rel < IMAGE_REL_L2);
        free(want);
        free(want_px);
        free(px);
    }
    compute_free(cx);
    safety_clip_free(c);
}

static void text_features_of(const char *file)
{
    gi_error err = {0};
    golden_select("clip-vision/golden.safetensors");
    safety_clip *c;
    gi_compute *cx;
    clip_tokenizer *tok;
    assert_int_equal(safety_clip_open(fixture_path(file), &c, &err), GS_OK);
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    assert_int_equal(clip_tokenizer_create(&tok, &err), GS_OK);
    json_t *texts = json_load_file(fixture_path("clip-vision/texts.json"), 0, NULL);
    assert_non_null(texts);
    for (size_t i = 0; i < json_array_size(texts); i++) {
        char key[64];
        FORMAT_OR_FAIL(key, "text.%zu.ids", i);
        size_t n;
        int32_t ids[77];
        golden_ids77(key, ids);
        /* the engine's tokenizer gives the reference's ids for the concept texts */
        int32_t *mine;
        size_t nm;
        assert_int_equal(
            clip_tokenize(tok, json_string_value(json_array_get(texts, i)), &mine, &nm, &err),
            GS_OK);
        for (size_t t = 0; t < nm; t++)
            assert_int_equal(mine[t], ids[t + 1]);
        assert_int_equal(ids[nm + 1], CLIP_EOS);
        free(mine);
        float feat[32];
        assert_int_equal(safety_clip_text(c, cx, ids, 1, feat, &err), GS_OK);
        FORMAT_OR_FAIL(key, "text.%zu.features", i);
        double *want = golden_f64(key, &n);
        double rel = rel_l2_f32_f64(feat, want, 32);
        print_message("text %zu: rel-L2 %.2e\n", i, rel);
        assert_true(rel < TEXT_REL_L2);
        free(want);
    }
    json_decref(texts);
    clip_tokenizer_free(tok);
    compute_free(cx);
    safety_clip_free(c);
}

static void image_features_match(void **state)
{
    (void)state;
    image_features_of(CLIP_FIXTURE);
}

static void text_features_match(void **state)
{
    (void)state;
    text_features_of(CLIP_FIXTURE);
}

/* The same weights in open_clip's names give the same features. */
static void open_clip_layout(void **state)
{
    (void)state;
    image_features_of("clip-vision/tiny-clip-openclip.safetensors");
    text_features_of("clip-vision/tiny-clip-openclip.safetensors");
}

/* The lists as the reference builds them: same texts, same order, thresholds equal. */
static void check_terms(const json_t *want, const nsfw_term *got, int n)
{
    assert_int_equal(json_array_size(want), (size_t)n);
    for (int i = 0; i < n; i++) {
        const json_t *row = json_array_get(want, (size_t)i);
        assert_string_equal(got[i].text, json_string_value(json_array_get(row, 0)));
        assert_true(got[i].threshold == json_number_value(json_array_get(row, 1)));
    }
}

static void lists_match(void **state)
{
    (void)state;
    nsfw_lists l;
    gi_error err = {0};
    assert_int_equal(nsfw_lists_build(&l, &err), GS_OK);
    json_t *doc = json_load_file(fixture_path("clip-vision/decisions.json"), 0, NULL);
    assert_non_null(doc);
    check_terms(json_object_get(doc, "predicates"), l.pred, l.n_pred);
    check_terms(json_object_get(doc, "concepts"), l.concept, l.n_concept);
    const json_t *d = json_object_get(doc, "danger"), *u = json_object_get(doc, "underage");
    int nd = 0, nu = 0;
    for (int k = 0; k < l.n_pred; k++) {
        nd += !isnan(l.danger[k]);
        nu += !isnan(l.underage[k]);
    }
    assert_int_equal(nd, (int)json_array_size(d));
    assert_int_equal(nu, (int)json_array_size(u));
    for (size_t i = 0; i < json_array_size(d); i++) {
        int k = nsfw_lists_pred(&l, json_string_value(json_array_get(json_array_get(d, i), 0)));
        assert_true(k >= 0);
        assert_true(l.danger[k] == json_number_value(json_array_get(json_array_get(d, i), 1)));
        k = nsfw_lists_pred(&l, json_string_value(json_array_get(json_array_get(u, i), 0)));
        assert_true(k >= 0);
        assert_true(l.underage[k] == json_number_value(json_array_get(json_array_get(u, i), 1)));
    }
    json_decref(doc);
    nsfw_lists_free(&l);
}

static void decisions_match(void **state)
{
    (void)state;
    nsfw_lists l;
    gi_error err = {0};
    assert_int_equal(nsfw_lists_build(&l, &err), GS_OK);
    json_t *doc = json_load_file(fixture_path("clip-vision/decisions.json"), 0, NULL);
    const json_t *cases = json_object_get(doc, "cases");
    double *ps = malloc((size_t)l.n_pred * sizeof *ps),
           *cs = malloc((size_t)l.n_concept * sizeof *cs);
    int counts[5] = {0}, wrong = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        for (int k = 0; k < l.n_pred; k++)
            ps[k] = 0;
        for (int j = 0; j < l.n_concept; j++)
            cs[j] = 0;
        const char *text;
        json_t *v;
        json_object_foreach(json_object_get(c, "scores"), text, v)
        {
            int k = nsfw_lists_pred(&l, text), j = nsfw_lists_concept(&l, text);
            assert_true(k >= 0 || j >= 0);
            if (k >= 0)
                ps[k] = json_number_value(v);
            if (j >= 0)
                cs[j] = json_number_value(v);
        }
        const char *prompt = json_string_value(json_object_get(c, "prompt"));
        const char *neg = strstr(prompt, "###");
        nsfw_result r;
        nsfw_decide(&l, ps, cs, nsfw_negative_suspect(neg ? neg + 3 : NULL), &r);
        int want[5] = {json_is_true(json_object_get(c, "is_nsfw")),
                       json_is_true(json_object_get(c, "is_csam")),
                       json_is_true(json_object_get(c, "is_anime")),
                       json_is_true(json_object_get(c, "is_underage_subject")),
                       json_is_true(json_object_get(c, "is_neg_prompt_suspect"))};
        int got[5] = {r.is_nsfw, r.is_csam, r.is_anime, r.is_underage, r.neg_suspect};
        if (memcmp(want, got, sizeof want) != 0) {
            print_message("case %s: want %d%d%d%d%d got %d%d%d%d%d\n",
                          json_string_value(json_object_get(c, "name")), want[0], want[1], want[2],
                          want[3], want[4], got[0], got[1], got[2], got[3], got[4]);
            wrong++;
        }
        for (int f = 0; f < 5; f++)
            counts[f] += want[f];
    }
    print_message("%zu cases: %d nsfw, %d csam, %d anime, %d underage, %d suspect\n",
                  json_array_size(cases), counts[0], counts[1], counts[2], counts[3], counts[4]);
    assert_int_equal(wrong, 0);
    free(ps);
    free(cs);
    json_decref(doc);
    nsfw_lists_free(&l);
}

/* A truncated copy, and a file without CLIP's towers, fail with what is wrong. */
static void bad_files_say_why(void **state)
{
    (void)state;
    gi_error err = {0};
    safety_clip *c = NULL;
    FILE *in = fopen(fixture_path(CLIP_FIXTURE), "rb");
    assert_non_null(in);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, in);
    fclose(in);
    assert_true(n > 600000);
    char path[] = "/tmp/gesso-nsfw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, 600000), 600000);
    close(fd);
    assert_int_not_equal(safety_clip_open(path, &c, &err), GS_OK);
    assert_null(c);
    print_message("truncated: %s\n", err.msg);
    assert_non_null(strstr(err.msg, path));
    unlink(path);
    gi_error_clear(&err);
    assert_int_equal(safety_clip_open(fixture_path("tiny-sd15.safetensors"), &c, &err),
                     GS_ERR_FORMAT);
    print_message("not CLIP: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "no CLIP image tower"));
}

/* The public check on the random model, steered by the test shift. */
static void public_check(void **state)
{
    (void)state;
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    gs_engine *eng;
    gs_safety *s;
    assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
    assert_int_equal(gs_safety_load(eng, "/nonexistent/clip.safetensors", &s), GS_ERR_IO);
    assert_non_null(strstr(gs_engine_errmsg(eng), "/nonexistent/clip.safetensors"));
    assert_int_equal(gs_safety_load(eng, fixture_path(CLIP_FIXTURE), &s), GS_OK);
    uint8_t px[64 * 48 * 3];
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7);
    gs_image img = {64, 48, 3, px};
    gs_safety_result r;
    gs_safety_test_shift(s, -2, -2);
    assert_int_equal(gs_safety_check(eng, s, &img, NULL, &r), GS_OK);
    assert_false(r.is_nsfw || r.is_csam);
    gs_safety_test_shift(s, 2, -2);
    assert_int_equal(gs_safety_check(eng, s, &img, "", &r), GS_OK);
    assert_true(r.is_nsfw && r.is_anime);
    assert_false(r.is_csam || r.is_underage);
    gs_safety_test_shift(s, 2, 2);
    assert_int_equal(gs_safety_check(eng, s, &img, NULL, &r), GS_OK);
    assert_true(r.is_nsfw && r.is_csam);
    gs_safety_free(s);
    gs_engine_free(eng);
}

/* horde-safety's normalize_prompt, which both the image check's negative
   boosts and the Horde worker's prompt filter read prompts through. */
static void prompts_normalise(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"(loli:1.2), masterpiece", "loli masterpiece"},
        {"a c h i l d in a park", "a child in a park"},
        {"snake_case, commas;and-dashes", "snake case commas and dashes"},
        {"(a:1.2) (b:2)", "a b 2 "},
        {"  many   spaces\t\nhere ", " many spaces here "},
        {"caf\xc3\xa9 (x:0.5)", "caf\xc3\xa9 x"},
        {"", ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[128];
        assert_int_equal(gs_safety_normalize_prompt(cases[i][0], out, sizeof out), GS_OK);
        printf("normalise \"%s\" -> \"%s\"\n", cases[i][0], out);
        assert_string_equal(out, cases[i][1]);
    }
    char small[4];
    assert_int_equal(gs_safety_normalize_prompt("abcd", small, sizeof small),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(gs_safety_normalize_prompt(NULL, small, sizeof small),
                     GS_ERR_INVALID_ARGUMENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(image_features_match), cmocka_unit_test(text_features_match),
        cmocka_unit_test(open_clip_layout),     cmocka_unit_test(lists_match),
        cmocka_unit_test(decisions_match),      cmocka_unit_test(bad_files_say_why),
        cmocka_unit_test(public_check),         cmocka_unit_test(prompts_normalise),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
