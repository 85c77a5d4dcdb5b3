/*
 * openai_request - an OpenAI Images request read into a job_spec. The
 * request's fields are checked against a table (name, type, the calls that
 * take it), then mapped: size to width and height, n to the batch, quality
 * to steps, model to a gesso model (the default when absent or when it names
 * one of OpenAI's own models); gesso's own extras (seed, steps, ...) pass
 * through. The result is native JSON read by job_spec_from_json, so the
 * limits and checks are the native API's own; only their wording is OpenAI's.
 */
#include "api/openai.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/job_submit.h"
#include "api/server_private.h"
#include "job/base64.h"

#define GEN OPENAI_GENERATE
#define EDIT OPENAI_EDIT
#define VAR OPENAI_VARIATION
#define SD1_SIDE 512 /* "auto" size of a generation: SD1's native size */

typedef enum value_type { T_STR, T_INT, T_NUM, T_BOOL, T_SEED } value_type;

typedef struct openai_field {
    const char *name;
    value_type type;
    unsigned kinds;     /* openai_kind bits of the calls that take it */
    const char *native; /* the job_spec field it passes to unchanged, or NULL: mapped here */
} openai_field;

static const openai_field fields[] = {
    {"prompt", T_STR, GEN | EDIT, "prompt"},
    {"model", T_STR, GEN | EDIT | VAR, NULL},
    {"n", T_INT, GEN | EDIT | VAR, NULL},
    {"size", T_STR, GEN | EDIT | VAR, NULL},
    {"quality", T_STR, GEN | EDIT, NULL},
    {"response_format", T_STR, GEN | EDIT | VAR, NULL},
    {"output_format", T_STR, GEN | EDIT, NULL},
    {"output_compression", T_INT, GEN | EDIT, NULL},
    {"background", T_STR, GEN | EDIT, NULL},
    {"moderation", T_STR, GEN, NULL},
    {"style", T_STR, GEN, NULL},
    {"input_fidelity", T_STR, EDIT, NULL},
    {"user", T_STR, GEN | EDIT | VAR, NULL},
    {"stream", T_BOOL, GEN | EDIT, NULL},
    {"partial_images", T_INT, GEN | EDIT, NULL},
    /* gesso's own, beyond OpenAI's API */
    {"seed", T_SEED, GEN | EDIT | VAR, "seed"},
    {"steps", T_INT, GEN | EDIT | VAR, "steps"},
    {"negative_prompt", T_STR, GEN | EDIT | VAR, "negative_prompt"},
    {"cfg_scale", T_NUM, GEN | EDIT | VAR, "cfg_scale"},
    {"sampler", T_STR, GEN | EDIT | VAR, "sampler"},
    {"scheduler", T_STR, GEN | EDIT | VAR, "scheduler"},
    {"strength", T_NUM, EDIT | VAR, "strength"},
};
#define N_FIELDS (sizeof fields / sizeof fields[0])

/* quality -> sampler steps (docs/api.md states the table) */
static const struct {
    const char *quality;
    int steps;
} quality_steps[] = {
    {"low", 10}, {"medium", 20}, {"high", 30}, {"auto", 20}, {"hd", 30}, {"standard", 20},
};

static int refuse(openai_refusal *why, int status, const char *code, const char *param,
                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why->message, sizeof why->message, fmt, ap);
    va_end(ap);
    why->status = status;
    why->code = code;
    snprintf(why->param, sizeof why->param, "%s", param ? param : "");
    return -1;
}

static const openai_field *field_named(const char *name)
{
    for (size_t i = 0; i < N_FIELDS; i++)
        if (strcmp(fields[i].name, name) == 0)
            return &fields[i];
    return NULL;
}

/* ---- types ---- */

static const char *type_word(value_type t)
{
    switch (t) {
    case T_INT: return "an integer";
    case T_NUM: return "a number";
    case T_BOOL: return "a boolean";
    case T_SEED: return "an integer";
    default: return "a string";
    }
}

static const char *json_word(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    default: return "a boolean";
    }
}

/* A form field's text as the value its type wants (a new reference), or NULL. */
static json_t *form_value(const char *text, value_type t)
{
    char *end;
    if (t == T_INT) {
        long long x = strtoll(text, &end, 10);
        return *text && !*end && text[0] != '+' && text[0] != ' ' ? json_integer(x) : NULL;
    }
    if (t == T_NUM) {
        double x = strtod(text, &end);
        return *text && !*end && text[0] != ' ' ? json_real(x) : NULL;
    }
    if (t == T_BOOL)
        return strcmp(text, "true") == 0    ? json_true()
               : strcmp(text, "false") == 0 ? json_false()
                                            : NULL;
    return json_string(text);
}

