/*
 * sampler_discrete - diffusers' DDIM and LCM schedulers on integer timesteps.
 *
 * Both call the model with the unscaled x at the integer timestep and
 * recover x0 = (x − √(1−ᾱ_t)·ε)/√ᾱ_t. DDIM (η = 0) moves x deterministically
 * to the previous timestep; LCM takes a consistency-model boundary blend of
 * x0 and x, then re-noises to the next timestep with fresh noise from the
 * generator (except on the last step).
 */
#include <math.h>

#include "sample/sampler_internal.h"

#define LCM_SIGMA_DATA 0.5
#define LCM_TIMESTEP_SCALING 10.0

/* x0 = (x − √(1−ᾱ)·ε)/√ᾱ */
static inline double predict_x0(float x, float eps, double sqrt_a, double sqrt_b)
{
    return ((double)x - sqrt_b * eps) / sqrt_a;
}

/* The k-diffusion noise level of a timestep: σ = √((1−ᾱ)/ᾱ). */
static double vp_sigma(double a)
{
    return sqrt((1.0 - a) / a);
}

gs_status ddim_run(sample_ctx *c, float *x, gi_error *err)
{
    for (int i = 0; i < c->total; i++) {
        int t = c->timesteps[i];
        int prev = sched_ddim_prev_timestep(t, c->steps);
        double a_t = sched_alpha_cumprod(&c->train, t);
        /* set_alpha_to_one = false: past the start, ᾱ_prev is ᾱ_0 */
        double a_prev = sched_alpha_cumprod(&c->train, prev >= 0 ? prev : 0);
        gs_status st = sample_eval(c, x, vp_sigma(a_t), (double)t, 1, i + 1, err);
        if (st != GS_OK)
            return st;
        double sa_t = sqrt(a_t), sb_t = sqrt(1.0 - a_t);
        double sa = sqrt(a_prev), sb = sqrt(1.0 - a_prev);
        for (size_t k = 0; k < c->n; k++) {
            double x0 = predict_x0(x[k], c->eps[k], sa_t, sb_t);
            c->denoised[k] = (float)x0;
            x[k] = (float)(sa * x0 + sb * c->eps[k]);
        }
        st = sample_report(c, i + 1, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}

gs_status lcm_run(sample_ctx *c, float *x, gi_error *err)
{
    for (int i = 0; i < c->total; i++) {
        int t = c->timesteps[i];
        int last = i == c->total - 1;
        int prev = last ? t : c->timesteps[i + 1];
        double a_t = sched_alpha_cumprod(&c->train, t);
        double a_prev = sched_alpha_cumprod(&c->train, prev);
        double scaled = t * LCM_TIMESTEP_SCALING;
        double sd2 = LCM_SIGMA_DATA * LCM_SIGMA_DATA;
        double c_skip = sd2 / (scaled * scaled + sd2);
        double c_out = scaled / sqrt(scaled * scaled + sd2);

        gs_status st = sample_eval(c, x, vp_sigma(a_t), (double)t, 1, i + 1, err);
        if (st != GS_OK)
            return st;
        double sa_t = sqrt(a_t), sb_t = sqrt(1.0 - a_t);
        for (size_t k = 0; k < c->n; k++) {
            double x0 = predict_x0(x[k], c->eps[k], sa_t, sb_t);
            c->denoised[k] = (float)(c_out * x0 + c_skip * x[k]);
        }
        if (last) {
            for (size_t k = 0; k < c->n; k++)
                x[k] = c->denoised[k];
        } else {
            rng_randn(c->rng, c->buf[0], c->n);
            double sa = sqrt(a_prev), sb = sqrt(1.0 - a_prev);
            for (size_t k = 0; k < c->n; k++)
                x[k] = (float)(sa * c->denoised[k] + sb * c->buf[0][k]);
        }
        st = sample_report(c, i + 1, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}
