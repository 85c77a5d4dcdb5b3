/*
 * test_serve_cache - which models `gesso serve` has loaded, over real HTTP on
 * 127.0.0.1: GET /v1/models before and after a job, --preload loading a model
 * without a job, --idle-unload freeing it again, and the flags' validation.
 * Ports 41000..49999, clear of test_serve's 20000..39999.
 */
#include "testutil.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[128], base[64];
static pid_t server = -1; /* stopped by teardown when a test fails mid-way */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-serve-cache-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (test_link_tiny_model(dir) != 0)
        return -1;
    /* a valid safetensors file that is no Stable Diffusion checkpoint: one f32 tensor */
    static const char header[] = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    char path[256];
    snprintf(path, sizeof path, "%s/models/other.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    uint64_t n = sizeof header - 1;
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, (size_t)n, f);
    fwrite("\0\0\0\0\0\0\0\0", 1, 8, f);
    fclose(f);
    return 0;
}

static void start(const char *const *extra)
{
    server = test_serve_start(base, dir, extra);
}

static void stop(void)
{
    assert_int_equal(test_serve_stop(server), 0);
    server = -1;
}

static int teardown(void **state)
{
    (void)state;
    if (server > 0) /* SIGTERM: the server stops its worker, which would keep ctest's pipe open */
        test_serve_stop(server);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The /v1/models entry of name (a new reference). */
static json_t *model_entry(const char *name)
{
    char *body;
    assert_int_equal(test_http(base, dir, "GET", "/v1/models", NULL, &body), 200);
    json_t *j = json_loads(body, 0, NULL);
    free(body);
    assert_non_null(j);
    size_t i;
    json_t *m, *found = NULL;
    json_array_foreach(json_object_get(j, "models"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "name")), name) == 0)
            found = json_incref(m);
    }
    json_decref(j);
    if (!found)
        fail_msg("model %s not listed", name);
    return found;
}

static int is_loaded(const char *name)
{
    json_t *m = model_entry(name);
    int loaded = json_is_true(json_object_get(m, "loaded"));
    json_decref(m);
    return loaded;
}

/* Polls until the model's loaded flag is want; fails after timeout_ms. */
static void wait_loaded(const char *name, int want, int timeout_ms)
{
    for (int t = 0; t < timeout_ms; t += 100) {
        if (is_loaded(name) == want)
            return;
        test_sleep_ms(100);
    }
    fail_msg("%s never became %s", name, want ? "loaded" : "unloaded");
}

static void assert_holder_is_worker_0(const char *name)
{
    json_t *m = model_entry(name);
    json_t *workers = json_object_get(m, "workers");
    assert_int_equal(json_array_size(workers), 1);
    assert_memory_equal(json_string_value(json_array_get(workers, 0)), "w0-", 3);
    json_decref(m);
}