/* v (present, not null) as type t, a new reference; NULL with why. */
static json_t *typed(const openai_field *f, json_t *v, int form, openai_refusal *why)
{
    json_t *out = NULL;
    if (form && json_is_string(v))
        out = form_value(json_string_value(v), f->type);
    else if ((f->type == T_STR && json_is_string(v)) || (f->type == T_INT && json_is_integer(v)) ||
             (f->type == T_NUM && json_is_number(v)) || (f->type == T_BOOL && json_is_boolean(v)) ||
             (f->type == T_SEED && (json_is_number(v) || json_is_string(v))))
        out = json_incref(v);
    if (!out && form)
        refuse(why, 400, "invalid_type", f->name,
               "Invalid type for '%s': expected %s, but got '%.40s' instead.", f->name,
               type_word(f->type), json_string_value(v));
    else if (!out)
        refuse(why, 400, "invalid_type", f->name,
               "Invalid type for '%s': expected %s, but got %s instead.", f->name,
               type_word(f->type), json_word(v));
    return out;
}

/* ---- the mapped fields ---- */

/* s is one of the NULL-terminated words; else refuses naming them. */
static int one_of(const char *param, const char *s, const char *const *words, openai_refusal *why)
{
    char list[200] = "";
    size_t k = 0;
    for (int i = 0; words[i]; i++) {
        if (strcmp(s, words[i]) == 0)
            return 0;
        k += (size_t)snprintf(list + k, sizeof list - k, "%s'%s'", i ? ", " : "", words[i]);
        if (k >= sizeof list)
            k = sizeof list - 1;
    }
    return refuse(why, 400, "invalid_value", param,
                  "Invalid value for '%s': '%.60s'. Supported values are: %s.", param, s, list);
}

static int exists(const char *dir, const char *name)
{
    char path[4400];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    return job_model_name_ok(name) && stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* The default model: the first by name of the models directory. */
static int default_model(const char *dir, char out[JOB_MODEL_MAX + 1])
{
    DIR *d = opendir(dir);
    struct dirent *de;
    out[0] = '\0';
    while (d && (de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 12 || n - 12 > JOB_MODEL_MAX || strcmp(de->d_name + n - 12, ".safetensors") != 0)
            continue;
        char name[JOB_MODEL_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)(n - 12), de->d_name);
        if (exists(dir, name) && (!out[0] || strcmp(name, out) < 0))
            snprintf(out, JOB_MODEL_MAX + 1, "%s", name);
    }
    if (d)
        closedir(d);
    return out[0] ? 0 : -1;
}

/* The model asked for: a gesso model name; absent, or one of OpenAI's own
   models (clients hard-code them), the default model. */
static int pick_model(const char *dir, const char *asked, json_t *nat, openai_refusal *why)
{
    char name[JOB_MODEL_MAX + 1];
    int openai_name =
        asked && (strncmp(asked, "dall-e-", 7) == 0 || strncmp(asked, "gpt-image-", 10) == 0);
    if (asked && (!openai_name || exists(dir, asked))) {
        json_object_set_new(nat, "model", json_string(asked));
        return 0;
    }
    if (default_model(dir, name) != 0)
        return refuse(why, 503, "no_models", "model", "the server has no models installed");
    json_object_set_new(nat, "model", json_string(name));
    return 0;
}

/* "WxH": two plain decimal numbers. */
static int parse_size(const char *s, int *w, int *h)
{
    char *end;
    if (*s < '1' || *s > '9')
        return -1;
    long a = strtol(s, &end, 10);
    if (*end != 'x' || end[1] < '1' || end[1] > '9' || end - s > 5)
        return -1;
    const char *second = end + 1;
    long b = strtol(second, &end, 10);
    if (*end || end - second > 5)
        return -1;
    *w = (int)a;
    *h = (int)b;
    return 0;
}

/* An init image's own size, scaled down to fit max_side, in multiples of 8. */
static void image_size(int iw, int ih, int max_side, int *w, int *h)
{
    double scale = iw > max_side || ih > max_side ? (double)max_side / (iw > ih ? iw : ih) : 1;
    *w = (int)(iw * scale) / 8 * 8;
    *h = (int)(ih * scale) / 8 * 8;
    *w = *w < 64 ? 64 : *w;
    *h = *h < 64 ? 64 : *h;
}

