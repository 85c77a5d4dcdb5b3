/*
 * sampler_sde - k-diffusion's DPM-Solver++ SDE samplers, dpmpp_sde (r = 1/2)
 * and dpmpp_2m_sde (midpoint), as A1111 runs them (k-diffusion 0.0.16, the
 * commit A1111 pins, ab527a9; its sampling.py is unchanged since): η from
 * the run (A1111's 1), s_noise 1, and A1111's create_noise_sampler: a
 * BrownianTreeNoiseSampler over [σ_min, σ_max] of the schedule, one tree per
 * batch item seeded with that item's seed (all_seeds: seed + item), in σ
 * itself (no transform). No fixture holds A1111 SDE images to compare with:
 * the tree's parts are checked one by one in test_brownian.
 *
 * The noise of a step from σ_a to σ_b is (W(σ_b) − W(σ_a))/√|σ_b − σ_a| of
 * the tree, with σ's as float32 tensors would hold them (dpmpp_sde asks at
 * exp(−t) of its float32 t's). The update coefficients are double, as in the
 * other k-samplers, with ε used for the slope and D = x − σ·ε formed in
 * double.
 */
#include <math.h>
#include <string.h>

#include "common/alloc.h"
#include "sample/brownian.h"
#include "sample/sampler_internal.h"

/* Per-item trees over the schedule's [σ_min, σ_max]. */
typedef struct sde_noise {
    brownian_tree tree[SAMPLE_MAX_BATCH_TREES];
    int items;
    size_t per_item;
    float *scratch; /* BROWNIAN_SCRATCH(per_item) */
} sde_noise;

/* The trees and their scratch (one allocation per run, freed by sde_noise_free). */
static gs_status sde_noise_init(sde_noise *s, const sample_ctx *c, gi_error *err)
{
    s->scratch = NULL;
    float lo = INFINITY, hi = 0.0f;
    for (int i = 0; i < c->n_sigmas; i++) {
        float v = (float)c->sigmas[i];
        if (v > 0.0f && v < lo)
            lo = v;
        if (v > hi)
            hi = v;
    }
    s->items = c->batch;
    s->per_item = c->n / (size_t)c->batch;
    size_t bytes;
    if (gi_mul_overflows(BROWNIAN_SCRATCH(s->per_item), sizeof(float), &bytes))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "latent too large for a Brownian tree");
    s->scratch = gi_aligned_alloc(bytes);
    if (!s->scratch)
        return gi_fail(err, GS_ERR_NO_MEMORY, "sampler: out of memory for the Brownian tree");
    for (int b = 0; b < c->batch; b++)
        brownian_init(&s->tree[b], c->seed + (uint64_t)b, lo, hi, s->per_item);
    return GS_OK;
}

static void sde_noise_free(sde_noise *s)
{
    gi_aligned_free(s->scratch);
    s->scratch = NULL;
}

/* noise_sampler(σ_a, σ_b) of k-diffusion into out [n] (float32 σ's). */
static void sde_noise_draw(const sde_noise *s, float sa, float sb, float *out)
{
    float lo = sa < sb ? sa : sb, hi = sa < sb ? sb : sa;
    float sign = sa < sb ? 1.0f : -1.0f;
    float norm = sqrtf(fabsf(sb - sa));
    for (int b = 0; b < s->items; b++) {
        float *o = out + (size_t)b * s->per_item;
        brownian_increment(&s->tree[b], lo, hi, o, s->scratch);
        for (size_t i = 0; i < s->per_item; i++)
            o[i] = o[i] * sign / norm;
    }
}

/* ---- dpmpp_sde ---- */

