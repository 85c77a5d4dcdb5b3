/*
 * a1111_request - an A1111 txt2img/img2img body to a native job. Fields
 * take A1111's names and its API's defaults; fields gesso has no use for
 * (face restoration, scripts, subseeds, a client's own extras) are accepted
 * and ignored, as A1111 ignores what its model lacks. The hires fix
 * (enable_hr, hr_*) maps to the job's hires fields. Types
 * are checked here, in A1111's error shape; ranges and limits are the job
 * spec's, so the native API and this one refuse the same jobs.
 *
 * n_iter: A1111 runs n_iter batches one after another; here they are one
 * job of batch_size * n_iter images (one seed, one noise tensor, as gesso's
 * batches are), so one id follows, lists and cancels the request.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/a1111.h"

#define DEFAULT_STEPS 20 /* A1111's web UI default; clients that omit steps want a quick image */
#define DEFAULT_PREVIEW_EVERY 10 /* A1111's show_progress_every_n_steps */

typedef struct reader {
    http_request *r;
    json_t *req;
    enum MHD_Result *ret;
} reader;

static int refuse(reader *rd, const char *field, const char *msg, const char *type)
{
    *rd->ret = a1111_invalid(rd->r, field, msg, type);
    return -1;
}

/* A member that is absent or null reads as absent: pydantic's Optional. */
static json_t *member(const json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_null(v) ? NULL : v;
}

/* An integer, or a real with no fraction (JavaScript clients send 512.0). */
static int read_int(reader *rd, const json_t *o, const char *name, long def, long *out)
{
    json_t *v = member(o, name);
    *out = def;
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *out = (long)json_integer_value(v);
        return 0;
    }
    double x = json_is_real(v) ? json_real_value(v) : NAN;
    if (!isfinite(x) || x != floor(x) || fabs(x) > 1e9)
        return refuse(rd, name, "value is not a valid integer", "type_error.integer");
    *out = (long)x;
    return 0;
}

static int read_num(reader *rd, const json_t *o, const char *name, double def, double *out)
{
    json_t *v = member(o, name);
    *out = def;
    if (!v)
        return 0;
    if (!json_is_number(v))
        return refuse(rd, name, "value is not a valid float", "type_error.float");
    *out = json_number_value(v);
    return 0;
}

static int read_str(reader *rd, const json_t *o, const char *name, const char **out)
{
    json_t *v = member(o, name);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v))
        return refuse(rd, name, "str type expected", "type_error.str");
    *out = json_string_value(v);
    return 0;
}

static int read_bool(reader *rd, const json_t *o, const char *name, int def, int *out)
{
    json_t *v = member(o, name);
    *out = def;
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return refuse(rd, name, "value could not be parsed to a boolean", "type_error.bool");
    *out = json_is_true(v);
    return 0;
}

/* The model and the CLIP skip: override_settings, else the server's options. */
static int read_overrides(reader *rd, json_t *native)
{
    json_t *ov = member(rd->req, "override_settings");
    if (ov && !json_is_object(ov))
        return refuse(rd, "override_settings", "value is not a valid dict", "type_error.dict");
    const char *ckpt = NULL;
    long clip = a1111_option_int(rd->r->s, "CLIP_stop_at_last_layers", 1);
    char model[JOB_MODEL_MAX + 1];
    json_t *clip_v = ov ? member(ov, "CLIP_stop_at_last_layers") : NULL;
    if (clip_v &&
        (!json_is_integer(clip_v) || (clip = (long)json_integer_value(clip_v)) < 1 || clip > 12))
        return refuse(rd, "override_settings.CLIP_stop_at_last_layers",
                      "ensure this value is an integer in 1..12", "value_error.number");
    json_t *ckpt_v = ov ? member(ov, "sd_model_checkpoint") : NULL;
    if (ckpt_v && !(ckpt = json_string_value(ckpt_v)))
        return refuse(rd, "override_settings.sd_model_checkpoint", "str type expected",
                      "type_error.str");
    if (ckpt && a1111_resolve_model(rd->r->s, ckpt, model) != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "model '%.200s' not found (GET /sdapi/v1/sd-models)", ckpt);
        return refuse(rd, "override_settings.sd_model_checkpoint", msg, "value_error.model");
    }
    if (!ckpt)
        a1111_default_model(rd->r->s, model);
    if (!model[0])
        return refuse(rd, "override_settings.sd_model_checkpoint",
                      "the server has no model: put a NAME.safetensors in its models directory",
                      "value_error.model");
    json_object_set_new(native, "model", json_string(model));
    json_object_set_new(native, "clip_skip", json_integer(clip));
    return 0;
}

