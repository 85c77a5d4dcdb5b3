/*
 * test_brownian - torchsde's Brownian tree as brownian.c rebuilds it (numpy's
 * seed derivation, Python's rounding, the bridge), and the DPM++ SDE samplers
 * on it: determinism per seed, the increments' law W(t) − W(s) ~ N(0, t − s),
 * additivity W(s,u) = W(s,t) + W(t,u), and the samplers' convergence to the
 * probability-flow ODE as η → 0.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "sample/brownian.h"
#include "sample/sampler.h"

/* numpy 1.24: SeedSequence(entropy, spawn_key, pool_size=24).generate_state(k) */
static void seed_sequence_matches_numpy(void **state)
{
    (void)state;
    static const struct {
        uint64_t entropy;
        int has_key;
        uint64_t key, depth;
        int n;
        uint32_t want[4];
    } cases[] = {
        {42, 0, 0, 0, 3, {387750627u, 2536650517u, 4078839648u}},
        {42, 1, 0, 0, 4, {2102017995u, 2891809698u, 2144110403u, 379559146u}},
        {42, 1, 5, 3, 4, {3084123560u, 468215949u, 242942938u, 2650128260u}},
        {(1ull << 40) + 7, 1, 123456, 17, 4, {1651718344u, 2863569004u, 3985070257u, 3427223922u}},
        {0, 0, 0, 0, 3, {4025752534u, 2687548107u, 2326983537u}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint32_t got[4];
        brownian_seed_state(cases[i].entropy, cases[i].has_key, cases[i].key, cases[i].depth, got,
                            cases[i].n);
        for (int k = 0; k < cases[i].n; k++)
            assert_int_equal(got[k], cases[i].want[k]);
    }
}

/* Python's round(x, 6) on doubles that sit just off a decimal tie */
static void rounds_like_python(void **state)
{
    (void)state;
    static const double in[][2] = {
        {0.0291675, 0.029167},
        {14.614642, 14.614642},
        {0.029167532920837402, 0.029168},
        {1.0000005, 1.000001},
        {2.5e-07, 0.0},
        {1.5e-06, 2e-06},
        {7.0710675, 7.071067},
        {3.14159265358979, 3.141593},
    };
    for (size_t i = 0; i < sizeof in / sizeof *in; i++)
        assert_true(brownian_round6(in[i][0]) == in[i][1]);
}

#define N 16

static void tree_is_deterministic_and_additive(void **state)
{
    (void)state;
    brownian_tree a, b, c;
    brownian_init(&a, 1234, 0.0291675, 14.6146, N);
    brownian_init(&b, 1234, 0.0291675, 14.6146, N);
    brownian_init(&c, 1235, 0.0291675, 14.6146, N);
    float scratch[BROWNIAN_SCRATCH(N)], w1[N], w2[N], w3[N], s1[N], s2[N];
    /* the same seed gives the same path, whatever else was asked before */
    brownian_increment(&a, 0.5, 3.0, w1, scratch);
    brownian_increment(&b, 7.0, 9.0, w2, scratch);
    brownian_increment(&b, 0.5, 3.0, w2, scratch);
    assert_memory_equal(w1, w2, sizeof w1);
    brownian_increment(&c, 0.5, 3.0, w3, scratch);
    assert_memory_not_equal(w1, w3, sizeof w1);
    /* W(s,u) = W(s,t) + W(t,u) for t inside, up to float32 sums */
    static const double pts[][3] = {
        {0.5, 1.25, 3.0}, {0.0291675, 5.0, 14.6146}, {2.71828, 2.718281, 2.8}, {1.0, 7.3, 7.31}};
    double worst = 0;
    for (size_t k = 0; k < 4; k++) {
        brownian_increment(&a, pts[k][0], pts[k][2], w1, scratch);
        brownian_increment(&a, pts[k][0], pts[k][1], s1, scratch);
        brownian_increment(&a, pts[k][1], pts[k][2], s2, scratch);
        for (int i = 0; i < N; i++)
            worst = fmax(worst, fabs(w1[i] - (s1[i] + s2[i])) / sqrt(pts[k][2] - pts[k][0]));
    }
    printf("additivity: worst |W(s,u) − W(s,t) − W(t,u)|/√(u−s) = %.2e\n", worst);
    assert_true(worst < 1e-5); /* float32 sums of up to ~40 nodes; measured in the printout */
    /* a zero-length query is 0; queries outside [t0, t1] are clamped */
    brownian_increment(&a, 3.0, 3.0, w1, scratch);
    for (int i = 0; i < N; i++)
        assert_true(w1[i] == 0.0f);
    brownian_increment(&a, 0.0, 20.0, w1, scratch);
    brownian_increment(&a, 0.0291675, 14.6146, w2, scratch);
    assert_memory_equal(w1, w2, sizeof w1);
}

/* Over many seeds, W(t) − W(s) has mean 0 and variance t − s, and increments
   over disjoint intervals are uncorrelated. */
static void increments_have_the_right_law(void **state)
{
    (void)state;
    const int seeds = 600;
    static const double iv[][2] = {{0.1, 0.2}, {0.2, 3.7}, {3.7, 14.0}, {0.05, 0.050003}};
    double sum[4] = {0}, sq[4] = {0}, cross = 0;
    float scratch[BROWNIAN_SCRATCH(N)], w[4][N];
    for (int s = 0; s < seeds; s++) {
        brownian_tree t;
        brownian_init(&t, (uint64_t)s * 7919u + 1u, 0.0291675, 14.6146, N);
        for (int k = 0; k < 4; k++) {
            brownian_increment(&t, iv[k][0], iv[k][1], w[k], scratch);
            for (int i = 0; i < N; i++) {
                sum[k] += w[k][i];
                sq[k] += (double)w[k][i] * w[k][i];
            }
        }
        for (int i = 0; i < N; i++)
            cross +=
                (double)w[0][i] * w[1][i] / sqrt((iv[0][1] - iv[0][0]) * (iv[1][1] - iv[1][0]));
    }
    double m = (double)seeds * N;
    for (int k = 0; k < 4; k++) {
        double len = iv[k][1] - iv[k][0];
        double mean = sum[k] / m / sqrt(len), var = sq[k] / m / len;
        printf("[%g, %g]: mean/√len %+.4f, var/len %.4f\n", iv[k][0], iv[k][1], mean, var);
        /* 9600 draws: the mean's sd is 0.010, the variance's 0.014; 4 sd bounds */
        assert_true(fabs(mean) < 0.04);
        assert_true(fabs(var - 1.0) < 0.06);
    }
    printf("correlation of disjoint increments: %+.4f\n", cross / m);
    assert_true(fabs(cross / m) < 0.04);
}

/* ---- the SDE samplers ---- */

static double rel_l2_f32_f64_f32(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return sqrt(num / den);
}

typedef struct toy {
    sched_train train;
    size_t n;
} toy;

/* the ideal ε for N(0, 1) data (test_sampler.c's analytic model) */
static gs_status toy_eps(void *user, const float *x_in, double t, float *eps, gi_error *err)
{
    (void)err;
    toy *m = user;
    double sigma = sched_t_to_sigma(&m->train, t);
    double scale = sqrt(sigma * sigma + 1.0) * sigma / (1.0 + sigma * sigma);
    for (size_t i = 0; i < m->n; i++)
        eps[i] = (float)(x_in[i] * scale);
    return GS_OK;
}

static void run_sde(const char *sampler, int steps, double eta, uint64_t seed, int batch, float *x)
{
    sample_config cfg = {.sampler = sampler,
                         .scheduler = "karras",
                         .steps = steps,
                         .batch = batch,
                         .channels = 4,
                         .height = 2,
                         .width = 2,
                         .custom_eta = 1,
                         .eta = eta,
                         .seed = seed};
    toy m;
    sched_train_init(&m.train);
    m.n = (size_t)batch * 16;
    gi_rng rng;
    rng_seed(&rng, seed);
    gi_error err = {0};
    gs_status st = sample_run(&cfg, &rng, toy_eps, NULL, &m, x, &err);
    if (st != GS_OK)
        fail_msg("%s: %s", sampler, err.msg);
}

static void sde_samplers_deterministic_per_seed(void **state)
{
    (void)state;
    static const char *const names[] = {"dpmpp_sde", "dpmpp_2m_sde"};
    for (int k = 0; k < 2; k++) {
        float a[32], b[32], c[32];
        run_sde(names[k], 10, 1.0, 77, 2, a);
        run_sde(names[k], 10, 1.0, 77, 2, b);
        run_sde(names[k], 10, 1.0, 78, 2, c);
        assert_memory_equal(a, b, sizeof a);
        assert_memory_not_equal(a, c, sizeof a);
        /* item 1 of seed 77 has its own tree (seed 78), item 0 of seed 78 too:
           the trees agree there, the initial noise (one draw for both) does not */
        assert_memory_not_equal(a + 16, c, 16 * sizeof *a);
    }
}

/* The tree's scratch is the third and last allocation of a run; without it
   the run fails before the model is asked anything. */
static int calls;
static gs_status counting_eps(void *user, const float *x_in, double t, float *eps, gi_error *err)
{
    calls++;
    return toy_eps(user, x_in, t, eps, err);
}

static void sde_tree_scratch_out_of_memory(void **state)
{
    (void)state;
    sample_config cfg = {.sampler = "dpmpp_2m_sde",
                         .steps = 4,
                         .batch = 1,
                         .channels = 4,
                         .height = 2,
                         .width = 2,
                         .seed = 1};
    toy m;
    sched_train_init(&m.train);
    m.n = 16;
    float x[16];
    gi_rng rng;
    gi_error err = {0};
    rng_seed(&rng, 1);
    calls = 0;
    gi_alloc_fail_after(2);
    gs_status st = sample_run(&cfg, &rng, counting_eps, NULL, &m, x, &err);
    gi_alloc_fail_after(-1);
    assert_int_equal(st, GS_ERR_NO_MEMORY);
    assert_int_equal(calls, 0);
    rng_seed(&rng, 1);
    assert_int_equal(sample_run(&cfg, &rng, counting_eps, NULL, &m, x, &err), GS_OK);
    assert_int_equal(calls, 4);
}

/* With η = 0 both are ODE solvers: the error against the exact solution
   shrinks with the step count, and small η stays close to η = 0. */
static void sde_samplers_reach_the_ode_limit(void **state)
{
    (void)state;
    static const char *const names[] = {"dpmpp_sde", "dpmpp_2m_sde"};
    for (int k = 0; k < 2; k++) {
        float ref[16], x[16];
        run_sde(names[k], 400, 0.0, 5, 1, ref); /* the fine-step ODE answer */
        double prev = INFINITY;
        for (int steps = 10; steps <= 80; steps *= 2) {
            run_sde(names[k], steps, 0.0, 5, 1, x);
            double e = rel_l2_f32_f64_f32(x, ref, 16);
            printf("%-12s η=0, %3d steps: rel error vs 400 steps %.3e\n", names[k], steps, e);
            assert_true(e < prev / 3.0); /* second order: ÷4 per doubling (measured) */
            prev = e;
        }
        /* the injected noise is ∝ η for dpmpp_sde (get_ancestral_step) and
           ∝ √η for dpmpp_2m_sde (σ·√(1 − e^(−2ηh))): measured ÷10 and ÷3.2
           per decade of η */
        double last = INFINITY;
        for (double eta = 0.1; eta >= 0.9e-5; eta /= 10) {
            run_sde(names[k], 40, eta, 5, 1, x);
            float x0[16];
            run_sde(names[k], 40, 0.0, 5, 1, x0);
            double e = rel_l2_f32_f64_f32(x, x0, 16);
            printf("%-12s η=%g vs η=0 at 40 steps: rel %.3e\n", names[k], eta, e);
            assert_true(e < last / 2.5);
            last = e;
        }
        assert_true(last < 0.01);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(seed_sequence_matches_numpy),
        cmocka_unit_test(rounds_like_python),
        cmocka_unit_test(tree_is_deterministic_and_additive),
        cmocka_unit_test(increments_have_the_right_law),
        cmocka_unit_test(sde_samplers_deterministic_per_seed),
        cmocka_unit_test(sde_samplers_reach_the_ode_limit),
        cmocka_unit_test(sde_tree_scratch_out_of_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
