/*
 * blob_files - blobs as files in one directory: DIR/ID-K.png for images,
 * DIR/ID.preview.png for the preview (the layout data directories already
 * have) and DIR/ID.input-K for inputs (as the client sent them, whatever
 * their format). A put writes a temporary file beside the target and renames
 * it over, so readers in other processes never see half a PNG. The running
 * total of bytes held is DIR/.tally (blob_tally.h): each put adds its size
 * less the size of the file it replaces, each delete takes its file's off.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/blob_store_private.h"
#include "queue/blob_tally.h"
#include "queue/store.h" /* job_id_ok: only job ids become file names */

#define TALLY_NAME ".tally"

typedef struct blob_files {
    blob_store base;
    blob_tally tally;
    char dir[4096];
} blob_files;

static void blob_path(const blob_files *f, const char *id, blob_kind kind, int index,
                      const char *suffix, char *out, size_t size)
{
    switch (kind) {
    case BLOB_PREVIEW: snprintf(out, size, "%s/%s.preview.png%s", f->dir, id, suffix); break;
    case BLOB_INPUT: snprintf(out, size, "%s/%s.input-%d%s", f->dir, id, index, suffix); break;
    case BLOB_IMAGE: snprintf(out, size, "%s/%s-%d.png%s", f->dir, id, index, suffix); break;
    }
}

static void files_close(blob_store *b)
{
    blob_files *f = (blob_files *)b;
    tally_close(&f->tally);
    free(f);
}

/* The size of the file at path, 0 when there is none. */
static int64_t file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static gs_status write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return GS_ERR_IO;
        p += k;
        n -= (size_t)k;
    }
    return GS_OK;
}

static gs_status files_put(blob_store *b, const char *id, blob_kind kind, int index,
                           const void *data, size_t n, svc_error *err)
{
    blob_files *f = (blob_files *)b;
    if (!job_id_ok(id))
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "bad job id for a blob");
    char tmp[4300], path[4300];
    blob_path(f, id, kind, index, ".tmp", tmp, sizeof tmp);
    blob_path(f, id, kind, index, "", path, sizeof path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return svc_fail(err, GS_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    gs_status st = write_all(fd, data, n);
    if (close(fd) != 0)
        st = GS_ERR_IO;
    int64_t replaced = st == GS_OK ? file_size(path) : 0; /* errno stays the failure's */
    if (st == GS_OK && rename(tmp, path) != 0)
        st = GS_ERR_IO;
    if (st != GS_OK) {
        int e = errno;
        unlink(tmp);
        return svc_fail(err, GS_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    tally_add(&f->tally, (int64_t)n - replaced);
    return GS_OK;
}

static gs_status files_get(blob_store *b, const char *id, blob_kind kind, int index, size_t max,
                           unsigned char **data, size_t *n, svc_error *err)
{
    blob_files *f = (blob_files *)b;
    if (!job_id_ok(id))
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "no such blob");
    char path[4300];
    blob_path(f, id, kind, index, "", path, sizeof path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT
                   ? svc_fail(err, GS_ERR_INVALID_ARGUMENT, "no such blob")
                   : svc_fail(err, GS_ERR_IO, "cannot read %s: %s", path, strerror(errno));
    struct stat sb;
    unsigned char *buf = NULL;
    gs_status st = GS_OK;
    if (fstat(fd, &sb) != 0 || sb.st_size <= 0 || (size_t)sb.st_size > max) {
        st = svc_fail(err, GS_ERR_IO, "%s is empty or larger than %zu bytes", path, max);
        goto out;
    }
    size_t len = (size_t)sb.st_size, got = 0;
    if (!(buf = malloc(len))) {
        st = svc_fail(err, GS_ERR_NO_MEMORY, "out of memory reading a blob");
        goto out;
    }
    while (got < len) {
        ssize_t k = read(fd, buf + got, len - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            st = svc_fail(err, GS_ERR_IO, "cannot read %s", path);
            goto out;
        }
        got += (size_t)k;
    }
    *data = buf;
    *n = len;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return st;
}

/* Deletes one blob and takes its bytes off the total; 0 when there was none. */
static int remove_blob(blob_files *f, const char *id, blob_kind kind, int index)
{
    char path[4300];
    blob_path(f, id, kind, index, "", path, sizeof path);
    struct stat sb;
    if (stat(path, &sb) != 0 || unlink(path) != 0)
        return 0;
    tally_add(&f->tally, -(int64_t)sb.st_size);
    return 1;
}

static gs_status files_delete_job(blob_store *b, const char *id, svc_error *err)
{
    blob_files *f = (blob_files *)b;
    if (!job_id_ok(id))
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "bad job id for a blob");
    /* a job's images are numbered from 0 without gaps; its inputs need not be */
    for (int k = 0; k < BLOB_MAX_INDEX && remove_blob(f, id, BLOB_IMAGE, k); k++)
        ;
    for (int k = 0; k < BLOB_MAX_INPUTS; k++)
        remove_blob(f, id, BLOB_INPUT, k);
    remove_blob(f, id, BLOB_PREVIEW, 0);
    return GS_OK;
}

/* ---- accounting: the running total, and walks over the directory ---- */

static int64_t files_bytes(blob_store *b)
{
    return tally_get(&((blob_files *)b)->tally);
}

/* Calls fn for each entry of the directory but the tally, with its status. */
static gs_status walk(blob_files *f,
                      void (*fn)(void *user, const char *name, const struct stat *sb), void *user,
                      svc_error *err)
{
    DIR *d = opendir(f->dir);
    if (!d)
        return svc_fail(err, GS_ERR_IO, "cannot read %s: %s", f->dir, strerror(errno));
    struct dirent *e;
    struct stat sb;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, TALLY_NAME) != 0 &&
            fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(sb.st_mode))
            fn(user, e->d_name, &sb);
    closedir(d);
    return GS_OK;
}

