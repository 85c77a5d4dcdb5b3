/*
 * a1111_info - the read-only routes A1111's clients call on connect or to
 * fill their menus (upscalers, VAEs, LoRAs, embeddings, scripts, memory,
 * flags), and PNG Info. Where gesso has nothing of the kind the answer is
 * A1111's empty shape, never an error: SillyTavern and webuiapi give up on
 * a server whose probe fails.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/a1111.h"
#include "api/infotext_parse.h"
#include "api/png_text.h"
#include "job/base64.h"

enum MHD_Result a1111_empty_list(http_request *r)
{
    return http_reply_json(r, 200, json_array(), NULL);
}

/* The hires fix's latent upscalers, as A1111 lists shared.latent_upscale_modes. */
enum MHD_Result a1111_latent_upscale_modes(http_request *r)
{
    json_t *list = json_array();
    for (int k = GS_HIRES_LATENT; list && k <= GS_HIRES_LATENT_NEAREST_EXACT; k++)
        json_array_append_new(
            list, json_pack("{s:s}", "name", gs_hires_upscaler_name((gs_hires_upscaler)k)));
    return http_reply_json(r, 200, list, NULL);
}

/* The image upscalers hr_upscaler takes besides the latent ones: Lanczos (no models). */
enum MHD_Result a1111_upscalers(http_request *r)
{
    return http_reply_json(r, 200,
                           json_pack("[{s:s,s:n,s:n,s:n,s:i}]", "name", "Lanczos", "model_name",
                                     "model_path", "model_url", "scale", 4),
                           NULL);
}

enum MHD_Result a1111_embeddings(http_request *r)
{
    return http_reply_json(r, 200, json_pack("{s:{},s:{}}", "loaded", "skipped"), NULL);
}

enum MHD_Result a1111_scripts(http_request *r)
{
    return http_reply_json(r, 200, json_pack("{s:[],s:[]}", "txt2img", "img2img"), NULL);
}

/* Refreshes and reloads: gesso reads the models directory on every call and
   its workers load models on demand, so there is nothing to do. */
enum MHD_Result a1111_nothing(http_request *r)
{
    return http_reply_json(r, 200, json_object(), NULL);
}

/* The server process's resident memory, as A1111 reports its own; the
   workers, which hold the models, are separate processes. */
enum MHD_Result a1111_memory(http_request *r)
{
    long page = sysconf(_SC_PAGESIZE), pages = sysconf(_SC_PHYS_PAGES);
    json_int_t total = (json_int_t)page * pages, used = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    if (f && fscanf(f, "%lu %lu", &size, &resident) == 2)
        used = (json_int_t)resident * page;
    if (f)
        fclose(f);
    return http_reply_json(r, 200,
                           json_pack("{s:{s:I,s:I,s:I},s:{s:s}}", "ram", "free", total - used,
                                     "used", used, "total", total, "cuda", "error", "unavailable"),
                           NULL);
}

enum MHD_Result a1111_cmd_flags(http_request *r)
{
    const serve_options *o = r->s->o;
    return http_reply_json(r, 200,
                           json_pack("{s:b,s:b,s:s,s:o,s:b}", "api", 1, "nowebui", 1, "ckpt_dir",
                                     o->models_dir, "api_auth",
                                     server_keys_on(r->s) ? json_string("<api keys>") : json_null(),
                                     "skip_version_check", 1),
                           NULL);
}

/* ---- PNG Info ---- */

static int is_image(const unsigned char *d, size_t n)
{
    return png_is_png(d, n) || (n >= 3 && d[0] == 0xff && d[1] == 0xd8 && d[2] == 0xff) ||
           (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0);
}

enum MHD_Result a1111_png_info(http_request *r)
{
    json_t *req = json_loadb(r->body, r->body_len, 0, NULL);
    json_t *image = json_object_get(req, "image");
    if (!json_is_object(req) || !json_is_string(image)) {
        json_decref(req);
        return a1111_invalid(r, "image", "field required: a base64 image", "value_error.missing");
    }
    size_t n = 0;
    unsigned char *bytes = base64_decode(json_string_value(image), r->s->o->limits.max_image, &n);
    json_decref(req);
    if (!bytes || !is_image(bytes, n)) {
        free(bytes);
        return a1111_invalid(r, "image", "Invalid encoded image: not base64 of a PNG, JPEG or WebP",
                             "value_error.image");
    }
    json_t *items = png_text_chunks(bytes, n);
    free(bytes);
    json_t *params = json_object_get(items, "parameters");
    char *info = strdup(params ? json_string_value(params) : "");
    json_object_del(items, "parameters");
    json_t *reply = json_pack("{s:s,s:o,s:o}", "info", info ? info : "", "items", items,
                              "parameters", info && info[0] ? infotext_parse(info) : json_object());
    free(info);
    return http_reply_json(r, 200, reply, NULL);
}
