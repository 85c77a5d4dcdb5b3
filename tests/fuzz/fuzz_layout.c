/*
 * fuzz_layout - checkpoint recognition and loading on valid safetensors
 * files whose tensor names and shapes are the fuzzer's. The input starts
 * from a real layout (ckpt_layout.c: SD1, SD2 or SDXL, narrowed so a file
 * is a few MB) and edits it: tensors dropped, dimensions changed,
 * ranks changed, names swapped or replaced by the input's own bytes. The
 * file is written (zeros, f16/f32/bf16) into memory and opened by
 * gs_model_load, the real path: pickle refusal, family detection, the
 * identification of what is not a checkpoint, each network's loader with
 * its shape checks, the fit of the networks to each other. Then
 * gs_checkpoint_inspect, as `gesso models list` reads the file.
 *
 * Input: [arch][vocab][positions][dtype] then 4-byte edits [op][index lo]
 * [index hi][value]; op 4 (rename) takes value % 48 bytes of name after it.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "fuzzutil.h"
#include "gesso.h"
#include "model/ckpt_layout.h"

#define MAX_DATA (8u << 20) /* bytes of tensor data; bigger edits are skipped */

static gs_engine *eng;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 1;
    eo.precision = GS_PRECISION_F32;
    if (gs_engine_create(&eo, &eng) != GS_OK)
        abort();
    return 0;
}

typedef struct tensor {
    char name[128];
    int ndim;
    int64_t shape[4];
    int dropped;
} tensor;

static int64_t numel(const tensor *t)
{
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++)
        n *= t->shape[d];
    return n;
}

/* The edited layout as a safetensors file (malloc'd), or NULL when too big. */
static uint8_t *write_file(const tensor *t, int n, int dtype, size_t *size)
{
    static const char *const names[] = {"F16", "F32", "BF16"};
    static const int widths[] = {2, 4, 2};
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "pt"));
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (t[i].dropped)
            continue;
        size_t bytes = (size_t)numel(&t[i]) * (size_t)widths[dtype];
        if (off + bytes > MAX_DATA) {
            json_decref(h);
            return NULL;
        }
        json_t *shape = json_array();
        for (int d = 0; d < t[i].ndim; d++)
            json_array_append_new(shape, json_integer(t[i].shape[d]));
        /* a name that is not UTF-8 is refused by jansson, and by the reader */
        json_object_set_new(h, t[i].name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", names[dtype], "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + bytes)));
        off += bytes;
    }
    char *text = json_dumps(h, JSON_COMPACT);
    json_decref(h);
    if (!text)
        return NULL;
    size_t hl = strlen(text);
    if (getenv("FUZZ_DEBUG"))
        fprintf(stderr, "%d tensors, %zu bytes of header, %zu of data\n", n, hl, off);
    uint8_t *buf = calloc(1, 8 + hl + off);
    if (!buf)
        abort();
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(buf + 8, text, hl);
    free(text);
    *size = 8 + hl + off;
    return buf;
}

static void load(const uint8_t *file, size_t size)
{
    char path[64];
    int fd = fuzz_memfile(file, size, path);
    if (fd < 0)
        return;
    gs_model *m = NULL;
    if (gs_model_load(eng, path, &m) == GS_OK) {
        gs_model_info info;
        gs_model_get_info(m, &info);
        gs_model_free(m);
    } else if (getenv("FUZZ_DEBUG")) {
        fprintf(stderr, "load: %s\n", gs_engine_errmsg(eng));
    }
    gs_checkpoint_info ci;
    char msg[256];
    if (gs_checkpoint_inspect(path, &ci, msg, sizeof msg) != GS_OK && getenv("FUZZ_DEBUG"))
        fprintf(stderr, "inspect: %s\n", msg);
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const archs[] = {"sd15-small", "sd2-small", "sdxl-small"};
    if (size < 4)
        return 0;
    layout_config cfg;
    gi_error err = {0};
    if (layout_config_for(archs[data[0] % 3], &cfg, &err) != GS_OK)
        abort();
    /* narrower than the test models, so a file is a few MB at most: the
       topology (levels, attention, encoders) is the family's */
    cfg.vocab = 1 + data[1] % 64;
    cfg.positions = 1 + data[2] % 80;
    cfg.clip_layers = cfg.clip_layers ? 1 : 0;
    cfg.oc_layers = cfg.oc_layers ? 1 : 0;
    cfg.vae_channels = 32;
    for (int i = 0; i < 4; i++)
        cfg.vae_mult[i] = 1;
    cfg.unet_levels = 2; /* the loaders count the levels in the file */
    cfg.unet_mid_depth = 1;
    if (cfg.family == LAYOUT_SD1) { /* 8 heads of 4 */
        cfg.unet_channels = 32;
        cfg.unet_mult[1] = 1;
    }
    int dtype = data[3] % 3;
    layout_tensor *lt = NULL;
    int n = 0;
    if (layout_build(&cfg, &lt, &n, &err) != GS_OK)
        abort();
    tensor *t = calloc((size_t)n, sizeof *t);
    if (!t)
        abort();
    for (int i = 0; i < n; i++) {
        memcpy(t[i].name, lt[i].name, sizeof t[i].name);
        t[i].ndim = lt[i].ndim;
        memcpy(t[i].shape, lt[i].shape, sizeof t[i].shape);
    }
    gi_free(lt);
    for (size_t p = 4; p + 4 <= size;) {
        int op = data[p] % 5, i = (data[p + 1] | data[p + 2] << 8) % n, v = data[p + 3];
        p += 4;
        switch (op) {
        case 0: t[i].dropped = 1; break;
        case 1: t[i].shape[v & 3] = v >> 2; break; /* 0..63, in a dimension maybe unused */
        case 2: t[i].ndim = v % 5; break;
        case 3: {
            char tmp[128];
            int j = (i + v + 1) % n;
            memcpy(tmp, t[i].name, sizeof tmp);
            memcpy(t[i].name, t[j].name, sizeof tmp);
            memcpy(t[j].name, tmp, sizeof tmp);
            break;
        }
        default: {
            size_t len = (size_t)v % 48;
            len = len < size - p ? len : size - p;
            snprintf(t[i].name, sizeof t[i].name, "%.*s", (int)len, (const char *)data + p);
            p += len;
        }
        }
    }
    size_t file_size = 0;
    uint8_t *file = write_file(t, n, dtype, &file_size);
    if (file)
        load(file, file_size);
    free(file);
    free(t);
    return 0;
}
