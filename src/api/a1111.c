/*
 * a1111 - AUTOMATIC1111's web UI API, /sdapi/v1: the route table, A1111's
 * error shapes and its options. A1111 (FastAPI) answers a refused field
 * with FastAPI's 422 {"detail":[{"loc","msg","type"}]} and every other
 * error with {"error": exception name, "detail", "body", "errors"}; both are
 * kept, so clients that parse them still do. Routes gesso has nothing
 * behind (upscalers, VAEs, LoRAs, scripts) answer empty lists, never 404:
 * clients probe them on connect and give up on an error.
 * docs/api.md documents each route and the fields accepted but ignored.
 */
#include "api/a1111.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/lora_list.h"
#include "api/protocols.h"

/* ---- errors ---- */

static enum MHD_Result a1111_error(http_request *r, int status, const char *code,
                                   const char *message, const char *extra_header)
{
    (void)code; /* A1111 has no codes: the status and the text say it */
    char errors[320];
    snprintf(errors, sizeof errors, "%d: %s", status, message);
    return http_reply_json(r, status,
                           json_pack("{s:s,s:s,s:s,s:s}", "error",
                                     status >= 500 ? "RuntimeError" : "HTTPException", "detail",
                                     message, "body", "", "errors", errors),
                           extra_header);
}

enum MHD_Result a1111_invalid(http_request *r, const char *field, const char *msg, const char *type)
{
    json_t *loc = json_pack("[s]", "body");
    char part[64];
    for (const char *p = field; p && *p;) {
        size_t n = strcspn(p, ".");
        snprintf(part, sizeof part, "%.*s", (int)(n < sizeof part ? n : sizeof part - 1), p);
        char *end;
        long index = strtol(part, &end, 10); /* list positions are numbers, as FastAPI's */
        json_array_append_new(loc, *part && !*end ? json_integer(index) : json_string(part));
        p += n + (p[n] == '.');
    }
    return http_reply_json(
        r, 422, json_pack("{s:[{s:o,s:s,s:s}]}", "detail", "loc", loc, "msg", msg, "type", type),
        NULL);
}

/* ---- routes ---- */

static const route routes[] = {
    {"POST", "/sdapi/v1/txt2img", AUTH_KEY, a1111_txt2img, ROUTE_UPLOAD},
    {"POST", "/sdapi/v1/img2img", AUTH_KEY, a1111_img2img, ROUTE_UPLOAD},
    {"GET", "/sdapi/v1/progress", AUTH_KEY, a1111_progress, 0},
    {"POST", "/sdapi/v1/interrupt", AUTH_KEY, a1111_interrupt, 0},
    {"POST", "/sdapi/v1/skip", AUTH_KEY, a1111_interrupt, 0},
    {"GET", "/sdapi/v1/options", AUTH_KEY, a1111_get_options, 0},
    {"POST", "/sdapi/v1/options", AUTH_KEY, a1111_set_options, 0},
    {"GET", "/sdapi/v1/sd-models", AUTH_KEY, a1111_sd_models, 0},
    {"GET", "/sdapi/v1/samplers", AUTH_KEY, a1111_samplers, 0},
    {"GET", "/sdapi/v1/schedulers", AUTH_KEY, a1111_schedulers, 0},
    {"GET", "/sdapi/v1/upscalers", AUTH_KEY, a1111_upscalers, 0},
    {"GET", "/sdapi/v1/latent-upscale-modes", AUTH_KEY, a1111_latent_upscale_modes, 0},
    {"GET", "/sdapi/v1/sd-vae", AUTH_KEY, a1111_empty_list, 0},
    {"GET", "/sdapi/v1/sd-modules", AUTH_KEY, a1111_empty_list, 0},
    {"GET", "/sdapi/v1/loras", AUTH_KEY, a1111_list_loras, 0},
    {"GET", "/sdapi/v1/hypernetworks", AUTH_KEY, a1111_empty_list, 0},
    {"GET", "/sdapi/v1/face-restorers", AUTH_KEY, a1111_empty_list, 0},
    {"GET", "/sdapi/v1/realesrgan-models", AUTH_KEY, a1111_empty_list, 0},
    {"GET", "/sdapi/v1/prompt-styles", AUTH_KEY, a1111_empty_list, 0},
    {"GET", "/sdapi/v1/extensions", AUTH_KEY, a1111_empty_list, 0},
    {"GET", "/sdapi/v1/script-info", AUTH_KEY, a1111_empty_list, 0},
    {"GET", "/sdapi/v1/scripts", AUTH_KEY, a1111_scripts, 0},
    {"GET", "/sdapi/v1/embeddings", AUTH_KEY, a1111_embeddings, 0},
    {"GET", "/sdapi/v1/memory", AUTH_KEY, a1111_memory, 0},
    {"GET", "/sdapi/v1/cmd-flags", AUTH_KEY, a1111_cmd_flags, 0},
    {"POST", "/sdapi/v1/png-info", AUTH_KEY, a1111_png_info, ROUTE_UPLOAD},
    {"POST", "/sdapi/v1/refresh-checkpoints", AUTH_KEY, a1111_nothing, 0},
    {"POST", "/sdapi/v1/refresh-vae", AUTH_KEY, a1111_nothing, 0},
    {"POST", "/sdapi/v1/refresh-loras", AUTH_KEY, a1111_nothing, 0},
    {"POST", "/sdapi/v1/unload-checkpoint", AUTH_KEY, a1111_nothing, 0},
    {"POST", "/sdapi/v1/reload-checkpoint", AUTH_KEY, a1111_nothing, 0},
};

