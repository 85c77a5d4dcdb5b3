/*
 * test_sd1_norms - the second SD1 fixture (tests/fixtures/sd1-norms): every layer norm and
 * group norm has random γ/β (the text final norm included) and some blocks have identity
 * skips. Its text, UNet and VAE goldens, and its recipes end to end through the public API
 * against the reference images.
 */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compute/compute.h"
#include "gesso.h"
#include "model/clip_text.h"
#include "model/unet.h"
#include "model/vae.h"
#include "recipes.h"

#define MODEL "sd1-norms/tiny-sd15n.safetensors"
#define GOLDEN "sd1-norms/tiny-sd15n-golden.safetensors"
#define WIDTH 24 /* text width = UNet context */

/* f32 against the references' f64, measured 2026-12-06 (AMD EPYC, AVX2, 2 threads): text
   1.7-3.6e-7, UNet eps 2.2-2.5e-7, VAE decode 1.45e-6, encode mean 1.0e-6 / logvar 8.1e-7;
   recipes within 1 level (1-13 values of 24576 differ). The bounds are those of test_clip,
   test_unet, test_vae and test_pipeline for the first fixture. */
#define TEXT_REL_L2 5e-6
#define UNET_REL_L2 5e-6
#define VAE_REL_L2 2e-5

static st_file *gold;

static int setup(void **state)
{
    (void)state;
    gi_error err = {0};
    return st_open(fixture_path(GOLDEN), &gold, &err) == GS_OK ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    st_close(gold);
    return 0;
}

static double *tensor_f64(const char *name, size_t *n)
{
    const st_tensor *t = st_find(gold, name);
    if (!t)
        fail_msg("golden tensor '%s' missing", name);
    double *d = malloc((size_t)t->numel * sizeof *d);
    gi_error err = {0};
    assert_int_equal(st_to_f64(t, d, &err), GS_OK);
    *n = (size_t)t->numel;
    return d;
}

/* An NCHW golden as NHWC floats, or as NHWC doubles (when d is not NULL). */
static float *nhwc_f32(const char *name, int n, int c, int h, int w, double **d)
{
    size_t cnt;
    double *src = tensor_f64(name, &cnt);
    assert_int_equal(cnt, (size_t)n * c * h * w);
    double *t = malloc(cnt * sizeof *t);
    nchw_to_nhwc_f64(src, t, n, c, h, w);
    free(src);
    float *f = malloc(cnt * sizeof *f);
    for (size_t i = 0; i < cnt; i++)
        f[i] = (float)t[i];
    if (d)
        *d = t;
    else
        free(t);
    return f;
}

static void text_hidden_states(void **state)
{
    (void)state;
    gi_error err = {0};
    st_file *f;
    gi_compute *cx;
    clip_text *m;
    assert_int_equal(st_open(fixture_path(MODEL), &f, &err), GS_OK);
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    assert_int_equal(
        clip_text_load(f, "cond_stage_model.transformer.text_model.", 12, 0, NULL, &m, &err),
        GS_OK);
    assert_int_equal(clip_text_width(m), WIDTH);
    float out[77 * WIDTH];
    for (int i = 0; i < 4; i++) {
        char key[64];
        size_t n;
        snprintf(key, sizeof key, "text.%d.ids", i);
        double *idd = tensor_f64(key, &n);
        assert_int_equal(n, 77);
        int32_t ids[77];
        for (int t = 0; t < 77; t++)
            ids[t] = (int32_t)idd[t];
        free(idd);
        for (int skip = 1; skip <= 2; skip++) {
            assert_int_equal(clip_text_encode(m, cx, ids, 1, skip, out, &err), GS_OK);
            snprintf(key, sizeof key, "text.%d.%s", i, skip == 1 ? "hidden" : "penultimate");
            double *ref = tensor_f64(key, &n);
            assert_int_equal(n, 77 * WIDTH);
            double e = rel_l2_f32_f64(out, ref, n);
            printf("%-20s rel L2 %.3g\n", key, e);
            assert_true(e < TEXT_REL_L2);
            free(ref);
        }
    }
    clip_text_free(m);
    compute_free(cx);
    st_close(f);
}

static void unet_eps(void **state)
{
    (void)state;
    gi_error err = {0};
    st_file *f;
    gi_compute *cx;
    unet *m;
    assert_int_equal(st_open(fixture_path(MODEL), &f, &err), GS_OK);
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    if (unet_load(f, "model.diffusion_model.", &(unet_opts){.heads = 8}, 0, NULL, &m, &err) !=
        GS_OK)
        fail_msg("UNet: %s", err.msg);
    assert_int_equal(unet_context_dim(m), WIDTH);
    const int B = 2, C = 4, H = 8, W = 16;
    size_t n = (size_t)B * C * H * W, cnt;
    for (int j = 0; j < 4; j++) {
        char key[64];
        snprintf(key, sizeof key, "unet.%d.x", j);
        float *x = nhwc_f32(key, B, C, H, W, NULL);
        snprintf(key, sizeof key, "unet.%d.t", j);
        double *t64 = tensor_f64(key, &cnt);
        float t[2] = {(float)t64[0], (float)t64[1]};
        free(t64);
        snprintf(key, sizeof key, "unet.%d.context", j);
        double *c64 = tensor_f64(key, &cnt);
        assert_int_equal(cnt, (size_t)B * 77 * WIDTH);
        float *ctx = malloc(cnt * sizeof *ctx);
        for (size_t i = 0; i < cnt; i++)
            ctx[i] = (float)c64[i];
        free(c64);
        snprintf(key, sizeof key, "unet.%d.eps", j);
        double *ref;
        float *unused = nhwc_f32(key, B, C, H, W, &ref);
        float *eps = malloc(n * sizeof *eps);
        assert_int_equal(unet_forward(m, cx, x, t, ctx, NULL, B, H, W, 77, eps, &err), GS_OK);
        double e = rel_l2_f32_f64(eps, ref, n);
        printf("unet.%d.eps (t = %.2f, %.2f) rel L2 %.3g\n", j, t[0], t[1], e);
        assert_true(e < UNET_REL_L2);
        free(x);
        free(ctx);
        free(ref);
        free(unused);
        free(eps);
    }
    unet_free(m);
    compute_free(cx);
    st_close(f);
}

