/*
 * sampler_dpm - k-diffusion's DPM-Solver samplers, dpm_fast and dpm_adaptive,
 * as A1111 runs them: on σ_min/σ_max of the schedule (the smallest positive
 * and the largest σ), η from the run (A1111 passes its eta_ancestral, 1), so
 * both are stochastic, and both end at σ_min: the result is decoded as is.
 *
 * k-diffusion makes t_start = −log σ_max and t_end = −log σ_min with
 * torch.tensor of a Python float, so every time-grid and step scalar is a
 * float32 computed by float32 operations (Python floats meeting them are
 * rounded to float first); only the element updates are wide. This file
 * follows that: float scalars and expf/logf/expm1f, double per element.
 * dpm_adaptive's step-size controller works in Python floats (double).
 */
#include <math.h>
#include <string.h>

#include "sample/sampler_internal.h"

#define ADAPT_RTOL 0.05f
#define ADAPT_ATOL 0.0078f
#define ADAPT_H_INIT 0.05
#define ADAPT_ACCEPT_SAFETY 0.81
#define ADAPT_ERR_EPS 1e-8
#define ADAPT_END_SLACK 1e-5
/* PID controller order with η ≠ 0 (k-diffusion: 1.5 if eta else order) */
#define ADAPT_CTRL_ORDER_SDE 1.5
#define ADAPT_CTRL_ORDER 3.0

static float sigma_of(float t)
{
    return expf(-t);
}

static float t_of(float sigma)
{
    return -logf(sigma);
}

/* get_ancestral_step on float32 tensors */
static void ancestral_f32(float s, float s_next, float eta, float *down, float *up)
{
    if (eta == 0.0f) {
        *down = s_next;
        *up = 0.0f;
        return;
    }
    float u = eta * sqrtf(s_next * s_next * (s * s - s_next * s_next) / (s * s));
    *up = u < s_next ? u : s_next;
    *down = sqrtf(s_next * s_next - *up * *up);
}

/* ε(x, t) into out: the denoiser at σ(t), as (x − D)/σ = the model's ε. */
static gs_status eps_at(sample_ctx *c, const float *x, float t, int step, float *out, gi_error *err)
{
    gs_status st = sample_denoise(c, x, (double)sigma_of(t), step, NULL, err);
    if (st == GS_OK && out != c->eps)
        memcpy(out, c->eps, c->n * sizeof *out);
    return st;
}

/* The DPM-Solver step scratch: ε at t, the inner points and their ε. */
typedef struct dpm_bufs {
    float *eps, *u1, *eps1, *u2, *eps2;
} dpm_bufs;

/* u1 and eps1: the first inner point s1 = t + r1·h; needs b->eps at t. */
static gs_status inner1(sample_ctx *c, const float *x, float t, float h, float r1, int step,
                        const dpm_bufs *b, gi_error *err)
{
    float rh = r1 * h;
    float s1 = t + rh;
    float coef = sigma_of(s1) * expm1f(rh);
    for (size_t k = 0; k < c->n; k++)
        b->u1[k] = (float)((double)x[k] - (double)coef * b->eps[k]);
    return eps_at(c, b->u1, s1, step, b->eps1, err);
}

/* dpm_solver_{1,2,3}_step from t to t_next into out (may not alias x);
 * order 2 takes r1 (1/2 in dpm_fast, 1/3 in dpm_adaptive); b->eps holds ε at
 * t and, when have1 is set, b->eps1 the ε at t + r1·h already. */
