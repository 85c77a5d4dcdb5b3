/*
 * a1111_samplers - A1111's sampler and scheduler names and gesso's, as two
 * tables: a row per name A1111 shows, its aliases, and the engine's name.
 * Since A1111 1.9 the scheduler is a field of its own; older clients send it
 * in the sampler's name ("DPM++ 2M Karras"), which A1111 still splits, and
 * so does this: a name ending in " " + a scheduler's label, name or alias
 * takes that scheduler, whatever the scheduler field says (A1111's order).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/a1111.h"

typedef struct sampler_row {
    const char *label;   /* A1111's name */
    const char *engine;  /* gs_sampler_names() */
    const char *aliases; /* A1111's aliases, comma-separated */
    const char *option;  /* A1111's option flag for the sampler, or NULL */
} sampler_row;

static const sampler_row samplers[] = {
    {"DPM++ 2M", "dpmpp_2m", "k_dpmpp_2m", NULL},
    {"Euler a", "euler_a", "k_euler_a,k_euler_ancestral", "uses_ensd"},
    {"Euler", "euler", "k_euler", NULL},
    {"Heun", "heun", "k_heun", "second_order"},
    {"DDIM", "ddim", "ddim", NULL},
    {"LCM", "lcm", "k_lcm", NULL},
};
#define N_SAMPLERS (sizeof samplers / sizeof samplers[0])

typedef struct scheduler_row {
    const char *name, *label; /* A1111's */
    const char *engine;       /* gs_scheduler_names() */
    double default_rho;       /* -1: none */
    int need_inner_model;
} scheduler_row;

/* A1111's "uniform" is k-diffusion's own discretisation, t = linspace(999, 0)
   mapped to sigmas, and its "normal" the same schedule ComfyUI's way: both
   are gesso's "normal". */
static const scheduler_row schedulers[] = {
    {"automatic", "Automatic", "default", -1, 0},
    {"uniform", "Uniform", "normal", -1, 1},
    {"karras", "Karras", "karras", 7.0, 0},
    {"exponential", "Exponential", "exponential", -1, 0},
    {"normal", "Normal", "normal", -1, 1},
};
#define N_SCHEDULERS (sizeof schedulers / sizeof schedulers[0])

const char *a1111_sampler_label(const char *engine)
{
    for (size_t i = 0; i < N_SAMPLERS; i++)
        if (strcmp(samplers[i].engine, engine) == 0)
            return samplers[i].label;
    return engine;
}

/* 1 when name is one of the comma-separated aliases. */
static int in_aliases(const char *aliases, const char *name, size_t n)
{
    for (const char *p = aliases; *p;) {
        size_t k = strcspn(p, ",");
        if (k == n && strncasecmp(p, name, n) == 0)
            return 1;
        p += k + (p[k] == ',');
    }
    return 0;
}

static const sampler_row *find_sampler(const char *name, size_t n)
{
    for (size_t i = 0; i < N_SAMPLERS; i++) {
        const sampler_row *s = &samplers[i];
        if ((strlen(s->label) == n && strncasecmp(s->label, name, n) == 0) ||
            (strlen(s->engine) == n && strncmp(s->engine, name, n) == 0) ||
            in_aliases(s->aliases, name, n))
            return s;
    }
    return NULL;
}

static const scheduler_row *find_scheduler(const char *name)
{
    for (size_t i = 0; i < N_SCHEDULERS; i++)
        if (strcasecmp(schedulers[i].name, name) == 0 || strcasecmp(schedulers[i].label, name) == 0)
            return &schedulers[i];
    return NULL;
}

/* The scheduler named at the end of a sampler name ("DPM++ 2M Karras"):
   the row, with *stem_len the length before " Karras"; NULL when none. */
static const scheduler_row *scheduler_suffix(const char *name, size_t *stem_len)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < N_SCHEDULERS; i++) {
        const char *forms[2] = {schedulers[i].label, schedulers[i].name};
        for (int f = 0; f < 2; f++) {
            size_t k = strlen(forms[f]);
            if (n > k + 1 && name[n - k - 1] == ' ' && strcasecmp(name + n - k, forms[f]) == 0) {
                *stem_len = n - k - 1;
                return &schedulers[i];
            }
        }
    }
    return NULL;
}

int a1111_map_sampler(const char *sampler_name, const char *scheduler, const char **engine,
                      const char **engine_scheduler, char *why, size_t why_size)
{
    const char *name = sampler_name && *sampler_name ? sampler_name : "Euler";
    size_t stem = strlen(name);
    const scheduler_row *sched = scheduler_suffix(name, &stem);
    const sampler_row *s = find_sampler(name, stem);
    if (!s && sched) { /* a sampler whose own name ends like a scheduler's */
        stem = strlen(name);
        sched = NULL;
        s = find_sampler(name, stem);
    }
    if (!s) {
        snprintf(why, why_size,
                 "sampler '%s' not found; gesso has Euler a, Euler, Heun, DPM++ 2M, DDIM and LCM "
                 "(GET /sdapi/v1/samplers)",
                 name);
        return -1;
    }
    if (!sched && scheduler && *scheduler && !(sched = find_scheduler(scheduler))) {
        snprintf(why, why_size,
                 "scheduler '%s' not found; gesso has Automatic, Uniform, Karras, Exponential and "
                 "Normal (GET /sdapi/v1/schedulers)",
                 scheduler);
        return -2;
    }
    *engine = s->engine;
    *engine_scheduler = sched ? sched->engine : "default";
    return 0;
}

enum MHD_Result a1111_samplers(http_request *r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < N_SAMPLERS; i++) {
        json_t *aliases = json_array(), *options = json_object();
        const char *p = samplers[i].aliases;
        while (*p) {
            size_t k = strcspn(p, ",");
            json_array_append_new(aliases, json_stringn(p, k));
            p += k + (p[k] == ',');
        }
        if (samplers[i].option)
            json_object_set_new(options, samplers[i].option, json_string("True"));
        json_array_append_new(list, json_pack("{s:s,s:o,s:o}", "name", samplers[i].label, "aliases",
                                              aliases, "options", options));
    }
    return http_reply_json(r, 200, list, NULL);
}

enum MHD_Result a1111_schedulers(http_request *r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < N_SCHEDULERS; i++) {
        const scheduler_row *s = &schedulers[i];
        json_array_append_new(list,
                              json_pack("{s:s,s:s,s:n,s:o,s:b}", "name", s->name, "label", s->label,
                                        "aliases", "default_rho", json_real(s->default_rho),
                                        "need_inner_model", s->need_inner_model));
    }
    return http_reply_json(r, 200, list, NULL);
}
