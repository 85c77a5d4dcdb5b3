/* inpaint_fixture - what test_inpaint and test_inpaint_mask share: the
   inpaint fixture's recipes as gs_params, golden comparisons, small images.
   Header-only (static), included by each suite. */
#ifndef GS_TEST_INPAINT_FIXTURE_H
#define GS_TEST_INPAINT_FIXTURE_H

#include <jpeglib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"
#include "recipes.h"
#include "testutil.h"

#define NREC 6

static gs_engine *eng;
static gs_model *model;
static recipe rs[NREC];
static struct extra {
    int fill, blur, full_res, padding;
    char mask[128], reference[128];
} ex[NREC];

static int fixture_setup(int with_model)
{
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    eo.precision = GS_PRECISION_F32;
    if (gs_engine_create(&eo, &eng) != GS_OK)
        return -1;
    if (with_model && gs_model_load(eng, fixture_path("tiny-sd15.safetensors"), &model) != GS_OK)
        return -1;
    golden_select("inpaint/inpaint-golden.safetensors");
    if (recipes_load_file("inpaint/recipes-inpaint.json", rs, NREC) != NREC)
        return -1;
    json_error_t jerr;
    json_t *root = json_load_file(fixture_path("inpaint/recipes-inpaint.json"), 0, &jerr);
    if (!root)
        return -1;
    for (int i = 0; i < NREC; i++) {
        json_t *r = json_array_get(root, i);
        ex[i].fill = (int)json_integer_value(json_object_get(r, "inpainting_fill"));
        ex[i].blur = (int)json_integer_value(json_object_get(r, "mask_blur"));
        ex[i].full_res = json_is_true(json_object_get(r, "inpaint_full_res"));
        ex[i].padding = (int)json_integer_value(json_object_get(r, "inpaint_full_res_padding"));
        snprintf(ex[i].mask, sizeof ex[i].mask, "inpaint/%s",
                 json_string_value(json_object_get(r, "mask_image")));
        snprintf(ex[i].reference, sizeof ex[i].reference, "inpaint/%s",
                 json_string_value(json_object_get(r, "reference")));
        char init[sizeof rs[i].init_image];
        FORMAT_OR_FAIL(init, "inpaint/%s", rs[i].init_image);
        memcpy(rs[i].init_image, init, sizeof init);
    }
    json_decref(root);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gs_model_free(model);
    gs_engine_free(eng);
    return 0;
}

static gs_image *load(const char *name)
{
    gs_image *im = NULL;
    char msg[256];
    if (gs_image_load(fixture_path(name), &im, msg, sizeof msg) != GS_OK)
        fail_msg("%s: %s", name, msg);
    return im;
}

/* Recipe i as parameters; *init and *mask are loaded (free them). */
static void params_of(int i, gs_params *p, gs_image **init, gs_image **mask)
{
    recipe_params(&rs[i], p);
    *init = load(rs[i].init_image);
    *mask = load(ex[i].mask);
    p->init_image = *init;
    p->mask = *mask;
    p->mask_blur = ex[i].blur;
    p->inpaint_fill = (gs_inpaint_fill)ex[i].fill;
    p->inpaint_full_res = ex[i].full_res;
    p->inpaint_padding = ex[i].padding;
}

/* Number of bytes of a that differ from golden <name>.<what>; asserts the size. */
static int u8_diff(const char *name, const char *what, const uint8_t *a, size_t n, int *maxd)
{
    char key[128];
    FORMAT_OR_FAIL(key, "%s.%s", name, what);
    size_t m;
    double *ref = golden_f64(key, &m);
    assert_int_equal(m, n);
    int differ = 0;
    *maxd = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)ref[i]);
        differ += d != 0;
        *maxd = d > *maxd ? d : *maxd;
    }
    free(ref);
    return differ;
}

__attribute__((unused)) static void assert_u8_exact(const char *name, const char *what,
                                                    const uint8_t *a, size_t n)
{
    int maxd, differ = u8_diff(name, what, a, n, &maxd);
    if (differ)
        fail_msg("%s.%s: %d of %zu values differ (max %d)", name, what, differ, n, maxd);
}

static gs_image *solid(int w, int h, int channels, uint8_t v)
{
    gs_image *im = calloc(1, sizeof *im);
    im->width = w;
    im->height = h;
    im->channels = channels;
    im->pixels = malloc((size_t)w * h * channels);
    memset(im->pixels, v, (size_t)w * h * channels);
    return im;
}

static void free_solid(gs_image *im)
{
    free(im->pixels);
    free(im);
}

__attribute__((unused)) static uint8_t *jpeg_of(const gs_image *im, unsigned long *size)
{
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    unsigned char *buf = NULL;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_mem_dest(&c, &buf, size);
    c.image_width = (JDIMENSION)im->width;
    c.image_height = (JDIMENSION)im->height;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    for (int y = 0; y < im->height; y++) {
        JSAMPROW row = im->pixels + (size_t)y * im->width * 3;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    return buf;
}

#endif