static gs_status dpmpp_sde_steps(sample_ctx *c, const sde_noise *nz, float *x, gi_error *err)
{
    float *x2 = c->buf[0], *noise = c->buf[1], *den2 = c->buf[2]; /* [n] each */
    const double r = 0.5, fac = 1.0 / (2.0 * r);
    for (int i = 0; i < c->total; i++) {
        double s_cur = c->sigmas[i], s_next = c->sigmas[i + 1];
        gs_status st = sample_denoise(c, x, s_cur, i + 1, c->denoised, err);
        if (st != GS_OK)
            return st;
        if (s_next == 0.0) {
            sample_axpy(x, c->eps, c->n, s_next - s_cur);
        } else {
            double t = -log(s_cur), t_next = -log(s_next), h = t_next - t, s = t + h * r;
            double sigma_s = exp(-s);
            /* the σ's the noise sampler sees: exp(−t) of float32 t's */
            float tf = -logf((float)s_cur), tnf = -logf((float)s_next);
            float sf = tf + (tnf - tf) * (float)r;
            float q_t = expf(-tf), q_s = expf(-sf), q_next = expf(-tnf);
            /* step 1: an ancestral DPM-Solver++ step to σ(s) */
            double sd, su;
            sample_ancestral_split(s_cur, sigma_s, c->eta, &sd, &su);
            double keep = sd / s_cur, take = -expm1(t + log(sd));
            sde_noise_draw(nz, q_t, q_s, noise);
            for (size_t k = 0; k < c->n; k++) {
                double d = (double)x[k] - s_cur * c->eps[k];
                x2[k] = (float)(keep * x[k] + take * d + (double)noise[k] * su);
            }
            st = sample_denoise(c, x2, sigma_s, i + 1, den2, err);
            if (st != GS_OK)
                return st;
            /* step 2: to σ_next with D = (1 − fac)·D₁ + fac·D₂ */
            sample_ancestral_split(s_cur, s_next, c->eta, &sd, &su);
            keep = sd / s_cur;
            take = -expm1(t + log(sd));
            sde_noise_draw(nz, q_t, q_next, noise);
            for (size_t k = 0; k < c->n; k++) {
                double d = (1.0 - fac) * c->denoised[k] + fac * den2[k];
                x[k] = (float)(keep * x[k] + take * d + (double)noise[k] * su);
            }
        }
        st = sample_report(c, i + 1, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}

/* ---- dpmpp_2m_sde (midpoint) ---- */

static gs_status dpmpp_2m_sde_steps(sample_ctx *c, const sde_noise *nz, float *x, gi_error *err)
{
    float *noise = c->buf[1], *old = c->buf[0], *den = c->denoised; /* [n] each */
    double h_last = 0.0;
    for (int i = 0; i < c->total; i++) {
        double s_cur = c->sigmas[i], s_next = c->sigmas[i + 1];
        gs_status st = sample_denoise(c, x, s_cur, i + 1, den, err);
        if (st != GS_OK)
            return st;
        double h = 0.0;
        if (s_next == 0.0) {
            for (size_t k = 0; k < c->n; k++) /* the denoising step: x = D, from ε */
                x[k] = (float)((double)x[k] - s_cur * c->eps[k]);
        } else {
            h = log(s_cur) - log(s_next);
            double eta_h = c->eta * h;
            double keep = s_next / s_cur * exp(-eta_h), take = -expm1(-h - eta_h);
            double corr = i > 0 ? 0.5 * take * (h / h_last) : 0.0; /* 0.5·take·(1/r) */
            double sn = c->eta != 0.0 ? s_next * sqrt(-expm1(-2.0 * eta_h)) : 0.0;
            if (c->eta != 0.0)
                sde_noise_draw(nz, (float)s_cur, (float)s_next, noise);
            for (size_t k = 0; k < c->n; k++) {
                double d = (double)x[k] - s_cur * c->eps[k];
                double v = keep * x[k] + take * d;
                if (i > 0)
                    v += corr * (d - old[k]);
                if (c->eta != 0.0)
                    v += (double)noise[k] * sn;
                x[k] = (float)v;
            }
        }
        st = sample_report(c, i + 1, x, den, err);
        if (st != GS_OK)
            return st;
        float *tmp = old; /* this step's D becomes the previous one */
        old = den;
        den = tmp;
        h_last = h;
    }
    return GS_OK;
}

gs_status dpmpp_sde_run(sample_ctx *c, float *x, gi_error *err)
{
    sde_noise nz;
    gs_status st = sde_noise_init(&nz, c, err);
    if (st == GS_OK)
        st = dpmpp_sde_steps(c, &nz, x, err);
    sde_noise_free(&nz);
    return st;
}

gs_status dpmpp_2m_sde_run(sample_ctx *c, float *x, gi_error *err)
{
    sde_noise nz;
    gs_status st = sde_noise_init(&nz, c, err);
    if (st == GS_OK)
        st = dpmpp_2m_sde_steps(c, &nz, x, err);
    sde_noise_free(&nz);
    return st;
}
