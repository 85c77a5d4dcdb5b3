/*
 * schedule - training ᾱ/σ table, k-diffusion schedules, DDIM/LCM timesteps.
 *
 * The float32 parts mirror torch's CPU kernels as built for AVX2: linspace
 * fills pairs of 8-wide vectors, each from a base start+step·i (fused
 * multiply-add in torch's build, so fmaf here) plus k·step, and the tail
 * element by element. With that, the 1000 training sigmas equal the
 * reference bit for bit. cumprod accumulates in double and rounds each
 * output to float, as torch's CPU cumprod does.
 */
#include "sample/schedule.h"

#include <math.h>
#include <string.h>

#define BETA_START 0.00085
#define BETA_END 0.012
#define KARRAS_RHO 7.0
#define LINSPACE_VEC 8 /* floats per AVX2 vector */

/* ---- torch float32 linspace ---- */

static float linspace_at(float start, float end, float step, int n, int i)
{
    if (i < n / 2)
        return fmaf(step, (float)i, start);
    return fmaf(-step, (float)(n - i - 1), end);
}

void sched_linspace_f32(float start, float end, int n, float *out)
{
    if (n <= 0)
        return;
    if (n == 1) {
        out[0] = start;
        return;
    }
    float step = (end - start) / (float)(n - 1);
    int i = 0;
    /* vectorised body: two vectors per round while a whole round fits; each
     * vector starts from its own base, even past the halfway point */
    for (; i + 2 * LINSPACE_VEC <= n; i += LINSPACE_VEC) {
        float base = linspace_at(start, end, step, n, i);
        for (int k = 0; k < LINSPACE_VEC; k++)
            out[i + k] = base + (float)k * step;
        i += LINSPACE_VEC;
        base = linspace_at(start, end, step, n, i);
        for (int k = 0; k < LINSPACE_VEC; k++)
            out[i + k] = base + (float)k * step;
    }
    for (; i < n; i++)
        out[i] = linspace_at(start, end, step, n, i);
}

/* ---- training table ---- */

void sched_train_init(sched_train *s)
{
    float root_beta[SCHED_TRAIN_STEPS];
    sched_linspace_f32((float)sqrt(BETA_START), (float)sqrt(BETA_END), SCHED_TRAIN_STEPS,
                       root_beta);
    double acc = 1.0;
    for (int t = 0; t < SCHED_TRAIN_STEPS; t++) {
        float beta = root_beta[t] * root_beta[t];
        float alpha = 1.0f - beta;
        acc *= (double)alpha;
        double ac = (double)(float)acc;
        s->alphas_cumprod[t] = ac;
        s->sigmas[t] = sqrt((1.0 - ac) / ac);
        s->log_sigmas[t] = log(s->sigmas[t]);
    }
}

double sched_alpha_cumprod(const sched_train *s, int t)
{
    if (t < 0)
        t = 0;
    if (t >= SCHED_TRAIN_STEPS)
        t = SCHED_TRAIN_STEPS - 1;
    return s->alphas_cumprod[t];
}

double sched_sigma_to_t(const sched_train *s, double sigma)
{
    double ls = log(sigma);
    /* low = last index whose log σ is <= ls (0 when none), at most 998 */
    int low = 0;
    for (int i = 0; i < SCHED_TRAIN_STEPS; i++) {
        if (ls - s->log_sigmas[i] >= 0.0)
            low = i;
        else
            break;
    }
    if (low > SCHED_TRAIN_STEPS - 2)
        low = SCHED_TRAIN_STEPS - 2;
    double lo = s->log_sigmas[low], hi = s->log_sigmas[low + 1];
    double w = (lo - ls) / (lo - hi);
    if (w < 0.0)
        w = 0.0;
    if (w > 1.0)
        w = 1.0;
    return (1.0 - w) * low + w * (low + 1);
}

double sched_t_to_sigma(const sched_train *s, double t)
{
    if (t <= 0.0)
        return s->sigmas[0];
    if (t >= SCHED_TRAIN_STEPS - 1)
        return s->sigmas[SCHED_TRAIN_STEPS - 1];
    double lowf = floor(t);
    int low = (int)lowf;
    int high = (int)ceil(t);
    double w = t - lowf;
    return exp((1.0 - w) * s->log_sigmas[low] + w * s->log_sigmas[high]);
}

