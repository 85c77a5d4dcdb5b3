/*
 * test_job_loras - the job spec's "loras": read, refused with the field named,
 * written back, checked against the server's LoRA folder (none: refused) and
 * handed to the engine as gs_params' list.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

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

/* ---- through gesso serve --lora-dir ---- */

/* Max level difference of the job's PNG against pipe.lora_single (golden u8). */
static int image_vs_golden(const char *base, const char *dir, const char *id)
{
    char out[600], cmd[1200];
    snprintf(out, sizeof out, "%s/image.png", dir);
    snprintf(cmd, sizeof cmd, "curl -sf -m 30 -o '%s' '%s/v1/jobs/%s/images/0'", out, base, id);
    assert_int_equal(system(cmd), 0);
    gs_image *im;
    char msg[256];
    assert_int_equal(gs_image_load(out, &im, msg, sizeof msg), GS_OK);
    st_file *g;
    gi_error err = {0};
    assert_int_equal(st_open(fixture_path("lora/lora-golden.safetensors"), &g, &err), GS_OK);
    const st_tensor *t = st_find(g, "pipe.lora_single.image_u8");
    assert_non_null(t);
    assert_int_equal((size_t)t->numel, (size_t)im->width * im->height * 3);
    int maxd = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        int d = abs((int)im->pixels[i] - (int)t->data[i]);
        maxd = d > maxd ? d : maxd;
    }
    st_close(g);
    gs_image_free(im);
    return maxd;
}

static void served_jobs_fold_loras(void **state)
{
    (void)state;
    char dir[] = "/tmp/gesso-job-loras-XXXXXX", base[128], lora_dir[600];
    assert_non_null(mkdtemp(dir));
    assert_int_equal(test_link_tiny_model(dir), 0);
    snprintf(lora_dir, sizeof lora_dir, "%s", fixture_path("lora"));
    const char *extra[] = {"--lora-dir", lora_dir, "--precision", "f32", NULL};
    pid_t server = test_serve_start(base, dir, extra);
    assert_true(server > 0);
    /* the recipe lora_single, once as a list and once as its prompt tag */
    static const char *const jobs[] = {
        "{\"model\":\"tiny-sd15\",\"prompt\":\"a photo of an astronaut riding a horse on mars "
        "\",\"seed\":42,\"steps\":8,\"cfg_scale\":7,\"sampler\":\"euler\",\"width\":64,"
        "\"height\":64,\"loras\":[{\"name\":\"tiny_a\",\"weight\":0.8}]}",
        "{\"model\":\"tiny-sd15\",\"prompt\":\"a photo of an astronaut riding a horse on mars "
        "<lora:tiny_a:0.8>\",\"seed\":42,\"steps\":8,\"cfg_scale\":7,\"sampler\":\"euler\","
        "\"width\":64,\"height\":64}",
    };
    for (int i = 0; i < 2; i++) {
        char *id = test_submit(base, dir, NULL, jobs[i]);
        json_t *j = test_wait_job(base, dir, NULL, id, 120000);
        assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
        int maxd = image_vs_golden(base, dir, id);
        printf("served job %d: max |diff| %d levels against pipe.lora_single\n", i, maxd);
        assert_true(maxd <= 2);
        json_decref(j);
        free(id);
    }
    /* a name the folder lacks: refused before queueing */
    char req[700], *body = NULL;
    snprintf(req, sizeof req, "%s/bad.json", dir);
    FILE *f = fopen(req, "w");
    fputs("{\"model\":\"tiny-sd15\",\"loras\":[{\"name\":\"tiny_z\"}]}", f);
    fclose(f);
    assert_int_equal(test_http(base, dir, "POST", "/v1/jobs", req, &body), 422);
    assert_non_null(strstr(body, "unknown_lora"));
    free(body);
    assert_int_equal(test_serve_stop(server), 0);
    assert_int_equal(test_remove_tree(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_and_written_back),
        cmocka_unit_test(refusals_name_the_field),
        cmocka_unit_test(checked_against_the_folder),
        cmocka_unit_test(served_jobs_fold_loras),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
