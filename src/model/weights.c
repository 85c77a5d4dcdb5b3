/* weights - shape-checked tensor loading and conversion. */
#include "model/weights.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/alloc.h"
#include "compute/gemm_bf16.h"
#include "compute/gemm_pack.h"
#include "compute/half.h"
#include "compute/half_span.h"
#include "model/conv_order.h"

#define PREPARED_KEY "gesso.prepared"
#define PACKED_KEY "gesso.packed" /* the dtypes whose linear weights are packed */

const char *wl_precision_name(int half)
{
    return half == WL_F16 ? "f16" : half == WL_BF16 ? "bf16" : "f32";
}

int weights_file_packed(const st_file *f, int half)
{
    const char *v = st_metadata(f, PACKED_KEY), *name = wl_precision_name(half);
    size_t n = strlen(name);
    for (const char *p = v; p && *p; p += strcspn(p, ","), p += *p == ',')
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return 1;
    return 0;
}

int weights_file_prepared(const st_file *f, int *half)
{
    const char *v = st_metadata(f, PREPARED_KEY);
    if (!v)
        return 0;
    *half = strcmp(v, "bf16") == 0 ? WL_BF16 : strcmp(v, "f16") == 0 ? WL_F16 : WL_F32;
    return 1;
}

static int packing_on = 1;

void wl_test_set_packing(int on)
{
    packing_on = on;
}

weight_loader wl_begin(const st_file *f, const char *prefix, weight_store *store, int half,
                       weight_log *log, gi_error *err)
{
    int prepared_half = 0, prepared = weights_file_prepared(f, &prepared_half);
    return (weight_loader){.f = f,
                           .prefix = prefix,
                           .store = store,
                           .err = err,
                           .st = GS_OK,
                           .half = half,
                           .prepared = prepared,
                           .pack = packing_on && half != WL_F16 && gemm_packs(half == WL_F32),
                           .file_packed = prepared && weights_file_packed(f, half),
                           .log = log};
}

static st_dtype half_dtype(int half)
{
    return half == WL_F16 ? ST_F16 : half == WL_BF16 ? ST_BF16 : ST_F32;
}

const void *weight_entry_plain(const weight_entry *e, void **copy)
{
    *copy = NULL;
    if (!e->packed)
        return e->data;
    if (!(*copy = gi_aligned_alloc(e->nbytes)))
        return NULL;
    gemm_unpack(e->data, *copy, (int)e->shape[0], (int)e->shape[1], e->dtype == ST_F32);
    return *copy;
}

void weight_log_free(weight_log *log)
{
    for (size_t i = 0; i < log->n; i++)
        gi_free(log->e[i].name);
    gi_free(log->e);
    memset(log, 0, sizeof *log);
}

const weight_entry *weight_log_find(const weight_log *log, const char *name)
{
    for (size_t i = log->n; i-- > 0;)
        if (strcmp(log->e[i].name, name) == 0)
            return &log->e[i];
    return NULL;
}

void weight_log_drop_prefix(weight_log *log, const char *prefix)
{
    size_t n = strlen(prefix), k = 0;
    for (size_t i = 0; i < log->n; i++) {
        if (strncmp(log->e[i].name, prefix, n) == 0)
            gi_free(log->e[i].name);
        else
            log->e[k++] = log->e[i];
    }
    log->n = k;
}

/* Records prefix+name as the kernels hold it: its log entry, or NULL (no log,
   or out of memory). */
