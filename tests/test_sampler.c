/*
 * test_sampler - the samplers on a model whose answer is known in closed form.
 *
 * For data x0 ~ N(0, s²I) the ideal denoiser is D(x,σ) = x·s²/(s²+σ²), so the
 * ε-model is ε = (x − D)/σ = x·σ/(s²+σ²) with x = x_in·√(σ²+1) (the model
 * sees the variance-preserving input). The probability-flow ODE
 * dx/dσ = (x − D)/σ then integrates to x(σ) = x(σ₀)·√((s²+σ²)/(s²+σ₀²)).
 * Every schedule ends with a jump from σ_min to 0 that all three ODE samplers
 * take as x ← D(x, σ_min), so their exact answer is
 *     x_final = noise·σ₀ · √((s²+σ_min²)/(s²+σ₀²)) · s²/(s²+σ_min²).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "gesso.h"
#include "sample/sampler.h"

#define DATA_VAR 1.0 /* s² */
#define MAX_CALLS 4096

typedef struct probe {
    sched_train train;
    int calls;      /* model evaluations */
    int steps_seen; /* callbacks */
    int cancel_at;  /* callback step that cancels; 0 = never */
    int fail_at;    /* model call that fails; 0 = never */
    int last_total; /* total reported by the callback */
    double t[MAX_CALLS];
    float *first_x_in; /* [n] copy of the first model input, when set */
    size_t n;
} probe;

static gs_status analytic_eps(void *user, const float *x_in, double t, float *eps, gi_error *err)
{
    probe *p = user;
    if (p->calls < MAX_CALLS)
        p->t[p->calls] = t;
    p->calls++;
    if (p->fail_at && p->calls == p->fail_at)
        return gi_fail(err, GS_ERR_INTERNAL, "model exploded");
    if (p->calls == 1 && p->first_x_in)
        memcpy(p->first_x_in, x_in, p->n * sizeof *x_in);
    double sigma = sched_t_to_sigma(&p->train, t);
    double scale = sqrt(sigma * sigma + 1.0) * sigma / (DATA_VAR + sigma * sigma);
    for (size_t i = 0; i < p->n; i++)
        eps[i] = (float)(x_in[i] * scale);
    return GS_OK;
}

static int count_steps(void *user, int step, int total, const float *x, const float *denoised)
{
    probe *p = user;
    p->steps_seen++;
    p->last_total = total;
    assert_int_equal(step, p->steps_seen);
    assert_non_null(x);
    assert_non_null(denoised);
    return p->cancel_at && step == p->cancel_at;
}

static sample_config make_cfg(const char *sampler, const char *scheduler, int steps)
{
    sample_config cfg = {.sampler = sampler,
                         .scheduler = scheduler,
                         .steps = steps,
                         .batch = 1,
                         .channels = 4,
                         .height = 2,
                         .width = 2};
    return cfg;
}

static size_t cfg_numel(const sample_config *cfg)
{
    return (size_t)cfg->batch * cfg->channels * cfg->height * cfg->width;
}

static probe *new_probe(size_t n)
{
    probe *p = calloc(1, sizeof *p);
    assert_non_null(p);
    sched_train_init(&p->train);
    p->n = n;
    return p;
}

/* Runs cfg with seed 1 and returns the relative L2 error against the
 * closed-form ODE solution (see the file comment). */
