/* job_params - request validation and normalisation for generation jobs. */
#include "api/job_params.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

void job_limits_default(job_limits *l)
{
    l->max_side = 2048;
    l->max_steps = 150;
    l->max_batch = 8;
    l->max_prompt = 16 * 1024;
    l->max_image = 16u << 20;
}

static int fail(job_error *e, int http, const char *code, const char *fmt, const char *detail)
{
    e->http = http;
    snprintf(e->code, sizeof e->code, "%s", code);
    snprintf(e->message, sizeof e->message, fmt, detail ? detail : "");
    return -1;
}

/* ---- base64 (RFC 4648, optional data: URL prefix) ---- */

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Decodes s into a malloc'd buffer; NULL when s is not base64 or decodes past max. */
static unsigned char *b64_decode(const char *s, size_t max, size_t *out_len)
{
    const char *comma = strncmp(s, "data:", 5) == 0 ? strchr(s, ',') : NULL;
    if (comma)
        s = comma + 1;
    size_t n = strlen(s);
    if (n / 4 * 3 > max + 3)
        return NULL;
    unsigned char *out = malloc(n / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t k = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '=' || c == '\n' || c == '\r')
            continue;
        int v = b64_value(c);
        if (v < 0) {
            free(out);
            return NULL;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (unsigned char)(acc >> bits);
        }
    }
    *out_len = k;
    return out;
}

/* ---- validation ---- */

int job_model_name_ok(const char *s)
{
    if (!*s || strlen(s) > 200 || s[0] == '.')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '.' || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int in_list(const char *s, const char *const *names)
{
    for (; *names; names++)
        if (strcmp(s, *names) == 0)
            return 1;
    return 0;
}

/* Reads an optional integer field into *v; -1 on a wrong type or range. */
static int get_int(json_t *o, const char *k, long lo, long hi, long *v, job_error *e)
{
    json_t *j = json_object_get(o, k);
    if (!j)
        return 0;
    if (!json_is_integer(j))
        return fail(e, 400, "invalid_field", "'%s' must be an integer", k);
    long x = (long)json_integer_value(j);
    if (x < lo || x > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "'%s' must be in %ld..%ld", k, lo, hi);
        return fail(e, 422, "out_of_range", "%s", msg);
    }
    *v = x;
    return 0;
}

static int get_num(json_t *o, const char *k, double lo, double hi, double *v, job_error *e)
{
    json_t *j = json_object_get(o, k);
    if (!j)
        return 0;
    if (!json_is_number(j))
        return fail(e, 400, "invalid_field", "'%s' must be a number", k);
    double x = json_number_value(j);
    if (!isfinite(x) || x < lo || x > hi) {
        char msg[128];
        snprintf(msg, sizeof msg, "'%s' must be in %g..%g", k, lo, hi);
        return fail(e, 422, "out_of_range", "%s", msg);
    }
    *v = x;
    return 0;
}

static int get_str(json_t *o, const char *k, size_t max, const char **v, job_error *e)
{
    json_t *j = json_object_get(o, k);
    if (!j || json_is_null(j))
        return 0;
    if (!json_is_string(j))
        return fail(e, 400, "invalid_field", "'%s' must be a string", k);
    if (json_string_length(j) > max)
        return fail(e, 422, "too_long", "'%s' is too long", k);
    *v = json_string_value(j);
    return 0;
}

