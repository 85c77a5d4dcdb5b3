/* model_ref - the model reference read with jansson; missing models downloaded. */
#include "horde/model_ref.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "gesso.h"
#include "horde/download.h"
#include "horde/payload.h"
#include "support/log.h"

/* The reference's baselines gesso's engine has families for (family.c). */
static const struct {
    const char *baseline, *family;
} baselines[] = {
    {"stable diffusion 1", "sd1"},
    {"stable diffusion 2", "sd2"},
    {"stable diffusion 2 512", "sd2"},
    {"stable_diffusion_xl", "sdxl"},
};

static int is_url(const char *s)
{
    return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

json_t *horde_model_ref_load(const char *where, const char *cache_dir, char *err, size_t err_size)
{
    if (!where || !where[0])
        where = HORDE_MODEL_REFERENCE_URL;
    char path[1024];
    snprintf(path, sizeof path, "%s", where);
    if (is_url(where)) {
        snprintf(path, sizeof path, "%s/stable_diffusion.json", cache_dir);
        horde_mkdir_p(cache_dir);
        horde_dl_options o = {.tries = 3, .quiet = 1};
        char why[512];
        if (horde_download(where, path, &o, why, sizeof why) != HORDE_DL_OK) {
            if (access(path, R_OK) != 0) {
                snprintf(err, err_size, "model reference %s: %s", where, why);
                return NULL;
            }
            log_warn("model reference %s: %s; using the copy in %s", where, why, path);
        }
    }
    json_error_t je;
    json_t *ref = json_load_file(path, 0, &je);
    if (!ref) {
        snprintf(err, err_size, "model reference %s: line %d: %s", path, je.line, je.text);
        return NULL;
    }
    if (!json_is_object(ref)) {
        snprintf(err, err_size, "model reference %s: not a JSON object of models", path);
        json_decref(ref);
        return NULL;
    }
    return ref;
}

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && strcasecmp(s + a - b, tail) == 0;
}

int horde_model_ref_find(const json_t *ref, const char *name, horde_ref_entry *e, char *why,
                         size_t why_size)
{
    memset(e, 0, sizeof *e);
    const json_t *m = json_object_get(ref, name);
    if (!json_is_object(m)) {
        snprintf(why, why_size, "not in the model reference");
        return -1;
    }
    const char *baseline = json_string_value(json_object_get(m, "baseline"));
    for (size_t i = 0; baseline && i < sizeof baselines / sizeof baselines[0]; i++)
        if (strcmp(baseline, baselines[i].baseline) == 0)
            snprintf(e->family, sizeof e->family, "%s", baselines[i].family);
    if (!e->family[0]) {
        snprintf(why, why_size, "baseline '%s' is not a family gesso runs (sd1, sd2, sdxl)",
                 baseline ? baseline : "(none)");
        return -1;
    }
    const json_t *cfg = json_object_get(m, "config");
    const json_t *dl = json_object_get(cfg, "download");
    const char *ckpt = NULL;
    for (size_t i = 0; i < json_array_size(dl); i++) {
        const json_t *d = json_array_get(dl, i);
        const char *fn = json_string_value(json_object_get(d, "file_name"));
        const char *url = json_string_value(json_object_get(d, "file_url"));
        if (!fn || !url)
            continue;
        if (!ends_with(fn, ".safetensors")) {
            ckpt = fn;
            continue;
        }
        snprintf(e->file_name, sizeof e->file_name, "%s", fn);
        snprintf(e->url, sizeof e->url, "%s", url);
        break;
    }
    if (!e->url[0]) {
        if (ckpt)
            snprintf(why, why_size,
                     "the reference has it only as a pickle (%s), which gesso "
                     "does not load",
                     ckpt);
        else
            snprintf(why, why_size, "the reference gives no download");
        return -1;
    }
    const json_t *files = json_object_get(cfg, "files");
    for (size_t i = 0; i < json_array_size(files); i++) {
        const json_t *f = json_array_get(files, i);
        const char *p = json_string_value(json_object_get(f, "path"));
        const char *sha = json_string_value(json_object_get(f, "sha256sum"));
        if (p && sha && strcmp(p, e->file_name) == 0 && strlen(sha) == 64)
            snprintf(e->sha256, sizeof e->sha256, "%s", sha);
    }
    json_t *size = json_object_get(m, "size_on_disk_bytes");
    e->size = json_is_integer(size) ? (long long)json_integer_value(size) : 0;
    return 0;
}

