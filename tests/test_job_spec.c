/*
 * test_job_spec - the job module without HTTP: defaults come from
 * gs_params_init, the stored JSON reads back to the same spec and the same
 * gs_params, each refusal names its field and reason, operator limits apply
 * at the edge but not to the stored text; the blob store (put/get/delete of
 * inputs, images and previews, hostile ids, the running byte count shared by
 * processes, the walk over jobs) and the event hub (no lost wake-up, queue
 * watchers, close).
 */
#include "testutil.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job/base64.h"
#include "job/job_spec.h"
#include "queue/blob_store.h"
#include "queue/event_hub.h"

static void defaults_come_from_the_engine(void **state)
{
    (void)state;
    gs_params p;
    gs_params_init(&p);
    job_spec s;
    assert_int_equal(job_spec_init(&s), 0);
    assert_int_equal(s.width, p.width);
    assert_int_equal(s.height, p.height);
    assert_int_equal(s.steps, p.steps);
    assert_int_equal(s.batch_size, p.batch_size);
    assert_int_equal(s.clip_skip, p.clip_skip);
    assert_true(s.cfg_scale == p.cfg_scale);
    assert_true((float)s.strength == p.strength);
    assert_string_equal(s.sampler, p.sampler);
    assert_string_equal(s.scheduler, "default");
    job_spec_clear(&s);
}

static int from(job_spec *s, const char *json, const job_limits *lim, job_error *e)
{
    assert_int_equal(job_spec_init(s), 0);
    return job_spec_from_json(s, json, strlen(json), lim, e);
}

static void round_trip(void **state)
{
    (void)state;
    job_spec a, b;
    job_error e;
    const char *json;
    json = "{\"model\":\"m\",\"prompt\":\"a (cat:1.2)\",\"negative_prompt\":\"dog\","
           "\"width\":640,\"height\":448,\"steps\":12,\"cfg_scale\":5.5,"
           "\"sampler\":\"dpmpp_2m\",\"scheduler\":\"karras\",\"seed\":4294967296,"
           "\"batch_size\":3,\"clip_skip\":2,\"strength\":0.4,"
           "\"priority\":-7,\"preview_every\":2,\"vae_tile\":-1}";
    assert_int_equal(from(&a, json, NULL, &e), 0);
    assert_int_equal(job_spec_validate(&a, NULL, NULL, &e), 0);
    job_spec_normalise(&a);
    assert_int_equal(a.seed, 4294967296ull); /* given: kept */
    char *text = job_spec_to_json(&a);
    assert_non_null(text);
    assert_int_equal(from(&b, text, NULL, &e), 0);
    char *again = job_spec_to_json(&b);
    assert_string_equal(text, again);
    gs_params p;
    gs_image *init;
    assert_int_equal(job_spec_to_params(&b, &p, &init), 0);
    assert_null(init);
    assert_string_equal(p.prompt, "a (cat:1.2)");
    assert_string_equal(p.negative_prompt, "dog");
    assert_string_equal(p.sampler, "dpmpp_2m");
    assert_string_equal(p.scheduler, "karras");
    assert_int_equal(p.width, 640);
    assert_int_equal(p.height, 448);
    assert_int_equal(p.steps, 12);
    assert_int_equal(p.batch_size, 3);
    assert_int_equal(p.clip_skip, 2);
    assert_int_equal(p.preview_every, 2);
    assert_int_equal(p.vae_tile, -1);
    assert_true(p.cfg_scale == 5.5f);
    assert_true(p.strength == 0.4f);
    assert_int_equal(p.seed, 4294967296ull);
    assert_int_equal(b.priority, -7);
    assert_true(job_spec_megapixelsteps(&b) == 640.0 * 448 * 12 * 3 / 1e6);
    free(text);
    free(again);
    job_spec_clear(&a);
    job_spec_clear(&b);
}

static void a_seed_is_drawn_once(void **state)
{
    (void)state;
    job_spec s;
    job_error e;
    assert_int_equal(from(&s, "{\"model\":\"m\"}", NULL, &e), 0);
    assert_int_equal(s.seed_given, 0);
    job_spec_normalise(&s);
    assert_int_equal(s.seed_given, 1);
    assert_true(s.seed <= 0xffffffffu);
    uint64_t seed = s.seed;
    job_spec_normalise(&s); /* normalised once: the stored job reproduces */
    assert_int_equal(s.seed, seed);
    char *text = job_spec_to_json(&s);
    assert_non_null(strstr(text, "\"seed\":"));
    assert_null(strstr(text, "init_image")); /* absent optional fields stay absent */
    assert_null(strstr(text, "vae_tile"));
    free(text);
    job_spec_clear(&s);
}

