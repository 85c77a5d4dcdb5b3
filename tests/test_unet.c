/* test_unet - UNet ε predictions against the golden tensors (batch 2, fractional t). */
#include "testutil.h"

/* f32 against diffusers' f64 eps: measured 2.3-2.5e-7 (AMD EPYC AVX2, 2026-12-06) and
   within 2x of that on AVX-512 machines; the bound allows ~10x. A wrong weight, a
   dropped bias or a swapped norm moves it by orders of magnitude. */
#define UNET_REL_L2 5e-6

#include <stdio.h>
#include <stdlib.h>

#include "compute/compute.h"
#include "model/unet.h"

static void eps_matches(void **state)
{
    (void)state;
    gi_error err = {0};
    st_file *f;
    unet *m;
    gi_compute *cx;
    assert_int_equal(st_open(fixture_path("tiny-sd15.safetensors"), &f, &err), GS_OK);
    assert_int_equal(unet_load(f, "model.diffusion_model.", 0, NULL, &m, &err), GS_OK);
    assert_int_equal(compute_create(2, &cx, &err), GS_OK);
    assert_int_equal(unet_model_channels(m), 32);
    assert_int_equal(unet_context_dim(m), 96);
    const int B = 2, C = 4, H = 8, W = 16;
    size_t n = (size_t)B * C * H * W;
    /* the second round blocks the feed-forwards by 48 rows (256 rows at the top
       level: five blocks and a remainder) and runs every 3x3 convolution by
       Winograd, as full-size inputs are */
    for (int j = 0; j < 8; j++) {
        if (j == 4) {
            cx->block_rows = 48;
            cx->winograd_min_tiles = 1;
        }
        char key[64];
        size_t cnt;
        snprintf(key, sizeof key, "unet.%d.x", j % 4);
        double *x64 = golden_f64(key, &cnt);
        double *xt = malloc(n * sizeof *xt);
        nchw_to_nhwc_f64(x64, xt, B, C, H, W);
        float *x = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)xt[i];
        snprintf(key, sizeof key, "unet.%d.t", j % 4);
        float *t = golden_f32(key, NULL);
        snprintf(key, sizeof key, "unet.%d.context", j % 4);
        float *ctx = golden_f32(key, &cnt);
        assert_int_equal(cnt, (size_t)B * 77 * 96);
        snprintf(key, sizeof key, "unet.%d.eps", j % 4);
        double *e64 = golden_f64(key, &cnt);
        double *ref = malloc(n * sizeof *ref);
        nchw_to_nhwc_f64(e64, ref, B, C, H, W);
        float *eps = malloc(n * sizeof *eps);
        assert_int_equal(unet_forward(m, cx, x, t, ctx, B, H, W, 77, eps, &err), GS_OK);
        double e = rel_l2_f32_f64(eps, ref, n);
        printf("unet.%d.eps (t = %.3f, %.3f), blocks of %ld rows, winograd from %ld tiles: "
               "rel L2 %.3g\n",
               j % 4, t[0], t[1], cx->block_rows, cx->winograd_min_tiles, e);
        assert_true(e < UNET_REL_L2);
        free(x64);
        free(xt);
        free(x);
        free(t);
        free(ctx);
        free(e64);
        free(ref);
        free(eps);
    }
    /* odd latent sizes run (A1111 resizes upsampled maps to their skips) */
    float *x = calloc(2 * 4 * 9 * 13, sizeof *x), *eps = calloc(2 * 4 * 9 * 13, sizeof *eps);
    float t2[2] = {500, 10};
    float *ctx = calloc(2 * 77 * 96, sizeof *ctx);
    assert_int_equal(unet_forward(m, cx, x, t2, ctx, 2, 9, 13, 77, eps, &err), GS_OK);
    assert_int_equal(unet_forward(m, cx, x, t2, ctx, 0, 9, 13, 77, eps, &err),
                     GS_ERR_INVALID_ARGUMENT);
    free(x);
    free(eps);
    free(ctx);
    compute_free(cx);
    unet_free(m);
    st_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(eps_matches)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