const protocol a1111_protocol = {.name = "a1111",
                                 .routes = routes,
                                 .n_routes = sizeof routes / sizeof routes[0],
                                 .error = a1111_error,
                                 .prefix = "/sdapi/",
                                 .challenge = "WWW-Authenticate: Basic realm=\"gesso\""};

/* ---- state ---- */

a1111_state *a1111_state_create(void)
{
    a1111_state *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    if (!(st->options = json_object())) {
        free(st);
        return NULL;
    }
    pthread_mutex_init(&st->mu, NULL);
    return st;
}

void a1111_state_free(a1111_state *st)
{
    if (!st)
        return;
    json_decref(st->options);
    free(st->hashes);
    pthread_mutex_destroy(&st->mu);
    free(st);
}

/* ---- options ---- */

/* Options a client may set, and the JSON bytes of one: A1111's are a few
   hundred small values; the bounds keep a client from filling the server's
   memory through them. */
#define MAX_OPTIONS 300u
#define MAX_OPTION_BYTES 4096

void a1111_default_model(server *s, char out[JOB_MODEL_MAX + 1])
{
    a1111_state *st = s->a1111;
    out[0] = '\0';
    pthread_mutex_lock(&st->mu);
    const char *set = json_string_value(json_object_get(st->options, "sd_model_checkpoint"));
    if (set)
        snprintf(out, JOB_MODEL_MAX + 1, "%s", set);
    pthread_mutex_unlock(&st->mu);
    if (out[0])
        return;
    if (s->o->n_preload > 0) {
        snprintf(out, JOB_MODEL_MAX + 1, "%s", s->o->preload[0]);
        return;
    }
    char **names = NULL;
    int n = a1111_model_names(s, &names);
    if (n > 0)
        snprintf(out, JOB_MODEL_MAX + 1, "%s", names[0]);
    a1111_names_free(names, n);
}

int a1111_option_int(server *s, const char *name, int def)
{
    a1111_state *st = s->a1111;
    pthread_mutex_lock(&st->mu);
    json_t *v = json_object_get(st->options, name);
    int value = json_is_integer(v) ? (int)json_integer_value(v) : def;
    pthread_mutex_unlock(&st->mu);
    return value;
}

