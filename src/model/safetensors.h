/*
 * safetensors - a strict, memory-mapped reader for .safetensors files.
 *
 * The file is mapped read-only; tensors are views into the mapping. Everything
 * a hostile file can lie about is checked at open time (header length, JSON,
 * dtypes, shapes against byte ranges, offsets inside the file and not
 * overlapping), so later code can trust every st_tensor it gets.
 */
#ifndef GS_SAFETENSORS_H
#define GS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER_BYTES (100u << 20) /* the reference implementation's cap */

typedef enum st_dtype {
    ST_F64,
    ST_F32,
    ST_F16,
    ST_BF16,
    ST_I64,
    ST_I32,
    ST_I16,
    ST_I8,
    ST_U8,
    ST_BOOL,
    ST_F8_E4M3,
    ST_F8_E5M2,
    ST_DTYPE_COUNT
} st_dtype;

typedef struct st_tensor {
    const char *name; /* NUL-terminated, owned by the file handle */
    st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    int64_t numel;
    const uint8_t *data; /* into the mapping; may be unaligned */
    size_t nbytes;
} st_tensor;

typedef struct st_file st_file;

/* Maps and validates path. On failure returns GS_ERR_IO / GS_ERR_FORMAT with a
 * message naming the problem, and *out is NULL. */
gs_status st_open(const char *path, st_file **out, gi_error *err);
/* Same checks on a buffer the caller keeps alive while the handle lives. */
gs_status st_open_memory(const void *data, size_t size, st_file **out, gi_error *err);
void st_close(st_file *f);

size_t st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, size_t i);           /* sorted by name */
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */
/* Value of a __metadata__ string entry, or NULL. */
const char *st_metadata(const st_file *f, const char *key);
size_t st_file_size(const st_file *f);
const void *st_file_bytes(const st_file *f); /* the whole mapped file */

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);

/* Converts a floating tensor (F64/F32/F16/BF16) to f32 in dst (numel floats). */
gs_status st_to_f32(const st_tensor *t, float *dst, gi_error *err);
/* Elements [first, first+count) of a float tensor as f32. */
gs_status st_span_to_f32(const st_tensor *t, size_t first, size_t count, float *dst, gi_error *err);

/* Bytes [offset, offset+len) of t's data into dst. From an opened file they
   are read with pread, not through the mapping: a loader that converts the
   weights copies them anyway, and a read copies out of the page cache where a
   first touch of each mapped 4 KiB page costs a fault (on VMs that shadow the
   guest's page tables, a trap to the hypervisor: ~0.7 s for an SD1.5 file
   against ~0.15 s read). A file cut short since it was opened is GS_ERR_IO
   here, where the mapping would have raised SIGBUS. */
gs_status st_read(const st_file *f, const st_tensor *t, size_t offset, size_t len, void *dst,
                  gi_error *err);
/* Which file an opened st_file is, as it was when opened (device, inode, size,
   modification time): a file read again later can be told apart from one
   replaced or rewritten since. Zero for st_open_memory. */
typedef struct st_identity {
    uint64_t dev, ino, size;
    int64_t mtime_ns;
} st_identity;
st_identity st_file_identity(const st_file *f);
/* Whether f is the file id was taken from, unchanged. */
int st_same_file(const st_file *f, const st_identity *id);

/* t's bytes through a read-only mapping of their own that outlives f, paged in
   as they are read: for a table of which a run reads a few rows, only those
   count as the process's memory. NULL where f is not an opened file
   (st_open_memory) or the mapping fails. *base, *len: what to munmap. */
const void *st_map_tensor(const st_file *f, const st_tensor *t, void **base, size_t *len);
/* Drops the whole pages of t's bytes from the process (they stay in the page
   cache and come back on access): a loader calls it once t is converted. */
void st_drop_pages(const st_file *f, const st_tensor *t);
/* Same to f64 (for golden data in tests). */
gs_status st_to_f64(const st_tensor *t, double *dst, gi_error *err);

/* True when t has exactly the given shape (ndim entries). */
int st_shape_is(const st_tensor *t, int ndim, const int64_t *shape);

#endif