static void add_size(void *user, const char *name, const struct stat *sb)
{
    (void)name;
    *(int64_t *)user += (int64_t)sb->st_size;
}

static gs_status files_recount(blob_store *b, svc_error *err)
{
    blob_files *f = (blob_files *)b;
    int64_t total = 0;
    gs_status st = walk(f, add_size, &total, err);
    if (st == GS_OK)
        tally_set(&f->tally, total);
    return st;
}

typedef struct job_walk {
    void (*fn)(void *user, const char *id);
    void *user;
} job_walk;

/* Every blob's name starts with its job's id and a '-' or '.'. */
static void report_job(void *user, const char *name, const struct stat *sb)
{
    (void)sb;
    const job_walk *w = user;
    char id[JOB_ID_LEN + 1];
    if (strlen(name) <= JOB_ID_LEN || (name[JOB_ID_LEN] != '-' && name[JOB_ID_LEN] != '.'))
        return;
    memcpy(id, name, JOB_ID_LEN);
    id[JOB_ID_LEN] = '\0';
    if (job_id_ok(id))
        w->fn(w->user, id);
}

static gs_status files_each_job(blob_store *b, void (*fn)(void *user, const char *id), void *user,
                                svc_error *err)
{
    job_walk w = {fn, user};
    return walk((blob_files *)b, report_job, &w, err);
}

static const blob_ops files_ops = {files_close, files_put,     files_get,     files_delete_job,
                                   files_bytes, files_recount, files_each_job};

gs_status blob_open_files(const char *dir, blob_store **out, svc_error *err)
{
    *out = NULL;
    if (strlen(dir) >= sizeof((blob_files *)0)->dir - 100)
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "blob directory path too long");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return svc_fail(err, GS_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return svc_fail(err, GS_ERR_IO, "%s is not a directory", dir);
    blob_files *f = calloc(1, sizeof *f);
    if (!f)
        return svc_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    f->base.ops = &files_ops;
    snprintf(f->dir, sizeof f->dir, "%s", dir);
    char tally[4200];
    snprintf(tally, sizeof tally, "%s/" TALLY_NAME, dir);
    tally_open(&f->tally, tally);
    *out = &f->base;
    return GS_OK;
}
