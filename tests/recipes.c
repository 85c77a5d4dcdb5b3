/* recipes - reads tests/fixtures/recipes.json. */
#include "recipes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void copy_str(char *dst, size_t n, json_t *obj, const char *key, const char *def)
{
    json_t *v = json_object_get(obj, key);
    snprintf(dst, n, "%s", json_is_string(v) ? json_string_value(v) : def);
}

static double num(json_t *obj, const char *key, double def)
{
    json_t *v = json_object_get(obj, key);
    return json_is_number(v) ? json_number_value(v) : def;
}

static void pair(json_t *obj, const char *key, int *a, int *b)
{
    json_t *v = json_object_get(obj, key);
    if (json_is_array(v) && json_array_size(v) == 2) {
        *a = (int)json_number_value(json_array_get(v, 0));
        *b = (int)json_number_value(json_array_get(v, 1));
    }
}

int recipes_load(recipe *out, int max)
{
    return recipes_load_file("recipes.json", out, max);
}

int recipes_load_file(const char *name, recipe *out, int max)
{
    json_error_t jerr;
    json_t *root = json_load_file(fixture_path(name), 0, &jerr);
    if (!root || !json_is_array(root)) {
        fprintf(stderr, "%s: %s\n", name, jerr.text);
        abort();
    }
    int n = 0;
    size_t i;
    json_t *r;
    json_array_foreach(root, i, r)
    {
        if (n >= max)
            break;
        recipe *d = &out[n++];
        memset(d, 0, sizeof *d);
        copy_str(d->name, sizeof d->name, r, "name", "");
        copy_str(d->prompt, sizeof d->prompt, r, "prompt", "");
        copy_str(d->negative, sizeof d->negative, r, "negative_prompt", "");
        copy_str(d->sampler, sizeof d->sampler, r, "sampler", "");
        copy_str(d->scheduler, sizeof d->scheduler, r, "schedule", "");
        /* ddim's "leading" and lcm's own schedule are the samplers' defaults */
        /* dpm_fast/dpm_adaptive's "none": they take σ_min/σ_max of the default schedule */
        if (strcmp(d->scheduler, "leading") == 0 || strcmp(d->scheduler, "lcm") == 0 ||
            strcmp(d->scheduler, "none") == 0)
            d->scheduler[0] = '\0';
        copy_str(d->init_image, sizeof d->init_image, r, "init_image", "");
        d->seed = (uint64_t)num(r, "seed", 0);
        d->steps = (int)num(r, "steps", 20);
        d->width = (int)num(r, "width", 512);
        d->height = (int)num(r, "height", 512);
        d->clip_skip = (int)num(r, "clip_skip", 1);
        d->batch = (int)num(r, "batch", 1);
        d->cfg_scale = num(r, "cfg_scale", 7);
        d->strength = num(r, "denoising_strength", 0.75);
        char buf[32];
        copy_str(buf, sizeof buf, r, "prediction", "");
        d->prediction = strcmp(buf, "v") == 0         ? GS_PREDICTION_V
                        : strcmp(buf, "epsilon") == 0 ? GS_PREDICTION_EPS
                                                      : GS_PREDICTION_AUTO;
        pair(r, "original_size", &d->original_h, &d->original_w);
        pair(r, "crop_coords_top_left", &d->crop_top, &d->crop_left);
        pair(r, "target_size", &d->target_h, &d->target_w);
        copy_str(buf, sizeof buf, r, "empty_negative", "");
        d->encode_empty_negative = strcmp(buf, "encode") == 0;
    }
    json_decref(root);
    return n;
}

void recipe_params(const recipe *r, gs_params *p)
{
    gs_params_init(p);
    p->prompt = r->prompt;
    p->negative_prompt = r->negative;
    p->sampler = r->sampler;
    p->scheduler = r->scheduler[0] ? r->scheduler : NULL;
    p->seed = r->seed;
    p->steps = r->steps;
    p->width = r->width;
    p->height = r->height;
    p->clip_skip = r->clip_skip;
    p->batch_size = r->batch;
    p->cfg_scale = (float)r->cfg_scale;
    p->strength = (float)r->strength;
    p->prediction = r->prediction;
    p->original_height = r->original_h;
    p->original_width = r->original_w;
    p->crop_top = r->crop_top;
    p->crop_left = r->crop_left;
    p->target_height = r->target_h;
    p->target_width = r->target_w;
    p->encode_empty_negative = r->encode_empty_negative;
}

gs_image *recipe_init_image(const recipe *r, gs_params *p)
{
    if (!r->init_image[0])
        return NULL;
    gs_image *init = NULL;
    char msg[256];
    assert_int_equal(gs_image_load(fixture_path(r->init_image), &init, msg, sizeof msg), GS_OK);
    p->init_image = init;
    return init;
}
