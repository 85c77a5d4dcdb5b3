/*
 * safetensors - strict reader.
 *
 * Layout: u64 little-endian header length N, N bytes of JSON, then the data
 * buffer. The JSON maps names to {dtype, shape, data_offsets:[begin,end]} with
 * offsets relative to the data buffer, plus an optional "__metadata__" object of
 * strings. We validate it all up front and keep a name-sorted table of views.
 */
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "compute/half.h"
#include "compute/half_span.h"
#include "compute/vec_math.h"

typedef struct st_meta {
    char *key;
    char *value;
} st_meta;

struct st_file {
    const uint8_t *bytes;
    size_t size;
    int mapped;
    int fd; /* the file behind the mapping, for st_map_tensor; -1 for none */
    st_identity id;
    st_tensor *tensors;
    size_t count;
    char *names; /* all tensor names, back to back */
    st_meta *meta;
    size_t meta_count;
};

static const struct {
    const char *name;
    size_t size;
} dtype_info[ST_DTYPE_COUNT] = {
    [ST_F64] = {"F64", 8},   [ST_F32] = {"F32", 4},         [ST_F16] = {"F16", 2},
    [ST_BF16] = {"BF16", 2}, [ST_I64] = {"I64", 8},         [ST_I32] = {"I32", 4},
    [ST_I16] = {"I16", 2},   [ST_I8] = {"I8", 1},           [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(st_dtype d)
{
    return d < ST_DTYPE_COUNT ? dtype_info[d].name : "?";
}
size_t st_dtype_size(st_dtype d)
{
    return d < ST_DTYPE_COUNT ? dtype_info[d].size : 0;
}

static int parse_dtype(const char *s, st_dtype *out)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (strcmp(s, dtype_info[i].name) == 0) {
            *out = (st_dtype)i;
            return 1;
        }
    }
    return 0;
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

typedef struct range {
    size_t begin, end;
    const char *name;
} range;

static int cmp_range(const void *a, const void *b)
{
    const range *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* ---- header validation ---- */

static gs_status parse_tensor_entry(const char *name, json_t *v, size_t data_size, st_tensor *t,
                                    gi_error *err)
{
    if (!json_is_object(v))
        return gi_fail(err, GS_ERR_FORMAT, "tensor '%s': entry is not a JSON object", name);
    json_t *jd = json_object_get(v, "dtype");
    json_t *js = json_object_get(v, "shape");
    json_t *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd) || !json_is_array(js) || !json_is_array(jo))
        return gi_fail(err, GS_ERR_FORMAT,
                       "tensor '%s': needs string 'dtype', array 'shape', array 'data_offsets'",
                       name);
    if (!parse_dtype(json_string_value(jd), &t->dtype))
        return gi_fail(err, GS_ERR_FORMAT, "tensor '%s': unknown dtype '%s'", name,
                       json_string_value(jd));
    size_t ndim = json_array_size(js);
    if (ndim > ST_MAX_DIMS)
        return gi_fail(err, GS_ERR_FORMAT, "tensor '%s': %zu dimensions (at most %d)", name, ndim,
                       ST_MAX_DIMS);
    t->ndim = (int)ndim;
    size_t numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        json_t *d = json_array_get(js, i);
        if (!json_is_integer(d) || json_integer_value(d) < 0)
            return gi_fail(err, GS_ERR_FORMAT, "tensor '%s': shape[%zu] is not a size", name, i);
        t->shape[i] = json_integer_value(d);
        if (gi_mul_overflows(numel, (size_t)t->shape[i], &numel))
            return gi_fail(err, GS_ERR_FORMAT, "tensor '%s': shape overflows", name);
    }
    size_t nbytes;
    if (gi_mul_overflows(numel, st_dtype_size(t->dtype), &nbytes) || numel > INT64_MAX)
        return gi_fail(err, GS_ERR_FORMAT, "tensor '%s': shape overflows", name);
    if (json_array_size(jo) != 2 || !json_is_integer(json_array_get(jo, 0)) ||
        !json_is_integer(json_array_get(jo, 1)))
        return gi_fail(err, GS_ERR_FORMAT, "tensor '%s': data_offsets must be [begin, end]", name);
    json_int_t b = json_integer_value(json_array_get(jo, 0));
    json_int_t e = json_integer_value(json_array_get(jo, 1));
    if (b < 0 || e < b)
        return gi_fail(err, GS_ERR_FORMAT, "tensor '%s': data_offsets [%lld, %lld] are invalid",
                       name, (long long)b, (long long)e);
    if ((unsigned long long)e > data_size)
        return gi_fail(err, GS_ERR_FORMAT,
                       "tensor '%s': data ends at %lld but the file holds only %zu data bytes "
                       "(truncated file?)",
                       name, (long long)e, data_size);
    if ((size_t)(e - b) != nbytes)
        return gi_fail(err, GS_ERR_FORMAT,
                       "tensor '%s': shape and dtype need %zu bytes but data_offsets give %lld",
                       name, nbytes, (long long)(e - b));
    t->numel = (int64_t)numel;
    t->nbytes = nbytes;
    t->data = (const uint8_t *)(uintptr_t)b; /* rebased once the data start is known */
    return GS_OK;
}