static void refusals_name_the_field(void **state)
{
    (void)state;
    job_limits lim;
    job_limits_default(&lim);
    lim.max_steps = 40;
    static const struct {
        const char *json;
        job_reason reason;
        const char *field;
    } cases[] = {
        {"{\"model\":\"m\",\"steps\":41}", JOB_ERR_OUT_OF_RANGE, "steps"},
        {"{\"model\":\"m\",\"width\":\"x\"}", JOB_ERR_WRONG_TYPE, "width"},
        {"{\"model\":\"m\",\"bogus\":1}", JOB_ERR_UNKNOWN_FIELD, "bogus"},
        {"{\"prompt\":\"x\"}", JOB_ERR_MISSING_FIELD, "model"},
        {"{\"model\":\"m\",\"sampler\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}", JOB_ERR_TOO_LONG,
         "sampler"},
        {"[]", JOB_ERR_INVALID_JSON, ""},
        {"{\"model\":\"m\",\"cfg_scale\":1e400}", JOB_ERR_INVALID_JSON, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        job_spec s;
        job_error e;
        assert_int_equal(from(&s, cases[i].json, &lim, &e), -1);
        assert_int_equal(e.reason, cases[i].reason);
        assert_string_equal(e.field, cases[i].field);
        assert_true(strlen(e.message) > 0);
        job_spec_clear(&s);
    }
    /* the operator's limit binds requests, not the stored text a worker reads */
    job_spec s;
    job_error e;
    assert_int_equal(from(&s, "{\"model\":\"m\",\"steps\":41}", NULL, &e), 0);
    job_spec_clear(&s);
    /* checks across fields */
    static const struct {
        const char *json;
        job_reason reason;
        const char *field;
    } semantic[] = {
        {"{\"model\":\"tiny-sd15\",\"height\":100}", JOB_ERR_BAD_SIZE, "height"},
        {"{\"model\":\"tiny-sd15\",\"sampler\":\"euler_b\"}", JOB_ERR_UNKNOWN_SAMPLER, "sampler"},
        {"{\"model\":\"tiny-sd15\",\"scheduler\":\"nope\"}", JOB_ERR_UNKNOWN_SCHEDULER,
         "scheduler"},
        {"{\"model\":\"tiny-sd15\",\"vae_tile\":100}", JOB_ERR_OUT_OF_RANGE, "vae_tile"},
        {"{\"model\":\"tiny-sd15\",\"init_image\":\"aGVsbG8=\"}", JOB_ERR_BAD_IMAGE, "init_image"},
        {"{\"model\":\"no-such-model\"}", JOB_ERR_UNKNOWN_MODEL, "model"},
        {"{\"model\":\"../tiny-sd15\"}", JOB_ERR_UNKNOWN_MODEL, "model"},
    };
    for (size_t i = 0; i < sizeof semantic / sizeof semantic[0]; i++) {
        assert_int_equal(from(&s, semantic[i].json, &lim, &e), 0);
        assert_int_equal(job_spec_validate(&s, &lim, GS_FIXTURES, &e), -1);
        assert_int_equal(e.reason, semantic[i].reason);
        assert_string_equal(e.field, semantic[i].field);
        job_spec_clear(&s);
    }
    assert_int_equal(from(&s, "{\"model\":\"tiny-sd15\"}", &lim, &e), 0);
    assert_int_equal(job_spec_validate(&s, &lim, GS_FIXTURES, &e), 0);
    job_spec_clear(&s);
    assert_string_equal(job_reason_code(JOB_ERR_OUT_OF_RANGE), "out_of_range");
}

static void init_image_reaches_the_engine(void **state)
{
    (void)state;
    size_t n = 0;
    FILE *f = fopen(fixture_path("init-img2img_euler_a.png"), "rb");
    assert_non_null(f);
    unsigned char *png = malloc(1 << 20);
    n = fread(png, 1, 1 << 20, f);
    fclose(f);
    char *b64 = base64_encode(png, n);
    size_t m = 0;
    unsigned char *back = base64_decode(b64, 1 << 20, &m);
    assert_int_equal(m, n);
    assert_memory_equal(back, png, n);
    free(back);
    char *json = malloc(strlen(b64) + 64);
    snprintf(json, strlen(b64) + 64,
             "{\"model\":\"m\",\"init_image\":\"data:image/png;base64,%s\"}", b64);
    job_spec s;
    job_error e;
    assert_int_equal(from(&s, json, NULL, &e), 0);
    assert_int_equal(job_spec_validate(&s, NULL, NULL, &e), 0);
    gs_params p;
    gs_image *init = NULL;
    assert_int_equal(job_spec_to_params(&s, &p, &init), 0);
    assert_non_null(init);
    assert_ptr_equal(p.init_image, init);
    assert_true(init->width > 0 && init->height > 0);
    gs_image_free(init);
    job_spec_clear(&s);
    free(json);
    free(b64);
    free(png);
}

/* ---- blob store ---- */

static void blobs_put_get_delete(void **state)
{
    (void)state;
    char dir[64] = "/tmp/gesso-blobs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char url[128];
    snprintf(url, sizeof url, "file:%s/b", dir);
    blob_store *b;
    svc_error err = {0};
    assert_int_equal(blob_open(url, &b, &err), GS_OK);
    const char *id = "01a20c02-df3b-710a-a5f4-94239fb89222";
    assert_int_equal(blob_put(b, id, BLOB_IMAGE, 0, "first", 5, &err), GS_OK);
    assert_int_equal(blob_put(b, id, BLOB_IMAGE, 1, "second", 6, &err), GS_OK);
    assert_int_equal(blob_put(b, id, BLOB_PREVIEW, 0, "pv", 2, &err), GS_OK);
    assert_int_equal(blob_put(b, id, BLOB_PREVIEW, 0, "pv2", 3, &err), GS_OK); /* replaced */
    /* a job's inputs, unlike its images, may leave gaps in their numbering */
    assert_int_equal(blob_put(b, id, BLOB_INPUT, 0, "init", 4, &err), GS_OK);
    assert_int_equal(blob_put(b, id, BLOB_INPUT, BLOB_MAX_INPUTS - 1, "last", 4, &err), GS_OK);
    unsigned char *data;
    size_t n;
    assert_int_equal(blob_get(b, id, BLOB_INPUT, 0, 100, &data, &n, &err), GS_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(data, "init", 4);
    free(data);
    assert_int_equal(blob_get(b, id, BLOB_INPUT, 1, 100, &data, &n, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_get(b, id, BLOB_IMAGE, 1, 100, &data, &n, &err), GS_OK);
    assert_int_equal(n, 6);
    assert_memory_equal(data, "second", 6);
    free(data);
    assert_int_equal(blob_get(b, id, BLOB_PREVIEW, 0, 100, &data, &n, &err), GS_OK);
    assert_memory_equal(data, "pv2", 3);
    free(data);
    assert_int_equal(blob_get(b, id, BLOB_IMAGE, 2, 100, &data, &n, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_get(b, id, BLOB_IMAGE, 0, 3, &data, &n, &err), GS_ERR_IO); /* over max */
    /* ids that would leave the directory, and indices out of range, are refused */
    assert_int_not_equal(blob_put(b, "../x", BLOB_IMAGE, 0, "x", 1, &err), GS_OK);
    assert_int_not_equal(blob_put(b, id, BLOB_IMAGE, BLOB_MAX_INDEX, "x", 1, &err), GS_OK);
    assert_int_not_equal(blob_put(b, id, BLOB_PREVIEW, 1, "x", 1, &err), GS_OK);
    assert_int_not_equal(blob_put(b, id, BLOB_INPUT, BLOB_MAX_INPUTS, "x", 1, &err), GS_OK);
    assert_int_not_equal(blob_put(b, id, BLOB_INPUT, -1, "x", 1, &err), GS_OK);
    assert_int_equal(blob_delete_job(b, id, &err), GS_OK);
    for (int k = 0; k < BLOB_MAX_INPUTS; k++) /* a purged job's inputs go with it */
        assert_int_equal(blob_get(b, id, BLOB_INPUT, k, 100, &data, &n, &err),
                         GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_get(b, id, BLOB_IMAGE, 0, 100, &data, &n, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_get(b, id, BLOB_PREVIEW, 0, 100, &data, &n, &err),
                     GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(blob_delete_job(b, id, &err), GS_OK); /* nothing left: not an error */
    blob_close(b);
    assert_int_equal(blob_open("s3://bucket", &b, &err), GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "s3"));
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void count_job(void *user, const char *id)
{
    (void)id;
    (*(int *)user)++;
}

/* The running total is the files' bytes, whichever handle (process) put or
   deleted them, without a walk; a recount puts right what a crash left off. */
static void blobs_count_their_bytes(void **state)
{
    (void)state;
    char dir[64] = "/tmp/gesso-blobs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    svc_error err = {0};
    blob_store *api, *worker;
    assert_int_equal(blob_open(dir, &api, &err), GS_OK);
    assert_int_equal(blob_open(dir, &worker, &err), GS_OK);
    assert_int_equal(blob_recount(api, &err), GS_OK);
    assert_int_equal(blob_bytes(api), 0);
    const char *a = "01a20c02-df3b-710a-a5f4-94239fb89222",
               *b = "01a20c02-df3b-710a-a5f4-94239fb89333";
    assert_int_equal(blob_put(api, a, BLOB_INPUT, 0, "0123456789", 10, &err), GS_OK);
    assert_int_equal(blob_put(worker, a, BLOB_IMAGE, 0, "abcde", 5, &err), GS_OK);
    assert_int_equal(blob_put(worker, a, BLOB_PREVIEW, 0, "pv", 2, &err), GS_OK);
    assert_int_equal(blob_put(worker, a, BLOB_PREVIEW, 0, "pv2", 3, &err), GS_OK); /* replaces */
    assert_int_equal(blob_put(worker, b, BLOB_IMAGE, 0, "x", 1, &err), GS_OK);
    assert_int_equal(blob_bytes(api), 19);
    assert_int_equal(blob_bytes(worker), 19);
    int jobs = 0;
    assert_int_equal(blob_each_job(api, count_job, &jobs, &err), GS_OK);
    assert_int_equal(jobs, 2); /* once each, however many blobs */
    assert_int_equal(blob_delete_job(api, a, &err), GS_OK);
    assert_int_equal(blob_bytes(worker), 1);
    /* a file no put counted (a process died between writing and counting it) */
    char path[200];
    snprintf(path, sizeof path, "%s/%s-1.png", dir, b);
    FILE *f = fopen(path, "wb");
    fputs("uncounted", f);
    fclose(f);
    assert_int_equal(blob_bytes(api), 1);
    assert_int_equal(blob_recount(worker, &err), GS_OK);
    assert_int_equal(blob_bytes(api), 10);
    blob_close(worker);
    blob_close(api);
    /* the count outlives the handles */
    assert_int_equal(blob_open(dir, &api, &err), GS_OK);
    assert_int_equal(blob_bytes(api), 10);
    blob_close(api);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- event hub ---- */

typedef struct waiter {
    hub_sub *sub;
    int result;
} waiter;

static void *wait_thread(void *arg)
{
    waiter *w = arg;
    w->result = hub_wait(w->sub, 10000);
    return NULL;
}

static void hub_wakes_the_right_subscribers(void **state)
{
    (void)state;
    event_hub *h = hub_create();
    hub_sub *a = hub_subscribe(h, "job-a"), *b = hub_subscribe(h, "job-b");
    assert_int_equal(hub_subscribers(h), 2);
    /* a publish before the wait is not lost */
    hub_publish(h, "job-a");
    assert_int_equal(hub_wait(a, 0), 1);
    assert_int_equal(hub_wait(a, 0), 0); /* consumed */
    assert_int_equal(hub_wait(b, 0), 0); /* not b's job */
    /* queue changes reach only the queue's watchers */
    hub_watch_queue(b, 1);
    hub_publish_queue(h);
    assert_int_equal(hub_wait(a, 0), 0);
    assert_int_equal(hub_wait(b, 0), 1);
    hub_publish_all(h);
    assert_int_equal(hub_wait(a, 0), 1);
    assert_int_equal(hub_wait(b, 0), 1);
    /* a sleeping waiter is woken by its job's change */
    waiter w = {a, -9};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    test_sleep_ms(50);
    hub_publish(h, "job-a");
    pthread_join(t, NULL);
    assert_int_equal(w.result, 1);
    /* and by the hub closing, for good */
    w.result = -9;
    assert_int_equal(pthread_create(&t, NULL, wait_thread, &w), 0);
    hub_close(h);
    pthread_join(t, NULL);
    assert_int_equal(w.result, -1);
    assert_int_equal(hub_wait(b, 1000), -1);
    hub_unsubscribe(a);
    hub_unsubscribe(b);
    assert_int_equal(hub_subscribers(h), 0);
    hub_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_come_from_the_engine),
        cmocka_unit_test(round_trip),
        cmocka_unit_test(a_seed_is_drawn_once),
        cmocka_unit_test(refusals_name_the_field),
        cmocka_unit_test(init_image_reaches_the_engine),
        cmocka_unit_test(blobs_put_get_delete),
        cmocka_unit_test(blobs_count_their_bytes),
        cmocka_unit_test(hub_wakes_the_right_subscribers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
