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

int recipes_load(recipe *out, int max)
{
    return recipes_load_file("recipes.json", out, max);
}

int recipes_load_file(const char *fixture, recipe *out, int max)
{
    json_error_t jerr;
    json_t *root = json_load_file(fixture_path(fixture), 0, &jerr);
    if (!root || !json_is_array(root)) {
        fprintf(stderr, "%s: %s\n", fixture, jerr.text);
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
}
