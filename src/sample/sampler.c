/*
 * sampler - configuration checks, schedules, scratch and the run loop's frame.
 *
 * sample_run does everything that can fail before the first model call
 * (validation, the one allocation), then draws the initial noise, places x at
 * the first noise level and hands over to the sampler family. The samplers
 * themselves live in sampler_k.c and sampler_discrete.c.
 */
#include "sample/sampler.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "sample/sampler_internal.h"

/* A1111 caps img2img's strength at 0.999 when it computes t_enc, so 1.0 gives
 * t_enc = ⌊0.999·steps⌋ = steps − 1 (steps < 1000): the whole schedule from
 * σ_max, with the init latent added to the noise (not pure noise). */
#define IMG2IMG_MAX_STRENGTH 0.999
/* Latent elements per run; far above any real latent (SDXL 2048² is 4·256·256·batch). */
#define SAMPLE_MAX_ELEMENTS ((size_t)1 << 31)

/* ---- names ---- */

static int is_default_scheduler(const char *s)
{
    return !s || strcmp(s, "default") == 0;
}

static int has_flag(const sampler_row *r, unsigned flag)
{
    return (r->desc.flags & flag) != 0;
}

int sample_is_k_sampler(const char *sampler)
{
    const sampler_row *r = sample_find_row(sampler);
    return r && has_flag(r, GS_SAMPLER_SIGMAS);
}

/* ---- validation ---- */

gs_status sample_validate(const sample_config *cfg, gi_error *err)
{
    if (!cfg)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "no sampler configuration");
    const sampler_row *row = sample_find_row(cfg->sampler);
    if (!row)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "unknown sampler '%.64s' (known: %s)",
                       cfg->sampler ? cfg->sampler : "(null)", sample_known_samplers());
    const gs_sampler_desc *info = &row->desc;
    if (!is_default_scheduler(cfg->scheduler)) {
        sched_kind sk;
        if (sched_parse(cfg->scheduler, &sk) != 0)
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "unknown scheduler '%.64s' (known: %s)",
                           cfg->scheduler, sched_known_names());
        if (!has_flag(row, GS_SAMPLER_SIGMAS))
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                           "sampler '%s' uses its own timesteps; scheduler must be 'default', "
                           "not '%s'",
                           info->name, cfg->scheduler);
    }
    if (cfg->steps < 1 || cfg->steps > info->max_steps)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "steps must be 1..%d for %s, got %d",
                       info->max_steps, info->name, cfg->steps);
    if (cfg->prediction != SAMPLE_PRED_EPS && cfg->prediction != SAMPLE_PRED_V)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "unknown prediction type %d",
                       (int)cfg->prediction);
    if (cfg->keep && !cfg->init_latent)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "an inpainting mask needs the original latent (init_latent)");
    if (has_flag(row, GS_SAMPLER_BROWNIAN) && cfg->batch > SAMPLE_MAX_BATCH_TREES)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "%s takes at most %d batch items, got %d",
                       info->name, SAMPLE_MAX_BATCH_TREES, cfg->batch);
    if (cfg->custom_eta && !(cfg->eta >= 0.0 && cfg->eta <= 100.0))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "eta must be in [0, 100], got %g", cfg->eta);
    if (cfg->batch < 1 || cfg->channels < 1 || cfg->height < 1 || cfg->width < 1)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "bad latent shape [%d, %d, %d, %d]",
                       cfg->batch, cfg->channels, cfg->height, cfg->width);
    size_t n = (size_t)cfg->batch;
    if (gi_mul_overflows(n, (size_t)cfg->channels, &n) ||
        gi_mul_overflows(n, (size_t)cfg->height, &n) ||
        gi_mul_overflows(n, (size_t)cfg->width, &n) || n > SAMPLE_MAX_ELEMENTS)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "latent [%d, %d, %d, %d] is too large",
                       cfg->batch, cfg->channels, cfg->height, cfg->width);
    if (cfg->init_latent && !(cfg->strength > 0.0f && cfg->strength <= 1.0f))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "img2img strength must be in (0, 1], got %g",
                       (double)cfg->strength);
    if (cfg->schedule_steps && (!cfg->init_latent || cfg->schedule_steps < cfg->steps ||
                                cfg->schedule_steps > info->max_steps))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "an explicit schedule of %d steps needs img2img and %d..%d steps for %s",
                       cfg->schedule_steps, cfg->steps, info->max_steps, info->name);
    return GS_OK;
}

/* ---- schedules ---- */

/* The decimal the user most likely wrote for a float strength (0.7f -> 0.7),
 * so that ⌊strength·steps⌋ agrees with tools that hold it as a double. */
static double strength_decimal(float s)
{
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)s);
        double d = strtod(buf, NULL);
        if ((float)d == s)
            return d;
    }
    return (double)s;
}

int sample_fixed_steps_total(int requested, float strength)
{
    double s = strength_decimal(strength);
    if (!(s > 0))
        return 0;
    return (int)(requested / (s < IMG2IMG_MAX_STRENGTH ? s : IMG2IMG_MAX_STRENGTH));
}

