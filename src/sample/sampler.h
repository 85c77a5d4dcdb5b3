/*
 * sampler - turns noise into a latent with an ε-predicting model.
 *
 * One entry point, sample_run: it validates the configuration, allocates all
 * scratch once, draws the initial noise from the caller's generator, builds
 * the schedule and runs the chosen sampler, calling back after every step.
 * The model is a callback so this layer knows nothing of UNets, CFG or
 * prompts. Semantics follow the reference tools exactly:
 *   euler, euler_a (η=1), heun, dpmpp_2m  k-diffusion, on a σ schedule, with
 *       the denoiser D(x,σ) = x − σ·ε(x/√(σ²+1), t(σ)), t(σ) fractional;
 *   ddim  diffusers DDIMScheduler (leading, offset 1, ᾱ_prev at the end =
 *       ᾱ_0, η=0); lcm  diffusers LCMScheduler (50 original steps).
 * Latents are NCHW [batch, C, H, W] in torch's element order, so the noise of
 * a seed is the same tensor torch.randn gives.
 */
#ifndef GS_SAMPLER_H
#define GS_SAMPLER_H

#include <stddef.h>

#include "common/error.h"
#include "sample/rng.h"
#include "sample/schedule.h"

#define SAMPLE_MAX_STEPS SCHED_TRAIN_STEPS
#define SAMPLE_LCM_ORIGINAL_STEPS 50

/* x_in: [batch, C, H, W] model input; t: timestep (fractional for the
 * k-samplers); eps: out, same shape. Return GS_OK or fill err. */
typedef gs_status (*sample_model_fn)(void *user, const float *x_in, double t, float *eps,
                                     gi_error *err);

/* After each step (1-based): x is the latent after the step, denoised the
 * x0 prediction the step used ([batch, C, H, W] both, valid during the call).
 * A non-zero return cancels sampling. */
typedef int (*sample_step_fn)(void *user, int step, int total, const float *x,
                              const float *denoised);

typedef struct sample_config {
    const char *sampler;   /* euler, euler_a, heun, dpmpp_2m, ddim, lcm */
    const char *scheduler; /* normal, karras, exponential, or NULL/"default" = the sampler's own */
    int steps;
    int batch, channels, height, width; /* latent shape, NCHW */
    const float *init_latent;           /* img2img when not NULL (already scaled by 0.18215) */
    float strength;                     /* img2img denoising strength (0,1] */
} sample_config;

/* Unknown sampler or scheduler, steps out of range (1..1000; ddim 1..999,
 * lcm 1..50), a bad latent shape, strength outside (0,1] for img2img, or
 * ddim/lcm with an explicit k-schedule: GS_ERR_INVALID_ARGUMENT with a message. */
gs_status sample_validate(const sample_config *cfg, gi_error *err);

/* Steps the callback will report (the number of sampler steps actually run:
 * fewer than cfg->steps for img2img). 0 if cfg is invalid. */
int sample_progress_total(const sample_config *cfg);

/* Runs the sampler. Draws one randn of [batch,C,H,W] from rng first, then
 * x = noise·σ₀ (k-samplers), noise (ddim, lcm), init + noise·σ₀ (img2img with
 * a k-sampler) or √ᾱ·init + √(1−ᾱ)·noise (img2img with ddim/lcm). Ancestral
 * steps (euler_a whose next σ > 0, lcm but the last) draw more noise from rng.
 * x: out, the final latent [batch*C*H*W]. Returns GS_ERR_CANCELLED when
 * on_step (may be NULL) asks; the model's status when it fails. If cfg is
 * invalid, neither callback is called. */
gs_status sample_run(const sample_config *cfg, gi_rng *rng, sample_model_fn model,
                     sample_step_fn on_step, void *user, float *x, gi_error *err);

/* ---- pieces, for the pipeline's metadata and for tests ---- */

/* The σ sequence a k-sampler walks for cfg (img2img: the tail A1111 takes,
 * schedule(steps)[steps − t_enc − 1:] with t_enc = ⌊min(strength,0.999)·steps⌋).
 * out needs cfg->steps+1 entries; *count gets the number written (total+1). */
gs_status sample_sigmas(const sample_config *cfg, const sched_train *train, double *out, int *count,
                        gi_error *err);
/* The timesteps ddim/lcm visit for cfg; out needs cfg->steps entries. */
gs_status sample_timesteps(const sample_config *cfg, int *out, int *count, gi_error *err);

/* 1 for samplers that walk a σ schedule (euler, euler_a, heun, dpmpp_2m). */
int sample_is_k_sampler(const char *sampler);

/* NULL-terminated name lists (for gs_sampler_names / gs_scheduler_names). */
const char *const *sample_sampler_names(void);
const char *const *sample_scheduler_names(void);

#endif
