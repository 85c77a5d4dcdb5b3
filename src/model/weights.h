/*
 * weights - reading a network's tensors out of a checkpoint, once.
 *
 * A weight_loader walks a model's tensors by name under a prefix, checks each
 * shape against what the architecture expects, converts it to f32 or bf16 in
 * the layout the kernels want, and records the buffer in a weight_store that
 * frees them together. A prepared file (written by gesso models prepare from
 * such a load) already holds every tensor in its final dtype and layout,
 * 64-byte aligned: its weights are used where the mapping has them. The first failure sticks (later
 * calls return NULL quietly), so a loader reads as a straight list and checks once at the end.
 */
#ifndef GS_WEIGHTS_H
#define GS_WEIGHTS_H

#include "compute/ops.h"
#include "model/safetensors.h"

/* Weights live in large huge-page chunks, bump-allocated: one fault per 2 MiB
   instead of per 4 KiB when they are first written, fewer TLB misses when the
   GEMMs stream them. Chunk tails never written cost address space, not RSS. */
typedef struct weight_store {
    void **bufs; /* the chunks */
    int n, cap;
    size_t used, size; /* of the newest chunk */
    size_t bytes;      /* handed out in all */
    struct weight_map {
        void *ptr;
        size_t len;
    } * maps; /* tables read through mappings of the file (wl_table) */
    int n_maps, cap_maps;
} weight_store;

/* What a loader read, by full tensor name, as the kernels hold it: the record
   a prepared file is written from. */
typedef struct weight_entry {
    char *name;
    st_dtype dtype; /* ST_F32, ST_BF16 or ST_F16 */
    int ndim;
    int64_t shape[4]; /* 4-D convolutions in the kernels' order [cout, k, k, cin] */
    const void *data;
    size_t nbytes;
    int packed; /* a 2-D weight held in gemm_pack's layout rather than [out, in] */
} weight_entry;

typedef struct weight_log {
    weight_entry *e;
    size_t n, cap;
} weight_log;

/* e's bytes in the stored layout ([out, in], or the kernels' convolution
   order): e->data, or for a packed weight an unpacked copy, left in *copy for
   the caller to free (gi_aligned_free). NULL when out of memory. */
const void *weight_entry_plain(const weight_entry *e, void **copy);

void weight_log_free(weight_log *log);
/* The newest entry named name, or NULL: how a LoRA finds the resident weight
   of a checkpoint tensor. A model keeps its networks' log for its life. */
const weight_entry *weight_log_find(const weight_log *log, const char *name);
/* Forgets the entries under prefix (their network was freed). */
void weight_log_drop_prefix(weight_log *log, const char *prefix);

/* The dtype a loader keeps GEMM weights (linear, conv) in. */
enum { WL_F32 = 0, WL_BF16 = 1, WL_F16 = 2 };

typedef struct weight_loader {
    const st_file *f;
    const char *prefix;
    weight_store *store;
    gi_error *err;
    gs_status st;
    int half;        /* WL_F32, or GEMM weights kept in WL_BF16 or WL_F16 only */
    int threads;     /* for conversion; 0 = OpenMP's default */
    int prepared;    /* f is a prepared file: weights are used in place, not converted */
    int pack;        /* linear layers' weights in the matmul's layout (gemm_pack.h) */
    int file_packed; /* f is a prepared file holding them so (for this precision) */
    weight_log *log; /* when not NULL, every weight read is recorded here */
} weight_loader;

/* Whether f is a prepared file (gesso models prepare), and its precision (WL_*). */
int weights_file_prepared(const st_file *f, int *half);

/* Whether prepared file f holds its linear layers' weights of precision half
   (WL_*) packed for the matmul (gemm_pack.h): metadata "gesso.packed" lists
   the precisions, as the CPU that prepared it packed them. */
int weights_file_packed(const st_file *f, int half);

/* The name of a WL_* precision ("f32", "bf16", "f16"): prepared files' metadata. */
const char *wl_precision_name(int half);

void weight_store_free(weight_store *ws);

/* A loader for the tensors under prefix of f, into store (in place when f is prepared). */
weight_loader wl_begin(const st_file *f, const char *prefix, weight_store *store, int half,
                       weight_log *log, gi_error *err);
/* Whether loaders pack linear weights for the matmul where it helps (on by
   default; tests turn it off to compare the two layouts). */
void wl_test_set_packing(int on);

/* The tensor prefix+name, or NULL (no error recorded). */
const st_tensor *wl_find(weight_loader *l, const char *name);
/* Dimension d of prefix+name, or -1 when absent (no error recorded). */
int64_t wl_dim(weight_loader *l, const char *name, int d);
/* f32 copy of prefix+name, which must have exactly the given shape. */
float *wl_tensor(weight_loader *l, const char *name, int ndim, const int64_t *shape);

/* 16-bit copy of prefix+name in the loader's half dtype (bf16 or f16): for
   tables read row by row (embeddings) and fused projections. */
uint16_t *wl_tensor_half(weight_loader *l, const char *name, int ndim, const int64_t *shape);

/* prefix+name as the file holds it (f32, bf16 or f16: *dtype says which),
   read through a mapping of the file rather than copied: for a table of
   which a run reads a few rows (token embeddings), only the rows read become
   the process's memory, not the whole table. A file that is not mapped, or
   another dtype, gets a copy in the loader's dtype instead. */
const void *wl_table(weight_loader *l, const char *name, int ndim, const int64_t *shape,
                     st_dtype *dtype);

/* Layers by their base name (".weight"/".bias" appended). */
void wl_linear(weight_loader *l, const char *name, int out, int in, int bias, linear_weights *lw);
/* A [cout, cin, k, k] convolution, or a linear [cout, cin] stored for a 1x1 one. */
void wl_conv(weight_loader *l, const char *name, int cout, int cin, int k, conv_weights *cw);
void wl_norm(weight_loader *l, const char *name, int c, norm_weights *nw);

/* printf-style name builder into a static-size buffer owned by the caller. */
const char *wl_name(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