static double ode_error(const sample_config *cfg)
{
    size_t n = cfg_numel(cfg);
    probe *p = new_probe(n);
    float *x = malloc(n * sizeof *x), *noise = malloc(n * sizeof *noise);
    assert_non_null(x);
    assert_non_null(noise);
    gi_rng rng;
    rng_seed(&rng, 1);
    rng_randn(&rng, noise, n);
    rng_seed(&rng, 1);
    gi_error err = {0};
    assert_int_equal(sample_run(cfg, &rng, analytic_eps, count_steps, p, x, &err), GS_OK);
    assert_int_equal(p->steps_seen, cfg->steps);

    double sig[SAMPLE_MAX_STEPS + 1];
    int count;
    assert_int_equal(sample_sigmas(cfg, &p->train, sig, &count, &err), GS_OK);
    double s0 = sig[0], smin = sig[count - 2];
    double factor = s0 * sqrt((DATA_VAR + smin * smin) / (DATA_VAR + s0 * s0)) * DATA_VAR /
                    (DATA_VAR + smin * smin);
    /* lms integrates its polynomial down to 0 instead of jumping to D: the
       ODE's own x(0) = x(σ₀)·√(s²/(s²+σ₀²)) */
    if (strcmp(cfg->sampler, "lms") == 0)
        factor = s0 * sqrt(DATA_VAR / (DATA_VAR + s0 * s0));
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double want = noise[i] * factor;
        num += (x[i] - want) * (x[i] - want);
        den += want * want;
    }
    free(x);
    free(noise);
    free(p);
    return sqrt(num / den);
}

static void check_order(const char *sampler, const char *scheduler, double lo, double hi)
{
    static const int steps[] = {20, 40, 80, 160};
    double e[4];
    for (int i = 0; i < 4; i++) {
        sample_config cfg = make_cfg(sampler, scheduler, steps[i]);
        e[i] = ode_error(&cfg);
    }
    printf("%-8s %-11s error at 20/40/80/160 steps: %.3e %.3e %.3e %.3e; ratios %.2f %.2f %.2f\n",
           sampler, scheduler, e[0], e[1], e[2], e[3], e[0] / e[1], e[1] / e[2], e[2] / e[3]);
    for (int i = 0; i < 3; i++) {
        double ratio = e[i] / e[i + 1];
        assert_true(ratio > lo && ratio < hi);
    }
}

/* euler: first order, the error halves as steps double */
static void euler_converges_first_order(void **state)
{
    (void)state;
    check_order("euler", "normal", 1.7, 2.3);
    check_order("euler", "karras", 1.7, 2.3);
}

/* heun and dpmpp_2m: second order, the error quarters */
static void second_order_samplers_converge(void **state)
{
    (void)state;
    check_order("heun", "normal", 3.3, 4.7);
    check_order("heun", "karras", 3.3, 4.7);
    check_order("dpmpp_2m", "karras", 3.3, 4.7);
    check_order("dpmpp_2m", "exponential", 3.3, 4.7);
}

/* lms (order 4 once four slopes are known; its order-1..3 start-up and the
   last step to 0 keep the measured ratios at 9.9-12.3) and dpm_2 (second
   order, 4.03-4.09) on the same ODE */
static void more_samplers_converge(void **state)
{
    (void)state;
    check_order("lms", "karras", 8.0, 16.0);
    check_order("dpm_2", "karras", 3.5, 4.6);
}

/* The model sees t(σ) for every σ of the schedule; heun evaluates twice per
 * step except the last. */
static void model_sees_schedule_timesteps(void **state)
{
    (void)state;
    sample_config cfg = make_cfg("heun", NULL, 4);
    probe *p = new_probe(cfg_numel(&cfg));
    float x[16];
    gi_rng rng;
    rng_seed(&rng, 3);
    gi_error err = {0};
    assert_int_equal(sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err), GS_OK);
    assert_int_equal(p->calls, 2 * 4 - 1);
    assert_int_equal(p->steps_seen, 4);
    /* normal(4): t = 999, 666, 333, 0; heun's corrector looks at the next σ */
    const double want[7] = {999, 666, 666, 333, 333, 0, 0};
    for (int i = 0; i < 7; i++)
        assert_true(fabs(p->t[i] - want[i]) < 1e-9);
    free(p);
}

/* Replays euler_a by hand: same generator, D written out directly. The
 * generator must end in the same state, i.e. exactly one noise draw per step
 * whose next σ is above 0, in order after the initial noise. */
