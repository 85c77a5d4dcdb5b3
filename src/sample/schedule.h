/*
 * schedule - SD's training noise levels and the inference schedules built on them.
 *
 * Design: everything derives from the 1000 training ᾱ of SD's "scaled linear"
 * betas, computed exactly as torch does in float32 (so σ_max is the familiar
 * 14.6146...). The sampling schedules (normal, karras, exponential) follow
 * k-diffusion, DDIM and LCM timesteps follow diffusers; where the reference
 * computes in float32 (linspace, ramps) the same float32 steps are taken, so
 * the schedules agree with the reference to the last bit or ulp.
 * Sigma arrays are descending and end with 0: steps+1 values.
 */
#ifndef GS_SCHEDULE_H
#define GS_SCHEDULE_H

#include "common/error.h"
#include "gesso.h"

#define SCHED_TRAIN_STEPS 1000

typedef struct sched_train {
    double alphas_cumprod[SCHED_TRAIN_STEPS]; /* ᾱ_t, float32 values widened, t = 0..999 */
    double sigmas[SCHED_TRAIN_STEPS];         /* σ_t = √((1−ᾱ_t)/ᾱ_t), ascending */
    double log_sigmas[SCHED_TRAIN_STEPS];
} sched_train;

typedef enum sched_kind {
    SCHED_NORMAL,
    SCHED_KARRAS,
    SCHED_EXPONENTIAL,
    SCHED_SGM_UNIFORM,
    SCHED_SIMPLE,
    SCHED_COUNT
} sched_kind;

/* Fills the table for SD1.x/2.x (betas 0.00085..0.012, scaled linear). */
void sched_train_init(sched_train *s);

/* ᾱ at an integer timestep; t is clamped to 0..999. */
double sched_alpha_cumprod(const sched_train *s, int t);

/* k-diffusion's sigma_to_t: fractional t by linear interpolation of log σ over
 * the training table (clamped to 0..999). */
double sched_sigma_to_t(const sched_train *s, double sigma);
/* k-diffusion's t_to_sigma: σ(t) by linear interpolation of log σ (t in 0..999). */
double sched_t_to_sigma(const sched_train *s, double t);

/* A scheduler name (sched_names()) -> kind; returns 0 on success, -1 if unknown. */
int sched_parse(const char *name, sched_kind *out);
const char *sched_name(sched_kind kind);
/* The schedulers as rows, in sched_kind order (SCHED_COUNT of them). */
const gs_scheduler_desc *sched_desc(sched_kind kind);
/* "default, normal, ...": the known names, for messages. */
const char *sched_known_names(void);
/* NULL-terminated: "default" and the schedulers' names. */
const char *const *sched_names_with_default(void);

/* steps+1 sigmas (last 0) for 1 <= steps <= SCHED_TRAIN_STEPS:
 *   normal      t = linspace(999, 0, steps) in float32, σ(t), then 0
 *   karras      Karras et al. ρ=7 between σ_min and σ_max, then 0
 *   exponential log-linear from σ_max to σ_min, then 0
 *   sgm_uniform t = linspace(999, 0, steps+1)[:steps] in float32, σ(t), then 0
 *               (ComfyUI's normal_scheduler with sgm=True)
 *   simple      σ_train[999 − int(k·1000/steps)] for k < steps, then 0 (ComfyUI) */
gs_status sched_sigmas(const sched_train *s, sched_kind kind, int steps,
                       double *out /* [steps+1] */, gi_error *err);

/* diffusers DDIMScheduler "leading" timesteps with steps_offset 1, descending:
 * t_i = (steps-1-i)·⌊1000/steps⌋ + 1. Valid for 1 <= steps <= 999. */
gs_status sched_ddim_timesteps(int steps, int *out /* [steps] */, gi_error *err);
/* The timestep a DDIM step from t lands on (may be negative: use ᾱ_0 then). */
int sched_ddim_prev_timestep(int t, int steps);

/* diffusers LCMScheduler timesteps (strength 1): the original_steps-long
 * distillation grid k·(1000/original_steps)−1 reversed, sampled at
 * ⌊linspace(0, original_steps, steps, endpoint=False)⌋. 1 <= steps <= original_steps. */
gs_status sched_lcm_timesteps(int steps, int original_steps, int *out /* [steps] */, gi_error *err);

/* torch.linspace(start, end, n) for a float32 tensor, value for value. */
void sched_linspace_f32(float start, float end, int n, float *out /* [n] */);

#endif