static int read_size(const char *size, const gs_image *init, const job_limits *lim, json_t *nat,
                     openai_refusal *why)
{
    int w = SD1_SIDE, h = SD1_SIDE;
    if (size && strcmp(size, "auto") != 0) {
        if (parse_size(size, &w, &h) != 0 || w % 8 || h % 8 || w < 64 || h < 64 ||
            w > lim->max_side || h > lim->max_side)
            return refuse(why, 400, "invalid_value", "size",
                          "Invalid value for 'size': '%.40s'. gesso takes 'auto' or 'WxH' with W "
                          "and H multiples of 8 in 64..%d.",
                          size, lim->max_side);
    } else if (init) {
        image_size(init->width, init->height, lim->max_side, &w, &h);
    }
    json_object_set_new(nat, "width", json_integer(w));
    json_object_set_new(nat, "height", json_integer(h));
    return 0;
}

/* OpenAI's mask (the fully transparent pixels are the area to edit, the
   image's size) as gesso's: white = repaint, into nat's "mask". */
static int read_mask(const unsigned char *data, size_t len, const gs_image *init,
                     const job_limits *lim, json_t *nat, openai_refusal *why)
{
    gs_image *m = NULL, l = {0};
    uint8_t *png = NULL;
    size_t png_len = 0;
    char msg[200];
    int rc = -1;
    if (len > lim->max_image) {
        refuse(why, 400, "image_too_large", "mask",
               "the mask is %zu bytes; this server takes at most %zu (--max-image)", len,
               lim->max_image);
        goto out;
    }
    if (gs_image_load_memory_alpha(data, len, &m, msg, sizeof msg) != GS_OK) {
        refuse(why, 400, "invalid_image", "mask",
               "the mask is not a PNG, JPEG or WebP file that decodes: %s", msg);
        goto out;
    }
    if (m->channels != 4) {
        refuse(why, 400, "invalid_value", "mask",
               "the mask has no alpha channel: its fully transparent pixels (alpha 0) mark the "
               "area to edit");
        goto out;
    }
    if (m->width != init->width || m->height != init->height) {
        refuse(why, 400, "invalid_value", "mask",
               "the mask is %dx%d and the image %dx%d: they must be the same size", m->width,
               m->height, init->width, init->height);
        goto out;
    }
    size_t px = (size_t)m->width * m->height;
    l.width = m->width;
    l.height = m->height;
    l.channels = 3;
    if (!(l.pixels = malloc(px * 3))) {
        refuse(why, 500, NULL, NULL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < px; i++)
        memset(l.pixels + 3 * i, m->pixels[4 * i + 3] == 0 ? 255 : 0, 3);
    char *b64 = NULL;
    if (gs_image_encode_png(&l, NULL, &png, &png_len, msg, sizeof msg) != GS_OK ||
        !(b64 = base64_encode(png, png_len))) {
        refuse(why, 500, NULL, NULL, "out of memory");
        goto out;
    }
    json_object_set_new(nat, "mask", json_string(b64));
    free(b64);
    rc = 0;
out:
    gs_image_free(m);
    free(l.pixels);
    free(png);
    return rc;
}

/* The accepted-and-ignored fields and the reply's format: only their values are checked. */
static int read_formats(json_t *vals, openai_ask *ask, openai_refusal *why)
{
    static const char *const response[] = {"b64_json", "url", NULL};
    static const char *const output[] = {"png", "jpeg", "webp", NULL};
    static const char *const background[] = {"auto", "opaque", "transparent", NULL};
    static const char *const moderation[] = {"auto", "low", NULL};
    static const char *const style[] = {"vivid", "natural", NULL};
    static const char *const fidelity[] = {"high", "low", NULL};
    static const struct {
        const char *name;
        const char *const *words;
    } enums[] = {
        {"response_format", response}, {"output_format", output}, {"background", background},
        {"moderation", moderation},    {"style", style},          {"input_fidelity", fidelity}};
    for (size_t i = 0; i < sizeof enums / sizeof enums[0]; i++) {
        json_t *v = json_object_get(vals, enums[i].name);
        if (v && one_of(enums[i].name, json_string_value(v), enums[i].words, why) != 0)
            return -1;
    }
    const char *rf = json_string_value(json_object_get(vals, "response_format"));
    ask->want_url = rf && strcmp(rf, "url") == 0;
    ask->format = IMAGE_PNG; /* one_of checked the name */
    image_format_parse(json_string_value(json_object_get(vals, "output_format")), &ask->format);
    if (json_is_true(json_object_get(vals, "stream")))
        return refuse(why, 400, "unsupported_value", "stream",
                      "streaming is not supported: leave 'stream' out (or false)");
    json_t *oc = json_object_get(vals, "output_compression");
    if (oc && (json_integer_value(oc) < 0 || json_integer_value(oc) > 100))
        return refuse(why, 400, "invalid_value", "output_compression",
                      "Invalid 'output_compression': expected a value in 0..100.");
    /* a quality, as OpenAI's default of 100 (the best) shows; JPEG's starts at 1 */
    ask->compression = oc ? (int)json_integer_value(oc) : 100;
    if (ask->compression < 1)
        ask->compression = 1;
    json_t *pi = json_object_get(vals, "partial_images");
    if (pi && (json_integer_value(pi) < 0 || json_integer_value(pi) > 3))
        return refuse(why, 400, "invalid_value", "partial_images",
                      "Invalid 'partial_images': expected a value in 0..3.");
    return 0;
}

static int read_n(json_t *vals, const job_limits *lim, json_t *nat, openai_refusal *why)
{
    json_t *v = json_object_get(vals, "n");
    json_int_t n = v ? json_integer_value(v) : 1;
    if (n < 1)
        return refuse(why, 400, "integer_below_min_value", "n",
                      "Invalid 'n': integer below minimum value. Expected a value >= 1, but got "
                      "%lld instead.",
                      (long long)n);
    if (n > lim->max_batch)
        return refuse(why, 400, "integer_above_max_value", "n",
                      "Invalid 'n': integer above maximum value. Expected a value <= %d (this "
                      "server's --max-batch), but got %lld instead.",
                      lim->max_batch, (long long)n);
    json_object_set_new(nat, "batch_size", json_integer(n));
    return 0;
}

/* quality's steps, unless gesso's own "steps" is given. */
static int read_quality(json_t *vals, const job_limits *lim, json_t *nat, openai_ask *ask,
                        openai_refusal *why)
{
    static const char *const words[] = {"low", "medium", "high", "auto", "standard", "hd", NULL};
    const char *q = json_string_value(json_object_get(vals, "quality"));
    snprintf(ask->quality, sizeof ask->quality, "%s", q ? q : "auto");
    if (q && one_of("quality", q, words, why) != 0)
        return -1;
    if (json_object_get(nat, "steps"))
        return 0;
    for (size_t i = 0; i < sizeof quality_steps / sizeof quality_steps[0]; i++)
        if (strcmp(ask->quality, quality_steps[i].quality) == 0) {
            int steps = quality_steps[i].steps;
            json_object_set_new(nat, "steps",
                                json_integer(steps < lim->max_steps ? steps : lim->max_steps));
        }
    return 0;
}

/* ---- from the spec's errors ---- */

static const char *param_of(const char *field)
{
    if (strcmp(field, "width") == 0 || strcmp(field, "height") == 0)
        return "size";
    if (strcmp(field, "batch_size") == 0)
        return "n";
    if (strcmp(field, "init_image") == 0)
        return "image";
    return field;
}

static int refuse_spec(const job_error *e, openai_refusal *why)
{
    switch (e->reason) {
    case JOB_ERR_NO_MEMORY: return refuse(why, 500, NULL, NULL, "out of memory");
    case JOB_ERR_UNKNOWN_MODEL:
        return refuse(why, 404, "model_not_found", "model", "%s (GET /v1/models lists them)",
                      e->message);
    case JOB_ERR_WRONG_TYPE:
        return refuse(why, 400, "invalid_type", param_of(e->field), "%s", e->message);
    case JOB_ERR_TOO_LONG:
        return refuse(why, 400, "string_above_max_length", param_of(e->field), "%s", e->message);
    case JOB_ERR_TOO_COSTLY: return refuse(why, 400, "too_costly", NULL, "%s", e->message);
    default: return refuse(why, 400, "invalid_value", param_of(e->field), "%s", e->message);
    }
}

/* ---- the request ---- */

/* Checks every field of req against the table into vals (typed values). */
static int read_fields(openai_kind kind, json_t *req, int form, json_t *vals, openai_refusal *why)
{
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v)
    {
        const openai_field *f = field_named(key);
        if (!f || !(f->kinds & kind))
            return refuse(why, 400, "unknown_parameter", key, "Unknown parameter: '%.60s'.", key);
        if (json_is_null(v))
            continue; /* null reads as absent, as OpenAI's SDKs may send it */
        json_t *t = typed(f, v, form, why);
        if (!t)
            return -1;
        json_object_set_new(vals, key, t);
    }
    return 0;
}

