/*
 * a1111_reply - A1111's answer to txt2img/img2img: {"images": [base64 PNG],
 * "parameters": the request, "info": a JSON *string*} where info says what
 * ran (A1111's Processed.js(): seed, all_seeds, prompts, sizes, sampler,
 * infotexts...). It is built from what the job store holds, the stored spec
 * and result, and the PNGs, whose "parameters" chunk is each image's
 * infotext as the engine wrote it. Seeds run to 2^64-1, past jansson's
 * integers, so they are written as digits into the text (json_u64.h).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/a1111.h"
#include "api/png_text.h"
#include "job/base64.h"

#define MAX_PNG ((size_t)256 << 20)

/* "{\"seed\":S,\"all_seeds\":[S x n]," spliced before the members of text
   (an object's JSON with at least one member); malloc'd. */
static char *with_seeds(const char *text, uint64_t seed, int n)
{
    size_t size = strlen(text) + 64 + (size_t)n * 22;
    char *out = malloc(size);
    if (!out)
        return NULL;
    size_t k = (size_t)snprintf(out, size, "{\"seed\":%" PRIu64 ",\"all_seeds\":[", seed);
    for (int i = 0; i < n; i++)
        k += (size_t)snprintf(out + k, size - k, "%s%" PRIu64, i ? "," : "", seed);
    snprintf(out + k, size - k, "],%s", text + 1);
    return out;
}

/* n copies of v (taken) in an array. */
static json_t *repeated(json_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append(a, v);
    json_decref(v);
    return a;
}

/* The job's images as base64 (when sent) and their infotexts. */
static void read_images(server *s, const job_record *rec, const json_t *result, int send,
                        json_t *images, json_t *infotexts)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(result, "images"), i, v)
    {
        unsigned char *png = NULL;
        size_t n = 0;
        svc_error err = {0};
        if (blob_get(s->blobs, rec->id, BLOB_IMAGE, (int)json_integer_value(v), MAX_PNG, &png, &n,
                     &err) != GS_OK)
            continue; /* purged under us: the reply says what is left */
        json_t *chunks = png_text_chunks(png, n);
        json_t *text = json_object_get(chunks, "parameters");
        json_array_append_new(infotexts, json_string(text ? json_string_value(text) : ""));
        json_decref(chunks);
        char *b64 = send ? base64_encode(png, n) : NULL;
        if (b64)
            json_array_append_new(images, json_string(b64));
        free(b64);
        free(png);
    }
}

/* A1111's info object, without its seeds, for the stored spec; takes
   infotexts. */
