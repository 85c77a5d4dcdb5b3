/*
 * random_checkpoint - gs_checkpoint_write_random: a checkpoint with the real
 * names and shapes of an architecture and deterministic random weights, so
 * full-size speed and memory can be measured without downloading weights.
 *
 * Weights are uniform with the variance of a fan-in scaled init (keeps
 * activations in a realistic range so no denormals or overflows skew timings);
 * norms are identity, biases zero. A counter-based generator (splitmix64 of
 * seed, tensor index and element index) makes every value independent of
 * write order.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "compute/half.h"
#include "gesso.h"
#include "model/ckpt_layout.h"
#include "model/random_checkpoint.h"

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static float init_value(const layout_tensor *t, uint64_t stream, int64_t i)
{
    switch (t->init) {
    case INIT_ZERO: return 0.0f;
    case INIT_ONE: return 1.0f;
    case INIT_POSITION_IDS: return (float)i;
    default: break;
    }
    uint64_t r = splitmix64(stream ^ splitmix64((uint64_t)i));
    float u = (float)((r >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; /* [-1, 1) */
    /* uniform[-a,a] has std a/sqrt(3) */
    float std = t->init == INIT_EMBED ? 0.02f : 1.0f / sqrtf((float)t->fan_in);
    return u * std * 1.7320508f;
}

static size_t elems(const layout_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= (size_t)t->shape[i];
    return n;
}

gs_status random_checkpoint_write(const layout_config *cfg, const char *arch, const char *dtype,
                                  uint64_t seed, const char *path, gi_error *out_err)
{
    gi_error err = {0};
    layout_tensor *ts = NULL;
    int count = 0;
    json_t *hdr = NULL;
    char *text = NULL;
    FILE *f = NULL;
    uint8_t *buf = NULL;
    gs_status st = GS_OK;
    if (!cfg || !arch || !path) {
        st = gi_fail(&err, GS_ERR_INVALID_ARGUMENT, "architecture and path are required");
        goto out;
    }
    if (!dtype)
        dtype = "f16";
    int is_f16 = strcmp(dtype, "f16") == 0, is_f32 = strcmp(dtype, "f32") == 0,
        is_bf16 = strcmp(dtype, "bf16") == 0;
    if (!is_f16 && !is_f32 && !is_bf16) {
        st = gi_fail(&err, GS_ERR_INVALID_ARGUMENT, "dtype '%s' is not f16, bf16 or f32", dtype);
        goto out;
    }
    size_t esize = is_f32 ? 4 : 2;
    const char *st_name = is_f32 ? "F32" : is_f16 ? "F16" : "BF16";
    if ((st = layout_build(cfg, &ts, &count, &err)) != GS_OK)
        goto out;

    hdr = json_object();
    /* ModelSpec keys as real files (and the reference fixtures) carry them: what
       the file is, and that it predicts noise */
    json_t *meta =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "format",
                  cfg->family == LAYOUT_SDXL ? "sgm-single-file" : "ldm-single-file", "family",
                  layout_family_name(cfg), "arch", arch, "note", "random weights written by gesso",
                  "modelspec.architecture", layout_modelspec_architecture(cfg),
                  "modelspec.prediction_type", "epsilon");
    if (!hdr || !meta) {
        st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    json_object_set_new(hdr, "__metadata__", meta);
    size_t off = 0, max_elems = 0;
    for (int i = 0; i < count; i++) {
        const layout_tensor *t = &ts[i];
        size_t n = elems(t);
        size_t bytes = n * (t->init == INIT_POSITION_IDS ? 8 : esize);
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++)
            json_array_append_new(shape, json_integer(t->shape[d]));
        json_t *e =
            json_pack("{s:s,s:o,s:[I,I]}", "dtype", t->init == INIT_POSITION_IDS ? "I64" : st_name,
                      "shape", shape, "data_offsets", (json_int_t)off, (json_int_t)(off + bytes));
        if (!e || json_object_set_new(hdr, t->name, e) != 0) {
            st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
            goto out;
        }
        off += bytes;
        max_elems = n > max_elems ? n : max_elems;
    }
    text = json_dumps(hdr, JSON_COMPACT);
    buf = gi_malloc(max_elems * 8);
    if (!text || !buf) {
        st = gi_fail(&err, GS_ERR_NO_MEMORY, "out of memory");
        goto out;
    }
    /* pad the header with spaces so the data starts 8-byte aligned */
    size_t hlen = strlen(text), padded = (hlen + 8 + 7) / 8 * 8 - 8;
    f = fopen(path, "wb");
    if (!f) {
        st = gi_fail(&err, GS_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
        goto out;
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len, 1, 8, f) == 8 && fwrite(text, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++)
        ok = fputc(' ', f) != EOF;
    for (int k = 0; ok && k < count; k++) {
        const layout_tensor *t = &ts[k];
        size_t n = elems(t);
        uint64_t stream = splitmix64(seed ^ splitmix64((uint64_t)k + 1));
        if (t->init == INIT_POSITION_IDS) {
            for (size_t i = 0; i < n; i++) {
                int64_t v = (int64_t)i;
                memcpy(buf + 8 * i, &v, 8);
            }
            ok = fwrite(buf, 8, n, f) == n;
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            float v = init_value(t, stream, (int64_t)i);
            if (is_f32) {
                memcpy(buf + 4 * i, &v, 4);
            } else {
                uint16_t h = is_f16 ? gi_f32_to_f16(v) : gi_f32_to_bf16(v);
                memcpy(buf + 2 * i, &h, 2);
            }
        }
        ok = fwrite(buf, esize, n, f) == n;
    }
    if (fclose(f) != 0)
        ok = 0;
    f = NULL;
    if (!ok) {
        remove(path);
        st = gi_fail(&err, GS_ERR_IO, "writing '%s' failed: %s", path, strerror(errno));
    }
out:
    if (f) {
        fclose(f);
        remove(path);
    }
    gi_free(buf);
    free(text);
    json_decref(hdr);
    gi_free(ts);
    if (st != GS_OK && out_err)
        *out_err = err;
    return st;
}

gs_status gs_checkpoint_write_random(const char *arch, const char *dtype, uint64_t seed,
                                     const char *path, char *errmsg, size_t errmsg_size)
{
    gi_error err = {0};
    layout_config cfg;
    gs_status st = !arch ? gi_fail(&err, GS_ERR_INVALID_ARGUMENT, "architecture is required")
                         : layout_config_for(arch, &cfg, &err);
    if (st == GS_OK)
        st = random_checkpoint_write(&cfg, arch, dtype, seed, path, &err);
    if (st != GS_OK && errmsg && errmsg_size)
        snprintf(errmsg, errmsg_size, "%s", err.msg);
    return st;
}
