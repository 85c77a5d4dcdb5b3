/* lora_select - gs_params' LoRAs and prompt tags -> the set folded into the model. */
#include "pipeline/lora_select.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/alloc.h"
#include "model/lora_apply.h"
#include "text/lora_tags.h"

#define HASH_CACHE 32 /* files whose hash is remembered, by identity */
#define MAX_LORAS 64

struct lora_cache {
    lora_applied *applied; /* layers the folded set changed */
    char *key;             /* identity of the folded set; NULL: fold again */
    struct {
        char id[96];
        char hash[13];
    } hashes[HASH_CACHE];
    int n_hashes, next_hash;
};

typedef struct entry {
    char path[PATH_MAX];
    char label[256]; /* A1111's "mentioned name" */
    char id[96];     /* device, inode, size, mtime: the file's identity */
    float te, unet;
    lora_file *file;
} entry;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void lora_cache_free(lora_cache *c)
{
    if (!c)
        return;
    lora_applied_free(c->applied);
    gi_free(c->key);
    gi_free(c);
}

void lora_select_forget(gs_model *m)
{
    /* the applied list stays: restoring a reloaded layer to its base is harmless,
       and a network not reloaded may still hold the old deltas */
    if (m->lora) {
        gi_free(m->lora->key);
        m->lora->key = NULL;
    }
}

void lora_request_free(lora_request *r)
{
    gi_free(r->prompt);
    gi_free(r->hashes);
    gi_free(r->warnings);
    memset(r, 0, sizeof *r);
}

/* The file name without folders and extension (the explicit list's label). */
static void label_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    snprintf(out, n, "%s", slash ? slash + 1 : path);
    char *dot = strrchr(out, '.');
    if (dot && dot != out)
        *dot = '\0';
}

static gs_status identify(entry *e, gi_error *err)
{
    struct stat sb;
    if (stat(e->path, &sb) != 0)
        return gi_fail(err, GS_ERR_IO, "LoRA %s: %s", e->path, strerror(errno));
    if (!S_ISREG(sb.st_mode))
        return gi_fail(err, GS_ERR_IO, "LoRA %s: not a regular file", e->path);
    snprintf(e->id, sizeof e->id, "%llx:%llx:%lld:%lld.%09ld", (unsigned long long)sb.st_dev,
             (unsigned long long)sb.st_ino, (long long)sb.st_size, (long long)sb.st_mtim.tv_sec,
             (long)sb.st_mtim.tv_nsec);
    return GS_OK;
}

/* A prompt tag's name as a file in dir: names only, no folders. */
static gs_status tag_path(const gs_params *p, const lora_tag *t, entry *e, gi_error *err)
{
    if (!p->lora_dir || !*p->lora_dir)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "the prompt asks for LoRA '%s' but no LoRA folder is set", t->name);
    if (strchr(t->name, '/') || strchr(t->name, '\\') || strstr(t->name, "..") || t->name[0] == '.')
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT,
                       "LoRA name '%s': a name, not a path (no '/', '\\\\' or '..')", t->name);
    int n = snprintf(e->path, sizeof e->path, "%s/%s.safetensors", p->lora_dir, t->name);
    if (n < 0 || (size_t)n >= sizeof e->path)
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "LoRA name '%s' is too long", t->name);
    snprintf(e->label, sizeof e->label, "%s", t->name);
    e->te = t->te;
    e->unet = t->unet;
    return GS_OK;
}

/* The list's entries, then the tags' (*n of them kept): a tag naming no file
   (or with no folder to look in) fails when strict, else is left out and
   noted in missing (A1111 goes on without it too). */
