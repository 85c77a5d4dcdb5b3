/*
 * sampler_internal - the table row and the run context the sampler files share.
 *
 * sampler.c validates, allocates the context and its scratch once, draws the
 * initial noise and calls the row's run function; sampler_table.c holds the
 * rows; sampler_k*.c, sampler_dpm.c and sampler_sde.c the k-diffusion
 * samplers, sampler_discrete.c the diffusers ones. Nothing here allocates.
 */
#ifndef GS_SAMPLER_INTERNAL_H
#define GS_SAMPLER_INTERNAL_H

#include "sample/sampler.h"

typedef struct sample_ctx sample_ctx;
typedef gs_status (*sample_run_fn)(sample_ctx *c, float *x /* [n] in: initial x, out: final */,
                                   gi_error *err);

typedef struct sampler_row {
    gs_sampler_desc desc;
    sched_kind default_sched; /* desc.default_scheduler as a kind */
    sample_run_fn run;
    /* steps the callback reports for n configured steps; NULL: n */
    int (*progress)(int n);
} sampler_row;

/* The row named name, or NULL. */
const sampler_row *sample_find_row(const char *name);

#define SAMPLE_SCRATCH 8 /* [n] buffers after x_in, eps, denoised */

struct sample_ctx {
    const sampler_row *row;
    gi_rng *rng;
    sample_model_fn model;
    sample_step_fn on_step;
    void *user;
    size_t n;         /* elements of the latent batch, batch*C*H*W */
    int total;        /* steps this run reports */
    int steps;        /* the configured steps (ddim's stride, dpm_fast's n depend on it) */
    int batch, plane; /* items and H*W, for the keep mask */
    double eta;       /* the configured or default η */
    uint64_t seed;    /* the image seed: the Brownian trees' entropy */
    sample_trace *trace;
    sample_prediction prediction;
    const float *init; /* [n] init latent, or NULL */
    const float *keep; /* keep mask, or NULL */
    int keep_per_item;
    sched_train train;
    double sigmas[SAMPLE_MAX_SIGMAS]; /* [total+1] k-samplers, ends with 0 */
    int n_sigmas;
    int timesteps[SAMPLE_MAX_STEPS]; /* [total] ddim/lcm */
    float *x_in;                     /* [n] model input */
    float *eps;                      /* [n] model output, as ε */
    float *denoised;                 /* [n] x0 prediction */
    float *buf[SAMPLE_SCRATCH];      /* [n] each: the samplers' own */
};

/* Calls on_step; returns GS_ERR_CANCELLED (with the message) when it asks. */
gs_status sample_report(sample_ctx *c, int step, const float *x, const float *denoised,
                        gi_error *err);

/* One model evaluation, into c->eps as ε (a v-model's output converted), with
 * the keep mask applied to its x0. x is the sampler's latent: a k-latent at
 * noise level sigma (the model sees x/√(σ²+1), which this builds in c->x_in)
 * when vp is 0, or the variance-preserving latent the model sees as is
 * (ddim, lcm) when vp is 1. t is the timestep the model gets. */
gs_status sample_eval(sample_ctx *c, const float *x, double sigma, double t, int vp, int step,
                      gi_error *err);

/* k-diffusion's denoiser on a k-latent: c->eps = ε and, unless NULL,
 * denoised = D(x, σ) = x − σ·ε. */
gs_status sample_denoise(sample_ctx *c, const float *x, double sigma, int step, float *denoised,
                         gi_error *err);

/* k-diffusion's get_ancestral_step(σ, σ′, η) */
void sample_ancestral_split(double s, double s_next, double eta, double *down, double *up);

/* x += a · v, in double, stored float */
void sample_axpy(float *x, const float *v, size_t n, double a);

/* the run functions of the rows */
gs_status euler_run(sample_ctx *c, float *x, gi_error *err);
gs_status euler_a_run(sample_ctx *c, float *x, gi_error *err);
gs_status heun_run(sample_ctx *c, float *x, gi_error *err);
gs_status dpmpp_2m_run(sample_ctx *c, float *x, gi_error *err);
gs_status lms_run(sample_ctx *c, float *x, gi_error *err);
gs_status dpm_2_run(sample_ctx *c, float *x, gi_error *err);
gs_status dpm_2_a_run(sample_ctx *c, float *x, gi_error *err);
gs_status dpmpp_2s_a_run(sample_ctx *c, float *x, gi_error *err);
gs_status dpm_fast_run(sample_ctx *c, float *x, gi_error *err);
gs_status dpm_adaptive_run(sample_ctx *c, float *x, gi_error *err);
gs_status dpmpp_sde_run(sample_ctx *c, float *x, gi_error *err);
gs_status dpmpp_2m_sde_run(sample_ctx *c, float *x, gi_error *err);
gs_status ddim_run(sample_ctx *c, float *x, gi_error *err);
gs_status lcm_run(sample_ctx *c, float *x, gi_error *err);

int dpm_fast_progress(int n);

#endif
