/*
 * config - bridgeData.yaml through libyaml's event parser. The file is a
 * flat mapping of scalars and lists of scalars; nested mappings (which reGen
 * has for a few advanced keys) are skipped whole with a warning.
 */
#include "horde/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "support/log.h"

enum { K_STR, K_INT, K_BOOL, K_LIST };

typedef struct key_desc {
    const char *name;
    int kind;
    size_t off;  /* into horde_config */
    size_t size; /* K_STR: buffer size; K_LIST: offset of the count */
    long lo, hi; /* K_INT bounds */
} key_desc;

#define OFF(f) offsetof(horde_config, f)
static const key_desc keys[] = {
    {"api_key", K_STR, OFF(api_key), sizeof(((horde_config *)0)->api_key), 0, 0},
    {"dreamer_name", K_STR, OFF(dreamer_name), HORDE_NAME_MAX, 0, 0},
    {"horde_url", K_STR, OFF(horde_url), sizeof(((horde_config *)0)->horde_url), 0, 0},
    {"cache_home", K_STR, OFF(cache_home), sizeof(((horde_config *)0)->cache_home), 0, 0},
    {"models_to_load", K_LIST, OFF(models), OFF(n_models), HORDE_MAX_MODELS, 0},
    {"max_power", K_INT, OFF(max_power), 0, 1, 1024},
    {"max_threads", K_INT, OFF(max_threads), 0, 1, 50},
    {"queue_size", K_INT, OFF(queue_size), 0, 0, 16},
    {"max_batch", K_INT, OFF(max_batch), 0, 1, 20},
    {"allow_img2img", K_BOOL, OFF(allow_img2img), 0, 0, 0},
    {"allow_painting", K_BOOL, OFF(allow_painting), 0, 0, 0},
    {"allow_lora", K_BOOL, OFF(allow_lora), 0, 0, 0},
    {"allow_post_processing", K_BOOL, OFF(allow_post_processing), 0, 0, 0},
    {"nsfw", K_BOOL, OFF(nsfw), 0, 0, 0},
    {"censor_nsfw", K_BOOL, OFF(censor_nsfw), 0, 0, 0},
    {"require_upfront_kudos", K_BOOL, OFF(require_upfront_kudos), 0, 0, 0},
    {"blacklist", K_LIST, OFF(blacklist), OFF(n_blacklist), HORDE_MAX_WORDS, 0},
    {"censorlist", K_LIST, OFF(censorlist), OFF(n_censorlist), HORDE_MAX_WORDS, 0},
    {"model_reference", K_STR, OFF(model_reference), sizeof(((horde_config *)0)->model_reference),
     0, 0},
    {"download_budget_gb", K_INT, OFF(download_budget_gb), 0, 0, 1000000},
    {"max_lora_cache_size", K_INT, OFF(max_lora_cache_size), 0, 1, 100000},
    {"civitai_api_token", K_STR, OFF(civitai_api_token),
     sizeof(((horde_config *)0)->civitai_api_token), 0, 0},
    {"civitai_url", K_STR, OFF(civitai_url), sizeof(((horde_config *)0)->civitai_url), 0, 0},
    {"safety_clip_model", K_STR, OFF(safety_clip_model),
     sizeof(((horde_config *)0)->safety_clip_model), 0, 0},
};
#define N_KEYS (sizeof keys / sizeof keys[0])

void horde_config_defaults(horde_config *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->api_key, sizeof c->api_key, "0000000000");
    snprintf(c->dreamer_name, sizeof c->dreamer_name, "An Awesome gesso Dreamer");
    snprintf(c->horde_url, sizeof c->horde_url, "https://aihorde.net");
    c->max_power = 8;
    c->max_pixels = 64L * 64 * 8 * c->max_power;
    c->max_threads = 1;
    c->queue_size = 1;
    c->max_batch = 1;
    c->allow_img2img = 1;
    c->allow_painting = 1;
    c->allow_lora = 0;
    c->allow_post_processing = 1;
    c->nsfw = 1;
    c->censor_nsfw = 0;
    c->max_lora_cache_size = 10;
    snprintf(c->civitai_url, sizeof c->civitai_url, "https://civitai.com");
}

