/*
 * lora_list - GET /v1/loras and A1111's GET /sdapi/v1/loras. The folder is
 * read on each call, as the model list is: an operator drops a file in and
 * the next listing has it. Only top-level NAME.safetensors files whose NAME
 * a job may give are listed, since those are the only ones a job can use.
 */
#include "api/lora_list.h"

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api/server_private.h"
#include "job/job_spec.h"

#define EXT ".safetensors"
#define EXT_LEN 12
/* A LoRA's header is its tensor index plus kohya's training notes (tag
   frequencies run to hundreds of KB); past this the metadata is left out
   rather than read into every listing. */
#define MAX_HEADER (16u << 20)

typedef struct lora_file {
    char name[JOB_MODEL_MAX + 1];
    char path[PATH_MAX + EXT_LEN + JOB_MODEL_MAX + 2];
    off_t bytes;
} lora_file;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const lora_file *)a)->name, ((const lora_file *)b)->name);
}

/* The folder's usable LoRAs, sorted by name, in *out (free it); their count. */
static int list_folder(const char *dir, lora_file **out)
{
    *out = NULL;
    DIR *d = dir ? opendir(dir) : NULL;
    if (!d)
        return 0;
    int n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len <= EXT_LEN || len - EXT_LEN > JOB_MODEL_MAX ||
            strcmp(de->d_name + len - EXT_LEN, EXT) != 0)
            continue;
        lora_file f;
        snprintf(f.name, sizeof f.name, "%.*s", (int)(len - EXT_LEN), de->d_name);
        snprintf(f.path, sizeof f.path, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (!job_model_name_ok(f.name) || stat(f.path, &sb) != 0 || !S_ISREG(sb.st_mode))
            continue;
        f.bytes = sb.st_size;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            lora_file *grown = realloc(*out, (size_t)cap * sizeof *grown);
            if (!grown)
                break;
            *out = grown;
        }
        (*out)[n++] = f;
    }
    closedir(d);
    if (n > 0)
        qsort(*out, (size_t)n, sizeof **out, by_name);
    return n;
}

static const char *lora_dir(http_request *r)
{
    return r->s->o->limits.lora_dir;
}

enum MHD_Result native_list_loras(http_request *r)
{
    lora_file *files;
    int n = list_folder(lora_dir(r), &files);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        char file[JOB_MODEL_MAX + EXT_LEN + 1];
        snprintf(file, sizeof file, "%s" EXT, files[i].name);
        json_array_append_new(arr, json_pack("{s:s,s:s,s:I}", "name", files[i].name, "file", file,
                                             "bytes", (json_int_t)files[i].bytes));
    }
    free(files);
    return http_reply_json(r, 200, json_pack("{s:o}", "loras", arr), NULL);
}

/* The safetensors header's __metadata__ object (a new reference), or NULL. */
static json_t *header_metadata(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    unsigned char len8[8];
    json_t *meta = NULL;
    if (fread(len8, 1, 8, f) == 8) {
        uint64_t len = 0;
        for (int i = 7; i >= 0; i--)
            len = len << 8 | len8[i];
        char *buf = len > 1 && len <= MAX_HEADER ? malloc(len) : NULL;
        if (buf && fread(buf, 1, len, f) == len) {
            json_t *header = json_loadb(buf, len, 0, NULL);
            meta = json_incref(json_object_get(header, "__metadata__"));
            json_decref(header);
        }
        free(buf);
    }
    fclose(f);
    if (meta && !json_is_object(meta)) {
        json_decref(meta);
        meta = NULL;
    }
    return meta;
}

/* One metadata value as A1111 reads it: a string that opens with '{' is
   JSON where it parses (kohya stores ss_network_args and tag frequencies so). */
static json_t *metadata_value(json_t *v)
{
    json_t *parsed = NULL;
    if (json_is_string(v) && json_string_value(v)[0] == '{')
        parsed = json_loads(json_string_value(v), JSON_DECODE_ANY, NULL);
    return parsed ? parsed : json_incref(v);
}

/* A1111's NetworkOnDisk.metadata: the header's entries, the five keys of its
   metadata_tags_order first in that order, the others as the file has them. */
static json_t *a1111_metadata(const char *path)
{
    static const char *const first[] = {"ss_sd_model_name", "ss_resolution", "ss_clip_skip",
                                        "ss_num_train_images", "ss_tag_frequency"};
    const size_t n_first = sizeof first / sizeof first[0];
    json_t *meta = header_metadata(path), *out = json_object();
    if (!meta)
        return out;
    for (size_t i = 0; i < n_first; i++) {
        json_t *v = json_object_get(meta, first[i]);
        if (v)
            json_object_set_new(out, first[i], metadata_value(v));
    }
    const char *key;
    json_t *v;
    json_object_foreach(meta, key, v)
    {
        if (!json_object_get(out, key))
            json_object_set_new(out, key, metadata_value(v));
    }
    json_decref(meta);
    return out;
}

enum MHD_Result a1111_list_loras(http_request *r)
{
    lora_file *files;
    int n = list_folder(lora_dir(r), &files);
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        char real[PATH_MAX];
        const char *path = realpath(files[i].path, real) ? real : files[i].path;
        json_t *meta = a1111_metadata(files[i].path);
        /* A1111 calls a LoRA by the name it was trained under when the file says */
        const char *alias = json_string_value(json_object_get(meta, "ss_output_name"));
        json_array_append_new(arr, json_pack("{s:s,s:s,s:s,s:o}", "name", files[i].name, "alias",
                                             alias ? alias : files[i].name, "path", path,
                                             "metadata", meta));
    }
    free(files);
    return http_reply_json(r, 200, arr, NULL);
}