static void vae_decode_encode(void **state)
{
    (void)state;
    gi_error err = {0};
    st_file *f;
    gi_compute *cx;
    vae *m;
    assert_int_equal(st_open(fixture_path(MODEL), &f, &err), GS_OK);
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    if (vae_load(f, "first_stage_model.", 0, NULL, &m, &err) != GS_OK)
        fail_msg("VAE: %s", err.msg);
    double *ref, *ref_lv;
    float *lat = nhwc_f32("vae.decode.latent", 1, 4, 6, 8, NULL);
    float *unused = nhwc_f32("vae.decode.image", 1, 3, 48, 64, &ref);
    size_t n_img = 3 * 48 * 64, n_lat = 4 * 6 * 8;
    float *img = malloc(n_img * sizeof *img);
    assert_int_equal(vae_decode(m, cx, lat, 1, 6, 8, img, &err), GS_OK);
    double e = rel_l2_f32_f64(img, ref, n_img);
    printf("vae.decode.image rel L2 %.3g\n", e);
    assert_true(e < VAE_REL_L2);
    free(unused);
    free(ref);
    free(img);

    img = nhwc_f32("vae.encode.image", 1, 3, 48, 64, NULL);
    float *unused_m = nhwc_f32("vae.encode.mean", 1, 4, 6, 8, &ref);
    float *unused_l = nhwc_f32("vae.encode.logvar", 1, 4, 6, 8, &ref_lv);
    float mean[4 * 6 * 8], logvar[4 * 6 * 8];
    assert_int_equal(vae_encode(m, cx, img, 1, 48, 64, mean, logvar, &err), GS_OK);
    double em = rel_l2_f32_f64(mean, ref, n_lat), el = rel_l2_f32_f64(logvar, ref_lv, n_lat);
    printf("vae.encode.mean rel L2 %.3g, logvar %.3g\n", em, el);
    assert_true(em < VAE_REL_L2);
    assert_true(el < VAE_REL_L2);
    free(unused_m);
    free(unused_l);
    free(ref);
    free(ref_lv);
    free(img);
    free(lat);
    vae_free(m);
    compute_free(cx);
    st_close(f);
}

/* Every recipe through gs_generate against pipe.{name}.image_u8 (NHWC u8). */
static void recipes_match_reference_images(void **state)
{
    (void)state;
    gs_engine_options eo;
    gs_engine_options_init(&eo);
    eo.threads = 2;
    eo.precision = GS_PRECISION_F32;
    gs_engine *eng;
    gs_model *model;
    assert_int_equal(gs_engine_create(&eo, &eng), GS_OK);
    if (gs_model_load(eng, fixture_path(MODEL), &model) != GS_OK)
        fail_msg("load: %s", gs_engine_errmsg(eng));
    recipe rs[8];
    int n = recipes_load_file("sd1-norms/recipes.json", rs, 8);
    assert_int_equal(n, 5);
    for (int i = 0; i < n; i++) {
        gs_params p;
        recipe_params(&rs[i], &p);
        gs_image *init = NULL;
        char msg[256], path[192];
        if (rs[i].init_image[0]) {
            snprintf(path, sizeof path, "sd1-norms/%.127s", rs[i].init_image);
            assert_int_equal(gs_image_load(fixture_path(path), &init, msg, sizeof msg), GS_OK);
            p.init_image = init;
        }
        gs_result *res = NULL;
        if (gs_generate(eng, model, &p, NULL, NULL, &res) != GS_OK)
            fail_msg("%s: %s", rs[i].name, gs_engine_errmsg(eng));
        assert_int_equal(gs_result_count(res), 1);
        char key[128];
        snprintf(key, sizeof key, "pipe.%.63s.image_u8", rs[i].name);
        size_t cnt;
        double *ref = tensor_f64(key, &cnt);
        const gs_image *im = gs_result_image(res, 0);
        assert_int_equal(cnt, (size_t)im->width * im->height * 3);
        int maxd = 0, differing = 0;
        for (size_t k = 0; k < cnt; k++) {
            int d = abs((int)im->pixels[k] - (int)ref[k]);
            maxd = d > maxd ? d : maxd;
            differing += d != 0;
        }
        printf("pipe.%-24s max |diff| %d levels, %d values differ\n", rs[i].name, maxd, differing);
        assert_true(maxd <= 1); /* as the first fixture's recipes (test_pipeline) */
        free(ref);
        gs_result_free(res);
        gs_image_free(init);
    }
    gs_model_free(model);
    gs_engine_free(eng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(text_hidden_states),
        cmocka_unit_test(unet_eps),
        cmocka_unit_test(vae_decode_encode),
        cmocka_unit_test(recipes_match_reference_images),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