/* The length of the schedule a run's steps are taken from. */
static int schedule_length(const sample_config *cfg)
{
    return cfg->schedule_steps > 0 ? cfg->schedule_steps : cfg->steps;
}

/* Sampler steps an img2img run makes out of cfg->steps. */
static int img2img_steps(const sample_config *cfg, int is_k)
{
    if (cfg->schedule_steps > 0)
        return cfg->steps; /* t_enc = steps − 1: exactly the steps asked for */
    double s = strength_decimal(cfg->strength);
    if (is_k) {
        /* A1111: t_enc = int(min(strength, 0.999)·steps), then t_enc+1 steps */
        if (s > IMG2IMG_MAX_STRENGTH)
            s = IMG2IMG_MAX_STRENGTH;
        return (int)floor(s * cfg->steps) + 1;
    }
    /* diffusers: the last ⌊strength·steps⌋ timesteps, at least one */
    int t = (int)floor(s * cfg->steps);
    return t < 1 ? 1 : t;
}

int sample_progress_total(const sample_config *cfg)
{
    if (sample_validate(cfg, NULL) != GS_OK)
        return 0;
    const sampler_row *row = sample_find_row(cfg->sampler);
    int n = cfg->init_latent ? img2img_steps(cfg, has_flag(row, GS_SAMPLER_SIGMAS)) : cfg->steps;
    return row->progress ? row->progress(n) : n;
}

static sched_kind k_schedule(const sample_config *cfg, const sampler_row *row)
{
    sched_kind sk = row->default_sched;
    if (!is_default_scheduler(cfg->scheduler))
        sched_parse(cfg->scheduler, &sk);
    return sk;
}

gs_status sample_sigmas(const sample_config *cfg, const sched_train *train, double *out, int *count,
                        gi_error *err)
{
    gs_status st = sample_validate(cfg, err);
    if (st != GS_OK)
        return st;
    const sampler_row *row = sample_find_row(cfg->sampler);
    if (!has_flag(row, GS_SAMPLER_SIGMAS))
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "sampler '%s' has no sigma schedule",
                       cfg->sampler);
    int len = schedule_length(cfg);
    if (has_flag(row, GS_SAMPLER_DISCARD_PENULTIMATE)) {
        /* A1111: the schedule of steps+1, its next-to-last σ dropped */
        st = sched_sigmas(train, k_schedule(cfg, row), len + 1, out, err);
        if (st != GS_OK)
            return st;
        out[len] = out[len + 1];
    } else {
        st = sched_sigmas(train, k_schedule(cfg, row), len, out, err);
        if (st != GS_OK)
            return st;
    }
    int total = cfg->init_latent ? img2img_steps(cfg, 1) : cfg->steps;
    int skip = len - total; /* = steps − t_enc − 1 */
    memmove(out, out + skip, (size_t)(total + 1) * sizeof *out);
    *count = total + 1;
    return GS_OK;
}

gs_status sample_timesteps(const sample_config *cfg, int *out, int *count, gi_error *err)
{
    gs_status st = sample_validate(cfg, err);
    if (st != GS_OK)
        return st;
    const sampler_row *row = sample_find_row(cfg->sampler);
    int len = schedule_length(cfg);
    if (row->run == ddim_run)
        st = sched_ddim_timesteps(len, out, err);
    else if (row->run == lcm_run)
        st = sched_lcm_timesteps(len, SAMPLE_LCM_ORIGINAL_STEPS, out, err);
    else
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "sampler '%s' has no timestep list",
                       cfg->sampler);
    if (st != GS_OK)
        return st;
    int total = cfg->init_latent ? img2img_steps(cfg, 0) : cfg->steps;
    int skip = len - total;
    memmove(out, out + skip, (size_t)total * sizeof *out);
    *count = total;
    return GS_OK;
}

/* ---- shared step helpers ---- */

gs_status sample_report(sample_ctx *c, int step, const float *x, const float *denoised,
                        gi_error *err)
{
    if (c->on_step && c->on_step(c->user, step, c->total, x, denoised) != 0)
        return gi_fail(err, GS_ERR_CANCELLED, "sampling cancelled after step %d of %d", step,
                       c->total);
    return GS_OK;
}

/* The keep mask at element i of the batch latent. */
static double keep_at(const sample_ctx *c, size_t i)
{
    size_t per_item = c->n / (size_t)c->batch;
    size_t item = i / per_item, pix = i % (size_t)c->plane;
    return c->keep_per_item ? c->keep[item * (size_t)c->plane + pix] : c->keep[pix];
}

