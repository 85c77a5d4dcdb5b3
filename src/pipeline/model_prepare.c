/*
 * model_prepare - gs_checkpoint_prepare: a checkpoint's weights written as the
 * engine holds them after a load (bf16 or f32, convolutions in the kernels'
 * [cout, k, k, cin] order, linear layers packed for the matmul where the
 * engine packed them: "gesso.packed"), each 64-byte aligned, in a safetensors
 * file marked with __metadata__ "gesso.prepared". Loading such a file maps it and uses the
 * weights where they lie: no conversion, no fresh memory to fill, and worker
 * processes on one machine share one copy in the page cache.
 *
 * It is a safetensors file by the format's rules, but its 4-D tensors are not
 * in PyTorch's order nor its packed 2-D ones in any: other tools must load the
 * original checkpoint.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "pipeline/engine.h"

#define ALIGN 64

static gs_status write_all(FILE *fp, const void *p, size_t n, const char *path, gi_error *err)
{
    if (n && fwrite(p, 1, n, fp) != n)
        return gi_fail(err, GS_ERR_IO, "cannot write '%s': %s", path, strerror(errno));
    return GS_OK;
}

/* The header JSON, padded with spaces so the data starts 64-byte aligned. */
static char *header_json(const weight_log *log, const gs_model *m, size_t *len, gi_error *err)
{
    json_t *root = json_object(), *meta = json_object();
    char *text = NULL;
    if (!root || !meta)
        goto nomem;
    json_object_set_new(meta, "gesso.prepared", json_string(wl_precision_name(m->half)));
    json_object_set_new(meta, "gesso.layout", json_string("1"));
    /* linear layers go out as the engine holds them, packed for the matmul
       where this CPU's oneDNN reads that layout: the file says for which
       precisions, and a CPU that wants another layout unpacks them at load */
    int packed_bf16 = 0, packed_f32 = 0;
    for (size_t i = 0; i < log->n; i++) {
        packed_bf16 |= log->e[i].packed && log->e[i].dtype == ST_BF16;
        packed_f32 |= log->e[i].packed && log->e[i].dtype == ST_F32;
    }
    if (packed_bf16 || packed_f32)
        json_object_set_new(meta, "gesso.packed",
                            json_string(packed_bf16 && packed_f32 ? "bf16,f32"
                                        : packed_bf16             ? "bf16"
                                                                  : "f32"));
    json_object_set_new(meta, "gesso.source", json_string(m->name));
    /* what the original said it predicts, so the prepared file says it too */
    json_object_set_new(meta, "modelspec.prediction_type",
                        json_string(m->prediction == GS_PREDICTION_V ? "v" : "epsilon"));
    json_object_set_new(root, "__metadata__", meta);
    meta = NULL;
    size_t off = 0;
    for (size_t i = 0; i < log->n; i++) {
        const weight_entry *e = &log->e[i];
        json_t *t = json_object(), *shape = json_array(), *offs = json_array();
        if (!t || !shape || !offs) {
            json_decref(t);
            json_decref(shape);
            json_decref(offs);
            goto nomem;
        }
        for (int d = 0; d < e->ndim; d++)
            json_array_append_new(shape, json_integer(e->shape[d]));
        off = (off + ALIGN - 1) / ALIGN * ALIGN;
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + e->nbytes)));
        off += e->nbytes;
        json_object_set_new(t, "dtype",
                            json_string(e->dtype == ST_BF16  ? "BF16"
                                        : e->dtype == ST_F16 ? "F16"
                                                             : "F32"));
        json_object_set_new(t, "shape", shape);
        json_object_set_new(t, "data_offsets", offs);
        if (json_object_set_new(root, e->name, t) != 0)
            goto nomem;
    }
    char *raw = json_dumps(root, JSON_COMPACT);
    if (!raw)
        goto nomem;
    size_t n = strlen(raw), padded = (8 + n + ALIGN - 1) / ALIGN * ALIGN - 8;
    text = gi_malloc(padded + 1);
    if (text) {
        memcpy(text, raw, n);
        memset(text + n, ' ', padded - n);
        text[padded] = '\0';
        *len = padded;
    }
    free(raw);
    json_decref(root);
    if (!text)
        gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    return text;
nomem:
    json_decref(meta);
    json_decref(root);
    gi_fail(err, GS_ERR_NO_MEMORY, "out of memory");
    return NULL;
}

static gs_status write_prepared(const weight_log *log, const gs_model *m, const char *path,
                                gi_error *err)
{
    size_t hlen = 0;
    char *header = header_json(log, m, &hlen, err);
    if (!header)
        return err->code;
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        gi_free(header);
        return gi_fail(err, GS_ERR_INVALID_ARGUMENT, "output path too long");
    }
    FILE *fp = fopen(tmp, "wb");
    if (!fp) {
        gi_free(header);
        return gi_fail(err, GS_ERR_IO, "cannot create '%s': %s", tmp, strerror(errno));
    }
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    static const unsigned char zeros[ALIGN];
    gs_status st = write_all(fp, le, 8, tmp, err);
    if (st == GS_OK)
        st = write_all(fp, header, hlen, tmp, err);
    size_t off = 0;
    for (size_t i = 0; i < log->n && st == GS_OK; i++) {
        size_t pad = (ALIGN - off % ALIGN) % ALIGN;
        st = write_all(fp, zeros, pad, tmp, err);
        if (st == GS_OK)
            st = write_all(fp, log->e[i].data, log->e[i].nbytes, tmp, err);
        off += pad + log->e[i].nbytes;
    }
    if (fclose(fp) != 0 && st == GS_OK)
        st = gi_fail(err, GS_ERR_IO, "cannot write '%s': %s", tmp, strerror(errno));
    if (st == GS_OK && rename(tmp, path) != 0)
        st = gi_fail(err, GS_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    if (st != GS_OK)
        unlink(tmp);
    gi_free(header);
    return st;
}

gs_status gs_checkpoint_prepare(gs_engine *eng, const char *src, const char *dst)
{
    if (!eng || !src || !dst)
        return GS_ERR_INVALID_ARGUMENT;
    gi_error err = {0};
    weight_log log = {0};
    gs_model *m = NULL;
    gs_status st = model_load_logged(eng, src, &log, &m);
    if (st != GS_OK) {
        weight_log_free(&log);
        return st; /* the engine has the message */
    }
    if (m->prepared)
        st = gi_fail(&err, GS_ERR_INVALID_ARGUMENT, "'%s' is already a prepared file", src);
    else
        st = write_prepared(&log, m, dst, &err);
    gs_model_free(m);
    weight_log_free(&log);
    return st == GS_OK ? GS_OK : engine_fail(eng, &err);
}