static void euler_a_draws_noise_in_order(void **state)
{
    (void)state;
    sample_config cfg = make_cfg("euler_a", "karras", 7);
    size_t n = cfg_numel(&cfg);
    probe *p = new_probe(n);
    float x[16], y[16], z[16];
    gi_rng rng, replay;
    rng_seed(&rng, 1234);
    rng_seed(&replay, 1234);
    gi_error err = {0};
    assert_int_equal(sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err), GS_OK);

    double sig[8];
    int count;
    assert_int_equal(sample_sigmas(&cfg, &p->train, sig, &count, &err), GS_OK);
    rng_randn(&replay, y, n);
    for (size_t i = 0; i < n; i++)
        y[i] *= (float)sig[0];
    int draws = 1;
    for (int s = 0; s < 7; s++) {
        double from = sig[s], to = sig[s + 1];
        double up = fmin(to, sqrt(to * to * (from * from - to * to) / (from * from)));
        double down = sqrt(to * to - up * up);
        for (size_t i = 0; i < n; i++) {
            double d = y[i] * DATA_VAR / (DATA_VAR + from * from);
            y[i] = (float)(y[i] + (y[i] - d) / from * (down - from));
        }
        if (to > 0) {
            rng_randn(&replay, z, n);
            draws++;
            for (size_t i = 0; i < n; i++)
                y[i] = (float)(y[i] + z[i] * up);
        }
    }
    assert_int_equal(draws, 7);
    assert_int_equal(rng_u32(&rng), rng_u32(&replay));
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(x[i] - y[i]) / fmax(fabs(y[i]), 1e-3));
    printf("euler_a replay: worst rel %.3g\n", worst);
    assert_true(worst < 1e-5);
    free(p);
}

/* LCM by hand (diffusers' step), with ᾱ from the golden training sigmas. */
static void lcm_matches_hand_replay(void **state)
{
    (void)state;
    sample_config cfg = make_cfg("lcm", NULL, 4);
    size_t n = cfg_numel(&cfg);
    probe *p = new_probe(n);
    double *gs = golden_f64("schedule.sigmas_train", NULL);
    float x[16], y[16], z[16];
    gi_rng rng, replay;
    rng_seed(&rng, 5);
    rng_seed(&replay, 5);
    gi_error err = {0};
    assert_int_equal(sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err), GS_OK);
    assert_int_equal(p->calls, 4);

    const int ts[4] = {999, 759, 499, 259};
    rng_randn(&replay, y, n);
    for (int s = 0; s < 4; s++) {
        assert_true(p->t[s] == ts[s]);
        int t = ts[s];
        double a = 1.0 / (1.0 + gs[t] * gs[t]), sigma = gs[t];
        double ct = t * 10.0, c_skip = 0.25 / (ct * ct + 0.25), c_out = ct / sqrt(ct * ct + 0.25);
        if (s < 3)
            rng_randn(&replay, z, n);
        for (size_t i = 0; i < n; i++) {
            /* the model hands back float ε; x0 amplifies its rounding by 1/√ᾱ·√(1−ᾱ)
             * (≈ 15 at t = 999), so the replay rounds it the same way */
            double eps = (float)(y[i] / sqrt(a) * sigma / (DATA_VAR + sigma * sigma));
            double x0 = (y[i] - sqrt(1 - a) * eps) / sqrt(a);
            double den = c_out * x0 + c_skip * y[i];
            if (s < 3) {
                double ap = 1.0 / (1.0 + gs[ts[s + 1]] * gs[ts[s + 1]]);
                y[i] = (float)(sqrt(ap) * den + sqrt(1 - ap) * z[i]);
            } else {
                y[i] = (float)den;
            }
        }
    }
    assert_int_equal(rng_u32(&rng), rng_u32(&replay));
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(x[i] - y[i]) / fmax(fabs(y[i]), 1e-3));
    printf("lcm replay: worst rel %.3g\n", worst);
    assert_true(worst < 1e-5);
    free(gs);
    free(p);
}