static int read_sampler(reader *rd, json_t *native)
{
    const char *name, *index, *sched, *engine, *engine_sched;
    if (read_str(rd, rd->req, "sampler_name", &name) ||
        read_str(rd, rd->req, "sampler_index", &index) ||
        read_str(rd, rd->req, "scheduler", &sched))
        return -1;
    char why[300];
    int rc = a1111_map_sampler(name ? name : index, sched, &engine, &engine_sched, why, sizeof why);
    if (rc != 0)
        return refuse(rd, rc == -1 ? (name ? "sampler_name" : "sampler_index") : "scheduler", why,
                      "value_error.sampler");
    json_object_set_new(native, "sampler", json_string(engine));
    json_object_set_new(native, "scheduler", json_string(engine_sched));
    return 0;
}

/* A1111's inpainting fields, with its API's defaults (StableDiffusionProcessingImg2Img:
   mask_blur 4, inpainting_fill 0 = fill, inpaint_full_res true, padding 0). */
static int read_inpaint(reader *rd, json_t *native, json_t *mask)
{
    long blur, fill, pad, invert;
    int full_res;
    static const char *const fills[] = {"fill", "original", "latent_noise", "latent_nothing"};
    if (read_int(rd, rd->req, "mask_blur", 4, &blur) ||
        read_int(rd, rd->req, "inpainting_fill", 0, &fill) ||
        read_bool(rd, rd->req, "inpaint_full_res", 1, &full_res) ||
        read_int(rd, rd->req, "inpaint_full_res_padding", 0, &pad) ||
        read_int(rd, rd->req, "inpainting_mask_invert", 0, &invert))
        return -1;
    if (fill < 0 || fill > 3)
        return refuse(rd, "inpainting_fill",
                      "must be 0 (fill), 1 (original), 2 (latent noise) or 3 (latent nothing)",
                      "value_error.number.not_in_range");
    if (invert != 0 && invert != 1)
        return refuse(rd, "inpainting_mask_invert", "must be 0 (inpaint masked) or 1 (not masked)",
                      "value_error.number.not_in_range");
    json_object_set(native, "mask", mask);
    json_object_set_new(native, "mask_blur", json_integer(blur)); /* the spec checks the range */
    json_object_set_new(native, "inpaint_fill", json_string(fills[fill]));
    json_object_set_new(native, "inpaint_full_res", json_integer(full_res));
    json_object_set_new(native, "inpaint_padding", json_integer(pad));
    json_object_set_new(native, "mask_invert", json_integer(invert));
    return 0;
}

/* init_images (the first is used: gesso's batches share one init image),
   denoising_strength, and a mask with its inpainting settings. */
static int read_img2img(reader *rd, json_t *native)
{
    json_t *imgs = member(rd->req, "init_images");
    if (!imgs)
        return refuse(rd, "init_images", "field required: img2img needs an init image",
                      "value_error.missing");
    if (!json_is_array(imgs) || json_array_size(imgs) == 0)
        return refuse(rd, "init_images", "must be a list of base64 images, at least one",
                      "type_error.list");
    if (!json_is_string(json_array_get(imgs, 0)))
        return refuse(rd, "init_images.0", "str type expected", "type_error.str");
    json_object_set(native, "init_image", json_array_get(imgs, 0));
    json_t *mask = member(rd->req, "mask");
    if (mask && !json_is_string(mask))
        return refuse(rd, "mask", "str type expected", "type_error.str");
    if (mask && json_string_length(mask) > 0 && read_inpaint(rd, native, mask))
        return -1;
    double strength;
    if (read_num(rd, rd->req, "denoising_strength", 0.75, &strength))
        return -1;
    json_object_set_new(native, "strength", json_real(strength));
    return 0;
}

/* The hires fix of a txt2img request (A1111's StableDiffusionProcessingTxt2Img
   fields and defaults: hr_scale 2, denoising_strength 0.75, hr_upscaler
   None = its latent_upscale_default_mode, "Latent"). Off unless enable_hr. */