static weight_entry *log_weight(weight_loader *l, const char *name, st_dtype dtype, int ndim,
                                const int64_t *shape, const void *data, size_t nbytes)
{
    weight_log *log = l->log;
    if (!log || l->st != GS_OK)
        return NULL;
    if (log->n == log->cap) {
        size_t cap = log->cap ? 2 * log->cap : 256;
        weight_entry *e = gi_realloc(log->e, cap * sizeof *e);
        if (!e) {
            l->st = gi_fail(l->err, GS_ERR_NO_MEMORY, "out of memory");
            return NULL;
        }
        log->e = e;
        log->cap = cap;
    }
    weight_entry *e = &log->e[log->n];
    memset(e, 0, sizeof *e);
    size_t len = strlen(l->prefix) + strlen(name) + 1;
    e->name = gi_malloc(len);
    if (!e->name) {
        l->st = gi_fail(l->err, GS_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    snprintf(e->name, len, "%s%s", l->prefix, name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        e->shape[d] = shape[d];
    if (ndim == 4) { /* [cout, cin, k, k] -> the kernels' [cout, k, k, cin] */
        e->shape[1] = shape[2];
        e->shape[2] = shape[3];
        e->shape[3] = shape[1];
    }
    e->data = data;
    e->nbytes = nbytes;
    log->n++;
    return e;
}

void weight_store_free(weight_store *ws)
{
    for (int i = 0; i < ws->n; i++)
        gi_aligned_free(ws->bufs[i]);
    gi_free(ws->bufs);
    for (int i = 0; i < ws->n_maps; i++)
        munmap(ws->maps[i].ptr, ws->maps[i].len);
    gi_free(ws->maps);
    memset(ws, 0, sizeof *ws);
}

#define CHUNK_BYTES ((size_t)64 << 20)

static void *store_alloc_bytes(weight_loader *l, size_t bytes)
{
    weight_store *ws = l->store;
    bytes = (bytes + 63) & ~(size_t)63;
    if (ws->n == 0 || ws->used + bytes > ws->size) {
        if (ws->n == ws->cap) {
            int cap = ws->cap ? ws->cap * 2 : 64;
            void **b = gi_realloc(ws->bufs, (size_t)cap * sizeof *b);
            if (!b)
                return NULL;
            ws->bufs = b;
            ws->cap = cap;
        }
        size_t size = bytes > CHUNK_BYTES ? bytes : CHUNK_BYTES;
        void *chunk = gi_huge_alloc(size);
        if (!chunk)
            return NULL;
        ws->bufs[ws->n++] = chunk;
        ws->used = 0;
        ws->size = size;
    }
    void *p = (char *)ws->bufs[ws->n - 1] + ws->used;
    ws->used += bytes;
    ws->bytes += bytes;
    return p;
}

static int loader_threads(const weight_loader *l)
{
    return l->threads > 0 ? l->threads : omp_get_max_threads();
}

/* Source bytes a loader thread reads at once: enough that a read's call costs
   little against its copy, little enough to stay in the core's cache until it
   is converted. */
#define READ_BYTES ((size_t)256 << 10)

/* Rows per read for a tensor of rows rows of row_bytes each, read and handled
   unit rows at a time: about READ_BYTES, a multiple of unit, and small enough
   that every thread gets a couple of reads. */
static size_t rows_per_read(const weight_loader *l, size_t rows, size_t row_bytes, size_t unit)
{
    if (row_bytes == 0) /* a hostile file's empty rows: nothing to read */
        return rows > unit ? rows : unit;
    size_t n = READ_BYTES / (unit * row_bytes) * unit;
    size_t share = rows / (2 * (size_t)loader_threads(l)) / unit * unit;
    if (share < n)
        n = share;
    return n < unit ? unit : n;
}

/* A failed read on one of the loader's threads, kept for the loader: the
   first one, with its message. */
static void note_read_failure(weight_loader *l, const gi_error *e, int *failed)
{
#pragma omp critical
    if (!*failed) {
        *failed = 1;
        if (l->err)
            *l->err = *e;
        l->st = e->code;
    }
}

/* t's bytes as they are into dst, read in blocks by the loader's threads
   (the first touch of dst's pages is most of the cost: shared, it is shorter). */
static gs_status copy_rows(weight_loader *l, const st_tensor *t, char *dst)
{
    size_t block = rows_per_read(l, t->nbytes, 1, 1), nb = (t->nbytes + block - 1) / block;
    int failed = 0;
#pragma omp parallel num_threads(loader_threads(l)) if (nb > 1)
    {
        gi_error e = {0};
#pragma omp for schedule(static)
        for (size_t b = 0; b < nb; b++) {
            size_t first = b * block, count = t->nbytes - first < block ? t->nbytes - first : block;
            if (e.code == GS_OK)
                st_read(l->f, t, first, count, dst + first, &e);
        }
        if (e.code != GS_OK)
            note_read_failure(l, &e, &failed);
    }
    return failed ? l->st : GS_OK;
}

const char *wl_name(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

const st_tensor *wl_find(weight_loader *l, const char *name)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", l->prefix, name);
    return st_find(l->f, full);
}

/* A tensor's shape as the architecture states it: prepared files hold 4-D
   convolutions as [cout, k, k, cin], read back as [cout, cin, k, k]. */
static void logical_shape(const weight_loader *l, const st_tensor *t, int64_t *shape)
{
    for (int d = 0; d < t->ndim; d++)
        shape[d] = t->shape[d];
    if (l->prepared && t->ndim == 4) {
        shape[1] = t->shape[3];
        shape[2] = t->shape[1];
        shape[3] = t->shape[2];
    }
}

int64_t wl_dim(weight_loader *l, const char *name, int d)
{
    const st_tensor *t = wl_find(l, name);
    if (!t || d >= t->ndim)
        return -1;
    int64_t shape[ST_MAX_DIMS];
    logical_shape(l, t, shape);
    return shape[d];
}

static void shape_str(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, size - o, "[");
    for (int i = 0; i < ndim && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

/* prefix+name if it has exactly the given shape; NULL with the loader's error
   set otherwise (or when an earlier call failed). */
static const st_tensor *find_checked(weight_loader *l, const char *name, int ndim,
                                     const int64_t *shape)
{
    if (l->st != GS_OK)
        return NULL;
    const st_tensor *t = wl_find(l, name);
    if (!t) {
        l->st = gi_fail(l->err, GS_ERR_FORMAT, "tensor '%s%s' is missing", l->prefix, name);
        return NULL;
    }
    int64_t logical[ST_MAX_DIMS];
    logical_shape(l, t, logical);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = logical[d] == shape[d];
    if (!same) {
        char want[128], have[128];
        shape_str(want, sizeof want, ndim, shape);
        shape_str(have, sizeof have, t->ndim, logical);
        l->st = gi_fail(l->err, GS_ERR_FORMAT, "tensor '%s%s' has shape %s, expected %s", l->prefix,
                        name, have, want);
        return NULL;
    }
    return t;
}

/* A prepared file's tensor where it lies, if it has the dtype the kernels use
   and the alignment the writer gives every tensor; the loader's error if not. */
static const void *in_place(weight_loader *l, const st_tensor *t, st_dtype want)
{
    if (t->dtype != want || ((uintptr_t)t->data & 63) != 0) {
        l->st = gi_fail(l->err, GS_ERR_FORMAT,
                        "prepared file: tensor '%s' is %s%s, expected %s, 64-byte aligned", t->name,
                        st_dtype_name(t->dtype), ((uintptr_t)t->data & 63) ? " (misaligned)" : "",
                        st_dtype_name(want));
        return NULL;
    }
    return t->data;
}

/* Whether rounding the finite values of src to f16 (h: the same values, in
   any order) overflowed to infinity: f16 stops at 65504, where bf16 and f32
   files may hold more. */
static int f16_overflowed(const float *src, const uint16_t *h, size_t n)
{
    int inf = 0;
    for (size_t i = 0; i < n; i++)
        inf |= (h[i] & 0x7fff) == 0x7c00;
    if (!inf)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((gi_f32_to_f16(src[i]) & 0x7fff) == 0x7c00 && isfinite(src[i]))
            return 1;
    return 0;
}

/* An f16 file's linear row kept as bf16: converted in one pass, no f32 row. */
static int one_pass(const st_tensor *t, int half, int k)
{
    return half == WL_BF16 && t->dtype == ST_F16 && k == 1;
}

/* Whether convert_row needs a row of f32 scratch: not where it writes f32 in
   place or converts in one pass. */
static int needs_f32_row(const st_tensor *t, int half, int k)
{
    return (half || k > 1) && !one_pass(t, half, k);
}

/* Row r of t (per values) into out in the kept precision (half), in the
   kernels' order for a k x k convolution; a holds the row as f32 where the
   conversion needs it. Returns 1 when rounding to f16 overflowed (check). */
static int convert_row(const st_tensor *t, size_t r, size_t per, int half, int cin, int k,
                       int check, float *a, char *out)
{
    if (one_pass(t, half, k)) {
        gi_f16_to_bf16_span((const uint8_t *)t->data + r * per * 2, (uint16_t *)out, per);
        return 0;
    }
    float *row = needs_f32_row(t, half, k) ? a : (float *)out;
    st_span_to_f32(t, r * per, per, row, NULL);
    if (k > 1 && half == WL_BF16)
        wl_conv_row_order_bf16(row, (uint16_t *)out, cin, k * k);
    else if (k > 1 && half == WL_F16)
        wl_conv_row_order_f16(row, (uint16_t *)out, cin, k * k);
    else if (k > 1)
        wl_conv_row_order(row, (float *)out, cin, k * k);
    else if (half == WL_BF16)
        f32_to_bf16(row, (uint16_t *)out, (long)per);
    else if (half == WL_F16)
        gi_f32_to_f16_span(row, (uint16_t *)out, per);
    return check && f16_overflowed(row, (uint16_t *)out, per);
}

/* prefix+name (checked against shape) into the store row by row, as f32, bf16
   or f16 (half): each thread reads a block of rows from the file into its
   buffer, and each row goes -> f32 -> (reordered when k > 1) -> destination
   in the thread's caches, so no full-size temporary is ever written. Same bits
   as converting in one piece. An f16 row kept as f16 in the file's order is
   read straight into place, and one kept as bf16 converted in one pass.
   With pack, a linear layer's [rows, per] weights go into the matmul's blocked
   layout (gemm_pack.h) by panels of 64 rows, each converted into a buffer of
   the thread's and transposed into its place: still one pass. */
static void *load_rows(weight_loader *l, const char *name, int ndim, const int64_t *shape,
                       size_t rows, int cin, int k, int half, int pack)
{
    const st_tensor *t = find_checked(l, name, ndim, shape);
    if (!t)
        return NULL;
    st_dtype kept = half_dtype(half);
    if (l->prepared) {
        void *p = (void *)in_place(l, t, kept);
        weight_entry *e = log_weight(l, name, kept, ndim, shape, p, t->nbytes);
        if (e)
            e->packed = pack;
        return p;
    }
    if ((l->st = st_span_to_f32(t, 0, 0, NULL, l->err)) != GS_OK)
        return NULL;
    size_t per = (size_t)t->numel / rows, row_bytes = per * st_dtype_size(t->dtype);
    size_t elem = half ? sizeof(uint16_t) : sizeof(float);
    char *dst = store_alloc_bytes(l, (size_t)t->numel * elem);
    if (!dst) {
        l->st = gi_fail(l->err, GS_ERR_NO_MEMORY, "out of memory loading '%s%s'", l->prefix, name);
        return NULL;
    }
    int copy = half == WL_F16 && t->dtype == ST_F16 && k == 1 && !pack;
    int check = half == WL_F16 && t->dtype != ST_F16; /* an f16 file's values fit f16 */
    size_t unit = pack ? GEMM_PACK_ROWS : 1;          /* rows converted together */
    size_t block = rows_per_read(l, rows, row_bytes, unit), nb = (rows + block - 1) / block;
    int failed = 0, overflow = 0;
    if (copy) {
        if (copy_rows(l, t, dst) != GS_OK)
            return NULL;
    } else {
#pragma omp parallel num_threads(loader_threads(l)) if (nb > 1)
        {
            /* a: the row as f32, unless written in place or converted in one pass */
            int own_row = needs_f32_row(t, half, k);
            float *a = own_row ? malloc(per * sizeof *a) : NULL;
            char *panel = pack ? malloc(unit * per * elem) : NULL;
            uint8_t *src = malloc(block * row_bytes);
            gi_error e = {0};
            if ((own_row && !a) || (pack && !panel) || !src)
                gi_fail(&e, GS_ERR_NO_MEMORY, "out of memory loading '%s%s'", l->prefix, name);
#pragma omp for schedule(static)
            for (size_t b = 0; b < nb; b++) {
                size_t r0 = b * block, n = rows - r0 < block ? rows - r0 : block;
                if (e.code != GS_OK ||
                    st_read(l->f, t, r0 * row_bytes, n * row_bytes, src, &e) != GS_OK)
                    continue;
                st_tensor v = *t; /* the rows read, as a tensor of their own */
                v.data = src;
                v.numel = (int64_t)(n * per);
                v.nbytes = n * row_bytes;
                for (size_t u = 0; u < n; u += unit) {
                    char *out = dst + (r0 + u) * per * elem, *into = pack ? panel : out;
                    for (size_t i = 0; i < unit; i++)
                        if (convert_row(&v, u + i, per, half, cin, k, check, a,
                                        into + i * per * elem)) {
#pragma omp atomic write
                            overflow = 1;
                        }
                    if (pack)
                        gemm_pack_panel(panel, out, (int)per, !half);
                }
            }
            if (e.code != GS_OK)
                note_read_failure(l, &e, &failed);
            free(src);
            free(panel);
            free(a);
        }
    }
    if (failed)
        return NULL;
    if (overflow) {
        l->st = gi_fail(l->err, GS_ERR_UNSUPPORTED,
                        "tensor '%s%s' holds values beyond f16's range (65504): load this file "
                        "with --precision bf16 or f32",
                        l->prefix, name);
        return NULL;
    }
    weight_entry *e = log_weight(l, name, kept, ndim, shape, dst, (size_t)t->numel * elem);
    if (e)
        e->packed = pack;
    return dst;
}

/* prefix+name as f32 in the store, as the file orders it (biases, norms, the
   layers f32 engines keep unpacked): load_rows by rows of its first dimension. */
static float *load_f32(weight_loader *l, const char *name, int ndim, const int64_t *shape)
{
    size_t rows = ndim > 1 && shape[0] > 0 ? (size_t)shape[0] : 1;
    return load_rows(l, name, ndim, shape, rows, 0, 1, WL_F32, 0);
}

static uint16_t *load_half(weight_loader *l, const char *name, int ndim, const int64_t *shape,
                           size_t rows, int cin, int k)
{
    return load_rows(l, name, ndim, shape, rows, cin, k, l->half, 0);
}

float *wl_tensor(weight_loader *l, const char *name, int ndim, const int64_t *shape)
{
    return load_f32(l, name, ndim, shape);
}

uint16_t *wl_tensor_half(weight_loader *l, const char *name, int ndim, const int64_t *shape)
{
    return load_half(l, name, ndim, shape, ndim > 1 ? (size_t)shape[0] : 1, 0, 1);
}

/* Keeps map (len bytes) for the store's life; 0 when there is no room to. */
static int store_keep_map(weight_store *ws, void *map, size_t len)
{
    if (ws->n_maps == ws->cap_maps) {
        int cap = ws->cap_maps ? 2 * ws->cap_maps : 4;
        struct weight_map *m = gi_realloc(ws->maps, (size_t)cap * sizeof *m);
        if (!m)
            return 0;
        ws->maps = m;
        ws->cap_maps = cap;
    }
    ws->maps[ws->n_maps++] = (struct weight_map){map, len};
    return 1;
}

const void *wl_table(weight_loader *l, const char *name, int ndim, const int64_t *shape,
                     st_dtype *dtype)
{
    const st_tensor *t = find_checked(l, name, ndim, shape);
    if (!t)
        return NULL;
    int kept = (t->dtype == ST_F32 || t->dtype == ST_BF16 || t->dtype == ST_F16) &&
               (uintptr_t)t->data % st_dtype_size(t->dtype) == 0;
    if (kept && l->prepared) {
        const void *p = in_place(l, t, t->dtype);
        *dtype = t->dtype;
        log_weight(l, name, t->dtype, ndim, shape, p, t->nbytes);
        return p;
    }
    void *base = NULL;
    size_t len = 0;
    const void *p = kept ? st_map_tensor(l->f, t, &base, &len) : NULL;
    if (p && !store_keep_map(l->store, base, len)) {
        munmap(base, len);
        l->st = gi_fail(l->err, GS_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    if (p) {
        *dtype = t->dtype;
        log_weight(l, name, t->dtype, ndim, shape, p, t->nbytes);
        return p;
    }
    *dtype = l->half ? half_dtype(l->half) : ST_F32;
    return l->half ? (const void *)wl_tensor_half(l, name, ndim, shape)
                   : (const void *)wl_tensor(l, name, ndim, shape);
}

/* A prepared file's packed [out, in] weights, unpacked into the store. */
static void *load_unpacked(weight_loader *l, const char *name, int out, int in)
{
    int64_t shape[2] = {out, in};
    const st_tensor *t = find_checked(l, name, 2, shape);
    st_dtype kept = half_dtype(l->half);
    const void *src = t ? in_place(l, t, kept) : NULL;
    if (!src)
        return NULL;
    void *dst = store_alloc_bytes(l, t->nbytes);
    if (!dst) {
        l->st = gi_fail(l->err, GS_ERR_NO_MEMORY, "out of memory loading '%s%s'", l->prefix, name);
        return NULL;
    }
    gemm_unpack(src, dst, out, in, kept == ST_F32);
    log_weight(l, name, kept, 2, shape, dst, t->nbytes);
    return dst;
}

void wl_linear(weight_loader *l, const char *name, int out, int in, int bias, linear_weights *lw)
{
    char n[256];
    memset(lw, 0, sizeof *lw);
    lw->out = out;
    lw->in = in;
    wl_name(n, sizeof n, "%s.weight", name);
    int fits = gemm_pack_fits(out, in);
    /* a prepared file's packed weights stay in place where this CPU multiplies
       from that layout; elsewhere they are unpacked into memory */
    int stored_packed = l->prepared && l->file_packed && fits;
    lw->packed = fits && l->pack && (!l->prepared || stored_packed);
    void **w = l->half ? (void **)&lw->wb : (void **)&lw->w;
    if (stored_packed && !lw->packed)
        *w = load_unpacked(l, n, out, in);
    else if (lw->packed)
        *w = load_rows(l, n, 2, (int64_t[]){out, in}, (size_t)out, in, 1, l->half, 1);
    else if (l->half)
        lw->wb = load_half(l, n, 2, (int64_t[]){out, in}, (size_t)out, in, 1);
    else
        lw->w = load_f32(l, n, 2, (int64_t[]){out, in});
    if (bias)
        lw->b = wl_tensor(l, wl_name(n, sizeof n, "%s.bias", name), 1, (int64_t[]){out});
}

void wl_conv(weight_loader *l, const char *name, int cout, int cin, int k, conv_weights *cw)
{
    char n[256];
    memset(cw, 0, sizeof *cw);
    cw->cout = cout;
    cw->cin = cin;
    cw->k = k;
    wl_name(n, sizeof n, "%s.weight", name);
    const st_tensor *t = wl_find(l, n);
    if (l->half) {
        /* attention projections may be saved as linear layers */
        if (k == 1 && t && t->ndim == 2)
            cw->wb = load_half(l, n, 2, (int64_t[]){cout, cin}, (size_t)cout, cin, 1);
        else
            cw->wb = load_half(l, n, 4, (int64_t[]){cout, cin, k, k}, (size_t)cout, cin, k);
    } else if (k == 1 && t && t->ndim == 2) {
        cw->w = load_f32(l, n, 2, (int64_t[]){cout, cin});
    } else {
        /* [cout, cin, ky, kx] -> [cout, ky, kx, cin] to match NHWC patches */
        cw->w = load_rows(l, n, 4, (int64_t[]){cout, cin, k, k}, (size_t)cout, cin, k, 0, 0);
    }
    cw->b = wl_tensor(l, wl_name(n, sizeof n, "%s.bias", name), 1, (int64_t[]){cout});
}

void wl_norm(weight_loader *l, const char *name, int c, norm_weights *nw)
{
    char n[256];
    nw->c = c;
    nw->g = wl_tensor(l, wl_name(n, sizeof n, "%s.weight", name), 1, (int64_t[]){c});
    nw->b = wl_tensor(l, wl_name(n, sizeof n, "%s.bias", name), 1, (int64_t[]){c});
}
