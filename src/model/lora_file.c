/* lora_file - LoRA factors by module, checked for what the file alone can get wrong. */
#include "model/lora_file.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "hash/sha256.h"

typedef enum role { ROLE_DOWN, ROLE_UP, ROLE_ALPHA } role;

/* One tensor of the file as (module, role). */
typedef struct item {
    char module[256];
    int peft;
    role r;
    const st_tensor *t;
} item;

static const struct {
    const char *suffix;
    int peft;
    role r;
} suffixes[] = {
    {".lora_down.weight", 0, ROLE_DOWN}, {".lora_up.weight", 0, ROLE_UP}, {".alpha", 0, ROLE_ALPHA},
    {".lora_A.weight", 1, ROLE_DOWN},    {".lora_B.weight", 1, ROLE_UP},
};

static int split(const st_tensor *t, item *it)
{
    size_t n = strlen(t->name);
    for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0]; k++) {
        size_t s = strlen(suffixes[k].suffix);
        if (n > s && n - s < sizeof it->module &&
            strcmp(t->name + n - s, suffixes[k].suffix) == 0) {
            memcpy(it->module, t->name, n - s);
            it->module[n - s] = '\0';
            it->peft = suffixes[k].peft;
            it->r = suffixes[k].r;
            it->t = t;
            return 0;
        }
    }
    return -1;
}

static int by_module(const void *a, const void *b)
{
    const item *x = a, *y = b;
    int c = strcmp(x->module, y->module);
    return c ? c : (int)x->r - (int)y->r;
}

static int all_finite(const st_tensor *t)
{
    float buf[1024];
    for (size_t first = 0; first < (size_t)t->numel; first += 1024) {
        size_t count = (size_t)t->numel - first < 1024 ? (size_t)t->numel - first : 1024;
        if (st_span_to_f32(t, first, count, buf, NULL) != GS_OK)
            return 0;
        for (size_t i = 0; i < count; i++)
            if (!isfinite(buf[i]))
                return 0;
    }
    return 1;
}

static int is_float(st_dtype d)
{
    return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64;
}

/* Checks a module's factors; NULL when fine, else why not (what->why names the tensor). */
static const char *check_module(const lora_module *m, const char **what)
{
    *what = m->down ? "lora_down" : "lora_up";
    if (!m->down || !m->up)
        return "has no lora_down/lora_A or no lora_up/lora_B factor";
    *what = "lora_down";
    const st_tensor *d = m->down, *u = m->up;
    if (!is_float(d->dtype) || (d->ndim != 2 && d->ndim != 4) || d->shape[0] < 1)
        return "is not a float [r, in] or [r, in, k, k] tensor";
    *what = "lora_up";
    if (!is_float(u->dtype) ||
        !(u->ndim == 2 || (u->ndim == 4 && u->shape[2] == 1 && u->shape[3] == 1)))
        return "is not a float [out, r] or [out, r, 1, 1] tensor";
    if (u->shape[1] != d->shape[0])
        return "has a rank that disagrees with lora_down's";
    if (m->alpha) {
        *what = "alpha";
        if (!is_float(m->alpha->dtype) || m->alpha->numel != 1 || m->alpha->ndim > 1)
            return "is not a scalar";
        if (!all_finite(m->alpha))
            return "is not finite";
    }
    *what = "lora_down";
    if (!all_finite(d))
        return "holds a value that is not finite";
    *what = "lora_up";
    if (!all_finite(u))
        return "holds a value that is not finite";
    return NULL;
}

/* Refuses (strict) or records and leaves out (lenient) a bad module or key. */
static gs_status refuse(lora_file *lf, int strict, const char *path, gi_error *err, const char *fmt,
                        const char *a, const char *b)
{
    char why[600];
    snprintf(why, sizeof why, fmt, a, b);
    if (strict)
        return gi_fail(err, GS_ERR_FORMAT, "LoRA %s: %s", path, why);
    if (lf->skipped++ == 0)
        snprintf(lf->first_bad, sizeof lf->first_bad, "%s", why);
    return GS_OK;
}