static gs_status collect(const gs_params *p, const lora_tag *tags, int nt, entry *es, int *n,
                         char *missing, size_t missing_size, gi_error *err)
{
    for (int i = 0; i < p->n_loras; i++) {
        const gs_lora *l = &p->loras[i];
        entry *e = &es[i];
        if (!l->path || !*l->path)
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "LoRA %d has no path", i);
        if (!isfinite(l->te_weight) || !isfinite(l->unet_weight))
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "LoRA %s: a weight is not finite",
                           l->path);
        if (snprintf(e->path, sizeof e->path, "%s", l->path) >= (int)sizeof e->path)
            return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "LoRA path too long");
        label_of(l->path, e->label, sizeof e->label);
        e->te = l->te_weight;
        e->unet = l->unet_weight;
        gs_status st = identify(e, err);
        if (st != GS_OK)
            return st;
    }
    *n = p->n_loras;
    for (int i = 0; i < nt; i++) {
        entry *e = &es[*n];
        gi_error why = {0};
        gs_status st = tag_path(p, &tags[i], e, &why);
        if (st == GS_ERR_INVALID_ARGUMENT && p->lora_dir && *p->lora_dir) {
            *err = why; /* a path where a name belongs: refused, strict or not */
            return st;
        }
        if (st == GS_OK)
            st = identify(e, &why);
        if (st == GS_OK) {
            (*n)++;
            continue;
        }
        if (p->lora_strict) {
            *err = why;
            return st;
        }
        size_t used = strlen(missing);
        snprintf(missing + used, missing_size - used, "%s%s", used ? "; " : "", why.msg);
    }
    return GS_OK;
}

/* The set's identity: files, multipliers, strictness. */
static char *set_key(const entry *es, int n, int strict)
{
    if (n < 0 || n > MAX_LORAS)
        return NULL;
    size_t cap = 16 + (size_t)n * 160, o = 0;
    char *k = gi_malloc(cap);
    if (!k)
        return NULL;
    o += (size_t)snprintf(k, cap, "%d;", strict != 0);
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(k + o, cap - o, "%s|%a|%a;", es[i].id, (double)es[i].te,
                              (double)es[i].unet);
    return k;
}

static const char *cached_hash(lora_cache *c, const entry *e)
{
    for (int i = 0; i < c->n_hashes; i++)
        if (strcmp(c->hashes[i].id, e->id) == 0)
            return c->hashes[i].hash;
    if (!e->file)
        return NULL;
    char full[65];
    lora_file_hash(e->file, full);
    int slot = c->n_hashes < HASH_CACHE ? c->n_hashes++ : (c->next_hash++ % HASH_CACHE);
    snprintf(c->hashes[slot].id, sizeof c->hashes[slot].id, "%s", e->id);
    snprintf(c->hashes[slot].hash, sizeof c->hashes[slot].hash, "%.12s", full);
    return c->hashes[slot].hash;
}

/* "name: hash, ..." as A1111 writes it (names without ':' and ','; a name once). */
static char *hashes_text(lora_cache *c, const entry *es, int n)
{
    size_t cap = 1 + (size_t)n * 280, o = 0;
    char *s = gi_malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        char name[256];
        size_t k = 0;
        for (const char *p = es[i].label; *p && k + 1 < sizeof name; p++)
            if (*p != ':' && *p != ',')
                name[k++] = *p;
        name[k] = '\0';
        int seen = 0;
        for (int j = 0; j < i; j++)
            seen |= strcmp(es[j].label, es[i].label) == 0;
        const char *h = cached_hash(c, &es[i]);
        if (seen || !h || !*name)
            continue;
        int w = snprintf(s + o, cap - o, "%s%s: %s", o ? ", " : "", name, h);
        o += w > 0 ? (size_t)w : 0;
    }
    if (!o) {
        gi_free(s);
        return NULL;
    }
    return s;
}

/* The family's module structure, which LoRA names are mapped onto. */
static const lora_unet_layout *layout_of(const gs_model *m)
{
    switch (m->fam ? m->fam->id : GS_FAMILY_SD1) {
    case GS_FAMILY_SD2: return &lora_layout_sd2;
    case GS_FAMILY_SDXL: return &lora_layout_sdxl;
    default: return &lora_layout_sd1;
    }
}

