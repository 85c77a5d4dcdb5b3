/*
 * a1111_samplers - A1111's sampler and scheduler names and gesso's: the
 * engine's own tables (gs_sampler_at, gs_scheduler_at) carry A1111's names,
 * aliases and flags, so this file only reads them, plus A1111's two
 * scheduler entries that are no engine scheduler.
 * Since A1111 1.9 the scheduler is a field of its own; older clients send it
 * in the sampler's name ("DPM++ 2M Karras"), which A1111 still splits, and
 * so does this: a name ending in " " + a scheduler's label, name or alias
 * takes that scheduler, whatever the scheduler field says (A1111's order).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api/a1111.h"

/* A1111 scheduler rows: its own two that are no scheduler of the engine's
   ("automatic": the sampler's default; "uniform": k-diffusion's own
   discretisation, t = linspace(999, 0) mapped to sigmas, which is gesso's
   "normal"), then one row per engine scheduler (gs_scheduler_at). */
typedef struct scheduler_row {
    const char *name, *label; /* A1111's */
    const char *engine;       /* gs_scheduler_names() */
    double default_rho;       /* -1: none */
    int need_inner_model;
} scheduler_row;

static const scheduler_row own_schedulers[] = {
    {"automatic", "Automatic", "default", -1, 0},
    {"uniform", "Uniform", "normal", -1, 1},
};
#define N_OWN (sizeof own_schedulers / sizeof own_schedulers[0])

static size_t n_schedulers(void)
{
    return N_OWN + (size_t)gs_scheduler_count();
}

/* Row i of A1111's list; *row is scratch for the engine's rows. */
static const scheduler_row *scheduler_at(size_t i, scheduler_row *row)
{
    if (i < N_OWN)
        return &own_schedulers[i];
    const gs_scheduler_desc *d = gs_scheduler_at((int)(i - N_OWN));
    *row = (scheduler_row){d->a1111_name, d->a1111_label, d->name, d->default_rho,
                           d->uses_model_sigmas};
    return row;
}

const char *a1111_sampler_label(const char *engine)
{
    for (int i = 0; i < gs_sampler_count(); i++)
        if (strcmp(gs_sampler_at(i)->name, engine) == 0)
            return gs_sampler_at(i)->a1111_name;
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

/* A1111's name, gesso's, an A1111 alias or an AI Horde name; NULL when none. */
static const gs_sampler_desc *find_sampler(const char *name, size_t n)
{
    for (int i = 0; i < gs_sampler_count(); i++) {
        const gs_sampler_desc *s = gs_sampler_at(i);
        if ((strlen(s->a1111_name) == n && strncasecmp(s->a1111_name, name, n) == 0) ||
            (strlen(s->name) == n && strncmp(s->name, name, n) == 0) ||
            in_aliases(s->a1111_aliases, name, n) || in_aliases(s->horde_names, name, n))
            return s;
    }
    return NULL;
}

/* The scheduler A1111 calls name (or labels so); the row is copied to *row. */
static const scheduler_row *find_scheduler(const char *name, scheduler_row *row)
{
    for (size_t i = 0; i < n_schedulers(); i++) {
        const scheduler_row *s = scheduler_at(i, row);
        if (strcasecmp(s->name, name) == 0 || strcasecmp(s->label, name) == 0)
            return s;
    }
    return NULL;
}

/* The scheduler named at the end of a sampler name ("DPM++ 2M Karras"):
   the row (copied to *row), with *stem_len the length before " Karras";
   NULL when none. The longest ending wins ("Euler SGM Uniform" is SGM
   Uniform, not Uniform). */
static const scheduler_row *scheduler_suffix(const char *name, size_t *stem_len, scheduler_row *row)
{
    size_t n = strlen(name), best = 0, best_i = 0;
    for (size_t i = 0; i < n_schedulers(); i++) {
        const scheduler_row *s = scheduler_at(i, row);
        const char *forms[2] = {s->label, s->name};
        for (int f = 0; f < 2; f++) {
            size_t k = strlen(forms[f]);
            if (k > best && n > k + 1 && name[n - k - 1] == ' ' &&
                strcasecmp(name + n - k, forms[f]) == 0) {
                best = k;
                best_i = i;
            }
        }
    }
    if (!best)
        return NULL;
    *stem_len = n - best - 1;
    return scheduler_at(best_i, row);
}

/* "A, B and C" of the A1111 names (samplers) or labels (schedulers). */
static void list_names(char *buf, size_t size, int schedulers)
{
    size_t count = schedulers ? n_schedulers() : (size_t)gs_sampler_count(), off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < count && off < size; i++) {
        scheduler_row row;
        const char *name =
            schedulers ? scheduler_at(i, &row)->label : gs_sampler_at((int)i)->a1111_name;
        int w = snprintf(buf + off, size - off, "%s%s",
                         i == 0           ? ""
                         : i + 1 == count ? " and "
                                          : ", ",
                         name);
        off += w > 0 ? (size_t)w : 0;
    }
}

