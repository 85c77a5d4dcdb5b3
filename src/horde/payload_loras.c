/* payload_loras - the pop payload's "loras" read into the job (payload.h). */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "horde/lora_cache.h"
#include "horde/payload.h"
#include "horde/pop.h"
#include "job/job_loras.h"

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

int horde_job_fetch_loras(horde_job *job, const horde_lora_options *o, char *why, size_t why_size)
{
    job_spec *s = &job->spec;
    s->loras.n = 0;
    for (int i = 0; i < job->n_loras; i++) {
        const horde_job_lora *l = &job->loras[i];
        horde_lora_file f;
        if (horde_lora_fetch(o, l->name, l->is_version, &f, why, why_size) != 0)
            return -1;
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
