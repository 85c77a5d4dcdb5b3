/*
 * test_threads - each engine computes on its own thread count: two engines of
 * 1 and 2 threads in one process, driven from a caller whose OpenMP setting is
 * something else again, from one thread and from two at once. What oneDNN's
 * GEMMs run on is the calling thread's OpenMP default team size; the progress
 * callback runs in the middle of a generation, so it sees that setting, and a
 * parallel region there shows the team size it gives. The caller's setting
 * must be as it was after every call.
 */
#include "testutil.h"

#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gesso.h"

typedef struct seen {
    int calls;
    int max_threads; /* omp_get_max_threads() in the callback, the same every call */
    int team;        /* threads of a parallel region opened there */
    int varied;      /* either changed between calls */
} seen;

static int on_progress(const gs_progress *pr, void *user)
{
    (void)pr;
    seen *s = user;
    int max = omp_get_max_threads(), team = 0;
#pragma omp parallel
    {
#pragma omp single
        team = omp_get_num_threads();
    }
    if (s->calls && (max != s->max_threads || team != s->team))
        s->varied = 1;
    s->max_threads = max;
    s->team = team;
    s->calls++;
    return 0;
}

static gs_engine *engine_with(int threads)
{
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = threads;
    eo.precision = GS_PRECISION_F32;
    gs_engine *eng = NULL;
    assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
    return eng;
}

static seen generate(gs_engine *eng, gs_model *m)
{
    gs_params p;
    gs_params_init(&p);
    p.prompt = "a lighthouse";
    p.steps = 2;
    p.width = p.height = 64;
    seen s = {0};
    gs_result *res = NULL;
    assert_int_equal(gs_generate(eng, m, &p, on_progress, &s, &res), GS_OK);
    assert_int_equal(gs_result_count(res), 1);
    gs_result_free(res);
    assert_int_equal(s.calls, 2);
    assert_false(s.varied);
    return s;
}

static void two_engines_one_caller(void **state)
{
    (void)state;
    const char *path = fixture_path("tiny-sd15.safetensors");
    omp_set_num_threads(1);
    /* created in both orders: neither creation may set anyone's threads */
    gs_engine *two = engine_with(2);
    gs_engine *one = engine_with(1);
    assert_int_equal(omp_get_max_threads(), 1);
    gs_engine *two_again = engine_with(2);
    assert_int_equal(omp_get_max_threads(), 1);
    gs_engine_free(two_again);

    gs_model *m1 = NULL, *m2 = NULL;
    assert_int_equal(gs_model_load(one, path, &m1), GS_OK);
    assert_int_equal(gs_model_load(two, path, &m2), GS_OK);
    assert_int_equal(omp_get_max_threads(), 1);

    seen s = generate(two, m2);
    assert_int_equal(s.max_threads, 2);
    assert_int_equal(s.team, 2);
    assert_int_equal(omp_get_max_threads(), 1);

    s = generate(one, m1);
    assert_int_equal(s.max_threads, 1);
    assert_int_equal(s.team, 1);
    assert_int_equal(omp_get_max_threads(), 1);

    /* a caller asking for more than the engine has */
    omp_set_num_threads(3);
    s = generate(one, m1);
    assert_int_equal(s.max_threads, 1);
    assert_int_equal(omp_get_max_threads(), 3);
    double gflops = 0;
    assert_int_equal(gs_engine_gemm_rate(one, &gflops), GS_OK);
    assert_true(gflops > 0);
    assert_int_equal(omp_get_max_threads(), 3);

    /* failures put the caller's setting back too */
    gs_model *none = NULL;
    assert_int_equal(gs_model_load(two, "/nonexistent.safetensors", &none), GS_ERR_IO);
    assert_int_equal(omp_get_max_threads(), 3);
    gs_params bad;
    gs_params_init(&bad);
    bad.width = 65;
    gs_result *res = NULL;
    assert_int_equal(gs_generate(two, m2, &bad, NULL, NULL, &res), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(omp_get_max_threads(), 3);

    gs_model_free(m1);
    gs_model_free(m2);
    gs_engine_free(one);
    gs_engine_free(two);
    omp_set_num_threads(1);
}

typedef struct job {
    gs_engine *eng;
    gs_model *m;
    int caller_threads; /* the thread's own OpenMP setting */
    seen s;
    int after; /* its setting once the generation returned */
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    omp_set_num_threads(j->caller_threads);
    gs_params p;
    gs_params_init(&p);
    p.prompt = "a lighthouse";
    p.steps = 2;
    p.width = p.height = 64;
    gs_result *res = NULL;
    if (gs_generate(j->eng, j->m, &p, on_progress, &j->s, &res) != GS_OK)
        j->s.calls = -1;
    gs_result_free(res);
    j->after = omp_get_max_threads();
    return NULL;
}

/* The two engines busy at once, each from its own thread. */
static void two_engines_two_callers(void **state)
{
    (void)state;
    const char *path = fixture_path("tiny-sd15.safetensors");
    job jobs[2] = {{.eng = engine_with(1), .caller_threads = 2},
                   {.eng = engine_with(2), .caller_threads = 1}};
    for (int i = 0; i < 2; i++)
        assert_int_equal(gs_model_load(jobs[i].eng, path, &jobs[i].m), GS_OK);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_job, &jobs[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(jobs[i].s.calls, 2);
        assert_false(jobs[i].s.varied);
        assert_int_equal(jobs[i].s.max_threads, i + 1);
        assert_int_equal(jobs[i].after, jobs[i].caller_threads);
        gs_model_free(jobs[i].m);
        gs_engine_free(jobs[i].eng);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_engines_one_caller),
        cmocka_unit_test(two_engines_two_callers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
