/*
 * sampler_table - every sampler as one row: its names in the engine, in
 * AUTOMATIC1111 and in the AI Horde, what kind of sampler it is, its default
 * scheduler and step limit, and the function that runs it. Everything that
 * lists, validates or dispatches samplers reads this table; adding a sampler
 * is a row here and its run function.
 *
 * A1111's names, aliases and option flags are those of its
 * sd_samplers_kdiffusion.py (samplers_k_diffusion) and sd_samplers_timesteps.py
 * / sd_samplers_lcm.py; "a1111_scheduler" is the scheduler its "Automatic"
 * picks (the row's 'scheduler' option). The engine's own "default" is normal
 * for every k-sampler, as before the table.
 */
#include <stdio.h>
#include <string.h>

#include "sample/sampler_internal.h"

#define SIG GS_SAMPLER_SIGMAS
#define NOISE GS_SAMPLER_NOISE
#define SECOND GS_SAMPLER_SECOND_ORDER
#define DISCARD GS_SAMPLER_DISCARD_PENULTIMATE
#define RANGE GS_SAMPLER_SIGMA_RANGE
#define BROWN GS_SAMPLER_BROWNIAN
#define K_MAX SAMPLE_MAX_STEPS
/* a schedule of steps+1 must still fit the 1000 training levels */
#define K_MAX_DISCARD (SAMPLE_MAX_STEPS - 1)

/* In A1111's menu order, then the discrete-time samplers:
 * X(name, A1111 name, A1111 aliases, Horde names, flags, default scheduler,
 *   A1111's automatic scheduler, max steps, run, progress) */
#define SAMPLER_ROWS(X)                                                                            \
    X("dpmpp_2m", "DPM++ 2M", "k_dpmpp_2m", "k_dpmpp_2m", SIG, "normal", "karras", K_MAX,          \
      dpmpp_2m_run, NULL)                                                                          \
    X("dpmpp_sde", "DPM++ SDE", "k_dpmpp_sde", "k_dpmpp_sde", SIG | NOISE | SECOND | BROWN,        \
      "normal", "karras", K_MAX, dpmpp_sde_run, NULL)                                              \
    X("dpmpp_2m_sde", "DPM++ 2M SDE", "k_dpmpp_2m_sde", "k_dpmpp_2m_sde", SIG | NOISE | BROWN,     \
      "normal", "exponential", K_MAX, dpmpp_2m_sde_run, NULL)                                      \
    X("dpmpp_2s_a", "DPM++ 2S a", "k_dpmpp_2s_a", "k_dpmpp_2s_a", SIG | NOISE | SECOND, "normal",  \
      "karras", K_MAX, dpmpp_2s_a_run, NULL)                                                       \
    X("euler_a", "Euler a", "k_euler_a,k_euler_ancestral", "k_euler_a", SIG | NOISE, "normal",     \
      NULL, K_MAX, euler_a_run, NULL)                                                              \
    X("euler", "Euler", "k_euler", "k_euler", SIG, "normal", NULL, K_MAX, euler_run, NULL)         \
    X("lms", "LMS", "k_lms", "k_lms", SIG, "normal", NULL, K_MAX, lms_run, NULL)                   \
    X("heun", "Heun", "k_heun", "k_heun", SIG | SECOND, "normal", NULL, K_MAX, heun_run, NULL)     \
    X("dpm_2", "DPM2", "k_dpm_2", "k_dpm_2", SIG | SECOND | DISCARD, "normal", "karras",           \
      K_MAX_DISCARD, dpm_2_run, NULL)                                                              \
    X("dpm_2_a", "DPM2 a", "k_dpm_2_a", "k_dpm_2_a", SIG | NOISE | SECOND | DISCARD, "normal",     \
      "karras", K_MAX_DISCARD, dpm_2_a_run, NULL)                                                  \
    X("dpm_fast", "DPM fast", "k_dpm_fast", "k_dpm_fast", SIG | NOISE | RANGE, "normal", NULL,     \
      K_MAX, dpm_fast_run, dpm_fast_progress)                                                      \
    X("dpm_adaptive", "DPM adaptive", "k_dpm_ad", "k_dpm_adaptive", SIG | NOISE | RANGE, "normal", \
      NULL, K_MAX, dpm_adaptive_run, NULL)                                                         \
    X("ddim", "DDIM", "ddim", "DDIM", 0, "default", NULL, SCHED_TRAIN_STEPS - 1, ddim_run, NULL)   \
    X("lcm", "LCM", "k_lcm", "lcm", 0, "default", NULL, SAMPLE_LCM_ORIGINAL_STEPS, lcm_run, NULL)

#define ROW(name, a1111, aliases, horde, flags, sched, a1111_sched, max, run, progress)            \
    {{name, a1111, aliases, horde, flags, sched, a1111_sched, max}, SCHED_NORMAL, run, progress},
#define NAME(name, ...) name,
#define LISTED(name, ...) ", " name

static const sampler_row rows[] = {SAMPLER_ROWS(ROW)};
#define N_ROWS ((int)(sizeof rows / sizeof rows[0]))
static const char *const names[] = {SAMPLER_ROWS(NAME) NULL};
static const char known[] = SAMPLER_ROWS(LISTED);

const sampler_row *sample_find_row(const char *name)
{
    for (int i = 0; name && i < N_ROWS; i++)
        if (strcmp(name, rows[i].desc.name) == 0)
            return &rows[i];
    return NULL;
}

int sample_sampler_count(void)
{
    return N_ROWS;
}

const gs_sampler_desc *sample_sampler_at(int i)
{
    return i >= 0 && i < N_ROWS ? &rows[i].desc : NULL;
}

const char *const *sample_sampler_names(void)
{
    return names;
}

const char *const *sample_scheduler_names(void)
{
    return sched_names_with_default();
}

const char *sample_known_samplers(void)
{
    return known + 2; /* past the first ", " */
}

GS_API int gs_sampler_count(void)
{
    return N_ROWS;
}

GS_API const gs_sampler_desc *gs_sampler_at(int i)
{
    return sample_sampler_at(i);
}

GS_API int gs_scheduler_count(void)
{
    return SCHED_COUNT;
}

GS_API const gs_scheduler_desc *gs_scheduler_at(int i)
{
    return i >= 0 && i < SCHED_COUNT ? sched_desc((sched_kind)i) : NULL;
}