/* ---- sampling schedules ---- */

/* In sched_kind order: X(kind, name, A1111 name, A1111 label, default ρ, uses
 * the model's σ table). A1111's names are ComfyUI's (its sd_schedulers.py
 * copies them). */
#define SCHED_ROWS(X)                                                                              \
    X(SCHED_NORMAL, "normal", "normal", "Normal", -1, 1)                                           \
    X(SCHED_KARRAS, "karras", "karras", "Karras", 7.0, 0)                                          \
    X(SCHED_EXPONENTIAL, "exponential", "exponential", "Exponential", -1, 0)                       \
    X(SCHED_SGM_UNIFORM, "sgm_uniform", "sgm_uniform", "SGM Uniform", -1, 1)                       \
    X(SCHED_SIMPLE, "simple", "simple", "Simple", -1, 1)
#define ROW(kind, name, a1111, label, rho, model) [kind] = {name, a1111, label, rho, model},
#define NAME(kind, name, ...) name,
#define LISTED(kind, name, ...) ", " name

static const gs_scheduler_desc sched_rows[SCHED_COUNT] = {SCHED_ROWS(ROW)};
static const char *const names_with_default[] = {"default", SCHED_ROWS(NAME) NULL};
static const char known[] = "default" SCHED_ROWS(LISTED);

const char *const *sched_names_with_default(void)
{
    return names_with_default;
}

int sched_parse(const char *name, sched_kind *out)
{
    for (int k = 0; name && k < SCHED_COUNT; k++) {
        if (strcmp(name, sched_rows[k].name) == 0) {
            *out = (sched_kind)k;
            return 0;
        }
    }
    return -1;
}

const char *sched_name(sched_kind kind)
{
    return (unsigned)kind < SCHED_COUNT ? sched_rows[kind].name : "?";
}

const gs_scheduler_desc *sched_desc(sched_kind kind)
{
    return (unsigned)kind < SCHED_COUNT ? &sched_rows[kind] : NULL;
}

const char *sched_known_names(void)
{
    return known;
}

/* The reference evaluates these in float32 from a float32 ramp. */
static void sigmas_normal(const sched_train *s, int steps, double *out)
{
    float t[SCHED_TRAIN_STEPS];
    sched_linspace_f32((float)(SCHED_TRAIN_STEPS - 1), 0.0f, steps, t);
    for (int i = 0; i < steps; i++) {
        float low = floorf(t[i]);
        float w = t[i] - low; /* frac, exact in float */
        int lo = (int)low, hi = (int)ceilf(t[i]);
        double one_minus_w = (double)(1.0f - w);
        out[i] = exp(one_minus_w * s->log_sigmas[lo] + (double)w * s->log_sigmas[hi]);
    }
}

static void sigmas_karras(const sched_train *s, int steps, double *out)
{
    float ramp[SCHED_TRAIN_STEPS];
    sched_linspace_f32(0.0f, 1.0f, steps, ramp);
    double min_inv_rho = pow(s->sigmas[0], 1.0 / KARRAS_RHO);
    double max_inv_rho = pow(s->sigmas[SCHED_TRAIN_STEPS - 1], 1.0 / KARRAS_RHO);
    float span = (float)(min_inv_rho - max_inv_rho);
    for (int i = 0; i < steps; i++) {
        float v = (float)max_inv_rho + ramp[i] * span;
        out[i] = (double)powf(v, (float)KARRAS_RHO);
    }
}

static void sigmas_exponential(const sched_train *s, int steps, double *out)
{
    float ls[SCHED_TRAIN_STEPS];
    sched_linspace_f32((float)log(s->sigmas[SCHED_TRAIN_STEPS - 1]), (float)log(s->sigmas[0]),
                       steps, ls);
    for (int i = 0; i < steps; i++)
        out[i] = (double)expf(ls[i]);
}

