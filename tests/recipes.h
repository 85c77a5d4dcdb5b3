/* recipes - the fixture generation recipes (tests/fixtures/recipes.json) as gs_params. */
#ifndef GS_TEST_RECIPES_H
#define GS_TEST_RECIPES_H

#include "gesso.h"

typedef struct recipe {
    char name[64];
    char prompt[512];
    char negative[512];
    char sampler[32];
    char scheduler[32]; /* "" = the sampler's default */
    char init_image[128];
    uint64_t seed;
    int steps, width, height, clip_skip, batch;
    double cfg_scale, strength;
    gs_prediction prediction;   /* "prediction": "epsilon" | "v"; AUTO when absent */
    int original_h, original_w; /* "original_size": [h, w] (diffusers order), 0 = none */
    int crop_top, crop_left;    /* "crop_coords_top_left": [top, left] */
    int target_h, target_w;     /* "target_size": [h, w] */
    int encode_empty_negative;  /* "empty_negative": "encode" */
} recipe;

/* Reads every recipe; returns the count (aborts on a malformed file). */
int recipes_load(recipe *out, int max);
/* The same from another recipes file under tests/fixtures (e.g. "sd1-norms/recipes.json"). */
int recipes_load_file(const char *name, recipe *out, int max);
/* Fills p from r (init image not loaded). */
void recipe_params(const recipe *r, gs_params *p);

/* r's init image (a file under tests/fixtures) loaded into p->init_image, or
   NULL when r has none; the caller frees it after the generation. */
gs_image *recipe_init_image(const recipe *r, gs_params *p);

#endif
