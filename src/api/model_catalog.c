/*
 * model_catalog - header facts of checkpoints, cached by (name, mtime, size).
 * A small array searched linearly: a models directory holds tens of files.
 */
#include "api/model_catalog.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"

typedef struct catalog_entry {
    char *name;
    struct timespec mtime;
    off_t size;
    model_facts facts;
} catalog_entry;

struct model_catalog {
    pthread_mutex_t mu; /* guards e */
    catalog_entry *e;
    int n, cap;
};

model_catalog *model_catalog_create(void)
{
    model_catalog *c = calloc(1, sizeof *c);
    if (c)
        pthread_mutex_init(&c->mu, NULL);
    return c;
}

void model_catalog_free(model_catalog *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->n; i++)
        free(c->e[i].name);
    free(c->e);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* gs_checkpoint_inspect reads the header only, no tensor data. */
static void read_facts(const char *path, model_facts *out)
{
    gs_checkpoint_info info;
    snprintf(out->family, sizeof out->family, "unknown");
    out->dtype[0] = '\0';
    if (gs_checkpoint_inspect(path, &info, NULL, 0) != GS_OK)
        return;
    snprintf(out->family, sizeof out->family, "%s", info.family_name);
    snprintf(out->dtype, sizeof out->dtype, "%s", info.weight_dtype);
}

static int same_file(const catalog_entry *e, const struct stat *sb)
{
    return e->size == sb->st_size && e->mtime.tv_sec == sb->st_mtim.tv_sec &&
           e->mtime.tv_nsec == sb->st_mtim.tv_nsec;
}

void model_catalog_facts(model_catalog *c, const char *name, const char *path,
                         const struct stat *sb, model_facts *out)
{
    pthread_mutex_lock(&c->mu);
    int i = 0;
    while (i < c->n && strcmp(c->e[i].name, name) != 0)
        i++;
    if (i < c->n && same_file(&c->e[i], sb)) {
        *out = c->e[i].facts;
        pthread_mutex_unlock(&c->mu);
        return;
    }
    pthread_mutex_unlock(&c->mu);
    /* read outside the lock: a slow disk must not hold up other requests */
    read_facts(path, out);
    pthread_mutex_lock(&c->mu);
    i = 0;
    while (i < c->n && strcmp(c->e[i].name, name) != 0)
        i++;
    if (i == c->n) { /* a new name; when memory runs out the answer just goes uncached */
        if (c->n == c->cap) {
            int cap = c->cap ? c->cap * 2 : 16;
            catalog_entry *e = realloc(c->e, (size_t)cap * sizeof *e);
            if (!e)
                goto out;
            c->e = e;
            c->cap = cap;
        }
        char *copy = strdup(name);
        if (!copy)
            goto out;
        c->e[c->n++].name = copy;
    }
    c->e[i].mtime = sb->st_mtim;
    c->e[i].size = sb->st_size;
    c->e[i].facts = *out;
out:
    pthread_mutex_unlock(&c->mu);
}