static gs_status dpm_step(sample_ctx *c, const float *x, float t, float t_next, int order, float r1,
                          int have1, int step, const dpm_bufs *b, float *out, gi_error *err)
{
    float h = t_next - t;
    float sn = sigma_of(t_next);
    float a = sn * expm1f(h);
    if (order == 1) {
        for (size_t k = 0; k < c->n; k++)
            out[k] = (float)((double)x[k] - (double)a * b->eps[k]);
        return GS_OK;
    }
    gs_status st;
    if (order == 2) {
        if (!have1 && (st = inner1(c, x, t, h, r1, step, b, err)) != GS_OK)
            return st;
        float two_r1 = (float)(2.0 * (double)r1);
        /* r1 arrives as a Python float; 2·r1 is Python arithmetic, then float32 */
        float bcoef = sn / two_r1 * expm1f(h);
        for (size_t k = 0; k < c->n; k++) {
            double e = b->eps[k];
            out[k] = (float)((double)x[k] - (double)a * e - (double)bcoef * (b->eps1[k] - e));
        }
        return GS_OK;
    }
    /* order 3: r1 = 1/3, r2 = 2/3 */
    const double r1d = 1.0 / 3.0, r2d = 2.0 / 3.0;
    if (!have1 && (st = inner1(c, x, t, h, (float)r1d, step, b, err)) != GS_OK)
        return st;
    float r2h = (float)r2d * h;
    float s2 = t + r2h;
    float ss2 = sigma_of(s2);
    float c1 = ss2 * expm1f(r2h);
    float c2 = ss2 * (float)(r2d / r1d) * (expm1f(r2h) / r2h - 1.0f);
    for (size_t k = 0; k < c->n; k++) {
        double e = b->eps[k];
        b->u2[k] = (float)((double)x[k] - (double)c1 * e - (double)c2 * (b->eps1[k] - e));
    }
    if ((st = eps_at(c, b->u2, s2, step, b->eps2, err)) != GS_OK)
        return st;
    float c3 = sn / (float)r2d * (expm1f(h) / h - 1.0f);
    for (size_t k = 0; k < c->n; k++) {
        double e = b->eps[k];
        out[k] = (float)((double)x[k] - (double)a * e - (double)c3 * (b->eps2[k] - e));
    }
    return GS_OK;
}

/* σ_min, σ_max of the schedule as float32 tensors */
static void sigma_range(const sample_ctx *c, float *smin, float *smax)
{
    double lo = INFINITY, hi = 0.0;
    for (int i = 0; i < c->n_sigmas; i++) {
        double s = c->sigmas[i];
        if (s > 0.0 && s < lo)
            lo = s;
        if (s > hi)
            hi = s;
    }
    *smin = (float)lo;
    *smax = (float)hi;
}

static void bufs_init(sample_ctx *c, dpm_bufs *b)
{
    b->eps = c->buf[0];
    b->u1 = c->buf[1];
    b->eps1 = c->buf[2];
    b->u2 = c->buf[3];
    b->eps2 = c->buf[4];
}

/* x at σ(t) and its ε in b->eps: denoised = x − σ·ε for the callback */
static void denoised_of(sample_ctx *c, const float *x, float t, const float *eps)
{
    double s = sigma_of(t);
    for (size_t k = 0; k < c->n; k++)
        c->denoised[k] = (float)((double)x[k] - s * eps[k]);
}

/* ---- dpm_fast ---- */

int dpm_fast_progress(int n)
{
    return n / 3 + 1;
}

gs_status dpm_fast_run(sample_ctx *c, float *x, gi_error *err)
{
    int nfe = c->n_sigmas - 1; /* A1111: n = the steps of the (img2img) schedule */
    float smin, smax;
    sigma_range(c, &smin, &smax);
    float t_start = t_of(smax), t_end = t_of(smin);
    int m = nfe / 3 + 1;
    float ts[SAMPLE_MAX_STEPS + 1];
    sched_linspace_f32(t_start, t_end, m + 1, ts);
    int orders[SAMPLE_MAX_STEPS];
    for (int i = 0; i < m; i++)
        orders[i] = 3;
    if (nfe % 3 == 0) {
        orders[m - 2] = 2;
        orders[m - 1] = 1;
    } else {
        orders[m - 1] = nfe % 3;
    }
    float eta = (float)c->eta;
    dpm_bufs b;
    bufs_init(c, &b);
    float *next = c->buf[5], *noise = c->buf[6]; /* [n] each */
    for (int i = 0; i < m; i++) {
        float t = ts[i], t_next = ts[i + 1], t_to = t_next, su = 0.0f;
        if (eta != 0.0f) {
            float sd, up;
            ancestral_f32(sigma_of(t), sigma_of(t_next), eta, &sd, &up);
            float td = t_of(sd);
            t_to = td < t_end ? td : t_end;
            float a = sigma_of(t_next), d = sigma_of(t_to);
            su = sqrtf(a * a - d * d);
        }
        gs_status st = eps_at(c, x, t, i + 1, b.eps, err);
        if (st != GS_OK)
            return st;
        denoised_of(c, x, t, b.eps);
        if ((st = dpm_step(c, x, t, t_to, orders[i], 0.5f, 0, i + 1, &b, next, err)) != GS_OK)
            return st;
        memcpy(x, next, c->n * sizeof *x);
        if (eta != 0.0f) { /* one draw at every step, su = 0 on the last */
            rng_randn(c->rng, noise, c->n);
            sample_axpy(x, noise, c->n, (double)su);
        }
        if ((st = sample_report(c, i + 1, x, c->denoised, err)) != GS_OK)
            return st;
    }
    return GS_OK;
}

