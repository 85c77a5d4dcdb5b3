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

static double rel_to(const char *name, const char *what, const float *a, size_t n)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", name, what);
    size_t m;
    double *ref = golden_f64(key, &m);
    assert_int_equal(m, n);
    double r = rel_l2_f32_f64(a, ref, n);
    free(ref);
    return r;
}

/* Max level difference of img against golden <name>.<what>; *differ counts. */
static int image_vs(const char *name, const char *what, const gs_image *img, int *differ)
{
    int maxd;
    *differ = u8_diff(name, what, img->pixels, (size_t)img->width * img->height * 3, &maxd);
    return maxd;
}

static void recipes_match_goldens(void **state)
{
    (void)state;
    for (int i = 0; i < NREC; i++) {
        gs_params p;
        gs_image *init, *mask;
        params_of(i, &p, &init, &mask);
        size_t n = (size_t)4 * (p.width / 8) * (p.height / 8);
        inpaint_trace tr = {malloc(n * 4), malloc(n * 4), malloc(n * 4), n};
        inpaint_trace_sink = &tr;
        gs_result *res = NULL;
        gs_status st = gs_generate(eng, model, &p, NULL, NULL, &res);
        inpaint_trace_sink = NULL;
        if (st != GS_OK)
            fail_msg("%s: %s", rs[i].name, gs_engine_errmsg(eng));
        const char *nm = rs[i].name;
        double e_enc = rel_to(nm, "init_latent_encoded", tr.encoded, n);
        double e_init = rel_to(nm, "init_latent", tr.init, n);
        double e_final = rel_to(nm, "final_latent", tr.final, n);
        const gs_image *img = gs_result_image(res, 0);
        gs_image *ref = load(ex[i].reference);
        assert_int_equal(img->width, ref->width);
        assert_int_equal(img->height, ref->height);
        int differ, maxd = image_vs(nm, "overlaid_u8", img, &differ), ref_maxd = 0;
        for (size_t k = 0; k < (size_t)ref->width * ref->height * 3; k++) {
            int d = abs((int)img->pixels[k] - (int)ref->pixels[k]);
            ref_maxd = d > ref_maxd ? d : ref_maxd;
        }
        printf("%-24s rel err: encoded %.1e init %.1e final %.1e; image max %d levels (%d differ), "
               "png max %d\n",
               nm, e_enc, e_init, e_final, maxd, differ, ref_maxd);
        assert_true(e_enc < 1e-5);
        assert_true(e_init < 1e-5);
        assert_true(e_final < 1e-5);
        assert_true(maxd <= 2);
        assert_true(ref_maxd <= 2);
        gs_image_free(ref);
        gs_result_free(res);
        free(tr.encoded);
        free(tr.init);
        free(tr.final);
        gs_image_free(init);
        gs_image_free(mask);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pixel_steps_match_goldens),
        cmocka_unit_test(recipes_match_goldens),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