int a1111_map_sampler(const char *sampler_name, const char *scheduler, const char **engine,
                      const char **engine_scheduler, char *why, size_t why_size)
{
    const char *name = sampler_name && *sampler_name ? sampler_name : "Euler";
    size_t stem = strlen(name);
    scheduler_row suffix_row, field_row;
    const scheduler_row *sched = scheduler_suffix(name, &stem, &suffix_row);
    const gs_sampler_desc *s = find_sampler(name, stem);
    if (!s && sched) { /* a sampler whose own name ends like a scheduler's */
        stem = strlen(name);
        sched = NULL;
        s = find_sampler(name, stem);
    }
    char known[512];
    if (!s) {
        list_names(known, sizeof known, 0);
        snprintf(why, why_size, "sampler '%s' not found; gesso has %s (GET /sdapi/v1/samplers)",
                 name, known);
        return -1;
    }
    if (!sched && scheduler && *scheduler && !(sched = find_scheduler(scheduler, &field_row))) {
        list_names(known, sizeof known, 1);
        snprintf(why, why_size, "scheduler '%s' not found; gesso has %s (GET /sdapi/v1/schedulers)",
                 scheduler, known);
        return -2;
    }
    *engine = s->name;
    *engine_scheduler = sched ? sched->engine : "default";
    /* A1111 (sd_samplers_kdiffusion get_sigmas): "Automatic" takes the sampler's own
       option, e.g. Karras for DPM++ 2M */
    if (strcmp(*engine_scheduler, "default") == 0 && s->a1111_scheduler)
        *engine_scheduler = s->a1111_scheduler;
    /* A1111's timestep samplers (DDIM, and gesso's lcm) make their own
       schedule and never read the scheduler field: a client's choice there is
       ignored, not refused */
    if (!(s->flags & GS_SAMPLER_SIGMAS))
        *engine_scheduler = "default";
    return 0;
}

/* A1111's option flags of a sampler, from the row's flags. */
static json_t *sampler_options(const gs_sampler_desc *s)
{
    json_t *o = json_object();
    if (s->a1111_scheduler)
        json_object_set_new(o, "scheduler", json_string(s->a1111_scheduler));
    if (s->flags & GS_SAMPLER_DISCARD_PENULTIMATE)
        json_object_set_new(o, "discard_next_to_last_sigma", json_string("True"));
    if ((s->flags & GS_SAMPLER_NOISE) && !(s->flags & GS_SAMPLER_BROWNIAN))
        json_object_set_new(o, "uses_ensd", json_string("True"));
    if (s->flags & GS_SAMPLER_SECOND_ORDER)
        json_object_set_new(o, "second_order", json_string("True"));
    if (s->flags & GS_SAMPLER_BROWNIAN)
        json_object_set_new(o, "brownian_noise", json_string("True"));
    return o;
}

enum MHD_Result a1111_samplers(http_request *r)
{
    json_t *list = json_array();
    for (int i = 0; i < gs_sampler_count(); i++) {
        const gs_sampler_desc *s = gs_sampler_at(i);
        json_t *aliases = json_array();
        const char *p = s->a1111_aliases;
        while (*p) {
            size_t k = strcspn(p, ",");
            json_array_append_new(aliases, json_stringn(p, k));
            p += k + (p[k] == ',');
        }
        json_array_append_new(list, json_pack("{s:s,s:o,s:o}", "name", s->a1111_name, "aliases",
                                              aliases, "options", sampler_options(s)));
    }
    return http_reply_json(r, 200, list, NULL);
}

enum MHD_Result a1111_schedulers(http_request *r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < n_schedulers(); i++) {
        scheduler_row row;
        const scheduler_row *s = scheduler_at(i, &row);
        json_array_append_new(list,
                              json_pack("{s:s,s:s,s:n,s:o,s:b}", "name", s->name, "label", s->label,
                                        "aliases", "default_rho", json_real(s->default_rho),
                                        "need_inner_model", s->need_inner_model));
    }
    return http_reply_json(r, 200, list, NULL);
}
