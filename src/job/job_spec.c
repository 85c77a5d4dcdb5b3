/*
 * job_spec - the fields of a job as a table (name, type, bounds, where it
 * lives in job_spec), so reading, checking and writing JSON are one loop each
 * and a new setting is one row. Bounds that the operator sets (sizes, steps,
 * batch, prompt and image bytes) come from job_limits; the rest are fixed.
 */
#include "job/job_spec.h"

#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "job/job_image.h"
#include "job/job_loras.h"
#include "support/json_u64.h"

void job_limits_default(job_limits *l)
{
    l->max_side = 2048;
    l->max_steps = 150;
    l->max_batch = 8;
    l->max_prompt = 16 * 1024;
    l->max_image = 16u << 20;
    l->max_prompt_chunks = 32; /* ~2,400 tokens, far past any prompt written by hand */
    l->max_cost = 0;
    l->lora_dir = NULL;
}

/* What a spec may hold when no operator limits apply (the stored text, read
   back by a worker): the largest values any limit flag accepts. */
static const job_limits hard_limits = {.max_side = 16384,
                                       .max_steps = 10000,
                                       .max_batch = 64,
                                       .max_prompt = (size_t)1 << 24,
                                       .max_image = (size_t)1 << 28,
                                       .max_prompt_chunks = 1 << 20};

const char *job_reason_code(job_reason r)
{
    static const char *const codes[] = {
        [JOB_ERR_INVALID_JSON] = "invalid_json",
        [JOB_ERR_UNKNOWN_FIELD] = "unknown_field",
        [JOB_ERR_MISSING_FIELD] = "missing_field",
        [JOB_ERR_WRONG_TYPE] = "invalid_field",
        [JOB_ERR_OUT_OF_RANGE] = "out_of_range",
        [JOB_ERR_TOO_LONG] = "too_long",
        [JOB_ERR_BAD_SIZE] = "bad_size",
        [JOB_ERR_UNKNOWN_SAMPLER] = "unknown_sampler",
        [JOB_ERR_UNKNOWN_SCHEDULER] = "unknown_scheduler",
        [JOB_ERR_UNKNOWN_MODEL] = "unknown_model",
        [JOB_ERR_BAD_IMAGE] = "bad_image",
        [JOB_ERR_BAD_PROMPT] = "bad_prompt",
        [JOB_ERR_TOO_COSTLY] = "too_costly",
        [JOB_ERR_NO_MEMORY] = "internal",
        [JOB_ERR_UNKNOWN_LORA] = "unknown_lora",
    };
    return (unsigned)r < sizeof codes / sizeof codes[0] ? codes[r] : "invalid";
}

