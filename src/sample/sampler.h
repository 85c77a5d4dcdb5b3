/*
 * sampler - turns noise into a latent with a diffusion model.
 *
 * One entry point, sample_run: it validates the configuration, allocates all
 * scratch once, draws the initial noise from the caller's generator, builds
 * the schedule and runs the chosen sampler, calling back after every step.
 * The model is a callback so this layer knows nothing of UNets, CFG or
 * prompts; it returns the raw network output (ε, or v for a v-prediction
 * model, which sample_eval turns into ε before any sampler sees it).
 *
 * Every sampler is one row of the table in sampler_table.c (names, flags,
 * default scheduler, step limit, run function): adding one is a row and its
 * function. Which reference each follows, exactly:
 *   euler, euler_a (η=1), heun, dpmpp_2m, lms (order 4), dpm_2, dpm_2_a,
 *       dpmpp_2s_a, dpm_fast, dpm_adaptive  k-diffusion's sampling.py as
 *       A1111 drives it (η = 1 where the signature has eta, s_noise 1,
 *       s_churn 0, every randn_like drawn from the image's generator in call
 *       order, dpm_2/dpm_2_a with the penultimate σ discarded, dpm_fast and
 *       dpm_adaptive on σ_min/σ_max of the schedule with float32 time
 *       scalars, ending at σ_min), on the denoiser
 *       D(x,σ) = x − σ·ε(x/√(σ²+1), t(σ)), t(σ) fractional;
 *       fixtures: tests/fixtures/samplers/README.md
 *   dpmpp_sde, dpmpp_2m_sde (midpoint)  k-diffusion with A1111's defaults
 *       (η = 1, s_noise 1, r = 1/2) and a BrownianTreeNoiseSampler: the
 *       Brownian interval is torchsde's algorithm but not its bits (see
 *       brownian.h)
 *   ddim  diffusers DDIMScheduler (leading, offset 1, ᾱ_prev at the end =
 *       ᾱ_0, η=0); lcm  diffusers LCMScheduler (50 original steps).
 *   schedulers normal/karras/exponential  k-diffusion; sgm_uniform and
 *       simple  ComfyUI (A1111's sd_schedulers.py copies them).
 * Latents are NCHW [batch, C, H, W] in torch's element order, so the noise of
 * a seed is the same tensor torch.randn gives.
 */
#ifndef GS_SAMPLER_H
#define GS_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sample/rng.h"
#include "sample/schedule.h"

#define SAMPLE_MAX_STEPS SCHED_TRAIN_STEPS
/* σ entries a run may hold: a discard-penultimate schedule builds steps+2 */
#define SAMPLE_MAX_SIGMAS (SAMPLE_MAX_STEPS + 2)
/* batch items a Brownian-noise sampler takes (one tree each) */
#define SAMPLE_MAX_BATCH_TREES 256
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

typedef enum sample_prediction {
    SAMPLE_PRED_EPS = 0, /* the model predicts the noise ε (SD 1.x, SD 2 base, SDXL) */
    SAMPLE_PRED_V = 1    /* v = √ᾱ·ε − √(1−ᾱ)·x0 (SD 2.x 768-v) */
} sample_prediction;

/* dpm_adaptive's attempts, for tests: one row of 5 per attempt, [s after it,
 * σ(s), error, h after it, accepted] (the samplers fixture's `.trace`). */
typedef struct sample_trace {
    double *rows; /* [max][5] */
    int max;
    int count; /* rows written */
} sample_trace;

typedef struct sample_config {
    const char *sampler; /* a sample_sampler_names() entry */
    const char
        *scheduler; /* a sample_scheduler_names() entry; NULL/"default" = the sampler's own */
    int steps;
    int batch, channels, height, width; /* latent shape, NCHW */
    const float *init_latent;           /* img2img when not NULL (already scaled by 0.18215) */
    float strength;                     /* img2img denoising strength (0,1] */
    sample_prediction prediction;       /* what the model callback returns; 0 = ε */
    /* Inpainting: when not NULL (init_latent required), after every model
     * evaluation the x0 prediction becomes init·keep + (1−keep)·x0 (A1111's
     * CFGDenoiser), for every sampler. Latent resolution, 1 = keep the
     * original: [height, width] for all items, or [batch, 1, height, width]
     * with keep_per_item. It only blends: where x starts is still img2img's
     * strength rule. */
    const float *keep;
    int keep_per_item;
    /* η of the samplers that take one (euler_a, dpm_2_a, dpmpp_2s_a,
     * dpm_fast, dpm_adaptive, dpmpp_sde, dpmpp_2m_sde): with custom_eta 0 it
     * is A1111's default, 1. */
    int custom_eta;
    double eta;
    sample_trace *trace; /* dpm_adaptive records its attempts here when not NULL */
    /* The image seed (the one rng was seeded with): dpmpp_sde/dpmpp_2m_sde
     * seed one Brownian tree per item with seed + item, as A1111 does. */
    uint64_t seed;
    /* img2img with an explicit step count (A1111's hires pass): when > 0 the
     * schedule is built for schedule_steps steps and its last `steps` run
     * (t_enc = steps − 1): schedule(schedule_steps)[schedule_steps − steps:].
     * sample_fixed_steps_total gives A1111's value. 0 = plain img2img. */
    int schedule_steps;
} sample_config;

/* A1111's setup_img2img_steps with an explicit count: the schedule length
 * int(requested / min(strength, 0.999)) whose last `requested` steps run. */
int sample_fixed_steps_total(int requested, float strength);

/* Unknown sampler or scheduler (the message lists the known names), steps out
 * of the row's range, a bad latent shape, strength outside (0,1] for img2img,
 * ddim/lcm with an explicit k-schedule, keep without init_latent, or a
 * negative η: GS_ERR_INVALID_ARGUMENT with a message. */
gs_status sample_validate(const sample_config *cfg, gi_error *err);

/* Steps the callback will report (the number of sampler steps actually run:
 * fewer than cfg->steps for img2img; dpm_fast's ⌊n/3⌋+1; dpm_adaptive reports
 * its progress in λ as steps 1..n). 0 if cfg is invalid. */
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
 * schedule(steps)[steps − t_enc − 1:] with t_enc = ⌊min(strength,0.999)·steps⌋,
 * or with schedule_steps set schedule(schedule_steps)[schedule_steps − steps:];
 * discard-penultimate samplers: schedule(steps+1) less its next-to-last σ).
 * For dpm_fast/dpm_adaptive it is the schedule whose σ_min/σ_max they take.
 * out needs max(cfg->steps, cfg->schedule_steps)+2 entries; *count gets the
 * number written. */
gs_status sample_sigmas(const sample_config *cfg, const sched_train *train, double *out, int *count,
                        gi_error *err);
/* The timesteps ddim/lcm visit for cfg (with schedule_steps: the last `steps`
 * of schedule_steps); out needs max(cfg->steps, cfg->schedule_steps) entries. */
gs_status sample_timesteps(const sample_config *cfg, int *out, int *count, gi_error *err);

/* 1 for samplers that take their noise levels from a σ schedule (all but ddim, lcm). */
int sample_is_k_sampler(const char *sampler);

/* NULL-terminated name lists (for gs_sampler_names / gs_scheduler_names). */
const char *const *sample_sampler_names(void);
const char *const *sample_scheduler_names(void);
/* The table's rows (for gs_sampler_count/gs_sampler_at). */
int sample_sampler_count(void);
const gs_sampler_desc *sample_sampler_at(int i);
/* "a, b, c": the known sampler names, for messages. */
const char *sample_known_samplers(void);

#endif
