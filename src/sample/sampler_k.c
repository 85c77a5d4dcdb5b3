/*
 * sampler_k - k-diffusion's denoiser and its first samplers on a σ schedule:
 * euler, euler ancestral (η from the run, A1111's 1 by default), heun,
 * DPM-Solver++(2M).
 *
 * Each step evaluates the denoiser D(x,σ) = x − σ·ε(x·c_in, t(σ)) with
 * c_in = 1/√(σ²+1) and t(σ) fractional (k-diffusion's DiscreteEpsDDPMDenoiser),
 * then moves x along the probability-flow ODE. For an ε-model the ODE slope
 * (x − D)/σ is ε itself, so the updates use ε directly instead of
 * re-deriving it from a rounded D (which would cancel badly at large σ);
 * D is still formed for the callback and for DPM-Solver++. Coefficients are
 * double; element updates combine in double and store float.
 */
#include <math.h>

#include "sample/sampler_internal.h"

/* ---- denoiser ---- */

gs_status sample_denoise(sample_ctx *c, const float *x /* [n] */, double sigma, int step,
                         float *denoised /* [n] */, gi_error *err)
{
    gs_status st = sample_eval(c, x, sigma, sched_sigma_to_t(&c->train, sigma), 0, step, err);
    if (st != GS_OK)
        return st;
    if (denoised)
        for (size_t i = 0; i < c->n; i++)
            denoised[i] = (float)(x[i] - sigma * c->eps[i]);
    return GS_OK;
}

void sample_axpy(float *x, const float *v, size_t n, double a)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(x[i] + (double)v[i] * a);
}

/* A step loop for the one-step samplers: step, then report. */
typedef gs_status (*kstep_fn)(sample_ctx *c, float *x, int i, gi_error *err);

static gs_status kloop(sample_ctx *c, float *x, kstep_fn step, gi_error *err)
{
    for (int i = 0; i < c->total; i++) {
        gs_status st = step(c, x, i, err);
        if (st != GS_OK)
            return st;
        st = sample_report(c, i + 1, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}

/* ---- euler ---- */

static gs_status euler_step(sample_ctx *c, float *x, int i, gi_error *err)
{
    double s = c->sigmas[i], s_next = c->sigmas[i + 1];
    gs_status st = sample_denoise(c, x, s, i + 1, c->denoised, err);
    if (st != GS_OK)
        return st;
    sample_axpy(x, c->eps, c->n, s_next - s);
    return GS_OK;
}

/* ---- euler ancestral ---- */

/* k-diffusion's get_ancestral_step */
void sample_ancestral_split(double s, double s_next, double eta, double *down, double *up)
{
    if (eta == 0.0) {
        *down = s_next;
        *up = 0.0;
        return;
    }
    double u = eta * sqrt(s_next * s_next * (s * s - s_next * s_next) / (s * s));
    *up = u < s_next ? u : s_next;
    double d2 = s_next * s_next - *up * *up;
    *down = d2 > 0.0 ? sqrt(d2) : 0.0;
}

static gs_status euler_a_step(sample_ctx *c, float *x, int i, gi_error *err)
{
    double s = c->sigmas[i], s_next = c->sigmas[i + 1];
    gs_status st = sample_denoise(c, x, s, i + 1, c->denoised, err);
    if (st != GS_OK)
        return st;
    double down, up;
    sample_ancestral_split(s, s_next, c->eta, &down, &up);
    sample_axpy(x, c->eps, c->n, down - s);
    if (s_next > 0.0) {
        float *noise = c->buf[0]; /* [n] */
        rng_randn(c->rng, noise, c->n);
        sample_axpy(x, noise, c->n, up);
    }
    return GS_OK;
}

/* ---- heun ---- */

static gs_status heun_step(sample_ctx *c, float *x, int i, gi_error *err)
{
    double s = c->sigmas[i], s_next = c->sigmas[i + 1];
    gs_status st = sample_denoise(c, x, s, i + 1, c->denoised, err);
    if (st != GS_OK)
        return st;
    double dt = s_next - s;
    if (s_next == 0.0) { /* last step: plain Euler, no second evaluation */
        sample_axpy(x, c->eps, c->n, dt);
        return GS_OK;
    }
    /* keep the first slope while the corrector overwrites c->eps */
    float *eps1 = c->eps;  /* [n] slope at σ */
    float *x2 = c->buf[0]; /* [n] Euler predictor at σ_next */
    c->eps = c->buf[1];    /* [n] the corrector's slope at σ_next */
    for (size_t k = 0; k < c->n; k++)
        x2[k] = (float)(x[k] + (double)eps1[k] * dt);
    st = sample_denoise(c, x2, s_next, i + 1, NULL, err);
    const float *eps2 = c->eps;
    c->eps = eps1;
    if (st != GS_OK)
        return st;
    for (size_t k = 0; k < c->n; k++)
        x[k] = (float)(x[k] + 0.5 * ((double)eps1[k] + eps2[k]) * dt);
    return GS_OK;
}

/* ---- DPM-Solver++(2M) ---- */

/* The multistep needs the previous step's D: two buffers swap roles every
 * step instead of copying. */
gs_status dpmpp_2m_run(sample_ctx *c, float *x, gi_error *err)
{
    float *den = c->denoised; /* [n] this step's D */
    float *old = c->buf[0];   /* [n] previous step's D */
    for (int i = 0; i < c->total; i++) {
        double s = c->sigmas[i], s_next = c->sigmas[i + 1];
        gs_status st = sample_denoise(c, x, s, i + 1, den, err);
        if (st != GS_OK)
            return st;
        /* D in double from x and ε, so large σ does not cost precision */
        if (s_next == 0.0) {
            /* t_next = −log 0 = ∞: the update collapses to x = D */
            for (size_t k = 0; k < c->n; k++)
                x[k] = (float)(x[k] - s * c->eps[k]);
        } else {
            double h = log(s) - log(s_next); /* t_next − t with t = −log σ */
            double keep = s_next / s;
            double take = -expm1(-h);
            double a = 1.0, b = 0.0;
            if (i > 0) {
                double r = (log(c->sigmas[i - 1]) - log(s)) / h; /* h_last / h */
                a = 1.0 + 1.0 / (2.0 * r);
                b = 1.0 / (2.0 * r);
            }
            /* old holds no D before the second step: never read it (0 * NaN is NaN) */
            for (size_t k = 0; k < c->n; k++) {
                double d = (double)x[k] - s * c->eps[k];
                x[k] = (float)(keep * x[k] + take * (i > 0 ? a * d - b * old[k] : d));
            }
        }
        st = sample_report(c, i + 1, x, den, err);
        if (st != GS_OK)
            return st;
        float *tmp = old;
        old = den;
        den = tmp;
    }
    return GS_OK;
}

/* ---- run functions ---- */

gs_status euler_run(sample_ctx *c, float *x, gi_error *err)
{
    return kloop(c, x, euler_step, err);
}

gs_status euler_a_run(sample_ctx *c, float *x, gi_error *err)
{
    return kloop(c, x, euler_a_step, err);
}

gs_status heun_run(sample_ctx *c, float *x, gi_error *err)
{
    return kloop(c, x, heun_step, err);
}