/* DDIM (η = 0, leading, ᾱ_prev = ᾱ_0 at the end) by hand for 3 steps. */
static void ddim_matches_hand_computation(void **state)
{
    (void)state;
    sample_config cfg = make_cfg("ddim", "default", 3);
    size_t n = cfg_numel(&cfg);
    probe *p = new_probe(n);
    double *gs = golden_f64("schedule.sigmas_train", NULL);
    float x[16], y[16];
    gi_rng rng;
    rng_seed(&rng, 11);
    gi_error err = {0};
    assert_int_equal(sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err), GS_OK);

    const int ts[3] = {667, 334, 1}; /* ⌊1000/3⌋ = 333, offset 1 */
    rng_seed(&rng, 11);
    rng_randn(&rng, y, n);
    for (int s = 0; s < 3; s++) {
        assert_true(p->t[s] == ts[s]);
        int t = ts[s], prev = s < 2 ? ts[s + 1] : 0;
        double a = 1.0 / (1.0 + gs[t] * gs[t]), ap = 1.0 / (1.0 + gs[prev] * gs[prev]);
        for (size_t i = 0; i < n; i++) {
            double eps = y[i] / sqrt(a) * gs[t] / (DATA_VAR + gs[t] * gs[t]);
            double x0 = (y[i] - sqrt(1 - a) * eps) / sqrt(a);
            y[i] = (float)(sqrt(ap) * x0 + sqrt(1 - ap) * eps);
        }
    }
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(x[i] - y[i]) / fmax(fabs(y[i]), 1e-3));
    printf("ddim hand computation: worst rel %.3g\n", worst);
    assert_true(worst < 1e-5);
    free(gs);
    free(p);
}

/* The initial noise of every recipe is one torch.randn of [batch,4,h/8,w/8]
 * with the recipe's seed, and sample_run starts from it. */
static void pipe_noise_is_the_first_draw(void **state)
{
    (void)state;
    static const struct {
        const char *name, *sampler;
        uint64_t seed;
        int batch, h, w;
    } recipes[] = {
        {"euler", "euler", 42, 1, 8, 8},
        {"euler_a", "euler_a", 1234, 1, 8, 8},
        {"dpmpp_2m_karras", "dpmpp_2m", 7, 1, 8, 16},
        {"heun", "heun", 3, 1, 8, 8},
        {"ddim", "ddim", 11, 1, 8, 8},
        {"lcm", "lcm", 5, 1, 8, 8},
        {"euler_clipskip2_batch2", "euler", 2024, 2, 16, 8},
        {"img2img_euler_a", "euler_a", 99, 1, 8, 8},
    };
    for (size_t r = 0; r < sizeof recipes / sizeof *recipes; r++) {
        char name[96];
        snprintf(name, sizeof name, "pipe.%s.noise", recipes[r].name);
        size_t n;
        double *g = golden_f64(name, &n);
        assert_int_equal(n, (size_t)recipes[r].batch * 4 * recipes[r].h * recipes[r].w);
        float *noise = malloc(n * sizeof *noise);
        assert_non_null(noise);
        gi_rng rng;
        rng_seed(&rng, recipes[r].seed);
        rng_randn(&rng, noise, n);
        for (size_t i = 0; i < n; i++)
            assert_true((double)noise[i] == g[i]);

        /* the first model input sample_run produces comes from that noise */
        sample_config cfg = make_cfg(recipes[r].sampler, NULL, 2);
        cfg.batch = recipes[r].batch;
        cfg.height = recipes[r].h;
        cfg.width = recipes[r].w;
        double *init = NULL;
        float *init_f = NULL;
        if (strstr(recipes[r].name, "img2img")) {
            init = golden_f64("pipe.img2img_euler_a.init_latent", NULL);
            init_f = malloc(n * sizeof *init_f);
            assert_non_null(init_f);
            for (size_t i = 0; i < n; i++)
                init_f[i] = (float)init[i];
            cfg.init_latent = init_f;
            cfg.strength = 0.6f;
            cfg.steps = 10;
        }
        probe *p = new_probe(n);
        p->first_x_in = malloc(n * sizeof(float));
        float *x = malloc(n * sizeof *x);
        assert_non_null(p->first_x_in);
        assert_non_null(x);
        rng_seed(&rng, recipes[r].seed);
        gi_error err = {0};
        assert_int_equal(sample_run(&cfg, &rng, analytic_eps, NULL, p, x, &err), GS_OK);
        double sig[SAMPLE_MAX_STEPS + 1];
        int count;
        double s0 = 0;
        if (sample_is_k_sampler(cfg.sampler)) {
            assert_int_equal(sample_sigmas(&cfg, &p->train, sig, &count, &err), GS_OK);
            s0 = sig[0];
        }
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double want = s0 ? (init ? init[i] : 0.0) + g[i] * s0 : g[i];
            double got = s0 ? p->first_x_in[i] * sqrt(s0 * s0 + 1) : p->first_x_in[i];
            worst = fmax(worst, fabs(got - want) / fmax(fabs(want), 1.0));
        }
        assert_true(worst < 1e-6);
        free(x);
        free(p->first_x_in);
        free(p);
        free(init);
        free(init_f);
        free(noise);
        free(g);
    }
}