static int fail(job_error *e, job_reason reason, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(job_error *e, job_reason reason, const char *field, const char *fmt, ...)
{
    e->reason = reason;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* ---- the field table ---- */

typedef enum field_kind {
    F_INT,   /* int, bounds lo..hi */
    F_NUM,   /* double, bounds lo..hi */
    F_SEED,  /* uint64 written exactly, or -1 for a random one (read_seed) */
    F_NAME,  /* char[] inside the spec, max bytes = hi */
    F_TEXT,  /* owned char *, max bytes = hi or a limit */
    F_IMAGE, /* job_image, inline or stored (job_image.h); absent or null allowed */
    F_LORAS  /* job_loras (job_loras.h); absent, null or [] for none */
} field_kind;

/* Which job_limits member bounds a field (0: the fixed bounds in the row). */
typedef enum field_limit { L_NONE, L_SIDE, L_STEPS, L_BATCH, L_PROMPT, L_IMAGE } field_limit;

typedef struct field {
    const char *name;
    field_kind kind;
    size_t offset;
    double lo, hi;
    field_limit limit;
    int stored_when_default; /* 0: written to JSON only when it differs from 0/NULL */
} field;

#define AT(member) offsetof(job_spec, member)

static const field fields[] = {
    {"model", F_NAME, AT(model), 0, JOB_MODEL_MAX, L_NONE, 1},
    {"prompt", F_TEXT, AT(prompt), 0, 0, L_PROMPT, 1},
    {"negative_prompt", F_TEXT, AT(negative_prompt), 0, 0, L_PROMPT, 1},
    {"width", F_INT, AT(width), 64, 0, L_SIDE, 1},
    {"height", F_INT, AT(height), 64, 0, L_SIDE, 1},
    {"steps", F_INT, AT(steps), 1, 0, L_STEPS, 1},
    {"cfg_scale", F_NUM, AT(cfg_scale), 0, 30, L_NONE, 1},
    {"sampler", F_NAME, AT(sampler), 0, 31, L_NONE, 1},
    {"scheduler", F_NAME, AT(scheduler), 0, 31, L_NONE, 1},
    {"seed", F_SEED, AT(seed), 0, 0, L_NONE, 1}, /* its bounds are read_seed's */
    {"batch_size", F_INT, AT(batch_size), 1, 0, L_BATCH, 1},
    {"clip_skip", F_INT, AT(clip_skip), 1, 12, L_NONE, 1},
    {"strength", F_NUM, AT(strength), 0.01, 1, L_NONE, 1},
    {"eta", F_NUM, AT(eta), 0, 10, L_NONE, 1},
    {"priority", F_INT, AT(priority), -100, 100, L_NONE, 1},
    {"preview_every", F_INT, AT(preview_every), 0, 1000, L_NONE, 1},
    {"init_image", F_IMAGE, AT(init_image), 0, 0, L_IMAGE, 0},
    {"vae_tile", F_INT, AT(vae_tile), -1, 4096, L_NONE, 0},
    {"prediction", F_NAME, AT(prediction), 0, 7, L_NONE, 0},
    {"original_width", F_INT, AT(original_width), 0, 16384, L_NONE, 0},
    {"original_height", F_INT, AT(original_height), 0, 16384, L_NONE, 0},
    {"crop_top", F_INT, AT(crop_top), 0, 16384, L_NONE, 0},
    {"crop_left", F_INT, AT(crop_left), 0, 16384, L_NONE, 0},
    {"target_width", F_INT, AT(target_width), 0, 16384, L_NONE, 0},
    {"target_height", F_INT, AT(target_height), 0, 16384, L_NONE, 0},
    {"empty_negative", F_NAME, AT(empty_negative), 0, 7, L_NONE, 0},
    {"loras", F_LORAS, AT(loras), 0, 0, L_NONE, 0},
    {"mask", F_IMAGE, AT(mask), 0, 0, L_IMAGE, 0},
    {"mask_blur", F_INT, AT(mask_blur), 0, 64, L_NONE, 1},
    {"inpaint_fill", F_NAME, AT(inpaint_fill), 0, 15, L_NONE, 1},
    {"inpaint_full_res", F_INT, AT(inpaint_full_res), 0, 1, L_NONE, 1},
    {"inpaint_padding", F_INT, AT(inpaint_padding), 0, 256, L_NONE, 1},
    {"mask_invert", F_INT, AT(mask_invert), 0, 1, L_NONE, 1},
    {"hires_scale", F_NUM, AT(hires_scale), 0, 8, L_NONE, 0},
    {"hires_width", F_INT, AT(hires_width), 0, 0, L_SIDE, 0},
    {"hires_height", F_INT, AT(hires_height), 0, 0, L_SIDE, 0},
    {"hires_steps", F_INT, AT(hires_steps), 0, 0, L_STEPS, 0},
    {"hires_denoise", F_NUM, AT(hires_denoise), 0.01, 1, L_NONE, 0},
    {"hires_upscaler", F_NAME, AT(hires_upscaler), 0, 31, L_NONE, 0},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* The inpainting settings: written only with a mask, so other jobs read as before. */
static int mask_only(const field *f)
{
    return f->offset == AT(mask_blur) || f->offset == AT(inpaint_fill) ||
           f->offset == AT(inpaint_full_res) || f->offset == AT(inpaint_padding) ||
           f->offset == AT(mask_invert);
}

static double field_max(const field *f, const job_limits *l)
{
    switch (f->limit) {
    case L_SIDE: return l->max_side;
    case L_STEPS: return l->max_steps;
    case L_BATCH: return l->max_batch;
    case L_PROMPT: return (double)l->max_prompt;
    case L_IMAGE: return (double)(l->max_image * 4 / 3 + 64); /* base64 of the decoded bound */
    case L_NONE: break;
    }
    return f->hi;
}

static const field *field_named(const char *name)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

/* ---- life cycle ---- */

int job_spec_init(job_spec *s)
{
    gs_params p;
    gs_params_init(&p);
    memset(s, 0, sizeof *s);
    s->prompt = strdup(p.prompt ? p.prompt : "");
    s->negative_prompt = strdup(p.negative_prompt ? p.negative_prompt : "");
    snprintf(s->sampler, sizeof s->sampler, "%s", p.sampler);
    snprintf(s->scheduler, sizeof s->scheduler, "%s", p.scheduler ? p.scheduler : "default");
    s->width = p.width;
    s->height = p.height;
    s->steps = p.steps;
    s->batch_size = p.batch_size;
    s->clip_skip = p.clip_skip;
    s->cfg_scale = p.cfg_scale;
    s->strength = p.strength;
    s->eta = NAN; /* not given: 0 is an answer of its own */
    s->seed = p.seed;
    s->preview_every = p.preview_every;
    s->vae_tile = p.vae_tile;
    s->mask_blur = p.mask_blur;
    s->inpaint_padding = p.inpaint_padding;
    snprintf(s->inpaint_fill, sizeof s->inpaint_fill, "original");
    if (!s->prompt || !s->negative_prompt) {
        job_spec_clear(s);
        return -1;
    }
    return 0;
}

void job_spec_clear(job_spec *s)
{
    free(s->prompt);
    free(s->negative_prompt);
    job_image *img;
    for (int i = 0; (img = job_spec_image(s, i)); i++)
        job_image_clear(img);
    memset(s, 0, sizeof *s);
}

job_image *job_spec_image(job_spec *s, int i)
{
    for (size_t k = 0; k < N_FIELDS; k++)
        if (fields[k].kind == F_IMAGE && i-- == 0)
            return (job_image *)((char *)s + fields[k].offset);
    return NULL;
}

/* ---- JSON in ---- */

#define SEED_RANGE "an integer in 0..18446744073709551615, or -1 for a random one"

/* A seed read from a real: only a whole number that a double holds exactly. */
static int seed_from_real(double x, json_int_literal *out, job_error *e)
{
    if (x != floor(x))
        return fail(e, JOB_ERR_WRONG_TYPE, "seed", "'seed' must be " SEED_RANGE);
    if (fabs(x) >= 9007199254740992.0) /* 2^53: past it a real may not be the number meant */
        return fail(e, JOB_ERR_OUT_OF_RANGE, "seed",
                    "'seed' from 2^53 up must be written as an integer, not a real "
                    "(or as a decimal string)");
    *out = (json_int_literal){.found = 1, .negative = x < 0, .magnitude = (uint64_t)fabs(x)};
    return 0;
}

/* The seed as written: an integer literal of any length (lit, from the text
   itself: jansson cannot hold one past 2^63-1), a whole real below 2^53, or a
   decimal string (JavaScript clients cannot send big integers exactly). -1
   leaves it to job_spec_normalise. */
static int read_seed(job_spec *s, json_t *v, const json_int_literal *lit, job_error *e)
{
    json_int_literal n = *lit;
    if (!n.found && json_is_real(v) && seed_from_real(json_real_value(v), &n, e) != 0)
        return -1;
    if (!n.found && json_is_string(v))
        json_int_literal_parse(json_string_value(v), json_string_length(v), &n);
    if (!n.found)
        return fail(e, JOB_ERR_WRONG_TYPE, "seed", "'seed' must be " SEED_RANGE);
    if (n.negative && n.magnitude == 1 && !n.overflow) {
        s->seed_given = 0;
        return 0;
    }
    if (!json_int_literal_u64(&n, &s->seed))
        return fail(e, JOB_ERR_OUT_OF_RANGE, "seed", "'seed' must be " SEED_RANGE);
    s->seed_given = 1;
    return 0;
}

static int read_field(job_spec *s, const field *f, json_t *v, const job_limits *lim,
                      const json_int_literal *seed, job_error *e)
{
    char *base = (char *)s + f->offset;
    double hi = field_max(f, lim);
    switch (f->kind) {
    case F_INT: {
        if (!json_is_integer(v))
            return fail(e, JOB_ERR_WRONG_TYPE, f->name, "'%s' must be an integer", f->name);
        json_int_t x = json_integer_value(v);
        if ((double)x < f->lo || (double)x > hi)
            return fail(e, JOB_ERR_OUT_OF_RANGE, f->name, "'%s' must be in %ld..%ld", f->name,
                        (long)f->lo, (long)hi);
        *(int *)base = (int)x;
        return 0;
    }
    case F_NUM: {
        if (!json_is_number(v))
            return fail(e, JOB_ERR_WRONG_TYPE, f->name, "'%s' must be a number", f->name);
        double x = json_number_value(v);
        if (!isfinite(x) || x < f->lo || x > hi)
            return fail(e, JOB_ERR_OUT_OF_RANGE, f->name, "'%s' must be in %g..%g", f->name, f->lo,
                        hi);
        *(double *)base = x;
        return 0;
    }
    case F_IMAGE: return job_image_read((job_image *)base, f->name, v, (size_t)hi, e);
    case F_SEED: return read_seed(s, v, seed, e);
    case F_LORAS: return job_loras_read((job_loras *)base, f->name, v, e);
    case F_NAME:
    case F_TEXT: {
        if (json_is_null(v))
            return 0; /* null reads as absent: the default stays */
        if (!json_is_string(v))
            return fail(e, JOB_ERR_WRONG_TYPE, f->name, "'%s' must be a string", f->name);
        if ((double)json_string_length(v) > hi)
            return fail(e, JOB_ERR_TOO_LONG, f->name, "'%s' is too long", f->name);
        if (f->kind == F_NAME) {
            snprintf(base, (size_t)f->hi + 1, "%s", json_string_value(v));
            return 0;
        }
        char *copy = strdup(json_string_value(v));
        if (!copy)
            return fail(e, JOB_ERR_NO_MEMORY, f->name, "out of memory");
        free(*(char **)base);
        *(char **)base = copy;
        return 0;
    }
    }
    return 0;
}

int job_spec_from_json(job_spec *s, const char *json, size_t len, const job_limits *lim,
                       job_error *e)
{
    if (!lim)
        lim = &hard_limits;
    json_error_t jerr;
    json_int_literal seed;
    json_t *o = json_u64_loadb(json, len, JSON_REJECT_DUPLICATES, "seed", &seed, &jerr);
    if (!o)
        return fail(e, JOB_ERR_INVALID_JSON, NULL, "the body is not valid JSON: %s", jerr.text);
    int rc = -1;
    if (!json_is_object(o)) {
        fail(e, JOB_ERR_INVALID_JSON, NULL, "the body must be a JSON object");
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        if (!field_named(key)) {
            fail(e, JOB_ERR_UNKNOWN_FIELD, key, "unknown field '%s'", key);
            goto out;
        }
    }
    /* table order, so the first error a client sees does not depend on theirs */
    for (size_t i = 0; i < N_FIELDS; i++) {
        json_t *v = json_object_get(o, fields[i].name);
        if (v && read_field(s, &fields[i], v, lim, &seed, e) != 0)
            goto out;
    }
    if (!json_object_get(o, "model") || json_is_null(json_object_get(o, "model"))) {
        fail(e, JOB_ERR_MISSING_FIELD, "model", "'model' is required");
        goto out;
    }
    rc = 0;
out:
    json_decref(o);
    return rc;
}

/* ---- checks across fields ---- */

int job_model_name_ok(const char *s)
{
    if (!*s || strlen(s) > JOB_MODEL_MAX || s[0] == '.')
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

static int hires_on(const job_spec *s)
{
    return s->hires_scale != 0 || s->hires_width || s->hires_height;
}

static int has_init_image(const job_spec *s)
{
    return s->init_image.stored || s->init_image.base64;
}

/* The hires fix's final size, by the engine's rule (w x h when off). */
static void hires_size(const job_spec *s, int *w, int *h)
{
    gs_params p;
    gs_params_init(&p);
    p.width = s->width;
    p.height = s->height;
    p.hires_scale = (float)s->hires_scale;
    p.hires_width = s->hires_width;
    p.hires_height = s->hires_height;
    gs_params_output_size(&p, w, h);
}

static int check_hires(const job_spec *s, const job_limits *lim, job_error *e)
{
    gs_hires_upscaler up;
    if (s->hires_upscaler[0] && gs_hires_upscaler_parse(s->hires_upscaler, &up) != 0)
        return fail(e, JOB_ERR_OUT_OF_RANGE, "hires_upscaler",
                    "unknown hires_upscaler '%s': use latent, latent-antialiased, latent-bicubic, "
                    "latent-bicubic-antialiased, latent-nearest, latent-nearest-exact or lanczos",
                    s->hires_upscaler);
    if (!hires_on(s))
        return 0;
    if (s->hires_scale != 0 && s->hires_scale < 1)
        return fail(e, JOB_ERR_OUT_OF_RANGE, "hires_scale",
                    "'hires_scale' must be 0 (off) or 1..8, not %g", s->hires_scale);
    if (has_init_image(s))
        return fail(e, JOB_ERR_OUT_OF_RANGE, "init_image",
                    "the hires fix is for txt2img: a job with hires fields cannot take an "
                    "init_image");
    int w, h;
    hires_size(s, &w, &h);
    const char *which = s->hires_width || s->hires_height ? "hires_width" : "hires_scale";
    if (w > lim->max_side || h > lim->max_side)
        return fail(e, JOB_ERR_OUT_OF_RANGE, which,
                    "the hires size %dx%d is over the largest side allowed, %d", w, h,
                    lim->max_side);
    if (w % 8 || h % 8)
        return fail(e, JOB_ERR_BAD_SIZE, which,
                    "the hires size %dx%d must be a multiple of 8 per side", w, h);
    return 0;
}

/* What the engine's sampler refuses is refused here too, so a job that cannot
   run is never queued (the soak test found lcm + karras queued, then failed by
   its worker): a sampler with its own timesteps (ddim, lcm) takes no
   scheduler, and none runs past its max_steps (lcm: 50), the hires pass's
   schedule of int(steps / min(denoise, 0.999)) included (the engine's hires plan). */
static int check_sampler_fit(const job_spec *s, job_error *e)
{
    const gs_sampler_desc *d = NULL;
    for (int i = 0; i < gs_sampler_count() && !d; i++)
        if (gs_sampler_at(i) && strcmp(gs_sampler_at(i)->name, s->sampler) == 0)
            d = gs_sampler_at(i);
    if (!d)
        return 0; /* an unknown sampler is refused before */
    if (!(d->flags & GS_SAMPLER_SIGMAS) && strcmp(s->scheduler, "default") != 0)
        return fail(e, JOB_ERR_UNKNOWN_SCHEDULER, "scheduler",
                    "sampler '%s' uses its own timesteps; scheduler must be 'default', not '%s'",
                    d->name, s->scheduler);
    if (s->steps > d->max_steps)
        return fail(e, JOB_ERR_OUT_OF_RANGE, "steps", "'steps' must be in 1..%d for %s",
                    d->max_steps, d->name);
    if (!hires_on(s))
        return 0;
    int steps = s->hires_steps ? s->hires_steps : s->steps;
    double denoise = s->hires_denoise > 0 ? s->hires_denoise : 0.7; /* the engine's default */
    int total = (int)(steps / (denoise < 0.999 ? denoise : 0.999));
    if (total > d->max_steps)
        return fail(e, JOB_ERR_OUT_OF_RANGE, s->hires_steps ? "hires_steps" : "steps",
                    "the hires pass takes %d steps of a %d-step schedule (steps / hires_denoise), "
                    "over the %d %s runs",
                    steps, total, d->max_steps, d->name);
    return 0;
}

int job_spec_validate(const job_spec *s, const job_limits *lim, const char *models_dir,
                      job_error *e)
{
    if (!lim)
        lim = &hard_limits;
    if (s->vae_tile > 0 && (s->vae_tile < 64 || s->vae_tile % 8))
        return fail(e, JOB_ERR_OUT_OF_RANGE, "vae_tile",
                    "'vae_tile' must be 0 (auto), -1 (never) or a multiple of 8 from 64");
    if (s->prediction[0] &&
        !in_list(s->prediction, (const char *const[]){"auto", "eps", "v", NULL}))
        return fail(e, JOB_ERR_OUT_OF_RANGE, "prediction",
                    "'prediction' must be \"auto\", \"eps\" or \"v\", not '%s'", s->prediction);
    if (s->empty_negative[0] &&
        !in_list(s->empty_negative, (const char *const[]){"zero", "encode", NULL}))
        return fail(e, JOB_ERR_OUT_OF_RANGE, "empty_negative",
                    "'empty_negative' must be \"zero\" (A1111) or \"encode\" (ComfyUI), not '%s'",
                    s->empty_negative);
    if (s->width % 8 || s->height % 8)
        return fail(e, JOB_ERR_BAD_SIZE, s->width % 8 ? "width" : "height",
                    "width and height must be multiples of 8");
    if (!in_list(s->sampler, gs_sampler_names()))
        return fail(e, JOB_ERR_UNKNOWN_SAMPLER, "sampler", "unknown sampler '%s'", s->sampler);
    if (check_hires(s, lim, e) != 0)
        return -1;
    if (!in_list(s->scheduler, gs_scheduler_names()))
        return fail(e, JOB_ERR_UNKNOWN_SCHEDULER, "scheduler", "unknown scheduler '%s'",
                    s->scheduler);
    if (check_sampler_fit(s, e) != 0)
        return -1;
    if (models_dir) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s.safetensors", models_dir, s->model);
        if (!job_model_name_ok(s->model) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            return fail(e, JOB_ERR_UNKNOWN_MODEL, "model", "no model named '%s'", s->model);
    }
    if (job_loras_check(&s->loras, lim->lora_dir, e) != 0)
        return -1;
    int has_init = s->init_image.stored || s->init_image.base64;
    if ((s->mask.stored || s->mask.base64) && !has_init)
        return fail(e, JOB_ERR_MISSING_FIELD, "init_image",
                    "a mask needs an init image ('init_image') to inpaint");
    if (!in_list(s->inpaint_fill,
                 (const char *const[]){"original", "fill", "latent_noise", "latent_nothing", NULL}))
        return fail(e, JOB_ERR_OUT_OF_RANGE, "inpaint_fill",
                    "'inpaint_fill' must be \"original\", \"fill\", \"latent_noise\" or "
                    "\"latent_nothing\", not '%s'",
                    s->inpaint_fill);
    for (size_t i = 0; i < N_FIELDS; i++)
        if (fields[i].kind == F_IMAGE &&
            job_image_check((const job_image *)((const char *)s + fields[i].offset), fields[i].name,
                            lim->max_image, e) != 0)
            return -1;
    return 0;
}

static int check_prompt(const char *name, const char *prompt, int max_chunks,
                        const gs_tokenizer *tok, job_error *e)
{
    int n = 0;
    char msg[200];
    gs_status st = gs_prompt_chunks(tok, prompt, &n, msg, sizeof msg);
    if (st == GS_ERR_NO_MEMORY)
        return fail(e, JOB_ERR_NO_MEMORY, name, "out of memory");
    if (st != GS_OK)
        return fail(e, JOB_ERR_BAD_PROMPT, name, "'%s': %s", name, msg);
    if (n > max_chunks)
        return fail(e, JOB_ERR_TOO_LONG, name,
                    "'%s' makes %d chunks of 75 tokens; the limit is %d (BREAK starts a chunk)",
                    name, n, max_chunks);
    return 0;
}

int job_spec_check_prompts(const job_spec *s, const job_limits *lim, const gs_tokenizer *tok,
                           job_error *e)
{
    if (!lim)
        lim = &hard_limits;
    if (check_prompt("prompt", s->prompt, lim->max_prompt_chunks, tok, e) != 0 ||
        check_prompt("negative_prompt", s->negative_prompt, lim->max_prompt_chunks, tok, e) != 0)
        return -1;
    return 0;
}

void job_spec_normalise(job_spec *s)
{
    if (s->seed_given)
        return;
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, 0) != sizeof seed)
        seed = 0;
    s->seed = seed & 0xffffffffu; /* the range A1111 and the CLI draw from */
    s->seed_given = 1;
}

/* The hires pass's steps (0 when off) and size. */
static int hires_pass(const job_spec *s, int *w, int *h)
{
    hires_size(s, w, h);
    if (!hires_on(s) || (*w == s->width && *h == s->height))
        return 0; /* the engine drops a fix that keeps the size, as A1111 */
    return s->hires_steps ? s->hires_steps : s->steps;
}

double job_spec_megapixelsteps(const job_spec *s)
{
    int w, h, steps2 = hires_pass(s, &w, &h);
    double mps = (double)s->width * s->height * s->steps * s->batch_size / 1e6;
    return steps2 ? mps + (double)w * h * steps2 * s->batch_size / 1e6 : mps;
}

/* The sampler steps a run makes: img2img skips the start of the schedule.
   This is A1111's count and the engine's for its k-samplers; ddim and lcm
   run one step fewer at most, so the estimate errs high there. */
static int steps_run(const job_spec *s)
{
    if (!has_init_image(s))
        return s->steps;
    double strength = s->strength < 0.999 ? s->strength : 0.999;
    return (int)floor(strength * s->steps) + 1;
}

/* UNet passes per step: CFG runs it for the prompt and the negative prompt.
   The engine tests the float it is given, so a cfg_scale of 1.00000001 is
   one pass there and must be one here. */
static int unet_passes(const job_spec *s)
{
    return (float)s->cfg_scale != 1.0f ? 2 : 1;
}

double job_spec_cost(const job_spec *s)
{
    /* the first pass's term as it always was, so a job without the fix costs the same bits */
    double cost =
        (double)s->width * s->height * s->batch_size / 1e6 * steps_run(s) * unet_passes(s);
    int w, h, steps2 = hires_pass(s, &w, &h); /* it runs exactly the steps asked for */
    if (steps2)
        cost += (double)w * h * s->batch_size / 1e6 * steps2 * unet_passes(s);
    return cost;
}

int job_spec_check_cost(const job_spec *s, double max_cost, const char *whose, job_error *e)
{
    double cost = job_spec_cost(s);
    if (max_cost <= 0 || cost <= max_cost)
        return 0;
    int w, h, steps2 = hires_pass(s, &w, &h);
    char hires[80] = "";
    if (steps2)
        snprintf(hires, sizeof hires, " (+ hires pass %dx%d x %d steps)", w, h, steps2);
    return fail(e, JOB_ERR_TOO_COSTLY, NULL,
                "the job's estimated cost is %.6g megapixel-steps (%dx%d x %d image%s x %d "
                "steps%s x %d UNet pass%s), over %s limit of %g",
                cost, s->width, s->height, s->batch_size, s->batch_size > 1 ? "s" : "",
                steps_run(s), hires, unet_passes(s), unet_passes(s) > 1 ? "es (CFG)" : "", whose,
                max_cost);
}

/* ---- JSON out ---- */

static json_t *field_value(const job_spec *s, const field *f)
{
    const char *base = (const char *)s + f->offset;
    if (mask_only(f) && !s->mask.stored && !s->mask.base64)
        return NULL;
    switch (f->kind) {
    case F_INT:
        return !f->stored_when_default && *(const int *)base == 0
                   ? NULL
                   : json_integer(*(const int *)base);
    case F_NUM: /* NaN: a field not given (eta) */
        return isnan(*(const double *)base) ||
                       (!f->stored_when_default && *(const double *)base == 0)
                   ? NULL
                   : json_real(*(const double *)base);
    case F_SEED: return NULL; /* past jansson's int64: job_spec_to_json splices it in */
    case F_NAME: return !f->stored_when_default && !*base ? NULL : json_string(base);
    case F_TEXT: return *(char *const *)base ? json_string(*(char *const *)base) : NULL;
    case F_IMAGE: return job_image_json((const job_image *)base);
    case F_LORAS: return job_loras_json((const job_loras *)base);
    }
    return NULL;
}

char *job_spec_to_json(const job_spec *s)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    for (size_t i = 0; i < N_FIELDS; i++) {
        json_t *v = field_value(s, &fields[i]);
        if (v && json_object_set_new(o, fields[i].name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    char *text = json_u64_dumps(o, JSON_COMPACT, "seed", s->seed);
    json_decref(o);
    return text;
}

/* ---- to the engine ---- */

int job_spec_to_params(const job_spec *s, gs_params *p, gs_image **init)
{
    *init = NULL;
    gs_params_init(p);
    p->prompt = s->prompt;
    p->negative_prompt = s->negative_prompt;
    p->sampler = s->sampler;
    p->scheduler = strcmp(s->scheduler, "default") != 0 ? s->scheduler : NULL;
    p->width = s->width;
    p->height = s->height;
    p->steps = s->steps;
    p->cfg_scale = (float)s->cfg_scale;
    p->seed = s->seed;
    p->batch_size = s->batch_size;
    p->clip_skip = s->clip_skip;
    p->strength = (float)s->strength;
    p->eta = isnan(s->eta) ? -1.0f : (float)s->eta;
    p->preview_every = s->preview_every;
    p->vae_tile = s->vae_tile;
    p->prediction = strcmp(s->prediction, "v") == 0     ? GS_PREDICTION_V
                    : strcmp(s->prediction, "eps") == 0 ? GS_PREDICTION_EPS
                                                        : GS_PREDICTION_AUTO;
    p->original_width = s->original_width;
    p->original_height = s->original_height;
    p->crop_top = s->crop_top;
    p->crop_left = s->crop_left;
    p->target_width = s->target_width;
    p->target_height = s->target_height;
    p->encode_empty_negative = strcmp(s->empty_negative, "encode") == 0;
    /* <lora:...> tags naming no file are left out with a warning, as A1111 does, not
       refused; job_loras_params makes a served LoRA folder strict */
    p->lora_strict = 0;
    p->hires_scale = (float)s->hires_scale;
    p->hires_width = s->hires_width;
    p->hires_height = s->hires_height;
    p->hires_steps = s->hires_steps;
    if (s->hires_denoise > 0)
        p->hires_denoise = (float)s->hires_denoise;
    if (s->hires_upscaler[0] && gs_hires_upscaler_parse(s->hires_upscaler, &p->hires_upscaler))
        return -1; /* job_spec_validate refused it before */
    if (s->init_image.stored || s->init_image.base64) {
        if (job_image_decode(&s->init_image, hard_limits.max_image, 0, init) != 0)
            return -1;
        p->init_image = *init;
    }
    return 0;
}

int job_spec_mask_to_params(const job_spec *s, gs_params *p, gs_image **mask)
{
    static const char *const fills[] = {"fill", "original", "latent_noise", "latent_nothing"};
    *mask = NULL;
    if (!s->mask.stored && !s->mask.base64)
        return 0;
    if (job_image_decode(&s->mask, hard_limits.max_image, 1, mask) != 0)
        return -1;
    p->mask = *mask;
    p->mask_blur = s->mask_blur;
    for (int i = 0; i < 4; i++)
        if (strcmp(s->inpaint_fill, fills[i]) == 0)
            p->inpaint_fill = (gs_inpaint_fill)i;
    p->inpaint_full_res = s->inpaint_full_res;
    p->inpaint_padding = s->inpaint_padding;
    p->mask_invert = s->mask_invert;
    return 0;
}