gs_status sample_eval(sample_ctx *c, const float *x, double sigma, double t, int vp, int step,
                      gi_error *err)
{
    /* the model sees the variance-preserving latent x/√(σ²+1) */
    double root = sqrt(sigma * sigma + 1.0);
    const float *x_in = x;
    if (!vp) {
        double c_in = 1.0 / root;
        for (size_t i = 0; i < c->n; i++)
            c->x_in[i] = (float)(x[i] * c_in);
        x_in = c->x_in;
    }
    gs_status st = c->model(c->user, x_in, t, c->eps, err);
    if (st != GS_OK) {
        if (err && err->code == GS_OK) /* a model that failed without saying why */
            gi_fail(err, st, "%s", gs_strerror(st));
        gi_error_prefix(err, "sampling step %d of %d", step, c->total);
        return st;
    }
    if (c->prediction == SAMPLE_PRED_V) {
        /* v = √ᾱ·ε − √(1−ᾱ)·x0 with √ᾱ = 1/√(σ²+1), √(1−ᾱ) = σ/√(σ²+1):
           ε = √(1−ᾱ)·x_in + √ᾱ·v = (σ·x_in + v)/√(σ²+1) */
        for (size_t i = 0; i < c->n; i++)
            c->eps[i] = (float)((sigma * x_in[i] + (double)c->eps[i]) / root);
    }
    if (c->keep && sigma > 0.0) {
        /* x0 = x_k − σ·ε on the k-latent x_k (= √(σ²+1)·x for a vp latent);
           blend it, then the ε that gives the blend. Elements with keep 0 are
           left alone, so an all-zero mask changes nothing. */
        double scale = vp ? root : 1.0;
        for (size_t i = 0; i < c->n; i++) {
            double k = keep_at(c, i);
            if (k == 0.0)
                continue;
            double xk = scale * x[i];
            double x0 = xk - sigma * c->eps[i];
            x0 = c->init[i] * k + (1.0 - k) * x0;
            c->eps[i] = (float)((xk - x0) / sigma);
        }
    }
    return GS_OK;
}

/* ---- run ---- */

/* x ← noise·σ₀, init + noise·σ₀, or √ᾱ·init + √(1−ᾱ)·noise (x holds the noise). */
static void place_initial(const sample_ctx *c, const sample_config *cfg, float *x)
{
    if (has_flag(c->row, GS_SAMPLER_SIGMAS)) {
        double s0 = c->sigmas[0];
        for (size_t i = 0; i < c->n; i++)
            x[i] = cfg->init_latent ? (float)(cfg->init_latent[i] + x[i] * s0) : (float)(x[i] * s0);
        return;
    }
    if (!cfg->init_latent)
        return; /* ddim and lcm start from the unit-variance noise itself */
    double a = sched_alpha_cumprod(&c->train, c->timesteps[0]);
    double sa = sqrt(a), sb = sqrt(1.0 - a);
    for (size_t i = 0; i < c->n; i++)
        x[i] = (float)(sa * cfg->init_latent[i] + sb * x[i]);
}

gs_status sample_run(const sample_config *cfg, gi_rng *rng, sample_model_fn model,
                     sample_step_fn on_step, void *user, float *x, gi_error *err)
{
    gi_error_clear(err);
    gs_status st = sample_validate(cfg, err);
    if (st != GS_OK)
        return st;
    if (!rng || !model || !x)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "sample_run needs a generator, a model and an output buffer");
    sample_ctx *c = NULL;
    float *scratch = NULL;
    size_t n =
        (size_t)cfg->batch * (size_t)cfg->channels * (size_t)cfg->height * (size_t)cfg->width;
    size_t bytes;

    c = gi_calloc(1, sizeof *c);
    if (!c) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "sampler: out of memory for its context");
        goto out;
    }
    if (gi_mul_overflows(n, (3 + SAMPLE_SCRATCH) * sizeof(float), &bytes)) {
        st = gi_fail(err, GS_ERR_INVALID_ARGUMENT, "latent too large");
        goto out;
    }
    scratch = gi_aligned_alloc(bytes);
    if (!scratch) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "sampler: out of memory for %zu bytes of scratch",
                     bytes);
        goto out;
    }
    c->row = sample_find_row(cfg->sampler);
    c->rng = rng;
    c->model = model;
    c->on_step = on_step;
    c->user = user;
    c->n = n;
    c->steps = schedule_length(cfg); /* ddim's stride is that of the whole schedule */
    c->batch = cfg->batch;
    c->plane = cfg->height * cfg->width;
    c->eta = cfg->custom_eta ? cfg->eta : 1.0;
    c->prediction = cfg->prediction;
    c->init = cfg->init_latent;
    c->keep = cfg->keep;
    c->keep_per_item = cfg->keep_per_item;
    c->trace = cfg->trace;
    c->seed = cfg->seed;
    c->x_in = scratch;
    c->eps = scratch + n;
    c->denoised = scratch + 2 * n;
    for (int k = 0; k < SAMPLE_SCRATCH; k++)
        c->buf[k] = scratch + (size_t)(3 + k) * n;
    sched_train_init(&c->train);

    int count;
    if (has_flag(c->row, GS_SAMPLER_SIGMAS)) {
        st = sample_sigmas(cfg, &c->train, c->sigmas, &count, err);
        c->n_sigmas = count;
    } else {
        st = sample_timesteps(cfg, c->timesteps, &count, err);
    }
    if (st != GS_OK)
        goto out;
    c->total = sample_progress_total(cfg);

    /* the initial noise is the first draw, all batch items in one tensor */
    rng_randn(rng, x, n);
    place_initial(c, cfg, x);
    st = c->row->run(c, x, err);

out:
    gi_aligned_free(scratch);
    gi_free(c);
    return st;
}