/* Bytes that may still be written under dir, keeping reserve free. */
static long long disk_room(const char *dir, long long reserve)
{
    struct statvfs sv;
    if (statvfs(dir, &sv) != 0)
        return -1;
    long long free_b = (long long)sv.f_bavail * (long long)sv.f_frsize;
    return free_b > reserve ? free_b - reserve : 0;
}

int horde_models_resolve(const char *const *names, int n, const horde_models_options *o,
                         const char **served)
{
    json_t *ref = NULL;
    int ref_failed = 0, n_served = 0;
    long long spent = 0;
    long long reserve = o->reserve > 0 ? o->reserve : 1LL << 30;
    for (int i = 0; i < n; i++) {
        char stem[256], path[1024], why[1024];
        horde_model_stem(names[i], stem, sizeof stem);
        snprintf(path, sizeof path, "%s/%s.safetensors", o->models_dir, stem);
        if (access(path, R_OK) == 0) { /* on disk: no reference, no network */
            served[n_served++] = names[i];
            continue;
        }
        if (o->stop && *o->stop)
            break;
        if (!ref && !ref_failed) {
            const char *cache = o->cache_dir && o->cache_dir[0] ? o->cache_dir : o->models_dir;
            ref = horde_model_ref_load(o->reference, cache, why, sizeof why);
            if (!ref) {
                log_error("%s: models not on disk cannot be downloaded", why);
                ref_failed = 1;
            }
        }
        if (!ref) {
            log_warn("model '%s' is not on disk (%s): not offered", names[i], path);
            continue;
        }
        horde_ref_entry e;
        if (horde_model_ref_find(ref, names[i], &e, why, sizeof why) != 0) {
            log_warn("model '%s' is not on disk and %s: not offered", names[i], why);
            continue;
        }
        horde_mkdir_p(o->models_dir);
        long long room = disk_room(o->models_dir, reserve);
        /* the smaller of what the budget has left and the free disk space */
        int limited = o->budget > 0 || room >= 0;
        long long budget = o->budget > 0 ? o->budget - spent : room;
        if (room >= 0 && room < budget)
            budget = room;
        if (limited && budget <= 0) {
            log_warn("model '%s' is not on disk and the download budget or the disk has no room "
                     "left: not offered",
                     names[i]);
            continue;
        }
        log_info("model '%s' (%s) is not on disk: downloading %s into %s", names[i], e.family,
                 e.url, path);
        horde_dl_options dl = {.budget = limited ? budget : 0,
                               .size = e.size,
                               .sha256 = e.sha256,
                               .tries = o->tries,
                               .backoff_ms = o->backoff_ms,
                               .stop = o->stop};
        horde_dl_result r = horde_download(e.url, path, &dl, why, sizeof why);
        if (r != HORDE_DL_OK) {
            log_warn("model '%s': download failed (%s): not offered", names[i], why);
            continue;
        }
        if (!e.sha256[0])
            log_warn("model '%s': the reference has no sha256 for %s: not verified", names[i],
                     e.file_name);
        /* the header says what the engine will make of it: a file it cannot
           run is not kept (it would be served unchecked from disk next time) */
        gs_checkpoint_info ci;
        gs_status gst = gs_checkpoint_inspect(path, &ci, why, sizeof why);
        if (gst != GS_OK || ci.family == GS_FAMILY_UNKNOWN) {
            log_warn("model '%s': the downloaded file is not a checkpoint gesso runs (%s): "
                     "deleted, not offered",
                     names[i], gst != GS_OK ? why : "a layout of no known family");
            unlink(path);
            continue;
        }
        if (strncmp(ci.family_name, e.family, strlen(e.family)) != 0)
            log_warn("model '%s': the reference says %s, the file is %s: run as %s", names[i],
                     e.family, ci.family_name, ci.family_name);
        struct stat st;
        spent += stat(path, &st) == 0 ? (long long)st.st_size : 0;
        served[n_served++] = names[i];
    }
    json_decref(ref);
    return n_served;
}