static void loaded_after_a_job(void **state)
{
    (void)state;
    start(NULL);
    json_t *m = model_entry("tiny-sd15");
    assert_string_equal(json_string_value(json_object_get(m, "family")), "sd1");
    assert_string_equal(json_string_value(json_object_get(m, "dtype")), "f16");
    assert_int_equal(json_integer_value(json_object_get(m, "size")), 38177966);
    assert_false(json_is_true(json_object_get(m, "loaded")));
    assert_int_equal(json_array_size(json_object_get(m, "workers")), 0);
    json_decref(m);
    m = model_entry("other");
    assert_string_equal(json_string_value(json_object_get(m, "family")), "unknown");
    assert_string_equal(json_string_value(json_object_get(m, "dtype")), "f32");
    assert_false(json_is_true(json_object_get(m, "loaded")));
    json_decref(m);

    char *id = test_submit(base, dir, NULL,
                           "{\"model\":\"tiny-sd15\",\"steps\":2,\"width\":64,\"height\":64}");
    json_t *j = test_wait_job(base, dir, NULL, id, 60000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    free(id);
    assert_true(is_loaded("tiny-sd15")); /* reported when it loaded, before the job ran */
    assert_holder_is_worker_0("tiny-sd15");
    assert_false(is_loaded("other"));
    stop();
}

static void preload_loads_without_a_job(void **state)
{
    (void)state;
    static const char *const extra[] = {"--preload", "tiny-sd15", NULL};
    start(extra);
    wait_loaded("tiny-sd15", 1, 30000);
    assert_holder_is_worker_0("tiny-sd15");
    stop();
}

static void idle_unload_frees_the_model(void **state)
{
    (void)state;
    /* 5 s: long enough for a slow (sanitized, loaded) machine to see it loaded first */
    static const char *const extra[] = {"--preload", "tiny-sd15", "--idle-unload", "5", NULL};
    start(extra);
    wait_loaded("tiny-sd15", 1, 30000);
    wait_loaded("tiny-sd15", 0, 30000);
    stop();
}

/* Runs gesso serve with args (to fail before listening); returns its exit code. */
static int serve_exit_code(const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s' serve --listen %s --data %s/data --models %s/models %s >/dev/null 2>%s/err",
             GS_GESSO_BIN, "127.0.0.1:0", dir, dir, args, dir);
    int status = system(cmd);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void bad_flags_are_refused(void **state)
{
    (void)state;
    assert_int_equal(serve_exit_code("--preload nope"), 2);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "grep -q \"no model named 'nope'\" %s/err", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(serve_exit_code("--preload ../models/tiny-sd15"), 2);
    assert_int_equal(serve_exit_code("--ram-budget 12Q"), 2);
    assert_int_equal(serve_exit_code("--ram-budget 0"), 2);
    assert_int_equal(serve_exit_code("--ram-budget -5G"), 2);
    assert_int_equal(serve_exit_code("--ram-budget G"), 2);
    assert_int_equal(serve_exit_code("--ram-budget 6GiBs"), 2);
    assert_int_equal(serve_exit_code("--idle-unload -1"), 2);
    assert_int_equal(serve_exit_code("--precision f8"), 2);
    /* two keys under one name would share that name's jobs */
    char keys[256], args[400];
    snprintf(keys, sizeof keys, "%s/dup-keys", dir);
    FILE *f = fopen(keys, "w");
    assert_non_null(f);
    fputs("alice-key-0123456789 alice\nother-key-0123456789 alice\n", f);
    fclose(f);
    snprintf(args, sizeof args, "--api-keys %s", keys);
    assert_int_equal(serve_exit_code(args), 2);
    snprintf(cmd, sizeof cmd, "grep -q 'dup-keys:2: the name is given to two keys' %s/err", dir);
    assert_int_equal(system(cmd), 0);
    /* good sizes pass parsing (--help then ends the run) */
    assert_int_equal(serve_exit_code("--ram-budget 512M --help"), 0);
    assert_int_equal(serve_exit_code("--ram-budget 6GiB --help"), 0);
    assert_int_equal(serve_exit_code("--ram-budget 6G --idle-unload 30 --help"), 0);
    assert_int_equal(serve_exit_code("--ram-budget 1073741824 --help"), 0);
}

/* A prepared model (gesso models prepare) in the models directory is listed,
   loads in workers of its precision, and runs a job. */
static void prepared_model_is_served(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s' models prepare %s --precision f32 --output %s/models/tiny-prep.safetensors "
             ">/dev/null",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), dir);
    assert_int_equal(system(cmd), 0);
    const char *extra[] = {"--precision", "f32", "--preload", "tiny-prep", NULL};
    start(extra);
    wait_loaded("tiny-prep", 1, 60000);
    json_t *m = model_entry("tiny-prep");
    assert_string_equal(json_string_value(json_object_get(m, "family")), "sd1");
    assert_string_equal(json_string_value(json_object_get(m, "dtype")), "f32");
    json_decref(m);
    char *id = test_submit(base, dir, NULL,
                           "{\"model\":\"tiny-prep\",\"steps\":2,\"width\":64,\"height\":64}");
    json_t *j = test_wait_job(base, dir, NULL, id, 60000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    free(id);
    stop();
}

/* Workers started with --precision f16 load a file prepared for f16 (its
   weights f16 as the engine holds them) and run a job on it. */
static void f16_workers_serve_an_f16_prepared_model(void **state)
{
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "'%s' models prepare %s --precision f16 --output %s/models/tiny-f16.safetensors "
             ">/dev/null",
             GS_GESSO_BIN, fixture_path("tiny-sd15.safetensors"), dir);
    assert_int_equal(system(cmd), 0);
    const char *extra[] = {"--precision", "f16", "--preload", "tiny-f16", NULL};
    start(extra);
    wait_loaded("tiny-f16", 1, 60000);
    json_t *m = model_entry("tiny-f16");
    assert_string_equal(json_string_value(json_object_get(m, "dtype")), "f16");
    json_decref(m);
    char *id = test_submit(base, dir, NULL,
                           "{\"model\":\"tiny-f16\",\"steps\":2,\"width\":64,\"height\":64}");
    json_t *j = test_wait_job(base, dir, NULL, id, 60000);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "succeeded");
    json_decref(j);
    free(id);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_flags_are_refused),
        cmocka_unit_test(loaded_after_a_job),
        cmocka_unit_test(preload_loads_without_a_job),
        cmocka_unit_test(idle_unload_frees_the_model),
        cmocka_unit_test(prepared_model_is_served),
        cmocka_unit_test(f16_workers_serve_an_f16_prepared_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