/* The native JSON text of nat, with the seed spliced in exactly (json_u64.h). */
static char *native_text(json_t *nat, json_t *vals, const json_int_literal *seed, int form,
                         openai_refusal *why)
{
    uint64_t exact;
    json_t *v = json_object_get(vals, "seed");
    if (v && !form && seed->found && json_int_literal_u64(seed, &exact))
        return json_u64_dumps(nat, JSON_COMPACT, "seed", exact);
    if (v && !form && seed->found && !(seed->negative && seed->magnitude == 1 && !seed->overflow)) {
        refuse(why, 400, "invalid_value", "seed",
               "'seed' must be an integer in 0..18446744073709551615, or -1 for a random one");
        return NULL;
    }
    if (v)
        json_object_set(nat, "seed", v);
    return json_dumps(nat, JSON_COMPACT);
}

int openai_read_request(http_request *r, openai_kind kind, json_t *req,
                        const json_int_literal *seed, int form, const unsigned char *image,
                        size_t image_len, const unsigned char *mask, size_t mask_len,
                        job_spec *spec, openai_ask *ask, openai_refusal *why)
{
    const serve_options *o = r->s->o;
    const job_limits *lim = &o->limits;
    json_t *vals = json_object(), *nat = json_object();
    gs_image *init = NULL;
    char *text = NULL, msg[200];
    int rc = -1;
    if (!vals || !nat) {
        refuse(why, 500, NULL, NULL, "out of memory");
        goto out;
    }
    if (read_fields(kind, req, form, vals, why) != 0)
        goto out;
    if ((kind & (GEN | EDIT)) && !json_object_get(vals, "prompt")) {
        refuse(why, 400, "missing_required_parameter", "prompt",
               "Missing required parameter: 'prompt'.");
        goto out;
    }
    for (size_t i = 0; i < N_FIELDS; i++) {
        json_t *v = json_object_get(vals, fields[i].name);
        if (v && fields[i].native && fields[i].type != T_SEED)
            json_object_set(nat, fields[i].native, v);
    }
    if (image) {
        if (image_len > lim->max_image) {
            refuse(why, 400, "image_too_large", "image",
                   "the image is %zu bytes; this server takes at most %zu (--max-image)", image_len,
                   lim->max_image);
            goto out;
        }
        if (gs_image_load_memory(image, image_len, &init, msg, sizeof msg) != GS_OK) {
            refuse(why, 400, "invalid_image", "image",
                   "the image is not a PNG, JPEG or WebP file that decodes: %s", msg);
            goto out;
        }
        char *b64 = base64_encode(image, image_len);
        if (!b64) {
            refuse(why, 500, NULL, NULL, "out of memory");
            goto out;
        }
        json_object_set_new(nat, "init_image", json_string(b64));
        free(b64);
        if (!json_object_get(nat, "strength")) /* a variation keeps more of its image */
            json_object_set_new(nat, "strength", json_real(kind == VAR ? 0.6 : 0.75));
    }
    if (mask && read_mask(mask, mask_len, init, lim, nat, why) != 0)
        goto out;
    if (pick_model(o->models_dir, json_string_value(json_object_get(vals, "model")), nat, why) !=
            0 ||
        read_n(vals, lim, nat, why) != 0 ||
        read_size(json_string_value(json_object_get(vals, "size")), init, lim, nat, why) != 0 ||
        read_quality(vals, lim, nat, ask, why) != 0 || read_formats(vals, ask, why) != 0)
        goto out;
    if (!(text = native_text(nat, vals, seed, form, why))) {
        if (!why->status)
            refuse(why, 500, NULL, NULL, "out of memory");
        goto out;
    }
    job_error e;
    if (job_spec_from_json(spec, text, strlen(text), lim, &e) != 0 ||
        job_submit_check(r, spec, &e) != 0) {
        refuse_spec(&e, why);
        goto out;
    }
    rc = 0;
out:
    gs_image_free(init);
    free(text);
    json_decref(vals);
    json_decref(nat);
    return rc;
}