/* ComfyUI's normal_scheduler with sgm=True: n+1 float32 points from 999 to 0,
 * the last (t = 0) dropped, σ(t) as for normal, rounded to float32. This
 * equals the samplers fixture's schedule.sgm_uniform.{n} bit for bit (it
 * used this σ table). The sdxl fixture's schedule.sgm_uniform.{n} came from
 * ComfyUI's own table (β from a float64 linspace) and differs from it:
 * measured 3.3e-7 relative at σ_max and up to 6.9e-7 over n = 1 and 4 (its
 * README bounds the two tables' gap by 8.7e-6). */
static void sigmas_sgm_uniform(const sched_train *s, int steps, double *out)
{
    float t[SCHED_TRAIN_STEPS + 1];
    sched_linspace_f32((float)(SCHED_TRAIN_STEPS - 1), 0.0f, steps + 1, t);
    for (int i = 0; i < steps; i++) {
        float low = floorf(t[i]);
        float w = t[i] - low;
        int lo = (int)low, hi = (int)ceilf(t[i]);
        double one_minus_w = (double)(1.0f - w);
        out[i] =
            (double)(float)exp(one_minus_w * s->log_sigmas[lo] + (double)w * s->log_sigmas[hi]);
    }
}

/* ComfyUI's simple_scheduler: every (1000/n)-th training σ from the top, the
 * stride a double and the index truncated (n = 30, k = 3: 100.00000000000001 → 100). */
static void sigmas_simple(const sched_train *s, int steps, double *out)
{
    double ss = (double)SCHED_TRAIN_STEPS / steps;
    for (int k = 0; k < steps; k++)
        out[k] = (double)(float)s->sigmas[SCHED_TRAIN_STEPS - 1 - (int)(k * ss)];
}

gs_status sched_sigmas(const sched_train *s, sched_kind kind, int steps, double *out, gi_error *err)
{
    if (steps < 1 || steps > SCHED_TRAIN_STEPS)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "steps must be 1..%d, got %d",
                       SCHED_TRAIN_STEPS, steps);
    switch (kind) {
    case SCHED_NORMAL: sigmas_normal(s, steps, out); break;
    case SCHED_KARRAS: sigmas_karras(s, steps, out); break;
    case SCHED_EXPONENTIAL: sigmas_exponential(s, steps, out); break;
    case SCHED_SGM_UNIFORM: sigmas_sgm_uniform(s, steps, out); break;
    case SCHED_SIMPLE: sigmas_simple(s, steps, out); break;
    default: return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "unknown schedule %d", (int)kind);
    }
    out[steps] = 0.0;
    return GS_OK;
}

/* ---- discrete-time timesteps ---- */

gs_status sched_ddim_timesteps(int steps, int *out, gi_error *err)
{
    /* 1000 steps would need t = 1000, past the table */
    if (steps < 1 || steps > SCHED_TRAIN_STEPS - 1)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "ddim: steps must be 1..%d, got %d",
                       SCHED_TRAIN_STEPS - 1, steps);
    int ratio = SCHED_TRAIN_STEPS / steps;
    for (int i = 0; i < steps; i++)
        out[i] = (steps - 1 - i) * ratio + 1;
    return GS_OK;
}

int sched_ddim_prev_timestep(int t, int steps)
{
    return t - SCHED_TRAIN_STEPS / steps;
}

gs_status sched_lcm_timesteps(int steps, int original_steps, int *out, gi_error *err)
{
    if (original_steps < 1 || original_steps > SCHED_TRAIN_STEPS)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "lcm: original steps must be 1..%d, got %d",
                       SCHED_TRAIN_STEPS, original_steps);
    if (steps < 1 || steps > original_steps)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "lcm: steps must be 1..%d, got %d",
                       original_steps, steps);
    int k = SCHED_TRAIN_STEPS / original_steps;
    double stride = (double)original_steps / steps; /* numpy linspace, endpoint=False */
    for (int i = 0; i < steps; i++) {
        int idx = (int)floor((double)i * stride);
        /* reversed grid: index 0 is the largest timestep original_steps·k − 1 */
        out[i] = (original_steps - idx) * k - 1;
    }
    return GS_OK;
}