/* The options clients read, A1111's defaults where gesso has no such setting. */
static json_t *default_options(void)
{
    return json_pack("{s:i,s:s,s:s,s:i,s:i,s:b,s:i,s:s,s:b,s:s}", "CLIP_stop_at_last_layers", 1,
                     "sd_vae", "Automatic", "samples_format", "png", "eta_noise_seed_delta", 0,
                     "show_progress_every_n_steps", 10, "live_previews_enable", 1,
                     "sd_checkpoints_limit", 1, "sd_checkpoint_cache", "0", "enable_pnginfo", 1,
                     "sampler_name", "Euler");
}

enum MHD_Result a1111_get_options(http_request *r)
{
    a1111_state *st = r->s->a1111;
    json_t *o = default_options();
    pthread_mutex_lock(&st->mu);
    json_object_update(o, st->options);
    pthread_mutex_unlock(&st->mu);
    char model[JOB_MODEL_MAX + 1], title[400] = "";
    a1111_default_model(r->s, model);
    if (model[0])
        a1111_model_title(r->s, model, title, sizeof title);
    json_object_set_new(o, "sd_model_checkpoint", model[0] ? json_string(title) : json_null());
    return http_reply_json(r, 200, o, NULL);
}

/* Every option GET returned is taken back; the model and the CLIP skip are
   checked, as they change what later requests run. */
enum MHD_Result a1111_set_options(http_request *r)
{
    json_error_t jerr;
    json_t *req = json_loadb(r->body, r->body_len, 0, &jerr);
    if (!json_is_object(req)) {
        json_decref(req);
        return a1111_invalid(r, "", "the body must be a JSON object", "type_error.dict");
    }
    const char *key;
    json_t *value;
    int fresh = 0, too_big = 0;
    a1111_state *st = r->s->a1111;
    pthread_mutex_lock(&st->mu);
    json_object_foreach(req, key, value)
    {
        fresh += !json_object_get(st->options, key);
        char *text = json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT);
        too_big |= !text || strlen(text) > MAX_OPTION_BYTES;
        free(text);
    }
    int too_many = json_object_size(st->options) + (size_t)fresh > MAX_OPTIONS;
    pthread_mutex_unlock(&st->mu);
    if (too_many || too_big) {
        char msg[96];
        snprintf(msg, sizeof msg,
                 too_many ? "too many options: the server keeps at most %d"
                          : "an option's value is over %d bytes of JSON",
                 too_many ? (int)MAX_OPTIONS : MAX_OPTION_BYTES);
        json_decref(req);
        return a1111_invalid(r, "", msg, "value_error.too_large");
    }
    json_t *ckpt = json_object_get(req, "sd_model_checkpoint");
    json_t *clip = json_object_get(req, "CLIP_stop_at_last_layers");
    char model[JOB_MODEL_MAX + 1] = "";
    enum MHD_Result ret = MHD_YES;
    if (ckpt && !json_is_null(ckpt) && !json_is_string(ckpt))
        ret = a1111_invalid(r, "sd_model_checkpoint", "str type expected", "type_error.str");
    else if (json_is_string(ckpt) && a1111_resolve_model(r->s, json_string_value(ckpt), model))
        ret = a1111_error(r, 404, "not_found", "model not found", NULL);
    else if (clip && !json_is_null(clip) &&
             (!json_is_integer(clip) || json_integer_value(clip) < 1 ||
              json_integer_value(clip) > 12))
        ret = a1111_invalid(r, "CLIP_stop_at_last_layers", "must be an integer in 1..12",
                            "value_error.number");
    else {
        pthread_mutex_lock(&st->mu);
        json_object_update(st->options, req);
        if (model[0])
            json_object_set_new(st->options, "sd_model_checkpoint", json_string(model));
        else if (ckpt)
            json_object_del(st->options, "sd_model_checkpoint");
        pthread_mutex_unlock(&st->mu);
        ret = http_reply_json_text(r, 200, strdup("null"), NULL); /* A1111's answer */
    }
    json_decref(req);
    return ret;
}
