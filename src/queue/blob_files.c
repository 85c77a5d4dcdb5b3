/*
 * blob_files - blobs as files in one directory: DIR/ID-K.png for images and
 * DIR/ID.preview.png for the preview (the layout data directories already
 * have). A put writes a temporary file beside the target and renames it over,
 * so readers in other processes never see half a PNG.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue/blob_store_private.h"
#include "queue/store.h" /* job_id_ok: only job ids become file names */

typedef struct blob_files {
    blob_store base;
    char dir[4096];
} blob_files;

static void blob_path(const blob_files *f, const char *id, blob_kind kind, int index,
                      const char *suffix, char *out, size_t size)
{
    if (kind == BLOB_PREVIEW)
        snprintf(out, size, "%s/%s.preview.png%s", f->dir, id, suffix);
    else
        snprintf(out, size, "%s/%s-%d.png%s", f->dir, id, index, suffix);
}

static void files_close(blob_store *b)
{
    free(b);
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
    if (st == GS_OK && rename(tmp, path) != 0)
        st = GS_ERR_IO;
    if (st != GS_OK) {
        int e = errno;
        unlink(tmp);
        return svc_fail(err, GS_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
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

static gs_status files_delete_job(blob_store *b, const char *id, svc_error *err)
{
    blob_files *f = (blob_files *)b;
    if (!job_id_ok(id))
        return svc_fail(err, GS_ERR_INVALID_ARGUMENT, "bad job id for a blob");
    char path[4300];
    /* a job's images are numbered from 0 without gaps */
    for (int k = 0; k < BLOB_MAX_INDEX; k++) {
        blob_path(f, id, BLOB_IMAGE, k, "", path, sizeof path);
        if (unlink(path) != 0 && errno == ENOENT)
            break;
    }
    blob_path(f, id, BLOB_PREVIEW, 0, "", path, sizeof path);
    unlink(path);
    return GS_OK;
}

static const blob_ops files_ops = {files_close, files_put, files_get, files_delete_job};

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
    *out = &f->base;
    return GS_OK;
}