static gs_status parse_metadata(st_file *f, json_t *meta, gi_error *err)
{
    if (!json_is_object(meta))
        return gi_fail(err, GS_ERR_FORMAT, "__metadata__ is not a JSON object");
    size_t n = json_object_size(meta);
    f->meta = gi_calloc(n ? n : 1, sizeof *f->meta);
    if (!f->meta)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory reading metadata");
    const char *key;
    json_t *val;
    json_object_foreach(meta, key, val)
    {
        if (!json_is_string(val))
            return gi_fail(err, GS_ERR_FORMAT, "__metadata__['%s'] is not a string", key);
        st_meta *m = &f->meta[f->meta_count++];
        m->key = gi_strdup(key);
        m->value = gi_strdup(json_string_value(val));
        if (!m->key || !m->value)
            return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory reading metadata");
    }
    return GS_OK;
}

static gs_status parse_header(st_file *f, gi_error *err)
{
    if (f->size < 8)
        return gi_fail(err, GS_ERR_FORMAT, "file is %zu bytes, too short for a safetensors header",
                       f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | f->bytes[i];
    if (hlen > ST_MAX_HEADER_BYTES)
        return gi_fail(err, GS_ERR_FORMAT,
                       "header length %llu is larger than the %u-byte limit (not a safetensors "
                       "file?)",
                       (unsigned long long)hlen, ST_MAX_HEADER_BYTES);
    if (hlen > f->size - 8)
        return gi_fail(err, GS_ERR_FORMAT,
                       "header claims %llu bytes but the file has only %zu after the length "
                       "(truncated file?)",
                       (unsigned long long)hlen, f->size - 8);
    if (hlen < 2 || f->bytes[8] != '{')
        return gi_fail(err, GS_ERR_FORMAT, "header does not start with a JSON object");

    json_error_t jerr;
    json_t *root =
        json_loadb((const char *)f->bytes + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return gi_fail(err, GS_ERR_FORMAT, "header JSON is invalid: %s (at byte %d)", jerr.text,
                       jerr.position);
    gs_status st = GS_OK;
    range *ranges = NULL;
    if (!json_is_object(root)) {
        st = gi_fail(err, GS_ERR_FORMAT, "header JSON is not an object");
        goto out;
    }

    size_t data_start = 8 + (size_t)hlen;
    size_t data_size = f->size - data_start;
    size_t n = json_object_size(root);
    size_t names_bytes = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") != 0)
            names_bytes += strlen(key) + 1;
    }
    f->tensors = gi_calloc(n ? n : 1, sizeof *f->tensors);
    f->names = gi_malloc(names_bytes ? names_bytes : 1);
    ranges = gi_calloc(n ? n : 1, sizeof *ranges);
    if (!f->tensors || !f->names || !ranges) {
        st = gi_fail(err, GS_ERR_NO_MEMORY, "out of memory reading header");
        goto out;
    }
    char *np = f->names;
    json_object_foreach(root, key, val)
    {
        if (strcmp(key, "__metadata__") == 0) {
            if ((st = parse_metadata(f, val, err)) != GS_OK)
                goto out;
            continue;
        }
        st_tensor *t = &f->tensors[f->count];
        if ((st = parse_tensor_entry(key, val, data_size, t, err)) != GS_OK)
            goto out;
        size_t len = strlen(key) + 1;
        memcpy(np, key, len);
        t->name = np;
        np += len;
        size_t begin = (size_t)(uintptr_t)t->data;
        ranges[f->count] = (range){begin, begin + t->nbytes, t->name};
        t->data = f->bytes + data_start + begin;
        f->count++;
    }

    qsort(ranges, f->count, sizeof *ranges, cmp_range);
    for (size_t i = 1; i < f->count; i++) {
        if (ranges[i].begin < ranges[i - 1].end) {
            st = gi_fail(err, GS_ERR_FORMAT, "tensors '%s' and '%s' overlap in the data buffer",
                         ranges[i - 1].name, ranges[i].name);
            goto out;
        }
    }
    qsort(f->tensors, f->count, sizeof *f->tensors, cmp_tensor_name);
out:
    gi_free(ranges);
    json_decref(root);
    return st;
}

/* ---- open / close ---- */

static gs_status finish_open(st_file *f, st_file **out, gi_error *err)
{
    gs_status st = parse_header(f, err);
    if (st != GS_OK) {
        st_close(f);
        return st;
    }
    *out = f;
    return GS_OK;
}

gs_status st_open_memory(const void *data, size_t size, st_file **out, gi_error *err)
{
    *out = NULL;
    st_file *f = gi_calloc(1, sizeof *f);
    if (!f)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    f->bytes = data;
    f->size = size;
    f->fd = -1;
    return finish_open(f, out, err);
}

gs_status st_open(const char *path, st_file **out, gi_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gi_fail(err, GS_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return gi_fail(err, GS_ERR_IO, "'%s' is not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    void *map = NULL;
    if (size > 0) {
        map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return gi_fail(err, GS_ERR_IO, "cannot map '%s': %s", path, strerror(e));
        }
    }
    st_file *f = gi_calloc(1, sizeof *f);
    if (!f) {
        if (map)
            munmap(map, size);
        close(fd);
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    }
    f->bytes = map;
    f->size = size;
    f->mapped = map != NULL;
    f->fd = fd;
    f->id = (st_identity){(uint64_t)sb.st_dev, (uint64_t)sb.st_ino, (uint64_t)sb.st_size,
                          (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec};
    return finish_open(f, out, err);
}

void st_close(st_file *f)
{
    if (!f)
        return;
    if (f->mapped)
        munmap((void *)f->bytes, f->size);
    if (f->fd >= 0)
        close(f->fd);
    for (size_t i = 0; i < f->meta_count; i++) {
        gi_free(f->meta[i].key);
        gi_free(f->meta[i].value);
    }
    gi_free(f->meta);
    gi_free(f->tensors);
    gi_free(f->names);
    gi_free(f);
}

/* ---- lookup ---- */

size_t st_count(const st_file *f)
{
    return f->count;
}
const st_tensor *st_at(const st_file *f, size_t i)
{
    return i < f->count ? &f->tensors[i] : NULL;
}
size_t st_file_size(const st_file *f)
{
    return f->size;
}
const void *st_file_bytes(const st_file *f)
{
    return f->bytes;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    size_t lo = 0, hi = f->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, f->tensors[mid].name);
        if (c == 0)
            return &f->tensors[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *st_metadata(const st_file *f, const char *key)
{
    for (size_t i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta[i].key, key) == 0)
            return f->meta[i].value;
    return NULL;
}

int st_shape_is(const st_tensor *t, int ndim, const int64_t *shape)
{
    if (t->ndim != ndim)
        return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i])
            return 0;
    return 1;
}

/* ---- conversion ---- */

int st_same_file(const st_file *f, const st_identity *id)
{
    return f->fd >= 0 && memcmp(&f->id, id, sizeof *id) == 0;
}

st_identity st_file_identity(const st_file *f)
{
    return f->id;
}

const void *st_map_tensor(const st_file *f, const st_tensor *t, void **base, size_t *len)
{
    if (!f->mapped || f->fd < 0 || t->nbytes == 0)
        return NULL;
    size_t off = (size_t)(t->data - f->bytes), page = (size_t)sysconf(_SC_PAGESIZE);
    size_t start = off / page * page;
    void *map = mmap(NULL, off - start + t->nbytes, PROT_READ, MAP_PRIVATE, f->fd, (off_t)start);
    if (map == MAP_FAILED)
        return NULL;
    *base = map;
    *len = off - start + t->nbytes;
    return (const char *)map + (off - start);
}

gs_status st_read(const st_file *f, const st_tensor *t, size_t offset, size_t len, void *dst,
                  gi_error *err)
{
    if (offset > t->nbytes || len > t->nbytes - offset)
        return gi_fail(err, GS_ERR_INTERNAL, "read past the end of tensor '%s'", t->name);
    if (!f->mapped || f->fd < 0) {
        memcpy(dst, t->data + offset, len);
        return GS_OK;
    }
    off_t at = (off_t)((size_t)(t->data - f->bytes) + offset);
    for (char *p = dst; len > 0;) {
        ssize_t n = pread(f->fd, p, len, at);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return gi_fail(err, GS_ERR_IO, "cannot read tensor '%s': %s", t->name,
                           n < 0 ? strerror(errno) : "the file is shorter than when it was opened");
        p += n;
        at += n;
        len -= (size_t)n;
    }
    return GS_OK;
}

void st_drop_pages(const st_file *f, const st_tensor *t)
{
    if (!f->mapped || t->nbytes == 0)
        return;
    gi_pages_drop(t->data, t->nbytes);
}

gs_status st_span_to_f32(const st_tensor *t, size_t first, size_t count, float *dst, gi_error *err)
{
    const uint8_t *p = t->data;
    if (t->dtype != ST_F32 && t->dtype != ST_F64 && t->dtype != ST_F16 && t->dtype != ST_BF16)
        return gi_fail(err, GS_ERR_UNSUPPORTED, "tensor '%s' has dtype %s, expected a float type",
                       t->name, st_dtype_name(t->dtype));
    if (count == 0)
        return GS_OK;
    switch (t->dtype) {
    case ST_F32: memcpy(dst, p + 4 * first, count * 4); return GS_OK;
    case ST_F64:
        for (size_t i = 0; i < count; i++) {
            double v;
            memcpy(&v, p + 8 * (first + i), 8);
            dst[i] = (float)v;
        }
        return GS_OK;
    case ST_F16: gi_f16_to_f32_span(p + 2 * first, dst, count); return GS_OK;
    case ST_BF16:
        for (size_t i = 0; i < count; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * (first + i), 2);
            dst[i] = gi_bf16_to_f32(h);
        }
        return GS_OK;
    default: return GS_OK; /* refused above */
    }
}

gs_status st_to_f32(const st_tensor *t, float *dst, gi_error *err)
{
    return st_span_to_f32(t, 0, (size_t)t->numel, dst, err);
}

gs_status st_to_f64(const st_tensor *t, double *dst, gi_error *err)
{
    const uint8_t *p = t->data;
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case ST_F64: memcpy(dst, p, n * 8); return GS_OK;
    case ST_I32:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, p + 4 * i, 4);
            dst[i] = v;
        }
        return GS_OK;
    case ST_I64:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, p + 8 * i, 8);
            dst[i] = (double)v;
        }
        return GS_OK;
    case ST_U8:
        for (size_t i = 0; i < n; i++)
            dst[i] = p[i];
        return GS_OK;
    default: break;
    }
    float *tmp = gi_malloc(n * sizeof *tmp);
    if (!tmp)
        return gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    gs_status st = st_to_f32(t, tmp, err);
    if (st == GS_OK)
        for (size_t i = 0; i < n; i++)
            dst[i] = tmp[i];
    gi_free(tmp);
    return st;
}
