/* test_schedule - training table, sampling schedules and timesteps against the goldens. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sample/sampler.h"
#include "sample/schedule.h"

static sched_train train;

static int setup(void **state)
{
    (void)state;
    sched_train_init(&train);
    return 0;
}

static long f32_ulps(double a, double b)
{
    float fa = (float)a, fb = (float)b;
    int32_t ia, ib;
    memcpy(&ia, &fa, 4);
    memcpy(&ib, &fb, 4);
    return labs((long)ia - (long)ib);
}

static void sigmas_train_bit_exact(void **state)
{
    (void)state;
    size_t n;
    double *g = golden_f64("schedule.sigmas_train", &n);
    assert_int_equal(n, SCHED_TRAIN_STEPS);
    int exact = 0;
    for (size_t i = 0; i < n; i++)
        exact += train.sigmas[i] == g[i];
    printf("sigmas_train: %d of 1000 bit-exact\n", exact);
    assert_int_equal(exact, SCHED_TRAIN_STEPS);
    /* ᾱ lookup is the same table: ᾱ = 1/(1+σ²) */
    double worst = 0;
    for (int t = 0; t < SCHED_TRAIN_STEPS; t++) {
        double want = 1.0 / (1.0 + g[t] * g[t]);
        double rel = fabs(sched_alpha_cumprod(&train, t) - want) / want;
        worst = rel > worst ? rel : worst;
    }
    assert_true(worst < 1e-14);
    /* ᾱ_0 = 1 − β_0 with β_0 = float(√0.00085)² in float32 */
    float r0 = (float)sqrt(0.00085);
    assert_true(sched_alpha_cumprod(&train, 0) == (double)(1.0f - r0 * r0));
    assert_true(sched_alpha_cumprod(&train, -5) == sched_alpha_cumprod(&train, 0));
    assert_true(sched_alpha_cumprod(&train, 5000) == sched_alpha_cumprod(&train, 999));
    free(g);
}

/* normal is float64 math on a float32 ramp: agrees to double rounding;
 * karras/exponential are float32 math in the reference (its vectorised
 * powf/expf): agree within 1 float ulp. */
static void schedules_match_golden(void **state)
{
    (void)state;
    static const int counts[] = {1, 2, 3, 4, 10, 20, 30, 50};
    for (int k = 0; k < 3; k++) {
        double worst_rel = 0;
        long worst_ulp = 0;
        int exact = 0, total = 0;
        for (size_t j = 0; j < sizeof counts / sizeof *counts; j++) {
            char name[64];
            snprintf(name, sizeof name, "schedule.%s.%d", sched_name((sched_kind)k), counts[j]);
            size_t n;
            double *g = golden_f64(name, &n);
            assert_int_equal(n, (size_t)counts[j] + 1);
            double out[SCHED_TRAIN_STEPS + 1];
            gi_error err = {0};
            assert_int_equal(sched_sigmas(&train, (sched_kind)k, counts[j], out, &err), GS_OK);
            assert_true(out[counts[j]] == 0.0);
            for (size_t i = 0; i < n; i++) {
                double rel = g[i] != 0 ? fabs(out[i] - g[i]) / g[i] : fabs(out[i]);
                worst_rel = rel > worst_rel ? rel : worst_rel;
                long u = f32_ulps(out[i], g[i]);
                worst_ulp = u > worst_ulp ? u : worst_ulp;
                exact += out[i] == g[i];
                total++;
            }
            free(g);
        }
        printf("schedule %-11s %d/%d bit-exact, worst rel %.3g, worst %ld f32 ulp\n",
               sched_name((sched_kind)k), exact, total, worst_rel, worst_ulp);
        if (k == SCHED_NORMAL)
            assert_true(worst_rel < 1e-14);
        else
            assert_true(worst_ulp <= 1);
    }
}