/* Groups the tensors into modules and maps each; the first bad key refuses (strict). */
static gs_status read_modules(lora_file *lf, const lora_unet_layout *L, int strict,
                              const char *path, gi_error *err)
{
    size_t n = st_count(lf->f);
    item *it = gi_calloc(n ? n : 1, sizeof *it);
    lf->mods = gi_calloc(n ? n : 1, sizeof *lf->mods);
    if (!it || !lf->mods) {
        gi_free(it);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory reading LoRA %s", path);
    }
    gs_status st = GS_OK;
    size_t k = 0;
    for (size_t i = 0; i < n && st == GS_OK; i++)
        if (split(st_at(lf->f, i), &it[k]) == 0)
            k++;
        else
            st = refuse(lf, strict, path, err, "key '%s' is not a LoRA factor gesso knows%s",
                        st_at(lf->f, i)->name, "");
    qsort(it, k, sizeof *it, by_module);
    for (size_t i = 0; i < k && st == GS_OK;) {
        lora_module *m = &lf->mods[lf->n];
        memset(m, 0, sizeof *m);
        snprintf(m->key, sizeof m->key, "%s", it[i].module);
        int dup = 0, peft = it[i].peft;
        size_t j = i;
        for (; j < k && strcmp(it[j].module, it[i].module) == 0; j++) {
            const st_tensor **slot = it[j].r == ROLE_DOWN ? &m->down
                                     : it[j].r == ROLE_UP ? &m->up
                                                          : &m->alpha;
            dup |= *slot != NULL || it[j].peft != peft;
            *slot = it[j].t;
        }
        i = j;
        int mapped =
            peft ? lora_map_peft(L, m->key, &m->target) : lora_map_kohya(L, m->key, &m->target);
        const char *what, *why;
        if (mapped != 0)
            st = refuse(lf, strict, path, err, "key '%s' names no layer gesso knows%s", m->key, "");
        else if (dup)
            st = refuse(lf, strict, path, err, "module '%s' is given twice%s", m->key, "");
        else if ((why = check_module(m, &what)) != NULL) {
            char key[320];
            snprintf(key, sizeof key, "%.250s.%s", m->key, what);
            st = refuse(lf, strict, path, err, "'%s' %s", key, why);
        } else {
            m->rank = (int)m->down->shape[0];
            lf->n++;
        }
    }
    gi_free(it);
    return st;
}

gs_status lora_file_open(const char *path, const lora_unet_layout *L, int strict, lora_file **out,
                         gi_error *err)
{
    *out = NULL;
    lora_file *lf = gi_calloc(1, sizeof *lf);
    if (!lf)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    gs_status st = st_open(path, &lf->f, err);
    if (st != GS_OK) {
        gi_error_prefix(err, "LoRA %s", path);
        gi_free(lf);
        return st;
    }
    st = read_modules(lf, L, strict, path, err);
    if (st == GS_OK && lf->n == 0)
        st = gi_fail(err, GS_ERR_FORMAT, "LoRA %s: no LoRA modules in the file", path);
    if (st != GS_OK) {
        lora_file_close(lf);
        return st;
    }
    *out = lf;
    return GS_OK;
}

void lora_file_close(lora_file *lf)
{
    if (!lf)
        return;
    st_close(lf->f);
    gi_free(lf->mods);
    gi_free(lf);
}

void lora_file_hash(const lora_file *lf, char out[65])
{
    const unsigned char *b = st_file_bytes(lf->f);
    size_t size = st_file_size(lf->f);
    uint64_t header = 0;
    for (int i = 0; i < 8; i++)
        header |= (uint64_t)b[i] << (8 * i);
    /* the parser has checked 8 + header <= size */
    sha256_hex(b + 8 + header, size - 8 - (size_t)header, out);
}