/* ---- dpm_adaptive ---- */

/* ‖(lo − hi)/δ‖₂/√n with δ = max(atol, rtol·max(|lo|, |prev|)) */
static double adapt_error(const sample_ctx *c, const float *lo, const float *hi, const float *prev)
{
    double sum = 0.0;
    for (size_t k = 0; k < c->n; k++) {
        double m = fabs((double)lo[k]);
        double p = fabs((double)prev[k]);
        double delta = (double)ADAPT_RTOL * (m > p ? m : p);
        if (delta < (double)ADAPT_ATOL)
            delta = (double)ADAPT_ATOL;
        double e = ((double)lo[k] - hi[k]) / delta;
        sum += e * e;
    }
    return sqrt(sum) / sqrt((double)c->n);
}

gs_status dpm_adaptive_run(sample_ctx *c, float *x, gi_error *err)
{
    float smin, smax;
    sigma_range(c, &smin, &smax);
    float t_start = t_of(smax), t_end = t_of(smin);
    float eta = (float)c->eta;
    double b1 = 1.0 / (eta != 0.0f ? ADAPT_CTRL_ORDER_SDE : ADAPT_CTRL_ORDER);
    dpm_bufs b;
    bufs_init(c, &b);
    float *lo = c->buf[5], *hi = c->buf[6], *prev = c->buf[7];
    float *noise = lo; /* drawn after lo is copied to prev */
    memcpy(prev, x, c->n * sizeof *x);
    double h = ADAPT_H_INIT;
    float s = t_start;
    int reported = 0;
    sample_trace *tr = c->trace;
    while (s < t_end - (float)ADAPT_END_SLACK) {
        float sh = s + (float)h;
        float t = sh < t_end ? sh : t_end;
        float t_to = t, su = 0.0f;
        if (eta != 0.0f) {
            float sd, up;
            ancestral_f32(sigma_of(s), sigma_of(t), eta, &sd, &up);
            float td = t_of(sd);
            t_to = td < t_end ? td : t_end;
            float a = sigma_of(t), d = sigma_of(t_to);
            su = sqrtf(a * a - d * d);
        }
        int step = reported + 1 <= c->total ? reported + 1 : c->total;
        gs_status st = eps_at(c, x, s, step, b.eps, err);
        if (st != GS_OK)
            return st;
        denoised_of(c, x, s, b.eps);
        /* low: order 2 with r1 = 1/3; high: order 3, sharing ε at s + h'/3 */
        if ((st = dpm_step(c, x, s, t_to, 2, 1.0f / 3.0f, 0, step, &b, lo, err)) != GS_OK ||
            (st = dpm_step(c, x, s, t_to, 3, 1.0f / 3.0f, 1, step, &b, hi, err)) != GS_OK)
            return st;
        double error = adapt_error(c, lo, hi, prev);
        /* PIDStepSizeController with pcoeff 0, icoeff 1, dcoeff 0 */
        double inv = 1.0 / (error + ADAPT_ERR_EPS);
        double factor = 1.0 + atan(pow(inv, b1) - 1.0);
        int accept = factor >= ADAPT_ACCEPT_SAFETY;
        h *= factor;
        if (accept) {
            memcpy(prev, lo, c->n * sizeof *lo);
            memcpy(x, hi, c->n * sizeof *x);
            rng_randn(c->rng, noise, c->n);
            sample_axpy(x, noise, c->n, (double)su);
            s = t;
        }
        if (tr && tr->count < tr->max) {
            double *row = tr->rows + 5 * (size_t)tr->count++;
            row[0] = s;
            row[1] = sigma_of(s);
            row[2] = error;
            row[3] = h;
            row[4] = accept;
        }
        if (accept) {
            /* progress: the share of the λ range covered, as steps 1..total */
            double done = ((double)s - t_start) / ((double)t_end - t_start);
            int target = (int)floor(done * c->total);
            if (target > c->total - 1)
                target = c->total - 1;
            while (reported < target)
                if ((st = sample_report(c, ++reported, x, c->denoised, err)) != GS_OK)
                    return st;
        }
    }
    while (reported < c->total) {
        gs_status st = sample_report(c, ++reported, x, c->denoised, err);
        if (st != GS_OK)
            return st;
    }
    return GS_OK;
}