/* A non-zero callback return stops at once with GS_ERR_CANCELLED. */
static void cancellation_stops_sampling(void **state)
{
    (void)state;
    static const char *const names[] = {"euler", "euler_a", "heun", "dpmpp_2m", "ddim", "lcm"};
    for (size_t k = 0; k < 6; k++) {
        sample_config cfg = make_cfg(names[k], NULL, 8);
        probe *p = new_probe(cfg_numel(&cfg));
        p->cancel_at = 3;
        float x[16];
        gi_rng rng;
        rng_seed(&rng, 1);
        gi_error err = {0};
        assert_int_equal(sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err),
                         GS_ERR_CANCELLED);
        assert_int_equal(err.code, GS_ERR_CANCELLED);
        assert_non_null(strstr(err.msg, "cancelled"));
        assert_int_equal(p->steps_seen, 3);
        assert_int_equal(p->last_total, 8);
        assert_int_equal(p->calls, strcmp(names[k], "heun") == 0 ? 6 : 3);
        free(p);
    }
}

/* The model's failure comes back with its message and the step. */
static void model_failure_propagates(void **state)
{
    (void)state;
    sample_config cfg = make_cfg("dpmpp_2m", "karras", 5);
    probe *p = new_probe(cfg_numel(&cfg));
    p->fail_at = 2;
    float x[16];
    gi_rng rng;
    rng_seed(&rng, 1);
    gi_error err = {0};
    assert_int_equal(sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err),
                     GS_ERR_INTERNAL);
    assert_non_null(strstr(err.msg, "model exploded"));
    assert_non_null(strstr(err.msg, "step 2 of 5"));
    assert_int_equal(p->steps_seen, 1);
    free(p);
}