void horde_config_free(horde_config *c)
{
    for (int i = 0; i < c->n_models; i++)
        free(c->models[i]);
    for (int i = 0; i < c->n_blacklist; i++)
        free(c->blacklist[i]);
    for (int i = 0; i < c->n_censorlist; i++)
        free(c->censorlist[i]);
    c->n_models = c->n_blacklist = c->n_censorlist = 0;
}

static int set_bool(const char *v, int *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"}, *const no[] = {"false", "no",
                                                                                "off", "0"};
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

/* A scalar value for key k; -1 with errmsg when it does not fit. */
static int set_scalar(horde_config *c, const key_desc *k, const char *v, char *errmsg, size_t n)
{
    char *base = (char *)c + k->off;
    if (k->kind == K_STR) {
        if (strlen(v) >= k->size) {
            snprintf(errmsg, n, "%s: longer than %zu bytes", k->name, k->size - 1);
            return -1;
        }
        snprintf(base, k->size, "%s", v);
        return 0;
    }
    if (k->kind == K_BOOL) {
        if (set_bool(v, (int *)base) != 0) {
            snprintf(errmsg, n, "%s: '%s' is not true or false", k->name, v);
            return -1;
        }
        return 0;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < k->lo || x > k->hi) {
        snprintf(errmsg, n, "%s: '%s' is not a whole number in %ld..%ld", k->name, v, k->lo, k->hi);
        return -1;
    }
    *(int *)base = (int)x;
    return 0;
}

static int add_item(horde_config *c, const key_desc *k, const char *v, char *errmsg, size_t n)
{
    char **list = (char **)((char *)c + k->off);
    int *count = (int *)((char *)c + k->size);
    if (*count >= k->lo) {
        snprintf(errmsg, n, "%s: more than %ld entries", k->name, k->lo);
        return -1;
    }
    if (!(list[*count] = strdup(v))) {
        snprintf(errmsg, n, "out of memory");
        return -1;
    }
    (*count)++;
    return 0;
}

