/* test_vae - VAE decode and encode against the golden tensors (NCHW goldens, NHWC engine). */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>

#include "compute/compute.h"
#include "model/vae.h"

static vae *m;
static gs_compute *cx;
static st_file *f;

static int setup(void **state)
{
    (void)state;
    gs_error err = {0};
    if (st_open(fixture_path("tiny-sd15.safetensors"), &f, &err) != GS_OK ||
        vae_load(f, "first_stage_model.", 0, &m, &err) != GS_OK ||
        compute_create(2, &cx, &err) != GS_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    vae_free(m);
    compute_free(cx);
    st_close(f);
    return 0;
}

static float *nhwc_f32(const char *key, int n, int c, int h, int w)
{
    size_t cnt;
    double *src = golden_f64(key, &cnt);
    assert_int_equal(cnt, (size_t)n * c * h * w);
    double *t = malloc(cnt * sizeof *t);
    nchw_to_nhwc_f64(src, t, n, c, h, w);
    float *out = malloc(cnt * sizeof *out);
    for (size_t i = 0; i < cnt; i++)
        out[i] = (float)t[i];
    free(src);
    free(t);
    return out;
}

static double *nhwc_f64(const char *key, int n, int c, int h, int w)
{
    size_t cnt;
    double *src = golden_f64(key, &cnt);
    double *t = malloc(cnt * sizeof *t);
    nchw_to_nhwc_f64(src, t, n, c, h, w);
    free(src);
    return t;
}

static void decode_matches(void **state)
{
    (void)state;
    gs_error err = {0};
    float *lat = nhwc_f32("vae.decode.latent", 1, 4, 8, 12);
    double *ref = nhwc_f64("vae.decode.image", 1, 3, 64, 96);
    float *img = malloc(64 * 96 * 3 * sizeof *img);
    assert_int_equal(vae_decode(m, cx, lat, 1, 8, 12, img, &err), GS_OK);
    double e = rel_l2_f32_f64(img, ref, 64 * 96 * 3);
    printf("vae.decode.image rel L2 %.3g\n", e);
    assert_true(e < 1e-4);
    free(lat);
    free(ref);
    free(img);
}

static void encode_matches(void **state)
{
    (void)state;
    gs_error err = {0};
    float *img = nhwc_f32("vae.encode.image", 1, 3, 64, 96);
    double *rm = nhwc_f64("vae.encode.mean", 1, 4, 8, 12);
    double *rl = nhwc_f64("vae.encode.logvar", 1, 4, 8, 12);
    float mean[8 * 12 * 4], logvar[8 * 12 * 4];
    assert_int_equal(vae_encode(m, cx, img, 1, 64, 96, mean, logvar, &err), GS_OK);
    double em = rel_l2_f32_f64(mean, rm, 8 * 12 * 4), el = rel_l2_f32_f64(logvar, rl, 8 * 12 * 4);
    printf("vae.encode.mean rel L2 %.3g, logvar rel L2 %.3g\n", em, el);
    assert_true(em < 1e-4);
    assert_true(el < 1e-4);
    /* sizes the encoder cannot take are refused */
    assert_int_equal(vae_encode(m, cx, img, 1, 60, 96, mean, NULL, &err), GS_ERR_INVALID_ARGUMENT);
    free(img);
    free(rm);
    free(rl);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(decode_matches),
                                       cmocka_unit_test(encode_matches)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