static void validation_errors(void **state)
{
    (void)state;
    float init[16] = {0};
    static const struct {
        const char *sampler, *scheduler;
        int steps;
        int with_init;
        float strength;
        int batch;
        const char *expect;
    } cases[] = {
        {"euler", NULL, 20, 0, 0, 1, NULL},
        {"euler", "default", 20, 0, 0, 1, NULL},
        {"ddim", "default", 999, 0, 0, 1, NULL},
        {"plms", NULL, 20, 0, 0, 1, "unknown sampler 'plms'"},
        {NULL, NULL, 20, 0, 0, 1, "unknown sampler"},
        {"euler", "weird", 20, 0, 0, 1, "unknown scheduler 'weird'"},
        {"euler", "weird", 20, 0, 0, 1, "sgm_uniform"}, /* the message lists the table's names */
        {"euler_b", NULL, 20, 0, 0, 1, "dpm_adaptive"},
        {"dpm_2", NULL, 1000, 0, 0, 1, "steps must be 1..999"},
        {"euler", NULL, 20, 2, 0.5f, 1, "needs the original latent"},
        {"ddim", "karras", 20, 0, 0, 1, "own timesteps"},
        {"lcm", "normal", 4, 0, 0, 1, "own timesteps"},
        {"euler", NULL, 0, 0, 0, 1, "steps must be 1..1000"},
        {"euler", NULL, 1001, 0, 0, 1, "steps must be 1..1000"},
        {"ddim", NULL, 1000, 0, 0, 1, "steps must be 1..999"},
        {"lcm", NULL, 51, 0, 0, 1, "steps must be 1..50"},
        {"euler", NULL, 20, 1, 0.0f, 1, "strength"},
        {"euler", NULL, 20, 1, 1.5f, 1, "strength"},
        {"euler", NULL, 20, 1, NAN, 1, "strength"},
        {"euler", NULL, 20, 0, 0, 0, "latent shape"},
        {"euler", NULL, 20, 0, 0, 1 << 30, "too large"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sample_config cfg = make_cfg(cases[i].sampler, cases[i].scheduler, cases[i].steps);
        cfg.batch = cases[i].batch;
        cfg.init_latent = cases[i].with_init == 1 ? init : NULL;
        cfg.keep = cases[i].with_init == 2 ? init : NULL;
        cfg.strength = cases[i].strength;
        gi_error err = {0};
        gs_status st = sample_validate(&cfg, &err);
        if (!cases[i].expect) {
            assert_int_equal(st, GS_OK);
            continue;
        }
        assert_int_equal(st, GS_ERR_INVALID_ARGUMENT);
        if (!strstr(err.msg, cases[i].expect))
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, cases[i].expect);
        assert_int_equal(sample_progress_total(&cfg), 0);
        /* an invalid run never calls back */
        probe *p = new_probe(16);
        float x[16];
        gi_rng rng;
        rng_seed(&rng, 1);
        assert_int_equal(sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err),
                         GS_ERR_INVALID_ARGUMENT);
        assert_int_equal(p->calls, 0);
        assert_int_equal(p->steps_seen, 0);
        free(p);
    }
}

/* Two allocations at the start, none per step; a failed one is an error. */
static void allocates_once_and_survives_oom(void **state)
{
    (void)state;
    sample_config cfg = make_cfg("heun", "karras", 12);
    probe *p = new_probe(cfg_numel(&cfg));
    float x[16];
    gi_rng rng;
    gi_error err = {0};
    for (long k = 0; k < 2; k++) {
        rng_seed(&rng, 1);
        gi_alloc_fail_after(k);
        gs_status st = sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err);
        gi_alloc_fail_after(-1);
        assert_int_equal(st, GS_ERR_NO_MEMORY);
        assert_int_equal(p->calls, 0);
        assert_int_equal(p->steps_seen, 0);
    }
    rng_seed(&rng, 1);
    gi_alloc_fail_after(2);
    gs_status st = sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err);
    gi_alloc_fail_after(-1);
    assert_int_equal(st, GS_OK);
    assert_int_equal(p->steps_seen, 12);
    free(p);
}

/* Every sampler of the table reports exactly sample_progress_total steps,
 * img2img included. */
