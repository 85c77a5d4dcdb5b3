/*
 * sampler_k - k-diffusion's samplers on a σ schedule: euler, euler ancestral
 * (η=1), heun, DPM-Solver++(2M).
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

/* c->eps = ε(x·c_in, t(σ)) and, unless NULL, denoised = D(x, σ) = x − σ·ε */
static gs_status denoise(sample_ctx *c, const float *x /* [n] */, double sigma, int step,
                         float *denoised /* [n] */, gi_error *err)
{
    double c_in = 1.0 / sqrt(sigma * sigma + 1.0);
    for (size_t i = 0; i < c->n; i++)
        c->x_in[i] = (float)(x[i] * c_in);
    gs_status st = sample_eval(c, c->x_in, sched_sigma_to_t(&c->train, sigma), step, err);
    if (st != GS_OK)
        return st;
    if (denoised)
        for (size_t i = 0; i < c->n; i++)
            denoised[i] = (float)(x[i] - sigma * c->eps[i]);
    return GS_OK;
}

/* x += slope · dt */
static void ode_update(float *x, const float *slope, size_t n, double dt)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(x[i] + (double)slope[i] * dt);
}

/* ---- euler ---- */

static gs_status euler_step(sample_ctx *c, float *x, int i, gi_error *err)
{
    double s = c->sigmas[i], s_next = c->sigmas[i + 1];
    gs_status st = denoise(c, x, s, i + 1, c->denoised, err);
    if (st != GS_OK)
        return st;
    ode_update(x, c->eps, c->n, s_next - s);
    return GS_OK;
}

/* ---- euler ancestral ---- */

/* k-diffusion's get_ancestral_step with η = 1 */
static void ancestral_split(double s, double s_next, double *down, double *up)
{
    double u = sqrt(s_next * s_next * (s * s - s_next * s_next) / (s * s));
    *up = u < s_next ? u : s_next;
    double d2 = s_next * s_next - *up * *up;
    *down = d2 > 0.0 ? sqrt(d2) : 0.0;
}

static gs_status euler_a_step(sample_ctx *c, float *x, int i, gi_error *err)
{
    double s = c->sigmas[i], s_next = c->sigmas[i + 1];
    gs_status st = denoise(c, x, s, i + 1, c->denoised, err);
    if (st != GS_OK)
        return st;
    double down, up;
    ancestral_split(s, s_next, &down, &up);
    ode_update(x, c->eps, c->n, down - s);
    if (s_next > 0.0) {
        float *noise = c->aux; /* [n] */
        rng_randn(c->rng, noise, c->n);
        ode_update(x, noise, c->n, up);
    }
    return GS_OK;
}

/* ---- heun ---- */

static gs_status heun_step(sample_ctx *c, float *x, int i, gi_error *err)
{
    double s = c->sigmas[i], s_next = c->sigmas[i + 1];
    gs_status st = denoise(c, x, s, i + 1, c->denoised, err);
    if (st != GS_OK)
        return st;
    double dt = s_next - s;
    if (s_next == 0.0) { /* last step: plain Euler, no second evaluation */
        ode_update(x, c->eps, c->n, dt);
        return GS_OK;
    }
    /* keep the first slope while the corrector overwrites c->eps */
    float *eps1 = c->eps; /* [n] slope at σ */
    float *x2 = c->aux;   /* [n] Euler predictor at σ_next */
    c->eps = c->aux2;     /* [n] the corrector's slope at σ_next */
    for (size_t k = 0; k < c->n; k++)
        x2[k] = (float)(x[k] + (double)eps1[k] * dt);
    st = denoise(c, x2, s_next, i + 1, NULL, err);
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
static gs_status dpmpp_2m_run(sample_ctx *c, float *x, gi_error *err)
{
    float *den = c->denoised; /* [n] this step's D */
    float *old = c->aux;      /* [n] previous step's D */
    for (int i = 0; i < c->total; i++) {
        double s = c->sigmas[i], s_next = c->sigmas[i + 1];
        gs_status st = denoise(c, x, s, i + 1, den, err);
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

/* ---- driver ---- */

gs_status ksampler_run(sample_ctx *c, float *x, gi_error *err)
{
    if (c->kind == SAMPLER_DPMPP_2M)
        return dpmpp_2m_run(c, x, err);
    for (int i = 0; i < c->total; i++) {
        gs_status st;
        switch (c->kind) {
        case SAMPLER_EULER: st = euler_step(c, x, i, err); break;
        case SAMPLER_EULER_A: st = euler_a_step(c, x, i, err); break;
        case SAMPLER_HEUN: st = heun_step(c, x, i, err); break;
        default: return gi_fail(err, GS_ERR_INTERNAL, "not a k-sampler: %d", (int)c->kind);
        }
        if (st != GS_OK)
            return st;
        st = sample_report(c, i + 1, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}