static gs_status fold(gs_model *m, const gs_params *p, entry *es, int n, lora_request *out,
                      gi_error *err)
{
    /* the base weights are read again from the checkpoint: it must be the one loaded */
    struct stat sb;
    if (stat(m->path, &sb) != 0 || (size_t)sb.st_size != m->file_bytes)
        return gi_fail(err, GS_ERR_IO,
                       "%s is gone or changed since it was loaded, and LoRAs read the base "
                       "weights from it: load the model again",
                       m->path);
    lora_net nets[MAX_LORAS] = {0};
    gs_status st = GS_OK;
    for (int i = 0; i < n && st == GS_OK; i++) {
        st = lora_file_open(es[i].path, layout_of(m), p->lora_strict, &es[i].file, err);
        nets[i] = (lora_net){es[i].file, es[i].label, es[i].te, es[i].unet};
    }
    if (st != GS_OK)
        return st;
    int skipped = 0;
    char note[1024];
    st = lora_apply(&m->lora->applied, &m->index, m->path, nets, n, p->lora_strict, &skipped, note,
                    sizeof note, err);
    if (st != GS_OK)
        return st;
    for (int i = 0; i < n; i++) {
        skipped += es[i].file->skipped;
        if (es[i].file->skipped && !note[0])
            snprintf(note, sizeof note, "LoRA %.200s: %s", es[i].label, es[i].file->first_bad);
    }
    if (skipped) {
        const char *before = out->warnings ? out->warnings : ""; /* missing files */
        size_t cap = strlen(before) + strlen(note) + 96;
        char *w = gi_malloc(cap);
        if (w)
            snprintf(w, cap, "%s%s%d LoRA module%s left out; the first: %s", before,
                     *before ? "; " : "", skipped, skipped > 1 ? "s" : "", note);
        gi_free(out->warnings);
        out->warnings = w;
    }
    return GS_OK;
}

gs_status lora_select(gs_model *m, const gs_params *p, lora_request *out, gi_error *err)
{
    memset(out, 0, sizeof *out);
    lora_tag *tags = NULL;
    entry *es = NULL;
    char *key = NULL, missing[1024] = "";
    int nt = 0;
    gs_status st = lora_tags_parse(p->prompt ? p->prompt : "", &out->prompt, &tags, &nt, err);
    if (st != GS_OK)
        return st;
    int n = p->n_loras + nt, asked = n; /* asked: entries of es, n: those found */
    if (p->n_loras < 0 || (p->n_loras > 0 && !p->loras) || n > MAX_LORAS) {
        st =
            gi_fail(err, GS_ERR_INVALID_ARGUMENT, "%d LoRAs: use 0..%d, with a list", n, MAX_LORAS);
        goto out;
    }
    if (n == 0 && (!m->lora || (m->lora->key && strcmp(m->lora->key, "") == 0)))
        goto out; /* none asked for, none folded in */
    if (!m->lora && !(m->lora = gi_calloc(1, sizeof *m->lora))) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    es = gi_calloc(n ? (size_t)n : 1, sizeof *es);
    if (!es) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if ((st = collect(p, tags, nt, es, &n, missing, sizeof missing, err)) != GS_OK)
        goto out;
    if (n < asked && !(out->warnings = gi_strdup(missing))) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    key = n ? set_key(es, n, p->lora_strict) : gi_strdup("");
    if (!key) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    if (!m->lora->key || strcmp(m->lora->key, key) != 0) {
        if (m->prepared && n) {
            st = gi_fail(err, GS_ERR_UNSUPPORTED,
                         "LoRAs are folded into weights read from the original checkpoint; %s "
                         "is a prepared file whose weights are its read-only mapping: load the "
                         "original checkpoint to use LoRAs",
                         m->path);
            goto out;
        }
        double t0 = now_s();
        gi_free(m->lora->key);
        m->lora->key = NULL; /* unknown until the fold succeeds */
        if ((st = fold(m, p, es, n, out, err)) != GS_OK)
            goto out;
        m->lora->key = key;
        key = NULL;
        out->apply_s = now_s() - t0;
    }
    if (n)
        out->hashes = hashes_text(m->lora, es, n); /* NULL when out of memory: no field */
out:
    for (int i = 0; es && i < asked; i++)
        lora_file_close(es[i].file);
    gi_free(es);
    gi_free(tags);
    gi_free(key);
    if (st != GS_OK) {
        gi_free(out->prompt);
        gi_free(out->warnings);
        out->prompt = out->warnings = NULL;
    }
    return st;
}