static void progress_totals(void **state)
{
    (void)state;
    float init[16] = {0};
    int rows = sample_sampler_count();
    for (int k = 0; k < rows; k++) {
        const char *name = sample_sampler_at(k)->name;
        for (int img = 0; img < 2; img++) {
            sample_config cfg = make_cfg(name, NULL, 10);
            if (img) {
                cfg.init_latent = init;
                cfg.strength = 0.6f;
            }
            probe *p = new_probe(cfg_numel(&cfg));
            float x[16];
            gi_rng rng;
            rng_seed(&rng, 1);
            gi_error err = {0};
            assert_int_equal(sample_run(&cfg, &rng, analytic_eps, count_steps, p, x, &err), GS_OK);
            int want = img ? (sample_is_k_sampler(name) ? 7 : 6) : 10;
            if (strcmp(name, "dpm_fast") == 0) /* ⌊n/3⌋ + 1 DPM-Solver steps */
                want = want / 3 + 1;
            assert_int_equal(sample_progress_total(&cfg), want);
            assert_int_equal(p->steps_seen, want);
            assert_int_equal(p->last_total, want);
            free(p);
        }
    }
    assert_string_equal(sample_sampler_names()[rows - 1], "lcm");
    assert_null(sample_sampler_names()[rows]);
    assert_string_equal(sample_scheduler_names()[2], "karras");
    assert_string_equal(sample_scheduler_names()[5], "simple");
    assert_null(sample_scheduler_names()[6]);
}

/* The public rows are the table's, complete and consistent with gs_sampler_names. */
static void table_rows(void **state)
{
    (void)state;
    int n = gs_sampler_count();
    assert_int_equal(n, sample_sampler_count());
    assert_null(gs_sampler_at(-1));
    assert_null(gs_sampler_at(n));
    for (int i = 0; i < n; i++) {
        const gs_sampler_desc *d = gs_sampler_at(i);
        assert_string_equal(d->name, gs_sampler_names()[i]);
        assert_true(d->a1111_name[0] && d->a1111_aliases[0] && d->horde_names[0]);
        assert_int_equal(sample_is_k_sampler(d->name), (d->flags & GS_SAMPLER_SIGMAS) != 0);
        /* a discard-penultimate schedule of steps+1 must fit the 1000 levels */
        if (d->flags & GS_SAMPLER_DISCARD_PENULTIMATE)
            assert_int_equal(d->max_steps, SAMPLE_MAX_STEPS - 1);
    }
    assert_int_equal(gs_sampler_at(0)->flags, GS_SAMPLER_SIGMAS); /* DPM++ 2M: A1111's first */
    assert_string_equal(gs_sampler_at(0)->a1111_name, "DPM++ 2M");
    int m = gs_scheduler_count();
    assert_null(gs_scheduler_at(m));
    for (int i = 0; i < m; i++)
        assert_string_equal(gs_scheduler_at(i)->name, gs_scheduler_names()[i + 1]);
    assert_string_equal(gs_scheduler_names()[0], "default");
}

/* dpm_2's schedule: steps+1 normal sigmas less the next-to-last (A1111's option). */
static void discard_penultimate_sigma(void **state)
{
    (void)state;
    sched_train tr;
    sched_train_init(&tr);
    double full[8], sig[SAMPLE_MAX_SIGMAS];
    int count;
    gi_error err = {0};
    assert_int_equal(sched_sigmas(&tr, SCHED_KARRAS, 6, full, &err), GS_OK);
    sample_config cfg = make_cfg("dpm_2_a", "karras", 5);
    assert_int_equal(sample_sigmas(&cfg, &tr, sig, &count, &err), GS_OK);
    assert_int_equal(count, 6);
    for (int i = 0; i < 5; i++)
        assert_true(sig[i] == full[i]);
    assert_true(sig[5] == 0.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(euler_converges_first_order),
        cmocka_unit_test(second_order_samplers_converge),
        cmocka_unit_test(more_samplers_converge),
        cmocka_unit_test(model_sees_schedule_timesteps),
        cmocka_unit_test(euler_a_draws_noise_in_order),
        cmocka_unit_test(lcm_matches_hand_replay),
        cmocka_unit_test(ddim_matches_hand_computation),
        cmocka_unit_test(pipe_noise_is_the_first_draw),
        cmocka_unit_test(cancellation_stops_sampling),
        cmocka_unit_test(model_failure_propagates),
        cmocka_unit_test(validation_errors),
        cmocka_unit_test(allocates_once_and_survives_oom),
        cmocka_unit_test(progress_totals),
        cmocka_unit_test(table_rows),
        cmocka_unit_test(discard_penultimate_sigma),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
