/*
 * test_model_cache - the worker's model cache on three names for one small
 * checkpoint (so each costs the same): LRU eviction
 * order under a budget that fits two, the model in use never evicted, idle
 * unload on a caller-driven clock, a single model larger than the budget,
 * a model grown by a job recounted when it comes back, a file never loaded
 * guessed from the loads before it, and a failed load leaving the cache as it
 * was.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gesso.h"
#include "worker/model_cache.h"

static char dir[128];
static gs_engine *eng;
static size_t cost; /* weight_bytes of one model */

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/gesso-cache-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    /* three names for the tiny fixture: the cache knows models by name, and
       equal files cost the same (and load fastest) */
    static const char *const names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, names[i]);
        if (symlink(fixture_path("tiny-sd15.safetensors"), path) != 0)
            return -1;
    }
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    /* bf16 on every CPU: an f16 file then costs less than its size (about two
       thirds), where an f32 engine's costs twice it, and the cache's guess for
       a file never loaded must not evict a model that fits */
    eo.precision = GS_PRECISION_BF16;
    if (gs_engine_create(&eo, &eng) != GS_OK)
        return -1;
    char path[256];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    gs_model *m;
    if (gs_model_load(eng, path, &m) != GS_OK)
        return -1;
    gs_model_info info;
    gs_model_get_info(m, &info);
    cost = info.weight_bytes;
    gs_model_free(m);
    return cost > 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    gs_engine_free(eng);
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void count_change(void *user)
{
    (*(int *)user)++;
}

static model_cache *cache(size_t budget, int64_t idle_ms, int *changes)
{
    model_cache_options o = {.models_dir = dir,
                             .budget_bytes = budget,
                             .idle_ms = idle_ms,
                             .on_change = changes ? count_change : NULL,
                             .user = changes};
    model_cache *c = model_cache_create(eng, &o);
    assert_non_null(c);
    return c;
}

static gs_model *acquire(model_cache *c, const char *name, int64_t now)
{
    gs_model *m = NULL;
    char msg[512] = "";
    gs_status st = model_cache_acquire(c, name, now, &m, msg, sizeof msg);
    if (st != GS_OK)
        fail_msg("acquire %s: %s", name, msg);
    assert_non_null(m);
    return m;
}

static void use(model_cache *c, const char *name, int64_t now)
{
    model_cache_release(c, acquire(c, name, now), now);
}

/* The loaded names, most recently used first, joined: "c,a". */
static const char *names(const model_cache *c)
{
    static char buf[64];
    buf[0] = '\0';
    size_t k = 0;
    for (int i = 0; i < model_cache_count(c); i++)
        k +=
            (size_t)snprintf(buf + k, sizeof buf - k, "%s%s", i ? "," : "", model_cache_name(c, i));
    return buf;
}

static void weight_bytes_is_reported(void **state)
{
    (void)state;
    /* more than nothing, and of the order of the file (f16 on disk, f32 or bf16 in memory) */
    char path[256];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long file = ftell(f);
    fclose(f);
    assert_true(cost > (size_t)file / 2 && cost < (size_t)file * 3);
}

/* A job that grows its model (the first to encode an image brings the VAE's
   encoder in) changes its cost when the model comes back: the cache counts the
   new cost and makes the room from the other models, not from the grown one. */
static void grown_model_recounted_on_release(void **state)
{
    (void)state;
    int changes = 0;
    model_cache *c = cache(2 * cost + cost / 100, 0, &changes);
    use(c, "b", 1);
    gs_model *a = acquire(c, "a", 2);
    gs_params p;
    gs_params_init(&p);
    p.prompt = "a red boat";
    p.width = p.height = 64;
    p.steps = 1;
    p.strength = 0.5f;
    gs_image *init = NULL;
    assert_int_equal(gs_image_load(fixture_path("init-img2img_euler_a.png"), &init, NULL, 0),
                     GS_OK);
    p.width = init->width;
    p.height = init->height;
    p.init_image = init;
    gs_result *res = NULL;
    assert_int_equal(gs_generate(eng, a, &p, NULL, NULL, &res), GS_OK);
    gs_result_free(res);
    gs_model_info info;
    gs_model_get_info(a, &info);
    assert_true(info.weight_bytes > cost);
    assert_string_equal(names(c), "a,b");
    model_cache_release(c, a, 3);
    assert_string_equal(names(c), "a"); /* b made the room */
    assert_int_equal(model_cache_bytes(c), info.weight_bytes);
    assert_int_equal(changes, 4); /* loads of b and a, the eviction of b, the recount */
    model_cache_free(c);
    /* alone and grown past the budget, it stays (as a model alone larger than
       the budget does) rather than being evicted as it comes back */
    c = cache(cost + cost / 100, 0, NULL);
    a = acquire(c, "a", 1);
    assert_int_equal(gs_generate(eng, a, &p, NULL, NULL, &res), GS_OK);
    gs_result_free(res);
    model_cache_release(c, a, 2);
    assert_string_equal(names(c), "a");
    model_cache_free(c);
    gs_image_free(init);
}