static int read_hires(reader *rd, json_t *native)
{
    int enable;
    long steps, rx, ry;
    double scale, denoise;
    const char *upscaler;
    if (read_bool(rd, rd->req, "enable_hr", 0, &enable) ||
        read_num(rd, rd->req, "hr_scale", 2.0, &scale) ||
        read_int(rd, rd->req, "hr_second_pass_steps", 0, &steps) ||
        read_int(rd, rd->req, "hr_resize_x", 0, &rx) ||
        read_int(rd, rd->req, "hr_resize_y", 0, &ry) ||
        read_num(rd, rd->req, "denoising_strength", 0.75, &denoise) ||
        read_str(rd, rd->req, "hr_upscaler", &upscaler))
        return -1;
    if (!enable)
        return 0;
    gs_hires_upscaler up = GS_HIRES_LATENT;
    if (upscaler && gs_hires_upscaler_parse(upscaler, &up) != 0) {
        char msg[400];
        size_t n = (size_t)snprintf(msg, sizeof msg,
                                    "could not find upscaler named '%.64s'; known:", upscaler);
        for (int k = GS_HIRES_LATENT; k <= GS_HIRES_LANCZOS && n < sizeof msg; k++)
            n += (size_t)snprintf(msg + n, sizeof msg - n, "%s \"%s\"", k ? "," : "",
                                  gs_hires_upscaler_name((gs_hires_upscaler)k));
        return refuse(rd, "hr_upscaler", msg, "value_error.upscaler");
    }
    if (rx || ry) { /* A1111: a resize wins over the scale */
        json_object_set_new(native, "hires_width", json_integer(rx));
        json_object_set_new(native, "hires_height", json_integer(ry));
    } else {
        json_object_set_new(native, "hires_scale", json_real(scale));
    }
    json_object_set_new(native, "hires_steps", json_integer(steps));
    json_object_set_new(native, "hires_denoise", json_real(denoise));
    json_object_set_new(native, "hires_upscaler", json_string(gs_hires_upscaler_short_name(up)));
    return 0;
}

/* The request as A1111 echoes it in "parameters": its fields with the
   defaults of those it left out, the images dropped unless asked for. */
static json_t *echo(const json_t *req, int img2img, int include_init_images)
{
    json_t *p =
        json_pack("{s:s,s:s,s:i,s:i,s:i,s:i,s:i,s:f,s:i,s:i,s:n,s:n,s:o,s:b,s:b,s:o,s:n}", "prompt",
                  "", "negative_prompt", "", "seed", -1, "subseed", -1, "batch_size", 1, "n_iter",
                  1, "steps", DEFAULT_STEPS, "cfg_scale", 7.0, "width", 512, "height", 512,
                  "sampler_name", "scheduler", "override_settings", json_object(), "send_images", 1,
                  "save_images", 0, "alwayson_scripts", json_object(), "denoising_strength");
    if (!p)
        return NULL;
    if (img2img)
        json_object_set_new(p, "denoising_strength", json_real(0.75));
    json_object_update(p, (json_t *)req);
    if (img2img && !include_init_images) {
        json_object_set_new(p, "init_images", json_null());
        json_object_set_new(p, "mask", json_null());
    }
    return p;
}

