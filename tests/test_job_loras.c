/*
 * test_job_loras - the job spec's "loras": read, refused with the field named,
 * written back, checked against the server's LoRA folder (none: refused) and
 * handed to the engine as gs_params' list.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/job_loras.h"
#include "job/job_spec.h"

static int parse(job_spec *s, const char *json, job_error *e)
{
    assert_int_equal(job_spec_init(s), 0);
    return job_spec_from_json(s, json, strlen(json), NULL, e);
}

static void read_and_written_back(void **state)
{
    (void)state;
    job_spec s;
    job_error e;
    assert_int_equal(parse(&s,
                           "{\"model\":\"m\",\"loras\":[{\"name\":\"tiny_a\",\"weight\":0.8},"
                           "{\"name\":\"tiny_b\",\"te\":1,\"unet\":-0.5},{\"name\":\"c-1.x\"}]}",
                           &e),
                     0);
    assert_int_equal(s.loras.n, 3);
    assert_string_equal(s.loras.l[0].name, "tiny_a");
    assert_true(s.loras.l[0].te == 0.8 && s.loras.l[0].unet == 0.8);
    assert_true(s.loras.l[1].te == 1 && s.loras.l[1].unet == -0.5);
    assert_true(s.loras.l[2].te == 1 && s.loras.l[2].unet == 1);
    char *text = job_spec_to_json(&s);
    job_spec t;
    assert_int_equal(parse(&t, text, &e), 0);
    assert_int_equal(t.loras.n, 3);
    assert_memory_equal(&t.loras, &s.loras, sizeof s.loras);
    free(text);
    job_spec_clear(&t);
    job_spec_clear(&s);
    /* none: not written */
    assert_int_equal(parse(&s, "{\"model\":\"m\",\"loras\":[]}", &e), 0);
    text = job_spec_to_json(&s);
    assert_null(strstr(text, "loras"));
    free(text);
    job_spec_clear(&s);
}

static void refusals_name_the_field(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        job_reason reason;
        const char *says;
    } cases[] = {
        {"{\"model\":\"m\",\"loras\":{}}", JOB_ERR_WRONG_TYPE, "must be an array"},
        {"{\"model\":\"m\",\"loras\":[\"tiny_a\"]}", JOB_ERR_WRONG_TYPE, "'loras[0]' must be"},
        {"{\"model\":\"m\",\"loras\":[{\"name\":\"../x\"}]}", JOB_ERR_WRONG_TYPE, "file name"},
        {"{\"model\":\"m\",\"loras\":[{\"name\":\"a/b\"}]}", JOB_ERR_WRONG_TYPE, "file name"},
        {"{\"model\":\"m\",\"loras\":[{\"name\":\"a\",\"weight\":11}]}", JOB_ERR_OUT_OF_RANGE,
         "-10..10"},
        {"{\"model\":\"m\",\"loras\":[{\"name\":\"a\",\"weight\":\"1\"}]}", JOB_ERR_WRONG_TYPE,
         "must be a number"},
        {"{\"model\":\"m\",\"loras\":[{\"name\":\"a\",\"te\":1}]}", JOB_ERR_MISSING_FIELD,
         "both 'te' and 'unet'"},
        {"{\"model\":\"m\",\"loras\":[{\"name\":\"a\",\"weight\":1,\"te\":1}]}", JOB_ERR_WRONG_TYPE,
         "not both"},
        {"{\"model\":\"m\",\"loras\":[{\"name\":\"a\",\"scale\":1}]}", JOB_ERR_UNKNOWN_FIELD,
         "loras[0].scale"},
        {"{\"model\":\"m\",\"loras\":[{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},"
         "{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},{\"name\":\"a\"},"
         "{\"name\":\"a\"}]}",
         JOB_ERR_OUT_OF_RANGE, "at most 8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        job_spec s;
        job_error e;
        assert_int_equal(parse(&s, cases[i].json, &e), -1);
        if (!strstr(e.message, cases[i].says))
            fprintf(stderr, "%s -> %s\n", cases[i].json, e.message);
        assert_int_equal(e.reason, cases[i].reason);
        assert_string_equal(e.field, "loras");
        assert_non_null(strstr(e.message, cases[i].says));
        job_spec_clear(&s);
    }
}

static void checked_against_the_folder(void **state)
{
    (void)state;
    job_spec s;
    job_error e;
    job_limits lim;
    job_limits_default(&lim);
    assert_int_equal(parse(&s, "{\"model\":\"m\",\"loras\":[{\"name\":\"tiny_a\"}]}", &e), 0);
    /* a server without a LoRA folder refuses them */
    assert_int_equal(job_spec_validate(&s, &lim, NULL, &e), -1);
    assert_int_equal(e.reason, JOB_ERR_UNKNOWN_LORA);
    assert_string_equal(job_reason_code(e.reason), "unknown_lora");
    assert_non_null(strstr(e.message, "--lora-dir"));
    char dir[600];
    snprintf(dir, sizeof dir, "%s", fixture_path("lora"));
    lim.lora_dir = dir;
    assert_int_equal(job_spec_validate(&s, &lim, NULL, &e), 0);
    snprintf(s.loras.l[0].name, sizeof s.loras.l[0].name, "tiny_c");
    assert_int_equal(job_spec_validate(&s, &lim, NULL, &e), -1);
    assert_non_null(strstr(e.message, "no LoRA named 'tiny_c'"));
    /* to the engine: paths in the folder, weights as given, strict */
    snprintf(s.loras.l[0].name, sizeof s.loras.l[0].name, "tiny_a");
    s.loras.l[0].te = 0.5;
    gs_params p;
    gs_image *init;
    job_lora_params lp;
    assert_int_equal(job_spec_to_params(&s, &p, &init), 0);
    assert_int_equal(p.lora_strict, 0); /* no folder yet: tags left out */
    job_loras_params(&s.loras, dir, &lp, &p);
    assert_int_equal(p.n_loras, 1);
    assert_string_equal(p.lora_dir, dir);
    assert_int_equal(p.lora_strict, 1);
    assert_non_null(strstr(p.loras[0].path, "lora/tiny_a.safetensors"));
    assert_true(p.loras[0].te_weight == 0.5f && p.loras[0].unet_weight == 1.0f);
    job_spec_clear(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_and_written_back),
        cmocka_unit_test(refusals_name_the_field),
        cmocka_unit_test(checked_against_the_folder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