static void lru_eviction_order(void **state)
{
    (void)state;
    int changes = 0;
    model_cache *c = cache(2 * cost + cost / 2, 0, &changes);
    use(c, "a", 1);
    use(c, "b", 2);
    assert_string_equal(names(c), "b,a");
    use(c, "a", 3); /* a hit: a becomes the most recent, b the least */
    assert_string_equal(names(c), "a,b");
    assert_int_equal(changes, 2);
    use(c, "c", 4); /* fits two: b goes */
    assert_string_equal(names(c), "c,a");
    assert_int_equal(model_cache_bytes(c), 2 * cost);
    assert_int_equal(changes, 4); /* loads of a, b, c and the eviction of b */
    use(c, "b", 5);               /* now a is the least recent */
    assert_string_equal(names(c), "b,c");
    model_cache_free(c);
}

static void in_use_model_never_evicted(void **state)
{
    (void)state;
    model_cache *c = cache(2 * cost + cost / 2, 0, NULL);
    gs_model *a = acquire(c, "a", 1); /* held by the running job */
    use(c, "b", 2);
    use(c, "c", 3); /* a is the least recently used, but in use: b goes */
    assert_string_equal(names(c), "c,a");
    model_cache_release(c, a, 4);
    model_cache_free(c);

    /* a budget of one model: the held one stays and the cache goes over budget */
    c = cache(cost + cost / 2, 0, NULL);
    a = acquire(c, "a", 1);
    gs_model *b = acquire(c, "b", 2);
    assert_string_equal(names(c), "b,a");
    assert_int_equal(model_cache_bytes(c), 2 * cost);
    model_cache_release(c, b, 3);
    use(c, "c", 4); /* b is free to go; a is still held */
    assert_string_equal(names(c), "c,a");
    model_cache_release(c, a, 5);
    use(c, "b", 6); /* nothing held: back under budget */
    assert_string_equal(names(c), "b");
    model_cache_free(c);
}

static void idle_unload(void **state)
{
    (void)state;
    int changes = 0;
    model_cache *c = cache(0, 10000, &changes);
    use(c, "a", 1000);
    gs_model *b = acquire(c, "b", 5000);
    assert_int_equal(model_cache_unload_idle(c, 10999), 0); /* a idle 9999 ms */
    assert_int_equal(model_cache_unload_idle(c, 11000), 1);
    assert_string_equal(names(c), "b");
    assert_int_equal(model_cache_unload_idle(c, 100000), 0); /* b is in use however long */
    model_cache_release(c, b, 20000);
    assert_int_equal(model_cache_unload_idle(c, 29999), 0);
    assert_int_equal(model_cache_unload_idle(c, 30000), 1);
    assert_int_equal(model_cache_count(c), 0);
    assert_int_equal(model_cache_bytes(c), 0);
    assert_int_equal(changes, 4); /* two loads, two unloads */
    model_cache_free(c);

    c = cache(0, 0, NULL); /* 0 = never */
    use(c, "a", 0);
    assert_int_equal(model_cache_unload_idle(c, INT64_MAX / 2), 0);
    assert_string_equal(names(c), "a");
    model_cache_free(c);
}

static void over_budget_single_model(void **state)
{
    (void)state;
    model_cache *c = cache(cost / 2, 0, NULL);
    use(c, "a", 1); /* alone larger than the budget: loads all the same */
    assert_string_equal(names(c), "a");
    use(c, "b", 2); /* everything else goes first */
    assert_string_equal(names(c), "b");
    assert_int_equal(model_cache_bytes(c), cost);
    assert_int_equal(model_cache_preload(c, "c", 3, (char[64]){0}, 64), GS_OK);
    assert_string_equal(names(c), "c");
    model_cache_free(c);
}

static void failed_load_leaves_cache_as_it_was(void **state)
{
    (void)state;
    model_cache *c = cache(0, 0, NULL);
    use(c, "a", 1);
    gs_model *m = (gs_model *)1;
    char msg[512] = "";
    assert_int_not_equal(model_cache_acquire(c, "missing", 2, &m, msg, sizeof msg), GS_OK);
    assert_null(m);
    assert_non_null(strstr(msg, "missing"));
    assert_int_not_equal(model_cache_preload(c, "missing", 3, msg, sizeof msg), GS_OK);
    assert_string_equal(names(c), "a");
    assert_int_equal(model_cache_bytes(c), cost);
    model_cache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(weight_bytes_is_reported),
        cmocka_unit_test(lru_eviction_order),
        cmocka_unit_test(grown_model_recounted_on_release),
        cmocka_unit_test(in_use_model_never_evicted),
        cmocka_unit_test(idle_unload),
        cmocka_unit_test(over_budget_single_model),
        cmocka_unit_test(failed_load_leaves_cache_as_it_was),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
