/*
 * a1111_models - checkpoints as A1111 names them: a title "NAME.safetensors
 * [SHORTHASH]" whose hash is the first 10 hex digits of the file's SHA-256.
 * The digest of a file costs a read of it (seconds for gigabytes), so it is
 * taken once per file version (name, mtime, size) and kept with the
 * server's A1111 state; clients may name a model by any of NAME,
 * NAME.safetensors or the title.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/a1111.h"
#include "hash/sha256.h"

#define EXT ".safetensors"
#define EXT_LEN 12

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int a1111_model_names(server *s, char ***names)
{
    *names = NULL;
    DIR *d = opendir(s->o->models_dir);
    if (!d)
        return 0;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= EXT_LEN || strcmp(de->d_name + len - EXT_LEN, EXT) != 0 ||
            len - EXT_LEN > JOB_MODEL_MAX)
            continue;
        char name[JOB_MODEL_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)(len - EXT_LEN), de->d_name);
        if (!job_model_name_ok(name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(*names, (size_t)cap * sizeof *grown);
            if (!grown)
                break;
            *names = grown;
        }
        if (!((*names)[n] = strdup(name)))
            break;
        n++;
    }
    closedir(d);
    if (n > 0)
        qsort(*names, (size_t)n, sizeof **names, by_name);
    return n;
}

void a1111_names_free(char **names, int n)
{
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static void model_path(server *s, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s" EXT, s->o->models_dir, name);
}

/* The file's SHA-256 in hex into out; 0, or -1 when it cannot be read. */
static int hash_file(const char *path, off_t size, char out[65])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    void *map = size > 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size > 0 && map == MAP_FAILED)
        return -1;
    sha256_hex(map, (size_t)size, out);
    if (map)
        munmap(map, (size_t)size);
    return 0;
}

/* The model's SHA-256 from the cache, or read and put there; "" when the file cannot be read. */
static void model_sha256(server *s, const char *name, char out[65])
{
    a1111_state *st = s->a1111;
    char path[4400];
    struct stat sb;
    out[0] = '\0';
    model_path(s, name, path, sizeof path);
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return;
    pthread_mutex_lock(&st->mu);
    for (int i = 0; i < st->n_hashes; i++) {
        a1111_hash *h = &st->hashes[i];
        if (strcmp(h->name, name) == 0 && h->size == sb.st_size &&
            h->mtime.tv_sec == sb.st_mtim.tv_sec && h->mtime.tv_nsec == sb.st_mtim.tv_nsec)
            memcpy(out, h->sha256, 65);
    }
    pthread_mutex_unlock(&st->mu);
    if (out[0] || hash_file(path, sb.st_size, out) != 0)
        return;
    pthread_mutex_lock(&st->mu); /* not held while hashing: others' listings go on */
    a1111_hash *h = NULL;
    for (int i = 0; i < st->n_hashes && !h; i++) /* a new version replaces the old */
        if (strcmp(st->hashes[i].name, name) == 0)
            h = &st->hashes[i];
    if (!h) {
        a1111_hash *grown = realloc(st->hashes, (size_t)(st->n_hashes + 1) * sizeof *grown);
        if (grown) {
            st->hashes = grown;
            h = &grown[st->n_hashes++];
        }
    }
    if (h) {
        snprintf(h->name, sizeof h->name, "%s", name);
        h->mtime = sb.st_mtim;
        h->size = sb.st_size;
        memcpy(h->sha256, out, 65);
    }
    pthread_mutex_unlock(&st->mu);
}

void a1111_model_title(server *s, const char *name, char *out, size_t size)
{
    char sha[65];
    model_sha256(s, name, sha);
    if (sha[0])
        snprintf(out, size, "%s" EXT " [%.10s]", name, sha);
    else
        snprintf(out, size, "%s" EXT, name);
}

int a1111_resolve_model(server *s, const char *title, char out[JOB_MODEL_MAX + 1])
{
    char name[JOB_MODEL_MAX + 1];
    size_t n = strcspn(title, " ["); /* the name ends where " [HASH]" starts */
    const char *slash = strrchr(title, '/');
    if (slash && (size_t)(slash - title) < n) { /* a path: A1111 titles may hold subfolders */
        n -= (size_t)(slash + 1 - title);
        title = slash + 1;
    }
    if (n >= EXT_LEN && strncmp(title + n - EXT_LEN, EXT, EXT_LEN) == 0)
        n -= EXT_LEN;
    if (n == 0 || n > JOB_MODEL_MAX)
        return -1;
    memcpy(name, title, n);
    name[n] = '\0';
    char path[4400];
    struct stat sb;
    model_path(s, name, path, sizeof path);
    if (!job_model_name_ok(name) || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return -1;
    memcpy(out, name, n + 1);
    return 0;
}

enum MHD_Result a1111_sd_models(http_request *r)
{
    char **names = NULL;
    int n = a1111_model_names(r->s, &names);
    json_t *list = json_array();
    for (int i = 0; i < n; i++) {
        char sha[65], title[400], path[4400];
        model_sha256(r->s, names[i], sha);
        a1111_model_title(r->s, names[i], title, sizeof title);
        model_path(r->s, names[i], path, sizeof path);
        char shorthash[11];
        snprintf(shorthash, sizeof shorthash, "%.10s", sha);
        json_array_append_new(
            list, json_pack("{s:s,s:s,s:o,s:o,s:s,s:n}", "title", title, "model_name", names[i],
                            "hash", sha[0] ? json_string(shorthash) : json_null(), "sha256",
                            sha[0] ? json_string(sha) : json_null(), "filename", path, "config"));
    }
    a1111_names_free(names, n);
    return http_reply_json(r, 200, list, NULL);
}
