/* child - one engine, one model cache, one job at a time. */
#include "horde/child.h"

#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "horde/frame.h"
#include "job/job_loras.h"
#include "job/job_spec.h"
#include "support/log.h"
#include "worker/model_cache.h"

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int reply_error(const char *msg)
{
    json_t *o = json_pack("{s:b,s:s}", "ok", 0, "error", msg);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int rc = s ? horde_frame_write(1, s, strlen(s)) : -1;
    free(s);
    return rc;
}

/* The seed of image i: its infotext's "Seed: N" (batch images count up from
   the job's seed as A1111's do), the result's seed when there is none. */
static uint64_t image_seed(const gs_result *res, int i)
{
    const char *t = gs_result_infotext(res, i);
    const char *p = t ? strstr(t, "Seed: ") : NULL;
    return p ? strtoull(p + 6, NULL, 10) : gs_result_seed(res);
}

/* What the bridge paces its pops by (bridge.c): the seconds spent in the
   sampler's steps, how many step rounds ran, and the whole generation's
   seconds (text encoding and VAE decoding besides the steps; model loading
   is outside it). */
typedef struct timing {
    double sample_s, total_s;
    int steps;
} timing;

static int on_step(const gs_progress *pr, void *user)
{
    timing *t = user;
    t->sample_s = pr->elapsed_s;
    t->steps = pr->step;
    return 0;
}

/* The image safety check of the child: loaded once at start, its failure kept
   so every job says why it cannot run instead of passing unchecked images. */
typedef struct child_safety {
    gs_safety *s; /* NULL: none configured, or it failed (then why is set) */
    char why[512];
} child_safety;

static void safety_start(gs_engine *eng, const char *path, child_safety *cs)
{
    if (!path)
        return;
    int64_t t0 = now_ms();
    if (gs_safety_load(eng, path, &cs->s) != GS_OK) {
        snprintf(cs->why, sizeof cs->why, "the image safety check cannot start: %s",
                 gs_engine_errmsg(eng));
        log_error("%s", cs->why);
        return;
    }
    log_info("image safety check ready (%s, %.1f s)", path, (double)(now_ms() - t0) / 1000.0);
    /* tests steer a random CLIP's decision (with the tests' GESSO_HORDE_FAST);
       no configuration key reaches this */
    const char *shift = getenv("GESSO_HORDE_NSFW_TEST_SHIFT"), *fast = getenv("GESSO_HORDE_FAST");
    if (shift && fast && strcmp(fast, "1") == 0) {
        char *end;
        double other = strtod(shift, &end);
        double underage = *end == ',' ? strtod(end + 1, NULL) : other;
        gs_safety_test_shift(cs->s, other, underage);
    }
}

/* nsfw/csam [n] of the result's images; -1 with why when the check fails. */
static int check_images(gs_engine *eng, const child_safety *cs, const gs_result *res,
                        const char *negative_prompt, int *nsfw, int *csam, char *why,
                        size_t why_size)
{
    for (int i = 0; i < gs_result_count(res) && i < HORDE_CHILD_MAX_IMAGES; i++) {
        gs_safety_result r;
        if (gs_safety_check(eng, cs->s, gs_result_image(res, i), negative_prompt, &r) != GS_OK) {
            snprintf(why, why_size, "the image safety check failed: %s", gs_engine_errmsg(eng));
            return -1;
        }
        nsfw[i] = r.is_nsfw;
        csam[i] = r.is_csam;
        if (r.is_nsfw || r.is_csam)
            log_info("image %d: nsfw %d, csam %d (anime %d, underage %d)", i, r.is_nsfw, r.is_csam,
                     r.is_anime, r.is_underage);
    }
    return 0;
}

/* flags [n] as a JSON array of booleans. */
static json_t *bool_array(const int *flags, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n && a; i++)
        json_array_append_new(a, json_boolean(flags[i]));
    return a;
}

int horde_encode_webps(const gs_image *const *im, int n, unsigned char **webp, size_t *len)
{
    for (int i = 0; i < n; i++)
        webp[i] = NULL;
    for (int i = 0; i < n; i++) {
        char msg[160];
        /* lossless: what is uploaded is exactly what the engine made */
        if (gs_image_encode_webp(im[i], 100, &webp[i], &len[i], msg, sizeof msg) != GS_OK) {
            for (int j = 0; j < i; j++) { /* the ones encoded before it */
                free(webp[j]);
                webp[j] = NULL;
            }
            webp[i] = NULL;
            return -1;
        }
    }
    return 0;
}