int job_params_validate(const char *body, size_t len, const job_limits *lim, const char *models_dir,
                        char **normalized, char *model, size_t model_size, double *mps,
                        int *priority, job_error *e)
{
    static const char *const known[] = {
        "model",      "prompt",   "negative_prompt", "width",         "height",     "steps",
        "cfg_scale",  "sampler",  "scheduler",       "seed",          "batch_size", "clip_skip",
        "init_image", "strength", "priority",        "preview_every", "vae_tile",   NULL};
    *normalized = NULL;
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return fail(e, 400, "invalid_json", "the body is not valid JSON: %s", jerr.text);
    int rc = -1;
    json_t *out = NULL;
    if (!json_is_object(o)) {
        fail(e, 400, "invalid_json", "the body must be a JSON object%s", NULL);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (!in_list(key, known)) {
            fail(e, 400, "unknown_field", "unknown field '%s'", key);
            goto done;
        }
    }
    const char *mname = NULL, *prompt = "", *neg = "", *sampler = "euler_a", *sched = "default",
               *init = NULL;
    long width = 512, height = 512, steps = 20, batch = 1, clip_skip = 1, prio = 0, preview = 0,
         vae_tile = 0;
    double cfg = 7.0, strength = 0.75, seed_d = -1;
    if (get_str(o, "model", 200, &mname, e) || get_str(o, "prompt", lim->max_prompt, &prompt, e) ||
        get_str(o, "negative_prompt", lim->max_prompt, &neg, e) ||
        get_str(o, "sampler", 32, &sampler, e) || get_str(o, "scheduler", 32, &sched, e) ||
        get_str(o, "init_image", lim->max_image * 4 / 3 + 64, &init, e) ||
        get_int(o, "width", 64, lim->max_side, &width, e) ||
        get_int(o, "height", 64, lim->max_side, &height, e) ||
        get_int(o, "steps", 1, lim->max_steps, &steps, e) ||
        get_int(o, "batch_size", 1, lim->max_batch, &batch, e) ||
        get_int(o, "clip_skip", 1, 12, &clip_skip, e) ||
        get_int(o, "priority", -100, 100, &prio, e) ||
        get_int(o, "preview_every", 0, 1000, &preview, e) ||
        get_int(o, "vae_tile", -1, 4096, &vae_tile, e) || get_num(o, "cfg_scale", 0, 30, &cfg, e) ||
        get_num(o, "strength", 0.01, 1, &strength, e) ||
        get_num(o, "seed", 0, 18446744073709551615.0, &seed_d, e))
        goto done;
    if (!mname) {
        fail(e, 400, "missing_field", "'model' is required%s", NULL);
        goto done;
    }
    if (vae_tile > 0 && (vae_tile < 64 || vae_tile % 8)) {
        fail(e, 422, "out_of_range",
             "'vae_tile' must be 0 (auto), -1 (never) or a multiple of 8 from 64%s", NULL);
        goto done;
    }
    if (width % 8 || height % 8) {
        fail(e, 422, "bad_size", "width and height must be multiples of 8%s", NULL);
        goto done;
    }
    if (!in_list(sampler, gs_sampler_names())) {
        fail(e, 422, "unknown_sampler", "unknown sampler '%s'", sampler);
        goto done;
    }
    if (!in_list(sched, gs_scheduler_names())) {
        fail(e, 422, "unknown_scheduler", "unknown scheduler '%s'", sched);
        goto done;
    }
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s.safetensors", models_dir, mname);
    if (!job_model_name_ok(mname) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fail(e, 422, "unknown_model", "no model named '%s'", mname);
        goto done;
    }
    if (init) {
        size_t n = 0;
        unsigned char *bytes = b64_decode(init, lim->max_image, &n);
        if (!bytes) {
            fail(e, 422, "bad_image", "'init_image' is not base64 of at most the image limit%s",
                 NULL);
            goto done;
        }
        gs_image *im = NULL;
        char msg[200];
        gs_status st = gs_image_load_memory(bytes, n, &im, msg, sizeof msg);
        free(bytes);
        gs_image_free(im);
        if (st != GS_OK) {
            fail(e, 422, "bad_image", "'init_image': %s", msg);
            goto done;
        }
    }
    uint64_t seed;
    if (seed_d < 0) {
        if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
            seed = 0;
        seed &= 0xffffffffu;
    } else {
        json_t *js = json_object_get(o, "seed");
        seed = json_is_integer(js) ? (uint64_t)json_integer_value(js) : (uint64_t)seed_d;
    }
    out = json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:f,s:s,s:s,s:I,s:I,s:I,s:f,s:I,s:I}", "model", mname,
                    "prompt", prompt, "negative_prompt", neg, "width", (json_int_t)width, "height",
                    (json_int_t)height, "steps", (json_int_t)steps, "cfg_scale", cfg, "sampler",
                    sampler, "scheduler", sched, "seed", (json_int_t)seed, "batch_size",
                    (json_int_t)batch, "clip_skip", (json_int_t)clip_skip, "strength", strength,
                    "priority", (json_int_t)prio, "preview_every", (json_int_t)preview);
    if (out && init)
        json_object_set_new(out, "init_image", json_string(init));
    if (out && vae_tile)
        json_object_set_new(out, "vae_tile", json_integer(vae_tile));
    *normalized = out ? json_dumps(out, JSON_COMPACT) : NULL;
    if (!*normalized) {
        fail(e, 500, "internal", "out of memory%s", NULL);
        goto done;
    }
    snprintf(model, model_size, "%s", mname);
    *mps = (double)width * height * steps * batch / 1e6;
    *priority = (int)prio;
    rc = 0;
done:
    json_decref(out);
    json_decref(o);
    return rc;
}

int job_params_parse(const char *text, gs_params *p, job_params_hold *hold)
{
    memset(hold, 0, sizeof *hold);
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        return -1;
    }
    hold->json = o;
    gs_params_init(p);
    p->prompt = json_string_value(json_object_get(o, "prompt"));
    p->negative_prompt = json_string_value(json_object_get(o, "negative_prompt"));
    p->sampler = json_string_value(json_object_get(o, "sampler"));
    const char *sched = json_string_value(json_object_get(o, "scheduler"));
    p->scheduler = sched && strcmp(sched, "default") != 0 ? sched : NULL;
    p->width = (int)json_integer_value(json_object_get(o, "width"));
    p->height = (int)json_integer_value(json_object_get(o, "height"));
    p->steps = (int)json_integer_value(json_object_get(o, "steps"));
    p->cfg_scale = (float)json_number_value(json_object_get(o, "cfg_scale"));
    p->seed = (uint64_t)json_integer_value(json_object_get(o, "seed"));
    p->batch_size = (int)json_integer_value(json_object_get(o, "batch_size"));
    p->clip_skip = (int)json_integer_value(json_object_get(o, "clip_skip"));
    p->strength = (float)json_number_value(json_object_get(o, "strength"));
    p->preview_every = (int)json_integer_value(json_object_get(o, "preview_every"));
    p->vae_tile = (int)json_integer_value(json_object_get(o, "vae_tile")); /* absent: 0, auto */
    const char *init = json_string_value(json_object_get(o, "init_image"));
    if (init) {
        size_t n = 0;
        unsigned char *bytes = b64_decode(init, (size_t)1 << 30, &n);
        char msg[64];
        if (!bytes || gs_image_load_memory(bytes, n, &hold->init, msg, sizeof msg) != GS_OK) {
            free(bytes);
            job_params_release(hold);
            return -1;
        }
        free(bytes);
        p->init_image = hold->init;
    }
    if (!p->prompt || !p->negative_prompt || !p->sampler) {
        job_params_release(hold);
        return -1;
    }
    return 0;
}

void job_params_release(job_params_hold *hold)
{
    json_decref(hold->json);
    gs_image_free(hold->init);
    memset(hold, 0, sizeof *hold);
}
