/*
 * sampler_k2 - more of k-diffusion's samplers on a σ schedule: lms (order 4),
 * dpm_2, dpm_2 ancestral and DPM-Solver++(2S) ancestral, as A1111 runs them
 * (η from the run, 1 by default; s_noise 1; s_churn 0, whose unused draws
 * change nothing since no draw follows them in euler/dpm_2).
 *
 * As in sampler_k.c, the ODE slope d = (x − D)/σ is the model's ε itself
 * (after sample_eval's conversions), so it is used directly; D is formed in
 * double where a formula needs it. Ancestral noise is one randn of the whole
 * latent from the run's generator per draw, in k-diffusion's call order.
 */
#include <math.h>
#include <string.h>

#include "sample/sampler_internal.h"

#define LMS_ORDER 4

/* ---- lms ---- */

/* ∫_{σ_i}^{σ_{i+1}} Π_{k<r, k≠j} (τ − σ_{i−k})/(σ_{i−j} − σ_{i−k}) dτ, exactly:
 * the integrand has degree r−1 ≤ 3, which two-point Gauss–Legendre integrates
 * without error (k-diffusion uses scipy's quad, exact here too). */
static double lms_coeff(const double *sig, int i, int r, int j)
{
    double a = sig[i], b = sig[i + 1];
    double mid = 0.5 * (a + b), half = 0.5 * (b - a);
    double node = 1.0 / sqrt(3.0);
    double sum = 0.0;
    for (int q = 0; q < 2; q++) {
        double tau = mid + (q ? node : -node) * half;
        double prod = 1.0;
        for (int k = 0; k < r; k++)
            if (k != j)
                prod *= (tau - sig[i - k]) / (sig[i - j] - sig[i - k]);
        sum += prod;
    }
    return sum * half;
}

gs_status lms_run(sample_ctx *c, float *x, gi_error *err)
{
    /* ring of the last LMS_ORDER slopes: buf[i % LMS_ORDER] holds d_i */
    for (int i = 0; i < c->total; i++) {
        double s = c->sigmas[i];
        gs_status st = sample_denoise(c, x, s, i + 1, c->denoised, err);
        if (st != GS_OK)
            return st;
        memcpy(c->buf[i % LMS_ORDER], c->eps, c->n * sizeof *c->eps);
        int r = i + 1 < LMS_ORDER ? i + 1 : LMS_ORDER;
        double coeff[LMS_ORDER];
        const float *d[LMS_ORDER];
        for (int j = 0; j < r; j++) {
            coeff[j] = lms_coeff(c->sigmas, i, r, j);
            d[j] = c->buf[(i - j) % LMS_ORDER];
        }
        for (size_t k = 0; k < c->n; k++) {
            double acc = 0.0;
            for (int j = 0; j < r; j++)
                acc += coeff[j] * d[j][k];
            x[k] = (float)(x[k] + acc);
        }
        st = sample_report(c, i + 1, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}

/* ---- dpm_2 and dpm_2 ancestral ---- */

/* The DPM2 move from σ to target with the slope at σ in c->eps:
 * Euler when target is 0, else a midpoint step through σ_mid (geometric mean). */
static gs_status dpm2_move(sample_ctx *c, float *x, double s, double target, int step,
                           gi_error *err)
{
    if (target == 0.0) {
        sample_axpy(x, c->eps, c->n, target - s);
        return GS_OK;
    }
    double s_mid = exp(0.5 * (log(s) + log(target)));
    float *x2 = c->buf[0]; /* [n] */
    for (size_t k = 0; k < c->n; k++)
        x2[k] = (float)(x[k] + (double)c->eps[k] * (s_mid - s));
    gs_status st = sample_denoise(c, x2, s_mid, step, NULL, err);
    if (st != GS_OK)
        return st;
    sample_axpy(x, c->eps, c->n, target - s);
    return GS_OK;
}

gs_status dpm_2_run(sample_ctx *c, float *x, gi_error *err)
{
    for (int i = 0; i < c->total; i++) {
        double s = c->sigmas[i], s_next = c->sigmas[i + 1];
        gs_status st = sample_denoise(c, x, s, i + 1, c->denoised, err);
        if (st == GS_OK)
            st = dpm2_move(c, x, s, s_next, i + 1, err);
        if (st == GS_OK)
            st = sample_report(c, i + 1, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}

gs_status dpm_2_a_run(sample_ctx *c, float *x, gi_error *err)
{
    float *noise = c->buf[1]; /* [n] */
    for (int i = 0; i < c->total; i++) {
        double s = c->sigmas[i], s_next = c->sigmas[i + 1];
        gs_status st = sample_denoise(c, x, s, i + 1, c->denoised, err);
        if (st != GS_OK)
            return st;
        double down, up;
        sample_ancestral_split(s, s_next, c->eta, &down, &up);
        st = dpm2_move(c, x, s, down, i + 1, err);
        if (st != GS_OK)
            return st;
        if (down != 0.0) { /* k-diffusion adds noise only after the midpoint branch */
            rng_randn(c->rng, noise, c->n);
            sample_axpy(x, noise, c->n, up);
        }
        st = sample_report(c, i + 1, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}

/* ---- DPM-Solver++(2S) ancestral ---- */

gs_status dpmpp_2s_a_run(sample_ctx *c, float *x, gi_error *err)
{
    float *x2 = c->buf[0], *noise = c->buf[1]; /* [n] each */
    for (int i = 0; i < c->total; i++) {
        double s = c->sigmas[i], s_next = c->sigmas[i + 1];
        gs_status st = sample_denoise(c, x, s, i + 1, c->denoised, err);
        if (st != GS_OK)
            return st;
        double down, up;
        sample_ancestral_split(s, s_next, c->eta, &down, &up);
        if (down == 0.0) {
            sample_axpy(x, c->eps, c->n, down - s);
        } else {
            /* t = −log σ; half a step in t to σ(s_mid), then the full step with D there */
            double h = log(s) - log(down);
            double s_mid = exp(-(-log(s) + 0.5 * h));
            double keep1 = s_mid / s, take1 = -expm1(-0.5 * h);
            for (size_t k = 0; k < c->n; k++) {
                double d = (double)x[k] - s * c->eps[k];
                x2[k] = (float)(keep1 * x[k] + take1 * d);
            }
            st = sample_denoise(c, x2, s_mid, i + 1, NULL, err);
            if (st != GS_OK)
                return st;
            double keep = down / s, take = -expm1(-h);
            for (size_t k = 0; k < c->n; k++) {
                double d2 = (double)x2[k] - s_mid * c->eps[k];
                x[k] = (float)(keep * x[k] + take * d2);
            }
        }
        if (s_next > 0.0) {
            rng_randn(c->rng, noise, c->n);
            sample_axpy(x, noise, c->n, up);
        }
        st = sample_report(c, i + 1, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}