/* nsfw, csam: the safety check's flags per image, or NULL when there is no check. */
static int reply_images(const gs_result *res, const timing *t, const int *nsfw, const int *csam)
{
    int n = gs_result_count(res);
    const gs_image *im[HORDE_CHILD_MAX_IMAGES];
    unsigned char *webp[HORDE_CHILD_MAX_IMAGES] = {0};
    size_t len[HORDE_CHILD_MAX_IMAGES];
    if (n > HORDE_CHILD_MAX_IMAGES)
        return reply_error("more images than the bridge takes");
    for (int i = 0; i < n; i++)
        im[i] = gs_result_image(res, i);
    if (horde_encode_webps(im, n, webp, len) != 0)
        return reply_error("the image could not be encoded as WebP");
    json_t *seeds = json_array();
    for (int i = 0; seeds && i < n; i++)
        json_array_append_new(seeds, json_integer((json_int_t)image_seed(res, i)));
    json_t *o = seeds ? json_pack("{s:b,s:O,s:f,s:f,s:i}", "ok", 1, "seeds", seeds, "sample_s",
                                  t->sample_s, "total_s", t->total_s, "steps", t->steps)
                      : NULL;
    if (o && nsfw) {
        json_object_set_new(o, "nsfw", bool_array(nsfw, n));
        json_object_set_new(o, "csam", bool_array(csam, n));
    }
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int rc = s ? horde_frame_write(1, s, strlen(s)) : -1;
    free(s);
    for (int i = 0; i < n && rc == 0; i++)
        rc = horde_frame_write(1, webp[i], len[i]);
    for (int i = 0; i < n; i++)
        free(webp[i]);
    json_decref(seeds);
    return rc;
}

static int run_one(gs_engine *eng, model_cache *cache, const child_safety *cs, const char *lora_dir,
                   const char *json, size_t len)
{
    int nsfw[HORDE_CHILD_MAX_IMAGES] = {0}, csam[HORDE_CHILD_MAX_IMAGES] = {0};
    job_lora_params lp;
    job_spec spec;
    job_error e;
    gs_params p;
    gs_image *init = NULL, *mask = NULL;
    gs_result *res = NULL;
    char msg[512] = "";
    timing tm = {0, 0, 0};
    if (job_spec_init(&spec) != 0)
        return reply_error("out of memory");
    if (cs->why[0])
        snprintf(msg, sizeof msg, "%s", cs->why);
    else if (job_spec_from_json(&spec, json, len, NULL, &e) != 0)
        snprintf(msg, sizeof msg, "the job does not read: %s", e.message);
    else if (job_spec_to_params(&spec, &p, &init) != 0)
        snprintf(msg, sizeof msg, "the source image does not decode");
    else if (job_spec_mask_to_params(&spec, &p, &mask) != 0)
        snprintf(msg, sizeof msg, "the mask does not decode");
    else if (spec.loras.n > 0) /* fetched into lora_dir by the bridge (lora_cache.h) */
        job_loras_params(&spec.loras, lora_dir, &lp, &p);
    if (!msg[0]) {
        gs_model *model = NULL;
        if (model_cache_acquire(cache, spec.model, now_ms(), &model, msg, sizeof msg) == GS_OK) {
            int64_t t0 = now_ms();
            gs_status st = gs_generate(eng, model, &p, on_step, &tm, &res);
            tm.total_s = (double)(now_ms() - t0) / 1000.0;
            if (st != GS_OK)
                snprintf(msg, sizeof msg, "%s", gs_engine_errmsg(eng));
            model_cache_release(cache, model, now_ms());
            /* every image is checked before it leaves the child (reGen: the safety process) */
            if (!msg[0] && cs->s)
                check_images(eng, cs, res, spec.negative_prompt, nsfw, csam, msg, sizeof msg);
        }
    }
    int rc = msg[0] ? reply_error(msg) : reply_images(res, &tm, cs->s ? nsfw : NULL, csam);
    gs_result_free(res);
    gs_image_free(init);
    gs_image_free(mask);
    job_spec_clear(&spec);
    return rc;
}

int horde_child_run(const horde_child_options *o)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive the bridge */
    if (getppid() == 1)
        return 1;
    /* the bridge decides when a job stops: a terminal's Ctrl-C reaches the
       whole process group, and must not kill the job the bridge finishes */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = o->threads;
    eo.precision = o->precision;
    gs_engine *eng = NULL;
    if (gs_engine_create(&eo, &eng) != GS_OK) {
        log_error("cannot start the engine");
        return 1;
    }
    model_cache_options co = {.models_dir = o->models_dir};
    model_cache *cache = model_cache_create(eng, &co);
    int code = cache ? 0 : 1;
    child_safety cs = {0};
    if (cache)
        safety_start(eng, o->safety_clip, &cs);
    while (cache) {
        unsigned char *msg;
        size_t len;
        if (horde_frame_read(0, &msg, &len, -1, NULL) != 0)
            break; /* the bridge closed the pipe: stop */
        int rc = run_one(eng, cache, &cs, o->lora_dir, (const char *)msg, len);
        free(msg);
        if (rc != 0)
            break;
    }
    gs_safety_free(cs.s);
    model_cache_free(cache);
    gs_engine_free(eng);
    return code;
}
