/* job_loras - a job's LoRA list: JSON in and out, checked against the LoRA folder. */
#include "job/job_loras.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int fail(job_error *e, job_reason reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(job_error *e, job_reason reason, const char *field, const char *fmt, ...)
{
    e->reason = reason;
    snprintf(e->field, sizeof e->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static int weight(const json_t *item, const char *key, const char *field, int i, double *out,
                  job_error *e)
{
    const json_t *v = json_object_get(item, key);
    if (!json_is_number(v))
        return fail(e, JOB_ERR_WRONG_TYPE, field, "'%s[%d].%s' must be a number", field, i, key);
    double x = json_number_value(v);
    if (!isfinite(x) || fabs(x) > JOB_LORA_WEIGHT_MAX)
        return fail(e, JOB_ERR_OUT_OF_RANGE, field, "'%s[%d].%s' must be in %g..%g", field, i, key,
                    -JOB_LORA_WEIGHT_MAX, JOB_LORA_WEIGHT_MAX);
    *out = x;
    return 0;
}

static int read_item(job_lora *l, const char *field, int i, const json_t *item, job_error *e)
{
    if (!json_is_object(item))
        return fail(e, JOB_ERR_WRONG_TYPE, field,
                    "'%s[%d]' must be {\"name\", \"weight\"} or {\"name\", \"te\", \"unet\"}",
                    field, i);
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)item, key, v)
    {
        if (strcmp(key, "name") && strcmp(key, "weight") && strcmp(key, "te") &&
            strcmp(key, "unet"))
            return fail(e, JOB_ERR_UNKNOWN_FIELD, field, "unknown field '%s[%d].%s'", field, i,
                        key);
    }
    const json_t *name = json_object_get(item, "name");
    if (!json_is_string(name) || !job_model_name_ok(json_string_value(name)))
        return fail(e, JOB_ERR_WRONG_TYPE, field,
                    "'%s[%d].name' must be a file name in the LoRA folder without "
                    "'.safetensors' (letters, digits, '.', '_', '-')",
                    field, i);
    snprintf(l->name, sizeof l->name, "%s", json_string_value(name));
    int has_w = json_object_get(item, "weight") != NULL;
    int has_te = json_object_get(item, "te") != NULL,
        has_unet = json_object_get(item, "unet") != NULL;
    if (has_w && (has_te || has_unet))
        return fail(e, JOB_ERR_WRONG_TYPE, field,
                    "'%s[%d]': give 'weight', or 'te' and 'unet', not both", field, i);
    if (has_w) {
        if (weight(item, "weight", field, i, &l->te, e) != 0)
            return -1;
        l->unet = l->te;
        return 0;
    }
    if (!has_te && !has_unet) {
        l->te = l->unet = 1.0;
        return 0;
    }
    if (!has_te || !has_unet)
        return fail(e, JOB_ERR_MISSING_FIELD, field, "'%s[%d]' needs both 'te' and 'unet'", field,
                    i);
    return weight(item, "te", field, i, &l->te, e) || weight(item, "unet", field, i, &l->unet, e)
               ? -1
               : 0;
}

int job_loras_read(job_loras *ls, const char *field, const json_t *v, job_error *e)
{
    if (json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return fail(e, JOB_ERR_WRONG_TYPE, field, "'%s' must be an array", field);
    if (json_array_size(v) > JOB_MAX_LORAS)
        return fail(e, JOB_ERR_OUT_OF_RANGE, field, "'%s' takes at most %d LoRAs", field,
                    JOB_MAX_LORAS);
    job_loras tmp;
    memset(&tmp, 0, sizeof tmp);
    for (size_t i = 0; i < json_array_size(v); i++) {
        if (read_item(&tmp.l[i], field, (int)i, json_array_get(v, i), e) != 0)
            return -1;
        tmp.n++;
    }
    *ls = tmp;
    return 0;
}

json_t *job_loras_json(const job_loras *ls)
{
    if (ls->n == 0)
        return NULL;
    json_t *a = json_array();
    for (int i = 0; a && i < ls->n; i++) {
        json_t *o = json_pack("{s:s, s:f, s:f}", "name", ls->l[i].name, "te", ls->l[i].te, "unet",
                              ls->l[i].unet);
        if (!o || json_array_append_new(a, o) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

int job_loras_check(const job_loras *ls, const char *lora_dir, job_error *e)
{
    for (int i = 0; i < ls->n; i++) {
        char path[4096];
        struct stat sb;
        if (!lora_dir)
            return fail(e, JOB_ERR_UNKNOWN_LORA, "loras",
                        "this server has no LoRA folder (gesso serve --lora-dir)");
        snprintf(path, sizeof path, "%s/%s.safetensors", lora_dir, ls->l[i].name);
        if (!job_model_name_ok(ls->l[i].name) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            return fail(e, JOB_ERR_UNKNOWN_LORA, "loras", "no LoRA named '%s'", ls->l[i].name);
    }
    return 0;
}

void job_loras_params(const job_loras *ls, const char *lora_dir, job_lora_params *out, gs_params *p)
{
    p->loras = NULL;
    p->n_loras = 0;
    p->lora_dir = lora_dir;
    if (!lora_dir)
        return;
    p->lora_strict = 1; /* a folder the operator set up: a bad file is an error */
    for (int i = 0; i < ls->n; i++) {
        snprintf(out->path[i], sizeof out->path[i], "%s/%s.safetensors", lora_dir, ls->l[i].name);
        out->list[i] = (gs_lora){out->path[i], (float)ls->l[i].te, (float)ls->l[i].unet};
    }
    p->loras = out->list;
    p->n_loras = ls->n;
}