static void ddim_and_lcm_timesteps(void **state)
{
    (void)state;
    gi_error err = {0};
    int ts[SCHED_TRAIN_STEPS];
    size_t n;
    double *g = golden_f64("pipe.ddim.timesteps", &n);
    assert_int_equal(n, 10);
    assert_int_equal(sched_ddim_timesteps(10, ts, &err), GS_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ts[i], (int)g[i]);
    free(g);
    assert_int_equal(sched_ddim_timesteps(50, ts, &err), GS_OK);
    assert_int_equal(ts[0], 981);
    assert_int_equal(ts[49], 1);
    assert_int_equal(sched_ddim_prev_timestep(981, 50), 961);
    assert_int_equal(sched_ddim_timesteps(999, ts, &err), GS_OK);
    assert_int_equal(ts[0], 999);
    assert_int_equal(sched_ddim_timesteps(1000, ts, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(sched_ddim_timesteps(0, ts, &err), GS_ERR_INVALID_ARGUMENT);

    g = golden_f64("pipe.lcm.timesteps", &n);
    assert_int_equal(n, 4);
    assert_int_equal(sched_lcm_timesteps(4, 50, ts, &err), GS_OK);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ts[i], (int)g[i]);
    free(g);
    assert_int_equal(sched_lcm_timesteps(1, 50, ts, &err), GS_OK);
    assert_int_equal(ts[0], 999);
    assert_int_equal(sched_lcm_timesteps(2, 50, ts, &err), GS_OK);
    assert_int_equal(ts[1], 499);
    assert_int_equal(sched_lcm_timesteps(50, 50, ts, &err), GS_OK);
    assert_int_equal(ts[49], 19);
    assert_int_equal(sched_lcm_timesteps(51, 50, ts, &err), GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "1..50"));
}

/* Every pipe.*.sigmas through the same path sample_run takes. */
static void pipe_sigmas_match(void **state)
{
    (void)state;
    static const struct {
        const char *name, *sampler, *scheduler;
        int steps;
        float strength; /* 0: txt2img */
    } recipes[] = {
        {"euler", "euler", "normal", 8, 0},
        {"euler_a", "euler_a", "normal", 8, 0},
        {"dpmpp_2m_karras", "dpmpp_2m", "karras", 10, 0},
        {"heun", "heun", "normal", 4, 0},
        {"euler_clipskip2_batch2", "euler", "normal", 6, 0},
        {"img2img_euler_a", "euler_a", "normal", 10, 0.6f},
    };
    float dummy[1] = {0};
    for (size_t r = 0; r < sizeof recipes / sizeof *recipes; r++) {
        sample_config cfg = {.sampler = recipes[r].sampler,
                             .scheduler = recipes[r].scheduler,
                             .steps = recipes[r].steps,
                             .batch = 1,
                             .channels = 4,
                             .height = 8,
                             .width = 8,
                             .init_latent = recipes[r].strength > 0 ? dummy : NULL,
                             .strength = recipes[r].strength};
        char name[96];
        snprintf(name, sizeof name, "pipe.%s.sigmas", recipes[r].name);
        size_t n;
        double *g = golden_f64(name, &n);
        double out[SAMPLE_MAX_STEPS + 1];
        int count = 0;
        gi_error err = {0};
        assert_int_equal(sample_sigmas(&cfg, &train, out, &count, &err), GS_OK);
        assert_int_equal((size_t)count, n);
        assert_int_equal(sample_progress_total(&cfg), count - 1);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double rel = g[i] != 0 ? fabs(out[i] - g[i]) / g[i] : fabs(out[i]);
            worst = rel > worst ? rel : worst;
        }
        printf("%-40s %2zu sigmas, worst rel %.3g\n", name, n, worst);
        assert_true(worst < 2.5e-7); /* karras: 1 f32 ulp; normal: ~1e-16 */
        free(g);
    }
}