int a1111_request_read(http_request *r, int img2img, a1111_job *job, enum MHD_Result *ret)
{
    memset(job, 0, sizeof *job);
    json_error_t jerr;
    reader rd = {r, NULL, ret};
    rd.req =
        json_u64_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, "seed", &job->seed, &jerr);
    if (!rd.req)
        return refuse(&rd, "", jerr.text, "value_error.jsondecode");
    json_t *native = json_object();
    const char *prompt, *negative;
    long steps, width, height, batch, n_iter;
    double cfg;
    int include_init = 0;
    int rc = -1;
    if (!json_is_object(rd.req)) {
        refuse(&rd, "", "value is not a valid dict", "type_error.dict");
        goto out;
    }
    if (read_str(&rd, rd.req, "prompt", &prompt) ||
        read_str(&rd, rd.req, "negative_prompt", &negative) ||
        read_int(&rd, rd.req, "steps", DEFAULT_STEPS, &steps) ||
        read_num(&rd, rd.req, "cfg_scale", 7.0, &cfg) ||
        read_int(&rd, rd.req, "width", 512, &width) ||
        read_int(&rd, rd.req, "height", 512, &height) ||
        read_int(&rd, rd.req, "batch_size", 1, &batch) ||
        read_int(&rd, rd.req, "n_iter", 1, &n_iter) ||
        read_bool(&rd, rd.req, "send_images", 1, &job->send_images) ||
        read_bool(&rd, rd.req, "include_init_images", 0, &include_init) ||
        read_sampler(&rd, native) || read_overrides(&rd, native) ||
        (img2img && read_img2img(&rd, native)) || (!img2img && read_hires(&rd, native)))
        goto out;
    int max_batch = r->s->o->limits.max_batch;
    if (batch < 1 || n_iter < 1 || batch > max_batch || n_iter > max_batch ||
        batch * n_iter > max_batch) { /* each bounded first: the product must not overflow */
        char msg[200];
        snprintf(msg, sizeof msg,
                 "batch_size x n_iter must be 1..%d (the images one request may ask for); got "
                 "%ld x %ld",
                 max_batch, batch, n_iter);
        refuse(&rd, batch < 1 || batch > max_batch ? "batch_size" : "n_iter", msg,
               "value_error.number");
        goto out;
    }
    json_t *seed = member(rd.req, "seed");
    if (job->seed.found &&
        (job->seed.overflow || (job->seed.negative && job->seed.magnitude != 1))) {
        refuse(&rd, "seed", "must be an integer in 0..18446744073709551615, or -1 for a random one",
               "value_error.number");
        goto out;
    }
    if (seed && !job->seed.found)
        json_object_set(native, "seed", seed); /* the spec reads reals and decimal strings */
    json_object_set_new(native, "prompt", json_string(prompt ? prompt : ""));
    json_object_set_new(native, "negative_prompt", json_string(negative ? negative : ""));
    json_object_set_new(native, "steps", json_integer(steps));
    json_object_set_new(native, "cfg_scale", json_real(cfg));
    json_t *eta = member(rd.req, "eta"); /* null or absent: opts.eta_ancestral, 1 */
    if (eta && !json_is_number(eta)) {
        refuse(&rd, "eta", "value is not a valid float", "type_error.float");
        goto out;
    }
    if (eta)
        json_object_set_new(native, "eta", json_real(json_number_value(eta)));
    json_object_set_new(native, "width", json_integer(width));
    json_object_set_new(native, "height", json_integer(height));
    json_object_set_new(native, "batch_size", json_integer(batch * n_iter));
    int every = a1111_option_int(r->s, "show_progress_every_n_steps", DEFAULT_PREVIEW_EVERY);
    json_object_set_new(native, "preview_every",
                        json_integer(every > 0 ? (every < 1000 ? every : 1000) : 0));
    job->parameters = echo(rd.req, img2img, include_init);
    if (job->seed.found && !job->seed.negative)
        json_object_del(job->parameters, "seed"); /* spliced back exactly (json_u64.h) */
    job->native = native;
    native = NULL;
    rc = 0;
out:
    json_decref(native);
    json_decref(rd.req);
    return rc;
}

void a1111_job_clear(a1111_job *job)
{
    json_decref(job->native);
    json_decref(job->parameters);
    memset(job, 0, sizeof *job);
}

const char *a1111_field_name(const char *native_field)
{
    static const char *const names[][2] = {
        {"model", "override_settings.sd_model_checkpoint"},
        {"clip_skip", "override_settings.CLIP_stop_at_last_layers"},
        {"strength", "denoising_strength"},
        {"init_image", "init_images.0"},
        {"sampler", "sampler_name"},
        {"mask_blur", "mask_blur"},
        {"inpaint_fill", "inpainting_fill"},
        {"inpaint_full_res", "inpaint_full_res"},
        {"inpaint_padding", "inpaint_full_res_padding"},
        {"mask_invert", "inpainting_mask_invert"},
        {"hires_scale", "hr_scale"},
        {"hires_width", "hr_resize_x"},
        {"hires_height", "hr_resize_y"},
        {"hires_steps", "hr_second_pass_steps"},
        {"hires_denoise", "denoising_strength"},
        {"hires_upscaler", "hr_upscaler"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(native_field, names[i][0]) == 0)
            return names[i][1];
    return native_field;
}
