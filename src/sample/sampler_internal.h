/*
 * sampler_internal - the run context the sampler files share.
 *
 * sampler.c validates, allocates the context and its scratch once, draws the
 * initial noise and dispatches; sampler_k.c holds the k-diffusion samplers,
 * sampler_discrete.c the diffusers ones. Nothing here allocates.
 */
#ifndef GS_SAMPLER_INTERNAL_H
#define GS_SAMPLER_INTERNAL_H

#include "sample/sampler.h"

typedef enum sample_kind {
    SAMPLER_EULER,
    SAMPLER_EULER_A,
    SAMPLER_HEUN,
    SAMPLER_DPMPP_2M,
    SAMPLER_DDIM,
    SAMPLER_LCM,
    SAMPLER_COUNT
} sample_kind;

typedef struct sample_ctx {
    sample_kind kind;
    gi_rng *rng;
    sample_model_fn model;
    sample_step_fn on_step;
    void *user;
    size_t n;  /* elements of the latent batch, batch*C*H*W */
    int total; /* steps this run makes and reports */
    int steps; /* the configured steps (ddim's stride depends on it) */
    sched_train train;
    double sigmas[SAMPLE_MAX_STEPS + 1]; /* [total+1] k-samplers, ends with 0 */
    int timesteps[SAMPLE_MAX_STEPS];     /* [total] ddim/lcm */
    float *x_in;                         /* [n] model input */
    float *eps;                          /* [n] model output */
    float *denoised;                     /* [n] x0 prediction */
    float *aux;  /* [n] heun: x after the Euler predictor; dpmpp_2m: previous denoised;
                    euler_a, lcm: step noise */
    float *aux2; /* [n] heun: first slope */
} sample_ctx;

/* Calls on_step; returns GS_ERR_CANCELLED (with the message) when it asks. */
gs_status sample_report(sample_ctx *c, int step, const float *x, const float *denoised,
                        gi_error *err);
/* The model at timestep t on input x_in, into c->eps, with context on failure. */
gs_status sample_eval(sample_ctx *c, const float *x_in, double t, int step, gi_error *err);

gs_status ksampler_run(sample_ctx *c, float *x /* [n] in: x at σ_0, out: final */, gi_error *err);
gs_status ddim_run(sample_ctx *c, float *x, gi_error *err);
gs_status lcm_run(sample_ctx *c, float *x, gi_error *err);

#endif