static json_t *info_object(server *s, const job_record *rec, const json_t *spec, int n_images,
                           json_t *infotexts, int img2img)
{
    const char *prompt = json_string_value(json_object_get(spec, "prompt"));
    const char *negative = json_string_value(json_object_get(spec, "negative_prompt"));
    const char *sampler = json_string_value(json_object_get(spec, "sampler"));
    char title[400], stamp[32] = "";
    a1111_model_title(s, rec->model, title, sizeof title);
    const char *hash = strchr(title, '[');
    char shorthash[11] = "";
    if (hash)
        snprintf(shorthash, sizeof shorthash, "%.10s", hash + 1);
    time_t t = (time_t)((rec->started_ms ? rec->started_ms : rec->created_ms) / 1000);
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    json_t *info = json_object();
    json_object_set_new(info, "prompt", json_string(prompt ? prompt : ""));
    json_object_set_new(info, "all_prompts", repeated(json_string(prompt ? prompt : ""), n_images));
    json_object_set_new(info, "negative_prompt", json_string(negative ? negative : ""));
    json_object_set_new(info, "all_negative_prompts",
                        repeated(json_string(negative ? negative : ""), n_images));
    json_object_set_new(info, "subseed", json_integer(-1));
    json_object_set_new(info, "all_subseeds", repeated(json_integer(-1), n_images));
    json_object_set_new(info, "subseed_strength", json_integer(0));
    json_object_set(info, "width", json_object_get(spec, "width"));
    json_object_set(info, "height", json_object_get(spec, "height"));
    json_object_set_new(info, "sampler_name",
                        json_string(a1111_sampler_label(sampler ? sampler : "")));
    json_object_set(info, "cfg_scale", json_object_get(spec, "cfg_scale"));
    json_object_set(info, "steps", json_object_get(spec, "steps"));
    json_object_set(info, "batch_size", json_object_get(spec, "batch_size"));
    json_object_set_new(info, "restore_faces", json_false());
    json_object_set_new(info, "face_restoration_model", json_null());
    json_object_set_new(info, "sd_model_name", json_string(rec->model));
    json_object_set_new(info, "sd_model_hash", shorthash[0] ? json_string(shorthash) : json_null());
    json_object_set_new(info, "sd_vae_name", json_null());
    json_object_set_new(info, "sd_vae_hash", json_null());
    json_object_set_new(info, "seed_resize_from_w", json_integer(-1));
    json_object_set_new(info, "seed_resize_from_h", json_integer(-1));
    json_object_set(info, "denoising_strength",
                    img2img ? json_object_get(spec, "strength") : json_null());
    json_object_set_new(info, "extra_generation_params", json_object());
    json_object_set_new(info, "index_of_first_image", json_integer(0));
    json_object_set_new(info, "infotexts", infotexts);
    json_object_set_new(info, "styles", json_array());
    json_object_set_new(info, "job_timestamp", json_string(stamp));
    json_object_set(info, "clip_skip", json_object_get(spec, "clip_skip"));
    json_object_set_new(info, "is_using_inpainting_conditioning", json_false());
    json_object_set_new(info, "version", json_string("gesso " GESSO_VERSION));
    json_object_set_new(info, "job_id", json_string(rec->id));
    return info;
}

char *a1111_reply_text(server *s, const job_record *rec, const json_t *parameters,
                       const json_int_literal *sent_seed, int send_images, int img2img)
{
    json_int_literal seed_lit = {0};
    json_t *spec = json_u64_loadb(rec->params, strlen(rec->params), 0, "seed", &seed_lit, NULL);
    json_t *result =
        rec->result ? json_u64_loadb(rec->result, strlen(rec->result), 0, NULL, NULL, NULL) : NULL;
    uint64_t seed = 0, sent = 0;
    json_int_literal_u64(&seed_lit, &seed);
    json_t *images = json_array(), *infotexts = json_array();
    if (rec->status == JOB_SUCCEEDED)
        read_images(s, rec, result, send_images, images, infotexts);
    int n = rec->status == JOB_SUCCEEDED ? (int)json_array_size(infotexts) : 0;
    json_t *info = NULL;
    if (spec)
        info = info_object(s, rec, spec, n, infotexts, img2img); /* takes infotexts */
    else
        json_decref(infotexts);
    char *info_obj = info ? json_dumps(info, HTTP_JSON_FLAGS) : NULL;
    char *info_text = info_obj ? with_seeds(info_obj, seed, n) : NULL;
    json_t *info_str = info_text ? json_string(info_text) : NULL;
    char *info_json = info_str ? json_dumps(info_str, HTTP_JSON_FLAGS | JSON_ENCODE_ANY) : NULL;
    char *params_json = json_int_literal_u64(sent_seed, &sent) && !sent_seed->negative
                            ? json_u64_dumps(parameters, HTTP_JSON_FLAGS, "seed", sent)
                            : json_dumps(parameters, HTTP_JSON_FLAGS);
    char *images_json = json_dumps(images, HTTP_JSON_FLAGS);
    char *out = NULL;
    if (info_json && params_json && images_json) {
        size_t size = strlen(info_json) + strlen(params_json) + strlen(images_json) + 64;
        if ((out = malloc(size)))
            snprintf(out, size, "{\"images\":%s,\"parameters\":%s,\"info\":%s}", images_json,
                     params_json, info_json);
    }
    free(images_json);
    free(params_json);
    free(info_json);
    json_decref(info_str);
    free(info_text);
    free(info_obj);
    json_decref(info);
    json_decref(images);
    json_decref(result);
    json_decref(spec);
    return out;
}