static const key_desc *find_key(const char *name)
{
    for (size_t i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Skips the value that starts with event ev (a nested list or mapping). */
static int skip_value(yaml_parser_t *p, yaml_event_t *ev)
{
    int depth = 0;
    for (;;) {
        if (ev->type == YAML_SEQUENCE_START_EVENT || ev->type == YAML_MAPPING_START_EVENT)
            depth++;
        else if (ev->type == YAML_SEQUENCE_END_EVENT || ev->type == YAML_MAPPING_END_EVENT)
            depth--;
        yaml_event_delete(ev);
        if (depth <= 0)
            return 0;
        if (!yaml_parser_parse(p, ev))
            return -1;
    }
}

int horde_config_parse(horde_config *c, const char *text, size_t len, char *errmsg,
                       size_t errmsg_size)
{
    yaml_parser_t p;
    yaml_event_t ev;
    if (!yaml_parser_initialize(&p)) {
        snprintf(errmsg, errmsg_size, "out of memory");
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    errmsg[0] = '\0';
    int rc = -1, level = 0; /* level 1: inside the top mapping */
    char key[128] = "";
    int have_key = 0;
    for (;;) {
        if (!yaml_parser_parse(&p, &ev)) {
            snprintf(errmsg, errmsg_size, "line %zu: %s", p.problem_mark.line + 1,
                     p.problem ? p.problem : "not YAML");
            goto out;
        }
        if (ev.type == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            rc = 0;
            goto out;
        }
        if (ev.type == YAML_MAPPING_START_EVENT && level == 0) {
            level = 1;
        } else if (ev.type == YAML_MAPPING_END_EVENT && level == 1) {
            level = 0;
        } else if (level == 1 && !have_key) {
            if (ev.type != YAML_SCALAR_EVENT) {
                snprintf(errmsg, errmsg_size, "line %zu: a key must be a plain name",
                         ev.start_mark.line + 1);
                yaml_event_delete(&ev);
                goto out;
            }
            snprintf(key, sizeof key, "%s", (const char *)ev.data.scalar.value);
            have_key = 1;
        } else if (level == 1) {
            const key_desc *k = find_key(key);
            have_key = 0;
            if (!k) {
                log_warn("bridgeData: '%s' is not used by gesso, ignored", key);
                if (skip_value(&p, &ev) != 0)
                    goto out;
                continue;
            }
            if (k->kind == K_LIST && ev.type == YAML_SEQUENCE_START_EVENT) {
                yaml_event_delete(&ev);
                for (;;) {
                    if (!yaml_parser_parse(&p, &ev))
                        goto out;
                    if (ev.type == YAML_SEQUENCE_END_EVENT)
                        break;
                    if (ev.type != YAML_SCALAR_EVENT) {
                        snprintf(errmsg, errmsg_size, "%s: entries must be plain values", key);
                        yaml_event_delete(&ev);
                        goto out;
                    }
                    if (add_item(c, k, (const char *)ev.data.scalar.value, errmsg, errmsg_size)) {
                        yaml_event_delete(&ev);
                        goto out;
                    }
                    yaml_event_delete(&ev);
                }
            } else if (ev.type == YAML_SCALAR_EVENT) {
                const char *v = (const char *)ev.data.scalar.value;
                /* a bare `key:` is null: keep the default */
                int null = ev.data.scalar.length == 0 && ev.data.scalar.plain_implicit;
                int bad = null                ? 0
                          : k->kind == K_LIST ? add_item(c, k, v, errmsg, errmsg_size)
                                              : set_scalar(c, k, v, errmsg, errmsg_size);
                if (bad) {
                    yaml_event_delete(&ev);
                    goto out;
                }
            } else {
                snprintf(errmsg, errmsg_size, "%s: expected %s", key,
                         k->kind == K_LIST ? "a list" : "a plain value");
                yaml_event_delete(&ev);
                goto out;
            }
        }
        yaml_event_delete(&ev);
    }
out:
    /* libyaml failed inside a list or a skipped value: its own words */
    if (rc != 0 && !errmsg[0])
        snprintf(errmsg, errmsg_size, "line %zu: %s", p.problem_mark.line + 1,
                 p.problem ? p.problem : "not YAML");
    yaml_parser_delete(&p);
    c->max_pixels = 64L * 64 * 8 * c->max_power;
    return rc;
}

int horde_config_load(horde_config *c, const char *path, char *errmsg, size_t errmsg_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(errmsg, errmsg_size, "cannot open '%s': %s", path, strerror(errno));
        return -1;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0, got;
    char chunk[4096];
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (len + got > cap) {
            cap = (len + got) * 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                snprintf(errmsg, errmsg_size, "out of memory");
                return -1;
            }
            buf = nb;
        }
        memcpy(buf + len, chunk, got);
        len += got;
    }
    fclose(f);
    char inner[400];
    int rc = horde_config_parse(c, buf ? buf : "", len, inner, sizeof inner);
    if (rc)
        snprintf(errmsg, errmsg_size, "%s: %s", path, inner);
    free(buf);
    return rc;
}

int horde_config_check(const horde_config *c, char *errmsg, size_t errmsg_size)
{
    /* an SFW worker, or one that censors every job, must look at its images */
    if ((c->censor_nsfw || !c->nsfw) && !c->safety_clip_model[0]) {
        snprintf(errmsg, errmsg_size,
                 "%s needs the image safety check: set safety_clip_model to a CLIP ViT-L/14 "
                 "model.safetensors (openai/clip-vit-large-patch14; see docs/horde.md)",
                 c->censor_nsfw ? "censor_nsfw: true" : "nsfw: false");
        return -1;
    }
    return 0;
}