/* img2img: t_enc = ⌊min(strength, 0.999)·steps⌋ with the decimal strength. */
static void img2img_step_counts(void **state)
{
    (void)state;
    float dummy[1] = {0};
    sample_config cfg = {.sampler = "euler",
                         .steps = 10,
                         .batch = 1,
                         .channels = 4,
                         .height = 8,
                         .width = 8,
                         .init_latent = dummy};
    static const struct {
        float strength;
        int total;
    } cases[] = {{0.7f, 8}, {0.3f, 4}, {1.0f, 10}, {0.05f, 1}, {0.6f, 7}, {0.99f, 10}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cfg.strength = cases[i].strength;
        assert_int_equal(sample_progress_total(&cfg), cases[i].total);
    }
    /* strength 1 starts one step below σ_max, as A1111 does */
    double full[11], part[11];
    int count;
    gi_error err = {0};
    cfg.strength = 1.0f;
    assert_int_equal(sample_sigmas(&cfg, &train, part, &count, &err), GS_OK);
    assert_int_equal(sched_sigmas(&train, SCHED_NORMAL, 10, full, &err), GS_OK);
    assert_int_equal(count, 11);
    assert_true(part[0] == full[0]);
    /* ddim/lcm img2img keep the last ⌊strength·steps⌋ timesteps */
    cfg.sampler = "ddim";
    cfg.strength = 0.7f;
    int ts[10];
    assert_int_equal(sample_timesteps(&cfg, ts, &count, &err), GS_OK);
    assert_int_equal(count, 7);
    assert_int_equal(ts[0], 601);
    assert_int_equal(ts[6], 1);
}

static void t_and_sigma_are_inverse(void **state)
{
    (void)state;
    for (int t = 0; t < SCHED_TRAIN_STEPS; t += 37) {
        assert_true(fabs(sched_sigma_to_t(&train, train.sigmas[t]) - t) < 1e-9);
        /* exp(log σ), as k-diffusion computes it: equal to double rounding */
        assert_true(fabs(sched_t_to_sigma(&train, t) / train.sigmas[t] - 1) < 1e-15);
    }
    for (double t = 0.25; t < 999; t += 12.7) {
        double s = sched_t_to_sigma(&train, t);
        assert_true(fabs(sched_sigma_to_t(&train, s) - t) < 1e-9);
    }
    /* outside the table sigma_to_t clamps */
    assert_true(sched_sigma_to_t(&train, 1e-4) == 0.0);
    assert_true(sched_sigma_to_t(&train, 100.0) == 999.0);
    assert_true(sched_sigma_to_t(&train, train.sigmas[999]) == 999.0);
}

static void linspace_like_torch(void **state)
{
    (void)state;
    float v[50];
    sched_linspace_f32(0.0f, 1.0f, 5, v);
    const float want[5] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f};
    assert_memory_equal(v, want, sizeof want);
    sched_linspace_f32(999.0f, 0.0f, 4, v);
    assert_true(v[1] == 666.0f && v[2] == 333.0f && v[3] == 0.0f);
    sched_linspace_f32(3.0f, 7.0f, 1, v);
    assert_true(v[0] == 3.0f);
    /* both ends exact for a vectorised length */
    sched_linspace_f32(999.0f, 0.0f, 50, v);
    assert_true(v[0] == 999.0f && v[49] == 0.0f);
}

static void bad_arguments(void **state)
{
    (void)state;
    double out[SCHED_TRAIN_STEPS + 2];
    gi_error err = {0};
    assert_int_equal(sched_sigmas(&train, SCHED_KARRAS, 0, out, &err), GS_ERR_INVALID_ARGUMENT);
    assert_int_equal(sched_sigmas(&train, SCHED_KARRAS, 1001, out, &err), GS_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(err.msg, "steps"));
    assert_int_equal(sched_sigmas(&train, (sched_kind)7, 10, out, &err), GS_ERR_INVALID_ARGUMENT);
    sched_kind k;
    assert_int_equal(sched_parse("karras", &k), 0);
    assert_int_equal(k, SCHED_KARRAS);
    assert_int_equal(sched_parse("Karras", &k), -1);
    assert_int_equal(sched_sigmas(&train, SCHED_NORMAL, 1000, out, &err), GS_OK);
    assert_true(out[0] == train.sigmas[999] && out[999] == train.sigmas[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sigmas_train_bit_exact), cmocka_unit_test(schedules_match_golden),
        cmocka_unit_test(ddim_and_lcm_timesteps), cmocka_unit_test(pipe_sigmas_match),
        cmocka_unit_test(img2img_step_counts),    cmocka_unit_test(t_and_sigma_are_inverse),
        cmocka_unit_test(linspace_like_torch),    cmocka_unit_test(bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
